"""Retries: the one retry layer of every call (litellm's and the SDKs' own are switched off).

Retried: `RateLimitError`, `ServerError` (so `OverloadedError`), `RequestTimeoutError`,
`APIConnectionError` — failures that may pass. Never retried: authentication, not-found and
bad-request errors (the same request fails the same way), nor a malformed body or a broken-off
stream. The wait before the next attempt is the error's `retry_after` when the provider gave one
(capped at `max_wait`), else exponential backoff (`initial_backoff` doubled per attempt, at most
`max_backoff`) with full jitter, so many clients hit by one outage do not retry in lockstep.

Every failed attempt is kept as a `RetryRecord`: on the `Response` that finally succeeded
(`response.retries`), or, when all attempts failed, on the raised error (`error.history`).
"""

from __future__ import annotations

import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from llmclient.errors import APIConnectionError, ConfigurationError, LLMError, RateLimitError, RequestTimeoutError, ServerError
from llmclient.telemetry import observe
from llmclient.types import RetryRecord

if TYPE_CHECKING:
    from llmclient.config_schema import RetrySettings

R = TypeVar("R")
RETRYABLE: tuple[type[LLMError], ...] = (RateLimitError, ServerError, RequestTimeoutError, APIConnectionError)


@dataclass(frozen=True)
class RetryPolicy:
    """How a call is retried. `max_attempts` counts the first one: 1 means never retry."""

    max_attempts: int = 4
    max_wait: float = 60.0  # seconds: the cap on a provider's Retry-After
    initial_backoff: float = 0.5
    max_backoff: float = 30.0
    jitter: bool = True
    sleep: Callable[[float], None] = field(default=time.sleep, repr=False, compare=False)
    asleep: Callable[[float], Awaitable[Any]] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if isinstance(self.max_attempts, bool) or not isinstance(self.max_attempts, int) or self.max_attempts < 1:
            raise ConfigurationError(f"RetryPolicy.max_attempts must be an integer >= 1 (1 = no retries), got {self.max_attempts!r}")
        for name in ("max_wait", "initial_backoff", "max_backoff"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not value >= 0:
                raise ConfigurationError(f"RetryPolicy.{name} must be a number of seconds >= 0, got {value!r}")

    @classmethod
    def from_settings(cls, settings: RetrySettings) -> RetryPolicy:
        return cls(**settings.model_dump())

    @staticmethod
    def retryable(error: BaseException) -> bool:
        """Rate limits, server errors, timeouts and broken connections; and 409 Conflict (a lock or
        a concurrent update on the provider's side: the OpenAI and Anthropic SDKs retry it) and 425
        Too Early (RFC 8470 §5.2: the request may be sent again), whatever class they are given."""
        return isinstance(error, RETRYABLE) or isinstance(error, LLMError) and getattr(error, "status_code", None) in (409, 425)

    def wait_after(self, error: LLMError, attempt: int) -> float:
        """Seconds to wait after failed attempt number `attempt` (1-based)."""
        if error.retry_after is not None:
            return max(0.0, min(error.retry_after, self.max_wait))
        ceiling = min(self.max_backoff, self.initial_backoff * 2 ** (attempt - 1))
        return random.uniform(0, ceiling) if self.jitter else ceiling


NO_RETRY = RetryPolicy(max_attempts=1)


def record(error: LLMError, model: str, waited: float) -> RetryRecord:
    return RetryRecord(model=model, error=type(error).__name__, status_code=error.status_code,
                       message=error.message[:500], waited=round(waited, 6))


def _tenacity_arguments(policy: RetryPolicy, model: str, history: list[RetryRecord]) -> dict[str, Any]:
    from tenacity import RetryCallState, retry_if_exception, stop_after_attempt

    def wait(state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome else None
        # Rounded as recorded, so the wait taken is exactly the one `response.retries` reports.
        return round(policy.wait_after(error, state.attempt_number), 6) if isinstance(error, LLMError) else 0.0

    def before_sleep(state: RetryCallState) -> None:
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LLMError):
            history.append(record(error, model, state.upcoming_sleep))
            observe.retrying(history[-1], state.attempt_number, error)  # logged at INFO, the on_retry hooks

    return {"stop": stop_after_attempt(policy.max_attempts), "retry": retry_if_exception(policy.retryable),
            "wait": wait, "before_sleep": before_sleep, "reraise": True}


def call(attempt: Callable[[], R], policy: RetryPolicy, model: str, history: list[RetryRecord]) -> R:
    """`attempt()` until it succeeds, fails for good, or attempts run out (tenacity); every
    failure is appended to `history`, the last one too before it is raised."""
    try:  # most calls succeed at once: tenacity (and its per-call objects) only after a failure
        return attempt()
    except LLMError as error:
        replay = _first_failure_then(error, attempt)
    from tenacity import Retrying

    try:
        for try_ in Retrying(sleep=policy.sleep, **_tenacity_arguments(policy, model, history)):
            with try_:
                return replay()
    except LLMError as error:
        history.append(record(error, model, 0.0))
        raise
    raise AssertionError("unreachable: tenacity either returns or re-raises")


async def acall(attempt: Callable[[], Awaitable[R]], policy: RetryPolicy, model: str, history: list[RetryRecord]) -> R:
    """`call` for asyncio: waits with asyncio.sleep (or the policy's `asleep`)."""
    try:
        return await attempt()
    except LLMError as error:
        replay = _first_failure_then(error, attempt)
    import asyncio

    from tenacity import AsyncRetrying

    try:
        async for try_ in AsyncRetrying(sleep=policy.asleep or asyncio.sleep, **_tenacity_arguments(policy, model, history)):
            with try_:
                return await replay()
    except LLMError as error:
        history.append(record(error, model, 0.0))
        raise
    raise AssertionError("unreachable: tenacity either returns or re-raises")


def _first_failure_then(error: LLMError, attempt: Callable[[], R]) -> Callable[[], R]:
    """An attempt that raises `error` (the first attempt's, already made) once, then calls
    `attempt`: tenacity judges that failure as if it had made the attempt itself."""
    pending = [error]

    def replay() -> R:
        if pending:
            raise pending.pop()
        return attempt()

    return replay
