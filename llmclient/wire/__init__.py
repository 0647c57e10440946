"""The wire formats, one module each, both directions: a `Request` -> the HTTP request to send,
and the provider's bytes -> `Decoded`, so text, tool calls, finish reasons and raw usage are
exactly what the provider sent.

Every format module offers the same things:
- `encode(request, spec, model_id, *, stream) -> WireRequest` (path, JSON body, extra headers);
- `decode(body) -> Decoded`, `StreamDecoder`, `FINISH_REASONS`;
- `usage(raw) -> Usage`: the raw usage object in the contract's inclusive buckets (see `Usage`);
- `error_body(status, message, error_type, retry_after) -> (JSON body, headers)`: the provider's
  error answer, for test doubles and fault injection.
Nothing here does I/O; `llmclient.pipeline` sends what `encode` describes.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import ModuleType
from typing import TYPE_CHECKING, Any, Protocol

from llmclient.errors import InvalidRequestError
from llmclient.types import FilePart, FinishReason, StreamEvent, ToolCall, ToolCallDelta, Usage
from llmclient.wire.sse import SSEEvent

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec
    from llmclient.request import Request, Tool


@dataclass(frozen=True, slots=True)
class FileData:
    """A file's content inside a JSON body: serialised as the JSON string
    `"<prefix><base64 of the file>"`, the base64 read from disk (or the part's data) in chunks
    while the body is sent, so a large file is never held in memory whole."""

    part: FilePart
    prefix: str = ""


@dataclass(frozen=True, slots=True)
class WireRequest:
    """What one call sends, before the provider's base URL and key are added: `path` is appended
    to the base URL (it may carry a query, e.g. `?alt=sse`); `body` is JSON where any value may be
    a `FileData`; `headers` are the wire's own (the key header is added by the pipeline)."""

    path: str
    body: dict[str, Any]
    headers: Mapping[str, str] = field(default_factory=dict)


def file_text(part: FilePart) -> str:
    """A plain-text file as every wire sends it: a text block naming the file (every provider
    reads text; none needs a capability for it)."""
    if part.data is None:
        raise InvalidRequestError(f"{part.name}: a text file is sent as text, so it must be inline, not a URL or path")
    return f"<file name={json.dumps(part.name)}>\n{part.text}\n</file>"


def data_url(part: FilePart) -> str | FileData:
    """An image or PDF as a URL: its own, or a data URL whose base64 streams into the body."""
    return part.url if part.url is not None else FileData(part, f"data:{part.media_type};base64,")


def cache_control(cache: str) -> dict[str, str]:
    """Anthropic's cache breakpoint (also forwarded by OpenRouter): 5 minutes unless "1h"."""
    return {"type": "ephemeral", **({"ttl": "1h"} if cache == "1h" else {})}


def offered_tools(request: Request, named_choice: bool) -> tuple[list[Tool], str | None]:
    """The tools to send and the tool_choice to ask for. Where the API cannot force one named tool
    (`named_choice` False), forcing one offers only that tool and requires a call."""
    choice = request.tool_choice
    if choice in (None, "auto", "none", "required"):
        return list(request.tools), choice
    named = [tool for tool in request.tools if tool.name == choice]
    if not named:  # Request.build refuses this; a Request made by hand may not
        raise InvalidRequestError(f"tool_choice {choice!r} names no tool of this call")
    return (list(request.tools), choice) if named_choice else (named, "required")


def function_tool(tool: Tool) -> dict[str, Any]:
    """A tool in the chat-completions form (OpenAI's, and Cohere v2's); no description when empty."""
    function: dict[str, Any] = {"name": tool.name, "parameters": tool.parameters}
    if tool.description:
        function["description"] = tool.description
    return {"type": "function", "function": function}


def with_options(body: dict[str, Any], options: Mapping[str, Any]) -> dict[str, Any]:
    """`body` plus the call's provider options; an option naming a key the wire sets is refused."""
    clashes = sorted(set(options) & set(body))
    if clashes:
        raise InvalidRequestError(f"provider options may not set {clashes}: llmclient sets them from the call's "
                                  f"own arguments (messages, tools, max_tokens, ...)")
    return {**body, **options} if options else body


# `reasoning_effort` (OpenAI's spelling, sent as is on the OpenAI wire) as a thinking budget in
# tokens where the API takes a budget instead (Anthropic `thinking`, Gemini `thinkingConfig`): the
# budgets litellm maps the same efforts to, so a call means what it meant through litellm.
THINKING_BUDGETS: Mapping[str, int] = {"low": 1024, "medium": 2048, "high": 4096}


def thinking_budget(options: dict[str, Any], wire: str) -> int | None:
    """Take `reasoning_effort` out of `options`: its budget, 0 for "none", None when not given."""
    if "reasoning_effort" not in options:
        return None
    effort = options.pop("reasoning_effort")
    if effort == "none":
        return 0
    if effort not in THINKING_BUDGETS:
        raise InvalidRequestError(f"reasoning_effort must be one of none, {', '.join(THINKING_BUDGETS)} on the {wire} "
                                  f"wire (a thinking budget of {', '.join(map(str, THINKING_BUDGETS.values()))} tokens), "
                                  f"got {effort!r}")
    return THINKING_BUDGETS[effort]


class WireFormatError(Exception):
    """The body does not have the shape of its wire format (becomes MalformedResponseError)."""


class StreamErrorEvent(Exception):
    """The provider sent an error event inside a 200 stream; `payload` is its JSON."""

    def __init__(self, payload: Any) -> None:
        super().__init__(str(payload)[:200])
        self.payload = payload


@dataclass
class Decoded:
    """What one response said, in the provider's own terms (usage not yet normalised).

    `refusal` is the model's refusal text (OpenAI `message.refusal`); `filtered` says the provider
    withheld the answer (a refusal, a Gemini prompt blocked by `promptFeedback.blockReason`): the
    finish reason is then "content_filter" whatever `raw_finish_reason` says."""

    text: str = ""
    reasoning: str = ""
    tool_calls: list[ToolCall] = field(default_factory=list)
    raw_finish_reason: str | None = None
    raw_usage: dict[str, Any] | None = None
    model: str | None = None
    service_tier: str | None = None  # "flex", "priority", "batch" when the provider says so
    refusal: str | None = None
    filtered: bool = False
    said_text: bool = False  # a text field was there (even ""): "the answer is this text"
    created: float | None = None  # the provider's timestamp of the answer (unix seconds), when it gives one
    tool_uses: dict[str, int] = field(default_factory=dict)  # built-in tools run, counted from the answer


class StreamDecoder(Protocol):
    chunks: list[Any]
    """Every parsed event payload, in order (kept as the stream's raw body)."""
    done: bool
    """The end marker came ([DONE], message_stop, message-end): nothing after it is read."""

    def feed(self, event: SSEEvent) -> list[StreamEvent]: ...

    def finish(self) -> Decoded:
        """The whole response; raises WireFormatError if the terminal event never came."""
        ...


class Codec(Protocol):
    FINISH_REASONS: Mapping[str, FinishReason]

    def encode(self, request: Request, spec: ProviderSpec, model_id: str, *, stream: bool) -> WireRequest: ...

    def decode(self, body: Any) -> Decoded: ...

    def usage(self, raw: dict[str, Any]) -> Usage: ...

    def StreamDecoder(self) -> StreamDecoder: ...  # noqa: N802 - the module's class

    def error_body(self, status: int, message: str, error_type: str | None,
                   retry_after: float | None) -> tuple[dict[str, Any], dict[str, str]]: ...


def codec(wire: str) -> Codec:
    """The decoder module for a wire format name ("openai", "anthropic", "gemini", "cohere")."""
    from llmclient.wire import anthropic, cohere, gemini, openai

    # litellm and the claude-cli pipeline answer in the OpenAI format (llmclient.litellm_route, llmclient.claude_cli).
    modules: dict[str, ModuleType] = {"openai": openai, "anthropic": anthropic, "gemini": gemini, "cohere": cohere,
                                      "litellm": openai, "claude-cli": openai}
    return modules[wire]  # type: ignore[return-value,unused-ignore]


def normalise_usage(wire: str, raw: dict[str, Any] | None) -> Usage | None:
    """The provider's raw usage in the contract's buckets; None when it reported none at all."""
    return codec(wire).usage(raw) if raw else None


def int_at(container: Any, *path: str) -> int | None:
    """The token count at `path`: None when any step is missing or null (not reported). A value
    that is there but is no count (a string, a bool, a negative, a fraction, 1e999) raises
    WireFormatError naming the field: an unknown number never becomes a guessed 0."""
    value = container
    for key in path:
        if not isinstance(value, dict):
            if value is None:
                return None
            raise WireFormatError(f"usage field {'.'.join(path)}: {_shown(value)} is not an object")
        value = value.get(key)
    if value is None:
        return None
    if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
        return value
    if isinstance(value, float) and math.isfinite(value) and value >= 0 and value.is_integer():
        return int(value)
    raise WireFormatError(f"usage field {'.'.join(path)} is {_shown(value)}, not a token count")


def timestamp_at(container: Mapping[str, Any], key: str) -> float | None:
    """A unix timestamp in seconds at `key` (OpenAI-style `created`); None when absent, not a
    number, or not after 1970 (a server that fills in 0 has not said when)."""
    value = container.get(key)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
        return None
    return float(value)


def usage_object(container: Mapping[str, Any], key: str) -> dict[str, Any] | None:
    """The usage object at `key`: None when absent or null; any other non-object is malformed."""
    value = container.get(key)
    if value is None or isinstance(value, dict):
        return value
    raise WireFormatError(f"usage field {key} is {_shown(value)}, not an object")


def check_subset(part: int, whole: int, names: str) -> None:
    """A bucket the contract includes in another (cache reads in input, reasoning in output)."""
    if part > whole:
        raise WireFormatError(f"usage: {names} ({part} > {whole}): a part above its whole")


def check_cost(raw: Mapping[str, Any]) -> None:
    """A charge the provider reported (OpenRouter `usage.cost`) must be a finite amount >= 0."""
    value = raw.get("cost")
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
        raise WireFormatError(f"usage field cost is {_shown(value)}, not a charge in USD")


def _shown(value: Any) -> str:
    return f"{type(value).__name__} {repr(value)[:60]}"


def first_of(*values: int | None) -> int:
    return next((value for value in values if value is not None), 0)


def normalise_finish(
    table: Mapping[str, FinishReason], raw: str | None, has_tool_calls: bool
) -> FinishReason:
    """The provider's finish reason in our five words. A normal stop that carries client tool calls
    is "tool_calls" (Gemini says STOP there, some OpenAI-compatible servers "stop")."""
    reason: FinishReason = table.get(raw, "other") if raw else "other"
    if has_tool_calls and reason == "stop":
        return "tool_calls"
    return reason


# JSON nested deeper than this is refused: no provider's answer comes near it, and deeper
# structures would reach Python's recursion limit in json and everything that walks them.
MAX_DEPTH = 200


def parse_json(text: str | bytes, what: str) -> Any:
    """The one JSON parser for what a provider sends: invalid JSON, or JSON nested deeper than
    MAX_DEPTH, raises WireFormatError."""
    try:
        value = json.loads(text)
    except RecursionError as exc:
        raise WireFormatError(f"{what} nests deeper than {MAX_DEPTH} levels") from exc
    except ValueError as exc:  # the parser's own words are in the MalformedResponseError, from `exc`
        raise WireFormatError(f"{what} is not valid JSON") from exc
    # Cheap first: a text shorter than the limit, or with few brackets, cannot be that deep
    # (brackets in strings count too). Most stream chunks are shorter: nothing is counted.
    if len(text) <= MAX_DEPTH:
        return value
    opened = text.count("[") + text.count("{") if isinstance(text, str) else text.count(b"[") + text.count(b"{")
    if opened > MAX_DEPTH and too_deep(value):
        raise WireFormatError(f"{what} nests deeper than {MAX_DEPTH} levels")
    return value


def too_deep(value: Any, limit: int = MAX_DEPTH) -> bool:
    """Whether lists and objects in `value` nest more than `limit` levels (walked without recursion)."""
    if not isinstance(value, (dict, list)):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        children = item.values() if isinstance(item, dict) else item
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children if isinstance(child, (dict, list)))
    return False


def text_at(container: Mapping[str, Any], key: str, what: str) -> str:
    """The text a block must carry: a missing or null `text` is a malformed block, not ""."""
    value = container.get(key)
    if not isinstance(value, str):
        raise WireFormatError(f"{what} has {_shown(value)} as its {key!r}, not text")
    return value


def parse_arguments(name: str, arguments: Any) -> dict[str, Any]:
    """Tool-call arguments as a dict: JSON text is parsed, "" means no arguments."""
    if isinstance(arguments, str):
        arguments = parse_json(arguments, f"the arguments of tool call {name!r}") if arguments.strip() else {}
    if arguments is None:
        return {}
    if not isinstance(arguments, dict):
        raise WireFormatError(f"the arguments of tool call {name!r} are a {type(arguments).__name__}, not an object")
    return arguments


class ToolCallSlots:
    """Our index for each streamed tool-call fragment of the OpenAI dialect. OpenAI numbers a
    turn's calls by `index` and sends `id` and name on a call's first fragment only; servers that
    speak its dialect differ: Google's OpenAI-compatible endpoint leaves `index` out, Ollama gives
    every parallel call index 0 (openai-python#2806, ollama#15457). So a fragment whose `id` is
    not the id of the call its index (or, without one, the last call) points at starts a new call,
    as does a second call of one delta with neither index nor id."""

    def __init__(self) -> None:
        self._by_index: dict[int, int] = {}
        self._ids: list[str | None] = []

    def slot(self, index: Any, id: Any, position: int) -> int:
        if index is not None and (isinstance(index, bool) or not isinstance(index, int)):
            raise WireFormatError(f"a streamed tool call's index is {_shown(index)}, not an integer")
        id = id if isinstance(id, str) and id else None
        slot = self._by_index.get(index) if index is not None else (len(self._ids) - 1 if self._ids else None)
        if slot is None or (id is not None and self._ids[slot] not in (None, id)) or (
                index is None and id is None and position > 0):
            slot = len(self._ids)
            self._ids.append(id)
        elif id is not None:
            self._ids[slot] = id
        if index is not None:
            self._by_index[index] = slot
        return slot


class ToolCallAccumulator:
    """Assembles streamed tool calls from fragments keyed by the provider's index."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, Any]] = {}

    def add(self, index: Any, *, id: str | None = None, name: str | None = None, arguments: str = "") -> StreamEvent:
        if isinstance(index, bool) or not isinstance(index, int):
            raise WireFormatError(f"a streamed tool call's index is {_shown(index)}, not an integer")
        call = self._calls.setdefault(index, {"id": None, "name": None, "arguments": [], "parsed": None})
        call["id"] = call["id"] or id
        call["name"] = call["name"] or name
        if arguments:
            call["arguments"].append(arguments)
        return StreamEvent(kind="tool_call", tool_call=ToolCallDelta(index=index, id=id, name=name, arguments=arguments))

    def set_parsed(self, index: int, arguments: dict[str, Any]) -> None:
        """Arguments that arrived already parsed (Anthropic's `input` at block start)."""
        self._calls[index]["parsed"] = arguments

    def calls(self) -> list[ToolCall]:
        result = []
        for index in sorted(self._calls):
            call = self._calls[index]
            name = call["name"]
            if not isinstance(name, str) or not name:
                raise WireFormatError(f"streamed tool call {index} has no name")
            text = "".join(call["arguments"])
            arguments = parse_arguments(name, text) if text or call["parsed"] is None else call["parsed"]
            result.append(ToolCall(id=call["id"] or f"call_{index}", name=name, arguments=arguments))
        return result


def text_event(text: str) -> list[StreamEvent]:
    return [StreamEvent(kind="text", text=text)] if text else []


def reasoning_event(text: str) -> list[StreamEvent]:
    return [StreamEvent(kind="reasoning", text=text)] if text else []
