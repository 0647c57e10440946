"""OpenAI chat completions, both directions (OpenAI and every OpenAI-compatible server).

Dialects handled: reasoning as `reasoning_content` (DeepSeek, Z.ai), `reasoning` (Groq,
OpenRouter, Cerebras) or `reasoning_details`; Mistral's content as a list of text/thinking parts;
Groq's legacy stream usage in `x_groq.usage`; error objects sent as a stream event.

A refusal (`message.refusal`, streamed as `delta.refusal`) is kept as `Decoded.refusal` and
marks the answer filtered. A body without an answer (no choices, `message: null`) and a stream
without a chunk are malformed; nothing after `[DONE]` is read.
"""

from __future__ import annotations

import hashlib
import json
import re
import string
from collections import Counter
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.types import FilePart, FinishReason, Message, StreamEvent, TextPart, ToolCall, Usage, UsageIteration
from llmclient.wire import (
    Decoded,
    StreamErrorEvent,
    ToolCallAccumulator,
    ToolCallSlots,
    WireFormatError,
    WireRequest,
    cache_control,
    check_cost,
    check_subset,
    data_url,
    file_text,
    first_of,
    function_tool,
    int_at,
    offered_tools,
    parse_arguments,
    parse_json,
    reasoning_event,
    text_at,
    text_event,
    timestamp_at,
    usage_object,
    with_options,
)
from llmclient.wire.sse import SSEEvent

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec
    from llmclient.request import Request, ResponseFormat

FINISH_REASONS: Mapping[str, FinishReason] = {
    "stop": "stop",
    "eos": "stop",
    "end_turn": "stop",
    "length": "length",
    "model_length": "length",
    "max_tokens": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "tool_use": "tool_calls",
    "content_filter": "content_filter",
}


# Finish reasons that mean the generation failed on the provider's side, not an answer: Mistral
# and OpenRouter "error", DeepSeek "insufficient_system_resource" (its inference system ran out
# of capacity mid-generation). They raise instead of returning the partial text.
FAILED_GENERATION = frozenset({"error", "insufficient_system_resource"})


def _tier(body: dict[str, Any]) -> str | None:
    tier = body.get("service_tier")
    return tier if isinstance(tier, str) else None


def _failed_generation(payload: dict[str, Any], reason: str) -> StreamErrorEvent:
    message = f"the provider ended the generation with finish_reason {reason!r}"
    return StreamErrorEvent({"error": {"type": "server_error", "message": message}, "chunk": payload})


def decode(body: Any) -> Decoded:
    if not isinstance(body, dict):
        raise WireFormatError(f"expected a JSON object, got {type(body).__name__}")
    if "error" in body and not body.get("choices"):
        raise StreamErrorEvent(body)
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        raise WireFormatError(f"the body has no answer: 'choices' is {choices!r:.40}")
    decoded = Decoded(raw_usage=_usage(body), model=body.get("model") or None, service_tier=_tier(body),
                      created=timestamp_at(body, "created"))
    choice = choices[0]
    if choice.get("finish_reason") in FAILED_GENERATION:
        raise _failed_generation(body, choice["finish_reason"])
    message = choice.get("message")
    if not isinstance(message, dict):
        raise WireFormatError(f"the answer's message is {type(message).__name__}, not an object")
    text, thinking = _content(message.get("content"))
    decoded.text, decoded.said_text = text, _says_text(message.get("content"))
    decoded.reasoning = _reasoning(message) or thinking
    decoded.refusal = _refusal(message)
    decoded.filtered = decoded.refusal is not None
    decoded.tool_calls = [
        ToolCall(id=call.get("id") or f"call_{i}", name=call["function"]["name"],
                 arguments=parse_arguments(call["function"]["name"], call["function"].get("arguments")))
        for i, call in enumerate(message.get("tool_calls") or [])
        if call.get("type", "function") == "function"
    ]
    decoded.raw_finish_reason = choice.get("finish_reason")
    decoded.tool_uses = _executed_tools(message.get("executed_tools"), {})
    return decoded


def _says_text(content: Any) -> bool:
    return isinstance(content, str) or isinstance(content, list) and any(
        isinstance(part, dict) and part.get("type") == "text" for part in content)


def _refusal(message: dict[str, Any]) -> str | None:
    refusal = message.get("refusal")
    return refusal if isinstance(refusal, str) and refusal else None


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._refusal: list[str] = []
        self._tools = ToolCallAccumulator()
        self._slots = ToolCallSlots()
        self._not_functions: set[int] = set()  # calls of another type than "function" (custom tools)
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None
        self._service_tier: str | None = None
        self._said_text = False
        self._created: float | None = None
        self._executed: dict[Any, str] = {}  # Groq Compound's built-in tool runs, by index
        self.done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.done:
            return []  # nothing after the end marker is part of the answer
        data = event.data
        if not data.startswith("{") and data.strip() == "[DONE]":
            self.done = True
            return []
        chunk = parse_json(data, "a stream chunk")
        self.chunks.append(chunk)
        if not isinstance(chunk, dict):
            raise WireFormatError(f"a stream chunk is a {type(chunk).__name__}, not an object")
        # OpenRouter sends a mid-stream failure as a chunk that carries both `error` and choices;
        # vLLM-style servers as an `{"object": "error", ...}` chunk.
        if event.event == "error" or chunk.get("error") or chunk.get("object") == "error":
            raise StreamErrorEvent(chunk)
        if self._model is None:
            self._model = chunk.get("model") or None
        if self._created is None:
            self._created = timestamp_at(chunk, "created")
        if self._service_tier is None and "service_tier" in chunk:
            self._service_tier = _tier(chunk)
        if chunk.get("usage") is not None or "x_groq" in chunk:  # most chunks carry none, or "usage": null
            usage = _usage(chunk)
            if usage is not None:
                self._usage = usage
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or ():
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            content = delta.get("content")
            # The common chunk: text, and maybe the role. Anything else (reasoning, tool calls,
            # null fields some servers add) takes the general path.
            if type(content) is str and (len(delta) == 1 or (len(delta) == 2 and "role" in delta)):
                self._said_text = True
                if content:
                    self._text.append(content)
                    events.append(StreamEvent(kind="text", text=content))
            else:
                self._delta(delta, events)
            finish = choice.get("finish_reason")
            if finish:
                if finish in FAILED_GENERATION:
                    raise _failed_generation(chunk, finish)
                self._finish = finish
        return events

    def _delta(self, delta: dict[str, Any], events: list[StreamEvent]) -> None:
        text, thinking = _content(delta.get("content"))
        self._said_text = self._said_text or _says_text(delta.get("content"))
        reasoning = _reasoning(delta) or thinking
        self._text.append(text)
        self._reasoning.append(reasoning)
        refusal = delta.get("refusal")
        if isinstance(refusal, str):
            self._refusal.append(refusal)
        events += reasoning_event(reasoning) + text_event(text)
        if delta.get("executed_tools"):  # each run comes twice (its query, then its output): counted by index
            _executed_tools(delta["executed_tools"], self._executed)
        for position, call in enumerate(delta.get("tool_calls") or []):
            slot = self._slots.slot(call.get("index"), call.get("id"), position)
            if call.get("type", "function") != "function" or slot in self._not_functions:
                self._not_functions.add(slot)  # e.g. a custom tool's call: left out, as a whole answer does
                continue
            function = call.get("function") or {}
            events.append(self._tools.add(slot, id=call.get("id"), name=function.get("name"),
                                          arguments=function.get("arguments") or ""))

    def finish(self) -> Decoded:
        if not self.done and self._finish is None:
            raise WireFormatError("the stream ended before [DONE] or a finish_reason")
        if not self.chunks:
            raise WireFormatError("the stream ended with [DONE] and no chunk before it: no answer")
        refusal = "".join(self._refusal) or None
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
            model=self._model,
            service_tier=self._service_tier,
            refusal=refusal,
            filtered=refusal is not None,
            said_text=self._said_text,
            created=self._created,
            tool_uses=_tool_counts(self._executed),
        )


def _usage(body: dict[str, Any]) -> dict[str, Any] | None:
    usage = usage_object(body, "usage")
    legacy = body.get("x_groq")
    if usage is None and isinstance(legacy, dict) and isinstance(legacy.get("usage"), dict):
        usage = dict(legacy["usage"])
    # Groq Compound: the models that ran, each with its own usage (billed at its own price).
    breakdown = body.get("usage_breakdown")
    if breakdown is None and isinstance(legacy, dict):
        breakdown = legacy.get("usage_breakdown")
    if usage is not None and breakdown is not None:
        usage = {**usage, "usage_breakdown": breakdown}
    return usage


# Groq Compound's built-in tools under the names `Usage.tool_uses` gives them elsewhere; any other
# type is counted under its own name (and, with no fee known for it, leaves the cost unknown).
_EXECUTED_TOOLS = {"search": "web_search", "visit": "visit_website"}


def _executed_tools(runs: Any, seen: dict[Any, str]) -> dict[str, int]:
    """Groq Compound's `executed_tools` (a list of runs with an index and a type) added to `seen`
    (index -> kind); the counts by kind."""
    if runs is None:
        return _tool_counts(seen)
    if not isinstance(runs, list):
        raise WireFormatError(f"executed_tools is {type(runs).__name__}, not a list")
    for position, run in enumerate(runs):
        kind = run.get("type") if isinstance(run, dict) else None
        if isinstance(kind, str):
            seen[run.get("index", position)] = _EXECUTED_TOOLS.get(kind, kind)
    return _tool_counts(seen)


def _tool_counts(seen: dict[Any, str]) -> dict[str, int]:
    return dict(Counter(seen.values()))


def _content(content: Any) -> tuple[str, str]:
    """(text, thinking) from a string or a list of parts (Mistral's text/thinking chunks)."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    if not isinstance(content, list):
        raise WireFormatError(f"message content is a {type(content).__name__}")
    text, thinking = [], []
    for part in content:
        if part.get("type") == "text":
            text.append(text_at(part, "text", "a text part"))
        elif part.get("type") == "thinking":
            thinking += [piece.get("text") or "" for piece in part.get("thinking") or [] if isinstance(piece, dict)]
    return "".join(text), "".join(thinking)


def _reasoning(message: dict[str, Any]) -> str:
    for key in ("reasoning_content", "reasoning"):
        if isinstance(message.get(key), str):
            return str(message[key])
    details = message.get("reasoning_details")
    if isinstance(details, list):
        return "".join(d.get("text") or d.get("summary") or "" for d in details if isinstance(d, dict))
    return ""


def encode(request: Request, spec: ProviderSpec, model_id: str, *, stream: bool) -> WireRequest:
    """A chat-completions request. A named tool_choice where the API has none (Mistral) offers
    only that tool and requires a call."""
    if "stream" in request.options:  # a non-stream body has no "stream" key to clash with: refused by name
        raise InvalidRequestError("provider options may not set 'stream': call stream() or astream() for a stream")
    tools, choice = offered_tools(request, spec.named_tool_choice)
    body: dict[str, Any] = {
        "model": model_id,
        "messages": [encode_message(message, cache_markers=spec.cache_markers, pdf_block=spec.pdf_block,
                                    text_as_string=spec.text_as_string, alnum9_ids=spec.tool_call_ids == "alnum9")
                     for message in request.messages],
    }
    if stream:
        body["stream"] = True
        if spec.stream_usage:
            body["stream_options"] = {"include_usage": True}  # else most servers report no usage
    if tools:  # tool_choice without tools is refused by OpenAI: it goes only with them
        body["tools"] = [function_tool(tool) for tool in tools]
        if choice in ("auto", "none", "required"):
            body["tool_choice"] = choice
        elif choice is not None:
            body["tool_choice"] = {"type": "function", "function": {"name": choice}}
    if request.max_tokens is not None:
        body[spec.max_tokens_field] = request.max_tokens
    for key, value in (("temperature", request.temperature), ("top_p", request.top_p), ("stop", request.stop)):
        if value is not None:
            body[key] = value
    if request.response_format is not None:
        wanted = request.response_format
        if wanted.type == "json_schema" and spec.native_schema_models is not None and not spec.native_schema(model_id):
            # The provider says which of its models take a schema (Groq: "does not support response
            # format `json_schema`" for the others): refused here, not sent for a 400.
            raise UnsupportedCapabilityError(
                f"{spec.name}/{model_id} takes no JSON schema response_format (its models starting "
                f"{', '.join(spec.native_schema_models)} do): use structured(), which asks it another way, or "
                f'response_format={{"type": "json_object"}}', provider=spec.name, model=model_id)
        body["response_format"] = _response_format(wanted)
    return WireRequest("/chat/completions", with_options(body, request.options))


def _response_format(wanted: ResponseFormat) -> dict[str, Any]:
    if wanted.type == "json_object":
        return {"type": "json_object"}
    schema: dict[str, Any] = {"name": wanted.name or "response", "schema": wanted.json_schema}  # name is required
    if wanted.strict is not None:
        schema["strict"] = wanted.strict
    return {"type": "json_schema", "json_schema": schema}


def encode_message(message: Message, *, cache_markers: bool = False, pdf_block: str = "file",
                   text_as_string: bool = False, alnum9_ids: bool = False) -> dict[str, Any]:
    """A message in the chat-completions request format."""
    content: Any = (
        message.content
        if isinstance(message.content, str)
        else [_text_block(part, cache_markers) if isinstance(part, TextPart) else _file_block(part, pdf_block)
              for part in message.content]
    )
    if text_as_string and isinstance(content, list) and all(set(block) == {"type", "text"} for block in content):
        content = "\n\n".join(block["text"] for block in content)
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.role == "assistant" and message.tool_calls:
        if not content:  # a turn of calls only has no content, as the official SDKs send it
            del out["content"]
        out["tool_calls"] = [
            {"id": _alnum9(c.id) if alnum9_ids else c.id, "type": "function",
             "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
            for c in message.tool_calls
        ]
    elif message.role == "tool":  # results are matched by id; the name is not part of the API
        call_id = message.tool_call_id or ""
        out["tool_call_id"] = _alnum9(call_id) if alnum9_ids else call_id
    return out


_ALNUM9 = re.compile(r"[A-Za-z0-9]{9}")
_BASE62 = string.digits + string.ascii_letters


def _alnum9(call_id: str) -> str:
    """`call_id` if it is 9 letters and digits, else 9 derived from its hash (stable: a call and
    its result get the same one)."""
    if _ALNUM9.fullmatch(call_id):
        return call_id
    number = int.from_bytes(hashlib.sha256(call_id.encode()).digest()[:8], "big")
    return "".join(_BASE62[(number // 62**i) % 62] for i in range(9))


def _text_block(part: TextPart, cache_markers: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache is not None and cache_markers:
        block["cache_control"] = cache_control(part.cache)
    return block


def _file_block(part: FilePart, pdf_block: str) -> dict[str, Any]:
    """A file as a content block; inline bytes stream into the body as a data URL (`FileData`)."""
    if part.is_text:
        return {"type": "text", "text": file_text(part)}
    source = data_url(part)
    if part.is_image:
        return {"type": "image_url", "image_url": {"url": source}}
    if pdf_block == "document_url":  # Mistral
        return {"type": "document_url", "document_url": source}
    return {"type": "file", "file": {"filename": part.name, "file_data": source}}


def error_body(status: int, message: str, error_type: str | None,
               retry_after: float | None) -> tuple[dict[str, Any], dict[str, str]]:
    """OpenAI's error answer: `{"error": {"message", "type", "param", "code"}}`, Retry-After on a 429."""
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    kind = "server_error" if status >= 500 else "requests" if status == 429 else "invalid_request_error"
    code = error_type or _ERROR_CODES.get(status)
    return {"error": {"message": message, "type": kind, "param": None, "code": code}}, headers


_ERROR_CODES = {401: "invalid_api_key", 404: "model_not_found", 429: "rate_limit_exceeded"}


def usage(raw: dict[str, Any]) -> Usage:
    """OpenAI-compatible usage: prompt_tokens already include cached tokens; completion_tokens
    include reasoning. Cache reads: prompt_tokens_details.cached_tokens, else DeepSeek
    prompt_cache_hit_tokens, Mistral num_cached_tokens, Hugging Face cached_tokens. A reported
    charge (OpenRouter `cost`) must be a finite amount >= 0."""
    check_cost(raw)
    prompt, completion = first_of(int_at(raw, "prompt_tokens")), first_of(int_at(raw, "completion_tokens"))
    read = first_of(int_at(raw, "prompt_tokens_details", "cached_tokens"), int_at(raw, "prompt_cache_hit_tokens"),
                    int_at(raw, "num_cached_tokens"), int_at(raw, "cached_tokens"))
    reasoning = first_of(int_at(raw, "completion_tokens_details", "reasoning_tokens"))
    check_subset(read, prompt, "cached tokens above prompt_tokens")
    check_subset(reasoning, completion, "reasoning_tokens above completion_tokens")
    return Usage(input_tokens=prompt, output_tokens=completion, cache_read_tokens=read,
                 cache_write_tokens=first_of(int_at(raw, "prompt_tokens_details", "cache_write_tokens")),
                 reasoning_tokens=reasoning, iterations=_breakdown(raw.get("usage_breakdown")))


def _breakdown(breakdown: Any) -> tuple[UsageIteration, ...]:
    """Groq Compound's `usage_breakdown.models`: one iteration per model run, with its usage."""
    models = breakdown.get("models") if isinstance(breakdown, dict) else breakdown
    if models is None:  # plain models answer with `"usage_breakdown": {"models": null}`
        return ()
    if not isinstance(models, list):
        raise WireFormatError(f"usage_breakdown.models is {type(models).__name__}, not a list")
    steps = []
    for entry in models:
        if not isinstance(entry, dict) or not isinstance(entry.get("model"), str):
            raise WireFormatError("a usage_breakdown entry has no model name")
        steps.append(UsageIteration(kind="model", model=entry["model"],
                                    input_tokens=first_of(int_at(entry, "usage", "prompt_tokens")),
                                    output_tokens=first_of(int_at(entry, "usage", "completion_tokens"))))
    return tuple(steps)
