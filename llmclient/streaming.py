"""Streams: iterate `StreamEvent`s as they arrive; `.response` is the whole `Response` at the end.

The request is sent when iteration starts (or `.response` is read, which drains the stream).
Bytes are read straight from the HTTP response and decoded by `assemble.StreamAssembly`; the
attempt that opened the stream has read it up to its first events (`delivery.Delivery.prime`),
and those come first.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

from llmclient.delivery import Delivery, broken_off
from llmclient.types import Response, StreamEvent

if TYPE_CHECKING:
    from llmclient.assemble import Assembler
    from llmclient.telemetry.observe import Observation

CLOSED_EARLY = "the caller closed the stream before its end"


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
        self._assembler = delivery.assembler
        primed = delivery.primed or delivery.prime(started)  # read here: a cache hit, opened by no attempt
        answer, assembly, response = delivery.answer, primed.assembly, primed.whole
        tee = primed.chunks if delivery.keep is not None else None  # the bytes the cache keeps, from the first
        try:
            if response is not None:  # a JSON body, read whole
                self._response = delivery.done(response)
                self._store = delivery.kept(tee, response)
            yield from primed.events
            if response is not None:
                return
            feed, progress = assembly.feed, primed.progress
            try:
                for chunk in primed.rest:
                    if tee is not None:
                        tee.append(chunk)
                    events = feed(chunk)
                    progress()
                    yield from events
            except httpx.HTTPError as exc:
                raise broken_off(exc, answer, self._assembler) from exc
            yield from assembly.close()  # a last event without its closing blank line
            response = assembly.finish()
            self._response = delivery.done(response)
            self._store = delivery.kept(tee, response)
        finally:
            if response is None:
                delivery.done(None)
            answer.close()


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
        self._assembler = delivery.assembler
        primed = delivery.aprimed or await delivery.aprime(started)  # read here: a cache hit
        answer, assembly, response = delivery.answer, primed.assembly, primed.whole
        tee = primed.chunks if delivery.keep is not None else None  # the bytes the cache keeps, from the first
        try:
            if response is not None:  # a JSON body, read whole
                self._response = delivery.done(response)
                self._store = delivery.kept(tee, response)
            for event in primed.events:
                yield event
            if response is not None:
                return
            progress = primed.progress
            try:
                async for chunk in primed.rest:
                    if tee is not None:
                        tee.append(chunk)
                    events = assembly.feed(chunk)
                    progress()
                    for event in events:
                        yield event
            except httpx.HTTPError as exc:
                raise broken_off(exc, answer, self._assembler) from exc
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
