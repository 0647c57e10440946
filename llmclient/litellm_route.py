"""The long tail: `Client("litellm/<litellm model string>")` reaches every provider litellm
supports (Bedrock, Vertex, Azure, ...), with llmclient's retries, rate limits, cost and errors.

litellm builds the request, sends it and parses the answer; its answer (OpenAI chat-completions
JSON, or a stream of chunks) is handed to the pipeline as an HTTP response in that format and
decoded by `llmclient.wire.openai`, so a litellm call is a `Response` like any other. litellm is
imported here only, on the first such call, with the settings DESIGN §3 lists. Built-in providers
never come here.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx

from llmclient.errors import APIConnectionError, ConfigurationError, LLMError, RequestTimeoutError
from llmclient.pipeline import Pipeline
from llmclient.providers import KEYLESS_PLACEHOLDER
from llmclient.request import Request
from llmclient.wire import openai as openai_wire

_litellm: ModuleType | None = None
_import_lock = threading.Lock()


def load_litellm() -> ModuleType:
    """litellm, imported once, never fetching anything from the network, never retrying."""
    global _litellm
    with _import_lock:
        if _litellm is None:
            # Its bundled tables instead of remote fetches at import or on first use, and its
            # pure-Python HTTP path (the native one bypasses httpx, hence cassettes).
            for table in ("MODEL_COST_MAP", "ANTHROPIC_BETA_HEADERS", "AUTOROUTER_PRESETS", "BLOG_POSTS", "POLICY_TEMPLATES"):
                os.environ[f"LITELLM_LOCAL_{table}"] = "True"
            os.environ["LITELLM_RUST"] = "false"
            try:
                import litellm
            except ImportError as exc:
                raise ConfigurationError("the litellm/... provider needs litellm: pip install 'llmclient[litellm]'",
                                         provider="litellm") from exc

            litellm.suppress_debug_info = True
            litellm.disable_hf_tokenizer_download = True  # else llama-3 names download a tokenizer
            logging.getLogger("LiteLLM").setLevel(logging.ERROR)
            _litellm = litellm
    return _litellm


class LitellmPipeline(Pipeline):
    """A Pipeline whose send is a litellm call. `prepare` gives the call's keywords; the answer
    comes back as an httpx.Response carrying litellm's OpenAI-format JSON (or SSE chunks)."""

    def prepare(self, request: Request, api_key: str, *, stream: bool) -> httpx.Request:
        body = openai_wire.encode(request, self.spec, self.model_id, stream=stream).body
        keywords: dict[str, Any] = {**body, "model": self.model_id, "max_retries": 0,  # our retry layer is the only one
                                    "timeout": self.timeout, "_skip_mcp_handler": True}
        if self.spec.max_tokens_field in keywords:
            keywords["max_tokens"] = keywords.pop(self.spec.max_tokens_field)
        if api_key != KEYLESS_PLACEHOLDER:  # else litellm finds the provider's own credentials
            keywords["api_key"] = api_key
        if self.base_url:
            keywords["api_base"] = self.base_url
        # The pipeline's request value carries the keywords; nothing of it goes on the wire.
        return httpx.Request("POST", _NOWHERE, extensions={"litellm": keywords})

    def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            result = load_litellm().completion(**request.extensions["litellm"])
        except Exception as exc:
            return error_answer(exc, self)
        if not stream:
            return _json_answer(result)
        return httpx.Response(200, headers=_SSE, stream=_Chunks(result, self))

    async def asend(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            result = await load_litellm().acompletion(**request.extensions["litellm"])
        except Exception as exc:
            return error_answer(exc, self)
        if not stream:
            return _json_answer(result)
        return httpx.Response(200, headers=_SSE, stream=_AsyncChunks(result, self))


_NOWHERE = "http://litellm.invalid/completion"
_SSE = {"content-type": "text/event-stream"}
# litellm's exception classes that say more than their status.
_CODES = {"ContextWindowExceededError": "context_length_exceeded", "ContentPolicyViolationError": "content_filter"}


def error_answer(exc: Exception, pipeline: Pipeline) -> httpx.Response:
    """litellm's failure as the HTTP error answer it stands for (then classified like any other
    provider's), or, when no answer came (timeout, connection), our error raised."""
    where = f"litellm call to {pipeline.model_id}"
    if isinstance(exc, LLMError):
        raise exc
    if type(exc).__name__ == "Timeout" or isinstance(exc, httpx.TimeoutException):
        raise RequestTimeoutError(f"{where} timed out: {exc}", provider=pipeline.spec.name, model=pipeline.model_id) from exc
    if type(exc).__name__ == "APIConnectionError" or isinstance(exc, httpx.TransportError):
        raise APIConnectionError(f"{where} failed: {exc}", provider=pipeline.spec.name, model=pipeline.model_id) from exc
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    error = {"message": str(getattr(exc, "message", exc)), "type": type(exc).__name__, "code": _CODES.get(type(exc).__name__)}
    original = getattr(exc, "response", None)  # the provider's answer, for its Retry-After
    headers = {k: v for k, v in original.headers.items() if k.lower().startswith(("retry-after", "x-ratelimit"))} \
        if isinstance(original, httpx.Response) else {}
    return httpx.Response(status, headers=headers, json={"error": error}, request=httpx.Request("POST", _NOWHERE))


def _json_answer(result: Any) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "application/json"}, content=result.model_dump_json().encode(),
                          request=httpx.Request("POST", _NOWHERE))


def _event(chunk: Any) -> bytes:
    text: str = chunk.model_dump_json(exclude_none=True)
    return b"data: " + text.encode() + b"\n\n"


class _Chunks(httpx.SyncByteStream):
    def __init__(self, result: Any, pipeline: Pipeline) -> None:
        self._result, self._pipeline = result, pipeline

    def __iter__(self) -> Iterator[bytes]:
        try:
            for chunk in self._result:
                yield _event(chunk)
        except Exception as exc:
            raise self._pipeline.http_error(error_answer(exc, self._pipeline)) from exc
        yield b"data: [DONE]\n\n"


class _AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, result: Any, pipeline: Pipeline) -> None:
        self._result, self._pipeline = result, pipeline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._result:
                yield _event(chunk)
        except Exception as exc:
            raise self._pipeline.http_error(error_answer(exc, self._pipeline)) from exc
        yield b"data: [DONE]\n\n"
