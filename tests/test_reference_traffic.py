"""Replays every real recorded interaction in `../shared/reference-traffic/` through the public API
and holds the pass rate of each field to the floors in `reference_traffic_ratchet.json`.

The table per provider x scenario is printed and written to `reports/reference-traffic.json`."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from tests import reference_traffic

RATCHET = Path(__file__).with_name("reference_traffic_ratchet.json")
REPORT = reference_traffic.REPO / "reports" / "reference-traffic.json"
# Providers whose non-error cases must all pass unless the recording itself is defective.
FLAGSHIP = ("openai", "anthropic", "gemini")

pytestmark = pytest.mark.skipif(
    not reference_traffic.CORPUS.is_dir(),
    reason=f"reference traffic not found at {reference_traffic.CORPUS} "
    "(check out ../shared beside the repository, or set LLMCLIENT_REFERENCE_TRAFFIC)",
)


@pytest.fixture(scope="module")
def replayed() -> tuple[list[reference_traffic.Outcome], dict[str, Any]]:
    outcomes, seconds = reference_traffic.run()
    summary = reference_traffic.report(outcomes, seconds)
    REPORT.parent.mkdir(exist_ok=True)
    REPORT.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
    return outcomes, summary


@pytest.fixture(scope="module")
def ratchet() -> dict[str, Any]:
    data: dict[str, Any] = json.loads(RATCHET.read_text())
    return data


def test_every_case_replays(replayed: tuple[list[Any], dict[str, Any]], ratchet: dict[str, Any],
                            capsys: pytest.CaptureFixture[str]) -> None:
    _, summary = replayed
    with capsys.disabled():
        print("\n" + reference_traffic.render(summary))
    assert summary["cases"] == ratchet["cases"], "the corpus changed size: review the ratchet file"


@pytest.mark.parametrize("field", reference_traffic.FIELDS)
def test_field_rate_holds_its_floor(field: str, replayed: tuple[list[Any], dict[str, Any]],
                                    ratchet: dict[str, Any]) -> None:
    _, summary = replayed
    rate, floor = summary["rates"][field], ratchet["floors"][field]
    failing = {key: detail[field] for key, detail in summary["failures"].items() if field in detail}
    assert rate >= floor, f"{field}: {rate:.2%} < floor {floor:.2%}; failing: {json.dumps(failing, indent=1)[:3000]}"


def test_known_failures_are_exactly_the_failing_cases(replayed: tuple[list[Any], dict[str, Any]],
                                                      ratchet: dict[str, Any]) -> None:
    _, summary = replayed
    failing, listed = set(summary["failures"]), set(ratchet["known_failures"])
    new = {key: summary["failures"][key] for key in sorted(failing - listed)}
    assert not new, f"cases failing but not listed in {RATCHET.name}: {json.dumps(new, indent=1)[:3000]}"
    fixed = sorted(listed - failing)
    assert not fixed, f"cases listed in {RATCHET.name} that now pass (remove them, raise floors): {fixed}"


def test_flagship_providers_pass_every_non_error_case(replayed: tuple[list[Any], dict[str, Any]],
                                                     ratchet: dict[str, Any]) -> None:
    outcomes, _ = replayed
    unexplained = [
        o.case.key for o in outcomes
        if o.case.provider in FLAGSHIP and reference_traffic.expected_error_class(o.case) is None
        and not all(o.fields.values()) and o.case.key not in ratchet["known_failures"]
    ]
    assert not unexplained
    cases = sum(o.case.provider in FLAGSHIP for o in outcomes)
    assert cases > 300, f"only {cases} flagship cases found: is the corpus complete?"


@pytest.fixture(scope="module")
def costs(replayed: tuple[list[reference_traffic.Outcome], dict[str, Any]]) -> dict[str, Any]:
    report = reference_traffic.cost_report(replayed[0])
    REPORT.with_name("reference-traffic-cost.json").write_text(json.dumps(report, indent=2) + "\n")
    return report


def test_priced_share_holds_its_floor(costs: dict[str, Any], ratchet: dict[str, Any],
                                      capsys: pytest.CaptureFixture[str]) -> None:
    totals = costs["totals"]
    with capsys.disabled():
        print(f"\ncost: {totals['priced']}/{totals['with_usage']} interactions with usage priced "
              f"({costs['priced_rate']:.1%}); formula exact on {totals['formula_exact']}/{totals['formula_checked']}")
        for provider, row in costs["per_provider"].items():
            print(f"  {provider:<22} priced {row['priced']:>3}/{row['with_usage']:<3} formula {row['formula_exact']}/{row['formula_checked']}")
    assert costs["priced_rate"] >= ratchet["cost"]["priced_floor"]


def test_every_unpriced_model_is_explained(costs: dict[str, Any], ratchet: dict[str, Any]) -> None:
    explained = ratchet["cost"]["unpriced"]
    unexplained = [case for case in costs["unpriced"]
                   if f"{case.split('/')[0]}/*{case.rsplit(' (', 1)[1].rstrip(')')}" not in explained]
    assert not unexplained


def test_every_call_with_a_created_timestamp_is_priced_on_that_date(
        replayed: tuple[list[reference_traffic.Outcome], dict[str, Any]], capsys: pytest.CaptureFixture[str]) -> None:
    """The answer's own `created` timestamp (read here from the recorded body) dates the call: the
    per-token prices used are those of the shipped table's row in force that day (read here from
    prices.json), not today's. Calls whose model has several dated rows are where this matters."""
    from datetime import datetime, timezone
    from decimal import Decimal

    table = json.loads((reference_traffic.REPO / "llmclient" / "data" / "prices.json").read_text())["models"]
    checked = dated = 0
    wrong = []
    for outcome in replayed[0]:
        response = outcome.response
        prices = response.cost.prices if response is not None and response.cost is not None else None
        if prices is None or prices.model not in table or prices.above_input_tokens or prices.service_tier or prices.time_of_day:
            continue
        created = next((p["created"] for p in reference_traffic._payloads(outcome.case)
                        if isinstance(p, dict) and isinstance(p.get("created"), int) and p["created"] > 0), None)
        if created is None:
            continue
        day = datetime.fromtimestamp(created, timezone.utc).date().isoformat()
        rows = table[prices.model]
        current = [r for r in rows if (r["from"] or "") <= day and (r["to"] is None or day <= r["to"])]
        started = [r for r in rows if (r["from"] or "") <= day]
        row = (current or started or rows)[-1 if current or started else 0]
        checked += 1
        dated += len(rows) > 1
        if (prices.input, prices.output) != (Decimal(row["input"]), Decimal(row["output"])):
            wrong.append(f"{outcome.case.key}: created {day}, priced at {prices.input}/{prices.output}, "
                         f"the row of that day has {row['input']}/{row['output']}")
    with capsys.disabled():
        print(f"\ncreated timestamps: {checked} priced calls dated by their answer, {dated} of them on models with dated rows")
    assert not wrong
    assert checked > 200


def test_every_priced_cost_matches_the_formula(costs: dict[str, Any]) -> None:
    assert costs["formula_mismatches"] == []
    assert costs["totals"]["formula_checked"] > 500


def test_openrouter_reported_cost_matches_ours_within_one_percent(costs: dict[str, Any], ratchet: dict[str, Any]) -> None:
    gaps = {c["case"]: c for c in costs["provider_reported"] if c["gap"] is not None and c["gap"] > 0.01}
    assert sorted(gaps) == sorted(ratchet["cost"]["provider_gaps"])
    compared = [c for c in costs["provider_reported"] if c["gap"] is not None]
    assert len(compared) >= 20


def test_structured_and_file_cases_parse(replayed: tuple[list[reference_traffic.Outcome], dict[str, Any]],
                                         capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 5's reference cases: every structured-output, image and PDF case replays on every
    field, and every structured answer given as text is extracted by llmclient's structured-output
    code into the object the recorded body holds (the expected.json text, parsed here)."""
    from llmclient.schema import Target, answer_text

    outcomes, _ = replayed
    anything = Target[Any]({"type": "object"})
    lines, extracted = [], 0
    for scenario in ("structured_output", "image_input", "pdf_input"):
        chosen = [o for o in outcomes if o.case.expected["scenario"] == scenario]
        passing = [o for o in chosen if all(o.fields.values())]
        lines.append(f"  {scenario:<18} {len(passing)}/{len(chosen)} cases replay on every field")
        assert len(passing) == len(chosen) > 20
    for outcome in outcomes:
        text = outcome.case.expected.get("text") or ""
        if outcome.case.expected["scenario"] != "structured_output" or not text.strip() or outcome.response is None:
            continue
        for strategy in ("native", "prompted"):  # the text as a JSON mode returns it, and with extraction
            assert anything.parse(answer_text(outcome.response, anything, strategy)) == json.loads(text), outcome.case.key
        extracted += 1
    with capsys.disabled():
        print("\nissue 5 reference cases:\n" + "\n".join(lines) +
              f"\n  structured answers in text extracted to the recorded object: {extracted}")
    assert extracted >= 20
