"""Test-wide guards. Any attempt to reach a non-loopback host fails the test that made it: the
suite runs offline against cassettes, and a network attempt is a bug even when something else
would have caught it (litellm retries, vcrpy fallthrough)."""

from __future__ import annotations

import ipaddress
import os
import socket
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.loopback import loopback  # noqa: F401 - the loopback OpenAI-wire server fixture, for every test module

# litellm is imported lazily by llmclient, but set this before anything could import it.
os.environ.setdefault("LITELLM_LOCAL_MODEL_COST_MAP", "True")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
# Telemetry is on by default and writes to ./.llm-telemetry: the tests' records (and their
# subprocesses') go to a directory of their own instead, never into the working directory.
os.environ["LLM_TELEMETRY_DIR"] = tempfile.mkdtemp(prefix="llmclient-telemetry-")
os.environ["LLMCLIENT_BATCH_DIR"] = tempfile.mkdtemp(prefix="llmclient-batches-")  # batch jobs, likewise

_LOOPBACK_NAMES = {"localhost", "localhost.localdomain", ""}
_attempts: list[str] = []


def _is_loopback(host: object) -> bool:
    if isinstance(host, bytes):
        host = host.decode()
    if not isinstance(host, str):
        return False
    if host in _LOOPBACK_NAMES:
        return True
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return False


def _host_of(address: Any) -> object:
    return address[0] if isinstance(address, tuple) and address else address


_real_connect = socket.socket.connect
_real_connect_ex = socket.socket.connect_ex
_real_getaddrinfo = socket.getaddrinfo


def _refuse(what: str) -> OSError:
    _attempts.append(what)
    return OSError(f"network access blocked in tests: {what}")


def _guarded_connect(self: socket.socket, address: Any) -> None:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_host_of(address)):
        raise _refuse(f"connect to {address!r}")
    _real_connect(self, address)


def _guarded_connect_ex(self: socket.socket, address: Any) -> int:
    if self.family in (socket.AF_INET, socket.AF_INET6) and not _is_loopback(_host_of(address)):
        raise _refuse(f"connect to {address!r}")
    return _real_connect_ex(self, address)


def _guarded_getaddrinfo(host: Any, *args: Any, **kwargs: Any) -> Any:
    if host is not None and not _is_loopback(host):
        raise _refuse(f"DNS lookup of {host!r}")
    return _real_getaddrinfo(host, *args, **kwargs)


socket.socket.connect = _guarded_connect  # type: ignore[method-assign]
socket.socket.connect_ex = _guarded_connect_ex  # type: ignore[method-assign]
socket.getaddrinfo = _guarded_getaddrinfo


@pytest.fixture(autouse=True)
def _no_network() -> Iterator[None]:
    """Fail the test if it tried to reach the network, even if the attempt's error was swallowed."""
    start = len(_attempts)
    yield
    tried = _attempts[start:]
    if tried:
        pytest.fail("test tried to use the network: " + "; ".join(tried), pytrace=False)


_EMPTY_CONFIG = Path(tempfile.mkdtemp(prefix="llmclient-tests-")) / "llmclient.toml"
_EMPTY_CONFIG.write_text("# no configuration: the unit tests do not read the checkout's llmclient.toml\n")
_EMPTY_ENV = _EMPTY_CONFIG.with_name("empty.env")
_EMPTY_ENV.write_text("# no .env: the unit tests do not read a developer's .env in the checkout\n")


@pytest.fixture(autouse=True)
def _no_checkout_config(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The checkout's llmclient.toml declares providers (cerebras) and the conformance matrix; a
    unit test starts from no configuration unless it sets one up itself."""
    from llmclient.config import reset_config

    monkeypatch.setenv("LLMCLIENT_CONFIG", str(_EMPTY_CONFIG))
    monkeypatch.setenv("LLMCLIENT_ENV_FILE", str(_EMPTY_ENV))
    reset_config()
    yield
    reset_config()


@pytest.fixture
def shipped_prices(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The shipped price table alone: no LLMCLIENT_PRICES file, no set_price rows, warnings
    not yet given; the table is loaded afresh before and after (a test may point it elsewhere)."""
    from llmclient import price_table

    monkeypatch.delenv("LLMCLIENT_PRICES", raising=False)
    monkeypatch.setattr(price_table, "_user_rows", {})
    monkeypatch.setattr(price_table, "_warned", set())
    price_table._table.cache_clear()
    yield
    price_table._table.cache_clear()
