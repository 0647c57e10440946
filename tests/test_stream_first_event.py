"""A stream is retried, and falls back, until its first event reaches the caller: a 200 answer
whose body fails before then (an error event, a cut connection) is a failed attempt like a 529;
after it, the failure is the caller's. Against a loopback server that sends each scripted piece
of a stream as its own flushed chunk, and can wait until the test has read what came before."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmclient import Client, OverloadedError
from llmclient.config import reset_config
from tests import test_reliability
from tests.fault_server import FaultServer, Succeed, Wire, stream_events

FAST = test_reliability.FAST
CUT = "cut"  # a step: close the socket here, mid-body
Step = bytes | threading.Event | str

OVERLOADED = (b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n')


def answer(text: str, wire: Wire = "anthropic") -> list[Step]:
    """A whole streamed answer of `text`, one event per chunk."""
    return list(stream_events(wire, Succeed(text), "claude-sonnet-4-5", "msg_1", include_usage=True))


def opening(text: str) -> list[Step]:
    """message_start, the text block's start, a ping, then `text`'s deltas: the caller's first events."""
    return list(stream_events("anthropic", Succeed(text), "claude-sonnet-4-5", "msg_1", include_usage=False, complete=False))


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each chunk leaves when written
    server: _Server

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        steps = self.server.take(body)
        self.close_connection = True  # one request per connection: no thread left waiting on a kept-alive one
        self.send_response(200)
        for name, value in (("content-type", "text/event-stream; charset=utf-8"), ("transfer-encoding", "chunked"),
                            ("connection", "close")):
            self.send_header(name, value)
        self.end_headers()
        for step in steps:
            if isinstance(step, threading.Event):
                step.wait(5)
            elif step == CUT:
                self.connection.shutdown(socket.SHUT_RDWR)  # FIN mid-body, before the closing chunk
                return
            else:
                assert isinstance(step, bytes)
                self.wfile.write(f"{len(step):x}\r\n".encode() + step + b"\r\n")
                self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.lock = threading.Lock()
        self.replies: list[list[Step]] = []
        self.bodies: list[dict[str, Any]] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    @property
    def count(self) -> int:
        with self.lock:
            return len(self.bodies)

    def script(self, *replies: list[Step]) -> None:
        self.replies.extend(replies)

    def take(self, body: dict[str, Any]) -> list[Step]:
        with self.lock:
            self.bodies.append(body)
            return self.replies.pop(0)


@pytest.fixture
def server() -> Iterator[_Server]:
    running = _Server()
    thread = threading.Thread(target=running.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True)
    thread.start()
    yield running
    running.shutdown()
    running.server_close()
    thread.join(5)


backup = test_reliability.backup  # the reliability tests' fixtures: a second loopback provider, and
_clean_state = test_reliability._clean_state  # configuration and rate limits reset around each test


def anthropic_client(server: _Server, **options: Any) -> Client:
    return Client("anthropic/claude-sonnet-4-5", base_url=server.url, api_key="sk-ant-test", **options)


@pytest.mark.parametrize("failed", [[OVERLOADED], opening("")[:3] + [OVERLOADED]], ids=["first-event", "after-ping"])
def test_an_error_event_before_the_first_event_is_retried(server: _Server, failed: list[Step]) -> None:
    server.script(failed, answer("Paris is the capital."))
    with anthropic_client(server, retry=FAST) as client:
        stream = client.stream("Capital of France?")
        assert "".join(event.text for event in stream) == "Paris is the capital."
    assert server.count == 2 and [r.error for r in stream.response.retries] == ["OverloadedError"]


def test_a_stream_cut_before_its_first_event_is_retried(server: _Server) -> None:
    server.script([CUT], answer("Paris.", "openai"))
    with Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", retry=FAST) as client:
        stream = client.stream("Capital of France?")
        assert "".join(event.text for event in stream) == "Paris."
    assert server.count == 2 and [r.error for r in stream.response.retries] == ["APIConnectionError"]


def test_a_profile_falls_back_when_its_streams_first_event_is_an_error(
        server: _Server, backup: FaultServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text(f"""
[providers.anthropic]
base_url = "{server.url}"
api_key_env = "PRIMARY_KEY"
[providers.openai]
base_url = "{backup.url}/v1"
api_key_env = "BACKUP_KEY"
[profiles.steady]
model = "anthropic/claude-sonnet-4-5"
fallbacks = ["openai/gpt-4o-mini"]
retry = {{ max_attempts = 1 }}
""")
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(config))
    monkeypatch.setenv("PRIMARY_KEY", "sk-ant-primary")
    monkeypatch.setenv("BACKUP_KEY", "sk-backup")
    reset_config()
    server.script([OVERLOADED])
    backup.script(Succeed("Paris, from the backup."))
    with Client("steady") as client:
        stream = client.stream("Capital of France?")
        assert "".join(event.text for event in stream) == "Paris, from the backup."
    assert (stream.answered_by, stream.response.provider, server.count, backup.count) == ("openai/gpt-4o-mini", "openai", 1, 1)
    assert [(r.model, r.error) for r in stream.response.retries] == [("anthropic/claude-sonnet-4-5", "OverloadedError")]


def test_an_error_event_after_the_first_event_is_the_callers(server: _Server) -> None:
    read_one = threading.Event()
    server.script([OVERLOADED], opening("Paris is") + [read_one, OVERLOADED])
    texts: list[str] = []
    with anthropic_client(server, retry=FAST) as client:
        with pytest.raises(OverloadedError):
            for event in client.stream("Capital of France?"):
                texts.append(event.text)
                read_one.set()  # the error is sent once the caller has an event
    assert texts == ["Paris", " is"] and server.count == 2  # retried before the first event, not after


async def test_async_an_error_event_before_the_first_event_is_retried(server: _Server) -> None:
    server.script(opening("")[:3] + [OVERLOADED], answer("Paris is the capital."))
    async with anthropic_client(server, retry=FAST) as client:
        stream = client.astream("Capital of France?")
        assert "".join([event.text async for event in stream]) == "Paris is the capital."
    assert server.count == 2 and [r.error for r in stream.response.retries] == ["OverloadedError"]


async def test_async_a_stream_cut_before_its_first_event_is_retried(server: _Server) -> None:
    server.script([CUT], answer("Paris.", "openai"))
    async with Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", retry=FAST) as client:
        stream = client.astream("Capital of France?")
        assert "".join([event.text async for event in stream]) == "Paris."
    assert server.count == 2 and [r.error for r in stream.response.retries] == ["APIConnectionError"]


async def test_async_an_error_event_after_the_first_event_is_the_callers(server: _Server) -> None:
    read_one = threading.Event()
    server.script([OVERLOADED], opening("Paris is") + [read_one, OVERLOADED])
    texts: list[str] = []
    async with anthropic_client(server, retry=FAST) as client:
        with pytest.raises(OverloadedError):
            async for event in client.astream("Capital of France?"):
                texts.append(event.text)
                read_one.set()
    assert texts == ["Paris", " is"] and server.count == 2


def test_a_retried_stream_is_kept_whole_and_replayed_from_the_cache(server: _Server, tmp_path: Path) -> None:
    server.script([OVERLOADED], answer("Paris is the capital."))
    runs = []
    with anthropic_client(server, retry=FAST, cache=tmp_path) as client:
        for _ in range(2):
            stream = client.stream("Capital of France?")
            runs.append(([(event.kind, event.text) for event in stream], stream.response))
    (fresh, first), (replayed, second) = runs
    assert server.count == 2  # the replay sent nothing: the kept body was whole, its primed start too
    assert replayed == fresh and "".join(text for _, text in fresh) == "Paris is the capital."
    assert (first.cached, second.cached, second.text, second.usage) == (False, True, first.text, first.usage)


async def test_async_a_retried_stream_is_kept_whole_and_replayed_from_the_cache(server: _Server, tmp_path: Path) -> None:
    server.script([OVERLOADED], answer("Paris is the capital."))
    runs = []
    async with anthropic_client(server, retry=FAST, cache=tmp_path) as client:
        for _ in range(2):
            stream = client.astream("Capital of France?")
            runs.append(([(event.kind, event.text) async for event in stream], await stream.get_response()))
    (fresh, first), (replayed, second) = runs
    assert server.count == 2
    assert replayed == fresh and "".join(text for _, text in fresh) == "Paris is the capital."
    assert (first.cached, second.cached, second.text, second.usage) == (False, True, first.text, first.usage)
