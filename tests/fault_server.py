"""A real HTTP/1.1 server on 127.0.0.1 that speaks the OpenAI and Anthropic wire formats and
misbehaves on command, so fault handling is tested over real sockets, not mocked transports.

    with FaultServer() as server:
        server.script(status(429, headers={"retry-after": "1"}), succeed("Hi there."))
        client = Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test")
        ...
        assert server.count == 2 and server.gaps()[0] >= 1.0

Each request takes the next scripted action (an empty script means `succeed()`) and is recorded
with its arrival time. The path picks the wire: `/v1/chat/completions` OpenAI, `/v1/messages`
Anthropic. Bodies have the shapes of recorded real traffic (chunk layout, usage fields, error
objects; see /work/shared/reference-traffic).

Shutdown is prompt and leaves no thread behind (a suite of hundreds of tests shares the process):
hanging handlers wait on an event `close()` sets, idle keep-alive connections are shut down, and
every connection thread is joined.
"""

from __future__ import annotations

import itertools
import json
import re
import socket
import threading
import time
from collections import deque
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Literal

import pytest

Wire = Literal["openai", "anthropic"]
WIRE_BY_PATH: Mapping[str, Wire] = {"/v1/chat/completions": "openai", "/v1/messages": "anthropic"}


# --- actions ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Succeed:
    """A normal answer: JSON, or a stream cut into `split_deltas(text)`, with this usage."""

    text: str = "Hello from the fault server."
    input_tokens: int = 11
    output_tokens: int = 7
    model: str | None = None  # None: echo the request's model


@dataclass(frozen=True)
class Status:
    """An error response; `body=None` is the wire's own error object for `code`."""

    code: int
    headers: Mapping[str, str] = field(default_factory=dict)  # e.g. {"retry-after": "1"}
    body: Any = None  # dict/list (sent as JSON), str or bytes (sent verbatim)
    message: str | None = None  # replaces the default error message
    error_type: str | None = None  # replaces the default error type


@dataclass(frozen=True)
class Hang:
    """Read the request, answer nothing for `seconds` (cut short when the server stops), then
    play `then`, or close the connection without any response."""

    seconds: float
    then: Action | None = None


@dataclass(frozen=True)
class CloseMidStream:
    """200 and the first events (the deltas of `text`), a stall of `stall` seconds, then the socket
    is closed without the terminating chunk. A non-stream request gets half its JSON body."""

    text: str = "The partial"
    stall: float = 0.0


@dataclass(frozen=True)
class Truncated:
    """200 whose body ends cleanly but too early: a stream without its closing events (finish
    reason, usage, [DONE] / message_stop), or half a JSON body with a matching content-length."""

    text: str = "The partial"


@dataclass(frozen=True)
class Malformed:
    """200 application/json whose body is not JSON."""

    body: bytes = b'{"id": "broken", "choices": [{"index": 0, "message": {"content": "Hel'


@dataclass(frozen=True)
class MalformedEvent:
    """200 text/event-stream whose second event's data is not JSON."""


@dataclass(frozen=True)
class EmptyBody:
    """200 with no body (application/json, or text/event-stream for a stream request)."""


Action = Succeed | Status | Hang | CloseMidStream | Truncated | Malformed | MalformedEvent | EmptyBody
# Lower-case names, so scripts read as sentences: server.script(status(429), succeed()).
succeed, status, hang, truncated, malformed = Succeed, Status, Hang, Truncated, Malformed
close_mid_stream, malformed_event, empty_body = CloseMidStream, MalformedEvent, EmptyBody


def split_deltas(text: str) -> list[str]:
    """The stream deltas of `text`: words with their leading space, as the real APIs send them
    ("The capital." -> ["The", " capital."])."""
    return [piece for piece in re.split(r"(?<=\S)(?=\s)", text) if piece]


# --- wire bodies (shapes from recorded OpenAI / Anthropic traffic) ------------------------------

_OPENAI_ERRORS: Mapping[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-test. You can find your API key at https://platform.openai.com/account/api-keys."),
    404: ("invalid_request_error", "model_not_found", "The model does not exist or you do not have access to it."),
    # No "try again in 20s" in the text (llmclient would parse it): only scripted headers say when.
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests per min (RPM)."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The server is overloaded or not ready yet."),
}
_ANTHROPIC_ERRORS: Mapping[int, tuple[str, str]] = {
    400: ("invalid_request_error", "Invalid request."),
    401: ("authentication_error", "invalid x-api-key"),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: not found"),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    503: ("api_error", "Service unavailable"),  # api_error for any 5xx but 529
    529: ("overloaded_error", "Overloaded"),
}
_NO_CACHE = {"cache_creation_input_tokens": 0, "cache_read_input_tokens": 0}


def error_body(wire: Wire, action: Status) -> dict[str, Any]:
    server_side = action.code >= 500
    if wire == "openai":
        default = ("server_error" if server_side else "invalid_request_error", None, f"HTTP {action.code}")
        kind, code, text = _OPENAI_ERRORS.get(action.code, default)
        return {"error": {"message": action.message or text, "type": action.error_type or kind, "param": None, "code": code}}
    kind, text = _ANTHROPIC_ERRORS.get(action.code, ("api_error" if server_side else "invalid_request_error", f"HTTP {action.code}"))
    return {"type": "error", "error": {"type": action.error_type or kind, "message": action.message or text},
            "request_id": "req_faultserver"}


def _openai_usage(action: Succeed) -> dict[str, Any]:
    return {"prompt_tokens": action.input_tokens, "completion_tokens": action.output_tokens,
            "total_tokens": action.input_tokens + action.output_tokens,
            "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
            "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0,
                                          "rejected_prediction_tokens": 0}}


def _anthropic_usage(input_tokens: int, output_tokens: int) -> dict[str, Any]:
    return {"input_tokens": input_tokens, **_NO_CACHE, "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
            "output_tokens": output_tokens, "service_tier": "standard"}


def success_body(wire: Wire, action: Succeed, model: str, ident: str) -> dict[str, Any]:
    if wire == "openai":
        message: dict[str, Any] = {"role": "assistant", "content": action.text, "refusal": None, "annotations": []}
        return {"id": ident, "object": "chat.completion", "created": int(time.time()), "model": model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": "stop"}],
                "usage": _openai_usage(action), "service_tier": "default", "system_fingerprint": "fp_faultserver"}
    return {"id": ident, "type": "message", "role": "assistant", "model": model,
            "content": [{"type": "text", "text": action.text}], "stop_reason": "end_turn", "stop_sequence": None,
            "usage": _anthropic_usage(action.input_tokens, action.output_tokens)}


def _sse(data: Any, event: str | None = None) -> bytes:
    line = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return (f"event: {event}\n" if event else "").encode() + f"data: {line}\n\n".encode()


def stream_events(wire: Wire, action: Succeed, model: str, ident: str, *, include_usage: bool, complete: bool = True) -> list[bytes]:
    """The SSE events of a streamed answer; `complete=False` stops after the text deltas."""
    deltas = split_deltas(action.text)
    if wire == "openai":
        base = {"id": ident, "object": "chat.completion.chunk", "created": int(time.time()), "model": model,
                "service_tier": "default", "system_fingerprint": "fp_faultserver"}

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> bytes:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return _sse({**base, "choices": choices, **({"usage": None} if include_usage else {}), **extra})

        events = [chunk({"role": "assistant", "content": "", "refusal": None})] + [chunk({"content": d}) for d in deltas]
        if not complete:
            return events
        usage = [chunk(None, usage=_openai_usage(action))] if include_usage else []
        return [*events, chunk({}, "stop"), *usage, _sse("[DONE]")]
    message: dict[str, Any] = {"model": model, "id": ident, "type": "message", "role": "assistant", "content": [],
               "stop_reason": None, "stop_sequence": None, "usage": _anthropic_usage(action.input_tokens, 1)}
    events = [_sse({"type": "message_start", "message": message}, "message_start"),
              _sse({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}, "content_block_start"),
              _sse({"type": "ping"}, "ping")]
    events += [_sse({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": d}}, "content_block_delta")
               for d in deltas]
    if not complete:
        return events
    final = {"input_tokens": action.input_tokens, **_NO_CACHE, "output_tokens": action.output_tokens}
    return [*events, _sse({"type": "content_block_stop", "index": 0}, "content_block_stop"),
            _sse({"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None}, "usage": final}, "message_delta"),
            _sse({"type": "message_stop"}, "message_stop")]


# --- the server ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class RecordedRequest:
    arrived: float  # time.monotonic() once the request line and headers were read
    method: str
    path: str  # with the query string, exactly as sent
    headers: Mapping[str, str]  # lower-case names
    body: Any  # parsed JSON, or None when the body is not JSON
    raw: bytes

    @property
    def route(self) -> str:
        return self.path.partition("?")[0]

    @property
    def stream(self) -> bool:
        return isinstance(self.body, dict) and self.body.get("stream") is True


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive and chunked bodies, like the real APIs
    # Headers and body go out in separate writes: with Nagle's algorithm on, the client's delayed
    # ACK holds the body back ~40 ms per response.
    disable_nagle_algorithm = True
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - the base class's name
        pass  # otherwise every request prints a line on stderr

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        arrived = time.monotonic()
        raw = self.rfile.read(int(self.headers.get("content-length") or 0))
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        request = RecordedRequest(arrived, self.command, self.path, {k.lower(): v for k, v in self.headers.items()}, body, raw)
        wire = WIRE_BY_PATH.get(request.route)
        action = self.server.owner._take(request, scripted=wire is not None)
        if wire is None:  # recorded (a test can assert the path) without using up a scripted action
            message = f"fault server: no route {request.route!r}; it serves {sorted(WIRE_BY_PATH)}"
            self._json(404, {"error": {"message": message, "type": "invalid_request_error", "code": "unknown_url"}})
            return
        self._play(action, wire, request)

    def _play(self, action: Action, wire: Wire, request: RecordedRequest) -> None:
        owner = self.server.owner
        model = str(request.body.get("model", "")) if isinstance(request.body, dict) else ""
        ident = owner._next_id(wire)
        if isinstance(action, Succeed):
            if request.stream:
                options = request.body.get("stream_options") or {}
                include_usage = isinstance(options, dict) and options.get("include_usage") is True
                self._sse(stream_events(wire, action, action.model or model, ident, include_usage=include_usage))
            else:
                self._json(200, success_body(wire, action, action.model or model, ident))
        elif isinstance(action, Status):
            self._json(action.code, error_body(wire, action) if action.body is None else action.body, action.headers)
        elif isinstance(action, Hang):
            if owner._stopping.wait(action.seconds) or action.then is None:
                self.close_connection = True  # no answer at all: the client sees the connection drop
            else:
                self._play(action.then, wire, request)
        elif isinstance(action, CloseMidStream | Truncated):
            self._partial(action, wire, request, model, ident)
        elif isinstance(action, Malformed):
            self._json(200, action.body)
        elif isinstance(action, MalformedEvent):
            first = stream_events(wire, Succeed(), model, ident, include_usage=False, complete=False)[0]
            self._sse([first, _sse('{"choices": [{"delta": {"content": "oops"', "content_block_delta" if wire == "anthropic" else None)])
        else:
            self._head(200, {"content-type": "text/event-stream" if request.stream else "application/json", "content-length": "0"})

    def _head(self, code: int, headers: Mapping[str, str]) -> None:
        self.send_response(code)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()

    def _json(self, code: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        data = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
        extra = {name.lower(): value for name, value in (headers or {}).items()}
        self._head(code, {"content-type": "application/json", **extra, "content-length": str(len(data))})
        self.wfile.write(data)

    def _sse(self, events: list[bytes], *, terminate: bool = True) -> None:
        self._head(200, {"content-type": "text/event-stream; charset=utf-8", "cache-control": "no-cache", "transfer-encoding": "chunked"})
        for event in events:  # one HTTP chunk per event, flushed: the client sees each delta as it is sent
            self.wfile.write(f"{len(event):x}\r\n".encode() + event + b"\r\n")
            self.wfile.flush()
        if terminate:
            self.wfile.write(b"0\r\n\r\n")

    def _partial(self, action: CloseMidStream | Truncated, wire: Wire, request: RecordedRequest, model: str, ident: str) -> None:
        """The first part of an answer, then a clean end (Truncated) or a cut (CloseMidStream)."""
        cut = isinstance(action, CloseMidStream)
        if request.stream:
            self._sse(stream_events(wire, Succeed(action.text), model, ident, include_usage=False, complete=False), terminate=not cut)
        else:
            data = json.dumps(success_body(wire, Succeed(action.text), model, ident)).encode()
            half = data[: len(data) // 2]
            # A cut promises the whole length and never delivers it; a truncation promises only half.
            self._head(200, {"content-type": "application/json", "content-length": str(len(data) if cut else len(half))})
            self.wfile.write(half)
        self.wfile.flush()
        if isinstance(action, CloseMidStream):
            self.server.owner._stopping.wait(action.stall)
            self.close_connection = True
            try:
                self.connection.shutdown(socket.SHUT_RDWR)  # FIN now, mid-body: the client's read breaks off
            except OSError:
                pass


class _HTTPServer(HTTPServer):
    """One thread per connection, each registered with the owner so close() can unblock and join it."""

    def __init__(self, owner: FaultServer) -> None:
        self.owner = owner
        super().__init__(("127.0.0.1", 0), _Handler)

    def process_request(self, request: Any, client_address: Any) -> None:
        # Daemon threads, so a server a failing test never closed cannot keep the process alive;
        # close() still joins every one of them.
        thread = threading.Thread(target=self._serve_connection, args=(request, client_address),
                                  name=f"fault-server-conn-{client_address[1]}", daemon=True)
        self.owner._track_connection(thread, request)
        thread.start()

    def _serve_connection(self, request: Any, client_address: Any) -> None:
        try:
            self.finish_request(request, client_address)
        except OSError:
            pass  # the client hung up mid-answer (it timed out, say): normal here
        except Exception as exc:  # a bug in this server: close() reports it rather than a silent drop
            self.owner._record_failure(exc)
        finally:
            self.owner._forget_connection(request)
            self.shutdown_request(request)


class FaultServer:
    """The scripted server: a context manager (or `start()` / `close()`)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._script: deque[Action] = deque()
        self._requests: list[RecordedRequest] = []
        self._ids = itertools.count(1)
        self._stopping = threading.Event()
        self._threads: list[threading.Thread] = []
        self._connections: set[socket.socket] = set()
        self._failures: list[Exception] = []
        self._httpd: _HTTPServer | None = None
        self._accept_thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """`http://127.0.0.1:<port>`: OpenAI clients take `{url}/v1`, Anthropic ones `url` itself."""
        if self._httpd is None:
            raise RuntimeError("the fault server is not running: use it as a context manager or call start()")
        return f"http://127.0.0.1:{self._httpd.server_address[1]}"

    def script(self, *actions: Action) -> FaultServer:
        """Queue actions; each request takes the next one, and an empty queue answers `succeed()`."""
        with self._lock:
            self._script.extend(actions)
        return self

    @property
    def pending(self) -> int:
        """Scripted actions no request has taken yet."""
        with self._lock:
            return len(self._script)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self._requests)

    def gaps(self) -> list[float]:
        """Seconds between consecutive arrivals: what a retry waited, how a rate limiter spaced calls."""
        arrivals = [request.arrived for request in self.requests]
        return [later - earlier for earlier, later in zip(arrivals, arrivals[1:])]

    def start(self) -> FaultServer:
        self._stopping.clear()
        self._httpd = _HTTPServer(self)
        # A short poll interval, because shutdown() waits for the accept loop to notice it.
        self._accept_thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.005},
                                               name="fault-server-accept", daemon=True)
        self._accept_thread.start()
        return self

    def close(self) -> None:
        if self._httpd is None:
            return
        self._stopping.set()  # releases every Hang and stall
        self._httpd.shutdown()  # no connection is accepted after this returns
        with self._lock:
            connections, threads = list(self._connections), list(self._threads)
        for connection in connections:  # an idle keep-alive connection blocks its thread in a read
            try:
                connection.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        for thread in [*threads, self._accept_thread]:
            if thread is not None:
                thread.join(timeout=5)
        self._httpd.server_close()
        self._httpd = None
        stuck = [thread.name for thread in threads if thread.is_alive()]
        if stuck:
            raise RuntimeError(f"fault server threads did not stop: {stuck}")
        if self._failures:
            raise RuntimeError(f"the fault server itself failed {len(self._failures)} time(s)") from self._failures[0]

    def __enter__(self) -> FaultServer:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _take(self, request: RecordedRequest, *, scripted: bool) -> Action:
        with self._lock:
            self._requests.append(request)
            return self._script.popleft() if self._script and scripted else Succeed()

    def _next_id(self, wire: Wire) -> str:
        number = next(self._ids)
        return f"chatcmpl-fault{number:04d}" if wire == "openai" else f"msg_fault{number:04d}"

    def _track_connection(self, thread: threading.Thread, connection: socket.socket) -> None:
        with self._lock:
            self._threads = [t for t in self._threads if t.is_alive()] + [thread]
            self._connections.add(connection)

    def _forget_connection(self, connection: socket.socket) -> None:
        with self._lock:
            self._connections.discard(connection)

    def _record_failure(self, exc: Exception) -> None:
        with self._lock:
            self._failures.append(exc)


@pytest.fixture
def fault_server() -> Iterator[FaultServer]:
    """A running FaultServer, closed (threads joined) after the test."""
    with FaultServer() as server:
        yield server
