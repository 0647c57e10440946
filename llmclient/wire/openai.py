"""OpenAI chat-completions bodies (OpenAI and every OpenAI-compatible server).

Dialects handled: reasoning as `reasoning_content` (DeepSeek, Z.ai), `reasoning` (Groq,
OpenRouter, Cerebras) or `reasoning_details`; Mistral's content as a list of text/thinking parts;
Groq's legacy stream usage in `x_groq.usage`; error objects sent as a stream event.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmclient.types import FilePart, FinishReason, Message, StreamEvent, TextPart, ToolCall
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

if TYPE_CHECKING:
    from llmclient.request import Tool

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
    if choices is None:
        raise WireFormatError("the body has no 'choices'")
    decoded = Decoded(raw_usage=_usage(body), model=body.get("model") or None, service_tier=_tier(body))
    if not choices:
        return decoded
    choice = choices[0]
    if choice.get("finish_reason") in FAILED_GENERATION:
        raise _failed_generation(body, choice["finish_reason"])
    message = choice.get("message") or {}
    text, thinking = _content(message.get("content"))
    decoded.text = text
    decoded.reasoning = _reasoning(message) or thinking
    decoded.tool_calls = [
        ToolCall(id=call.get("id") or f"call_{i}", name=call["function"]["name"],
                 arguments=parse_arguments(call["function"]["name"], call["function"].get("arguments")))
        for i, call in enumerate(message.get("tool_calls") or [])
        if call.get("type", "function") == "function"
    ]
    decoded.raw_finish_reason = choice.get("finish_reason")
    return decoded


class StreamDecoder:
    def __init__(self) -> None:
        self.chunks: list[Any] = []
        self._text: list[str] = []
        self._reasoning: list[str] = []
        self._tools = ToolCallAccumulator()
        self._finish: str | None = None
        self._usage: dict[str, Any] | None = None
        self._model: str | None = None
        self._service_tier: str | None = None
        self._done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if event.data.strip() == "[DONE]":
            self._done = True
            return []
        chunk = parse_json(event.data, "a stream chunk")
        self.chunks.append(chunk)
        if not isinstance(chunk, dict):
            raise WireFormatError(f"a stream chunk is a {type(chunk).__name__}, not an object")
        # OpenRouter sends a mid-stream failure as a chunk that carries both `error` and choices;
        # vLLM-style servers as an `{"object": "error", ...}` chunk.
        if event.event == "error" or chunk.get("error") or chunk.get("object") == "error":
            raise StreamErrorEvent(chunk)
        self._model = self._model or chunk.get("model") or None
        self._service_tier = self._service_tier or _tier(chunk)
        usage = _usage(chunk)
        if usage is not None:
            self._usage = usage
        events: list[StreamEvent] = []
        for choice in chunk.get("choices") or []:
            if choice.get("index", 0) != 0:
                continue
            delta = choice.get("delta") or {}
            text, thinking = _content(delta.get("content"))
            reasoning = _reasoning(delta) or thinking
            self._text.append(text)
            self._reasoning.append(reasoning)
            events += reasoning_event(reasoning) + text_event(text)
            for position, call in enumerate(delta.get("tool_calls") or []):
                function = call.get("function") or {}
                events.append(
                    self._tools.add(
                        call.get("index", position),
                        id=call.get("id"),
                        name=function.get("name"),
                        arguments=function.get("arguments") or "",
                    )
                )
            if choice.get("finish_reason") in FAILED_GENERATION:
                raise _failed_generation(chunk, choice["finish_reason"])
            if choice.get("finish_reason"):
                self._finish = choice["finish_reason"]
        return events

    def finish(self) -> Decoded:
        if not self._done and self._finish is None:
            raise WireFormatError("the stream ended before [DONE] or a finish_reason")
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
            model=self._model,
            service_tier=self._service_tier,
        )


def _usage(body: dict[str, Any]) -> dict[str, Any] | None:
    usage = body.get("usage")
    if isinstance(usage, dict):
        return usage
    legacy = body.get("x_groq")
    if isinstance(legacy, dict) and isinstance(legacy.get("usage"), dict):
        return dict(legacy["usage"])
    return None


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
            text.append(part.get("text") or "")
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


def encode_message(message: Message, *, cache_markers: bool = False) -> dict[str, Any]:
    """A message in the chat-completions request format (also litellm's input format)."""
    content: Any = (
        message.content
        if isinstance(message.content, str)
        else [_text_block(part, cache_markers) if isinstance(part, TextPart) else _file_block(part) for part in message.content]
    )
    out: dict[str, Any] = {"role": message.role, "content": content}
    if message.role == "assistant":
        out["content"] = content or None
        if message.tool_calls:
            out["tool_calls"] = [
                {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": json.dumps(c.arguments)}}
                for c in message.tool_calls
            ]
    elif message.role == "tool":
        out["tool_call_id"] = message.tool_call_id
        if message.name:
            out["name"] = message.name
    return out


def _text_block(part: TextPart, cache_markers: bool) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": part.text}
    if part.cache is not None and cache_markers:
        block["cache_control"] = {"type": "ephemeral", **({"ttl": "1h"} if part.cache == "1h" else {})}
    return block


def _file_block(part: FilePart) -> dict[str, Any]:
    """A file as a chat-completions content block (litellm translates it for the other wires).
    Plain text is a text block naming the file: every provider reads it, none needs a capability."""
    if part.is_text:
        return {"type": "text", "text": f"<file name={json.dumps(part.name)}>\n{part.text}\n</file>"}
    if part.is_image:
        return {"type": "image_url", "image_url": {"url": part.data_url}}
    if part.url is not None:
        return {"type": "file", "file": {"file_id": part.url}}
    return {"type": "file", "file": {"filename": part.name, "file_data": part.data_url}}


def encode_tool(tool: Tool) -> dict[str, Any]:
    return {"type": "function", "function": {"name": tool.name, "description": tool.description, "parameters": tool.parameters}}
