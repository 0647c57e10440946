"""The provider conformance suite: identical scenarios for every provider, both halves of every
exchange checked, replayed from cassettes.

    llmclient conformance [--config llmclient.toml] [--cassettes DIR] [--fixtures DIR]

runs the matrix the configuration's `[conformance]` table names (`targets.py`); `pytest
conformance/` in a checkout runs the same cells as tests. `record.py` records cassettes and
generates the fault ones, `draft.py` drafts expected values, `report.py` / `html_report.py`
write the matrix.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from typing import Any

from llmclient.conformance.runner import Cell, run_cell
from llmclient.conformance.scenarios import BY_NAME, SCENARIOS, Scenario
from llmclient.conformance.targets import Suite, Target, load_suite
from llmclient.errors import ConfigurationError


def chosen(suite: Suite, providers: Sequence[str] = (), scenarios: Sequence[str] = ()) -> tuple[list[Target], list[Scenario]]:
    """The targets and scenarios named (all when none are), or a ConfigurationError naming the unknown."""
    known = [t.provider for t in suite.targets]
    problems = [f"unknown provider {p!r} (the matrix of {suite.config or 'the configuration'} has: {', '.join(known)})"
                for p in providers if p not in known]
    problems += [f"unknown scenario {s!r} (scenarios: {', '.join(BY_NAME)})" for s in scenarios if s not in BY_NAME]
    if problems:
        raise ConfigurationError("; ".join(problems))
    return ([t for t in suite.targets if not providers or t.provider in providers],
            [s for s in SCENARIOS if not scenarios or s.name in scenarios])


def run(suite: Suite, providers: Sequence[str] = (), scenarios: Sequence[str] = ()) -> tuple[list[Cell], float, dict[str, Any]]:
    """Replay the chosen cells; returns the cells, wall seconds and timing."""
    started = time.perf_counter()
    targets, picked = chosen(suite, providers, scenarios)
    if not suite.cassettes.is_dir():
        raise ConfigurationError(f"no cassettes folder at {suite.cassettes}: pass --cassettes DIR, or record them "
                                 f"with --record --provider P")
    cells: list[Cell] = []
    timing: dict[str, Any] = {}
    for target in targets:
        if target.spec.wire == "litellm":  # its column imports litellm; no other may have
            timing["litellm_imported_by_builtin_providers"] = "litellm" in sys.modules
            timing["builtin_providers_seconds"] = round(time.perf_counter() - started, 2)
        cells += [run_cell(target, scenario, cassettes=suite.cassettes, fixtures=suite.fixtures) for scenario in picked]
    timing.setdefault("litellm_imported_by_builtin_providers", "litellm" in sys.modules)
    return cells, time.perf_counter() - started, timing


__all__ = ["BY_NAME", "SCENARIOS", "Cell", "Scenario", "Suite", "Target", "chosen", "load_suite", "run", "run_cell"]
