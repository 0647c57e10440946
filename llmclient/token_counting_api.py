"""Counting a prompt with the provider's own endpoint (`llmclient.tokens.count_tokens`).

The body is the one a call would send, made by the provider's wire encoder (`llmclient.wire`),
less what the count endpoint does not take; URL, headers and key are the pipeline's own
(`Pipeline.prepare`), and so is every error (`Pipeline.send`, `Pipeline.http_error`: a 401 is an
AuthenticationError, the key masked in its message).

- Anthropic: `POST /v1/messages/count_tokens` with the Messages body reduced to the fields of
  MessageCountTokensParams (anthropic-sdk-python `types/message_count_tokens_params.py`: model,
  messages, system, tools, tool_choice, thinking, output_config, cache_control: no max_tokens,
  stream, temperature, top_p or stop_sequences); answers `{"input_tokens": N}`.
- Gemini: `POST .../models/<id>:countTokens` with `{"generateContentRequest": {"model":
  "models/<id>", ...the generateContent body}}`, as Google's own SDK sends it
  (generative-ai-js `formatCountTokensInput`): with `contents` alone the system instruction and the
  tools would not be counted. Answers `{"totalTokens": N, ...}`; proto3 JSON leaves a zero out.
"""

from __future__ import annotations

from typing import Any

import httpx

from llmclient.errors import MalformedResponseError
from llmclient.pipeline import Pipeline
from llmclient.providers import ProviderSpec
from llmclient.request import Request
from llmclient.transport import build_request, json_body
from llmclient.wire import WireFormatError, codec, int_at, parse_json

TIMEOUT = 60.0
"""Seconds for one count request, whole."""

_ANTHROPIC_FIELDS = ("model", "messages", "system", "tools", "tool_choice", "thinking", "output_config",
                     "cache_control")


def count_with_api(spec: ProviderSpec, model_id: str, request: Request, api_key: str) -> int:
    """The prompt tokens of `request` by the count endpoint of `spec` (Anthropic or Gemini wire)."""
    pipeline = Pipeline(spec, model_id, spec.base_url, TIMEOUT)
    try:
        placed = pipeline.placed(request)
        call = pipeline.prepare(placed, api_key, stream=False)  # URL, headers and key as a call sends them
        body = codec(spec.wire).encode(placed, spec, model_id, stream=False).body
        if spec.wire == "anthropic":
            path, body = call.url.path + "/count_tokens", {k: body[k] for k in _ANTHROPIC_FIELDS if k in body}
            field = "input_tokens"
        else:
            path, body = call.url.path.replace(":generateContent", ":countTokens"), {
                "generateContentRequest": {"model": f"models/{model_id}", **body}}
            field = "totalTokens"
        headers = {name: value for name, value in call.headers.items() if name not in ("host", "content-length")}
        answer = pipeline.send(build_request("POST", str(call.url.copy_with(path=path)), headers, json_body(body)),
                               stream=False)
        if answer.status_code >= 300:
            raise pipeline.http_error(answer)
        return _count(answer, field, spec.wire == "gemini", spec.name, model_id)
    finally:
        pipeline.close()


def _count(answer: httpx.Response, field: str, zero_if_absent: bool, provider: str, model_id: str) -> int:
    try:
        payload: Any = parse_json(answer.content, "the count")
        if not isinstance(payload, dict):
            raise WireFormatError(f"the count is a JSON {type(payload).__name__}, not an object")
        count = int_at(payload, field)
        if count is None and not zero_if_absent:
            raise WireFormatError(f"the answer has no {field}")
    except WireFormatError as exc:
        raise MalformedResponseError(f"{exc} (HTTP {answer.status_code}): {answer.text[:200]!r}",
                                     provider=provider, model=model_id) from exc
    return count or 0
