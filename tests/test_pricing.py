"""Cost from the dated price table. Every expected figure is hand-computed from the provider's
published per-million price (cited beside it), not produced by pricing.py."""

from __future__ import annotations

import json
import logging
import subprocess
import sys
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from llmclient import ConfigurationError, Usage, UsageIteration, price_table, pricing

REPO = Path(__file__).resolve().parent.parent


pytestmark = pytest.mark.usefixtures("shipped_prices")


def total(provider: str, model: str, usage: Usage, **options: object) -> Decimal | None:
    cost = pricing.cost(provider, model, usage, **options)  # type: ignore[arg-type]
    return None if cost is None else cost.total


def test_the_price_table_version_is_pinned() -> None:
    # Costs in fixtures and snapshots depend on it: a new table is adopted deliberately.
    assert pricing.table_version() == "2026-12-05+litellm.1.106.12+genai-prices.0.2.5+overrides.6"


def test_every_shipped_row_parses() -> None:
    # Rows are parsed on first use (most never are); a malformed one must still fail a test.
    table = price_table._table()
    assert len(pricing.keys()) > 800
    assert all(table.rows(key) for key in pricing.keys())


def test_the_committed_table_is_what_the_script_builds() -> None:
    result = subprocess.run([sys.executable, "scripts/build_prices.py", "--check"], cwd=REPO, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cached_input_is_billed_at_the_cache_price() -> None:
    # gpt-4o-mini: $0.15 in, $0.075 cached, $0.60 out per 1M (platform.openai.com/docs/pricing)
    usage = Usage(input_tokens=1000, cache_read_tokens=400, output_tokens=200)
    assert total("openai", "gpt-4o-mini", usage) == Decimal("0.00024")  # 600x0.15 + 400x0.075 + 200x0.60, /1M


def test_anthropic_cache_writes_split_five_minute_and_one_hour() -> None:
    # claude-sonnet-4-5: $3 in, $0.30 read, $3.75 5-min write, $6 1-hour write, $15 out per 1M
    usage = Usage(input_tokens=10_000, cache_read_tokens=5_000, cache_write_tokens=3_000, output_tokens=500)
    raw = {"cache_creation": {"ephemeral_5m_input_tokens": 2_000, "ephemeral_1h_input_tokens": 1_000}}
    cost = pricing.cost("anthropic", "claude-sonnet-4-5", usage, raw)
    assert cost is not None
    # 2000x3 + 5000x0.30 + 2000x3.75 + 1000x6 + 500x15 = 6000 + 1500 + 7500 + 6000 + 7500 = 28500 /1M
    assert (cost.input, cost.cache_read, cost.cache_write, cost.output, cost.total) == (
        Decimal("0.006"), Decimal("0.0015"), Decimal("0.0135"), Decimal("0.0075"), Decimal("0.0285"))
    assert cost.prices is not None and cost.prices.model == "anthropic/claude-sonnet-4-5"


@pytest.mark.parametrize(("input_tokens", "expected", "tier"), [
    (150_000, Decimal("0.312"), None),       # 150000 x $2 + 1000 x $12, /1M
    (250_000, Decimal("1.018"), 200_000),    # above 200k the whole request: 250000 x $4 + 1000 x $18, /1M
])
def test_the_request_input_size_picks_the_tier(input_tokens: int, expected: Decimal, tier: int | None) -> None:
    # gemini-3-pro-preview: $2 / $12 up to 200k input tokens, $4 / $18 above (ai.google.dev/gemini-api/docs/pricing)
    cost = pricing.cost("gemini", "gemini-3-pro-preview", Usage(input_tokens=input_tokens, output_tokens=1000))
    assert cost is not None and cost.total == expected
    assert cost.prices is not None and cost.prices.above_input_tokens == tier


@pytest.mark.parametrize(("day", "expected"), [
    (date(2024, 12, 1), Decimal("0.015")),   # launch price $3 / $12: 1000 x 3 + 1000 x 12, /1M
    (date(2025, 6, 1), Decimal("0.0055")),   # after the cut to $1.10 / $4.40
])
def test_a_call_is_priced_at_the_price_in_force_on_its_date(day: date, expected: Decimal) -> None:
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert total("openai", "o1-mini-2024-09-12", usage, on=day) == expected


@pytest.mark.parametrize(("provider", "model", "usage", "expected"), [
    # Z.ai GLM-4.6V: $0.30 in, $0.05 cached, $0.90 out per 1M (docs.z.ai/guides/overview/pricing); the recorded
    # vision call: 435 prompt tokens of which 4 cached, 73 completion of which 56 reasoning (priced as output)
    ("zai", "glm-4.6v", Usage(input_tokens=435, cache_read_tokens=4, output_tokens=73, reasoning_tokens=56),
     Decimal("0.0001952")),  # 431 x 0.30 + 4 x 0.05 + 73 x 0.90 = 129.3 + 0.2 + 65.7 = 195.2 /1M
    # Cerebras qwen-3-coder-480b, retired 2025-11: $2 in, $2 out per 1M (inference-docs.cerebras.ai/models/qwen-3-480b)
    ("cerebras", "qwen-3-coder-480b", Usage(input_tokens=304, output_tokens=25), Decimal("0.000658")),  # 329 x 2 /1M
])
def test_override_rows_price_models_litellm_lacks(provider: str, model: str, usage: Usage, expected: Decimal) -> None:
    assert total(provider, model, usage) == expected


def test_flex_service_tier_prices() -> None:
    # o3: $2 / $8 standard, flex $1 / $4 per 1M
    usage = Usage(input_tokens=1000, output_tokens=1000)
    assert total("openai", "o3", usage) == Decimal("0.01")
    assert total("openai", "o3", usage, service_tier="flex") == Decimal("0.005")
    assert total("openai", "o3", usage, service_tier="default") == Decimal("0.01")


@pytest.mark.parametrize(("provider", "model", "base_url", "key"), [
    ("anthropic", "claude-sonnet-4-5-20250929", None, "anthropic/claude-sonnet-4-5-20250929"),
    ("anthropic", "claude-3-5-haiku-latest", None, None),  # an alias the table does not list: unknown, not guessed
    ("anthropic", "claude-3-7-sonnet", None, "anthropic/claude-3-7-sonnet-20250219"),  # undated -> its snapshot
    ("openai", "gpt-4o-mini-2024-07-18", None, "openai/gpt-4o-mini-2024-07-18"),
    ("gemini", "models/gemini-2.5-pro", None, "gemini/gemini-2.5-pro"),
    ("gemini-openai-compat", "gemini-2.5-pro-preview-05-06", None, "gemini/gemini-2.5-pro-preview-05-06"),
    ("openrouter", "anthropic/claude-3.7-sonnet:thinking", None, "anthropic/claude-3-7-sonnet-20250219"),
    ("openrouter", "anthropic/claude-4.5-sonnet-20250929", None, "anthropic/claude-sonnet-4-5-20250929"),
    ("huggingface", "deepseek-ai/DeepSeek-R1", "https://router.huggingface.co/together/v1", "together_ai/deepseek-ai/DeepSeek-R1"),
    ("cohere", "command-r-plus", None, "cohere/command-r-plus-08-2024"),
    ("mistral", "mistral-small-2503", None, None),  # a different version is not stripped to "mistral-small"
])
def test_model_ids_resolve_through_snapshots_aliases_and_routers(provider: str, model: str, base_url: str | None,
                                                               key: str | None) -> None:
    assert pricing.resolve(provider, model, base_url) == key


def test_an_unknown_model_costs_none_with_one_warning(caplog: pytest.LogCaptureFixture) -> None:
    usage = Usage(input_tokens=10, output_tokens=5)
    with caplog.at_level(logging.WARNING, logger="llmclient.pricing"):
        assert pricing.cost("openai", "gpt-nonexistent", usage) is None
        assert pricing.cost("openai", "gpt-nonexistent", usage) is None
    assert [r.getMessage() for r in caplog.records] == ["no price known for openai/gpt-nonexistent: its responses have cost=None"]


def test_the_provider_reported_charge_wins_and_ours_is_kept() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200)
    cost = pricing.cost("openrouter", "openai/gpt-4o-mini", usage, {"cost": 0.000271})
    assert cost is not None and (cost.source, cost.total) == ("provider", Decimal("0.000271"))
    assert cost.computed_total == Decimal("0.00027")  # at OpenAI's price: 1000 x 0.15 + 200 x 0.60, /1M


def test_advisor_iterations_are_billed_at_their_own_model() -> None:
    # the turn on claude-sonnet-4-5 ($3 / $15), the advisor on claude-opus-4-5 ($5 / $25)
    usage = Usage(input_tokens=1100, output_tokens=110, iterations=(
        UsageIteration(kind="message", input_tokens=100, output_tokens=10),
        UsageIteration(kind="advisor_message", model="claude-opus-4-5", input_tokens=1000, output_tokens=100)))
    # 100x3 + 10x15 + 1000x5 + 100x25 = 300 + 150 + 5000 + 2500 = 7950 /1M
    assert total("anthropic", "claude-sonnet-4-5", usage) == Decimal("0.00795")


def test_set_price_adds_a_model_with_a_reasoning_price() -> None:
    pricing.set_price("openai/ft:gpt-4o-mini:acme", input="0.000001", output="0.000002", reasoning="0.000003")
    usage = Usage(input_tokens=100, output_tokens=100, reasoning_tokens=40)
    # 100 x 1 + 60 x 2 + 40 x 3 = 100 + 120 + 120 = 340 /1M
    assert total("openai", "ft:gpt-4o-mini:acme", usage) == Decimal("0.00034")
    with pytest.raises(ConfigurationError, match="'<provider>/<model>'"):
        pricing.set_price("gpt-4o", input="1", output="1")
    with pytest.raises(ConfigurationError, match="is not a number"):
        pricing.set_price("openai/x", input="cheap", output="1")


def test_a_prices_file_overrides_the_table(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "prices.json"
    path.write_text(json.dumps({"models": {"openai/gpt-4o-mini": [{"input": "0.000001", "output": "0.000001"}]}}))
    monkeypatch.setenv("LLMCLIENT_PRICES", str(path))
    price_table._table.cache_clear()
    assert total("openai", "gpt-4o-mini", Usage(input_tokens=10, output_tokens=10)) == Decimal("0.00002")
    path.write_text('{"models": {"openai/x": [{"input": "1"}]}}')
    price_table._table.cache_clear()
    with pytest.raises(ConfigurationError, match=r"LLMCLIENT_PRICES=.*prices\.json"):
        pricing.table_version()


def test_overlapping_buckets_have_no_exact_cost() -> None:
    # OpenRouter-Gemini can report the same tokens as cache read and write: uncached would be negative
    usage = Usage(input_tokens=100, cache_read_tokens=80, cache_write_tokens=80, output_tokens=5)
    assert total("gemini", "gemini-2.5-flash", usage) is None


def test_anthropic_batch_tier_reported_in_usage_is_priced_at_batch_prices() -> None:
    from llmclient.assemble import Assembler
    from llmclient.providers import REGISTRY

    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Paris."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 100, "service_tier": "batch"}}
    response = Assembler(REGISTRY["anthropic"], "claude-sonnet-4-5").response(json.dumps(body).encode(), 0.0)
    # batch: $1.50 in / $7.50 out per 1M: 1000 x 1.5 + 100 x 7.5 = 2250 /1M
    assert response.cost is not None and response.cost.total == Decimal("0.00225")
    assert response.cost.prices is not None and response.cost.prices.service_tier == "batch"


def test_a_service_tier_without_a_price_for_a_bucket_the_call_used_gives_no_cost() -> None:
    # gpt-4.1 on the Batch API: $1.00 in / $4.00 out per 1M (half of $2.00 / $8.00,
    # https://platform.openai.com/docs/pricing, "Batch"); the table has no batch price for cached input.
    plain = Usage(input_tokens=1_000_000, output_tokens=100_000)
    cost = pricing.cost("openai", "gpt-4.1", plain, service_tier="batch")
    assert cost is not None and cost.total == Decimal("1.40")  # 1M x $1.00/M + 100k x $4.00/M
    cached = Usage(input_tokens=1_000_000, cache_read_tokens=500_000, output_tokens=100_000)
    assert pricing.cost("openai", "gpt-4.1", cached, service_tier="batch") is None  # not the standard $0.50/M cached
    # The same call at the standard tier is priced: cached reads at $0.50/M.
    standard = pricing.cost("openai", "gpt-4.1", cached)
    assert standard is not None and standard.total == Decimal("2.05")  # 500k x 2 + 500k x 0.5 + 100k x 8, per 1M
