"""Runs one (provider, scenario) cell from its cassette and checks it against its fixture.

An outcome is `pass`, `fail` (with the reason), `unsupported` (the provider does not declare
the capability the scenario needs: never counted as a pass) or `known`: a failure its fixture
explains under `known_failure` (a defect of a route whose parsing llmclient does not own, e.g.
litellm's). A known failure that passes is a `fail`, so the note cannot go stale. Checks compare equality with the
hand-written fixture; on top, every response must satisfy the usage invariants of the contract.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from llmclient.conformance.scenarios import SCENARIOS, Observed, Scenario, tool_call_projection
from llmclient.conformance.targets import ROOT, Target, registered
from llmclient import Client, LLMError, Response
from llmclient.cassettes import Mode, use_cassette

Outcome = Literal["pass", "fail", "unsupported", "known"]
CASSETTES = ROOT / "cassettes"
# Zero-request scenarios replay this: any request at all finds no match and fails the cell.
EMPTY_CASSETTE = CASSETTES / "no-requests.yaml"
FIXTURES = ROOT / "fixtures" / "conformance"


@dataclass
class Cell:
    """One (provider, scenario) result, with what the report shows of it."""

    provider: str
    scenario: str
    outcome: Outcome
    detail: str = ""  # "; ".join(problems), or why the cell is unsupported / a known failure
    seconds: float = 0.0
    # Each request the suite captured, in order, as its projection: the wire-independent call
    # (system, messages with parts, tools, tool_choice, response_format, max_tokens, stream, ...)
    # plus "model" and "endpoint" (METHOD URL).
    requests: list[dict[str, Any]] = field(default_factory=list)
    # Each response's projection (text, finish_reason, raw_finish_reason, tool_calls, usage, cost,
    # cost_source), or for an error {"error", "status_code", "retry_after", "message"}.
    responses: list[dict[str, Any]] = field(default_factory=list)
    expected: dict[str, Any] | None = None  # the fixture as read (None: none, or not reached)
    problems: list[str] = field(default_factory=list)  # every difference, request half first

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cassette_path(provider: str, scenario: str, root: Path = CASSETTES) -> Path:
    return root / provider / f"{scenario}.yaml"


def fixture_path(provider: str, scenario: str, root: Path = FIXTURES) -> Path:
    return root / provider / f"{scenario}.json"


def run_cell(target: Target, scenario: Scenario, *, mode: Mode = "replay",
             cassettes: Path = CASSETTES, fixtures: Path = FIXTURES) -> Cell:
    started = time.perf_counter()
    with registered([target]):
        cell = _run(target, scenario, mode, cassettes, fixtures)
    cell.seconds = round(time.perf_counter() - started, 4)
    return cell


def _run(target: Target, scenario: Scenario, mode: Mode, cassettes: Path, fixtures: Path) -> Cell:
    def result(outcome: Outcome, detail: str = "") -> Cell:
        return Cell(target.provider, scenario.name, outcome, detail)

    missing = sorted(scenario.requires - target.spec.capabilities)
    if missing:
        return result("unsupported", f"capability not declared: {', '.join(missing)}")
    if target.spec.wire == "litellm" and importlib.util.find_spec("litellm") is None:
        return result("unsupported", "litellm is not installed: pip install 'llmclient[litellm]' for its column")
    cassette = cassette_path(target.provider, scenario.name, cassettes)
    fixture = fixture_path(target.provider, scenario.name, fixtures)
    if scenario.interactions == 0:  # must fail before any request: replay an empty cassette
        cassette, mode = EMPTY_CASSETTE, "replay"
    if mode != "replay" and not scenario.recordable:
        mode = "replay"  # a server fault cannot be provoked on demand: keep the authored cassette
    if mode == "replay" and not cassette.is_file():
        return result("fail", f"no cassette at {_shown(cassette)}")
    try:
        with use_cassette(cassette, mode=mode) as session:
            model = f"{target.provider}/{target.model_for(scenario.requires, scenario.model)}"
            with Client(model, api_key=scenario.api_key, retry=scenario.retry) as client:
                observed = scenario.call(client)
            unplayed = session.unplayed if mode == "replay" else []
    except LLMError as error:  # a mismatch or a scenario that should not have raised
        return result("fail", f"{type(error).__name__}: {error}")
    if not fixture.is_file():
        return result("fail", f"no expected values at {_shown(fixture)}: write them by hand from the cassette")
    expected = json.loads(fixture.read_text())
    problems = check(scenario, observed, expected)
    if unplayed:
        problems.append(f"{len(unplayed)} recorded interaction(s) never requested: {'; '.join(unplayed)}")
    known = expected.get("known_failure")
    if known and problems:
        return result("known", f"{known} (observed: {'; '.join(problems)})")
    if known:
        return result("fail", f"passes, but {_shown(fixture)} lists it as a known failure: remove known_failure")
    return result("fail", "; ".join(problems)) if problems else result("pass")


def _shown(path: Path) -> str:
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def check(scenario: Scenario, observed: Observed, expected: dict[str, Any]) -> list[str]:
    """Every difference between what was observed and the fixture, as readable lines."""
    if scenario.kind == "error":
        return _check_error(observed, expected)
    if observed.error is not None:
        return [f"raised {type(observed.error).__name__}: {observed.error}"]
    wanted = expected.get("responses", [expected])
    if len(observed.responses) != len(wanted):
        return [f"expected {len(wanted)} response(s), got {len(observed.responses)}"]
    problems: list[str] = []
    for index, (response, want) in enumerate(zip(observed.responses, wanted)):
        where = f"response {index + 1}: " if len(wanted) > 1 else ""
        problems += [where + problem for problem in _check_response(response, want)]
    if scenario.kind == "stream":
        problems += _check_stream(observed, expected)
    if "value" in expected and observed.value != expected["value"]:
        problems.append(f"value: expected {expected['value']!r}, got {observed.value!r}")
    if "retries" in expected:
        problems += _check_retries(observed, expected)
    return problems


def _check_retries(observed: Observed, expected: dict[str, Any]) -> list[str]:
    """The failed attempts the response records, and the waits the retry layer actually took."""
    assert observed.response is not None
    got = [{"error": r.error, "status_code": r.status_code, "waited": r.waited} for r in observed.response.retries]
    problems = [] if got == expected["retries"] else [f"retries: expected {expected['retries']!r}, got {got!r}"]
    slept = [r["waited"] for r in expected["retries"]]
    if observed.slept != slept:
        problems.append(f"slept {observed.slept!r}, expected the recorded waits {slept!r}")
    return problems


def _check_response(response: Response, want: dict[str, Any]) -> list[str]:
    usage = response.usage.model_dump(exclude={"iterations", "total_tokens"}) if response.usage else None
    got = {
        "text": response.text,
        "finish_reason": response.finish_reason,
        "raw_finish_reason": response.raw_finish_reason,
        "tool_calls": tool_call_projection(response.tool_calls),
        "usage": usage,
        "cost": None if response.cost is None else str(response.cost.total.normalize()),
        "cost_source": None if response.cost is None else response.cost.source,
        "computed_cost": None if response.cost is None or response.cost.computed_total is None
        else str(response.cost.computed_total.normalize()),
        "price_tier": None if response.cost is None or response.cost.prices is None else response.cost.prices.above_input_tokens,
    }
    problems = [f"{key}: expected {want[key]!r}, got {got[key]!r}" for key in got
                if key in want and _normal(key, want[key]) != _normal(key, got[key])]
    missing = [key for key in ("text", "finish_reason", "usage", "cost") if key not in want]
    if missing:
        problems.append(f"the fixture does not say the expected {', '.join(missing)}")
    return problems + _invariants(response)


def _normal(key: str, value: Any) -> Any:
    if key in ("cost", "computed_cost") and value is not None:
        return Decimal(value).normalize()
    return value


def _invariants(response: Response) -> list[str]:
    usage = response.usage
    if usage is None:
        return ["no usage reported"]
    problems = []
    if usage.cache_read_tokens + usage.cache_write_tokens > usage.input_tokens:
        problems.append(f"cache read + write {usage.cache_read_tokens}+{usage.cache_write_tokens} > input {usage.input_tokens}")
    if usage.reasoning_tokens > usage.output_tokens:
        problems.append(f"reasoning {usage.reasoning_tokens} > output {usage.output_tokens}")
    if response.cost is not None and response.cost.total < 0:
        problems.append(f"negative cost {response.cost.total}")
    return problems


def _check_stream(observed: Observed, expected: dict[str, Any]) -> list[str]:
    problems = []
    response = observed.response
    assert response is not None
    if "".join(observed.deltas) != response.text:
        problems.append(f"deltas {observed.deltas!r} do not concatenate to the text {response.text!r}")
    if "deltas" in expected and observed.deltas != expected["deltas"]:
        problems.append(f"deltas: expected {expected['deltas']!r}, got {observed.deltas!r}")
    least = expected.get("min_tool_fragments", 0)
    if observed.tool_fragments < least:
        problems.append(f"expected >= {least} streamed tool-call fragments, got {observed.tool_fragments}")
    return problems


def _check_error(observed: Observed, expected: dict[str, Any]) -> list[str]:
    error = observed.error
    if error is None:
        return [f"expected {expected.get('error')}, but the call succeeded"]
    got = {"error": type(error).__name__, "status_code": error.status_code, "retry_after": error.retry_after}
    problems = [f"{key}: expected {expected[key]!r}, got {got[key]!r}" for key in got
                if key in expected and expected[key] != got[key]]
    if "message_contains" in expected and expected["message_contains"] not in error.message:
        problems.append(f"message {error.message!r} lacks {expected['message_contains']!r}")
    if "error" not in expected:
        problems.append("the fixture does not say the expected error class")
    return problems


def run_matrix(chosen_targets: list[Target], scenarios: tuple[Scenario, ...] | list[Scenario] = SCENARIOS,
               **options: Any) -> list[Cell]:
    return [run_cell(target, scenario, **options) for target in chosen_targets for scenario in scenarios]
