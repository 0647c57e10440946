"""The conformance matrix as plain pytest: one test per (provider, scenario) cell, named after both.

    pytest conformance/ -k "anthropic and stream"
"""

from __future__ import annotations

import pytest

from llmclient.conformance.runner import run_cell
from llmclient.conformance.scenarios import SCENARIOS, Scenario
from llmclient.conformance.targets import Target, targets

CELLS = [(target, scenario) for target in targets() for scenario in SCENARIOS]


@pytest.mark.parametrize(("target", "scenario"), CELLS, ids=[f"{t.provider}-{s.name}" for t, s in CELLS])
def test_cell(target: Target, scenario: Scenario) -> None:
    cell = run_cell(target, scenario)
    if cell.outcome == "unsupported":
        pytest.skip(f"unsupported: {cell.detail}")
    if cell.outcome == "known":
        pytest.xfail(f"known failure: {cell.detail}")
    assert cell.outcome == "pass", f"{cell.provider}/{cell.scenario}: {cell.detail}"
