"""One `Observation` per public call (complete, stream, structured, sync or async): it is begun by
`Client` before anything is sent, told about each retry wait and fallback by the policies, and
finished with the call's answer or error. Finishing hands it to everything that watches calls:
the `llmclient` logger, the hooks, the open `track()` blocks, the OpenTelemetry span and the
store. The store's record is built later, on its writer thread: the call pays for a few attribute
writes and a queue put.

Logging (nothing is printed unless the application configures logging; the package logger has a
NullHandler): one DEBUG line per call (model, tokens, cost, ms); INFO for each retry wait (reason,
seconds, attempt) and each move to a fallback model. The WARNING for a model without a known price
(once per model) comes from `llmclient.pricing`, where the price is looked up.
"""

from __future__ import annotations

import contextvars
import logging
import os
import time
from typing import TYPE_CHECKING, Any

from llmclient.telemetry import hooks as hook_registry
from llmclient.telemetry import otel, store
from llmclient.telemetry.context import CallContext
from llmclient.telemetry.hooks import HookEvent
from llmclient.telemetry.totals import open_totals
from llmclient.types import sum_cost, sum_usage

if TYPE_CHECKING:
    from llmclient.request import Request
    from llmclient.telemetry.hooks import HookSet
    from llmclient.types import Cost, Response, RetryRecord, Usage

log = logging.getLogger("llmclient")
log.addHandler(logging.NullHandler())  # never Python's last-resort stderr printer

_CURRENT: contextvars.ContextVar[Observation | None] = contextvars.ContextVar("llmclient_observation", default=None)


class Observation:
    """What one call did. Read by `record.py` (on the store's thread) and `otel.py`."""

    __slots__ = ("call_id", "kind", "mode", "requested_model", "profile", "context", "started_at", "started",
                 "ended", "first_token", "request", "response", "usage", "cost", "error", "outcome",
                 "replay", "reasks", "cache_hit", "_totals", "_hooks", "span")

    def __init__(self, kind: str, mode: str, requested_model: str, profile: str | None, context: CallContext,
                 own_hooks: HookSet | None, replay: bool) -> None:
        self.call_id = os.urandom(16).hex()  # 128 random bits, as uuid4's, for a third of its time
        self.kind = kind
        self.mode = mode
        self.requested_model = requested_model
        self.profile = profile
        self.context = context
        self.started_at = time.time()
        self.started = time.perf_counter()
        self.ended: float | None = None
        self.first_token: float | None = None  # perf_counter of a stream's first event
        self.request: Request | None = None
        self.response: Response | None = None
        self.usage: Usage | None = None  # over every attempt of the call (a structured call's re-asks)
        self.cost: Cost | None = None
        self.error: BaseException | None = None
        self.outcome = "pending"  # "ok" | "error" | "abandoned"
        self.replay = replay
        self.reasks: int | None = None  # refused answers asked again, when not on the response (structured)
        self.cache_hit = False  # answered by the response cache with no request sent
        self._totals = open_totals()
        self._hooks = own_hooks
        self.span: Any = otel.start(self) if otel.enabled() else None

    # --- moments -----------------------------------------------------------------------------------

    def restart(self) -> None:
        """A stream's clock starts when its request is sent (at iteration), not when it was made."""
        self.started_at = time.time()
        self.started = time.perf_counter()

    def sent(self, request: Request) -> None:
        self.request = request
        hooks = hook_registry.hooks_for("on_request", self._hooks)
        if hooks:
            hook_registry.run_sync(hooks, self._event("on_request", self.requested_model))

    async def asent(self, request: Request) -> None:
        self.request = request
        hooks = hook_registry.hooks_for("on_request", self._hooks)
        if hooks:
            await hook_registry.run_async(hooks, self._event("on_request", self.requested_model))

    def retrying(self, record: RetryRecord, attempt: int | None) -> None:
        if self.span is not None:
            otel.retry_event(self.span, record, attempt)
        hooks = hook_registry.hooks_for("on_retry", self._hooks)
        if hooks:
            event = self._event("on_retry", record.model)
            hook_registry.run_sync(hooks, _with(event, retry=record, attempt=attempt))

    def succeeded(self, response: Response, usage: Usage | None = None, cost: Cost | None = None,
                  reasks: int | None = None) -> None:
        self.reasks = reasks
        hooks = self._succeed(response, usage, cost)
        if hooks:
            hook_registry.run_sync(hooks, _with(self._event("on_response", response.provider + "/" + response.model),
                                                response=response))

    async def asucceeded(self, response: Response, usage: Usage | None = None, cost: Cost | None = None,
                         reasks: int | None = None) -> None:
        self.reasks = reasks
        hooks = self._succeed(response, usage, cost)
        if hooks:
            await hook_registry.run_async(hooks, _with(self._event("on_response", response.provider + "/" + response.model),
                                                       response=response))

    def failed(self, error: BaseException, *, abandoned: bool = False) -> None:
        hooks = self._fail(error, abandoned)
        if hooks:
            hook_registry.run_sync(hooks, _with(self._event("on_error", self.requested_model), error=error))

    async def afailed(self, error: BaseException) -> None:
        hooks = self._fail(error, False)
        if hooks:
            await hook_registry.run_async(hooks, _with(self._event("on_error", self.requested_model), error=error))

    # --- the finish, shared ------------------------------------------------------------------------

    def _succeed(self, response: Response, usage: Usage | None, cost: Cost | None) -> tuple[Any, ...]:
        self.ended = time.perf_counter()
        self.response = response
        self.usage = response.usage if usage is None else usage
        self.cost = response.cost if usage is None else cost
        # Answered from the cache with nothing billed (a re-ask that was sent makes it no hit).
        self.cache_hit = response.cached and (usage is None or (usage.total_tokens == 0 and (cost is None or not cost.total)))
        if self.cache_hit:
            self.usage = None
        self.outcome = "ok"
        model = f"{response.provider}/{response.model}"
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s: %s, %s, %.0f ms%s", model, self.kind, _tokens(self.usage), _dollars(self.cost),
                      (self.ended - self.started) * 1000, " (from the response cache)" if self.cache_hit else "")
        for totals in self._totals:
            totals.add(model, self.usage, self.cost, cached=self.cache_hit)
        self._finish()
        return hook_registry.hooks_for("on_response", self._hooks)

    def _fail(self, error: BaseException, abandoned: bool) -> tuple[Any, ...]:
        if self.outcome != "pending":
            return ()
        self.ended = time.perf_counter()
        self.error = error
        self.outcome = "abandoned" if abandoned else "error"
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s %s %s: %s after %.0f ms", self.requested_model, self.kind,
                      "abandoned" if abandoned else "failed", _error_text(error), (self.ended - self.started) * 1000)
        attempts: Any = getattr(error, "attempts", None) or ()  # a structured call's refused answers
        usage = sum_usage([a.response.billed_usage for a in attempts]) if attempts else None
        cost = sum_cost([a.response.cost for a in attempts]) if attempts else None
        self.usage, self.cost = usage, cost
        for totals in self._totals:
            totals.add(self.requested_model, usage, cost, failed=True)
        self._finish()
        return () if abandoned else hook_registry.hooks_for("on_error", self._hooks)

    def _finish(self) -> None:
        if self.span is not None:
            otel.end(self.span, self)
        store.submit(self)
        # The store's record (`record.Finished`) keeps this observation until it is written, and has
        # taken what it needs of these two; the garbage collector need not walk them meanwhile.
        self.response, self.error = None, None

    def _event(self, name: str, model: str) -> HookEvent:
        return HookEvent(name=name, call_id=self.call_id, kind=self.kind, model=model,  # type: ignore[arg-type]
                         context=self.context, request=self.request)


def _with(event: HookEvent, **changes: Any) -> HookEvent:
    from dataclasses import replace

    return replace(event, **changes)


# --- the policies' moments (the call's observation is found through the context) -------------------

def activate(observation: Observation) -> contextvars.Token[Observation | None]:
    return _CURRENT.set(observation)


def deactivate(token: contextvars.Token[Observation | None]) -> None:
    _CURRENT.reset(token)


def retrying(record: RetryRecord, attempt: int, error: BaseException) -> None:
    """An attempt failed and the call waits `record.waited` seconds before the next one."""
    log.info("%s: %s on attempt %d; retrying in %.2f s", record.model, _error_text(error), attempt, record.waited)
    observation = _CURRENT.get()
    if observation is not None:
        observation.retrying(record, attempt)


def falling_back(record: RetryRecord, to_model: str) -> None:
    """The call leaves `record.model` (it failed for good, or cannot take the call) for `to_model`."""
    log.info("%s: %s; falling back to %s", record.model, record.error + (f" ({record.status_code})" if record.status_code else ""),
             to_model)
    observation = _CURRENT.get()
    if observation is not None:
        observation.retrying(record, None)


# --- text for the log lines -----------------------------------------------------------------------

def _tokens(usage: Usage | None) -> str:
    if usage is None:
        return "usage not reported"
    return f"{usage.input_tokens} in + {usage.output_tokens} out tokens"


def _dollars(cost: Cost | None) -> str:
    return "cost unknown" if cost is None else f"${cost.total}"


def _error_text(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" ({status})" if status else "")
