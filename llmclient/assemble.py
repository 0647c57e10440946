"""A provider's reply -> a `Response` or a typed error; the same for a call and a stream.

Decoding failures of any kind (a missing key, a wrong type, invalid JSON) become
`MalformedResponseError` naming the provider and quoting a short excerpt of what arrived.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from datetime import date
from email.utils import parsedate_to_datetime
from typing import Any

from llmclient import pricing
from llmclient.errors import APIError, MalformedResponseError, classify, excerpt
from llmclient.providers import ProviderSpec
from llmclient.types import Response, StreamEvent
from llmclient.wire import Decoded, StreamDecoder, StreamErrorEvent, WireFormatError, codec, normalise_finish, normalise_usage
from llmclient.wire.sse import SSEEvent, SSEParser

# What a decoder may raise on a body of the wrong shape.
_SHAPE_ERRORS = (WireFormatError, KeyError, IndexError, TypeError, AttributeError, ValueError)


class Assembler:
    """Knows one provider's wire format and builds its responses and errors."""

    def __init__(self, spec: ProviderSpec, model_id: str) -> None:
        self.spec = spec
        self.model_id = model_id
        self.codec = codec(spec.wire)
        # Priced as the provider that answered: litellm's model strings name it first
        # ("bedrock/...", "azure/..."), as the price table's keys do.
        self._priced_by = spec.name
        if spec.wire == "litellm" and "/" in model_id:
            self._priced_by = model_id.split("/", 1)[0]

    def http_error(self, status: int, headers: Mapping[str, str], body: bytes) -> APIError:
        text = body.decode("utf-8", errors="replace")
        try:
            payload: Any = json.loads(text)
        except ValueError:
            payload = None
        return classify(status, payload, headers=headers, provider=self.spec.name, model=self.model_id, body_text=text)

    def stream_error(self, event: StreamErrorEvent) -> APIError:
        return classify(None, event.payload, provider=self.spec.name, model=self.model_id, body_text=str(event.payload))

    def malformed(self, problem: BaseException, sample: str | bytes) -> MalformedResponseError:
        return MalformedResponseError(
            f"could not read the response ({type(problem).__name__}: {problem}); it began: {excerpt(sample)!r}",
            provider=self.spec.name,
            model=self.model_id,
        )

    def response(self, body: bytes, started: float, on: date | None = None) -> Response:
        """A whole (non-streamed) 2xx body as a Response."""
        try:
            payload = json.loads(body)
            decoded = self.codec.decode(payload)
        except StreamErrorEvent as event:  # an error object delivered with status 200
            raise self.stream_error(event) from event
        except _SHAPE_ERRORS as problem:
            raise self.malformed(problem, body) from problem
        return self.build(decoded, payload if isinstance(payload, dict) else {"body": payload}, started, on)

    def build(self, decoded: Decoded, raw: dict[str, Any], started: float, on: date | None = None) -> Response:
        try:
            return self._build(decoded, raw, started, on)
        except _SHAPE_ERRORS as problem:  # e.g. a negative token count (pydantic ValidationError is a ValueError)
            raise self.malformed(problem, json.dumps(raw, default=str)) from problem

    def _build(self, decoded: Decoded, raw: dict[str, Any], started: float, on: date | None) -> Response:
        normalised = normalise_usage(self.spec.wire, decoded.raw_usage)
        model = decoded.model or self.model_id
        priced_model = decoded.model or self.model_id.removeprefix(self._priced_by + "/")
        return Response(
            text=decoded.text,
            reasoning=decoded.reasoning or None,
            tool_calls=decoded.tool_calls,
            finish_reason=normalise_finish(self.codec.FINISH_REASONS, decoded.raw_finish_reason, bool(decoded.tool_calls)),
            raw_finish_reason=decoded.raw_finish_reason,
            usage=normalised,
            cost=pricing.cost(
                self._priced_by, priced_model, normalised, decoded.raw_usage, on=on, base_url=self.spec.base_url or None,
                service_tier=decoded.service_tier,
            ),
            model=model,
            provider=self.spec.name,
            latency_ms=(time.perf_counter() - started) * 1000,
            raw=raw,
        )


def call_date(headers: Mapping[str, str]) -> date | None:
    """The day the provider answered (its Date header): the call is priced at that day's price."""
    value = headers.get("date")
    if not value:
        return None
    try:
        return parsedate_to_datetime(value).date()
    except (TypeError, ValueError):
        return None


class StreamAssembly:
    """Turns a stream's bytes, as they arrive, into events, and its end into a Response."""

    def __init__(self, assembler: Assembler, started: float, on: date | None = None) -> None:
        self._assembler = assembler
        self._started = started
        self._on = on
        self._parser = SSEParser()
        self._decoder: StreamDecoder = assembler.codec.StreamDecoder()

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        try:
            events = self._parser.feed(chunk)
        except UnicodeDecodeError as problem:
            raise self._assembler.malformed(problem, chunk) from problem
        return self._decode(events)

    def finish(self) -> Response:
        try:
            events = self._parser.close()
        except UnicodeDecodeError as problem:
            raise self._assembler.malformed(problem, b"") from problem
        self._decode(events)
        try:
            decoded = self._decoder.finish()
        except WireFormatError as problem:
            last = self._decoder.chunks[-1] if self._decoder.chunks else ""
            raise self._assembler.malformed(problem, json.dumps(last)) from problem
        return self._assembler.build(decoded, {"chunks": self._decoder.chunks}, self._started, self._on)

    def _decode(self, events: list[SSEEvent]) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        for event in events:
            try:
                decoded = self._decoder.feed(event)
            except StreamErrorEvent as error:
                raise self._assembler.stream_error(error) from error
            except _SHAPE_ERRORS as problem:
                raise self._assembler.malformed(problem, event.data) from problem
            out = decoded if not out else out + decoded  # the usual chunk is one event: no copy
        return out
