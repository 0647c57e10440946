"""Cohere v2 chat (`/v2/chat`), both directions.

litellm's Cohere route ignores a per-call HTTP client, so llmclient encodes these requests itself
(`encode`): the format is the chat-completions one with Cohere's tool_choice words. Text is the
`text` content items; `thinking` items and the `tool_plan` are reasoning. A stream is typed events
(`content-delta`, `tool-call-start`, ..., `message-end`, which carries usage).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmclient.types import FinishReason, StreamEvent, ToolCall
from llmclient.wire import (
    Decoded,
    StreamErrorEvent,
    ToolCallAccumulator,
    WireFormatError,
    parse_arguments,
    parse_json,
    reasoning_event,
    text_event,
)
from llmclient.wire.openai import encode_message, encode_tool
from llmclient.wire.sse import SSEEvent

if TYPE_CHECKING:
    from llmclient.request import Request

FINISH_REASONS: Mapping[str, FinishReason] = {
    "COMPLETE": "stop",
    "STOP_SEQUENCE": "stop",
    "MAX_TOKENS": "length",
    "TOOL_CALL": "tool_calls",
}


def encode(request: Request, model_id: str, *, stream: bool) -> dict[str, Any]:
    tools = request.tools
    body: dict[str, Any] = {"model": model_id, "messages": [encode_message(m) for m in request.messages], "stream": stream}
    if request.tool_choice in ("required", "none"):
        body["tool_choice"] = request.tool_choice.upper()
    elif request.tool_choice not in (None, "auto"):
        # Cohere can only force "some tool": offer just the named one, and require it.
        tools = [tool for tool in tools if tool.name == request.tool_choice]
        body["tool_choice"] = "REQUIRED"
    if tools:
        body["tools"] = [encode_tool(tool) for tool in tools]
    if request.max_tokens is not None:
        body["max_tokens"] = request.max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    return {**body, **request.options}


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
            text.append(item.get("text") or "")
        elif item.get("type") == "thinking":
            reasoning.append(item.get("thinking") or "")
    calls = [
        ToolCall(id=call["id"], name=call["function"]["name"],
                 arguments=parse_arguments(call["function"]["name"], call["function"].get("arguments")))
        for call in message.get("tool_calls") or []
    ]
    usage = body.get("usage")
    return Decoded(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=calls,
        raw_finish_reason=body.get("finish_reason"),
        raw_usage=usage if isinstance(usage, dict) else None,
        model=None,  # Cohere v2 does not say which model answered
    )


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools = ToolCallAccumulator()
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        payload = parse_json(event.data, f"a {event.event!r} event")
        self.chunks.append(payload)
        if not isinstance(payload, dict):
            raise WireFormatError(f"a stream event is a {type(payload).__name__}, not an object")
        kind = payload.get("type") or event.event
        message = ((payload.get("delta") or {}).get("message")) or {}
        if kind in ("content-start", "content-delta"):
            content = message.get("content") or {}
            text, thinking = content.get("text") or "", content.get("thinking") or ""
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
            self._usage = delta.get("usage") if isinstance(delta.get("usage"), dict) else None
            self._done = True
        elif kind == "error" or "message" in payload and "type" not in payload:
            raise StreamErrorEvent(payload)
        return []

    def finish(self) -> Decoded:
        if not self._done:
            raise WireFormatError("the stream ended before message-end")
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
        )
