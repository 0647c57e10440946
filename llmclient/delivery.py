"""A stream's HTTP answer as the attempt that opened it hands it on: `Delivery` (the answer, the
model's assembler, the rate-limit permit settled with the stream's usage, the failed attempts
before it, the response cache's part) and what that attempt read of it (`Primed`). The attempt
reads the stream up to its first events (`Delivery.prime`), so a body that fails before the caller
has any (an error event, a cut) fails the attempt, which is retried and falls back like an error
status; what it read is handed on to `streaming.Stream`, not read again.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Generic, TypeVar

from llmclient.assemble import Assembler, StreamAssembly, answered_at
from llmclient.errors import APIError, RequestTimeoutError, transport_error
from llmclient.types import Response, RetryRecord, StreamEvent, ToolCallDelta

if TYPE_CHECKING:
    import httpx

    from llmclient.policies.ratelimit import Permit

Rest = TypeVar("Rest", Iterator[bytes], AsyncIterator[bytes])


@dataclass
class Primed(Generic[Rest]):
    """A stream read up to its first events: the chunks read (the start of what the cache keeps),
    the events they gave (not the caller's yet), and `rest`, the iterator they came from (httpx
    starts a body's iterator once). `whole`: the Response of a JSON body, read whole."""

    assembly: StreamAssembly
    progress: Callable[[], None]
    rest: Rest
    chunks: list[bytes] = field(default_factory=list)
    events: list[StreamEvent] = field(default_factory=list)
    whole: Response | None = None

    def took(self, chunk: bytes) -> bool:
        """Whether `chunk` gave the stream's first events."""
        self.chunks.append(chunk)
        self.events = self.assembly.feed(chunk)
        self.progress()
        return bool(self.events)


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
    # What the attempt that opened the stream read of it (`prime` / `aprime`).
    primed: Primed[Iterator[bytes]] | None = None
    aprimed: Primed[AsyncIterator[bytes]] | None = None

    def progress(self, assembly: StreamAssembly) -> Callable[[], None]:
        """A check, called after each chunk, raising RequestTimeoutError once `idle_timeout` has
        passed without a whole server event (a ping counts). The clock starts at the first chunk
        that completes none, so a stream making progress costs no clock reads. The check holds the
        assembler, not this Delivery, which holds the check once primed: no cycle for the collector."""
        limit, stalled_since, seen, assembler = self.idle_timeout, 0.0, assembly.events_read, self.assembler

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
                                          provider=assembler.spec.name, model=assembler.model_id)

        return check

    def prime(self, started: float) -> Primed[Iterator[bytes]]:
        """Read up to the stream's first events (a JSON body: whole), so that a body failing before
        them fails the attempt, which may then be retried; on a failure the permit is settled and
        the answer closed."""
        import httpx

        answer = self.answer
        try:
            try:
                if not _is_event_stream(answer):
                    self.primed = self._whole(answer.read(), started, iter(()))
                    return self.primed
                # Undecoded bytes skip httpx's decoder and re-chunker when there is nothing to decode
                # (and nothing was read already, as a test double's answer is).
                plain = "content-encoding" not in answer.headers and not answer.is_stream_consumed
                primed = self.primed = self._primed(started, answer.iter_raw() if plain else answer.iter_bytes())
                for chunk in primed.rest:  # a break leaves the iterator open, for the caller's loop
                    if primed.took(chunk):
                        break
                else:
                    primed.events = primed.assembly.close()
                return primed
            except httpx.HTTPError as exc:
                raise broken_off(exc, answer, self.assembler) from exc
        except BaseException:
            self.done(None)
            answer.close()
            raise

    async def aprime(self, started: float) -> Primed[AsyncIterator[bytes]]:
        """`prime` for asyncio (the answer streams aiohttp's body, already decoded, or a test double's)."""
        import httpx

        answer = self.answer
        try:
            try:
                if not _is_event_stream(answer):
                    self.aprimed = self._whole(await answer.aread(), started, _nothing())
                    return self.aprimed
                primed = self.aprimed = self._primed(started, answer.aiter_bytes())
                async for chunk in primed.rest:
                    if primed.took(chunk):
                        break
                else:
                    primed.events = primed.assembly.close()
                return primed
            except httpx.HTTPError as exc:
                raise broken_off(exc, answer, self.assembler) from exc
        except BaseException:
            self.done(None)
            await answer.aclose()
            raise

    def _primed(self, started: float, rest: Rest) -> Primed[Rest]:
        assembly = _assembly(self.answer, self.assembler, started)
        return Primed(assembly, self.progress(assembly), rest)

    def _whole(self, body: bytes, started: float, rest: Rest) -> Primed[Rest]:
        """A JSON body (a server that ignored stream=true) as its Response and the events it amounts to."""
        answer, primed = self.answer, self._primed(started, rest)
        primed.whole = self.assembler.response(body, started, answered_at(answer.headers), status=answer.status_code,
                                               content_type=_content_type(answer))
        primed.chunks, primed.events = [body], events_of(primed.whole)
        return primed

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


async def _nothing() -> AsyncIterator[bytes]:
    return
    yield  # an async generator that yields nothing


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


def broken_off(exc: Exception, answer: httpx.Response, assembler: Assembler) -> APIError:
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
