"""Client-side rate limiting: requests-per-minute and tokens-per-minute token buckets per provider
(and optionally per model), shared by every Client in the process, for threads and asyncio alike.

A call *waits* for capacity instead of failing. The token count a call will use is not known before
it is sent, so it reserves an estimate (`estimate_tokens`) and corrects it with the real usage
afterwards (`Permit.settle`).

    configure("openai", RateLimit(rpm=500, tpm=200_000))          # from configuration, once
    permit = acquire("openai", "gpt-4o-mini", estimate_tokens(chars, max_tokens))   # blocks
    ...send the request...
    permit.settle(response.usage.total_tokens)

How a bucket works (GCRA, the "generic cell rate algorithm"). A bucket of `capacity` refilled at
`rate` per second is stored as one number, `tat`: the moment it will be full again. Reserving `cost`
moves `tat` forward by cost/rate; the level at time t is `capacity - max(0, tat - t) * rate`, and it
may be negative: that is debt owed by callers already queued. Each caller, under a lock held only
for this arithmetic, computes the moment the level reaches its cost, books its cost, releases the
lock and then sleeps (time.sleep or asyncio.sleep) until that moment. Callers are therefore
admitted first come first served, exactly one interval apart, without a thundering herd of wakers
re-checking a condition; and since the lock is never held across a sleep or an await, one lock
serves threads and asyncio tasks alike.
"""

from __future__ import annotations

import itertools
import math
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from llmclient.errors import ConfigurationError, InvalidRequestError

Clock = Callable[[], float]
Sleep = Callable[[float], Any]
AsyncSleep = Callable[[float], Awaitable[Any]]


@dataclass(frozen=True, slots=True)
class RateLimit:
    """A configured limit. `rpm`: requests per minute; `tpm`: tokens (input + output) per minute.

    `rpm_burst` / `tpm_burst` are the bucket capacities: how much may go out at once after an idle
    spell. Over any window the count can exceed rate x window by at most one burst, so the default
    is one second's worth (at least 1): 1/30 = 3.3% of a 30 s window, while a handful of parallel
    calls can still start together. With a minute's worth, a 600 RPM limit would let 1200 requests
    through in the first minute, and a provider counting in sliding windows would answer 429."""

    rpm: float | None = None
    tpm: float | None = None
    rpm_burst: float | None = None
    tpm_burst: float | None = None

    def __post_init__(self) -> None:
        for name in ("rpm", "tpm", "rpm_burst", "tpm_burst"):
            value = getattr(self, name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ConfigurationError(f"RateLimit {name} must be a positive number, got {value!r}")
        if self.rpm is None and self.tpm is None:
            raise ConfigurationError(
                "RateLimit needs rpm= and/or tpm=; to remove a limit, call configure(provider, None)"
            )
        for burst, rate in (("rpm_burst", "rpm"), ("tpm_burst", "tpm")):
            if getattr(self, burst) is not None and getattr(self, rate) is None:
                raise ConfigurationError(f"RateLimit {burst} is set but {rate} is not: a burst needs a rate")

    @property
    def request_capacity(self) -> float | None:
        return None if self.rpm is None else (self.rpm_burst or max(1.0, self.rpm / 60))

    @property
    def token_capacity(self) -> float | None:
        return None if self.tpm is None else (self.tpm_burst or max(1.0, self.tpm / 60))


def estimate_tokens(text_chars: int, max_tokens: int | None) -> int:
    """Tokens to reserve before a call: ~4 characters per input token plus the output budget.

    Deliberately crude: a real tokenizer would cost milliseconds and a heavy import per call, and
    still miss tool schemas, images and reasoning. The error does not accumulate, because
    `Permit.settle` replaces the estimate with the usage the provider reports. Counting the whole
    `max_tokens` mirrors how providers themselves pre-charge TPM limits; without one, the output
    is only charged at settle time."""
    if text_chars < 0 or (max_tokens is not None and max_tokens < 0):
        raise InvalidRequestError(
            f"estimate_tokens needs non-negative counts, got text_chars={text_chars}, max_tokens={max_tokens}"
        )
    return -(-text_chars // 4) + (max_tokens or 0)


class _Bucket:
    """One GCRA bucket (see the module docstring). Not thread-safe: its RateLimiter's lock guards it."""

    __slots__ = ("rate", "capacity", "burst_seconds", "tat", "refills")

    def __init__(self, per_minute: float, capacity: float) -> None:
        self.rate = per_minute / 60.0
        self.capacity = capacity
        self.burst_seconds = capacity / self.rate
        self.tat = -math.inf
        # How many times an operation found the bucket full. A refund is only owed while this is
        # unchanged since the charge: once the bucket has refilled, the charge was absorbed.
        self.refills = 0

    def _observe(self, now: float) -> None:
        if self.tat <= now:
            self.refills += 1

    def ready_at(self, cost: float, now: float) -> float:
        """When the level reaches `cost`, or reaches `capacity` for a request larger than the
        bucket: an oversized request goes out when the bucket is full instead of never."""
        self._observe(now)
        full_at = max(self.tat, now)
        return max(now, full_at - self.burst_seconds + min(cost / self.rate, self.burst_seconds))

    def book(self, limiter: RateLimiter, cost: float, at: float) -> _Booking:
        """Take `cost` at time `at` (>= now)."""
        before = self.tat
        self.tat = (before if before > at else at) + cost / self.rate
        return _Booking(limiter, self, cost, self.refills, before, self.tat)

    def charge(self, cost: float, now: float) -> None:
        """Take more after the fact (usage above the estimate): debt that later callers wait for."""
        self._observe(now)
        self.tat = max(self.tat, now) + cost / self.rate

    def refund(self, cost: float, now: float, booking: _Booking) -> None:
        self._observe(now)
        if self.refills != booking.refills:
            return
        if self.tat == booking.tat_after and cost == booking.cost:
            # Nobody booked after this one: undo it exactly, including any idle gap it skipped
            # when it was booked at a later moment than the bucket needed (see _reserve).
            self.tat = booking.tat_before
        else:
            self.tat -= cost / self.rate  # capped at full for free: a `tat` in the past means full

    def level(self, now: float) -> float:
        return self.capacity - max(0.0, self.tat - now) * self.rate


_sequence = itertools.count()


class RateLimiter:
    """An RPM bucket and/or a TPM bucket under one lock. `clock`, `sleep` and `asleep` are injectable
    so tests can run on a fake clock; `asleep` defaults to asyncio.sleep."""

    def __init__(
        self,
        limit: RateLimit,
        *,
        clock: Clock = time.monotonic,
        sleep: Sleep = time.sleep,
        asleep: AsyncSleep | None = None,
    ) -> None:
        if not isinstance(limit, RateLimit):
            raise ConfigurationError(f"RateLimiter needs a RateLimit, got {type(limit).__name__}")
        self.limit = limit
        self.clock = clock
        self.sleep = sleep
        self.asleep = asleep
        self._lock = threading.Lock()
        self._order = next(_sequence)  # a global lock order, so combined limiters cannot deadlock
        self._requests = None if limit.rpm is None else _Bucket(limit.rpm, limit.request_capacity or 1.0)
        self._tokens = None if limit.tpm is None else _Bucket(limit.tpm, limit.token_capacity or 1.0)
        # (bucket, charged tokens?) pairs, precomputed for the reservation loop
        self._buckets = tuple(
            (bucket, bucket is self._tokens) for bucket in (self._requests, self._tokens) if bucket is not None
        )

    def __repr__(self) -> str:
        return f"RateLimiter({self.limit!r})"

    def acquire(self, estimated_tokens: int = 0) -> Permit:
        """Wait (blocking this thread) until the call may go out; settle the permit afterwards."""
        return acquire_all((self,), estimated_tokens)

    async def aacquire(self, estimated_tokens: int = 0) -> Permit:
        """Wait (without blocking the event loop) until the call may go out."""
        return await aacquire_all((self,), estimated_tokens)

    def requests_available(self) -> float | None:
        """Requests that could go out now (negative: queued debt); None without an RPM limit."""
        with self._lock:
            return None if self._requests is None else self._requests.level(self.clock())

    def tokens_available(self) -> float | None:
        """Tokens that could go out now (negative: queued debt); None without a TPM limit."""
        with self._lock:
            return None if self._tokens is None else self._tokens.level(self.clock())

    def _ready_at(self, tokens: float, now: float) -> float:
        ready = now
        for bucket, is_tokens in self._buckets:
            at = bucket.ready_at(tokens if is_tokens else 1.0, now)
            if at > ready:
                ready = at
        return ready

    def _book(self, tokens: float, at: float, out: list[_Booking]) -> None:
        for bucket, is_tokens in self._buckets:
            out.append(bucket.book(self, tokens if is_tokens else 1.0, at))


class _Booking:
    """What one call took from one bucket, and enough of the bucket's state to give it back.
    (A plain slotted class: it is built on every call, and a frozen dataclass takes 4x as long.)"""

    __slots__ = ("limiter", "bucket", "cost", "refills", "tat_before", "tat_after")

    def __init__(
        self, limiter: RateLimiter, bucket: _Bucket, cost: float, refills: int, tat_before: float, tat_after: float
    ) -> None:
        self.limiter = limiter
        self.bucket = bucket
        self.cost = cost
        self.refills = refills  # `refund` checks the bucket has not been full since
        self.tat_before = tat_before  # for an exact undo when nothing was booked after this
        self.tat_after = tat_after


class Permit:
    """Leave to send one call. Close it once: `settle(actual_tokens)` after the call, or `cancel()`
    if it was never sent. Closing is first-wins: later settle()/cancel() calls do nothing and
    return False, so `finally: permit.cancel()` after a successful settle() is safe."""

    __slots__ = ("estimated_tokens", "waited", "_bookings", "_closed")

    def __init__(self, estimated_tokens: int, waited: float, bookings: Sequence[_Booking]) -> None:
        self.estimated_tokens = estimated_tokens
        self.waited = waited  # seconds this caller was told to wait
        self._bookings = tuple(bookings)
        self._closed = False

    @property
    def closed(self) -> bool:
        return self._closed

    def settle(self, actual_tokens: int) -> bool:
        """Replace the token estimate by the usage the provider reported: more than estimated is
        charged as debt (later callers wait for it), less is refunded. True if this closed it.

        A refund cannot wake callers already asleep: it goes to the next caller, so for a moment
        the calls going out can carry up to the refunded amount more than the bucket's capacity
        (the rate over longer windows still holds). Once the bucket has been full again since
        the call was booked, nothing is refunded: the reservation has already been paid off."""
        if actual_tokens < 0:
            raise InvalidRequestError(f"Permit.settle needs the tokens the call used (>= 0), got {actual_tokens}")
        if self._closed:
            return False
        self._closed = True
        difference = actual_tokens - self.estimated_tokens
        if difference:
            for booking in self._bookings:
                if booking.bucket is booking.limiter._tokens:
                    limiter = booking.limiter
                    with limiter._lock:
                        now = limiter.clock()
                        if difference > 0:
                            booking.bucket.charge(difference, now)
                        else:
                            booking.bucket.refund(-difference, now, booking)
        return True

    def cancel(self) -> bool:
        """The call was never sent: give back the request and the reserved tokens."""
        if self._closed:
            return False
        self._closed = True
        for booking in self._bookings:
            with booking.limiter._lock:
                booking.bucket.refund(booking.cost, booking.limiter.clock(), booking)
        return True


def _reserve(limiters: Sequence[RateLimiter], estimated_tokens: int) -> tuple[Permit, float]:
    if not estimated_tokens >= 0:
        raise InvalidRequestError(f"estimated_tokens must be >= 0, got {estimated_tokens}")
    if not limiters:
        return Permit(estimated_tokens, 0.0, ()), 0.0
    bookings: list[_Booking] = []
    ordered = limiters if len(limiters) == 1 else sorted(limiters, key=lambda limiter: limiter._order)
    for limiter in ordered:
        limiter._lock.acquire()
    try:
        now = limiters[0].clock()  # one clock: the limiters that apply to one call share a time line
        # Booked in every bucket at the moment the call will actually go out (the latest any bucket
        # allows), so no bucket believes it went out earlier than it will: none can overshoot its
        # limit. The price: a bucket that had room earlier cannot lend that idle gap to others
        # (one tat cannot hold gaps), so a deep queue behind a model-level limit also delays
        # other models under the same provider limit. Safe (no 429s) over perfectly packed.
        ready = now
        for limiter in limiters:
            ready = max(ready, limiter._ready_at(estimated_tokens, now))
        for limiter in limiters:
            limiter._book(estimated_tokens, ready, bookings)
    finally:
        for limiter in reversed(ordered):
            limiter._lock.release()
    delay = ready - now
    return Permit(estimated_tokens, delay, bookings), delay


def acquire_all(limiters: Sequence[RateLimiter], estimated_tokens: int = 0) -> Permit:
    """One permit from every limiter in `limiters` (e.g. provider- and model-level), blocking."""
    permit, delay = _reserve(limiters, estimated_tokens)
    if delay > 0:
        try:
            limiters[0].sleep(delay)
        except BaseException:  # interrupted: the call will not be sent, free its slot
            permit.cancel()
            raise
    return permit


async def aacquire_all(limiters: Sequence[RateLimiter], estimated_tokens: int = 0) -> Permit:
    """One permit from every limiter in `limiters`, awaiting instead of blocking."""
    permit, delay = _reserve(limiters, estimated_tokens)
    if delay > 0:
        asleep = limiters[0].asleep
        if asleep is None:  # imported here: `import llmclient` stays cheap for code that never awaits
            import asyncio

            asleep = asyncio.sleep
        try:
            await asleep(delay)
        except BaseException:  # CancelledError included: the call will not be sent, free its slot
            permit.cancel()
            raise
    return permit


# --- the process-wide registry --------------------------------------------------------------------

_registry_lock = threading.Lock()
_limiters: dict[tuple[str, str | None], RateLimiter] = {}
# Read without the lock on the hot path: it is only ever replaced whole (an atomic store), so a
# reader sees either the old or the new set, never a half-built one.
_limited_providers: frozenset[str] = frozenset()


def configure(provider: str, limit: RateLimit | RateLimiter | None, model: str | None = None) -> RateLimiter | None:
    """Limit `provider` (every model), or one `model` id of it (without the provider prefix, e.g.
    "gpt-4o-mini"); both levels apply when both are configured. `None` removes the limit.

    Configuring the same RateLimit again keeps the existing limiter and its state, so every Client
    can apply the configuration it was built from without resetting the others' buckets. A
    different RateLimit replaces the limiter. A RateLimiter is installed as is (one limiter may
    serve several providers that share an account, or carry a test clock)."""
    global _limited_providers
    if not isinstance(provider, str) or not provider:
        raise ConfigurationError(f"rate limit provider must be a provider name like 'openai', got {provider!r}")
    if model is not None and (not isinstance(model, str) or not model):
        raise ConfigurationError(f"rate limit model must be a model id like 'gpt-4o-mini' or None, got {model!r}")
    if limit is not None and not isinstance(limit, (RateLimit, RateLimiter)):
        raise ConfigurationError(
            f"rate limit for {provider!r} must be a RateLimit, a RateLimiter or None, got {type(limit).__name__}"
        )
    key = (provider, model)
    with _registry_lock:
        current = _limiters.get(key)
        if limit is None:
            _limiters.pop(key, None)
            installed = None
        elif isinstance(limit, RateLimiter):
            installed = _limiters[key] = limit
        elif current is not None and current.limit == limit:
            installed = current
        else:
            installed = _limiters[key] = RateLimiter(limit)
        _limited_providers = frozenset(name for name, _ in _limiters)
    return installed


def limiter_for(provider: str, model: str | None = None) -> list[RateLimiter]:
    """The limiters that apply to a call: the provider's, then the model's, each when configured."""
    if provider not in _limited_providers:
        return []
    found = [_limiters.get((provider, None)), _limiters.get((provider, model)) if model is not None else None]
    return [limiter for limiter in found if limiter is not None]


def acquire(provider: str, model: str | None, estimated_tokens: int = 0) -> Permit:
    """Block until a call to `provider`/`model` may go out under every configured limit."""
    if provider not in _limited_providers and estimated_tokens >= 0:  # the unlimited hot path
        return Permit(estimated_tokens, 0.0, ())
    return acquire_all(limiter_for(provider, model), estimated_tokens)


async def aacquire(provider: str, model: str | None, estimated_tokens: int = 0) -> Permit:
    """Await until a call to `provider`/`model` may go out under every configured limit."""
    if provider not in _limited_providers and estimated_tokens >= 0:
        return Permit(estimated_tokens, 0.0, ())
    return await aacquire_all(limiter_for(provider, model), estimated_tokens)


def reset() -> None:
    """Forget every configured limit (for tests)."""
    global _limited_providers
    with _registry_lock:
        _limiters.clear()
        _limited_providers = frozenset()
