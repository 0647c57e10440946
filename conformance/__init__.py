"""The provider conformance suite: identical scenarios for every provider, replayed from cassettes.

`llmclient conformance` (or `nox -s conformance`, or `pytest conformance/`) runs the matrix.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

from conformance.runner import Cell, run_cell
from conformance.scenarios import BY_NAME, SCENARIOS, Scenario
from conformance.targets import Target, targets


def run(providers: Sequence[str] = (), scenarios: Sequence[str] = (), **options: Any) -> tuple[list[Cell], float, dict[str, float]]:
    """Run the chosen cells (all when none are named); returns the cells, wall seconds and timing."""
    from llmclient.backend import load_litellm

    started = time.perf_counter()
    load_litellm()
    imported = time.perf_counter() - started
    known = targets()
    unknown = sorted(set(providers) - {t.provider for t in known}) + sorted(set(scenarios) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown provider or scenario: {', '.join(unknown)}; "
                         f"providers: {', '.join(t.provider for t in known)}; scenarios: {', '.join(BY_NAME)}")
    chosen_targets = [t for t in known if not providers or t.provider in providers]
    chosen: list[Scenario] = [s for s in SCENARIOS if not scenarios or s.name in scenarios]
    inside = _LitellmTimer()
    with inside:
        cells = [run_cell(t, s, **options) for t in chosen_targets for s in chosen]
    seconds = time.perf_counter() - started
    return cells, seconds, {"litellm_import_seconds": round(imported, 2), "inside_litellm_seconds": round(inside.seconds, 2)}


class _LitellmTimer:
    """Time spent inside litellm.completion (request building, its client call) during a run."""

    def __init__(self) -> None:
        self.seconds = 0.0

    def __enter__(self) -> None:
        import litellm

        self._original = litellm.completion

        def timed(*args: Any, **kwargs: Any) -> Any:
            start = time.perf_counter()
            try:
                return self._original(*args, **kwargs)
            finally:
                self.seconds += time.perf_counter() - start

        litellm.completion = timed

    def __exit__(self, *exc: object) -> None:
        import litellm

        litellm.completion = self._original


__all__ = ["BY_NAME", "SCENARIOS", "Cell", "Scenario", "Target", "run", "run_cell", "targets"]
