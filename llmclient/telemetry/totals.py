"""Running totals: `with llmclient.track() as totals:` sums every call made inside.

Usage is summed per bucket; cost in Decimal dollars over the calls whose price is known, and the
calls without one are counted in `unpriced_calls` (their cost is never taken as 0). Calls that
failed count in `failed_calls` (with the usage of any answer they got, e.g. refused re-asks).
Calls answered from the response cache count in `cache_hits`: no tokens, no dollars (none were billed).

Which calls are "inside": by default those made in this context, i.e. this thread or task, the
asyncio tasks it starts, and threads started with a copy of it (`asyncio.to_thread`,
`contextvars.copy_context().run`). `track(all_threads=True)` counts every call of the process
while the block is open, whichever thread makes it. Blocks nest: a call counts in each open one.
"""

from __future__ import annotations

import contextvars
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal

from llmclient.types import Cost, Usage


class Totals:
    """The sums so far (safe to read while calls are still being made)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.calls = 0
        self.failed_calls = 0
        self.unpriced_calls = 0
        self.cache_hits = 0
        self.input_tokens = 0
        self.output_tokens = 0
        self.cache_read_tokens = 0
        self.cache_write_tokens = 0
        self.reasoning_tokens = 0
        self.cost = Decimal(0)
        self.by_model: dict[str, Decimal] = {}

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def add(self, model: str, usage: Usage | None, cost: Cost | None, *, failed: bool = False,
            cached: bool = False) -> None:
        with self._lock:
            self.calls += 1
            self.failed_calls += failed
            self.cache_hits += cached
            if usage is not None:
                self.input_tokens += usage.input_tokens
                self.output_tokens += usage.output_tokens
                self.cache_read_tokens += usage.cache_read_tokens
                self.cache_write_tokens += usage.cache_write_tokens
                self.reasoning_tokens += usage.reasoning_tokens
            if cost is not None:
                self.cost += cost.total
                self.by_model[model] = self.by_model.get(model, Decimal(0)) + cost.total
            elif usage is not None or not failed:  # an answer whose price is unknown
                self.unpriced_calls += 1

    def __repr__(self) -> str:
        return (f"Totals(calls={self.calls}, failed_calls={self.failed_calls}, input_tokens={self.input_tokens}, "
                f"output_tokens={self.output_tokens}, cost=Decimal('{self.cost}'), unpriced_calls={self.unpriced_calls}, "
                f"cache_hits={self.cache_hits})")


_SCOPED: contextvars.ContextVar[tuple[Totals, ...]] = contextvars.ContextVar("llmclient_totals", default=())
_EVERYWHERE: tuple[Totals, ...] = ()
_everywhere_lock = threading.Lock()


@contextmanager
def track(*, all_threads: bool = False) -> Iterator[Totals]:
    """Sum usage and cost over the calls made inside the block (see the module's doc for "inside")."""
    global _EVERYWHERE
    totals = Totals()
    if all_threads:
        with _everywhere_lock:
            _EVERYWHERE = (*_EVERYWHERE, totals)
        try:
            yield totals
        finally:
            with _everywhere_lock:
                _EVERYWHERE = tuple(t for t in _EVERYWHERE if t is not totals)
        return
    token = _SCOPED.set((*_SCOPED.get(), totals))
    try:
        yield totals
    finally:
        _SCOPED.reset(token)


def open_totals() -> tuple[Totals, ...]:
    """Every block a call made now counts in (read once, when the call begins)."""
    scoped = _SCOPED.get()
    if not _EVERYWHERE:
        return scoped
    return scoped + tuple(t for t in _EVERYWHERE if t not in scoped)
