"""The FastAPI app of `llmclient serve`.

`POST /v1/chat/completions` reads the OpenAI body (`openai_in`), runs it through one cached
`llmclient.Client` per model name (`acomplete` / `astream`; the last `max_clients`, 64, model
names are kept, an evicted Client closed once no request uses it) and writes the answer back
(`openai_out`). Headers of every answer: `x-llmclient-model`, "<provider>/<model id>" of the model
that answered (after a fallback, the fallback's; the id as the provider reported it, e.g. a dated
one, except in a stream, whose headers go before the answer: there the id llmclient asked for),
percent-encoded (UTF-8, RFC 3986) outside visible ASCII and for "%" (`openai_out.header_text`:
"mock/模型" is sent as "mock/%E6%A8%A1%E5%9E%8B"; `urllib.parse.unquote` gives the id back);
`x-llmclient-cost-usd`, the call's cost in USD as
exact decimal digits, ABSENT when the cost is unknown (no price for the model).

Streams (`"stream": true`): the request is sent and retried (and fallen back) before the answer's
status line, so a failure before the first event is an ordinary error answer with its status.
Then `chat.completion.chunk` events, a last chunk with `finish_reason`, and `data: [DONE]`. As
OpenAI does, the usage chunk (no choices, `usage` of the whole call) is sent only when the
request asks for it with `stream_options.include_usage: true`; a stream's cost is known only at
its end, so there is no cost header: it is `usage.cost` in that usage chunk (as OpenRouter sends
it). An error after the first event is an `{"error": {...}}` event, and the stream ends without
[DONE].

Browsers: a web page the user visits can send requests to a loopback server, so (1) a POST must
say `Content-Type: application/json` (else 415): a page can send JSON only after a CORS preflight,
which this server never grants; (2) the `Host` header must be localhost, 127.0.0.1 or [::1] (any
port), or the `host` the server was started on (else 400 `invalid_host`): a page on a domain that
re-resolves to 127.0.0.1 (DNS rebinding) sends its own name. Bound to a wildcard address
(0.0.0.0, ::) any Host is taken; a server bound to anything but loopback refuses to start
without a server key, which is then what protects it.

Errors are OpenAI-shaped (`llmclient.serve.errors`). With a server key (`LLMCLIENT_SERVER_KEY`),
every request needs `Authorization: Bearer <key>` (compared in constant time); that key is never
sent on: providers' keys come from llmclient's own settings. A body over `max_body_bytes` is
refused with 413, by its Content-Length and by counting while it is read (a chunked body too).
"""

from __future__ import annotations

import hmac
import ipaddress
import json
import os
from collections import OrderedDict
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response as HTTPResponse, StreamingResponse

from llmclient.client import Client
from llmclient.errors import ConfigurationError
from llmclient.serve import errors, openai_out
from llmclient.serve.catalog import model_list
from llmclient.serve.openai_in import MAX_NESTING, BadBody, ChatCall, parse_chat, too_deep
from llmclient.streaming import AsyncStream
from llmclient.types import StreamEvent

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
DEFAULT_MAX_CLIENTS = 64
SERVER_KEY_ENV = "LLMCLIENT_SERVER_KEY"
_LOOPBACK_NAMES = frozenset({"localhost", "127.0.0.1", "[::1]"})
_WILDCARDS = frozenset({"0.0.0.0", "::", ""})


def is_loopback(host: str) -> bool:
    """True for an address (or "localhost") that only this machine can reach."""
    if host.strip().lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip().strip("[]")).is_loopback
    except ValueError:
        return False


class _Clients:
    """The last `limit` model names' Clients. An evicted Client is closed (`aclose`) as soon as no
    request uses it: a stream in flight keeps its connections until it ends."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self._cached: OrderedDict[str, Client] = OrderedDict()
        self._users: dict[int, int] = {}  # id(client) -> requests using it now
        self._evicted: dict[int, Client] = {}

    def __len__(self) -> int:
        return len(self._cached)

    def in_use(self) -> int:
        """How many requests hold a Client now."""
        return sum(self._users.values())

    async def acquire(self, model: str) -> Client:
        """The Client for `model` (made on first use), held until `release`."""
        client = self._cached.get(model)
        if client is not None:
            self._cached.move_to_end(model)
        else:
            client = self._cached[model] = Client(model)
        self._users[id(client)] = self._users.get(id(client), 0) + 1  # held before any await below
        while len(self._cached) > self.limit:
            _, old = self._cached.popitem(last=False)
            self._evicted[id(old)] = old
            if not self._users.get(id(old)):
                await self._close(old)
        return client

    async def release(self, client: Client) -> None:
        left = self._users[id(client)] - 1
        if left:
            self._users[id(client)] = left
            return
        del self._users[id(client)]
        if id(client) in self._evicted:
            await self._close(client)

    async def aclose(self) -> None:
        """At shutdown: every Client, cached or evicted."""
        for client in [*self._cached.values(), *self._evicted.values()]:
            await self._close(client)
        self._cached.clear()

    async def _close(self, client: Client) -> None:
        self._evicted.pop(id(client), None)
        try:
            await client.aclose()
            client.close()  # a sync session, should anything have made one
        except Exception:  # never the failure of the request that happened to evict it
            errors.log.exception("llmclient serve: closing the Client of %s failed", client.model)


class _State:
    def __init__(self, server_key: str | None, max_body_bytes: int, replay: Any, fetch_urls: bool,
                 allowed_hosts: frozenset[str] | None, max_clients: int) -> None:
        self.server_key = server_key
        self.max_body_bytes = max_body_bytes
        self.replay = replay
        self.fetch_urls = fetch_urls
        self.allowed_hosts = allowed_hosts  # None: any Host
        self.clients = _Clients(max_clients)

    def secrets(self) -> list[str]:
        return errors.secrets(self.server_key)

    def error(self, exc: BaseException, *, resolving: bool = False) -> JSONResponse:
        status, document, headers = errors.answer(exc, self.secrets(), resolving=resolving)
        return JSONResponse(document, status_code=status, headers=headers)

    async def guarded(self, request: HTTPRequest, handler: Callable[[], Awaitable[HTTPResponse]], *,
                      json_body: bool = False) -> HTTPResponse:
        """`handler`'s answer, once the request passed the Host, key and (`json_body`) content-type
        checks; an exception it raises becomes the OpenAI-shaped error."""
        refused = self.refused(request, json_body)
        if refused is not None:
            return refused
        try:
            return await handler()
        except Exception as exc:
            return self.error(exc)

    def refused(self, request: HTTPRequest, json_body: bool) -> JSONResponse | None:
        """400 for a foreign Host, 401 without the server key (when one is set), 415 for a body
        that does not say it is JSON."""
        host = request.headers.get("host")
        if self.allowed_hosts is not None and host is not None and _hostname(host) not in self.allowed_hosts:
            message = (f"Host {host!r} is not this server's (it answers to {', '.join(sorted(self.allowed_hosts))}): "
                       f"a request from a web page on another domain is refused")
            return JSONResponse(errors.body(message, "invalid_request_error", code="invalid_host"), status_code=400)
        if self.server_key:
            scheme, _, given = request.headers.get("authorization", "").partition(" ")
            if not (scheme.lower() == "bearer"
                    and hmac.compare_digest(given.strip().encode(), self.server_key.encode())):
                message = "missing or wrong API key: send Authorization: Bearer <the server's LLMCLIENT_SERVER_KEY>"
                return JSONResponse(errors.body(message, "invalid_request_error", code="invalid_api_key"),
                                    status_code=401, headers={"www-authenticate": "Bearer"})
        if json_body:
            media_type = request.headers.get("content-type", "").partition(";")[0].strip().lower()
            if media_type != "application/json":
                message = f"the request body must be sent as Content-Type: application/json, got {media_type or 'none'!r}"
                return JSONResponse(errors.body(message, "invalid_request_error", code="unsupported_media_type"),
                                    status_code=415)
        return None


def _hostname(host: str) -> str:
    """A Host header's name without its port, lowercased ("[::1]:8000" -> "[::1]")."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[:host.find("]") + 1] if "]" in host else host
    return host.rpartition(":")[0] if host.count(":") == 1 else host


def _allowed_hosts(host: str | None) -> frozenset[str] | None:
    """The Host names the server answers to (None: any, for a wildcard bind)."""
    name = "localhost" if host is None else host.strip().lower()
    if name in _WILDCARDS:
        return None
    return _LOOPBACK_NAMES | {f"[{name.strip('[]')}]" if ":" in name else name}


def create_app(*, server_key: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               replay: str | Path | None = None, host: str | None = None, fetch_urls: bool = False,
               max_clients: int = DEFAULT_MAX_CLIENTS) -> FastAPI:
    """The app. `server_key` defaults to `LLMCLIENT_SERVER_KEY` (unset or empty: no key needed);
    `replay` is a cassettes directory to answer from (`llmclient.serve.replay`); `host` the address
    it will be bound to (None: loopback), which is refused when it is not loopback and there is no
    server key; `fetch_urls` accepts http(s) image URLs (fetched on the server's network when the
    provider does not fetch them itself; not with `replay`)."""
    if server_key is None:
        server_key = os.environ.get(SERVER_KEY_ENV) or None
    if host is not None and not is_loopback(host) and not server_key:
        raise ConfigurationError(f"llmclient serve --host {host}: a server reachable from other machines needs a key; "
                                 f"set {SERVER_KEY_ENV} (clients then send Authorization: Bearer <it>)")
    if fetch_urls and replay is not None:
        raise ConfigurationError("llmclient serve: --fetch-urls cannot be used with --replay (replay uses no network)")
    if max_clients < 1:
        raise ConfigurationError(f"max_clients must be at least 1, got {max_clients}")
    index = None
    replay_lifespan: Callable[[Any], AbstractAsyncContextManager[None]] | None = None
    if replay is not None:
        from llmclient.serve.replay import ReplayIndex, lifespan as replay_lifespan

        index = ReplayIndex(Path(replay))
    state = _State(server_key, max_body_bytes, index, fetch_urls, _allowed_hosts(host), max_clients)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        try:
            if replay_lifespan is None:
                yield
            else:
                async with replay_lifespan(app):
                    yield
        finally:
            await state.clients.aclose()

    app = FastAPI(title="llmclient serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.llmclient = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: HTTPRequest, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
        return JSONResponse(errors.body(f"{request.method} {request.url.path}: {exc.detail}", "invalid_request_error",
                                        code=code), status_code=exc.status_code)

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> HTTPResponse:
        async def listed() -> HTTPResponse:
            return JSONResponse({"object": "list", "data": model_list(state.replay)})

        return await state.guarded(request, listed)

    @app.post("/v1/chat/completions")
    async def chat(request: HTTPRequest) -> HTTPResponse:
        return await state.guarded(request, lambda: _chat(state, request), json_body=True)

    return app


async def _chat(state: _State, request: HTTPRequest) -> HTTPResponse:
    call = parse_chat(await _json(request, state.max_body_bytes), fetch_urls=state.fetch_urls)
    try:
        client = await state.clients.acquire(call.model)
    except Exception as exc:
        return state.error(exc, resolving=True)
    if state.replay is not None:
        state.replay.activate(request.headers.get("x-llmclient-cassette"))  # this request's calls answer from there
    if call.stream:
        return await _streamed(state, client, call)  # releases the client when the stream ends
    try:
        response = await client.acomplete(call.messages, **call.options)
    finally:
        await state.clients.release(client)
    headers = {"x-llmclient-model": openai_out.header_text(openai_out.answered_by(response))}
    cost = openai_out.cost_text(response.cost)
    if cost is not None:
        headers["x-llmclient-cost-usd"] = cost
    document = openai_out.completion(response, call.model, openai_out.new_id())
    return HTTPResponse(openai_out.dumps(document, response.cost), media_type="application/json", headers=headers)


async def _json(request: HTTPRequest, limit: int) -> Any:
    """The body as JSON; 413 over `limit` bytes (declared or counted), 400 `invalid_json` when it is
    not JSON or nests lists and objects more than `MAX_NESTING` levels deep."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise _too_large(limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_large(limit)
    try:
        body = json.loads(received)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"the request body is not valid JSON ({exc})", code="invalid_json") from exc
    except RecursionError as exc:  # `[[[...]]]` deeper than the interpreter's stack
        raise _too_deep() from exc
    if too_deep(body):  # parsed, but the walks after `json` (checks, encoding, scrubbing) recurse too
        raise _too_deep()
    return body


def _too_deep() -> BadBody:
    return BadBody(f"the request body's lists and objects are nested more than {MAX_NESTING} levels deep: no chat "
                   f"request needs that many; this server does not read it", code="invalid_json")


def _too_large(limit: int) -> BadBody:
    return BadBody(f"the request body is over the server's limit of {limit} bytes (llmclient serve --max-body-mb)",
                   status=413, code="request_too_large")


async def _streamed(state: _State, client: Client, call: ChatCall) -> HTTPResponse:
    """The streamed answer, which releases `client` and closes the upstream stream when it ends;
    until it exists (a failure sending, or building the answer), they are released here."""
    stream: AsyncStream | None = None
    try:
        stream = client.astream(call.messages, **call.options)
        events = stream.__aiter__()
        try:
            first: StreamEvent | None = await anext(events)  # sends (retries, falls back) before the status line
        except StopAsyncIteration:
            first = None
        model = openai_out.header_text(stream.answered_by)  # a fallback's when one answered
        return StreamingResponse(_sse(state, client, stream, events, first, call), media_type="text/event-stream",
                                 headers={"x-llmclient-model": model, "cache-control": "no-cache"})
    except BaseException:
        try:
            if stream is not None:
                await stream.aclose()
        finally:
            await state.clients.release(client)
        raise


async def _sse(state: _State, client: Client, stream: AsyncStream, events: AsyncIterator[StreamEvent],
               first: StreamEvent | None, call: ChatCall) -> AsyncIterator[bytes]:
    chunks = openai_out.Chunks(call.model, openai_out.new_id())
    try:
        yield chunks.first()
        try:
            if first is not None:
                piece = chunks.delta(first)
                if piece is not None:
                    yield piece
                async for event in events:
                    piece = chunks.delta(event)
                    if piece is not None:
                        yield piece
            response = await stream.get_response()
        except Exception as exc:
            _, document, _ = errors.answer(exc, state.secrets())
            yield chunks.error(document)
            return
        yield chunks.finish(response)
        if call.include_usage:
            yield chunks.usage(response)
        yield chunks.done()
    finally:
        try:
            await stream.aclose()
        finally:
            await state.clients.release(client)
