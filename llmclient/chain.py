"""A client's chain of models: its own model, then its profile's fallbacks (theirs after them), each
model once, each with its `Route` (rate limits, retries, pipeline); and how one request goes down
it. `send` returns the first answer; `stream` returns a stream whose request is sent when iteration
starts, and which falls back only before its first event reaches the caller. When to move on is the
profile's (`Resolved.falls_back_on`); the moving is `policies.fallback`."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from llmclient import json_mode
from llmclient.policies.fallback import athrough_chain, through_chain
from llmclient.policies.route import Route, route_for
from llmclient.delivery import Delivery
from llmclient.streaming import AsyncStream, Stream
from llmclient.telemetry import observe

if TYPE_CHECKING:
    from llmclient.cache_use import StreamCache
    from llmclient.config_schema import Config, Resolved
    from llmclient.policies.retry import RetryPolicy
    from llmclient.request import Request
    from llmclient.telemetry.observe import Observation
    from llmclient.types import Response, RetryRecord


class Chain:
    """`timeout` and `retry`, when the Client was given them, hold for every model of the chain (the
    fallbacks' own settings give way, as the first model's do); a key and a base URL are the first
    model's provider's, so the fallbacks keep their own."""

    def __init__(self, config: Config, resolved: Resolved, primary: Route, *, timeout: float | None = None,
                 retry: RetryPolicy | None = None) -> None:
        self._config = config
        self._resolved = resolved
        self._primary = primary
        self._timeout, self._retry = timeout, retry
        self._fallbacks: list[Route] | None = None  # made when first needed: most calls never fall back

    def routes(self) -> list[Route]:
        """This model, then the profile's fallbacks (theirs after them), each model once."""
        if self._fallbacks is None:
            chain: list[Route] = []
            seen = {self._primary.model}
            pending = list(self._resolved.fallbacks)
            while pending:
                resolved = pending.pop(0)
                if resolved.model not in seen:
                    seen.add(resolved.model)
                    chain.append(route_for(self._config, resolved, None, None, self._timeout, self._retry))
                pending = list(resolved.fallbacks) + pending
            self._fallbacks = chain
        return [self._primary, *self._fallbacks]

    def send(self, request: Request) -> Response:
        """One request down the chain (each model: rate limits and retries)."""
        response, history = through_chain(
            self.routes(), lambda route, h: route.complete(json_mode.for_wire(request, route.spec), h),
            self._resolved.falls_back_on)
        return with_retries(response, history)

    async def asend(self, request: Request) -> Response:
        response, history = await athrough_chain(
            self.routes(), lambda route, h: route.acomplete(json_mode.for_wire(request, route.spec), h),
            self._resolved.falls_back_on)
        return with_retries(response, history)

    def stream(self, request: Request, watch: Observation, cached: StreamCache | None) -> Stream:
        """A stream of `request`, answered from `cached` when it holds the answer (and kept there)."""
        def send() -> Delivery:
            started = time.perf_counter()  # as the stream's own clock: its latency includes retries and fallbacks
            watch.restart()
            watch.sent(request)
            hit = None if cached is None else cached.lookup(request)
            if hit is not None:
                return hit
            token = observe.activate(watch)
            try:
                delivery, history = through_chain(
                    self.routes(), lambda route, h: route.open(json_mode.for_wire(request, route.spec), h, started),
                    self._resolved.falls_back_on)
            finally:
                observe.deactivate(token)
            if cached is not None:
                cached.keep(delivery)
            return delivery.with_retries(history)

        kind = json_mode.JsonStream if json_mode.wanted(request) else Stream
        stream = kind(send, self._primary.assembler, watch)
        stream.keeps = cached is not None
        return stream

    def astream(self, request: Request, watch: Observation, cached: StreamCache | None) -> AsyncStream:
        async def send() -> Delivery:
            started = time.perf_counter()
            watch.restart()
            await watch.asent(request)
            if cached is not None:
                import asyncio

                hit = await asyncio.to_thread(cached.lookup, request)  # files are read, SQLite may wait
                if hit is not None:
                    return hit
            token = observe.activate(watch)
            try:
                delivery, history = await athrough_chain(
                    self.routes(), lambda route, h: route.aopen(json_mode.for_wire(request, route.spec), h, started),
                    self._resolved.falls_back_on)
            finally:
                observe.deactivate(token)
            if cached is not None:
                cached.keep(delivery)
            return delivery.with_retries(history)

        kind = json_mode.AsyncJsonStream if json_mode.wanted(request) else AsyncStream
        stream = kind(send, self._primary.assembler, watch)
        stream.keeps = cached is not None
        return stream

    def close(self) -> None:
        for route in [self._primary, *(self._fallbacks or ())]:
            route.close()

    async def aclose(self) -> None:
        for route in [self._primary, *(self._fallbacks or ())]:
            await route.aclose()


def with_retries(response: Response, history: list[RetryRecord]) -> Response:
    return response.model_copy(update={"retries": tuple(history)}) if history else response
