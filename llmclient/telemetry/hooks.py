"""Hooks: your callables, called at four moments of every call.

`on_request` (the call is about to be sent), `on_response` (it answered), `on_error` (it failed
for good), `on_retry` (an attempt failed and the call waits before the next; also when it moves to
a fallback model). Register them for every client (`llmclient.add_hook("on_response", fn)`) or for
one (`client.add_hook(...)`); global hooks run first. Each receives one `HookEvent`.

A plain function is called in the caller's thread, at that moment. A coroutine function is awaited
there when the call is async; when the call is sync it is run to completion on a fresh event loop
(or, inside a running loop, scheduled on it). An exception raised by a hook is logged on the
`llmclient` logger with its traceback and never reaches the call.
"""

from __future__ import annotations

import inspect
import logging
import threading
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Union

from llmclient.errors import ConfigurationError

if TYPE_CHECKING:
    from llmclient.request import Request
    from llmclient.telemetry.context import CallContext
    from llmclient.types import Response, RetryRecord

log = logging.getLogger("llmclient")

HookName = Literal["on_request", "on_response", "on_error", "on_retry"]
NAMES: tuple[str, ...] = ("on_request", "on_response", "on_error", "on_retry")


@dataclass(frozen=True, slots=True)
class HookEvent:
    """What a hook is told. `call_id` is the id of the telemetry record of the call."""

    name: HookName
    call_id: str
    kind: str  # "complete" | "stream" | "structured" | "stream_structured"
    model: str  # the model of this moment: the one asked, answering, or failing
    context: CallContext
    request: Request | None = None
    response: Response | None = None
    error: BaseException | None = None
    retry: RetryRecord | None = None  # on_retry: the failed attempt (its wait in `.waited`)
    attempt: int | None = None  # on_retry: the number of the attempt that failed (1-based)


Hook = Callable[[HookEvent], Union[None, Awaitable[None]]]


class HookSet:
    """Hooks by name; copy-on-write, so a call reads them without a lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.by_name: dict[str, tuple[Hook, ...]] = {}

    def add(self, name: str, hook: Hook) -> None:
        if name not in NAMES:
            raise ConfigurationError(f"unknown hook {name!r}: use one of {', '.join(NAMES)}")
        if not callable(hook):
            raise ConfigurationError(f"a hook must be callable (a function taking a HookEvent), got {hook!r}")
        with self._lock:
            self.by_name = {**self.by_name, name: (*self.by_name.get(name, ()), hook)}

    def remove(self, name: str, hook: Hook) -> None:
        with self._lock:
            left = tuple(h for h in self.by_name.get(name, ()) if h is not hook)
            self.by_name = {**self.by_name, name: left} if left else {k: v for k, v in self.by_name.items() if k != name}

    def __bool__(self) -> bool:
        return bool(self.by_name)


GLOBAL = HookSet()


def add_hook(name: HookName, hook: Hook) -> None:
    """Call `hook(event)` at `name` ("on_request", "on_response", "on_error", "on_retry") of every call."""
    GLOBAL.add(name, hook)


def remove_hook(name: HookName, hook: Hook) -> None:
    GLOBAL.remove(name, hook)


def hooks_for(name: str, own: HookSet | None) -> tuple[Hook, ...]:
    found = GLOBAL.by_name.get(name, ()) if GLOBAL.by_name else ()
    if own is not None and own.by_name:
        found = found + own.by_name.get(name, ())
    return found


def run_sync(hooks: tuple[Hook, ...], event: HookEvent) -> None:
    for hook in hooks:
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                _run_detached(result, hook)
        except Exception:
            log.exception("llmclient: the %s hook %r raised; the call goes on", event.name, hook)


async def run_async(hooks: tuple[Hook, ...], event: HookEvent) -> None:
    for hook in hooks:
        try:
            result = hook(event)
            if inspect.isawaitable(result):
                await result
        except Exception:
            log.exception("llmclient: the %s hook %r raised; the call goes on", event.name, hook)


_pending: set[Any] = set()  # asyncio tasks (asyncio is imported only when an async hook runs)


def _run_detached(awaitable: Awaitable[None], hook: Hook) -> None:
    """An async hook of a sync call: to completion now, or on the loop already running here."""
    import asyncio

    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        asyncio.run(_awaited(awaitable))
        return
    task = loop.create_task(_awaited(awaitable))
    _pending.add(task)  # the loop keeps only weak references to its tasks
    task.add_done_callback(_pending.discard)


async def _awaited(awaitable: Awaitable[None]) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("llmclient: an async hook raised; the call goes on")
