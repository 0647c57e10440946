"""The values llmclient hands out and accepts: messages, tool calls, usage, cost, responses.

These are pure values (frozen pydantic models): no I/O, no provider knowledge. Provider wire
formats are decoded into them by `llmclient.wire`.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Sequence
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, NonNegativeInt, computed_field, model_validator

Role = Literal["system", "user", "assistant", "tool"]
ROLES: tuple[Role, ...] = ("system", "user", "assistant", "tool")

FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "other"]
"""Normalised finish reason; the provider's own value is kept in `Response.raw_finish_reason`."""


class _Value(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class TextPart(_Value):
    """A piece of text inside a message's content. `cache` marks the end of a prompt prefix the
    provider should cache ("5m" or "1h"; Anthropic cache_control — providers that cache on their
    own ignore it)."""

    type: Literal["text"] = "text"
    text: str
    cache: Literal["5m", "1h"] | None = None


class FilePart(_Value):
    """An attached file: an image, a PDF or plain text, sent inline or by `url`. Inline content is
    either `data` (base64) or a file on disk at `path`, read and base64-encoded in chunks while the
    request body is sent (so a large file is never held in memory); `size` is then its size when
    attached, the size its limits were checked at: a file whose size differs when the request is
    sent is refused, not sent. `resolved` is the file on disk the content was read from, symlinks
    followed (for a `path` part, `path` itself): what was really read, whatever path was given.
    Build one with `llmclient.files.attachment(...)` or pass `files=[...]` to a call."""

    type: Literal["file"] = "file"
    media_type: str
    name: str
    data: str | None = None  # base64
    url: str | None = None
    path: str | None = None
    size: int | None = None  # bytes, when known
    resolved: str | None = None  # the real file read from disk (absolute, symlinks followed), if any

    @model_validator(mode="after")
    def _one_source(self) -> FilePart:
        given = [field for field in ("data", "url", "path") if getattr(self, field) is not None]
        if len(given) != 1:
            raise ValueError(f"a FilePart has exactly one of data, url or path; {self.name} has {given or 'none'}")
        if self.path is not None and self.size is None:
            raise ValueError(f"a FilePart read from disk needs its size when attached; {self.name} has none")
        return self

    @property
    def label(self) -> str:
        """`name` for messages, with the file really read when its name differs (a symlink)."""
        if self.resolved is None or self.resolved.replace("\\", "/").rsplit("/", 1)[-1] == self.name:
            return self.name
        return f"{self.name} (read from {self.resolved})"

    @property
    def is_image(self) -> bool:
        return self.media_type.startswith("image/")

    @property
    def is_text(self) -> bool:
        return self.media_type == "text/plain"

    @property
    def text(self) -> str:
        """A plain-text file's content (an inline text/plain file is UTF-8, base64-encoded)."""
        if not self.is_text or self.data is None:
            raise ValueError(f"{self.name} is {self.media_type}{' by URL' if self.url else ''}, not inline plain text")
        return base64.b64decode(self.data).decode("utf-8")

    @property
    def data_url(self) -> str:
        if self.path is not None:
            raise ValueError(f"{self.name} is read from {self.path} as the request is sent; it has no data URL in memory")
        return self.url if self.url is not None else f"data:{self.media_type};base64,{self.data}"


Part = Annotated[TextPart | FilePart, Field(discriminator="type")]


class ToolCall(_Value):
    """A call the model asks the client to make. `arguments` is already parsed from JSON."""

    id: str
    name: str
    arguments: dict[str, Any]


class Message(_Value):
    """One turn of a conversation.

    `tool_calls` is set on assistant turns that called tools; `tool_call_id` (and, for providers
    that key results by name such as Gemini, `name`) on the `tool` turn that answers one.
    """

    role: Role
    content: str | list[Part] = ""
    tool_calls: list[ToolCall] = []
    tool_call_id: str | None = None
    name: str | None = None

    @classmethod
    def system(cls, text: str, *, cache: Literal["5m", "1h"] | None = None) -> Message:
        """System instructions; `cache="5m"`/`"1h"` asks the provider to cache them as a prefix."""
        return cls(role="system", content=[TextPart(text=text, cache=cache)] if cache else text)

    @classmethod
    def user(cls, text: str) -> Message:
        return cls(role="user", content=text)

    @classmethod
    def assistant(cls, text: str = "", tool_calls: list[ToolCall] | None = None) -> Message:
        return cls(role="assistant", content=text, tool_calls=tool_calls or [])

    @classmethod
    def tool_result(cls, call: ToolCall, result: Any, *, files: Sequence[Any] = ()) -> Message:
        """The answer to `call`; a non-string `result` is sent as JSON. `files` (paths, bytes,
        file objects, as for `files=` on a call) travel with the result: inside it where the
        provider supports that (Anthropic, Gemini 3), else in a user turn right after the results."""
        text = tool_result_text(call.name, result)
        if not files:
            return cls(role="tool", content=text, tool_call_id=call.id, name=call.name)
        from llmclient.files import attachment  # files builds on these types

        parts: list[TextPart | FilePart] = [TextPart(text=text), *(attachment(item) for item in files)]
        return cls(role="tool", content=parts, tool_call_id=call.id, name=call.name)

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content if isinstance(part, TextPart))

    @property
    def files(self) -> list[FilePart]:
        return [] if isinstance(self.content, str) else [p for p in self.content if isinstance(p, FilePart)]


def tool_result_text(tool_name: str, result: Any) -> str:
    """A tool result as the text sent to the model; raises if it cannot be JSON-encoded."""
    if isinstance(result, str):
        return result
    try:
        return json.dumps(result, ensure_ascii=False, allow_nan=False)  # NaN is not JSON
    except (TypeError, ValueError) as exc:
        from llmclient.errors import InvalidRequestError

        raise InvalidRequestError(
            f"the result of tool {tool_name!r} is a {type(result).__name__}, which is not JSON-serialisable "
            f"({exc}); return a str, or a dict/list of JSON values"
        ) from exc


class UsageIteration(_Value):
    """One server-side iteration billed within a single response (Anthropic `usage.iterations`:
    compaction, advisor calls). `model` is set when another model than the requested one ran it."""

    kind: str
    model: str | None = None
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0


class Usage(_Value):
    """Token counts with the same meaning for every provider (buckets are inclusive).

    - `input_tokens`: ALL prompt tokens billed = uncached + cache reads + cache writes.
    - `cache_read_tokens`, `cache_write_tokens`: included in `input_tokens` (0 when not reported).
    - `output_tokens`: ALL output billed, reasoning included.
    - `reasoning_tokens`: included in `output_tokens`; 0 unless the provider reported it.
    - `iterations`: per-iteration detail when the provider billed several (their sum is above).
    - `tool_uses`: built-in (server-side) tools the provider ran and bills per use, by kind, as it
      reported them: `web_search` (searches performed: Anthropic `server_tool_use.web_search_requests`,
      Gemini's search queries, Groq Compound's searches), `grounded_prompt` (a Gemini answer grounded
      with Google Search), `web_fetch`, `visit_website`; empty when none ran.

    Numbers are the provider's own, never estimates. Where a provider's own numbers break the
    inclusion (Cohere reports cached tokens outside its billed input; OpenRouter can report the
    same tokens as both read and written) they are kept as reported rather than "fixed".
    """

    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cache_read_tokens: NonNegativeInt = 0
    cache_write_tokens: NonNegativeInt = 0
    reasoning_tokens: NonNegativeInt = 0
    iterations: tuple[UsageIteration, ...] = ()
    tool_uses: dict[str, NonNegativeInt] = {}

    @model_validator(mode="before")
    @classmethod
    def _accept_own_total(cls, data: Any) -> Any:
        """Let a dumped Usage load back: `total_tokens` is derived, so it must agree."""
        if isinstance(data, dict) and "total_tokens" in data:
            data = dict(data)
            total = data.pop("total_tokens")
            if total != data.get("input_tokens", 0) + data.get("output_tokens", 0):
                raise ValueError(f"total_tokens {total} is not input_tokens + output_tokens")
        return data

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __hash__(self) -> int:  # tool_uses is a dict: hashed as its items
        return hash((self.input_tokens, self.output_tokens, self.cache_read_tokens, self.cache_write_tokens,
                     self.reasoning_tokens, self.iterations, tuple(sorted(self.tool_uses.items()))))


class Prices(_Value):
    """The per-token USD prices a `Cost` used, and where they came from: the table row (`model`,
    `source`, `as_of`, `table_version`), the input-size tier and the service tier applied."""

    input: Decimal
    output: Decimal
    cache_read: Decimal | None = None
    cache_write: Decimal | None = None
    cache_write_1h: Decimal | None = None
    reasoning: Decimal | None = None
    above_input_tokens: int | None = None  # the tier applied: prices for requests above this size
    service_tier: str | None = None  # "batch" | "priority" | "flex" when those prices applied
    time_of_day: str | None = None  # "16:30-00:30 UTC" when a time-of-day price (an off-peak discount) applied
    tool_fees: dict[str, Decimal] | None = None  # USD per use of each built-in tool charged (`Usage.tool_uses`)
    model: str | None = None  # the table entry, e.g. "anthropic/claude-sonnet-4-5-20250929"
    source: str
    as_of: str
    table_version: str | None = None


class Cost(_Value):
    """USD cost of one response. `input` is the uncached part of the prompt.

    `tools` is the built-in tools' per-use fees (web search, grounding), from the counters in
    `Usage.tool_uses` at `prices.tool_fees`. `source="provider"` means the provider reported the
    charge itself (e.g. OpenRouter `usage.cost`, with a BYOK call's upstream charge added); then
    `total` is that figure and `computed_total` is ours, for comparison. `source="cache"`: the
    answer came from the response cache (`llmclient.cache`), nothing was billed, every part is 0.
    """

    input: Decimal
    cache_read: Decimal
    cache_write: Decimal
    output: Decimal
    tools: Decimal = Decimal(0)
    total: Decimal
    source: Literal["provider", "price-table", "cache"]
    prices: Prices | None = None
    computed_total: Decimal | None = None


class Response(_Value):
    """A completed model response (also what a stream leaves behind in `Stream.response`)."""

    text: str
    reasoning: str | None = None
    tool_calls: list[ToolCall] = []
    finish_reason: FinishReason
    raw_finish_reason: str | None = None
    refusal: str | None = None
    """The model's refusal (OpenAI `message.refusal`), then finish_reason is "content_filter"; None when it did not refuse."""
    usage: Usage | None
    """None only when the provider reported no usage at all (never filled in with estimates)."""
    cost: Cost | None = None
    model: str
    provider: str
    latency_ms: float
    raw: dict[str, Any]
    """The provider's JSON body; for streams `{"chunks": [...]}`, every event payload in order."""

    retries: tuple[RetryRecord, ...] = ()
    """Failed attempts before this response, in order: retries, and models skipped for a fallback
    (each record names its model); empty when the first attempt answered."""
    rejected: tuple[Attempt, ...] = ()
    """Earlier answers that `complete(..., validators=...)` refused and asked again about, in order."""
    cached: bool = False
    """True when the answer came from the response cache (`llmclient.cache`): no request was sent,
    and `cost` is zero (`source="cache"`); `usage` is the original answer's."""

    @property
    def message(self) -> Message:
        """This response as the assistant turn to append to a conversation."""
        return Message.assistant(self.text, self.tool_calls)

    @property
    def total_usage(self) -> Usage:
        """Usage billed for this response plus every rejected attempt before it (what the answer
        took); an answer from the response cache adds nothing (it was not billed again)."""
        return sum_usage([*(a.response.billed_usage for a in self.rejected), self.billed_usage])

    @property
    def billed_usage(self) -> Usage | None:
        """`usage`, or None when the answer came from the response cache (no token was billed)."""
        return None if self.cached else self.usage

    @property
    def total_cost(self) -> Cost | None:
        """Cost of this response plus every rejected attempt; None when any part is unknown."""
        return sum_cost([*(a.response.cost for a in self.rejected), self.cost])


class RetryRecord(_Value):
    """One failed attempt of a call: on which model, the error class, its status and message,
    and the seconds waited before the next attempt (0 when the next went to a fallback)."""

    model: str
    error: str
    status_code: int | None = None
    message: str = ""
    waited: float = 0.0


class Attempt(_Value):
    """One answer in a validate-and-ask-again loop: the response, the text that was checked
    (for structured output, the JSON the model produced), and why it was refused (None: accepted)."""

    response: Response
    raw: str
    error: str | None


Response.model_rebuild()  # `rejected` refers to Attempt, defined after Response


def sum_usage(usages: list[Usage | None]) -> Usage:
    """The usage of several calls together (a call that reported none adds nothing)."""
    present = [u for u in usages if u is not None]
    fields = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")
    return Usage(**{name: sum(getattr(u, name) for u in present) for name in fields})


def sum_cost(costs: list[Cost | None]) -> Cost | None:
    """The cost of several calls together; None when any is unknown (never a partial sum)."""
    if not costs or any(c is None for c in costs):
        return None
    known = [c for c in costs if c is not None]
    parts = {name: sum((getattr(c, name) for c in known), Decimal(0))
             for name in ("input", "cache_read", "cache_write", "output", "tools", "total")}
    billed = [c for c in known if c.source != "cache"] or known  # a cache hit adds nothing, nor says where dollars came from
    sources = {c.source for c in billed}
    source = sources.pop() if len(sources) == 1 else "price-table"  # provider and price table: part of it was computed
    computed = [c.computed_total for c in billed if c.computed_total is not None]
    computed_total = sum(computed, Decimal(0)) if source == "provider" and len(computed) == len(billed) else None
    return Cost(**parts, source=source, prices=billed[-1].prices, computed_total=computed_total)


class ToolCallDelta(_Value):
    """A fragment of a streamed tool call; `arguments` is a piece of the JSON text."""

    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


class StreamEvent(_Value):
    """One increment of a stream: a text or reasoning delta, or a tool-call fragment."""

    kind: Literal["text", "reasoning", "tool_call"]
    text: str = ""
    tool_call: ToolCallDelta | None = None
