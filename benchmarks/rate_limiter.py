"""Does the rate limiter hold its rate, and what does it add when it is not limiting?

1. A limit of 600 RPM for 30 s, with 8 threads and then 64 asyncio tasks, each calling acquire() in a
   loop and doing no work: the requests admitted inside the window, as RPM and as deviation from the
   limit. The count includes the initial burst (one second's worth by default: 10 requests, +3.3%
   over 30 s), because a provider counting requests would see it too. For a short `--seconds` run,
   pass `--burst 1`, or that burst alone exceeds 5%.
2. acquire() + settle() per call when not limiting, through the process-wide registry: for a provider
   with no limit configured, and with a very high limit configured; against a baseline loop (the
   same calls into a stand-in that does nothing) measured in the same run.

Exit status 1 if a deviation exceeds 5% or an overhead reaches 50 us per call.

    python benchmarks/rate_limiter.py [--seconds 30] [--rpm 600] [--burst N] [--calls 200000]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import threading
import time
from collections.abc import Callable

from llmclient.policies import ratelimit
from llmclient.policies.ratelimit import RateLimit, RateLimiter
from timing import seconds_per_call  # benchmarks/timing.py (scripts run from this directory)

THREADS = 8
TASKS = 64
MAX_DEVIATION = 0.05
MAX_OVERHEAD_US = 50.0


def admitted_by_threads(limiter: RateLimiter, seconds: float) -> int:
    counts = [0] * THREADS
    ready = threading.Barrier(THREADS + 1)
    deadline = 0.0

    def worker(index: int) -> None:
        ready.wait()
        while True:
            limiter.acquire(0).settle(0)
            if time.monotonic() >= deadline:  # admitted after the window: not counted
                return
            counts[index] += 1

    threads = [threading.Thread(target=worker, args=(index,)) for index in range(THREADS)]
    for thread in threads:
        thread.start()
    deadline = time.monotonic() + seconds
    ready.wait()
    for thread in threads:
        thread.join()
    return sum(counts)


async def admitted_by_tasks(limiter: RateLimiter, seconds: float) -> int:
    deadline = time.monotonic() + seconds
    counts = [0] * TASKS

    async def task(index: int) -> None:
        while True:
            (await limiter.aacquire(0)).settle(0)
            if time.monotonic() >= deadline:
                return
            counts[index] += 1

    await asyncio.gather(*(task(index) for index in range(TASKS)))
    return sum(counts)




class _StandInPermit:
    def settle(self, actual_tokens: int) -> bool:
        return True


_STAND_IN = _StandInPermit()


def _stand_in_acquire(provider: str, model: str | None, estimated_tokens: int = 0) -> _StandInPermit:
    return _STAND_IN


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--rpm", type=float, default=600.0)
    parser.add_argument("--burst", type=float, default=None, help="bucket capacity (default: one second's worth)")
    parser.add_argument("--calls", type=int, default=200_000)
    args = parser.parse_args()
    limit = RateLimit(rpm=args.rpm, rpm_burst=args.burst)
    failed = False

    print(f"limit {args.rpm:g} RPM, burst {limit.request_capacity:g}, window {args.seconds:g} s")
    runs: list[tuple[str, Callable[[], int]]] = [
        (f"{THREADS} threads", lambda: admitted_by_threads(RateLimiter(limit), args.seconds)),
        (f"{TASKS} asyncio tasks", lambda: asyncio.run(admitted_by_tasks(RateLimiter(limit), args.seconds))),
    ]
    for label, measure in runs:
        admitted = measure()
        achieved = admitted / args.seconds * 60
        deviation = achieved / args.rpm - 1
        ok = abs(deviation) <= MAX_DEVIATION
        failed |= not ok
        print(f"  {label:<18} {admitted:6d} admitted  {achieved:8.1f} RPM  deviation {deviation:+6.2%}"
              f"  {'ok' if ok else 'FAIL'} (limit ±{MAX_DEVIATION:.0%})")

    ratelimit.reset()
    ratelimit.configure("bench-high", RateLimit(rpm=1e12, tpm=1e15))
    baseline = seconds_per_call(lambda: _stand_in_acquire("bench-none", "model", 1000).settle(900), args.calls)
    print(f"per call (best of 5 x {args.calls}):")
    print(f"  baseline loop (stand-in)   {baseline * 1e6:7.3f} us")
    for label, provider in (("no limit configured", "bench-none"), ("very high limit", "bench-high")):
        per_call = seconds_per_call(lambda: ratelimit.acquire(provider, "model", 1000).settle(900), args.calls)
        overhead_us = (per_call - baseline) * 1e6
        ok = overhead_us < MAX_OVERHEAD_US
        failed |= not ok
        print(f"  {label:<26} {per_call * 1e6:7.3f} us  (+{overhead_us:.3f} us over baseline, "
              f"x{per_call / baseline:.1f})  {'ok' if ok else 'FAIL'} (limit < {MAX_OVERHEAD_US:g} us)")
    ratelimit.reset()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
