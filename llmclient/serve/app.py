"""The FastAPI app of `llmclient serve`.

`POST /v1/chat/completions` reads the OpenAI body (`openai_in`), runs it through one cached
`llmclient.Client` per model name (`acomplete` / `astream`) and writes the answer back
(`openai_out`). Headers of every answer: `x-llmclient-model`, "<provider>/<model id>" of the model
that answered (after a fallback, the fallback's; the id as the provider reported it, e.g. a dated
one, except in a stream, whose headers go before the answer: there the id llmclient asked for);
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

Errors are OpenAI-shaped (`llmclient.serve.errors`). With a server key (`LLMCLIENT_SERVER_KEY`),
every request needs `Authorization: Bearer <key>` (compared in constant time); that key is never
sent on: providers' keys come from llmclient's own settings. A body over `max_body_bytes` is
refused with 413, by its Content-Length and by counting while it is read (a chunked body too).
"""

from __future__ import annotations

import hmac
import json
import os
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from fastapi import FastAPI
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.requests import Request as HTTPRequest
from starlette.responses import JSONResponse, Response as HTTPResponse, StreamingResponse

from llmclient.client import Client
from llmclient.serve import errors, openai_out
from llmclient.serve.catalog import model_list
from llmclient.serve.openai_in import BadBody, ChatCall, parse_chat
from llmclient.streaming import AsyncStream
from llmclient.types import StreamEvent

DEFAULT_MAX_BODY_BYTES = 16 * 1024 * 1024
SERVER_KEY_ENV = "LLMCLIENT_SERVER_KEY"


class _State:
    def __init__(self, server_key: str | None, max_body_bytes: int, replay: Any) -> None:
        self.server_key = server_key
        self.max_body_bytes = max_body_bytes
        self.replay = replay
        self.clients: dict[str, Client] = {}

    def client(self, model: str) -> Client:
        client = self.clients.get(model)
        if client is None:
            client = self.clients[model] = Client(model)
        return client

    def secrets(self) -> list[str]:
        return errors.secrets(self.server_key)

    def error(self, exc: BaseException, *, resolving: bool = False) -> JSONResponse:
        status, document, headers = errors.answer(exc, self.secrets(), resolving=resolving)
        return JSONResponse(document, status_code=status, headers=headers)

    def refused(self, request: HTTPRequest) -> JSONResponse | None:
        """401 unless the request carries the server key (when one is set)."""
        if not self.server_key:
            return None
        scheme, _, given = request.headers.get("authorization", "").partition(" ")
        if scheme.lower() == "bearer" and hmac.compare_digest(given.strip().encode(), self.server_key.encode()):
            return None
        message = "missing or wrong API key: send Authorization: Bearer <the server's LLMCLIENT_SERVER_KEY>"
        return JSONResponse(errors.body(message, "invalid_request_error", code="invalid_api_key"), status_code=401,
                            headers={"www-authenticate": "Bearer"})


def create_app(*, server_key: str | None = None, max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
               replay: str | Path | None = None) -> FastAPI:
    """The app. `server_key` defaults to `LLMCLIENT_SERVER_KEY` (unset or empty: no key needed);
    `replay` is a cassettes directory to answer from (`llmclient.serve.replay`)."""
    if server_key is None:
        server_key = os.environ.get(SERVER_KEY_ENV) or None
    index = None
    lifespan = None
    if replay is not None:
        from llmclient.serve.replay import ReplayIndex, lifespan as replay_lifespan

        index = ReplayIndex(Path(replay))
        lifespan = replay_lifespan
    state = _State(server_key, max_body_bytes, index)
    app = FastAPI(title="llmclient serve", docs_url=None, redoc_url=None, openapi_url=None, lifespan=lifespan)
    app.state.llmclient = state

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: HTTPRequest, exc: StarletteHTTPException) -> JSONResponse:
        code = "not_found" if exc.status_code == 404 else "method_not_allowed" if exc.status_code == 405 else None
        return JSONResponse(errors.body(f"{request.method} {request.url.path}: {exc.detail}", "invalid_request_error",
                                        code=code), status_code=exc.status_code)

    @app.get("/v1/models")
    async def models(request: HTTPRequest) -> HTTPResponse:
        refused = state.refused(request)
        if refused is not None:
            return refused
        try:
            listed = model_list(state.replay)
        except Exception as exc:
            return state.error(exc)
        return JSONResponse({"object": "list", "data": listed})

    @app.post("/v1/chat/completions")
    async def chat(request: HTTPRequest) -> HTTPResponse:
        refused = state.refused(request)
        if refused is not None:
            return refused
        try:
            call = parse_chat(await _json(request, state.max_body_bytes))
        except BadBody as exc:
            return state.error(exc)
        try:
            client = state.client(call.model)
        except Exception as exc:
            return state.error(exc, resolving=True)
        if state.replay is not None:
            state.replay.activate(request.headers.get("x-llmclient-cassette"))  # this request's calls answer from there
        if call.stream:
            return await _streamed(state, client, call)
        try:
            response = await client.acomplete(call.messages, **call.options)
        except Exception as exc:
            return state.error(exc)
        headers = {"x-llmclient-model": openai_out.answered_by(response)}
        cost = openai_out.cost_text(response.cost)
        if cost is not None:
            headers["x-llmclient-cost-usd"] = cost
        document = openai_out.completion(response, call.model, openai_out.new_id())
        return HTTPResponse(openai_out.dumps(document, response.cost), media_type="application/json", headers=headers)

    return app


async def _json(request: HTTPRequest, limit: int) -> Any:
    """The body as JSON; 413 over `limit` bytes (declared or counted), 400 when it is not JSON."""
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.strip().isdigit() or int(declared) > limit):
        raise _too_large(limit)
    received = bytearray()
    async for chunk in request.stream():
        received += chunk
        if len(received) > limit:
            raise _too_large(limit)
    try:
        return json.loads(received)
    except (ValueError, UnicodeDecodeError) as exc:
        raise BadBody(f"the request body is not valid JSON ({exc})", code="invalid_json") from exc


def _too_large(limit: int) -> BadBody:
    return BadBody(f"the request body is over the server's limit of {limit} bytes (llmclient serve --max-body-mb)",
                   status=413, code="request_too_large")


async def _streamed(state: _State, client: Client, call: ChatCall) -> HTTPResponse:
    try:
        stream = client.astream(call.messages, **call.options)
        events = stream.__aiter__()
        first: StreamEvent | None = await anext(events)  # sends (retries, falls back) before the status line
    except StopAsyncIteration:
        first = None
    except Exception as exc:
        return state.error(exc)
    headers = {"x-llmclient-model": stream.answered_by, "cache-control": "no-cache"}  # a fallback's when one answered
    return StreamingResponse(_sse(state, stream, events, first, call), media_type="text/event-stream", headers=headers)


async def _sse(state: _State, stream: AsyncStream, events: AsyncIterator[StreamEvent], first: StreamEvent | None,
               call: ChatCall) -> AsyncIterator[bytes]:
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
        await stream.aclose()
