"""When and what a call is billed for: the moment it is priced at (the answer's own `created`
timestamp, else its Date header), time-of-day prices, built-in tool fees as their own cost line,
OpenRouter BYOK spend, and the Client's base_url choosing the Hugging Face router's upstream.

Every expected figure is hand-computed from the provider's published price, cited beside it; the
mechanism tests use price rows written here (a prices file), not the shipped table."""

from __future__ import annotations

import json
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmclient import Client, ProviderSpec, Usage, price_table, pricing, register_provider, transport
from llmclient.assemble import Assembler
from llmclient.providers import REGISTRY

SEPT_17_2025 = 1758143653  # 2025-09-17 21:14:13 UTC, as a `created` field carries it


pytestmark = pytest.mark.usefixtures("shipped_prices")


@pytest.fixture
def rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Price rows for this test only (through LLMCLIENT_PRICES, as a user would add them)."""
    def use(models: dict[str, list[dict[str, Any]]]) -> None:
        path = tmp_path / "prices.json"
        path.write_text(json.dumps({"models": models}))
        monkeypatch.setenv("LLMCLIENT_PRICES", str(path))
        price_table._table.cache_clear()
    return use


def openai_body(model: str, prompt: int, completion: int, **extra: Any) -> bytes:
    return json.dumps({"id": "chatcmpl-1", "object": "chat.completion", "model": model, **extra,
                       "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris."},
                                    "finish_reason": "stop"}],
                       "usage": {"prompt_tokens": prompt, "completion_tokens": completion,
                                 "total_tokens": prompt + completion}}).encode()


# --- the moment a call is priced at ----------------------------------------------------------------

TWO_PERIODS = {"openai/moving-model": [
    {"from": None, "to": "2025-09-30", "input": "0.000002", "output": "0.000008", "source": "test", "as_of": "2026-12-05"},
    {"from": "2025-10-01", "to": None, "input": "0.000001", "output": "0.000004", "source": "test", "as_of": "2026-12-05"},
]}


def test_the_answers_created_timestamp_picks_the_row_in_force_then(rows: Any) -> None:
    rows(TWO_PERIODS)
    assembler = Assembler(REGISTRY["openai"], "moving-model")
    then = assembler.response(openai_body("moving-model", 1000, 100, created=SEPT_17_2025), 0.0)
    # 2025-09-17 is in the first period: 1000 x $2 + 100 x $8 per 1M = $0.0028
    assert then.cost is not None and then.cost.total == Decimal("0.0028")
    today = assembler.response(openai_body("moving-model", 1000, 100), 0.0)
    # no timestamp: priced now, in the second period: 1000 x $1 + 100 x $4 per 1M = $0.0014
    assert today.cost is not None and today.cost.total == Decimal("0.0014")


def test_created_wins_over_the_date_header_and_the_header_over_now(rows: Any) -> None:
    rows(TWO_PERIODS)
    assembler = Assembler(REGISTRY["openai"], "moving-model")
    late = datetime(2025, 12, 1, tzinfo=timezone.utc)  # a Date header in the second period
    both = assembler.response(openai_body("moving-model", 1000, 100, created=SEPT_17_2025), 0.0, late)
    assert both.cost is not None and both.cost.total == Decimal("0.0028")  # created: first period
    early = datetime(2025, 9, 1, tzinfo=timezone.utc)
    header = assembler.response(openai_body("moving-model", 1000, 100), 0.0, early)
    assert header.cost is not None and header.cost.total == Decimal("0.0028")  # the header: first period
    zero = assembler.response(openai_body("moving-model", 1000, 100, created=0), 0.0, early)
    assert zero.cost is not None and zero.cost.total == Decimal("0.0028")  # created 0 says nothing: the header


def test_a_streams_created_timestamp_prices_it_too(rows: Any) -> None:
    from llmclient.assemble import StreamAssembly

    rows(TWO_PERIODS)
    assembly = StreamAssembly(Assembler(REGISTRY["openai"], "moving-model"), 0.0)
    head = {"id": "c", "object": "chat.completion.chunk", "created": SEPT_17_2025, "model": "moving-model"}
    for chunk in ({**head, "choices": [{"index": 0, "delta": {"content": "Paris."}, "finish_reason": "stop"}]},
                  {**head, "choices": [], "usage": {"prompt_tokens": 1000, "completion_tokens": 100}}):
        assembly.feed(b"data: " + json.dumps(chunk).encode() + b"\n\n")
    assembly.feed(b"data: [DONE]\n\n")
    response = assembly.finish()
    assert response.cost is not None and response.cost.total == Decimal("0.0028")


def test_time_of_day_prices_apply_inside_their_window_even_across_midnight(rows: Any) -> None:
    # DeepSeek's off-peak discount (api-docs.deepseek.com/quick_start/pricing, until 2025-09-05):
    # 16:30-00:30 UTC, deepseek-chat at half price ($0.27 -> $0.135 in, $1.10 -> $0.55 out per 1M).
    rows({"deepseek/off-peak-model": [{
        "from": None, "to": None, "input": "0.00000027", "output": "0.0000011", "source": "test", "as_of": "2026-12-05",
        "time_of_day": [{"start": "16:30", "end": "00:30", "input": "0.000000135", "output": "0.00000055"}]}]})
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)

    def at(hour: int, minute: int) -> Decimal | None:
        cost = pricing.cost("deepseek", "off-peak-model", usage, on=datetime(2025, 3, 1, hour, minute, tzinfo=timezone.utc))
        return None if cost is None else cost.total

    assert at(12, 0) == Decimal("0.38")  # peak: 1M x 0.27 + 100k x 1.10, /1M
    assert at(16, 29) == Decimal("0.38")
    assert at(16, 30) == Decimal("0.19")  # off-peak: 1M x 0.135 + 100k x 0.55, /1M
    assert at(23, 59) == Decimal("0.19")
    assert at(0, 29) == Decimal("0.19")  # after midnight, still inside
    assert at(0, 30) == Decimal("0.38")  # the end is exclusive
    cost = pricing.cost("deepseek", "off-peak-model", usage, on=datetime(2025, 3, 1, 17, 0, tzinfo=timezone.utc))
    assert cost is not None and cost.prices is not None and cost.prices.time_of_day == "16:30-00:30 UTC"
    # a call in another zone is placed in UTC first: 18:00 in UTC+2 is 16:00 UTC, peak
    from datetime import timedelta
    plus_two = datetime(2025, 3, 1, 18, 0, tzinfo=timezone(timedelta(hours=2)))
    assert pricing.cost("deepseek", "off-peak-model", usage, on=plus_two).total == Decimal("0.38")  # type: ignore[union-attr]


# --- built-in tool fees ------------------------------------------------------------------------------

def test_a_tool_fee_is_its_own_cost_line_and_an_unknown_fee_gives_no_cost(rows: Any) -> None:
    rows({"anthropic/tool-model": [{"from": None, "to": None, "input": "0.000003", "output": "0.000015",
                                    "tool_fees": {"web_search": "0.01"}, "source": "test", "as_of": "2026-12-05"}],
          "anthropic/no-fee-model": [{"from": None, "to": None, "input": "0.000003", "output": "0.000015",
                                      "source": "test", "as_of": "2026-12-05"}]})
    searched = Usage(input_tokens=1000, output_tokens=100, tool_uses={"web_search": 3, "web_fetch": 0})
    cost = pricing.cost("anthropic", "tool-model", searched)
    # 1000 x $3 + 100 x $15 per 1M = $0.0045 in tokens; 3 searches x $10 per 1,000 = $0.03
    assert cost is not None and cost.tools == Decimal("0.03") and cost.total == Decimal("0.0345")
    assert cost.prices is not None and cost.prices.tool_fees == {"web_search": Decimal("0.01")}
    assert pricing.cost("anthropic", "no-fee-model", searched) is None  # a search ran, its fee is unknown: no total
    plain = pricing.cost("anthropic", "no-fee-model", Usage(input_tokens=1000, output_tokens=100))
    assert plain is not None and plain.tools == 0 and plain.total == Decimal("0.0045")


def test_a_tool_without_a_fee_beside_one_with_a_fee_still_gives_no_cost(rows: Any) -> None:
    rows({"anthropic/tool-model": [{"from": None, "to": None, "input": "0.000003", "output": "0.000015",
                                    "tool_fees": {"web_search": "0.01"}, "source": "test", "as_of": "2026-12-05"}]})
    both = Usage(input_tokens=1000, output_tokens=100, tool_uses={"web_search": 1, "code_execution": 1})
    assert pricing.cost("anthropic", "tool-model", both) is None  # the code execution's charge is unknown


def test_a_grounded_answer_is_billed_in_the_one_unit_its_row_prices(rows: Any) -> None:
    # Gemini 2.x bills per grounded prompt ($35 per 1,000), Gemini 3 per search query ($14 per 1,000)
    # (ai.google.dev/gemini-api/docs/pricing); an answer counts both, the row charges one.
    per_prompt = {"from": None, "to": None, "input": "0.0000003", "output": "0.0000025",
                  "tool_fees": {"grounded_prompt": "0.035"}, "source": "test", "as_of": "2026-12-05"}
    per_query = {**per_prompt, "tool_fees": {"web_search": "0.014"}}
    rows({"gemini/per-prompt": [per_prompt], "gemini/per-query": [per_query]})
    grounded = Usage(input_tokens=1000, output_tokens=100, tool_uses={"web_search": 3, "grounded_prompt": 1})
    # tokens: 1000 x $0.30 + 100 x $2.50 per 1M = $0.00055
    assert pricing.cost("gemini", "per-prompt", grounded).total == Decimal("0.03555")  # type: ignore[union-attr]  # + 0.035
    assert pricing.cost("gemini", "per-query", grounded).total == Decimal("0.04255")  # type: ignore[union-attr]  # + 3 x 0.014


def test_anthropic_web_searches_are_counted_from_the_usage_block() -> None:
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 100,
                      "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 0}}}
    response = Assembler(REGISTRY["anthropic"], "claude-sonnet-4-5").response(json.dumps(body).encode(), 0.0)
    assert response.usage is not None and response.usage.tool_uses == {"web_search": 2}


def test_gemini_grounding_is_counted_once_per_prompt_and_per_distinct_query() -> None:
    chunk = {"candidates": [{"index": 0, "content": {"parts": [{"text": "Sunny."}], "role": "model"},
                             "finishReason": "STOP",
                             "groundingMetadata": {"webSearchQueries": ["weather sf", "sf forecast"]}}],
             "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
             "modelVersion": "gemini-2.5-flash"}
    response = Assembler(REGISTRY["gemini"], "gemini-2.5-flash").response(json.dumps(chunk).encode(), 0.0)
    assert response.usage is not None and response.usage.tool_uses == {"web_search": 2, "grounded_prompt": 1}


def test_groq_compound_is_priced_per_model_that_ran_plus_its_searches(rows: Any) -> None:
    # Groq's prices (groq.com/pricing): llama-3.3-70b-versatile $0.59 in / $0.79 out per 1M; basic
    # web search $5 per 1,000 requests (written here as the test's row for groq/groq/compound).
    rows({"groq/groq/compound": [{"from": None, "to": None, "input": "0", "output": "0", "tool_fees": {"web_search": "0.005"},
                             "source": "test", "as_of": "2026-12-05"}],
          "groq/llama-3.3-70b-versatile": [{"from": None, "to": None, "input": "0.00000059", "output": "0.00000079",
                                            "source": "test", "as_of": "2026-12-05"}]})
    body = {"id": "c", "object": "chat.completion", "model": "groq/compound", "created": SEPT_17_2025,
            "choices": [{"index": 0, "finish_reason": "stop", "message": {
                "role": "assistant", "content": "Sunny.",
                "executed_tools": [{"index": 0, "type": "search", "arguments": "{}"}]}}],
            "usage": {"prompt_tokens": 3000, "completion_tokens": 300},
            "usage_breakdown": {"models": [
                {"model": "llama-3.3-70b-versatile", "usage": {"prompt_tokens": 1000, "completion_tokens": 100}},
                {"model": "llama-3.3-70b-versatile", "usage": {"prompt_tokens": 2000, "completion_tokens": 200}}]}}
    response = Assembler(REGISTRY["groq"], "groq/compound").response(json.dumps(body).encode(), 0.0)
    assert response.usage is not None and response.usage.tool_uses == {"web_search": 1}
    # 3000 x $0.59 + 300 x $0.79 per 1M = $0.002007; one search $0.005
    assert response.cost is not None and response.cost.tools == Decimal("0.005")
    assert response.cost.total == Decimal("0.007007")
    assert response.cost.prices is not None and response.cost.prices.tool_fees == {"web_search": Decimal("0.005")}
    # a breakdown that does not add up to the billed usage has no exact figure
    body["usage"] = {"prompt_tokens": 9999, "completion_tokens": 300}
    assert Assembler(REGISTRY["groq"], "groq/compound").response(json.dumps(body).encode(), 0.0).cost is None


# --- what the provider reports it charged --------------------------------------------------------------

def test_openrouter_byok_spend_is_its_fee_plus_the_upstream_charge() -> None:
    # openrouter.ai/docs/use-cases/usage-accounting: with BYOK, `cost` is OpenRouter's fee and
    # `cost_details.upstream_inference_cost` what the upstream provider charged the key.
    usage = Usage(input_tokens=1000, output_tokens=100)
    raw = {"prompt_tokens": 1000, "completion_tokens": 100, "cost": 0, "is_byok": True,
           "cost_details": {"upstream_inference_cost": 0.00045}}
    cost = pricing.cost("openrouter", "openai/gpt-4o-mini", usage, raw)
    assert cost is not None and cost.source == "provider" and cost.total == Decimal("0.00045")
    # gpt-4o-mini at $0.15 / $0.60 per 1M (platform.openai.com/docs/pricing): 150 + 60 = $0.00021
    assert cost.computed_total == Decimal("0.00021")
    without = pricing.cost("openrouter", "openai/gpt-4o-mini", usage, {**raw, "cost_details": {}})
    assert without is not None and without.source == "price-table"  # BYOK with no upstream figure: ours


def test_openrouter_dotted_claude_names_are_priced_at_anthropics_rate() -> None:
    # claude-sonnet-4.5 on OpenRouter passes Anthropic's price through: $3 in / $15 out per 1M
    # (docs.anthropic.com/en/docs/about-claude/pricing)
    usage = Usage(input_tokens=1000, output_tokens=100)
    for name in ("anthropic/claude-sonnet-4.5", "anthropic/claude-4.5-sonnet"):
        cost = pricing.cost("openrouter", name, usage)
        assert cost is not None and cost.total == Decimal("0.0045"), name


# --- the Hugging Face router: the Client's base_url names the upstream ----------------------------------

def test_the_clients_base_url_decides_the_hugging_face_upstream(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.providers import unregister_provider

    assert "huggingface" not in REGISTRY
    register_provider(ProviderSpec(name="huggingface", base_url="https://router.huggingface.co/together/v1",
                                   api_key_env="HF_TOKEN"), replace=True)
    sent: list[str] = []

    def answer(request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        sent.append(str(request.url))
        return httpx.Response(200, json=json.loads(openai_body("Qwen/Qwen2.5-VL-72B-Instruct", 269, 27)), request=request)

    monkeypatch.setattr(transport, "interceptor", answer)
    try:
        client = Client("huggingface/Qwen/Qwen2.5-VL-72B-Instruct", api_key="hf_test",
                        base_url="https://router.huggingface.co/nebius/v1")
        response = client.complete("What is in the picture?")
    finally:
        unregister_provider("huggingface")
    assert sent == ["https://router.huggingface.co/nebius/v1/chat/completions"]
    # Nebius (tokenfactory.nebius.com, Qwen2.5-VL-72B-Instruct): $0.25 in / $0.75 out per 1M:
    # 269 x 0.25 + 27 x 0.75 = 87.5 per 1M. (Together's rate, $1.95 / $8, would be $0.00074055.)
    assert response.cost is not None and response.cost.total == Decimal("0.0000875")
    assert response.cost.prices is not None and response.cost.prices.model == "nebius/Qwen/Qwen2.5-VL-72B-Instruct"


def test_a_date_alone_prices_without_time_of_day(rows: Any) -> None:
    rows(TWO_PERIODS)
    cost = pricing.cost("openai", "moving-model", Usage(input_tokens=1000, output_tokens=100), on=date(2025, 9, 17))
    assert cost is not None and cost.total == Decimal("0.0028")


# --- llmclient models prices ------------------------------------------------------------------------------

def prices_cli(capsys: pytest.CaptureFixture[str], *arguments: str) -> tuple[int, str]:
    from llmclient.cli import main

    code = main(["models", "prices", *arguments])
    return code, capsys.readouterr().out


def test_a_bare_model_name_resolves_or_asks_which_provider(rows: Any, capsys: pytest.CaptureFixture[str]) -> None:
    row = {"from": "2025-03-01", "to": None, "input": "0.000001", "output": "0.000002", "source": "test", "as_of": "2026-12-05"}
    rows({"openai/only-here-model": [row], "openai/twice-model": [row], "azure/twice-model": [row]})
    code, out = prices_cli(capsys, "only-here-model")
    assert code == 0 and out.startswith("only-here-model -> openai/only-here-model")
    assert "input $1, output $2  (USD per 1M tokens)" in out
    code, out = prices_cli(capsys, "twice-model")
    assert code == 1 and "did you mean openai/twice-model? (also priced: azure/twice-model)" in out
    code, out = prices_cli(capsys, "openai/only-here-modle")  # a typo
    assert code == 1 and "did you mean openai/only-here-model?" in out


def test_a_date_before_the_models_first_price_says_so(rows: Any, capsys: pytest.CaptureFixture[str]) -> None:
    rows({"openai/young-model": [{"from": "2025-03-01", "to": None, "input": "0.000001", "output": "0.000002",
                                  "source": "test", "as_of": "2026-12-05"}]})
    code, out = prices_cli(capsys, "openai/young-model", "--on", "2025-02-28")
    assert code == 1 and "no price on 2025-02-28: its first price is from 2025-03-01" in out
    code, out = prices_cli(capsys, "openai/young-model", "--on", "2025-03-01")
    assert code == 0 and "(in force 2025-03-01 .. now)" in out
