"""The conformance matrix as plain pytest: one test per (provider, scenario) cell, named after both,
from this checkout's matrix (llmclient.toml) — the same cells `llmclient conformance` runs.

    pytest conformance/ -k "anthropic and stream"
"""

from __future__ import annotations

from pathlib import Path

import pytest

from llmclient.conformance import SCENARIOS, Scenario, Target, load_suite, run_cell

SUITE = load_suite(Path(__file__).resolve().parent.parent / "llmclient.toml")
CELLS = [(target, scenario) for target in SUITE.targets for scenario in SCENARIOS]


@pytest.mark.parametrize(("target", "scenario"), CELLS, ids=[f"{t.provider}-{s.name}" for t, s in CELLS])
def test_cell(target: Target, scenario: Scenario) -> None:
    cell = run_cell(target, scenario, cassettes=SUITE.cassettes, fixtures=SUITE.fixtures)
    if cell.outcome == "unsupported":
        pytest.skip(f"unsupported: {cell.detail}")
    if cell.outcome == "known":
        pytest.xfail(f"known failure: {cell.detail}")
    assert cell.outcome == "pass", f"{cell.provider}/{cell.scenario}: " + "\n".join(cell.problems or [cell.detail])
