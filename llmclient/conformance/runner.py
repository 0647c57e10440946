"""Runs one (provider, scenario) cell from its cassette and checks both halves of the exchange.

The request half: every request the client sent inside the cassette block is captured (before
vcrpy matches it) and projected to its wire-independent meaning (`expect.projection`); it must
carry what the scenario sends (`Scenario.sends`) and name the model the cell runs. The response
half: what the calls returned (or raised) must equal the hand-written fixture, and every response
must satisfy the usage invariants of the contract.

An outcome is `pass`, `fail` (with every problem), `unsupported` (the provider does not declare
the capability the scenario needs: never counted as a pass) or `known`: a failure its fixture
explains under `known_failure` (a defect of a route whose parsing llmclient does not own, e.g.
litellm's). A known failure that passes is a `fail`, so the note cannot go stale; a fixture still
marked `draft` is a `fail` until a person has reviewed it.
"""

from __future__ import annotations

import importlib.util
import json
import time
from dataclasses import asdict, dataclass, field
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from llmclient import Client, ConfigurationError, LLMError, Response
from llmclient.cassettes import use_cassette
from llmclient.conformance.expect import projection, request_problems
from llmclient.conformance.scenarios import INPUTS, Observed, Scenario
from llmclient.conformance.targets import Target, registered
from llmclient.projection import decimal_text, response_projection

Outcome = Literal["pass", "fail", "unsupported", "known"]
MARK: dict[str, str] = {"pass": "pass", "fail": "FAIL", "unsupported": "unsupported", "known": "known FAIL"}  # as reports show them
# Zero-request scenarios replay this: any request at all finds no match and fails the cell.
EMPTY_CASSETTE = INPUTS / "no-requests.yaml"


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
        """The cell for a report: strings over 2,000 characters (a 3 MB prompt) cut, saying so."""
        shown: dict[str, Any] = clipped(asdict(self))
        return shown


def clipped(value: Any, limit: int = 2000) -> Any:
    """`value` with every string longer than `limit` cut, saying how many characters were cut."""
    if isinstance(value, str) and len(value) > limit:
        return value[:limit] + f"… [{len(value) - limit:,} more chars cut]"
    if isinstance(value, dict):
        return {key: clipped(item, limit) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [clipped(item, limit) for item in value]
    return value


def run_cell(target: Target, scenario: Scenario, *, cassettes: Path, fixtures: Path) -> Cell:
    """Replay the cell's cassette and check it against its fixture."""
    started = time.perf_counter()
    with registered([target]):
        cell = _run(target, scenario, cassettes, fixtures)
    cell.seconds = round(time.perf_counter() - started, 4)
    return cell


def unsupported(target: Target, scenario: Scenario) -> str | None:
    """Why the target cannot run the scenario, or None."""
    missing = sorted(scenario.requires - target.spec.capabilities)
    if missing:
        return f"capability not declared: {', '.join(missing)}"
    if target.spec.wire == "litellm" and importlib.util.find_spec("litellm") is None:
        return "litellm is not installed: pip install 'llmclient[litellm]' for its column"
    return None


def call(target: Target, scenario: Scenario) -> Observed:
    """The scenario's calls, through the public API, with the model the cell runs."""
    with Client(cell_model(target, scenario), api_key=scenario.api_key, retry=scenario.retry) as client:
        return scenario.call(client)


def cell_model(target: Target, scenario: Scenario) -> str:
    return f"{target.provider}/{target.model_for(scenario.requires, scenario.model)}"


def _run(target: Target, scenario: Scenario, cassettes: Path, fixtures: Path) -> Cell:
    cell = Cell(target.provider, scenario.name, "fail")
    reason = unsupported(target, scenario)
    if reason:
        cell.outcome, cell.detail = "unsupported", reason
        return cell
    cassette = cassettes / target.provider / f"{scenario.name}.yaml"
    if scenario.interactions == 0:  # must fail before any request: replay an empty cassette
        cassette = EMPTY_CASSETTE
    if not cassette.is_file():
        return _failed(cell, [f"no cassette at {cassette}: record it (llmclient conformance --record --provider "
                              f"{target.provider}) or author it (conformance/AUTHORING.md in llmclient's repository)"])
    observed, unplayed = Observed(), []
    try:
        with use_cassette(cassette, mode="replay") as session:
            try:
                observed = call(target, scenario)
            except LLMError as error:  # a mismatch, or a scenario that should not have raised
                observed = Observed(error=error, raised=True)
            unplayed = session.unplayed
    except ConfigurationError as error:  # an unreadable cassette
        return _failed(cell, [str(error)])
    cell.requests = [projection(sent, target.spec.wire) for sent in session.sent]
    cell.responses = _responses(observed)
    problems = request_problems(scenario.sends, [r for r in cell.requests if r["endpoint"].startswith("POST ")])
    model = target.model_for(scenario.requires, scenario.model)
    problems += [f"request {i + 1}: model: expected {model!r}, sent {r.get('model')!r}"
                 for i, r in enumerate(r for r in cell.requests if r["endpoint"].startswith("POST "))
                 if r.get("model") is not None and r["model"] not in (model, model.rpartition("/")[2])]
    fixture = fixtures / target.provider / f"{scenario.name}.json"
    expected = _fixture(fixture, problems)
    if expected is None:
        return _failed(cell, problems)
    cell.expected = expected
    if observed.raised and scenario.kind != "error":
        problems.append(f"raised {type(observed.error).__name__}: {observed.error}")
    else:
        problems += check(scenario, observed, expected)
    if unplayed:
        problems.append(f"{len(unplayed)} recorded interaction(s) never requested: {'; '.join(unplayed)}")
    if expected.get("draft"):
        problems.insert(0, f"{fixture} is a draft: check every value against the cassette and the cited "
                           f"price, then delete its \"draft\" and \"draft_note\" keys")
    known = expected.get("known_failure")
    cell.problems = problems
    if known and problems and not expected.get("draft"):
        cell.outcome, cell.detail = "known", f"{known} (observed: {'; '.join(problems)})"
    elif known and not problems:
        cell.detail = f"passes, but {fixture} lists it as a known failure: remove known_failure"
        cell.problems = [cell.detail]
    elif problems:
        cell.detail = "; ".join(problems)
    else:
        cell.outcome = "pass"
    return cell


def _failed(cell: Cell, problems: list[str]) -> Cell:
    cell.problems, cell.detail = problems, "; ".join(problems)
    return cell


def _fixture(path: Path, problems: list[str]) -> dict[str, Any] | None:
    if not path.is_file():
        problems.append(f"no expected values at {path}: write them by hand from the cassette, or draft them "
                        f"with llmclient conformance --draft-expected")
        return None
    try:
        expected = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        problems.append(f"{path} is not valid JSON ({exc}): fix it")
        return None
    if not isinstance(expected, dict):
        problems.append(f"{path} must hold a JSON object of expected values")
        return None
    return expected


def _responses(observed: Observed) -> list[dict[str, Any]]:
    shown = [compared(response) for response in observed.responses]
    if observed.error is not None:
        error = observed.error
        shown.append({"error": type(error).__name__, "status_code": error.status_code,
                      "retry_after": error.retry_after, "message": error.message})
    return shown


def compared(response: Response) -> dict[str, Any]:
    """What a cell compares of a response with its fixture (and the report shows): the response's
    projection, with the cost's fields flat as the fixtures spell them."""
    shown = response_projection(response)
    cost = response.cost
    return {
        **{key: shown[key] for key in ("text", "finish_reason", "raw_finish_reason", "tool_calls", "usage")},
        "cost": None if cost is None else shown["cost"]["total"],
        "cost_source": None if cost is None else cost.source,
        "computed_cost": None if cost is None or cost.computed_total is None else decimal_text(cost.computed_total),
        "price_tier": None if cost is None or cost.prices is None else cost.prices.above_input_tokens,
    }


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
    got = compared(response)
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
