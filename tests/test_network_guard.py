"""The suite's own guard: non-loopback connections and DNS lookups are refused and recorded."""

from __future__ import annotations

import socket

import pytest

from tests import conftest


@pytest.mark.parametrize(
    "attempt",
    [
        lambda: socket.create_connection(("api.openai.com", 443), timeout=1),
        lambda: socket.socket().connect(("93.184.216.34", 443)),
        lambda: socket.getaddrinfo("generativelanguage.googleapis.com", 443),
    ],
    ids=["by-name", "by-address", "dns"],
)
def test_network_is_refused(attempt: object) -> None:
    before = len(conftest._attempts)
    with pytest.raises(OSError, match="network access blocked in tests"):
        attempt()  # type: ignore[operator]
    assert len(conftest._attempts) == before + 1
    del conftest._attempts[before:]  # this test made the attempt on purpose


def test_loopback_is_allowed() -> None:
    server = socket.create_server(("127.0.0.1", 0))
    with server, socket.create_connection(server.getsockname()[:2], timeout=1):
        pass
    assert socket.getaddrinfo("localhost", 80)
