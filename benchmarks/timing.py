"""The one timing loop the benchmark scripts share: best of 5 runs, seconds per call."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def seconds_per_call(run: Callable[[], Any], calls: int) -> float:
    best = float("inf")
    for _ in range(5):  # the best run: the least disturbed by other work on a shared machine
        started = time.perf_counter()
        for _ in range(calls):
            run()
        best = min(best, (time.perf_counter() - started) / calls)
    return best
