"""The shipped price table against the issue's list of what was priced wrong: each call here is
priced by its own `created` timestamp (or time of day), on the dated rows built from litellm,
genai-prices and the overrides. Every expected dollar figure is hand-computed from the provider's
published price, cited beside it; none comes from pricing.py."""

from __future__ import annotations

import json
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any

import pytest

from llmclient import Usage, pricing
from llmclient.assemble import Assembler
from llmclient.providers import REGISTRY


pytestmark = pytest.mark.usefixtures("shipped_prices")


def noon(day: str) -> int:
    return int(datetime.fromisoformat(f"{day}T12:00:00+00:00").timestamp())


def answered(provider: str, model: str, created: int, prompt: int, completion: int, **usage: Any) -> Decimal | None:
    """The cost of an OpenAI-wire answer `created` then, decoded and priced as a call's would be."""
    body = {"id": "x", "object": "chat.completion", "model": model, "created": created,
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": prompt, "completion_tokens": completion, **usage}}
    response = Assembler(REGISTRY[provider], model).response(json.dumps(body).encode(), 0.0)
    return None if response.cost is None else response.cost.total


# --- historic calls priced at their own date ------------------------------------------------------------

def test_mistral_medium_latest_before_and_after_it_moved_to_medium_3_5() -> None:
    # Mistral Medium 3.1 (docs.mistral.ai/models/mistral-medium-3-1-25-08): $0.40 in / $2 out per 1M;
    # mistral-medium-latest -> Medium 3.5 on 2026-06-16 (docs.mistral.ai model card): $1.50 / $7.50.
    assert answered("mistral", "mistral-medium-latest", noon("2026-05-01"), 1000, 100) == Decimal("0.0006")  # 400 + 200
    assert answered("mistral", "mistral-medium-latest", noon("2026-07-01"), 1000, 100) == Decimal("0.00225")  # 1500 + 750


def test_openai_o3_before_and_after_its_price_cut() -> None:
    # o3 at launch (openai.com/index/introducing-o3-and-o4-mini, 2025-04-16): $10 in / $40 out per 1M;
    # cut by 80% on 2025-06-10 (platform.openai.com/docs/pricing): $2 / $8.
    assert answered("openai", "o3", noon("2025-05-01"), 1000, 100) == Decimal("0.014")  # 10,000 + 4,000
    assert answered("openai", "o3", noon("2025-07-01"), 1000, 100) == Decimal("0.0028")  # 2,000 + 800


def test_deepseek_r1_prices_and_its_off_peak_discount() -> None:
    # deepseek-reasoner, R1 (api-docs.deepseek.com/news/news250120): $0.55 in / $2.19 out per 1M;
    # off-peak 16:30-00:30 UTC from 2025-02-26 (news250226): 75% off, $0.135 / $0.55;
    # from 2025-09-29 (news250929): $0.28 / $0.42.
    usage = Usage(input_tokens=1_000_000, output_tokens=100_000)

    def at(moment: datetime) -> Decimal | None:
        cost = pricing.cost("deepseek", "deepseek-reasoner", usage, on=moment)
        return None if cost is None else cost.total

    assert at(datetime(2025, 3, 1, 12, 0, tzinfo=timezone.utc)) == Decimal("0.769")  # 0.55 + 0.219
    assert at(datetime(2025, 3, 1, 17, 0, tzinfo=timezone.utc)) == Decimal("0.19")  # 0.135 + 0.055
    assert at(datetime(2025, 10, 1, 17, 0, tzinfo=timezone.utc)) == Decimal("0.322")  # 0.28 + 0.042, no discount
    # deepseek-chat off-peak through an answer's `created` (news250226: V3 50% off, $0.135 / $0.55)
    off_peak = int(datetime(2025, 3, 1, 17, 0, tzinfo=timezone.utc).timestamp())
    assert answered("deepseek", "deepseek-chat", off_peak, 1_000_000, 100_000) == Decimal("0.19")


# --- built-in tool fees ---------------------------------------------------------------------------------

def test_anthropic_web_search_is_charged_ten_dollars_per_thousand() -> None:
    # claude-sonnet-4-5: $3 in / $15 out per 1M; web search $10 per 1,000 searches
    # (docs.anthropic.com/en/docs/about-claude/pricing); web fetch: tokens only.
    body = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "text", "text": "Sunny."}], "stop_reason": "end_turn",
            "usage": {"input_tokens": 1000, "output_tokens": 100,
                      "server_tool_use": {"web_search_requests": 2, "web_fetch_requests": 1}}}
    cost = Assembler(REGISTRY["anthropic"], "claude-sonnet-4-5").response(json.dumps(body).encode(), 0.0).cost
    assert cost is not None and cost.tools == Decimal("0.02") and cost.total == Decimal("0.0245")  # 0.0045 + 0.02


def test_gemini_grounding_is_charged_per_grounded_prompt() -> None:
    # gemini-2.5-flash: $0.30 in / $2.50 out per 1M; grounding with Google Search $35 per 1,000
    # grounded prompts beyond the free daily allowance (ai.google.dev/gemini-api/docs/pricing).
    body = {"candidates": [{"index": 0, "content": {"parts": [{"text": "Sunny."}], "role": "model"},
                            "finishReason": "STOP", "groundingMetadata": {"webSearchQueries": ["a", "b", "c"]}}],
            "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 100, "totalTokenCount": 1100},
            "modelVersion": "gemini-2.5-flash"}
    cost = Assembler(REGISTRY["gemini"], "gemini-2.5-flash").response(json.dumps(body).encode(), 0.0).cost
    assert cost is not None and cost.tools == Decimal("0.035") and cost.total == Decimal("0.03555")  # 0.00055 + 0.035


# --- retired models, priced as they were offered -------------------------------------------------------------

@pytest.mark.parametrize(("provider", "model", "day", "expected"), [
    # Groq deepseek-r1-distill-llama-70b (groq.com/pricing while offered): $0.75 / $0.99 per 1M
    ("groq", "deepseek-r1-distill-llama-70b", "2025-03-01", Decimal("0.000849")),  # 750 + 99
    # Groq llama3-8b-8192 (groq.com/pricing while offered): $0.05 / $0.08 per 1M
    ("groq", "llama3-8b-8192", "2025-03-01", Decimal("0.000058")),  # 50 + 8
    # Mistral pixtral-12b-2409 (docs.mistral.ai/models/pixtral-12b-24-09): $0.15 / $0.15 per 1M
    ("mistral", "pixtral-12b", "2025-03-01", Decimal("0.000165")),  # 150 + 15
    ("mistral", "pixtral-12b-2409", "2025-03-01", Decimal("0.000165")),
])
def test_retired_models_are_priced_as_they_were_offered(provider: str, model: str, day: str, expected: Decimal) -> None:
    assert answered(provider, model, noon(day), 1000, 100) == expected


def test_gemini_2_5_flash_image_is_priced_at_its_token_prices() -> None:
    # gemini-2.5-flash-image (ai.google.dev/gemini-api/docs/pricing): $0.30 in / $2.50 text out per 1M
    cost = pricing.cost("gemini", "gemini-2.5-flash-image", Usage(input_tokens=1000, output_tokens=100),
                        on=datetime(2025, 11, 1, tzinfo=timezone.utc))
    assert cost is not None and cost.total == Decimal("0.00055")  # 300 + 250
