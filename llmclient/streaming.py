"""Streams: iterate `StreamEvent`s as they arrive; `.response` is the whole `Response` at the end.

The request is sent when iteration starts (or `.response` is read, which drains the stream).
Bytes are read straight from the HTTP response and decoded by `assemble.StreamAssembly`.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from llmclient.assemble import Assembler, StreamAssembly, answered_at
from llmclient.errors import APIError, RequestTimeoutError, transport_error
from llmclient.types import Response, RetryRecord, StreamEvent, ToolCallDelta

if TYPE_CHECKING:
    import httpx

    from llmclient.policies.ratelimit import Permit
    from llmclient.telemetry.observe import Observation

CLOSED_EARLY = "the caller closed the stream before its end"


@dataclass
class Delivery:
    """An open 2xx stream response, the model that gave it (a fallback's, maybe), its rate-limit
    permit (settled with the stream's usage at the end) and the failed attempts before it."""

    answer: httpx.Response
    assembler: Assembler
    permit: Permit | None = None
    retries: tuple[RetryRecord, ...] = ()
    # The call's timeout, as the longest wait for the next whole event: a server dripping bytes
    # that never complete one makes no progress, and every read returning keeps no read timeout busy.
    idle_timeout: float | None = None
    # The response cache (`llmclient.cache_use`): `cached`, a stored answer read again; `keep`,
    # what stores this answer's bytes once the stream has ended cleanly.
    cached: bool = False
    keep: Callable[[str, bytes, str | None, str | None], None] | None = None

    def progress(self, assembly: StreamAssembly) -> Callable[[], None]:
        """A check, called after each chunk, raising RequestTimeoutError once `idle_timeout` has
        passed without a whole server event (a ping counts). The clock starts at the first chunk
        that completes none, so a stream making progress costs no clock reads."""
        limit, stalled_since, seen = self.idle_timeout, 0.0, assembly.events_read

        def check() -> None:
            nonlocal stalled_since, seen
            if assembly.events_read != seen:
                seen, stalled_since = assembly.events_read, 0.0
                return
            now = time.monotonic()
            if not stalled_since:
                stalled_since = now
            elif limit is not None and now - stalled_since > limit:
                raise RequestTimeoutError(f"the stream gave no complete event for {limit:g} s (the call's timeout)",
                                          provider=self.assembler.spec.name, model=self.assembler.model_id)

        return check

    def with_retries(self, history: list[RetryRecord]) -> Delivery:
        self.retries = tuple(history)
        return self

    def done(self, response: Response | None) -> Response | None:
        """Close the permit: the reported usage, or the estimate when the stream gave none."""
        if self.permit is not None:
            usage = response.usage if response is not None else None
            self.permit.settle(self.permit.estimated_tokens if usage is None else usage.input_tokens + usage.output_tokens)
        if response is not None and self.cached:
            from llmclient.cache import HIT_COST

            return response.model_copy(update={"cached": True, "cost": HIT_COST})
        if response is not None and self.retries:
            return response.model_copy(update={"retries": self.retries})
        return response

    def kept(self, tee: list[bytes] | None, response: Response | None) -> Callable[[], None] | None:
        """What stores the stream's bytes (`tee`), to be run when the caller has had every event."""
        from llmclient.cache import keepable

        keep = self.keep
        if keep is None or tee is None or response is None or not keepable(response):
            return None
        answer, model = self.answer, f"{self.assembler.spec.name}/{self.assembler.model_id}"
        return lambda: keep(model, b"".join(tee), answer.headers.get("content-type"), answer.headers.get("date"))


class Stream:
    def __init__(self, send: Callable[[], Delivery], assembler: Assembler, watch: Observation | None = None) -> None:
        self._send = send
        self._assembler = assembler
        self._watch = watch
        self._iterator: Iterator[StreamEvent] | None = None
        self._response: Response | None = None
        self.keeps = False  # set by Client when the response cache may store this stream
        self.keep_later = False  # set by a wrapper that accepts the answer after the last event (a schema)
        self._store: Callable[[], None] | None = None

    def __iter__(self) -> Iterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    @property
    def answered_by(self) -> str:
        """"<provider>/<model id>" the stream went to: a fallback's when one answered (known once
        iteration has begun; before, the primary model)."""
        return f"{self._assembler.spec.name}/{self._assembler.model_id}"

    @property
    def response(self) -> Response:
        """The complete response; reading it before the end consumes the rest of the stream."""
        if self._response is None:
            for _ in self:
                pass
        if self._response is None:
            raise RuntimeError("the stream was closed before it finished, so it has no response")
        return self._response

    def close(self) -> None:
        if self._iterator is not None:
            self._iterator.close()  # type: ignore[attr-defined]

    def __enter__(self) -> Stream:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def keep_answer(self) -> None:
        """Store the answer in the response cache (once), if it was to be kept and ended cleanly."""
        store, self._store = self._store, None
        if store is not None:
            store()

    def _run(self) -> Iterator[StreamEvent]:
        """The events, observed: the first one's time, then the end, error or early close."""
        watch = self._watch
        events = self._events()
        if self.keeps:
            events = _kept(events, self)
        if watch is None:
            return events
        return _observed(events, watch, lambda: self._response)

    def _events(self) -> Iterator[StreamEvent]:
        import httpx

        started = time.perf_counter()
        delivery = self._send()
        answer, self._assembler = delivery.answer, delivery.assembler
        tee: list[bytes] | None = [] if delivery.keep is not None else None  # the bytes the cache keeps
        response: Response | None = None
        try:
            if not _is_event_stream(answer):
                body = self._body(answer)
                response = self._assembler.response(body, started, answered_at(answer.headers),
                                                    status=answer.status_code, content_type=_content_type(answer))
                self._response = delivery.done(response)
                self._store = delivery.kept(None if tee is None else [body], response)
                yield from events_of(response)
                return
            assembly = _assembly(answer, self._assembler, started)
            feed = assembly.feed
            # Undecoded bytes skip httpx's decoder and re-chunker when there is nothing to decode
            # (and nothing was read already, as a test double's answer is).
            plain = "content-encoding" not in answer.headers and not answer.is_stream_consumed
            chunks = answer.iter_raw() if plain else answer.iter_bytes()
            progress = delivery.progress(assembly)
            try:
                for chunk in chunks:
                    if tee is not None:
                        tee.append(chunk)
                    events = feed(chunk)
                    progress()
                    yield from events
            except httpx.HTTPError as exc:
                raise _broken_off(exc, answer, self._assembler) from exc
            yield from assembly.close()  # a last event without its closing blank line
            response = assembly.finish()
            self._response = delivery.done(response)
            self._store = delivery.kept(tee, response)
        finally:
            if response is None:
                delivery.done(None)
            answer.close()

    def _body(self, answer: httpx.Response) -> bytes:
        import httpx

        try:
            return answer.read()
        except httpx.HTTPError as exc:
            raise _broken_off(exc, answer, self._assembler) from exc


class AsyncStream:
    def __init__(self, send: Callable[[], Awaitable[Delivery]], assembler: Assembler,
                 watch: Observation | None = None) -> None:
        self._send = send
        self._assembler = assembler
        self._watch = watch
        self._iterator: AsyncIterator[StreamEvent] | None = None
        self._response: Response | None = None
        self.keeps = False
        self.keep_later = False
        self._store: Callable[[], None] | None = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        if self._iterator is None:
            self._iterator = self._run()
        return self._iterator

    async def get_response(self) -> Response:
        """The complete response; awaiting it before the end consumes the rest of the stream."""
        if self._response is None:
            async for _ in self:
                pass
        if self._response is None:
            raise RuntimeError("the stream was closed before it finished, so it has no response")
        return self._response

    @property
    def answered_by(self) -> str:
        """"<provider>/<model id>" the stream went to: a fallback's when one answered (known once
        iteration has begun; before, the primary model)."""
        return f"{self._assembler.spec.name}/{self._assembler.model_id}"

    @property
    def response(self) -> Response:
        """The complete response, once iteration has finished (else use `await get_response()`)."""
        if self._response is None:
            raise RuntimeError("the stream has not finished: iterate it to the end, or `await stream.get_response()`")
        return self._response

    async def aclose(self) -> None:
        if self._iterator is not None:
            await self._iterator.aclose()  # type: ignore[attr-defined]

    async def __aenter__(self) -> AsyncStream:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def keep_answer(self) -> None:
        store, self._store = self._store, None
        if store is not None:
            store()

    def _run(self) -> AsyncIterator[StreamEvent]:
        watch = self._watch
        events = self._events()
        if self.keeps:
            events = _akept(events, self)
        if watch is None:
            return events
        return _aobserved(events, watch, lambda: self._response)

    async def _events(self) -> AsyncIterator[StreamEvent]:
        import httpx

        started = time.perf_counter()
        delivery = await self._send()
        answer, self._assembler = delivery.answer, delivery.assembler
        tee: list[bytes] | None = [] if delivery.keep is not None else None  # the bytes the cache keeps
        response: Response | None = None
        try:
            if not _is_event_stream(answer):
                try:
                    body = await answer.aread()
                except httpx.HTTPError as exc:
                    raise _broken_off(exc, answer, self._assembler) from exc
                response = self._assembler.response(body, started, answered_at(answer.headers),
                                                    status=answer.status_code, content_type=_content_type(answer))
                self._response = delivery.done(response)
                self._store = delivery.kept(None if tee is None else [body], response)
                for event in events_of(response):
                    yield event
                return
            assembly = _assembly(answer, self._assembler, started)
            progress = delivery.progress(assembly)
            try:
                async for chunk in answer.aiter_bytes():
                    if tee is not None:
                        tee.append(chunk)
                    events = assembly.feed(chunk)
                    progress()
                    for event in events:
                        yield event
            except httpx.HTTPError as exc:
                raise _broken_off(exc, answer, self._assembler) from exc
            for event in assembly.close():  # a last event without its closing blank line
                yield event
            response = assembly.finish()
            self._response = delivery.done(response)
            self._store = delivery.kept(tee, response)
        finally:
            if response is None:
                delivery.done(None)
            await answer.aclose()


def _kept(events: Iterator[StreamEvent], stream: Stream) -> Iterator[StreamEvent]:
    """The events; after the last (and any check after it, as JSON mode's), the answer is stored."""
    yield from events
    if not stream.keep_later:
        stream.keep_answer()


async def _akept(events: AsyncIterator[StreamEvent], stream: AsyncStream) -> AsyncIterator[StreamEvent]:
    async for event in events:
        yield event
    if not stream.keep_later:
        import asyncio

        await asyncio.to_thread(stream.keep_answer)  # SQLite may wait for another process's write


def _observed(events: Iterator[StreamEvent], watch: Observation, response: Callable[[], Response | None]) -> Iterator[StreamEvent]:
    try:
        for event in events:
            watch.first_token = time.perf_counter()
            yield event
            break
        yield from events  # no per-event cost beyond the delegation
    except GeneratorExit:
        watch.failed(GeneratorExit(CLOSED_EARLY), abandoned=True)
        raise
    except BaseException as error:
        watch.failed(error)
        raise
    finished = response()
    if finished is not None:
        watch.succeeded(finished)


async def _aobserved(events: AsyncIterator[StreamEvent], watch: Observation,
                     response: Callable[[], Response | None]) -> AsyncIterator[StreamEvent]:
    try:
        async for event in events:
            if watch.first_token is None:
                watch.first_token = time.perf_counter()
            yield event
    except GeneratorExit:
        await events.aclose()  # type: ignore[attr-defined]
        watch.failed(GeneratorExit(CLOSED_EARLY), abandoned=True)
        raise
    except BaseException as error:
        await watch.afailed(error)
        raise
    finished = response()
    if finished is not None:
        await watch.asucceeded(finished)


def _content_type(answer: httpx.Response) -> str | None:
    value: str | None = answer.headers.get("content-type")
    return value


def _is_event_stream(answer: httpx.Response) -> bool:
    # A server that ignores stream=true answers with one JSON body; read it as such. Media types
    # are case-insensitive (RFC 9110): "Application/JSON" is JSON.
    content_type = answer.headers.get("content-type", "")
    return not content_type.strip().lower().startswith("application/json")


def _assembly(answer: httpx.Response, assembler: Assembler, started: float) -> StreamAssembly:
    return StreamAssembly(assembler, started, answered_at(answer.headers), status=answer.status_code,
                          content_type=_content_type(answer))


def _broken_off(exc: Exception, answer: httpx.Response, assembler: Assembler) -> APIError:
    request = answer.request
    where = f"reading the stream of {request.method} {request.url.copy_with(query=None)}"
    return transport_error(exc, where, provider=assembler.spec.name, model=assembler.model_id,
                           content_encoding=answer.headers.get("content-encoding"))


def events_of(response: Response) -> list[StreamEvent]:
    """The events a whole response amounts to (for servers that answered a stream with JSON)."""
    events = []
    if response.reasoning:
        events.append(StreamEvent(kind="reasoning", text=response.reasoning))
    if response.text:
        events.append(StreamEvent(kind="text", text=response.text))
    for index, call in enumerate(response.tool_calls):
        delta = ToolCallDelta(index=index, id=call.id, name=call.name, arguments=json.dumps(call.arguments))
        events.append(StreamEvent(kind="tool_call", tool_call=delta))
    return events
