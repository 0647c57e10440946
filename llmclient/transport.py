"""HTTP for every call: pooled connections, JSON bodies that stream attached files from disk, a
deadline for the whole call, and the hook test doubles answer through.

- Bodies: `json_body` serialises a wire's JSON. A body holding `FileData` (an inline image or
  PDF) becomes a `FileBody`: the JSON text around each file, and the file's base64 read from disk
  (or sliced from the part's data) in chunks as the body is sent, with the Content-Length known
  up front. A file whose size changed after it was attached is refused, before sending and while
  streaming.
- Deadline: `deadline(seconds)` bounds connect, TLS, every write and every read of the requests
  made inside it by the time left, so a server that drips a byte at a time cannot outlive the
  call's timeout. Sync connections get it from their network backend; async calls from
  `asyncio.timeout` in the pipeline's async shell.
- `interceptor`: set by `llmclient.testing` (mock provider, simulated faults); asked before the
  request reaches httpx, hence before a cassette replay too (vcrpy patches httpx's transports).
"""

from __future__ import annotations

import base64
import json
import os
import ssl
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TYPE_CHECKING, Any

import httpcore
import httpx

from llmclient.errors import InvalidRequestError
from llmclient.wire import FileData

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec
    from llmclient.types import FilePart

Interceptor = Callable[[httpx.Request, "ProviderSpec"], "httpx.Response | None"]
interceptor: Interceptor | None = None
"""Answers a request with a response, raises an httpx error, or returns None to let it through."""

_tls_context: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def shared_tls_context() -> ssl.SSLContext:
    """One TLS context for the process. Building one loads the CA bundle (~20 ms, paid by every
    new client otherwise); a context is safe to share across connections, clients and threads."""
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            _tls_context = httpx.create_ssl_context()
        return _tls_context


# --- request bodies ------------------------------------------------------------------------------

# A multiple of 3, so each chunk encodes without padding and the chunks' base64 concatenates.
_RAW_CHUNK = 3 * 64 * 1024
_BASE64_CHUNK = 256 * 1024


def json_body(body: dict[str, Any]) -> bytes | FileBody:
    """The body as sent: compact UTF-8 JSON, or a `FileBody` when it carries files."""
    try:
        return json.dumps(body, ensure_ascii=False, separators=(",", ":"), allow_nan=False).encode()
    except TypeError:  # a FileData (anything else is refused by the slow path too)
        return FileBody(_pieces(body))
    except ValueError as exc:
        raise InvalidRequestError(f"the request holds a number JSON cannot carry ({exc}); send finite numbers") from exc


def _pieces(body: Any) -> list[bytes | FileData]:
    out: list[bytes | FileData] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            out.append("".join(text).encode())
            text.clear()

    def walk(value: Any) -> None:
        if isinstance(value, FileData):
            text.append('"' + json.dumps(value.prefix)[1:-1])
            flush()
            out.append(value)
            text.append('"')
        elif isinstance(value, dict):
            text.append("{")
            for index, (key, item) in enumerate(value.items()):
                text.append(("," if index else "") + json.dumps(str(key), ensure_ascii=False) + ":")
                walk(item)
            text.append("}")
        elif isinstance(value, (list, tuple)):
            text.append("[")
            for index, item in enumerate(value):
                text.append("," if index else "")
                walk(item)
            text.append("]")
        else:
            try:
                text.append(json.dumps(value, ensure_ascii=False, allow_nan=False))
            except (TypeError, ValueError) as exc:
                raise InvalidRequestError(f"the request holds a value JSON cannot carry: {value!r:.80} ({exc})") from exc

    walk(body)
    flush()
    return out


class FileBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """JSON text with each file's base64 between the pieces; iterable again (a resend)."""

    def __init__(self, pieces: list[bytes | FileData]) -> None:
        self.pieces = pieces
        self.length = sum(len(piece) if isinstance(piece, bytes) else _encoded_length(piece.part) for piece in pieces)

    def __iter__(self) -> Iterator[bytes]:
        for piece in self.pieces:
            if isinstance(piece, bytes):
                yield piece
            elif piece.part.path is not None:
                yield from _from_disk(piece.part)
            else:
                data = piece.part.data or ""
                for start in range(0, len(data), _BASE64_CHUNK):
                    yield data[start : start + _BASE64_CHUNK].encode("ascii")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Disk reads of 192 KiB block the event loop for well under a millisecond from the page
        # cache; a thread hop per chunk would cost more than it saves.
        for chunk in self:
            yield chunk


def _encoded_length(part: FilePart) -> int:
    if part.path is None:
        return len(part.data or "")
    try:
        size = os.stat(part.path).st_size
    except OSError as exc:
        raise InvalidRequestError(f"{part.name}: the attached file {part.path} can no longer be read ({exc.strerror}); "
                                  f"nothing was sent") from exc
    if size != part.size:
        raise _changed(part, size)
    return 4 * ((size + 2) // 3)


def _from_disk(part: FilePart) -> Iterator[bytes]:
    assert part.path is not None and part.size is not None
    left = part.size
    with open(part.path, "rb") as source:
        while left > 0 and (chunk := source.read(min(_RAW_CHUNK, left))):  # a buffered read fills the chunk
            left -= len(chunk)
            yield base64.b64encode(chunk)
        if left or source.read(1):  # the Content-Length sent promised the size attached
            raise _changed(part, part.size - left if left else None)


def _changed(part: FilePart, size: int | None) -> InvalidRequestError:
    now = f"{size} bytes now" if size is not None else "it has grown since"
    return InvalidRequestError(f"{part.name}: the attached file {part.path} changed after it was attached "
                               f"({part.size} bytes then, {now}); attach it again")


def build_request(method: str, url: str, headers: Mapping[str, str], body: bytes | FileBody) -> httpx.Request:
    if isinstance(body, bytes):
        return httpx.Request(method, url, headers=headers, content=body)
    # Given a stream, httpx adds neither Host nor Content-Length itself.
    request = httpx.Request(method, url, headers={**headers, "content-length": str(body.length)}, stream=body)
    request.headers.setdefault("host", request.url.netloc.decode("ascii"))
    return request


# --- the deadline --------------------------------------------------------------------------------

_deadline: ContextVar[float | None] = ContextVar("llmclient_deadline", default=None)


@contextmanager
def deadline(seconds: float | None) -> Iterator[None]:
    """Every network operation inside the block ends by `seconds` from now (None: no bound)."""
    token = _deadline.set(None if seconds is None else time.monotonic() + seconds)
    try:
        yield
    finally:
        _deadline.reset(token)


def _bounded(timeout: float | None, error: type[Exception]) -> float | None:
    end = _deadline.get()
    if end is None:
        return timeout
    left = end - time.monotonic()
    if left <= 0:
        raise error("the call's timeout ran out")
    return left if timeout is None else min(timeout, left)


class _DeadlineStream(httpcore.NetworkStream):
    def __init__(self, inner: httpcore.NetworkStream) -> None:
        self._inner = inner

    def read(self, max_bytes: int, timeout: float | None = None) -> bytes:
        return self._inner.read(max_bytes, _bounded(timeout, httpcore.ReadTimeout))

    def write(self, buffer: bytes, timeout: float | None = None) -> None:
        self._inner.write(buffer, _bounded(timeout, httpcore.WriteTimeout))

    def close(self) -> None:
        self._inner.close()

    def start_tls(self, ssl_context: ssl.SSLContext, server_hostname: str | None = None,
                  timeout: float | None = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.start_tls(ssl_context, server_hostname, _bounded(timeout, httpcore.ConnectTimeout)))

    def get_extra_info(self, info: str) -> Any:
        return self._inner.get_extra_info(info)


class _DeadlineBackend(httpcore.NetworkBackend):
    def __init__(self, inner: httpcore.NetworkBackend) -> None:
        self._inner = inner

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        bounded = _bounded(timeout, httpcore.ConnectTimeout)
        return _DeadlineStream(self._inner.connect_tcp(host, port, bounded, local_address, socket_options))

    def connect_unix_socket(self, path: str, timeout: float | None = None, socket_options: Any = None) -> httpcore.NetworkStream:
        return _DeadlineStream(self._inner.connect_unix_socket(path, _bounded(timeout, httpcore.ConnectTimeout), socket_options))

    def sleep(self, seconds: float) -> None:
        self._inner.sleep(seconds)


class _DeadlineTransport(httpx.HTTPTransport):
    """httpx's own transport (so vcrpy's patch of it still records and replays), its connection
    pool reading and writing through `_DeadlineBackend`."""

    def __init__(self) -> None:
        super().__init__(verify=shared_tls_context(), limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
        pool = self._pool
        pool._network_backend = _DeadlineBackend(pool._network_backend)  # no public setter


def sync_client(timeout: float) -> httpx.Client:
    return httpx.Client(transport=_DeadlineTransport(), timeout=timeout)


def async_client(timeout: float) -> httpx.AsyncClient:
    transport = httpx.AsyncHTTPTransport(verify=shared_tls_context(),
                                         limits=httpx.Limits(max_connections=256, max_keepalive_connections=64))
    return httpx.AsyncClient(transport=transport, timeout=timeout)
