"""The provider conformance suite: identical scenarios for every provider, both halves of every
exchange checked, replayed from cassettes.

    llmclient conformance [--config llmclient.toml] [--cassettes DIR] [--fixtures DIR]

runs the matrix the configuration's `[conformance]` table names (`targets.py`); `pytest
conformance/` in a checkout runs the same cells as tests. `record.py` records cassettes and
generates the fault ones, `draft.py` drafts expected values, `report.py` / `html_report.py`
write the matrix.
"""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from contextlib import nullcontext
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


def run(suite: Suite, providers: Sequence[str] = (), scenarios: Sequence[str] = (), *,
        parallel: bool = True) -> tuple[list[Cell], float, dict[str, Any]]:
    """Replay the chosen cells; returns the cells (in matrix order), wall seconds and timing.

    The litellm column runs in a second process alongside the others when there are others
    (`parallel`): importing litellm alone takes about as long as all the built-in columns, and the
    built-in columns must show they never import it."""
    started = time.perf_counter()
    targets, picked = chosen(suite, providers, scenarios)
    if not suite.cassettes.is_dir():
        raise ConfigurationError(f"no cassettes folder at {suite.cassettes}: pass --cassettes DIR, or record them "
                                 f"with --record --provider P")
    names = [scenario.name for scenario in picked]
    apart = [t for t in targets if t.spec.wire == "litellm"] if parallel and len(targets) > 1 else []
    with ProcessPoolExecutor(1, mp_context=_context()) if apart else nullcontext() as pool:
        pending = {t.provider: pool.submit(column, suite, t, names) for t in apart} if pool is not None else {}
        columns = {t.provider: column(suite, t, names) for t in targets if t.provider not in pending}
        # None when no other column ran: there was nothing to show.
        ran_others = any(t.spec.wire != "litellm" for t in targets)
        timing: dict[str, Any] = {"litellm_imported_by_builtin_providers": ("litellm" in sys.modules) if ran_others else None,
                                  "builtin_providers_seconds": round(time.perf_counter() - started, 2)}
        columns.update({provider: future.result() for provider, future in pending.items()})
    return [cell for t in targets for cell in columns[t.provider]], time.perf_counter() - started, timing


def _context() -> multiprocessing.context.BaseContext:
    """Fork (no re-import of llmclient: 0.3 s saved) on Linux in a process with one thread; else
    spawn: fork is unsafe on macOS, and with other threads running a lock they hold stays held."""
    fork = sys.platform == "linux" and threading.active_count() == 1
    return multiprocessing.get_context("fork" if fork else "spawn")


def column(suite: Suite, target: Target, scenarios: Sequence[str]) -> list[Cell]:
    """One provider's cells (by scenario name: a scenario's calls do not cross processes)."""
    return [run_cell(target, BY_NAME[name], cassettes=suite.cassettes, fixtures=suite.fixtures) for name in scenarios]


__all__ = ["BY_NAME", "SCENARIOS", "Cell", "Scenario", "Suite", "Target", "chosen", "load_suite", "run", "run_cell"]
