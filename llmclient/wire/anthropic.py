"""Anthropic Messages (`/v1/messages`), both directions.

Requests: system text goes to the top-level `system`; tool results are `tool_result` blocks in a
user turn; same-role turns are merged (results first in a user turn, as the API requires); inline
images and PDFs are `FileData`, streamed into the body by the transport.

Responses: only `tool_use` blocks are client tool calls: `server_tool_use` (web search, code
execution, advisor) and its result blocks run on Anthropic's side and are not listed. `thinking`
blocks are reasoning, never text. Stream usage is `message_start.usage` updated key by key by the
non-null values of `message_delta.usage`; nothing after `message_stop` is read. A text block or
`text_delta` without text (null) is malformed, not "".
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.types import FilePart, FinishReason, Message, StreamEvent, TextPart, ToolCall, Usage, UsageIteration
from llmclient.wire import (
    Decoded,
    FileData,
    StreamErrorEvent,
    ToolCallAccumulator,
    WireFormatError,
    WireRequest,
    cache_control,
    file_text,
    first_of,
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
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # "pause_turn" (a server tool loop paused, continue the turn) is deliberately "other", not stop.
}


API_VERSION = "2023-06-01"  # the `anthropic-version` header every request carries
_TOOL_CHOICES: Mapping[str, dict[str, str]] = {
    "auto": {"type": "auto"}, "none": {"type": "none"}, "required": {"type": "any"},
}


def encode(request: Request, spec: ProviderSpec, model_id: str, *, stream: bool) -> WireRequest:
    options = dict(request.options)
    budget = thinking_budget(options, "Anthropic")
    max_tokens = request.max_tokens if request.max_tokens is not None else spec.default_max_tokens
    if max_tokens is None:
        raise InvalidRequestError(f"{spec.name} (Anthropic Messages) requires max_tokens: pass max_tokens=..., "
                                  f"or give its ProviderSpec a default_max_tokens")
    if budget and request.max_tokens is None:
        max_tokens += budget  # the default is for the answer; thinking comes on top of it
    elif budget and max_tokens <= budget:
        raise InvalidRequestError(f"max_tokens={max_tokens} must be above the thinking budget of {budget} tokens that "
                                  f"reasoning_effort={request.options['reasoning_effort']!r} asks for (Anthropic counts "
                                  f"thinking in max_tokens): raise max_tokens or lower the effort")
    # "stream" is sent either way, as the official SDK does (false is the API's default).
    body: dict[str, Any] = {"model": model_id, "max_tokens": max_tokens, "messages": _turns(request, spec, model_id),
                            "stream": stream}
    system = _system(request.messages, spec)
    if system is not None:
        body["system"] = system
    _add_tools(body, request, spec)
    if request.stop is not None and not all(sequence.strip() for sequence in request.stop):
        # The API answers 400 "stop_sequences: each stop sequence must contain non-whitespace"
        # (quoted in BerriAI/litellm#3286); dropping the sequence would let the answer run on.
        raise UnsupportedCapabilityError(f"Anthropic takes no stop sequence of only whitespace, got stop={request.stop!r}: "
                                         f"stop on text around it, or cut the answer yourself")
    for key, value in (("temperature", request.temperature), ("top_p", request.top_p), ("stop_sequences", request.stop)):
        if value is not None:
            body[key] = value
    if request.response_format is not None:
        body["output_config"] = {"format": _output_format(request.response_format)}
    if budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    return WireRequest("/v1/messages", with_options(body, options), {"anthropic-version": API_VERSION})


def _system(messages: list[Message], spec: ProviderSpec) -> str | list[dict[str, Any]] | None:
    """The system text as a string; as text blocks when a part asks for a cache breakpoint. The
    blocks' texts concatenate to the string form: messages joined by a blank line."""
    system = [message for message in messages if message.role == "system"]
    if any(message.files for message in system):
        raise UnsupportedCapabilityError("Anthropic's system prompt takes text only: attach files to a user message")
    if not system:
        return None
    parts = [[TextPart(text=m.content)] if isinstance(m.content, str) else m.content for m in system]
    if not (spec.cache_markers and any(isinstance(p, TextPart) and p.cache for ps in parts for p in ps)):
        return "\n\n".join(message.text for message in system)
    blocks: list[dict[str, Any]] = []
    for index, message_parts in enumerate(parts):
        texts = [part for part in message_parts if isinstance(part, TextPart) and part.text]
        blocks += [_text(("\n\n" if index and not n else "") + part.text, part.cache, spec) for n, part in enumerate(texts)]
    return blocks


def _turns(request: Request, spec: ProviderSpec, model_id: str) -> list[dict[str, Any]]:
    """User and assistant turns. Tool results are user content, and consecutive turns of one role
    merge: every result of an assistant turn's calls must be in the very next user turn."""
    turns: list[dict[str, Any]] = []
    for message in request.messages:
        if message.role == "system":
            continue
        role = "assistant" if message.role == "assistant" else "user"
        blocks = _tool_result(message, spec, model_id) if message.role == "tool" else _blocks(message, spec)
        if not blocks:
            continue  # an empty turn says nothing, and the API refuses empty content
        if turns and turns[-1]["role"] == role:
            turns[-1]["content"].extend(blocks)
        else:
            turns.append({"role": role, "content": blocks})
    for turn in turns:
        # In a user turn the tool_result blocks must come first, before any text or file.
        turn["content"].sort(key=lambda block: block["type"] != "tool_result")
    if not turns:
        raise InvalidRequestError("Anthropic needs a user or assistant message besides the system instructions: "
                                  "send the instructions as the user message")
    return turns


def _blocks(message: Message, spec: ProviderSpec) -> list[dict[str, Any]]:
    blocks = _content(message, spec)
    if message.role == "assistant":
        if any(block["type"] in ("image", "document") for block in blocks):
            raise UnsupportedCapabilityError("an assistant turn cannot carry images or PDFs on Anthropic; "
                                             "attach them to a user message")
        blocks += [{"type": "tool_use", "id": call.id, "name": call.name, "input": call.arguments}
                   for call in message.tool_calls]
    return blocks


def _tool_result(message: Message, spec: ProviderSpec, model_id: str) -> list[dict[str, Any]]:
    """A tool message as one `tool_result` block: its text, or blocks when it holds files or a
    cache breakpoint; no `content` at all for an empty result (empty text blocks are refused)."""
    if message.files and not spec.takes_tool_result_files(model_id):
        raise UnsupportedCapabilityError(f"{spec.name} takes no files inside a tool result for {model_id}; "
                                         f"send them in a user turn after the results")
    # The tool's name is not sent: Anthropic matches a result to its call by id alone.
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": message.tool_call_id}
    cached = spec.cache_markers and isinstance(message.content, list) and any(
        isinstance(part, TextPart) and part.cache for part in message.content)
    if message.files or cached:
        result["content"] = _content(message, spec)
    elif message.text.strip():
        result["content"] = message.text
    return [result]


def _content(message: Message, spec: ProviderSpec) -> list[dict[str, Any]]:
    """The message's text and files as blocks. Text of only whitespace is left out: the API
    refuses such a block ("messages: text content blocks must contain non-whitespace text",
    quoted in anthropics/claude-code#23369), and Claude's own turns often hold one, the "\n\n"
    before a tool_use, which a conversation sends back."""
    if isinstance(message.content, str):
        return [_text(message.content, None, spec)] if message.content.strip() else []
    return [_text(part.text, part.cache, spec) if isinstance(part, TextPart) else _file(part)
            for part in message.content if not (isinstance(part, TextPart) and not part.text.strip())]


def _text(text: str, cache: str | None, spec: ProviderSpec) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if cache is not None and spec.cache_markers:
        block["cache_control"] = cache_control(cache)
    return block


def _file(part: FilePart) -> dict[str, Any]:
    """Plain text as a text block naming the file; an image or a PDF by URL or inline (base64)."""
    if part.is_text:
        return {"type": "text", "text": file_text(part)}
    if not (part.is_image or part.media_type == "application/pdf"):
        raise UnsupportedCapabilityError(f"{part.name} is {part.media_type}: Anthropic takes images, PDFs and plain text")
    source: dict[str, Any] = (
        {"type": "url", "url": part.url} if part.url is not None
        else {"type": "base64", "media_type": part.media_type, "data": FileData(part)}
    )
    return {"type": "image" if part.is_image else "document", "source": source}


def _add_tools(body: dict[str, Any], request: Request, spec: ProviderSpec) -> None:
    tools, choice = offered_tools(request, spec.named_tool_choice)
    if not tools:
        if choice in (None, "auto", "none"):
            return  # without tools these choices ask nothing, and tool_choice alone is refused
        raise InvalidRequestError(f"tool_choice={choice!r} but no such tool was given")
    body["tools"] = [{"name": tool.name, **({"description": tool.description} if tool.description else {}),
                      "input_schema": tool.parameters} for tool in tools]
    if choice is not None:
        body["tool_choice"] = _TOOL_CHOICES.get(choice) or {"type": "tool", "name": choice}


def _output_format(response_format: ResponseFormat) -> dict[str, Any]:
    """Anthropic's JSON output is always schema-constrained (so `strict` is met either way) and
    unnamed (the name only labels the schema); it has no mode for "any JSON object"."""
    if response_format.type == "json_object" or response_format.json_schema is None:
        raise UnsupportedCapabilityError('Anthropic has no JSON mode without a schema: pass response_format '
                                         '{"type": "json_schema", "json_schema": {"schema": {...}}}')
    return {"type": "json_schema", "schema": response_format.json_schema}


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
            text.append(text_at(block, "text", "a text block"))
        elif kind == "thinking":
            reasoning.append(block.get("thinking") or "")
        elif kind == "tool_use":
            calls.append(ToolCall(id=block["id"], name=block["name"], arguments=parse_arguments(block["name"], block.get("input"))))
    usage = usage_object(body, "usage")
    return Decoded(
        text="".join(text),
        reasoning="".join(reasoning),
        tool_calls=calls,
        raw_finish_reason=body.get("stop_reason"),
        raw_usage=usage,
        model=body.get("model") or None,
        service_tier=_service_tier(usage),
        said_text=any(block.get("type") == "text" for block in body["content"]),
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
        self._said_text = False
        self.done = False

    def feed(self, event: SSEEvent) -> list[StreamEvent]:
        if self.done:
            return []  # nothing after message_stop is part of the answer
        payload = parse_json(event.data, f"a {event.event!r} event")
        self.chunks.append(payload)
        if not isinstance(payload, dict):
            raise WireFormatError(f"a stream event is a {type(payload).__name__}, not an object")
        kind = payload.get("type") or event.event
        if kind == "content_block_delta":  # nearly every event: a text delta, checked first
            delta = payload["delta"]
            if delta.get("type") == "text_delta":
                text = delta.get("text")
                if type(text) is not str:
                    text = text_at(delta, "text", "a text_delta")  # raises: null or not text
                self._said_text = True
                self._text.append(text)
                return [StreamEvent(kind="text", text=text)] if text else []
            return self._delta(payload["index"], delta)
        if kind == "error":
            raise StreamErrorEvent(payload)
        if kind == "message_start":
            message = payload["message"]
            self._model = message.get("model") or None
            self._usage = dict(usage_object(message, "usage") or {})
        elif kind == "content_block_start":
            return self._block_start(payload["index"], payload["content_block"])
        elif kind == "message_delta":
            self._finish = (payload.get("delta") or {}).get("stop_reason") or self._finish
            usage = usage_object(payload, "usage") or {}
            self._usage = {**(self._usage or {}), **{k: v for k, v in usage.items() if v is not None}}
        elif kind == "message_stop":
            self.done = True
        return []

    def _block_start(self, index: int, block: dict[str, Any]) -> list[StreamEvent]:
        kind = block.get("type")
        if kind == "text":
            text = text_at(block, "text", "a text block")
            self._said_text = True
            self._text.append(text)
            return text_event(text)
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
        if kind == "thinking_delta":  # (text_delta is handled in feed)
            self._reasoning.append(delta["thinking"])
            return reasoning_event(delta["thinking"])
        if kind == "input_json_delta" and index in self._tool_blocks:
            return [self._tools.add(index, arguments=delta.get("partial_json") or "")]
        return []

    def finish(self) -> Decoded:
        if not self.done:
            raise WireFormatError("the stream ended before message_stop")
        return Decoded(
            text="".join(self._text),
            reasoning="".join(self._reasoning),
            tool_calls=self._tools.calls(),
            raw_finish_reason=self._finish,
            raw_usage=self._usage,
            model=self._model,
            service_tier=_service_tier(self._usage),
            said_text=self._said_text,
        )


def _service_tier(usage: Any) -> str | None:
    """Anthropic reports the tier that billed the call ("standard", "priority", "batch") in usage."""
    tier = usage.get("service_tier") if isinstance(usage, dict) else None
    return tier if isinstance(tier, str) else None


# Each status's error type, from Anthropic's error docs (other statuses: api_error if 5xx, else
# invalid_request_error, which the docs say covers unlisted 4xx).
_ERROR_TYPES: Mapping[int, str] = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
                                   404: "not_found_error", 413: "request_too_large", 429: "rate_limit_error",
                                   529: "overloaded_error"}


def error_body(status: int, message: str, error_type: str | None,
               retry_after: float | None) -> tuple[dict[str, Any], dict[str, str]]:
    """Anthropic's error JSON for an HTTP error, and its headers (Retry-After in seconds)."""
    kind = error_type or _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")
    headers = {"retry-after": f"{retry_after:g}"} if retry_after is not None else {}
    return {"type": "error", "error": {"type": kind, "message": message}, "request_id": "req_simulated"}, headers


def _prompt_tokens(raw: dict[str, Any]) -> tuple[int, int, int]:
    """(all prompt tokens, cache reads, cache writes) of one Anthropic usage object."""
    read = first_of(int_at(raw, "cache_read_input_tokens"))
    write = first_of(int_at(raw, "cache_creation_input_tokens"))
    return first_of(int_at(raw, "input_tokens")) + read + write, read, write


def usage(raw: dict[str, Any]) -> Usage:
    """Anthropic usage: input_tokens exclude cache reads and writes, so all three are added;
    thinking tokens, when reported, are part of output. Responses with `usage.iterations`
    (compaction, advisor) are billed for every iteration, so the totals sum over them."""
    reasoning = first_of(int_at(raw, "output_tokens_details", "thinking_tokens"))
    tools = _server_tool_uses(raw)
    iterations = raw.get("iterations")
    if iterations is not None and not isinstance(iterations, list):
        raise WireFormatError(f"usage field iterations is a {type(iterations).__name__}, not a list")
    if not iterations:
        prompt, read, write = _prompt_tokens(raw)
        return Usage(
            input_tokens=prompt,
            output_tokens=first_of(int_at(raw, "output_tokens")),
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=reasoning,
            tool_uses=tools,
        )
    parts = []
    for item in iterations:
        if not isinstance(item, dict):
            raise WireFormatError(f"a usage iteration is a {type(item).__name__}, not an object")
        prompt, read, write = _prompt_tokens(item)
        parts.append(
            UsageIteration(
                kind=str(item.get("type") or "message"),
                model=item.get("model"),
                input_tokens=prompt,
                output_tokens=first_of(int_at(item, "output_tokens")),
                cache_read_tokens=read,
                cache_write_tokens=write,
            )
        )
    return Usage(
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        cache_read_tokens=sum(p.cache_read_tokens for p in parts),
        cache_write_tokens=sum(p.cache_write_tokens for p in parts),
        reasoning_tokens=reasoning,
        iterations=tuple(parts),
        tool_uses=tools,
    )


def _server_tool_uses(raw: dict[str, Any]) -> dict[str, int]:
    """`usage.server_tool_use`: `web_search_requests` (billed per search), `web_fetch_requests`,
    `code_execution_requests`, ... as `Usage.tool_uses` kinds (`web_search`, `web_fetch`, ...);
    the kinds that ran at least once."""
    counters = raw.get("server_tool_use")
    if counters is None:
        return {}
    if not isinstance(counters, dict):
        raise WireFormatError(f"usage field server_tool_use is a {type(counters).__name__}, not an object")
    uses = {}
    for name in counters:
        count = int_at(counters, name)
        if count and name.endswith("_requests"):
            uses[name.removesuffix("_requests")] = count
    return uses
