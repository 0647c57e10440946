"""scripts/build_prices.py on small hand-written inputs: genai-prices' dated history, time-of-day and
variant prices into rows, its model lookup, the merge with litellm's row, conflicts and their decision,
and `--check` on a stale table or conflicts file. Expected rows are written out here, not computed."""

from __future__ import annotations

import sys
from datetime import UTC, date, time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("genai_prices")  # the dev extra's build-time price source
from genai_prices.types import (  # noqa: E402
    ClauseEquals,
    ClauseOr,
    ClauseStartsWith,
    ConditionalPrice,
    ModelInfo,
    ModelPrice,
    PriceVariant,
    Provider,
    StartDateConstraint,
    TieredPrices,
    Tier,
    TimeOfDateConstraint,
)

SCRIPTS = Path(__file__).resolve().parent.parent / "scripts"
sys.path.insert(0, str(SCRIPTS))
import build_prices  # noqa: E402
import prices_genai  # noqa: E402
import prices_litellm  # noqa: E402
import prices_merge  # noqa: E402

VERSIONS = {"litellm": "1.0", "genai": "0.2"}
D = Decimal


def price(**mtok: str) -> ModelPrice:
    return ModelPrice(**{key: D(value) for key, value in mtok.items()})


def rows_of(model: ModelInfo, provider: str = "openai", variants: bool = True) -> list[dict[str, Any]]:
    return prices_genai.genai_rows(model, provider, "https://example.com/pricing", "2026-12-05", variants)


def strip(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{k: v for k, v in r.items() if k not in ("source", "as_of")} for r in rows]


def test_per_million_prices_become_exact_per_token_strings() -> None:
    assert prices_genai.per_token(D("2.19")) == "0.00000219"
    assert prices_genai.per_token(D("0.0028")) == "0.0000000028"
    assert prices_genai.per_token(D("30")) == "0.00003"
    assert prices_genai.per_token(D("0")) == "0"
    # a price carried through a binary float: 12 significant digits is more than any list price has
    assert prices_genai.plain(D("0.18000000000000002")) == "0.18"
    assert prices_litellm._price(1.6000000000000001e-06) == "0.0000016"


def test_start_dates_become_consecutive_dated_rows() -> None:
    # o3: $10 / $40 until the cut to $2 / $8 on 2025-06-10
    model = ModelInfo(id="o3", match=ClauseEquals(equals="o3"), prices=[
        ConditionalPrice(prices=price(input_mtok="10", output_mtok="40")),
        ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 6, 10)),
                         prices=price(input_mtok="2", output_mtok="8")),
    ])
    assert strip(rows_of(model)) == [
        {"from": None, "to": "2025-06-09", "input": "0.00001", "output": "0.00004"},
        {"from": "2025-06-10", "to": None, "input": "0.000002", "output": "0.000008"},
    ]


def test_a_date_that_changes_no_price_starts_no_row() -> None:
    same = price(input_mtok="1", output_mtok="2")
    model = ModelInfo(id="m", match=ClauseEquals(equals="m"), prices=[
        ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 1, 1)), prices=same),
        ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 3, 1)), prices=same),
        ConditionalPrice(constraint=StartDateConstraint(start_date=date(2025, 5, 1)), prices=price(input_mtok="1", output_mtok="3")),
    ])
    # before the first date genai-prices uses its first entry: the same prices, so one row until 2025-04-30
    assert strip(rows_of(model)) == [
        {"from": None, "to": "2025-04-30", "input": "0.000001", "output": "0.000002"},
        {"from": "2025-05-01", "to": None, "input": "0.000001", "output": "0.000003"},
    ]


def test_an_off_peak_window_becomes_time_of_day_around_the_standard_price() -> None:
    # genai-prices' DeepSeek form: the off-peak price first (the default), the standard price for 00:30-16:30
    model = ModelInfo(id="deepseek-reasoner", match=ClauseEquals(equals="deepseek-reasoner"), prices=[
        ConditionalPrice(prices=price(input_mtok="0.135", cache_read_mtok="0.035", output_mtok="0.55")),
        ConditionalPrice(constraint=TimeOfDateConstraint(start_time=time(0, 30, tzinfo=UTC), end_time=time(16, 30, tzinfo=UTC)),
                         prices=price(input_mtok="0.55", cache_read_mtok="0.14", output_mtok="2.19")),
    ])
    # the price covering most of the day (16 h) is the row's; the other 8 h, wrapping midnight, a window
    assert strip(rows_of(model, "deepseek")) == [{
        "from": None, "to": None, "input": "0.00000055", "output": "0.00000219", "cache_read": "0.00000014",
        "time_of_day": [{"start": "16:30", "end": "00:30", "input": "0.000000135", "output": "0.00000055",
                         "cache_read": "0.000000035"}],
    }]


def test_two_peak_windows_stay_apart() -> None:
    peak = price(input_mtok="0.3", output_mtok="1.2")
    model = ModelInfo(id="deepseek-v4-flash", match=ClauseEquals(equals="deepseek-v4-flash"), prices=[
        ConditionalPrice(prices=price(input_mtok="0.15", output_mtok="0.6")),
        ConditionalPrice(constraint=TimeOfDateConstraint(start_time=time(1, 0, tzinfo=UTC), end_time=time(4, 0, tzinfo=UTC)), prices=peak),
        ConditionalPrice(constraint=TimeOfDateConstraint(start_time=time(6, 0, tzinfo=UTC), end_time=time(10, 0, tzinfo=UTC)), prices=peak),
    ])
    [row] = rows_of(model, "deepseek")
    assert (row["input"], row["output"]) == ("0.00000015", "0.0000006")
    assert [(w["start"], w["end"], w["input"]) for w in row["time_of_day"]] == [("01:00", "04:00", "0.0000003"),
                                                                                 ("06:00", "10:00", "0.0000003")]


def test_tiers_tool_fees_and_a_batch_variant() -> None:
    model = ModelInfo(id="gemini-2.5-pro", match=ClauseStartsWith(starts_with="gemini-2.5-pro"), prices=price(
        input_mtok="1.25", output_mtok="10", web_searches_kcount="35"), price_variants=[
        PriceVariant(when={"processing": "batch"}, constraint=StartDateConstraint(start_date=date(2026, 10, 14)),
                     prices=price(input_mtok="0.625", output_mtok="5"))])
    model.prices.input_mtok = TieredPrices(base=D("1.25"), tiers=[Tier(start=200_000, price=D("2.5"))])  # type: ignore[union-attr]
    [row] = rows_of(model, "gemini")
    # the variant's date is the day genai-prices verified it, not a price change: it starts no row
    assert strip([row]) == [{
        "from": None, "to": None, "input": "0.00000125", "output": "0.00001",
        "tiers": [{"above_input_tokens": 200000, "input": "0.0000025"}],
        "tool_fees": {"grounded_prompt": "0.035"},  # Gemini 2.x bills per grounded prompt, $35 / 1,000
        "service_tiers": {"batch": {"input": "0.000000625", "output": "0.000005"}},
    }]
    # found through a fallback provider: genai-prices applies no variant
    assert "service_tiers" not in rows_of(model, "gemini", variants=False)[0]
    assert prices_genai.tool_fee_name("gemini", "gemini-3-pro-preview") == "web_search"  # Gemini 3: per search query


def test_the_lookup_is_genai_prices_own() -> None:
    first = ModelInfo(id="gpt-4o-mini", match=ClauseOr(or_=[ClauseEquals(equals="gpt-4o-mini"),
                                                            ClauseEquals(equals="gpt-4o-mini-2024-07-18")]), prices=price(input_mtok="0.15", output_mtok="0.6"))
    broad = ModelInfo(id="gpt-4o", match=ClauseStartsWith(starts_with="gpt-4o-"), prices=price(input_mtok="2.5", output_mtok="10"))
    openai = Provider(id="openai", name="OpenAI", api_pattern="", models=[first, broad])
    azure = Provider(id="azure", name="Azure", api_pattern="", models=[], fallback_model_providers=["openai"])
    every = [openai, azure]
    # the name as given first: a compact date that a pattern matches as it is stays with that pattern
    assert prices_genai.find_model(every, ("openai",), "gpt-4o-mini-20240718", every) == (openai, broad)
    openai.models = [first]
    assert prices_genai.find_model(every, ("openai",), "GPT-4o-mini", every) == (openai, first)  # case-insensitive
    assert prices_genai.find_model(every, ("openai",), "gpt-4o-mini-20240718", every) == (openai, first)  # compact date
    openai.models = [first, broad]
    assert prices_genai.find_model(every, ("openai",), "gpt-4o-audio", every) == (openai, broad)  # first match wins
    assert prices_genai.find_model(every, ("azure",), "gpt-4o-mini", every) == (azure, first)  # one step of fallback
    assert prices_genai.find_model(every, ("openai",), "o3", every) is None
    assert prices_genai.equals_names(first.match) == ["gpt-4o-mini", "gpt-4o-mini-2024-07-18"]


def test_genai_models_marks_only_exactly_listed_names_as_its_own(monkeypatch: pytest.MonkeyPatch) -> None:
    mini = ModelInfo(id="gpt-4o-mini", match=ClauseEquals(equals="gpt-4o-mini"), prices=price(input_mtok="0.15", output_mtok="0.6"))
    broad = ModelInfo(id="o4-mini", match=ClauseStartsWith(starts_with="o4-mini"), prices=price(input_mtok="1.1", output_mtok="4.4"))
    openai = Provider(id="openai", name="OpenAI", api_pattern="", models=[mini, broad])
    azure = Provider(id="azure", name="Azure", api_pattern="", models=[], fallback_model_providers=["openai"])
    found = build_prices.genai_models([openai, azure], ["openai/o4-mini-high", "azure/gpt-4o-mini"], "0.2")
    assert {key: own for key, (_, own) in found.items()} == {
        "openai/o4-mini-high": False,  # a pattern match
        "azure/gpt-4o-mini": False,  # through the fallback provider
        "openai/gpt-4o-mini": True,  # a name genai-prices lists exactly: a key of its own
    }


LITE = {"from": None, "to": None, "input": "0.000001", "output": "0.000004", "cache_read": "0.0000005",
        "source": "https://lite.example/pricing (via litellm)", "as_of": "2026-11-24"}
GENAI = [
    {"from": None, "to": "2025-06-09", "input": "0.000005", "output": "0.00002", "source": "https://g.example", "as_of": "2026-12-05"},
    {"from": "2025-06-10", "to": None, "input": "0.000001", "output": "0.000004", "tool_fees": {"web_search": "0.01"},
     "source": "https://g.example", "as_of": "2026-12-05"},
]


def test_agreeing_sources_give_one_row_citing_both_and_keep_the_history() -> None:
    rows, conflicts = prices_merge.merge("openai/m", LITE, GENAI, True, None, "2026-11-24", VERSIONS)
    assert conflicts == []
    assert rows[0] == GENAI[0]  # genai-prices' dated history stays
    assert rows[1] == {"from": "2025-06-10", "to": None, "input": "0.000001", "output": "0.000004", "cache_read": "0.0000005",
                       "tool_fees": {"web_search": "0.01"},  # each source's extra fields are kept
                       "source": "https://lite.example/pricing (litellm 1.0 and genai-prices 0.2 agree)", "as_of": "2026-12-05"}


@pytest.mark.parametrize(("own", "decision", "chosen"), [(True, "genai-prices", "0.000003"), (False, "litellm", "0.000004")])
def test_a_conflict_is_listed_and_decided_by_the_default_rule(own: bool, decision: str, chosen: str) -> None:
    genai = [dict(GENAI[1], output="0.000003")]
    rows, conflicts = prices_merge.merge("openai/m", LITE, genai, own, None, "2026-11-24", VERSIONS)
    [conflict] = conflicts
    assert (conflict.key, conflict.field, conflict.litellm, conflict.genai, conflict.decision, conflict.chosen) == (
        "openai/m", "output", "0.000004", "0.000003", decision, chosen)
    assert rows[0]["output"] == chosen and "differ: see price_conflicts.md" in rows[0]["source"]


def test_an_override_decides_the_conflict_and_replaces_the_rows() -> None:
    override = [{"from": "2025-01-01", "to": None, "input": "0.000001", "output": "0.0000035",
                 "source": "https://provider.example/pricing (checked)", "as_of": "2026-12-05"}]
    genai = [dict(GENAI[1], output="0.000003")]
    rows, [conflict] = prices_merge.merge("openai/m", LITE, genai, True, override, "2026-11-24", VERSIONS)
    assert rows == override
    assert (conflict.decision, conflict.chosen) == ("override", "0.0000035")
    assert conflict.reason == "override: https://provider.example/pricing (as of 2026-12-05)"


def test_one_source_alone_is_taken_as_it_is() -> None:
    assert prices_merge.merge("openai/m", LITE, None, False, None, "2026-11-24", VERSIONS) == ([LITE], [])
    assert prices_merge.merge("openai/m", None, GENAI, True, None, "2026-11-24", VERSIONS) == (GENAI, [])


def test_litellm_winning_the_base_price_drops_genai_windows() -> None:
    genai = [{"from": None, "to": None, "input": "0.00000015", "output": "0.0000006",
              "time_of_day": [{"start": "01:00", "end": "04:00", "input": "0.0000003", "output": "0.0000012"}],
              "source": "https://g.example", "as_of": "2026-12-05"}]
    lite = dict(LITE, input="0.0000003", output="0.0000012")
    rows, conflicts = prices_merge.merge("deepseek/x", lite, genai, False, None, "2026-11-24", VERSIONS)
    assert {c.decision for c in conflicts} == {"litellm"}
    assert "time_of_day" not in rows[0]  # windows and the rest of the day must come from one source


def test_tiers_service_tiers_and_tool_fees_are_compared_field_by_field() -> None:
    row = {"input": "1", "output": "2", "tiers": [{"above_input_tokens": 200000, "input": "3"}],
           "service_tiers": {"batch": {"input": "0.5"}}, "tool_fees": {"web_search": "0.01"}}
    flat = prices_merge.flatten(row)
    assert flat == {"input": "1", "output": "2", "tiers.>200000.input": "3", "service_tiers.batch.input": "0.5",
                    "tool_fees.web_search": "0.01"}
    assert prices_merge.unflatten(flat) == row


def test_check_fails_on_a_stale_table_or_conflicts_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                      capsys: pytest.CaptureFixture[str]) -> None:
    table = {"version": "v", "sources": {}, "aliases": {}, "models": {"openai/m": [LITE]}}
    conflict = prices_merge.Conflict("openai/m", "output", "0.000004", "0.000003", "litellm", "default rule", "0.000004")
    monkeypatch.setattr(build_prices, "build", lambda: (table, [conflict]))
    monkeypatch.setattr(build_prices, "TABLE", tmp_path / "prices.json")
    monkeypatch.setattr(build_prices, "CONFLICTS", tmp_path / "price_conflicts.md")
    monkeypatch.setattr(sys, "argv", ["build_prices.py"])
    assert build_prices.main() == 0
    out = capsys.readouterr().out
    assert "conflict openai/m output: litellm $4/1M, genai-prices $3/1M -> $4/1M (default rule)" in out
    assert "| openai/m | output | $4/1M | $3/1M | $4/1M | default rule |" in (tmp_path / "price_conflicts.md").read_text()
    monkeypatch.setattr(sys, "argv", ["build_prices.py", "--check"])
    assert build_prices.main() == 0
    (tmp_path / "price_conflicts.md").write_text("edited by hand\n")
    assert build_prices.main() == 1
    assert "stale: price_conflicts.md" in capsys.readouterr().out
