"""HTTP for every call: pooled connections, JSON bodies that stream attached files from disk, a
deadline for the whole call, and the hook test doubles answer through.

- Bodies: `json_body` serialises a wire's JSON. A body holding `FileData` (an inline image or
  PDF) becomes a `FileBody`: the JSON text around each file, and the file's base64 read from disk
  (or sliced from the part's data) in chunks as the body is sent, with the Content-Length known
  up front. A file whose size changed after it was attached is refused, before sending and while
  streaming.
- Deadline: `deadline(seconds)` bounds connect, TLS, every write and every read of the requests
  made inside it by the time left, so a server that drips a byte at a time cannot outlive the
  call's timeout. Sync connections get it from their network backend (`sync_transport`); async
  calls from `asyncio.timeout` in the pipeline's async shell.
- `interceptor`: set by `llmclient.testing` (mock provider, simulated faults); asked before the
  request reaches httpx, hence before a cassette replay too (vcrpy patches httpx's transports).
"""

from __future__ import annotations

import asyncio
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

import httpx

from llmclient.errors import InvalidRequestError, LLMError
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
    except UnicodeEncodeError as exc:
        raise _unpaired(exc) from exc
    except ValueError as exc:
        raise InvalidRequestError(f"the request holds a number JSON cannot carry ({exc}); send finite numbers") from exc


def _unpaired(exc: UnicodeEncodeError) -> InvalidRequestError:
    return InvalidRequestError(f"the request's text holds {exc.object[exc.start:exc.end]!r}, a lone UTF-16 surrogate "
                               f"that UTF-8 cannot carry (text decoded with errors='surrogateescape'?); fix the text")


def _pieces(body: Any) -> list[bytes | FileData]:
    out: list[bytes | FileData] = []
    text: list[str] = []

    def flush() -> None:
        if text:
            try:
                out.append("".join(text).encode())
            except UnicodeEncodeError as exc:
                raise _unpaired(exc) from exc
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


def left(timeout: float | None) -> float | None:
    """`timeout` cut to what is left of the current deadline; 0 or less when it has run out."""
    end = _deadline.get()
    if end is None:
        return timeout
    remaining = end - time.monotonic()
    return remaining if timeout is None else min(timeout, remaining)


def sync_client(timeout: float) -> httpx.Client:
    from llmclient.sync_transport import DeadlineTransport  # httpcore: only for sync calls

    return httpx.Client(transport=DeadlineTransport(shared_tls_context()), timeout=timeout)


# --- async: aiohttp -------------------------------------------------------------------------------
# httpx's async pool costs O(connections x waiting requests) per request (457 req/s at 64 in
# flight, against aiohttp's 7,000 on the same machine), so async calls go through aiohttp. Its
# answer is handed on as an httpx.Response (the body read, or streamed through `_AiohttpBody`)
# and its errors as httpx's, so everything above the transport has one response type.


def async_session(timeout: float) -> Any:
    """An aiohttp session for the running loop: a pooled connector, no total timeout (the pipeline
    bounds each attempt whole itself), `timeout` for connecting and for each read."""
    import aiohttp

    connector = aiohttp.TCPConnector(limit=256)  # aiohttp's own verified TLS context, made once at its import
    limits = aiohttp.ClientTimeout(total=None, sock_connect=timeout, sock_read=timeout)
    return aiohttp.ClientSession(connector=connector, timeout=limits, auto_decompress=True)


# aiohttp sets these itself from the body it is given.
_AIOHTTP_OWN = frozenset({"host", "content-length", "transfer-encoding"})


async def async_send(session: Any, request: httpx.Request, *, stream: bool) -> httpx.Response:
    """Send `request` with aiohttp; the answer's body is read unless `stream` (and 2xx)."""
    body = request.stream if isinstance(request.stream, FileBody) else request.content
    headers = {k: v for k, v in request.headers.items() if k not in _AIOHTTP_OWN}
    if isinstance(body, FileBody):
        headers["content-length"] = str(body.length)  # sent whole, not chunked
    try:
        # No redirects: following one would send the key to wherever it points (and turn the POST
        # into a GET); a 3xx is an error answer like any other.
        answer = await session.request(request.method, str(request.url), data=body, headers=headers,
                                       allow_redirects=False)
        status = answer.status
        # aiohttp has decoded the body already: httpx must not try again.
        head = [(k.decode("latin-1"), v.decode("latin-1")) for k, v in answer.raw_headers
                if k.lower() not in (b"content-encoding", b"content-length", b"transfer-encoding")]
        if stream and status < 300:
            return httpx.Response(status, headers=head, stream=_AiohttpBody(answer, request), request=request)
        try:
            content = await answer.read()
        finally:
            answer.release()
    except Exception as exc:
        if isinstance(exc.__cause__, LLMError):  # ours, raised while aiohttp sent the body (a file changed)
            raise exc.__cause__ from None
        raise as_httpx_error(exc, request) from exc
    return httpx.Response(status, headers=head, content=content, request=request)


def as_httpx_error(exc: Exception, request: httpx.Request) -> Exception:
    """aiohttp's failure as the httpx error it amounts to (anything else as it is)."""
    import aiohttp

    kinds: list[tuple[type[BaseException], type[httpx.TransportError]]] = [
        (aiohttp.ServerTimeoutError, httpx.ReadTimeout),
        (aiohttp.ConnectionTimeoutError, httpx.ConnectTimeout),
        (aiohttp.ClientConnectorError, httpx.ConnectError),
        (aiohttp.ServerDisconnectedError, httpx.RemoteProtocolError),
        (aiohttp.ClientPayloadError, httpx.ReadError),
        (aiohttp.ClientError, httpx.NetworkError),
        (asyncio.TimeoutError, httpx.ReadTimeout),
    ]
    for kind, mapped in kinds:
        if isinstance(exc, kind):
            # aiohttp's response errors print the URL, whose query may hold the key: their
            # message alone is kept.
            message = exc.message if isinstance(exc, aiohttp.ClientResponseError) else str(exc)
            return mapped(str(message) or type(exc).__name__, request=request)
    return exc


class _AiohttpBody(httpx.AsyncByteStream):
    """An aiohttp answer's body as httpx reads a stream, its failures as httpx's."""

    def __init__(self, answer: Any, request: httpx.Request) -> None:
        self._answer = answer
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._answer.content.iter_any():
                yield chunk
        except Exception as exc:
            raise as_httpx_error(exc, self._request) from exc

    async def aclose(self) -> None:
        self._answer.release()
