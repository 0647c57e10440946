"""Anthropic Messages bodies.

Only `tool_use` blocks are client tool calls: `server_tool_use` (web search, code execution,
advisor) and its result blocks run on Anthropic's side and are not listed. `thinking` blocks are
reasoning, never text. Stream usage is `message_start.usage` updated key by key by the non-null
values of `message_delta.usage`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

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
from llmclient.wire.sse import SSEEvent

FINISH_REASONS: Mapping[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # "pause_turn" (a server tool loop paused, continue the turn) is deliberately "other", not stop.
}


def decode(body: Any) -> Decoded:
    if not isinstance(body, dict):
        raise WireFormatError(f"expected a JSON object, got {type(body).__name__}")
    if body.get("type") == "error":
        raise StreamErrorEvent(body)
    if not isinstance(body.get("content"), list):
        raise WireFormatError("the body has no 'content' list")
    text, reasoning, calls = [], [], []
    for block in body["content"]:
        kind = block.get("type")
        if kind == "text":
            text.append(block.get("text") or "")
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=parse_arguments(block["name"], block.get("input"))))
    usage = body.get("usage")
    return Decoded(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=calls,
        raw_finish_reason=body.get("stop_reason"),
        raw_usage=usage if isinstance(usage, dict) else None,
        model=body.get("model") or None,
        service_tier=_service_tier(usage),
    )


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools = ToolCallAccumulator()
        self._tool_blocks: set[int] = set()
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None
        self._done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        payload = parse_json(event.data, f"a {event.event!r} event")
        self.chunks.append(payload)
        if not isinstance(payload, dict):
            raise WireFormatError(f"a stream event is a {type(payload).__name__}, not an object")
        kind = payload.get("type") or event.event
        if kind == "error":
            raise StreamErrorEvent(payload)
        if kind == "message_start":
            message = payload["message"]
            self._model = message.get("model") or None
            self._usage = dict(message.get("usage") or {})
        elif kind == "content_block_start":
            return self._block_start(payload["index"], payload["content_block"])
        elif kind == "content_block_delta":
            return self._delta(payload["index"], payload["delta"])
        elif kind == "message_delta":
            self._finish = (payload.get("delta") or {}).get("stop_reason") or self._finish
            usage = payload.get("usage") or {}
            self._usage = {**(self._usage or {}), **{k: v for k, v in usage.items() if v is not None}}
        elif kind == "message_stop":
            self._done = True
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "text":
            self._text.append(block.get("text") or "")
            return text_event(block.get("text") or "")
        if kind == "thinking":
            self._reasoning.append(block.get("thinking") or "")
            return reasoning_event(block.get("thinking") or "")
        if kind == "tool_use":
            self._tool_blocks.add(index)
            event = self._tools.add(index, id=block["id"], name=block["name"])
            self._tools.set_parsed(index, parse_arguments(block["name"], block.get("input")))
            return [event]
        return []

    def _delta(self, index: int, delta: dict[str, Any]) -> list[StreamEvent]:
        kind = delta.get("type")
        if kind == "text_delta":
            self._text.append(delta["text"])
            return text_event(delta["text"])
        if kind == "thinking_delta":
            self._reasoning.append(delta["thinking"])
            return reasoning_event(delta["thinking"])
        if kind == "input_json_delta" and index in self._tool_blocks:
            return [self._tools.add(index, arguments=delta.get("partial_json") or "")]
        return []

    def finish(self) -> Decoded:
        if not self._done:
            raise WireFormatError("the stream ended before message_stop")
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
            model=self._model,
            service_tier=_service_tier(self._usage),
        )


def _service_tier(usage: Any) -> str | None:
    """Anthropic reports the tier that billed the call ("standard", "priority", "batch") in usage."""
    tier = usage.get("service_tier") if isinstance(usage, dict) else None
    return tier if isinstance(tier, str) else None
