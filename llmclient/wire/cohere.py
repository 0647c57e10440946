"""Cohere v2 chat (`/v2/chat`), both directions.

Requests (`encode`) have the chat-completions shape under Cohere's own names: `p` is top_p,
`stop_sequences` the stop strings, `tool_choice` is only REQUIRED or NONE, and JSON output is
`{"type": "json_object"}` with an optional `json_schema`. Images are `image_url` blocks; PDFs
have no form. Responses: text is the `text` content items; `thinking` items and the `tool_plan`
are reasoning. A stream is typed events (`content-delta`, `tool-call-start`, ...,
`message-end`, which carries usage). Shapes from https://docs.cohere.com/reference/chat and the
official SDK's request types (cohere-python, `ChatMessageV2`, `ToolV2`, `ResponseFormatV2`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypedDict

from llmclient.errors import UnsupportedCapabilityError
from llmclient.types import FilePart, FinishReason, Message, StreamEvent, TextPart, ToolCall, Usage
from llmclient.wire import (
    Decoded,
    StreamErrorEvent,
    ToolCallAccumulator,
    WireFormatError,
    WireRequest,
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
    thinking_budget,
    usage_object,
    with_options,
)
from llmclient.wire.sse import SSEEvent

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec
    from llmclient.request import Request, ResponseFormat

FINISH_REASONS: Mapping[str, FinishReason] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


class _Where(TypedDict):
    """The call a refusal is about, for the error's fields."""

    provider: str
    model: str


def encode(request: Request, spec: ProviderSpec, model_id: str, *, stream: bool) -> WireRequest:
    """The `/v2/chat` request. Every system message's text becomes one leading system turn.
    Cohere has no cache markers (it caches prompt prefixes by itself), so `TextPart.cache` has
    nothing to become."""
    where = _Where(provider=spec.name, model=model_id)
    messages: list[dict[str, Any]] = []
    if request.system is not None:
        messages.append({"role": "system", "content": request.system})
    for message in request.messages:
        if message.files and message.role != "user":  # the pipeline moves tool-result files to a user turn
            raise UnsupportedCapabilityError(
                f"a {message.role} turn holds files ({', '.join(part.name for part in message.files)}); Cohere "
                f"takes files in user turns only; no request was sent", **where)
        if message.role != "system":
            messages.append(_message(message, where))
    body: dict[str, Any] = {"model": model_id, "messages": messages, "stream": stream}
    # Cohere cannot force one named tool (whatever the spec says) and has no word for "auto".
    tools, choice = offered_tools(request, named_choice=False)
    if tools:  # without tools a choice asks nothing (Request.build refuses "required" without them)
        body["tools"] = [function_tool(tool) for tool in tools]
        if choice not in (None, "auto"):
            body["tool_choice"] = choice.upper()  # NONE | REQUIRED
    for key, value in (("max_tokens", request.max_tokens), ("temperature", request.temperature),
                       ("p", request.top_p), ("stop_sequences", request.stop)):
        if value is not None:
            body[key] = value
    if request.response_format is not None:
        if tools:  # "not supported when used in combinations with the `documents` or `tools` parameters"
            raise UnsupportedCapabilityError("Cohere cannot hold its answer to JSON output while it is offered tools: "
                                             "ask for the schema in a call without tools, or use structured()", **where)
        body["response_format"] = _response_format(request.response_format)
    options = dict(request.options)
    budget = thinking_budget(options, "Cohere")
    if budget is not None:  # https://docs.cohere.com/docs/reasoning: thinking {type, token_budget}
        body["thinking"] = {"type": "enabled", "token_budget": budget} if budget else {"type": "disabled"}
    return WireRequest("/v2/chat", with_options(body, options))


def error_body(status: int, message: str, error_type: str | None,
               retry_after: float | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Cohere's error answer: `{"id", "message"}`. Its errors carry no type or code, so
    `error_type` has no place; the status says it all. A wait goes in the standard Retry-After header."""
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return {"id": "simulated", "message": message}, headers


def _message(message: Message, where: _Where) -> dict[str, Any]:
    if message.role == "user":
        content = message.content
        blocks = content if isinstance(content, str) else [_block(part, where) for part in content]
        return {"role": "user", "content": blocks}
    if message.role == "tool":
        # Cohere pairs a result with its call by id alone: the tool's name has no field.
        return {"role": "tool", "tool_call_id": message.tool_call_id, "content": message.text}
    out: dict[str, Any] = {"role": "assistant"}
    if message.text or not message.tool_calls:
        out["content"] = message.text
    if message.tool_calls:
        # Compact JSON, as the model writes its own arguments.
        out["tool_calls"] = [{"id": call.id, "type": "function", "function": {
            "name": call.name, "arguments": json.dumps(call.arguments, separators=(",", ":"), ensure_ascii=False)}}
            for call in message.tool_calls]
    return out


def _block(part: TextPart | FilePart, where: _Where) -> dict[str, Any]:
    """A user content block: text, a text file as text naming it, or an image by URL or inline."""
    if isinstance(part, TextPart):
        return {"type": "text", "text": part.text}
    if part.is_text:
        return {"type": "text", "text": file_text(part)}
    if part.is_image:
        return {"type": "image_url", "image_url": {"url": data_url(part)}}
    raise UnsupportedCapabilityError(
        f"{part.name} is {part.media_type}; Cohere's chat takes images and text only (no PDF or other "
        f"documents); no request was sent", **where)


def _response_format(wanted: ResponseFormat) -> dict[str, Any]:
    """JSON mode, with the schema when there is one. Cohere's schema mode has no name, and it
    always constrains decoding to the schema, which is what `strict` asks for."""
    out: dict[str, Any] = {"type": "json_object"}
    if wanted.type == "json_schema" and wanted.json_schema is not None:
        out["json_schema"] = wanted.json_schema
    return out


def decode(body: Any) -> Decoded:
    if not isinstance(body, dict):
        raise WireFormatError(f"expected a JSON object, got {type(body).__name__}")
    message = body.get("message")
    if not isinstance(message, dict):
        if isinstance(message, str) or "error" in body:
            raise StreamErrorEvent(body)  # an error object ({"message": "..."}) with status 200
        raise WireFormatError("the body has no 'message' object")
    text, reasoning = [], [message.get("tool_plan") or ""]
    for item in message.get("content") or []:
        if item.get("type") == "text":
            text.append(text_at(item, "text", "a text item"))
        elif item.get("type") == "thinking":
            reasoning.append(item.get("thinking") or "")
    calls = [
        ToolCall(id=call["id"], name=call["function"]["name"],
                 arguments=parse_arguments(call["function"]["name"], call["function"].get("arguments")))
        for call in message.get("tool_calls") or []
    ]
    return Decoded(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=calls,
        raw_finish_reason=body.get("finish_reason"),
        raw_usage=usage_object(body, "usage"),
        model=None,  # Cohere v2 does not say which model answered
        said_text=any(item.get("type") == "text" for item in message.get("content") or []),
    )


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools = ToolCallAccumulator()
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._said_text = False
        self.done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.done:
            return []  # nothing after message-end is part of the answer
        payload = parse_json(event.data, f"a {event.event!r} event")
        self.chunks.append(payload)
        if not isinstance(payload, dict):
            raise WireFormatError(f"a stream event is a {type(payload).__name__}, not an object")
        kind = payload.get("type") or event.event
        message = ((payload.get("delta") or {}).get("message")) or {}
        if kind in ("content-start", "content-delta"):
            content = message.get("content") or {}
            text, thinking = content.get("text") or "", content.get("thinking") or ""
            self._said_text = self._said_text or isinstance(content.get("text"), str)
            self._text.append(text)
            self._reasoning.append(thinking)
            return reasoning_event(thinking) + text_event(text)
        if kind == "tool-plan-delta":
            plan = message.get("tool_plan") or ""
            self._reasoning.append(plan)
            return reasoning_event(plan)
        if kind in ("tool-call-start", "tool-call-delta"):
            call = message.get("tool_calls") or {}
            function = call.get("function") or {}
            return [self._tools.add(payload.get("index", 0), id=call.get("id"), name=function.get("name"),
                                    arguments=function.get("arguments") or "")]
        if kind == "message-end":
            delta = payload.get("delta") or {}
            self._finish = delta.get("finish_reason")
            self._usage = usage_object(delta, "usage")
            self.done = True
        elif kind == "error" or "message" in payload and "type" not in payload:
            raise StreamErrorEvent(payload)
        return []

    def finish(self) -> Decoded:
        if not self.done:
            raise WireFormatError("the stream ended before message-end")
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
            said_text=self._said_text,
        )


def usage(raw: dict[str, Any]) -> Usage:
    """Cohere: the billed units; cached_tokens as reported."""
    return Usage(
        input_tokens=first_of(int_at(raw, "billed_units", "input_tokens")),
        output_tokens=first_of(int_at(raw, "billed_units", "output_tokens")),
        cache_read_tokens=first_of(int_at(raw, "cached_tokens")),
    )
