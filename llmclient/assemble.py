"""A provider's reply -> a `Response` or a typed error; the same for a call and a stream.

This is the decode boundary: every entry point (`Assembler.response`, `.http_error`,
`StreamAssembly.feed` / `.finish`) turns a decoding failure of any kind (a missing key, a wrong
type, invalid or too deeply nested JSON, a token count that is no count) into
`MalformedResponseError` carrying the HTTP status, the content type and a short excerpt of what
arrived; no other exception escapes from what a provider sent. An error body that cannot be read
still gives the typed error of its HTTP status.

Truthful results: an answer the provider withheld (an OpenAI refusal, a Gemini prompt blocked
by `promptFeedback.blockReason`) has finish_reason "content_filter" (the refusal text in
`Response.refusal`, Gemini's block reason in `raw_finish_reason`): a 200 answer, not a
ContentFilterError, which is a refused request (HTTP 400). A stream that asked for its usage
(OpenAI wire, `stream_options.include_usage`) and ended without it gives `usage=None` and a
`UsageMissingWarning`.
"""

from __future__ import annotations

import json
import time
import warnings
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any

from llmclient import pricing
from llmclient.errors import APIError, MalformedResponseError, UsageMissingWarning, classify, excerpt
from llmclient.providers import ProviderSpec
from llmclient.types import FinishReason, Response, StreamEvent
from llmclient.wire import (
    Decoded,
    StreamDecoder,
    StreamErrorEvent,
    WireFormatError,
    codec,
    normalise_finish,
    normalise_usage,
    parse_json,
)
from llmclient.wire.sse import SSEEvent, SSEParser

# What a decoder may raise on a body of the wrong shape (UnicodeDecodeError and pydantic's
# ValidationError are ValueErrors; RecursionError is a RuntimeError, OverflowError arithmetic).
SHAPE_ERRORS = (WireFormatError, LookupError, TypeError, AttributeError, ValueError, RecursionError, ArithmeticError)


class Assembler:
    """Knows one provider's wire format and builds its responses and errors."""

    def __init__(self, spec: ProviderSpec, model_id: str, base_url: str | None = None) -> None:
        self.spec = spec
        self.model_id = model_id
        # Where the calls go (the Client's base_url, else the spec's): a router's URL can name the
        # upstream that bills the call (Hugging Face's router.huggingface.co/<provider>/v1).
        self.base_url = base_url or spec.base_url or None
        self.codec = codec(spec.wire)
        # Priced as the provider that answered: litellm's model strings name it first
        # ("bedrock/...", "azure/..."), as the price table's keys do.
        self._priced_by = spec.name
        if spec.wire == "litellm" and "/" in model_id:
            self._priced_by = model_id.split("/", 1)[0]

    def http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIError:
        """The typed error of a non-2xx answer. A redirect is never followed (the key would go
        with it): it is an APIError naming the status and where it pointed."""
        text = body.decode("utf-8", errors="replace")
        if 300 <= status < 400:
            location = next((value for name, value in headers.items() if name.lower() == "location"), None)
            where = f"to {location!r}" if location else "without a Location header"
            return APIError(f"HTTP {status} redirect {where}: redirects are not followed (the API key would go "
                            f"with them); check base_url", provider=self.spec.name, model=self.model_id,
                            status_code=status)
        try:
            payload: Any = parse_json(body, "the error body")
        except WireFormatError:
            payload = None
        return self._classified(status, payload, headers, text)

    def stream_error(self, event: StreamErrorEvent) -> APIError:
        return self._classified(None, event.payload, {}, str(event.payload))

    def _classified(self, status: int | None, payload: Any, headers: Mapping[str, str], text: str) -> APIError:
        return classify(status, payload, headers=headers, provider=self.spec.name, model=self.model_id, body_text=text)

    def malformed(self, problem: BaseException, sample: str | bytes, *, status: int | None = None,
                  content_type: str | None = None) -> MalformedResponseError:
        """The error for a reply that could not be read: what went wrong (the JSON parser's own
        error when it was one, worded as `json` words it), the HTTP status and content type it
        came with (when known), and how the reply began, all in its message. `status_code` stays
        None, as the conformance suite expects of a malformed answer: the HTTP exchange succeeded,
        the content did not."""
        cause = problem.__cause__
        parts = [f"{type(problem).__name__}: {excerpt(str(problem), 300)}"]
        if isinstance(problem, WireFormatError) and isinstance(cause, ValueError):  # "...: JSONDecodeError: ...; <what>"
            parts = [f"{type(cause).__name__}: {excerpt(str(cause), 300)}", str(problem)]
        parts += [f"HTTP {status}"] if status is not None else []
        parts += [f"content type {content_type!r}"] if content_type else []
        return MalformedResponseError(
            f"could not read the response: {'; '.join(parts)}; it began: {excerpt(sample)!r}",
            provider=self.spec.name,
            model=self.model_id,
        )

    def response(self, body: bytes, started: float, on: datetime | None = None, *, status: int = 200,
                 content_type: str | None = None) -> Response:
        """A whole (non-streamed) 2xx body as a Response (`status` is the answer's, 200 unless given)."""
        try:
            payload = parse_json(body, "the body")
            decoded = self.codec.decode(payload)
        except StreamErrorEvent as event:  # an error object delivered with status 200
            raise self.stream_error(event) from event
        except SHAPE_ERRORS as problem:
            raise self.malformed(problem, body, status=status, content_type=content_type) from problem
        return self.build(decoded, payload if isinstance(payload, dict) else {"body": payload}, started, on,
                          status=status, content_type=content_type)

    def build(self, decoded: Decoded, raw: dict[str, Any], started: float, on: datetime | None = None, *,
              status: int | None = 200, content_type: str | None = None) -> Response:
        try:
            return self._build(decoded, raw, started, on)
        except SHAPE_ERRORS as problem:  # e.g. a token count that is no count
            raise self.malformed(problem, dumped(raw), status=status, content_type=content_type) from problem

    @property
    def asks_stream_usage(self) -> bool:
        """Whether this provider's streams ask for their usage (OpenAI `stream_options.include_usage`)."""
        return self.spec.wire == "openai" and self.spec.stream_usage

    def finish_reason(self, decoded: Decoded) -> FinishReason:
        if decoded.filtered:
            return "content_filter"
        return normalise_finish(self.codec.FINISH_REASONS, decoded.raw_finish_reason, bool(decoded.tool_calls))

    def _build(self, decoded: Decoded, raw: dict[str, Any], started: float, on: datetime | None) -> Response:
        _check_answer(decoded, self.finish_reason(decoded))
        normalised = normalise_usage(self.spec.wire, decoded.raw_usage)
        if normalised is not None and decoded.tool_uses:  # counted in the answer, not its usage object
            normalised = normalised.model_copy(update={"tool_uses": {**normalised.tool_uses, **decoded.tool_uses}})
        model = decoded.model or self.model_id
        priced_model = decoded.model or self.model_id.removeprefix(self._priced_by + "/")
        return Response(
            text=decoded.text,
            reasoning=decoded.reasoning or None,
            tool_calls=decoded.tool_calls,
            finish_reason=self.finish_reason(decoded),
            raw_finish_reason=decoded.raw_finish_reason,
            refusal=decoded.refusal,
            usage=normalised,
            cost=pricing.cost(
                self._priced_by, priced_model, normalised, decoded.raw_usage, on=_priced_at(decoded, on),
                base_url=self.base_url, service_tier=decoded.service_tier,
            ),
            model=model,
            provider=self.spec.name,
            latency_ms=(time.perf_counter() - started) * 1000,
            raw=raw,
        )


def answered_at(headers: Mapping[str, str]) -> datetime | None:
    """When the provider answered, by its Date header (UTC); None without one."""
    value = headers.get("date")
    if not value:
        return None
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return moment.astimezone(timezone.utc) if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _priced_at(decoded: Decoded, answered: datetime | None) -> datetime | None:
    """The moment a call is priced at: the provider's own timestamp of the answer (`created`),
    else its Date header, else None (now). A call answered before a price change or an alias move
    is priced as it was billed then; time-of-day prices need the time, not only the day."""
    if decoded.created is not None:
        try:
            return datetime.fromtimestamp(decoded.created, timezone.utc)
        except (OverflowError, OSError, ValueError):  # a timestamp no calendar holds: the next source
            pass
    return answered


def _check_answer(decoded: Decoded, finish: FinishReason) -> None:
    """What every answer must be: named tool calls with ids, a finish that fits them, and an answer
    (text, a tool call, a refusal, or at least an empty text field with a finish reason other than
    "stop"): a body with none of these, reasoning alone included, is not an answer."""
    if decoded.model is not None and not isinstance(decoded.model, str):
        raise WireFormatError(f"the model is a {type(decoded.model).__name__}, not a name")
    for call in decoded.tool_calls:
        if not call.name or not call.id:
            raise WireFormatError(f"tool call {call.id!r} named {call.name!r} has no {'id' if call.name else 'name'}")
    if finish == "tool_calls" and not decoded.tool_calls:
        raise WireFormatError(f"finish reason {decoded.raw_finish_reason!r} with no tool call")
    if decoded.text or decoded.tool_calls or decoded.filtered or decoded.said_text:
        return
    if finish == "stop" or decoded.raw_finish_reason is None:
        raise WireFormatError("the answer has no text, tool call or refusal")


def dumped(raw: Any) -> str:
    """`raw` as JSON text for a message (its repr when it is not JSON)."""
    try:
        return json.dumps(raw, default=str)
    except (ValueError, TypeError, RecursionError):
        return repr(raw)[:400]


class StreamAssembly:
    """Turns a stream's bytes, as they arrive, into events, and its end into a Response.
    `status` and `content_type` are the HTTP answer's, quoted in a MalformedResponseError."""

    def __init__(self, assembler: Assembler, started: float, on: datetime | None = None, *, status: int = 200,
                 content_type: str | None = "text/event-stream") -> None:
        self._assembler = assembler
        self._started = started
        self._on = on
        self._status = status
        self._content_type = content_type
        self._parser = SSEParser()
        self._decoder: StreamDecoder = assembler.codec.StreamDecoder()
        self._closed = False
        self.events_read = 0  # whole server-sent events so far (pings included): the stream's progress

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._decoder.done:
            return []  # past the end marker: nothing more is read
        try:
            events = self._parser.feed(chunk)
        except UnicodeDecodeError as problem:  # bytes that are not UTF-8: fine only after the end marker
            # `start` counts from the bytes the parser held back from earlier chunks, then this one
            return self._before(chunk[: max(0, problem.start - (len(problem.object) - len(chunk)))], problem, chunk)
        except SHAPE_ERRORS as problem:
            raise self._malformed(problem, chunk) from problem
        self.events_read += len(events)
        return self._decode(events)

    def _before(self, valid: bytes, problem: UnicodeDecodeError, chunk: bytes) -> list[StreamEvent]:
        """The events in the valid start of a chunk whose rest is not UTF-8: they must reach the
        end marker, else the stream is malformed."""
        try:
            events = self._parser.feed(valid)
        except SHAPE_ERRORS:
            raise self._malformed(problem, chunk) from problem
        decoded = self._decode(events)
        if not self._decoder.done:
            raise self._malformed(problem, chunk) from problem
        return decoded

    def close(self) -> list[StreamEvent]:
        """The events of the last event of the body (one without its closing blank line), to
        deliver before `finish()`; nothing once called."""
        if self._closed:
            return []
        self._closed = True
        try:
            events = self._parser.close()
        except SHAPE_ERRORS as problem:
            if not self._decoder.done:
                raise self._malformed(problem, b"") from problem
            events = []
        return self._decode(events)

    def finish(self) -> Response:
        self.close()
        try:
            decoded = self._decoder.finish()
        except StreamErrorEvent as error:  # a generation that failed on the provider's side
            raise self._assembler.stream_error(error) from error
        except SHAPE_ERRORS as problem:
            last = self._decoder.chunks[-1] if self._decoder.chunks else ""
            raise self._malformed(problem, dumped(last)) from problem
        response = self._assembler.build(decoded, {"chunks": self._decoder.chunks}, self._started, self._on,
                                         status=self._status, content_type=self._content_type)
        if response.usage is None and self._assembler.asks_stream_usage:
            warnings.warn(UsageMissingWarning(
                f"{self._assembler.spec.name}/{self._assembler.model_id}: the stream ended without the usage it asked "
                f"for (stream_options.include_usage); Response.usage is None"), stacklevel=2)
        return response

    def _malformed(self, problem: BaseException, sample: str | bytes) -> MalformedResponseError:
        return self._assembler.malformed(problem, sample, status=self._status, content_type=self._content_type)

    def _decode(self, events: list[SSEEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            try:
                decoded = self._decoder.feed(event)
            except StreamErrorEvent as error:
                raise self._assembler.stream_error(error) from error
            except SHAPE_ERRORS as problem:
                raise self._malformed(problem, event.data) from problem
            out = decoded if not out else out + decoded  # the usual chunk is one event: no copy
        return out
