"""llmclient's answers written back in the OpenAI chat-completions format.

- usage: `prompt_tokens` = input_tokens (cache reads and writes included), `completion_tokens` =
  output_tokens (reasoning included), `total_tokens`, `prompt_tokens_details.cached_tokens` =
  cache_read_tokens (and `cache_write_tokens` when there were any, as OpenRouter reports them),
  `completion_tokens_details.reasoning_tokens`; `cost` (USD, the exact decimal digits as a JSON
  number) when the cost is known, absent when it is not. `usage` is null when the provider
  reported none (never an estimate).
- finish_reason is llmclient's normalised one (`stop|length|tool_calls|content_filter`), except
  llmclient's `other` (a provider reason OpenAI has no word for), which is not an OpenAI value: it
  is sent as "stop", and that choice carries `"llmclient": {"finish_reason": "other",
  "raw_finish_reason": <the provider's own reason>}` (an extension field; OpenAI SDKs keep it in
  the choice's extra fields).
- streamed tool calls are indexed 0..n-1 in the order they first appear in the stream (OpenAI
  clients index `tool_calls` by it), not by the provider's content-block index.
- reasoning text, when the model gave any, is `message.reasoning_content` (`delta.reasoning_content`
  in a stream), as DeepSeek and others send it.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import uuid
from decimal import Decimal
from typing import Any

from llmclient.cli_text import decimal_text
from llmclient.types import Cost, Response, StreamEvent, Usage

_ENCODER = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"))


def new_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


def answered_by(response: Response) -> str:
    """"<provider>/<model id>" of the model that answered (a fallback's, maybe)."""
    return f"{response.provider}/{response.model}"


def header_text(text: str) -> str:
    """`text` as a header value every client reads back as it was: UTF-8 percent-encoded (RFC 3986,
    as RFC 8187 does for non-ASCII header values) outside visible ASCII, and "%" itself
    ("mock/模型" -> "mock/%E6%A8%A1%E5%9E%8B"; `urllib.parse.unquote` undoes it). An upstream's
    model id can hold anything, but a header carries Latin-1 at most (Starlette refuses the rest
    with a 500), clients decode it as ASCII or UTF-8, and a line break would end it."""
    return urllib.parse.quote(text, safe=_HEADER_SAFE)


_HEADER_SAFE = "".join(chr(code) for code in range(0x21, 0x7F) if chr(code) != "%")  # visible ASCII but "%"


def cost_text(cost: Cost | None) -> str | None:
    """The cost in USD as exact decimal digits ("0.0000275"), None when unknown."""
    return None if cost is None else decimal_text(cost.total)


def usage(value: Usage | None, cost: Cost | None) -> dict[str, Any] | None:
    if value is None:
        return None
    prompt_details: dict[str, Any] = {"cached_tokens": value.cache_read_tokens}
    if value.cache_write_tokens:
        prompt_details["cache_write_tokens"] = value.cache_write_tokens
    out: dict[str, Any] = {
        "prompt_tokens": value.input_tokens,
        "completion_tokens": value.output_tokens,
        "total_tokens": value.total_tokens,
        "prompt_tokens_details": prompt_details,
        "completion_tokens_details": {"reasoning_tokens": value.reasoning_tokens},
    }
    if cost is not None:
        out["cost"] = Decimal(cost.total)  # written as the exact number by `dumps`
    return out


def dumps(document: dict[str, Any], cost: Cost | None) -> str:
    """Compact JSON. With a `cost`, the document holds a Decimal (`usage.cost`), written as a JSON
    number with its exact digits (no float rounding); without one, plain `json`."""
    if cost is None:
        return _ENCODER.encode(document)
    return _encode(document)


def _encode(value: Any) -> str:
    """JSON with Decimals as exact numbers: containers walked here, every other value by `json`."""
    if isinstance(value, dict):
        return "{" + ",".join(f"{_ENCODER.encode(str(key))}:{_encode(item)}" for key, item in value.items()) + "}"
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(_encode(item) for item in value) + "]"
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise ValueError(f"{value} is not a JSON number")
        return decimal_text(value)
    return _ENCODER.encode(value)


def completion(response: Response, model: str, completion_id: str) -> dict[str, Any]:
    """A `chat.completion` object; `model` is the name the client asked for."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text or (None if response.tool_calls else ""),
                               "refusal": response.refusal}
    if response.reasoning:
        message["reasoning_content"] = response.reasoning
    if response.tool_calls:
        message["tool_calls"] = [{"id": call.id, "type": "function",
                                  "function": {"name": call.name, "arguments": json.dumps(call.arguments, ensure_ascii=False)}}
                                 for call in response.tool_calls]
    choice = {"index": 0, "message": message, "logprobs": None, **finish(response)}
    return {"id": completion_id, "object": "chat.completion", "created": int(time.time()), "model": model,
            "choices": [choice], "usage": usage(response.usage, response.cost)}


def finish(response: Response) -> dict[str, Any]:
    """A choice's `finish_reason` (an OpenAI value), and the `llmclient` extension when it is not
    llmclient's own: "other" goes out as "stop", with the provider's reason beside it."""
    if response.finish_reason != "other":
        return {"finish_reason": response.finish_reason}
    return {"finish_reason": "stop",
            "llmclient": {"finish_reason": "other", "raw_finish_reason": response.raw_finish_reason}}


class Chunks:
    """The `chat.completion.chunk` SSE events of one streamed answer."""

    def __init__(self, model: str, completion_id: str) -> None:
        self._head = {"id": completion_id, "object": "chat.completion.chunk", "created": int(time.time()), "model": model}
        self._tool_index: dict[int, int] = {}  # the provider's index of a call -> its place in this stream

    def _event(self, choices: list[dict[str, Any]], extra: dict[str, Any] | None = None,
               cost: Cost | None = None) -> bytes:
        document = {**self._head, "choices": choices, **(extra or {})}
        return f"data: {dumps(document, cost)}\n\n".encode()

    def first(self) -> bytes:
        return self._event([{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}])

    def delta(self, event: StreamEvent) -> bytes | None:
        if event.kind == "text":
            delta: dict[str, Any] = {"content": event.text}
        elif event.kind == "reasoning":
            delta = {"reasoning_content": event.text}
        elif event.tool_call is not None:
            call = event.tool_call
            entry: dict[str, Any] = {"index": self._tool_index.setdefault(call.index, len(self._tool_index))}
            if call.id is not None:
                entry["id"] = call.id
                entry["type"] = "function"
            function: dict[str, Any] = {"arguments": call.arguments}
            if call.name is not None:
                function["name"] = call.name
            entry["function"] = function
            delta = {"tool_calls": [entry]}
        else:
            return None
        return self._event([{"index": 0, "delta": delta, "finish_reason": None}])

    def finish(self, response: Response) -> bytes:
        return self._event([{"index": 0, "delta": {}, **finish(response)}])

    def usage(self, response: Response) -> bytes:
        """OpenAI's last chunk when `stream_options.include_usage`: no choices, the whole call's
        usage, and here its cost (`usage.cost`), known only now."""
        return self._event([], {"usage": usage(response.usage, response.cost)}, response.cost)

    @staticmethod
    def error(body: dict[str, Any]) -> bytes:
        return f"data: {json.dumps(body, ensure_ascii=False)}\n\n".encode()

    @staticmethod
    def done() -> bytes:
        return b"data: [DONE]\n\n"
