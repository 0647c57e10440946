"""Gemini generateContent / streamGenerateContent bodies.

Parts with `thought: true` are reasoning. Only `functionCall` parts are client tool calls:
`executableCode`, `codeExecutionResult` and the built-in `toolCall`/`toolResponse` parts run on
Google's side. A stream is a sequence of whole GenerateContentResponse chunks; usage is the last
chunk's `usageMetadata` (cumulative).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from llmclient.types import FinishReason, StreamEvent, ToolCall, ToolCallDelta
from llmclient.wire import Decoded, StreamErrorEvent, WireFormatError, parse_arguments, parse_json
from llmclient.wire.sse import SSEEvent

FINISH_REASONS: Mapping[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    "SAFETY": "content_filter",
    "RECITATION": "content_filter",
    "BLOCKLIST": "content_filter",
    "PROHIBITED_CONTENT": "content_filter",
    "SPII": "content_filter",
    "IMAGE_SAFETY": "content_filter",
    "MALFORMED_FUNCTION_CALL": "other",
    "UNEXPECTED_TOOL_CALL": "other",
}


class _Parts:
    """Text, reasoning and function calls of candidate 0, accumulated over one or more chunks."""

    def __init__(self) -> None:
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: list[ToolCall] = []
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None

    def add(self, body: Any) -> list[StreamEvent]:
        if not isinstance(body, dict):
            raise WireFormatError(f"expected a JSON object, got {type(body).__name__}")
        if "error" in body and "candidates" not in body:
            raise StreamErrorEvent(body)
        self.model = body.get("modelVersion") or self.model
        if isinstance(body.get("usageMetadata"), dict):
            self.usage = body["usageMetadata"]
        events: list[StreamEvent] = []
        candidates = body.get("candidates") or []
        candidate = next((c for c in candidates if c.get("index", 0) == 0), None)
        if candidate is None:
            return events
        for part in (candidate.get("content") or {}).get("parts") or []:
            if "text" in part and part.get("thought"):
                self.reasoning.append(part["text"])
                events.append(StreamEvent(kind="reasoning", text=part["text"]))
            elif "text" in part:
                self.text.append(part["text"])
                if part["text"]:
                    events.append(StreamEvent(kind="text", text=part["text"]))
            elif "functionCall" in part:
                events.append(self._call(part["functionCall"]))
        self.finish = candidate.get("finishReason") or self.finish
        return events

    def _call(self, call: dict[str, Any]) -> StreamEvent:
        index = len(self.calls)
        name = call["name"]
        arguments = parse_arguments(name, call.get("args"))
        # Older Gemini models send no id; ours must be stable across replays of the same body.
        self.calls.append(ToolCall(id=call.get("id") or f"call_{index}_{name}", name=name, arguments=arguments))
        delta = ToolCallDelta(index=index, id=self.calls[-1].id, name=name, arguments=json.dumps(arguments))
        return StreamEvent(kind="tool_call", tool_call=delta)

    def decoded(self) -> Decoded:
        return Decoded(
            text="".join(self.text),
            reasoning="".join(self.reasoning),
            tool_calls=self.calls,
            raw_finish_reason=self.finish,
            raw_usage=self.usage,
            model=self.model,
        )


def decode(body: Any) -> Decoded:
    parts = _Parts()
    parts.add(body)  # raises on an error object first
    if not body.keys() & {"candidates", "promptFeedback", "usageMetadata"}:
        raise WireFormatError("a generateContent response needs candidates, promptFeedback or usageMetadata")
    return parts.decoded()


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._parts = _Parts()

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        chunk = parse_json(event.data, "a stream chunk")
        self.chunks.append(chunk)
        return self._parts.add(chunk)

    def finish(self) -> Decoded:
        if self._parts.finish is None:
            raise WireFormatError("the stream ended before a chunk with a finishReason")
        return self._parts.decoded()
