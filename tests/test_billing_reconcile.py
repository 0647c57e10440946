"""`llmclient costs reconcile` and `llmclient.billing.reconcile`: a telemetry store written here by
hand beside the authored admin-API cassettes (cassettes/billing/reconcile_*.yaml). The expected
tables are computed by hand below, the arithmetic in the comments; nothing expected comes from the
code under test. Days are UTC; the range is always given (--days 3 --end 2026-03-04)."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmclient.billing import LocalRecord, compare, from_responses, reconcile
from llmclient.billing.types import CostBucket, UsageBucket
from llmclient.cassettes import use_cassette
from llmclient.cli import main
from llmclient.errors import ConfigurationError
from llmclient.types import Cost, Response, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "billing"
D = Decimal
FIRST, LAST = date(2026, 3, 2), date(2026, 3, 4)
RANGE = ["--days", "3", "--end", "2026-03-04"]


@pytest.fixture(autouse=True)
def admin_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("OPENAI_ADMIN_KEY", "sk-admin-test-placeholder-0000")
    monkeypatch.setenv("ANTHROPIC_ADMIN_KEY", "sk-ant-admin-test-placeholder-0000")


# --- our side: a telemetry store, by hand ---------------------------------------------------------

def record(when: str, model: str, tokens: tuple[int, int] | None, cost: str | None, *, replay: bool = False,
           source: str = "price-table") -> str:
    """A schema-1 record as the store writes it (llmclient/telemetry/record.py): the cost a JSON number."""
    body: dict[str, Any] = {
        "schema": 1, "timestamp": when, "call_id": "0" * 32, "kind": "complete", "mode": "sync", "agent_name": None,
        "operation": None, "session_id": None, "user_id": None, "provider": model.partition("/")[0], "model": model,
        "requested_model": model, "profile": None, "duration_ms": 100.0, "ttft_ms": None,
        "tokens": None if tokens is None else {"input": tokens[0], "output": tokens[1], "total": sum(tokens),
                                               "cache_read": 0, "cache_write": 0, "reasoning": 0},
        "cost_usd": "COST", "cost_source": None if cost is None else source, "success": tokens is not None,
        "outcome": "ok" if tokens is not None else "error", "finish_reason": "stop" if tokens else None,
        "request_id": None, "attempts": 1, "retries": [], "reasks": 0, "prompt_hash": None, "response_hash": None,
        "replay": replay, "llmclient_version": "0.1.0", "pid": 1,
        "metadata": {"project": "main", "git_branch": "main", "error": None, "tags": None},
    }
    return json.dumps(body).replace('"COST"', "null" if cost is None else cost)


# Costs at list prices per 1M tokens: gpt-4o-mini $0.15 in / $0.60 out; gpt-4o $2.50 / $10; o3-mini $1.10 /
# $4.40; Claude Sonnet 4.5 $3 in / $0.30 cache read / $15 out; Claude Opus 4.1 $15 / $75.
STORE = {
    "2026-03-01": [  # outside the range: never read
        record("2026-03-01T23:59:59.000000Z", "openai/gpt-4o-mini", (99_999, 9_999), "0.021"),
    ],
    "2026-03-02": [
        record("2026-03-02T08:00:00.000000Z", "openai/gpt-4o-mini", (1000, 200), "0.00027"),  # 0.00015 + 0.00012
        record("2026-03-02T09:00:00.000000Z", "openai/gpt-4o-mini", (2000, 300), "0.00048"),  # 0.0003 + 0.00018
        record("2026-03-02T10:00:00.000000Z", "openai/gpt-4o-mini", (1000, 500), "0.00045"),  # 0.00015 + 0.0003
        # Sonnet: 2,000 uncached x $3/M + 1,000 cache read x $0.30/M + 500 out x $15/M = 0.006 + 0.0003 + 0.0075
        record("2026-03-02T11:00:00.000000Z", "anthropic/claude-sonnet-4-5", (3000, 500), "0.0138"),
        record("2026-03-02T12:00:00.000000Z", "anthropic/claude-sonnet-4-5", (2000, 300), "0.0105"),  # 0.006+0.0045
        "{not a record",  # unreadable: skipped and counted
    ],
    "2026-03-03": [
        record("2026-03-03T08:00:00.000000Z", "openai/gpt-4o-mini", (3000, 400), "0.00069"),  # 0.00045 + 0.00024
        record("2026-03-03T09:00:00.000000Z", "openai/gpt-4o-mini", (2000, 600), "0.00066"),  # 0.0003 + 0.00036
        record("2026-03-03T09:30:00.000000Z", "openai/gpt-4o-mini", None, None),  # failed before an answer
        record("2026-03-03T10:00:00.000000Z", "anthropic/claude-sonnet-4-5", (10000, 1000), "0.045"),  # 0.03+0.015
    ],
    "2026-03-04": [
        record("2026-03-04T08:00:00.000000Z", "openai/gpt-4o", (10000, 1000), "0.035"),  # 0.025 + 0.01
        record("2026-03-04T09:00:00.000000Z", "openai/o3-mini", (500, 2000), "0.00935"),  # 0.00055 + 0.0088
        record("2026-03-04T10:00:00.000000Z", "openai/gpt-4o-mini", (100, 10), "0.000021", replay=True),  # no bill
        record("2026-03-04T11:00:00.000000Z", "anthropic/claude-opus-4-1", (500, 100), "0.015"),  # 0.0075 + 0.0075
    ],
}


@pytest.fixture
def store(tmp_path: Path) -> Path:
    root = tmp_path / "telemetry"
    for day, lines in STORE.items():
        (root / day).mkdir(parents=True)
        (root / day / "telemetry.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# --- the hand-computed tables ---------------------------------------------------------------------
# A row: (day, model, match, ours as, theirs as, ours, theirs, input diff %, output diff %, cost diff %, flagged)
# ours = (calls, input, output, $, cost source, unpriced calls); theirs = (input, output, requests, $ billed).
# diff = (ours - theirs) / theirs x 100, rounded to 0.01; flagged when a |diff| > 5, or one side is missing.

OPENAI_TABLE = [
    # 03-02 gpt-4o-mini: ours 1,000+2,000+1,000 = 4,000 in, 200+300+500 = 1,000 out,
    # $0.00027 + 0.00048 + 0.00045 = $0.0012; theirs 4,000 / 1,000, $0.0006 input + $0.0006 output = $0.0012.
    ("2026-03-02", "gpt-4o-mini-2024-07-18", "date suffix", ("gpt-4o-mini",), ("gpt-4o-mini-2024-07-18",),
     (3, 4000, 1000, D("0.0012"), "price-table", 0), (4000, 1000, 3, D("0.0012")), D(0), D(0), D(0), False),
    # 03-03 gpt-4.1-nano: only theirs, 800 / 100, $0.00008 + $0.00004 = $0.00012.
    ("2026-03-03", "gpt-4.1-nano-2025-04-14", "only provider", (), ("gpt-4.1-nano-2025-04-14",),
     None, (800, 100, 1, D("0.00012")), None, None, None, True),
    # 03-03 gpt-4o-mini: ours 3,000+2,000 = 5,000 in (the failed call has no tokens), 400+600 = 1,000 out,
    # $0.00069 + $0.00066 = $0.00135; theirs 5,600 / 1,000, $0.00084 + $0.0006 = $0.00144.
    # input (5,000 - 5,600) / 5,600 = -10.714...% -> -10.71; cost -0.00009 / 0.00144 = -6.25% -> flagged.
    ("2026-03-03", "gpt-4o-mini-2024-07-18", "date suffix", ("gpt-4o-mini",), ("gpt-4o-mini-2024-07-18",),
     (2, 5000, 1000, D("0.00135"), "price-table", 0), (5600, 1000, 3, D("0.00144")), D("-10.71"), D(0), D("-6.25"),
     True),
    # 03-03 "web search tool calls": a charge that names no model, $0.025, only theirs, no usage row.
    ("2026-03-03", "(no model)", "only provider", (), ("(no model)",),
     None, (None, None, None, D("0.025")), None, None, None, True),
    # 03-04 gpt-4o: ours 10,000 / 1,000, $0.035; theirs 10,200 / 1,000, $0.0255 + $0.01 = $0.0355.
    # input -200 / 10,200 = -1.9607...% -> -1.96; cost -0.0005 / 0.0355 = -1.4084...% -> -1.41: within 5%.
    ("2026-03-04", "gpt-4o-2024-08-06", "date suffix", ("gpt-4o",), ("gpt-4o-2024-08-06",),
     (1, 10000, 1000, D("0.035"), "price-table", 0), (10200, 1000, 1, D("0.0355")), D("-1.96"), D(0), D("-1.41"),
     False),
    # 03-04 o3-mini: only ours, 500 / 2,000, $0.00935 (the replayed gpt-4o-mini call is left out).
    ("2026-03-04", "o3-mini", "only local", ("o3-mini",), (),
     (1, 500, 2000, D("0.00935"), "price-table", 0), None, None, None, None, True),
]
# Totals: ours $0.0012 + 0.00135 + 0.035 + 0.00935 = $0.0469; theirs $0.0012 + 0.00012 + 0.00144 + 0.025 + 0.0355
# = $0.06326; (0.0469 - 0.06326) / 0.06326 = -25.8615...% -> -25.86. Tokens in 19,500 / 20,600, out 5,000 / 3,100.
OPENAI_TOTALS = (19500, 20600, 5000, 3100, D("0.0469"), D("0.06326"), D("-25.86"))

ANTHROPIC_TABLE = [
    # 03-02 Sonnet: ours 3,000+2,000 = 5,000 in, 500+300 = 800 out, $0.0138 + $0.0105 = $0.0243; theirs uncached
    # 4,000 + cache read 1,000 = 5,000 in, 800 out, "1.2" + "0.03" + "1.2" = 2.43 cents = $0.0243.
    ("2026-03-02", "claude-sonnet-4-5-20250929", "date suffix", ("claude-sonnet-4-5",), ("claude-sonnet-4-5-20250929",),
     (2, 5000, 800, D("0.0243"), "price-table", 0), (5000, 800, None, D("0.0243")), D(0), D(0), D(0), False),
    # 03-03 Haiku: only theirs, 2,000 / 400, "0.2" + "0.2" cents = $0.004.
    ("2026-03-03", "claude-haiku-4-5-20251001", "only provider", (), ("claude-haiku-4-5-20251001",),
     None, (2000, 400, None, D("0.004")), None, None, None, True),
    # 03-03 Sonnet: ours 10,000 / 1,000, $0.045; theirs 10,000 / 1,200, "3" + "1.8" cents = $0.048.
    # output -200 / 1,200 = -16.666...% -> -16.67; cost -0.003 / 0.048 = -6.25%: flagged.
    ("2026-03-03", "claude-sonnet-4-5-20250929", "date suffix", ("claude-sonnet-4-5",), ("claude-sonnet-4-5-20250929",),
     (1, 10000, 1000, D("0.045"), "price-table", 0), (10000, 1200, None, D("0.048")), D(0), D("-16.67"), D("-6.25"),
     True),
    # 03-04 Opus 4.1: only ours, 500 / 100, $0.015 (the provider's 03-04 buckets are empty).
    ("2026-03-04", "claude-opus-4-1", "only local", ("claude-opus-4-1",), (),
     (1, 500, 100, D("0.015"), "price-table", 0), None, None, None, None, True),
]
# Totals: ours $0.0243 + 0.045 + 0.015 = $0.0843; theirs $0.0243 + 0.004 + 0.048 = $0.0763;
# 0.008 / 0.0763 = +10.4849...% -> 10.48. Tokens in 15,500 / 17,000, out 1,900 / 2,400.
ANTHROPIC_TOTALS = (15500, 17000, 1900, 2400, D("0.0843"), D("0.0763"), D("10.48"))


def table_of(result: Any) -> list[tuple[Any, ...]]:
    """The result's rows in the shape of the tables above (a projection, no arithmetic)."""
    return [(str(r.day), r.model, r.match, r.local_models, r.provider_models,
             None if r.ours is None else (r.ours.calls, r.ours.input_tokens, r.ours.output_tokens, r.ours.cost_usd,
                                          r.ours.cost_source, r.ours.unpriced_calls),
             None if r.theirs is None else (r.theirs.input_tokens, r.theirs.output_tokens, r.theirs.requests,
                                            r.theirs.cost_usd),
             r.input_diff_pct, r.output_diff_pct, r.cost_diff_pct, r.flagged) for r in result.rows]


def table_of_json(document: dict[str, Any]) -> list[tuple[Any, ...]]:
    """The same projection of the --json document (decimals as strings there)."""
    def dec(value: str | None) -> Decimal | None:
        return None if value is None else Decimal(value)
    return [(r["day"], r["model"], r["match"], tuple(r["local_models"]), tuple(r["provider_models"]),
             None if r["ours"] is None else (r["ours"]["calls"], r["ours"]["input_tokens"], r["ours"]["output_tokens"],
                                             dec(r["ours"]["cost_usd"]), r["ours"]["cost_source"],
                                             r["ours"]["unpriced_calls"]),
             None if r["theirs"] is None else (r["theirs"]["input_tokens"], r["theirs"]["output_tokens"],
                                               r["theirs"]["requests"], dec(r["theirs"]["cost_usd"])),
             dec(r["input_diff_pct"]), dec(r["output_diff_pct"]), dec(r["cost_diff_pct"]), r["flagged"])
            for r in document["rows"]]


def totals_of(result: Any) -> tuple[Any, ...]:
    t = result.totals
    return (t.input_ours, t.input_theirs, t.output_ours, t.output_theirs, t.cost_ours, t.cost_theirs, t.cost_diff_pct)


# --- the library ----------------------------------------------------------------------------------

def test_openai_reconciliation_equals_the_hand_computed_table(store: Path) -> None:
    with use_cassette(CASSETTES / "reconcile_openai.yaml", mode="replay", strict=True):
        result = reconcile("openai", FIRST, LAST, directory=store)
    assert table_of(result) == OPENAI_TABLE
    assert totals_of(result) == OPENAI_TOTALS
    notes = {row.model: row.notes for row in result.rows if row.day == date(2026, 3, 3) or row.model == "o3-mini"}
    assert notes["gpt-4.1-nano-2025-04-14"] == ("only in the provider's report",)
    assert notes["(no model)"] == ("only in the provider's report: charges that name no model (web search tool calls)",)
    assert notes["o3-mini"] == ("only in local records",)
    assert notes["gpt-4o-mini-2024-07-18"] == ()  # matched by name without its date: `match` and `local_models` say so
    assert result.rows[3].theirs is not None and result.rows[3].theirs.cost_source == "billed"
    assert result.notes == ("skipped 1 unreadable line(s) of the telemetry store",
                            "left out 1 call(s) replayed from cassettes (no one was billed for them)",
                            "left out 1 call(s) without tokens or cost (they failed before an answer)")


def test_anthropic_reconciliation_equals_the_hand_computed_table(store: Path) -> None:
    with use_cassette(CASSETTES / "reconcile_anthropic.yaml", mode="replay", strict=True):
        result = reconcile("anthropic", FIRST, LAST, directory=store)
    assert table_of(result) == ANTHROPIC_TABLE
    assert totals_of(result) == ANTHROPIC_TOTALS
    assert result.notes == ("skipped 1 unreadable line(s) of the telemetry store",)  # the replay was OpenAI's


def test_dumped_responses_reconcile_like_the_store(tmp_path: Path) -> None:
    """--records: the same OpenAI calls as Response.model_dump_json() lines, dated by raw.created."""
    def response(created: str, model: str, tokens: tuple[int, int], total: str) -> str:
        stamp = int(datetime.fromisoformat(created).replace(tzinfo=timezone.utc).timestamp())
        cost = Cost(input=D(0), cache_read=D(0), cache_write=D(0), output=D(0), total=D(total), source="price-table")
        return Response(text="ok", finish_reason="stop", usage=Usage(input_tokens=tokens[0], output_tokens=tokens[1]),
                        cost=cost, model=model, provider="openai", latency_ms=1.0,
                        raw={"created": stamp}).model_dump_json()
    lines = [response("2026-03-02T08:00:00", "gpt-4o-mini", (1000, 200), "0.00027"),
             response("2026-03-02T09:00:00", "gpt-4o-mini", (2000, 300), "0.00048"),
             response("2026-03-02T10:00:00", "gpt-4o-mini", (1000, 500), "0.00045"),
             response("2026-03-03T08:00:00", "gpt-4o-mini", (3000, 400), "0.00069"),
             response("2026-03-03T09:00:00", "gpt-4o-mini", (2000, 600), "0.00066"),
             response("2026-03-04T08:00:00", "gpt-4o", (10000, 1000), "0.035"),
             response("2026-03-04T09:00:00", "o3-mini", (500, 2000), "0.00935")]
    path = tmp_path / "responses.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    with use_cassette(CASSETTES / "reconcile_openai.yaml", mode="replay", strict=True):
        result = reconcile("openai", FIRST, LAST, local=from_responses(path))
    assert table_of(result) == OPENAI_TABLE
    assert result.local_source == f"responses in {path}"


# --- compare(): the rules, without I/O ------------------------------------------------------------

DAY = date(2026, 3, 2)
START = datetime(2026, 3, 2, tzinfo=timezone.utc)
END = datetime(2026, 3, 3, tzinfo=timezone.utc)


def used(model: str, tokens_in: int, tokens_out: int = 100) -> UsageBucket:
    return UsageBucket(provider="openai", start=START, end=END, model=model, input_tokens=tokens_in,
                       output_tokens=tokens_out)


def billed(model: str, amount: str) -> CostBucket:
    return CostBucket(provider="openai", start=START, end=END, amount_usd=D(amount), line_item=f"{model}, input",
                      model=model)


def ours(model: str, tokens_in: int, cost: str | None, source: str | None = "price-table",
         tokens_out: int = 100) -> LocalRecord:
    return LocalRecord(day=DAY, provider="openai", model=model, input_tokens=tokens_in, output_tokens=tokens_out,
                       cost_usd=None if cost is None else D(cost), cost_source=source if cost is not None else None)


def test_a_record_holding_a_line_separator_in_a_string_is_read_whole(tmp_path: Path) -> None:
    """JSON encoders write U+2028 as it is (older stores hold it raw): it is inside a string, not a line's end."""
    from llmclient.billing.local import from_telemetry

    line = record("2026-03-04T10:00:00.000000Z", "openai/gpt-4o-mini", (1_000, 100), "0.00021")
    raw = line.replace('"agent_name": null', '"agent_name": "triage\u2028night"')
    assert "\u2028" in raw and raw != line
    (tmp_path / "2026-03-04").mkdir()
    (tmp_path / "2026-03-04" / "telemetry.jsonl").write_text(raw + "\n", encoding="utf-8")
    local = from_telemetry(tmp_path, date(2026, 3, 4), date(2026, 3, 4))
    assert [(r.model, r.input_tokens, r.output_tokens, r.cost_usd) for r in local.records] == [
        ("gpt-4o-mini", 1_000, 100, Decimal("0.00021"))]


def test_exactly_the_threshold_is_not_flagged_above_it_is() -> None:
    # (1,050 - 1,000) / 1,000 = 5% exactly: not above 5. (1,051 - 1,000) / 1,000 = 5.1%: flagged.
    at = compare("openai", DAY, DAY, [ours("gpt-4o-mini", 1050, "0.001")], [used("gpt-4o-mini", 1000)],
                 [billed("gpt-4o-mini", "0.001")])
    above = compare("openai", DAY, DAY, [ours("gpt-4o-mini", 1051, "0.001")], [used("gpt-4o-mini", 1000)],
                    [billed("gpt-4o-mini", "0.001")])
    assert (at.rows[0].input_diff_pct, at.rows[0].flagged) == (D("5.00"), False)
    assert (above.rows[0].input_diff_pct, above.rows[0].flagged) == (D("5.10"), True)
    assert at.rows[0].match == "exact" and at.rows[0].notes == ()
    # --threshold 10 lets 5.1% through
    assert compare("openai", DAY, DAY, [ours("gpt-4o-mini", 1051, "0.001")], [used("gpt-4o-mini", 1000)],
                   [billed("gpt-4o-mini", "0.001")], threshold="10").rows[0].flagged is False


def test_sources_and_unpriced_calls_are_said() -> None:
    records = [ours("gpt-4o-mini", 100, "0.0001"), ours("gpt-4o-mini", 100, "0.0002", source="provider"),
               ours("gpt-4o-mini", 100, None)]
    row = compare("openai", DAY, DAY, records, [used("gpt-4o-mini", 300, 300)], [billed("gpt-4o-mini", "0.0003")]).rows[0]
    assert row.ours is not None
    # priced: $0.0001 + $0.0002 = $0.0003, from both kinds of source; the third call has no price.
    assert (row.ours.cost_usd, row.ours.cost_source, row.ours.unpriced_calls) == (D("0.0003"), "price-table+provider", 1)
    assert row.notes == ("1 of our call(s) without a known price: not in our cost",)


def test_a_figure_against_zero_is_flagged_and_zero_against_zero_is_not() -> None:
    row = compare("openai", DAY, DAY, [ours("gpt-4o-mini", 10, "0.001", tokens_out=0)],
                  [used("gpt-4o-mini", 0, tokens_out=0)], [billed("gpt-4o-mini", "0.001")]).rows[0]
    assert (row.input_diff_pct, row.output_diff_pct, row.flagged) == (None, D(0), True)
    assert row.notes == ("input tokens: ours 10, theirs 0",)


def test_exact_names_match_first_then_names_without_their_date() -> None:
    local = [ours("gpt-4o-2024-08-06", 100, "0.001"), ours("gpt-4o", 200, "0.002"),
             ours("claude-3-5-haiku-latest", 300, "0.003")]
    usage = [used("gpt-4o-2024-08-06", 100), used("gpt-4o-2024-05-13", 200), used("claude-3-5-haiku-20241022", 300)]
    rows = compare("openai", DAY, DAY, local, usage, []).rows
    assert [(r.model, r.match, r.local_models, r.provider_models) for r in rows] == [
        ("claude-3-5-haiku-20241022", "date suffix", ("claude-3-5-haiku-latest",), ("claude-3-5-haiku-20241022",)),
        ("gpt-4o-2024-05-13", "date suffix", ("gpt-4o",), ("gpt-4o-2024-05-13",)),
        ("gpt-4o-2024-08-06", "exact", ("gpt-4o-2024-08-06",), ("gpt-4o-2024-08-06",)),
    ]
    # no cost report rows: theirs has no dollars, said so, and the cost difference is unknown (not flagged for it)
    assert rows[2].cost_diff_pct is None and "no charge for it in the provider's cost report" in rows[2].notes


def test_an_empty_range_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="the range is empty"):
        reconcile("openai", LAST, FIRST, local=[])


# --- the command line -----------------------------------------------------------------------------

def run(argv: list[str], capsys: pytest.CaptureFixture[str], cassette: str | None = None) -> tuple[int, str, str]:
    if cassette is None:
        code = main(argv)
    else:
        with use_cassette(CASSETTES / cassette, mode="replay"):
            code = main(argv)
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    return code, out, err


def test_cli_json_is_the_hand_computed_table_and_exits_1_when_flagged(store: Path,
                                                                     capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = run(["costs", "reconcile", "--provider", "openai", *RANGE, "--dir", str(store), "--json"], capsys,
                         "reconcile_openai.yaml")
    document = json.loads(out)
    assert (code, err) == (1, "")
    assert table_of_json(document) == OPENAI_TABLE
    assert (document["first_day"], document["last_day"], document["threshold_pct"]) == ("2026-03-02", "2026-03-04", "5")
    assert (document["flagged_rows"], document["totals"]["cost_ours"], document["totals"]["cost_theirs"]) == (
        4, "0.0469", "0.06326")


def test_cli_anthropic_json(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["costs", "reconcile", "--provider", "anthropic", *RANGE, "--dir", str(store), "--json"], capsys,
                       "reconcile_anthropic.yaml")
    assert code == 1
    assert table_of_json(json.loads(out)) == ANTHROPIC_TABLE


def test_cli_table_shows_both_sides_flags_and_notes(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(["costs", "reconcile", "--provider", "openai", *RANGE, "--dir", str(store)], capsys,
                       "reconcile_openai.yaml")
    assert code == 1
    lines = out.splitlines()
    row = next(line for line in lines if line.startswith("2026-03-03  gpt-4o-mini-2024-07-18"))
    assert row.split() == ["2026-03-03", "gpt-4o-mini-2024-07-18", "gpt-4o-mini", "5,000", "5,600", "-10.71%",
                           "1,000", "1,000", "+0.00%", "$0.00135", "$0.00144", "-6.25%", "FLAG"]
    ok = next(line for line in lines if line.startswith("2026-03-04  gpt-4o-2024-08-06"))
    assert ok.split()[-3:] == ["$0.035", "$0.0355", "-1.41%"]  # no FLAG: within 5%
    only_local = next(line for line in lines if line.startswith("2026-03-04  o3-mini"))
    assert only_local.split() == ["2026-03-04", "o3-mini", "500", "-", "-", "2,000", "-", "-", "$0.00935", "-", "-",
                                  "FLAG"]
    assert "2026-03-03 gpt-4.1-nano-2025-04-14: only in the provider's report" in lines
    assert "2026-03-04 o3-mini: only in local records" in lines
    assert "total: ours $0.0469, theirs $0.06326 (-25.86%); tokens in 19,500 / 20,600, out 5,000 / 3,100" in lines
    assert any(line.startswith("where from: ours = each call's own cost (price-table)") and "theirs = billed" in line
               for line in lines)
    assert lines[-1] == "4 of 6 row(s) flagged"


def test_cli_records_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """--records with --records-day for responses that carry no date of their own (Anthropic's)."""
    usage = Usage(input_tokens=5000, output_tokens=800)
    cost = Cost(input=D(0), cache_read=D(0), cache_write=D(0), output=D(0), total=D("0.0243"), source="price-table")
    dumped = Response(text="ok", finish_reason="stop", usage=usage, cost=cost, model="claude-sonnet-4-5",
                      provider="anthropic", latency_ms=1.0, raw={"id": "msg_1"}).model_dump_json()
    path = tmp_path / "calls.jsonl"
    path.write_text(dumped + "\nnot json\n", encoding="utf-8")
    code, out, _ = run(["costs", "reconcile", "--provider", "anthropic", *RANGE, "--records", str(path),
                        "--records-day", "2026-03-02", "--json"], capsys, "reconcile_anthropic.yaml")
    document = json.loads(out)
    # 03-02 Sonnet now matches exactly what the provider reports (5,000 / 800 / $0.0243); 03-03 is only theirs.
    assert code == 1
    assert table_of_json(document)[0] == ANTHROPIC_TABLE[0][:5] + ((1, 5000, 800, D("0.0243"), "price-table", 0),) + \
        ANTHROPIC_TABLE[0][6:]
    assert [row["match"] for row in document["rows"]] == ["date suffix", "only provider", "only provider"]
    assert document["notes"] == [f"skipped 1 line(s) of {path} that are not a dumped Response"]


@pytest.mark.parametrize("provider, cassette, status, variable", [
    ("openai", "openai_401.yaml", "HTTP 401", "OPENAI_ADMIN_KEY"),
    ("openai", "openai_403.yaml", "HTTP 403", "OPENAI_ADMIN_KEY"),
    ("anthropic", "anthropic_401.yaml", "HTTP 401", "ANTHROPIC_ADMIN_KEY"),
    ("anthropic", "anthropic_403.yaml", "HTTP 403", "ANTHROPIC_ADMIN_KEY"),
])
def test_cli_refused_key_is_a_clear_message_and_exit_2(store: Path, capsys: pytest.CaptureFixture[str], provider: str,
                                                       cassette: str, status: str, variable: str) -> None:
    code, out, err = run(["costs", "reconcile", "--provider", provider, *RANGE, "--dir", str(store)], capsys, cassette)
    assert (code, out) == (2, "")
    assert err.startswith("llmclient: AuthenticationError: ") and status in err
    assert "organization admin key" in err and variable in err
    assert "test-placeholder" not in err


@pytest.mark.parametrize("provider, variable", [("openai", "OPENAI_ADMIN_KEY"), ("anthropic", "ANTHROPIC_ADMIN_KEY")])
def test_cli_without_admin_key(store: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch,
                               provider: str, variable: str) -> None:
    monkeypatch.delenv(variable)
    code, out, err = run(["costs", "reconcile", "--provider", provider, *RANGE, "--dir", str(store)], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("llmclient: ConfigurationError: ") and f"set the {variable} environment variable" in err


def test_cli_provider_errors_exit_2(store: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # the usage report answers, then the cost report fails: 500 from Anthropic's cost_report
    code, _, err = run(["costs", "reconcile", "--provider", "anthropic", *RANGE, "--dir", str(store)], capsys,
                       "reconcile_anthropic_server_error.yaml")
    assert code == 2 and err.startswith("llmclient: ServerError: ") and "HTTP 500" in err


def test_cli_empty_range_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["costs", "reconcile", "--provider", "openai", "--days", "0"])
    assert caught.value.code == 2
    assert "the range is empty" in capsys.readouterr().err


def test_cli_nothing_on_either_side_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "store").mkdir()
    code, out, _ = run(["costs", "reconcile", "--provider", "openai", "--days", "3", "--end", "2026-02-03", "--dir",
                        str(tmp_path / "store")], capsys, "reconcile_openai_empty.yaml")
    assert code == 0
    assert out.splitlines()[-1] == ("nothing to reconcile: no openai calls in our records and nothing in the "
                                    "provider's report for 2026-02-01 .. 2026-02-03")


@pytest.mark.parametrize("argv, message", [
    (["--dir", "DIR/missing"], "no telemetry store at"),
    (["--records", "DIR/missing.jsonl"], "--records"),
    (["--records-day", "2026-03-02"], "--records-day is for --records"),
])
def test_cli_bad_local_input_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str],
                                     message: str) -> None:
    argv = [arg.replace("DIR", str(tmp_path)) for arg in argv]
    code, out, err = run(["costs", "reconcile", "--provider", "openai", *RANGE, *argv], capsys)
    assert (code, out) == (2, "")
    assert err.startswith("llmclient: ConfigurationError: ") and message in err
