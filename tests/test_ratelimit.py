"""The rate limiter on a fake clock (exact waits, computed by hand from the rates), plus one real-thread
and one real-asyncio check with generous tolerances."""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
from collections.abc import Iterator

import pytest

from llmclient.policies import ratelimit
from llmclient.errors import ConfigurationError, InvalidRequestError
from llmclient.policies.ratelimit import Permit, RateLimit, RateLimiter, estimate_tokens


class FakeClock:
    """A clock that moves only when told to. `sleep` records the wait; with advance=False it does
    not move time, which models callers that all reserve at one instant and then sleep in parallel."""

    def __init__(self, *, advance: bool = False) -> None:
        self.now = 1000.0
        self.advance = advance
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if self.advance:
            self.now += seconds

    async def asleep(self, seconds: float) -> None:
        self.sleep(seconds)


def limiter(clock: FakeClock, **limit: float) -> RateLimiter:
    return RateLimiter(RateLimit(**limit), clock=clock, sleep=clock.sleep, asleep=clock.asleep)


def waits(permits: list[Permit]) -> list[float]:
    return [round(permit.waited, 9) for permit in permits]


@pytest.fixture(autouse=True)
def _clean_registry() -> Iterator[None]:
    ratelimit.reset()
    yield
    ratelimit.reset()


# --- request spacing and bursts ---------------------------------------------------------------------


def test_simultaneous_callers_are_spaced_one_interval_apart() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rpm=60)  # one per second; default burst max(1, 60/60) = 1
    permits = [bucket.acquire() for _ in range(5)]
    assert waits(permits) == [0, 1, 2, 3, 4]
    assert clock.sleeps == [1, 2, 3, 4]  # the first caller never sleeps
    assert bucket.requests_available() == -4  # four queued requests of debt


def test_default_burst_is_one_seconds_worth() -> None:
    assert RateLimit(rpm=600).request_capacity == 10
    assert RateLimit(rpm=30).request_capacity == 1  # at least one request
    assert RateLimit(tpm=120_000).token_capacity == 2000
    clock = FakeClock()
    bucket = limiter(clock, rpm=600)
    assert waits([bucket.acquire() for _ in range(12)]) == [0] * 10 + [0.1, 0.2]


def test_burst_override() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rpm=60, rpm_burst=3)
    assert waits([bucket.acquire() for _ in range(5)]) == [0, 0, 0, 1, 2]


def test_bucket_refills_with_elapsed_time() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rpm=60, rpm_burst=3)
    for _ in range(3):
        bucket.acquire()
    clock.now += 2  # two requests' worth refilled
    assert bucket.requests_available() == 2
    assert waits([bucket.acquire() for _ in range(3)]) == [0, 0, 1]


def test_sequential_caller_sleeps_then_goes() -> None:
    clock = FakeClock(advance=True)
    bucket = limiter(clock, rpm=120, rpm_burst=1)  # every 0.5 s, no burst
    start = clock.now
    for _ in range(5):
        bucket.acquire()
    assert clock.sleeps == [0.5, 0.5, 0.5, 0.5]
    assert clock.now - start == 2.0


# --- tokens per minute ----------------------------------------------------------------------------


def test_tokens_wait_for_their_estimate() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)  # 100 tokens/s, capacity 100
    assert waits([bucket.acquire(60), bucket.acquire(60), bucket.acquire(100)]) == [0, 0.2, 1.2]


def test_usage_above_the_estimate_becomes_debt() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    permit = bucket.acquire(50)
    assert permit.settle(250) is True  # 200 more than reserved
    assert bucket.tokens_available() == 100 - 50 - 200
    assert bucket.acquire(100).waited == pytest.approx((100 + 150) / 100)


def test_usage_below_the_estimate_is_refunded() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    permit = bucket.acquire(100)
    assert bucket.tokens_available() == 0
    permit.settle(20)
    assert bucket.tokens_available() == pytest.approx(80)
    assert bucket.acquire(100).waited == pytest.approx(0.2)


def test_refund_frees_the_queue_behind_a_saturated_bucket() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    first = bucket.acquire(100)
    assert bucket.acquire(100).waited == pytest.approx(1.0)
    first.settle(0)
    # Without the refund the next caller would wait 2 s (two buckets' worth queued).
    assert bucket.acquire(100).waited == pytest.approx(1.0)


def test_refund_never_overfills_the_bucket() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    permit = bucket.acquire(100)
    clock.now += 0.5  # 50 tokens refilled
    permit.settle(0)
    assert bucket.tokens_available() == 100  # capacity, not 150


def test_refund_after_the_bucket_refilled_is_not_credited_twice() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    slow_call = bucket.acquire(100)
    clock.now += 2  # the bucket is full again: the reservation has been paid off by time
    bucket.acquire(100)  # another caller takes the whole bucket
    slow_call.settle(0)
    # Refunding the 100 now would let 100 tokens through that the provider's own bucket never had.
    assert bucket.tokens_available() == 0


def test_request_larger_than_the_bucket_goes_when_full() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)  # capacity 100
    assert bucket.acquire(500).waited == 0  # full bucket: admitted, leaves 400 of debt
    assert bucket.tokens_available() == -400
    assert bucket.acquire(500).waited == pytest.approx(5.0)  # waits until full again, not forever


def test_oversized_request_waits_for_a_full_bucket_not_for_its_cost() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    bucket.acquire(50)
    assert bucket.acquire(10_000).waited == pytest.approx(0.5)


def test_call_waits_for_the_slower_of_requests_and_tokens() -> None:
    # requests allow five at once; tokens (100/s, capacity 100) space 100-token calls 1 s apart
    token_bound = limiter(FakeClock(), rpm=60, rpm_burst=5, tpm=6000)
    assert waits([token_bound.acquire(100) for _ in range(3)]) == [0, 1, 2]
    # tokens allow many small calls, but requests (burst 2, one per second) run out
    request_bound = limiter(FakeClock(), rpm=60, rpm_burst=2, tpm=6000)
    assert waits([request_bound.acquire(10) for _ in range(3)]) == [0, 0, 1]


# --- closing a permit -----------------------------------------------------------------------------


def test_settle_is_first_wins_and_later_calls_do_nothing() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)
    permit = bucket.acquire(50)
    assert permit.settle(80) is True
    assert bucket.tokens_available() == pytest.approx(20)
    assert permit.settle(0) is False
    assert permit.cancel() is False
    assert bucket.tokens_available() == pytest.approx(20)
    assert permit.closed


def test_cancel_of_the_last_booking_undoes_it_exactly() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rpm=60, tpm=6000)
    permits = [bucket.acquire(10) for _ in range(3)]
    assert waits(permits) == [0, 1, 2]
    assert permits[2].cancel() is True
    assert permits[2].cancel() is False
    assert bucket.requests_available() == 1 - 2  # two requests booked
    assert bucket.acquire(10).waited == 2  # takes the cancelled slot, not the one after it


def test_cancel_of_a_queued_booking_refunds_its_cost() -> None:
    clock = FakeClock()
    bucket = limiter(clock, tpm=6000)  # 100 tokens/s, capacity 100
    first, middle, last = bucket.acquire(100), bucket.acquire(50), bucket.acquire(100)
    assert waits([first, middle, last]) == [0, 0.5, 1.5]
    assert middle.cancel() is True
    assert bucket.tokens_available() == pytest.approx(100 - 200)  # 250 booked, 50 given back
    assert bucket.acquire(100).waited == pytest.approx(2.0)  # 2.5 without the refund


def test_interrupted_sync_wait_refunds() -> None:
    clock = FakeClock()

    def interrupted(seconds: float) -> None:
        raise KeyboardInterrupt

    bucket = RateLimiter(RateLimit(rpm=60), clock=clock, sleep=interrupted)
    bucket.acquire()
    with pytest.raises(KeyboardInterrupt):
        bucket.acquire()
    assert bucket.requests_available() == 0
    bucket.sleep = clock.sleep
    assert bucket.acquire().waited == 1


async def test_cancelled_async_waiter_refunds_its_reservation() -> None:
    clock = FakeClock()
    never = asyncio.Event()
    started = asyncio.Event()

    async def wait_forever(seconds: float) -> None:
        started.set()
        await never.wait()

    bucket = RateLimiter(RateLimit(rpm=60, tpm=6000), clock=clock, asleep=wait_forever)
    await bucket.aacquire(40)
    waiter = asyncio.create_task(bucket.aacquire(40))
    await started.wait()
    assert bucket.requests_available() == -1
    waiter.cancel()
    with pytest.raises(asyncio.CancelledError):
        await waiter
    assert bucket.requests_available() == 0  # 1 - the first call's request
    assert bucket.tokens_available() == pytest.approx(60)  # 100 - the first call's 40


async def test_async_acquire_awaits_the_same_spacing() -> None:
    clock = FakeClock()
    bucket = limiter(clock, rpm=60)
    permits = await asyncio.gather(*(bucket.aacquire() for _ in range(4)))
    assert sorted(waits(list(permits))) == [0, 1, 2, 3]
    assert sorted(clock.sleeps) == [1, 2, 3]


# --- the process-wide registry ----------------------------------------------------------------------


def test_provider_and_model_limits_both_apply() -> None:
    clock = FakeClock()
    provider_level = limiter(clock, rpm=60, rpm_burst=10)
    model_level = limiter(clock, rpm=30)  # one every 2 s
    ratelimit.configure("acme", provider_level)
    ratelimit.configure("acme", model_level, model="small")
    assert ratelimit.limiter_for("acme", "small") == [provider_level, model_level]
    assert ratelimit.limiter_for("acme", "large") == [provider_level]
    assert ratelimit.limiter_for("acme", None) == [provider_level]

    assert waits([ratelimit.acquire("acme", "small") for _ in range(3)]) == [0, 2, 4]
    clock.now += 4  # the last one goes out now; the provider bucket counted it (10 - 1)
    assert provider_level.requests_available() == 9
    assert ratelimit.acquire("acme", "large").waited == 0  # other models: only the provider limit


def test_tighter_provider_limit_governs_every_model() -> None:
    clock = FakeClock()
    ratelimit.configure("acme", limiter(clock, rpm=60))
    ratelimit.configure("acme", limiter(clock, rpm=6000), model="small")
    assert waits([ratelimit.acquire("acme", "small") for _ in range(3)]) == [0, 1, 2]
    assert ratelimit.acquire("acme", "large").waited == 3


def test_model_only_limit() -> None:
    clock = FakeClock()
    only = limiter(clock, rpm=60)
    ratelimit.configure("acme", only, model="small")
    assert ratelimit.limiter_for("acme", "small") == [only]
    assert ratelimit.limiter_for("acme", "large") == []
    assert ratelimit.limiter_for("acme", None) == []


def test_every_client_in_the_process_shares_one_bucket() -> None:
    clock = FakeClock()
    ratelimit.configure("acme", limiter(clock, rpm=60))

    def client_call(model: str) -> float:  # what two separate Clients do for each call
        permit = ratelimit.acquire("acme", model, 0)
        permit.settle(0)
        return permit.waited

    assert [client_call("a"), client_call("b"), client_call("a")] == [0, 1, 2]


def test_reconfiguring_the_same_limit_keeps_the_bucket_state() -> None:
    first = ratelimit.configure("acme", RateLimit(rpm=60))
    assert first is not None
    first.acquire()
    again = ratelimit.configure("acme", RateLimit(rpm=60))
    assert again is first
    assert ratelimit.limiter_for("acme") == [first]
    changed = ratelimit.configure("acme", RateLimit(rpm=120))
    assert changed is not first and changed is not None and changed.limit.rpm == 120
    assert ratelimit.configure("acme", None) is None
    assert ratelimit.limiter_for("acme", "any") == []


def test_unconfigured_provider_is_not_limited() -> None:
    ratelimit.configure("acme", RateLimit(rpm=1))
    permit = ratelimit.acquire("other", "m", 1234)
    assert permit.waited == 0 and permit.estimated_tokens == 1234
    assert permit.settle(99) is True and permit.settle(99) is False
    assert ratelimit.limiter_for("other", "m") == []


async def test_unconfigured_provider_is_not_limited_async() -> None:
    permit = await ratelimit.aacquire("other", None, 5)
    assert permit.waited == 0 and permit.cancel() is True


def test_reset_forgets_everything() -> None:
    ratelimit.configure("acme", RateLimit(rpm=1))
    ratelimit.configure("acme", RateLimit(rpm=1), model="m")
    ratelimit.reset()
    assert ratelimit.limiter_for("acme", "m") == []


# --- validation -------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"rpm": 0}, "RateLimit rpm must be a positive number, got 0"),
        ({"rpm": -5}, "RateLimit rpm must be a positive number, got -5"),
        ({"tpm": float("nan")}, "RateLimit tpm must be a positive number, got nan"),
        ({"tpm": float("inf")}, "RateLimit tpm must be a positive number, got inf"),
        ({"rpm": True}, "RateLimit rpm must be a positive number, got True"),
        ({"rpm": "600"}, "RateLimit rpm must be a positive number, got '600'"),
        ({"rpm": 60, "rpm_burst": 0}, "RateLimit rpm_burst must be a positive number, got 0"),
        ({}, "RateLimit needs rpm= and/or tpm=; to remove a limit, call configure(provider, None)"),
        ({"rpm": 60, "tpm_burst": 10}, "RateLimit tpm_burst is set but tpm is not"),
    ],
)
def test_invalid_limits_are_rejected(fields: dict[str, object], message: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        RateLimit(**fields)  # type: ignore[arg-type]
    assert message in str(caught.value)


def test_invalid_configuration_is_rejected() -> None:
    with pytest.raises(ConfigurationError, match="provider name like 'openai'"):
        ratelimit.configure("", RateLimit(rpm=1))
    with pytest.raises(ConfigurationError, match="model id like 'gpt-4o-mini'"):
        ratelimit.configure("acme", RateLimit(rpm=1), model="")
    with pytest.raises(ConfigurationError, match="must be a RateLimit, a RateLimiter or None, got dict"):
        ratelimit.configure("acme", {"rpm": 1})  # type: ignore[arg-type]
    with pytest.raises(ConfigurationError, match="needs a RateLimit, got dict"):
        RateLimiter({"rpm": 1})  # type: ignore[arg-type]


def test_negative_token_counts_are_rejected() -> None:
    bucket = RateLimiter(RateLimit(tpm=6000), clock=FakeClock())
    with pytest.raises(InvalidRequestError, match="estimated_tokens must be >= 0, got -1"):
        bucket.acquire(-1)
    with pytest.raises(InvalidRequestError, match="estimated_tokens must be >= 0, got -1"):
        ratelimit.acquire("unlimited", None, -1)
    with pytest.raises(InvalidRequestError, match=r"Permit.settle needs the tokens the call used \(>= 0\), got -3"):
        bucket.acquire(1).settle(-3)
    assert bucket.tokens_available() == pytest.approx(99)  # only the 1-token call reserved anything


def test_estimate_tokens() -> None:
    assert estimate_tokens(0, None) == 0
    assert estimate_tokens(4, None) == 1
    assert estimate_tokens(5, None) == 2  # rounds up: a partial token is still a token
    assert estimate_tokens(400, 100) == 200
    with pytest.raises(InvalidRequestError, match="non-negative"):
        estimate_tokens(-1, None)


def test_import_stays_cheap() -> None:
    code = (
        "import sys, llmclient; before = set(sys.modules); import llmclient.policies.ratelimit; "
        "print(' '.join(sorted(set(sys.modules) - before)))"
    )
    added = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert not [name for name in added if name.split(".")[0] in {"asyncio", "httpx", "litellm", "pydantic"}]


# --- real time: generous bounds only ----------------------------------------------------------------


def test_real_threads_are_held_to_the_rate() -> None:
    bucket = RateLimiter(RateLimit(rpm=1200, rpm_burst=1))  # one every 0.05 s
    calls = 21
    remaining = iter(range(calls))
    lock = threading.Lock()

    def worker() -> None:
        while True:
            with lock:
                if next(remaining, None) is None:
                    return
            bucket.acquire().settle(0)

    started = time.monotonic()
    threads = [threading.Thread(target=worker) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 10  # 20 intervals of 0.05 s after the first call


async def test_real_asyncio_tasks_are_held_to_the_rate() -> None:
    bucket = RateLimiter(RateLimit(rpm=1200, rpm_burst=1))
    started = time.monotonic()
    permits = await asyncio.gather(*(bucket.aacquire() for _ in range(21)))
    elapsed = time.monotonic() - started
    assert 0.95 <= elapsed < 10
    assert max(permit.waited for permit in permits) == pytest.approx(1.0, abs=0.05)
