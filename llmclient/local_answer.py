"""Answers made in this process, not over HTTP (the litellm route, `claude -p`): each is handed to
the pipeline as an HTTP answer in the OpenAI chat-completions format, which `llmclient.wire.openai`
decodes like any provider's. The pieces both routes share: the request that goes on no wire, the
fault hook of `llmclient.testing` as every provider has it, the answers and their SSE framing.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import httpx

from llmclient import transport

if TYPE_CHECKING:
    from llmclient.pipeline import Pipeline

SSE_HEADERS = {"content-type": "text/event-stream"}
JSON_HEADERS = {"content-type": "application/json"}


def unsent(route: str, **extensions: Any) -> httpx.Request:
    """The request of a call that goes on no wire: `extensions` carry the call; the URL (`.invalid`
    never resolves, RFC 6761) names the route wherever a request is shown."""
    return httpx.Request("POST", f"http://{route}.invalid/", extensions=extensions)


def intercepted(request: httpx.Request, pipeline: Pipeline) -> httpx.Response | None:
    """The answer `llmclient.testing` simulates for this call (a fault), if any, as for any provider."""
    hook = transport.interceptor
    return hook(request, pipeline.spec) if hook is not None else None


def json_answer(content: bytes, request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=JSON_HEADERS, content=content, request=request)


def stream_answer(stream: httpx.SyncByteStream | httpx.AsyncByteStream, request: httpx.Request) -> httpx.Response:
    return httpx.Response(200, headers=SSE_HEADERS, stream=stream, request=request)


def sse(data: str | None) -> bytes:
    """One SSE event carrying `data` (a chunk's JSON); None: the closing [DONE]."""
    return b"data: [DONE]\n\n" if data is None else b"data: " + data.encode() + b"\n\n"
