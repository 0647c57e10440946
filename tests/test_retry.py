"""The retry policy on its own: what is retried, how long it waits, what is recorded."""

from __future__ import annotations

import asyncio

import pytest

from llmclient import (
    APIConnectionError,
    AuthenticationError,
    BadRequestError,
    ContextWindowExceededError,
    LLMError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from llmclient.policies.retry import RetryPolicy, acall, call
from llmclient.types import RetryRecord


@pytest.mark.parametrize("error", [RateLimitError, ServerError, OverloadedError, RequestTimeoutError, APIConnectionError])
def test_transient_errors_are_retried(error: type[LLMError]) -> None:
    assert RetryPolicy.retryable(error("x"))


@pytest.mark.parametrize("error", [AuthenticationError, NotFoundError, BadRequestError, ContextWindowExceededError,
                                   MalformedResponseError, LLMError])
def test_errors_that_would_fail_again_are_not(error: type[LLMError]) -> None:
    assert not RetryPolicy.retryable(error("x"))


def test_retry_after_is_honoured_and_capped() -> None:
    policy = RetryPolicy(max_wait=10.0)
    assert policy.wait_after(RateLimitError("x", retry_after=1.5), 1) == 1.5
    assert policy.wait_after(RateLimitError("x", retry_after=3600.0), 1) == 10.0


def test_backoff_doubles_up_to_its_maximum_and_jitter_stays_under_it() -> None:
    policy = RetryPolicy(initial_backoff=0.5, max_backoff=3.0, jitter=False)
    assert [policy.wait_after(ServerError("x"), n) for n in (1, 2, 3, 4, 5)] == [0.5, 1.0, 2.0, 3.0, 3.0]
    jittered = RetryPolicy(initial_backoff=0.5, max_backoff=3.0)
    waits = [jittered.wait_after(ServerError("x"), 3) for _ in range(200)]
    assert all(0 <= w <= 2.0 for w in waits) and len(set(waits)) > 100  # full jitter: uniform in [0, 2]


def test_attempts_are_counted_waited_and_recorded() -> None:
    slept: list[float] = []
    failures = iter([RateLimitError("slow down", status_code=429, retry_after=2.0), ServerError("boom", status_code=503)])

    def attempt() -> str:
        error = next(failures, None)
        if error is not None:
            raise error
        return "answer"

    history: list[RetryRecord] = []
    policy = RetryPolicy(max_attempts=3, initial_backoff=0.25, jitter=False, sleep=slept.append)
    assert call(attempt, policy, "p/m", history) == "answer"
    assert slept == [2.0, 0.5]  # Retry-After, then the second backoff step (0.25 x 2)
    assert history == [RetryRecord(model="p/m", error="RateLimitError", status_code=429, message="slow down", waited=2.0),
                       RetryRecord(model="p/m", error="ServerError", status_code=503, message="boom", waited=0.5)]


def test_the_last_error_is_raised_after_the_last_attempt_with_every_attempt_recorded() -> None:
    calls = []

    def attempt() -> str:
        calls.append(1)
        raise ServerError("down", status_code=503)

    history: list[RetryRecord] = []
    with pytest.raises(ServerError):
        call(attempt, RetryPolicy(max_attempts=3, jitter=False, sleep=lambda s: None), "p/m", history)
    assert len(calls) == 3 and [r.waited for r in history] == [0.5, 1.0, 0.0]


def test_a_non_retryable_error_is_raised_at_once() -> None:
    calls = []

    def attempt() -> str:
        calls.append(1)
        raise AuthenticationError("bad key", status_code=401)

    history: list[RetryRecord] = []
    with pytest.raises(AuthenticationError):
        call(attempt, RetryPolicy(sleep=lambda s: pytest.fail("must not wait")), "p/m", history)
    assert len(calls) == 1 and [r.error for r in history] == ["AuthenticationError"]


def test_async_attempts_wait_with_the_async_sleep() -> None:
    slept: list[float] = []

    async def asleep(seconds: float) -> None:
        slept.append(seconds)

    outcomes = iter([RequestTimeoutError("slow"), "done"])

    async def attempt() -> str:
        outcome = next(outcomes)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    history: list[RetryRecord] = []
    policy = RetryPolicy(initial_backoff=0.1, jitter=False, asleep=asleep)
    assert asyncio.run(acall(attempt, policy, "p/m", history)) == "done"
    assert slept == [0.1] and history[0].error == "RequestTimeoutError"


@pytest.mark.parametrize(("field", "value"), [("max_attempts", 0), ("max_attempts", True), ("max_wait", -1.0),
                                              ("initial_backoff", float("nan"))])
def test_a_bad_policy_is_refused(field: str, value: object) -> None:
    with pytest.raises(LLMError, match=f"RetryPolicy.{field} must be"):
        RetryPolicy(**{field: value})  # type: ignore[arg-type]
