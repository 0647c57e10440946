"""The provider conformance suite: identical scenarios for every provider, replayed from cassettes.

`llmclient conformance` (or `nox -s conformance`, or `pytest conformance/`) runs the matrix.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from conformance.runner import Cell, run_cell
from conformance.scenarios import BY_NAME, SCENARIOS, Scenario
from conformance.targets import Target, targets


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
    cells = [run_cell(t, s, **options) for t in chosen_targets for s in chosen]
    seconds = time.perf_counter() - started
    return cells, seconds, {"litellm_imported": "litellm" in sys.modules}


__all__ = ["BY_NAME", "SCENARIOS", "Cell", "Scenario", "Target", "run", "run_cell", "targets"]
