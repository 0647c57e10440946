"""The long tail: `Client("litellm/<litellm model string>")` reaches every provider litellm
supports (Bedrock, Vertex, Azure, ...), with llmclient's retries, rate limits, cost and errors.

litellm builds the request, sends it and parses the answer; its answer (OpenAI chat-completions
JSON, or a stream of chunks) is handed to the pipeline as an HTTP response in that format and
decoded by `llmclient.wire.openai`, so a litellm call is a `Response` like any other. litellm is
imported here only, on the first such call, with the settings DESIGN §3 lists. Built-in providers
never come here.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx

from llmclient.cassette_match import replay_mismatch
from llmclient.cassettes import remember_key
from llmclient.errors import (
    APIConnectionError,
    ConfigurationError,
    LLMError,
    MalformedResponseError,
    RequestTimeoutError,
)
from llmclient.local_answer import intercepted, json_answer, sse, stream_answer, unsent
from llmclient.pipeline import Pipeline, with_extra_headers
from llmclient.providers import KEYLESS_PLACEHOLDER
from llmclient.request import Request
from llmclient.transport import FileBody
from llmclient.wire import FileData, StreamErrorEvent
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
        body = _with_file_contents(openai_wire.encode(self.placed(request), self.spec, self.model_id, stream=stream).body)
        keywords: dict[str, Any] = {**body, "model": self.model_id, "max_retries": 0,  # our retry layer is the only one
                                    "timeout": self.timeout, "_skip_mcp_handler": True}
        if self.spec.max_tokens_field in keywords:
            keywords["max_tokens"] = keywords.pop(self.spec.max_tokens_field)
        if request.extra_headers:  # checked as for any provider: its key header is ours to set
            keywords["extra_headers"] = with_extra_headers({}, request.extra_headers, self.spec)
        if api_key != KEYLESS_PLACEHOLDER:  # else litellm finds the provider's own credentials
            keywords["api_key"] = api_key
            remember_key(api_key)
            self.keys = self.keys | {api_key}
        if self.base_url:
            keywords["api_base"] = self.base_url
        # The pipeline's request value carries the keywords; nothing of it goes on the wire.
        return unsent(_ROUTE, litellm=keywords)

    def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            simulated = intercepted(request, self)
            if simulated is not None:
                return simulated
            result = load_litellm().completion(**request.extensions["litellm"])
        except Exception as exc:
            return error_answer(exc, self)
        if not stream:
            return _json_answer(result)
        return stream_answer(_Chunks(result, self), unsent(_ROUTE))

    async def asend(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            simulated = intercepted(request, self)
            if simulated is not None:
                return simulated
            result = await load_litellm().acompletion(**request.extensions["litellm"])
        except Exception as exc:
            return error_answer(exc, self)
        if not stream:
            return _json_answer(result)
        return stream_answer(_AsyncChunks(result, self), unsent(_ROUTE))


_ROUTE = "litellm"  # the host of its requests' URL, which nothing is sent to
# litellm's exception classes that say more than their status.
_CODES = {"ContextWindowExceededError": "context_length_exceeded", "ContentPolicyViolationError": "content_filter"}


def error_answer(exc: Exception, pipeline: Pipeline) -> httpx.Response:
    """litellm's failure as the HTTP error answer it stands for (then classified like any other
    provider's), or our error raised when there was no error answer: a timeout, a connection
    failure, or a 200 whose body litellm could not parse."""
    where = f"litellm call to {pipeline.model_id}"
    context: dict[str, Any] = {"provider": pipeline.spec.name, "model": pipeline.model_id}
    if isinstance(exc, LLMError):
        raise exc
    # vcrpy's refusal in a replay, under litellm's and the openai SDK's wrappings ("Connection error", a 500)
    mismatch = replay_mismatch(exc, f"the {where}", pipeline.spec.name, pipeline.model_id)
    if mismatch is not None:
        raise mismatch from exc
    if type(exc).__name__ == "Timeout" or isinstance(exc, httpx.TimeoutException):
        raise RequestTimeoutError(f"{where} timed out: {exc}", **context) from exc
    if type(exc).__name__ == "APIConnectionError" or isinstance(exc, httpx.TransportError):
        raise APIConnectionError(f"{where} failed: {exc}", **context) from exc
    if _caused_by(exc, json.JSONDecodeError):  # litellm calls that a 500; the provider said 200
        raise MalformedResponseError(f"{where}: the answer is not valid JSON: {exc}", **context) from exc
    status = getattr(exc, "status_code", None)
    status = status if isinstance(status, int) and 400 <= status < 600 else 500
    return httpx.Response(status, headers=_wait_headers(exc), json={"error": _error(exc)},
                          request=unsent(_ROUTE))


def stream_error(exc: Exception, pipeline: Pipeline) -> LLMError:
    """A failure after a stream began: an error event inside a 200 answer (no HTTP status)."""
    try:
        error_answer(exc, pipeline)
    except LLMError as raised:
        return raised
    return pipeline.assembler.stream_error(StreamErrorEvent({"error": _error(exc)}))


def _error(exc: Exception) -> dict[str, Any]:
    """The error object of an answer: litellm's message, its class name as the type (a code for
    the classes that say more than a status), and the status litellm gave it."""
    error: dict[str, Any] = {"message": str(getattr(exc, "message", exc)), "type": type(exc).__name__,
                             "code": _CODES.get(type(exc).__name__)}
    status = getattr(exc, "status_code", None)
    if isinstance(status, int) and 400 <= status < 600:
        error["status_code"] = status  # read as the embedded status of an error inside a stream
    return error


def _wait_headers(exc: Exception) -> dict[str, str]:
    """The provider's Retry-After and rate-limit headers, which litellm keeps beside the error."""
    headers = getattr(exc, "litellm_response_headers", None) or {}
    return {k: v for k, v in headers.items() if k.lower().startswith(("retry-after", "x-ratelimit"))}


def _caused_by(exc: BaseException, kind: type[BaseException]) -> bool:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if isinstance(current, kind):
            return True
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return False


def _with_file_contents(body: Any) -> Any:
    """`body` with each streamed file (`FileData`) as its text: litellm builds the JSON itself."""
    if isinstance(body, FileData):
        return body.prefix + b"".join(FileBody([body])).decode("ascii")
    if isinstance(body, dict):
        return {key: _with_file_contents(value) for key, value in body.items()}
    if isinstance(body, list):
        return [_with_file_contents(item) for item in body]
    return body


def _json_answer(result: Any) -> httpx.Response:
    return json_answer(result.model_dump_json().encode(), unsent(_ROUTE))


def _event(chunk: Any) -> bytes:
    text: str = chunk.model_dump_json(exclude_none=True)
    return sse(text)


class _Chunks(httpx.SyncByteStream):
    def __init__(self, result: Any, pipeline: Pipeline) -> None:
        self._result, self._pipeline = result, pipeline

    def __iter__(self) -> Iterator[bytes]:
        # No closing [DONE] of our own: a stream litellm ends without a finish reason was cut short.
        try:
            for chunk in self._result:
                yield _event(chunk)
        except Exception as exc:
            raise stream_error(exc, self._pipeline) from exc


class _AsyncChunks(httpx.AsyncByteStream):
    def __init__(self, result: Any, pipeline: Pipeline) -> None:
        self._result, self._pipeline = result, pipeline

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for chunk in self._result:
                yield _event(chunk)
        except Exception as exc:
            raise stream_error(exc, self._pipeline) from exc
