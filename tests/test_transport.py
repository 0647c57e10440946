"""The whole-call timeout: a server that answers a byte at a time, each byte well within any
per-read timeout, is cut off when the call's timeout runs out (sync and async, real sockets)."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator

import pytest

from llmclient import Client, RequestTimeoutError, RetryPolicy

TIMEOUT = 1.0
DRIP = 0.4  # seconds between bytes: each read succeeds, the whole answer would take minutes


@pytest.fixture
def dripping_server() -> Iterator[str]:
    listener = socket.create_server(("127.0.0.1", 0))
    stop = threading.Event()

    def serve(connection: socket.socket) -> None:
        with connection:
            connection.recv(65536)
            connection.sendall(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n")
            while not stop.wait(DRIP):
                try:
                    connection.sendall(b" ")
                except OSError:
                    return

    def accept() -> None:
        while not stop.is_set():
            try:
                connection, _ = listener.accept()
            except OSError:
                return
            threading.Thread(target=serve, args=(connection,), daemon=True).start()

    threading.Thread(target=accept, daemon=True).start()
    yield f"http://127.0.0.1:{listener.getsockname()[1]}/v1"
    stop.set()
    listener.close()


def client(base_url: str) -> Client:
    return Client("openai/gpt-4o-mini", base_url=base_url, api_key="sk-test", timeout=TIMEOUT,
                  retry=RetryPolicy(max_attempts=1))


def test_a_dripping_server_does_not_outlive_the_timeout(dripping_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        client(dripping_server).complete("Hi")
    assert time.monotonic() - started < TIMEOUT + DRIP + 0.3


def test_a_dripping_server_does_not_outlive_the_timeout_async(dripping_server: str) -> None:
    started = time.monotonic()
    with pytest.raises(RequestTimeoutError):
        asyncio.run(client(dripping_server).acomplete("Hi"))
    assert time.monotonic() - started < TIMEOUT + 0.3
