"""The provider conformance suite: identical scenarios for every provider, replayed from cassettes.

`llmclient conformance` (or `nox -s conformance`, or `pytest conformance/`) runs the matrix.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from llmclient.conformance.runner import Cell, run_cell
from llmclient.conformance.scenarios import BY_NAME, SCENARIOS, Scenario
from llmclient.conformance.targets import Target, targets


def run(providers: Sequence[str] = (), scenarios: Sequence[str] = (), **options: Any) -> tuple[list[Cell], float, dict[str, Any]]:
    """Run the chosen cells (all when none are named); returns the cells, wall seconds and timing."""
    started = time.perf_counter()
    known = targets()
    unknown = sorted(set(providers) - {t.provider for t in known}) + sorted(set(scenarios) - set(BY_NAME))
    if unknown:
        raise ValueError(f"unknown provider or scenario: {', '.join(unknown)}; "
                         f"providers: {', '.join(t.provider for t in known)}; scenarios: {', '.join(BY_NAME)}")
    chosen_targets = [t for t in known if not providers or t.provider in providers]
    chosen: list[Scenario] = [s for s in SCENARIOS if not scenarios or s.name in scenarios]
    cells: list[Cell] = []
    timing: dict[str, Any] = {}
    for target in chosen_targets:
        if target.spec.wire == "litellm":  # its column imports litellm; no other may have
            timing["litellm_imported_by_builtin_providers"] = "litellm" in sys.modules
            timing["builtin_providers_seconds"] = round(time.perf_counter() - started, 2)
        cells += [run_cell(target, scenario, **options) for scenario in chosen]
    timing.setdefault("litellm_imported_by_builtin_providers", "litellm" in sys.modules)
    return cells, time.perf_counter() - started, timing


__all__ = ["BY_NAME", "SCENARIOS", "Cell", "Scenario", "Target", "run", "run_cell", "targets"]
