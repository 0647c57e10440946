"""The catalogue at run time (`llmclient.models`), `select_model`, `ModelAdvisor` and
`llmclient models list|info|select|recommend`.

Expected figures are the providers' published limits and prices, cited where used, and hand
computations on them — never values read back from the code under test.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from datetime import date
from decimal import Decimal
from pathlib import Path

import pytest

from llmclient import (
    Client,
    ComplexityAssessment,
    InvalidRequestError,
    ModelAdvisor,
    models,
    pricing,
    select_model,
)
from llmclient.cli import main
from llmclient.providers import REGISTRY
from llmclient.testing import MockProvider


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Selection looks at which keys are set: start from none."""
    for spec in REGISTRY.values():
        monkeypatch.delenv(spec.api_key_env, raising=False)
    monkeypatch.delenv("LLMCLIENT_ADVISOR_MODEL", raising=False)


def run(*argv: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = main(list(argv))
    return code, capsys.readouterr().out


# --- info --------------------------------------------------------------------------------------------

def test_info_gives_the_published_limits_and_prices() -> None:
    # https://platform.openai.com/docs/models/gpt-4o-mini: 128,000 context, 16,384 max output,
    # text and image input, function calling, structured outputs; $0.15 / $0.60 per 1M tokens.
    info = models.info("openai/gpt-4o-mini")
    assert info is not None
    assert (info.context_window, info.max_output_tokens) == (128_000, 16_384)
    assert info.vision is True and info.tools is True and info.structured_output is True
    assert (info.input_price, info.output_price) == (Decimal("0.15"), Decimal("0.6"))


def test_a_dated_snapshot_and_a_router_name_resolve_to_the_model() -> None:
    snapshot = models.info("openai/gpt-4o-mini-2024-07-18")
    routed = models.info("openrouter/openai/gpt-4o-mini")
    assert snapshot is not None and routed is not None
    assert snapshot.context_window == routed.context_window == 128_000
    assert routed.model == "openrouter/openai/gpt-4o-mini"


def test_a_name_without_its_provider_is_refused_with_the_provider_to_add() -> None:
    with pytest.raises(InvalidRequestError, match="did you mean openai/gpt-4o-mini"):
        models.info("gpt-4o-mini")


# --- list ---------------------------------------------------------------------------------------------

def test_list_filters_by_provider_capability_context_and_price() -> None:
    found = models.list_models(provider="openai", supports=["vision", "tools"], min_context=100_000,
                               max_input_price="1.0")
    names = {info.key for info in found}
    assert "openai/gpt-4o-mini" in names  # $0.15 in, 128k, vision and tools
    assert "openai/gpt-4o" not in names  # $2.50 per 1M input (https://platform.openai.com/docs/pricing)
    assert "openai/gpt-3.5-turbo" not in names  # no image input, 16,385 context
    assert all(info.input_price is not None and info.input_price <= 1 for info in found)
    assert [info.input_price for info in found] == sorted(info.input_price or 0 for info in found)


def test_an_unknown_capability_names_the_valid_ones() -> None:
    with pytest.raises(InvalidRequestError, match="unknown capability 'vison'; valid capabilities: vision, pdf"):
        models.list_models(supports=["vison"])


def test_models_list_prints_a_table_and_json(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("models", "list", "--provider", "openai", "--supports", "vision,tools", "--min-context", "100k",
                    "--max-input-price", "1.0", capsys=capsys)
    assert code == 0
    header, *rows = out.splitlines()
    assert header.split()[:3] == ["model", "context", "max"]
    row = next(line for line in rows if line.split()[0] == "openai/gpt-4o-mini")
    assert "128,000" in row and "16,384" in row and "$0.15" in row
    code, out = run("models", "list", "--provider", "openai", "--supports", "vision", "--json", capsys=capsys)
    listed = {entry["key"]: entry for entry in json.loads(out)}
    assert listed["openai/gpt-4o-mini"]["context_window"] == 128_000
    assert listed["openai/gpt-4o-mini"]["input_price"] == "0.15"


def test_models_list_refuses_a_bad_size(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["models", "list", "--min-context", "lots"])
    assert "not a token count" in capsys.readouterr().err


def test_models_info_prints_one_model(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("models", "info", "anthropic/claude-sonnet-4-5", capsys=capsys)
    # https://docs.anthropic.com/en/docs/about-claude/models/overview: 200K context, 64,000 max output.
    assert code == 0 and "200,000" in out and "64,000" in out
    code, out = run("models", "info", "openai/not-a-model", capsys=capsys)
    assert code == 1 and "not in the model catalogue" in out


# --- select_model ---------------------------------------------------------------------------------------

def test_select_ranks_by_estimated_cost_per_call() -> None:
    picked = select_model(capabilities=["vision"], expected_input_tokens=1_000, expected_output_tokens=500,
                          providers=["openai"], include_unkeyed=True)
    by_model = {c.model: c for c in picked.ranked}
    # gpt-4o-mini: 1,000 x $0.15/1M + 500 x $0.60/1M = $0.00015 + $0.0003 (https://platform.openai.com/docs/pricing)
    assert by_model["openai/gpt-4o-mini"].estimated_cost == Decimal("0.00045")
    # gpt-4o: 1,000 x $2.50/1M + 500 x $10/1M = $0.0075
    assert by_model["openai/gpt-4o"].estimated_cost == Decimal("0.0075")
    costs = [c.estimated_cost for c in picked.ranked if c.estimated_cost is not None]
    assert costs == sorted(costs)
    assert picked.ranked[0].why[0].startswith("#1 by cost: meets every requirement")


def test_select_says_why_a_model_is_excluded() -> None:
    picked = select_model(budget_per_call="0.0004", min_context=200_000, capabilities=["vision"],
                          expected_input_tokens=1_000, expected_output_tokens=500, providers=["openai"])
    excluded = {c.model: c.why for c in picked.excluded}
    why = excluded["openai/gpt-4o-mini"]
    assert "no key: OPENAI_API_KEY is not set (include_unkeyed=True lists it anyway)" in why
    assert "context window 128,000 < 200,000 tokens" in why
    assert "estimated $0.00045 per call > budget $0.0004" in why
    assert "openai/gpt-4o-mini" not in {c.model for c in picked.ranked}


def test_select_only_offers_models_whose_key_is_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GEMINI_API_KEY", "test-key")
    picked = select_model(capabilities=["tools"])
    assert picked.ranked and {c.info.provider for c in picked.ranked} == {"gemini"}


def test_free_models_are_candidates_only_when_asked() -> None:
    # Gemma on the Gemini API is free of charge (https://ai.google.dev/gemini-api/docs/pricing#gemma-3)
    free = "gemini/gemma-3-27b-it"
    row = pricing.row_for(free)
    assert row is not None and row.prices["input"] == 0
    default = select_model(providers=["gemini"], include_unkeyed=True)
    assert "priced $0: a free, experimental or preview offer (include_free=True considers it)" in \
        {c.model: c.why for c in default.excluded}[free]
    assert free in {c.model for c in select_model(providers=["gemini"], include_unkeyed=True, include_free=True).ranked}


def test_a_dated_snapshot_is_folded_into_its_name() -> None:
    ranked = [c.model for c in select_model(providers=["openai"], include_unkeyed=True).ranked]
    assert "openai/gpt-5-nano" in ranked and "openai/gpt-5-nano-2025-08-07" not in ranked


def test_a_shutdown_date_only_litellm_gives_does_not_exclude() -> None:
    picked = select_model(providers=["anthropic"], include_unkeyed=True, on=date(2026, 12, 5))
    sonnet = {c.model: c for c in picked.ranked}["anthropic/claude-sonnet-4-5"]  # litellm: 2026-11-30
    assert "litellm's map gives 2026-11-30 as its shutdown date" in sonnet.why[0]


def test_select_excludes_retired_models() -> None:
    picked = select_model(providers=["anthropic"], include_unkeyed=True)
    retired = {c.model: c.why for c in picked.excluded}["anthropic/claude-3-5-sonnet-20241022"]
    assert "retired on 2025-10-22" in retired  # https://docs.anthropic.com/en/docs/about-claude/model-deprecations


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"budget_per_call": -1}, "budget_per_call must be USD per call >= 0"),
    ({"budget_per_call": "a lot"}, "budget_per_call must be USD per call >= 0"),
    ({"capabilities": ["telepathy"]}, "unknown capability 'telepathy'; valid capabilities: vision, pdf, audio"),
    ({"prefer": "vibes"}, "prefer must be one of cost, speed, quality"),
    ({"min_context": -5}, "min_context must be a number of tokens >= 0"),
    ({"expected_output_tokens": 1.5}, "expected_output_tokens must be a number of tokens >= 0"),
    ({"providers": ["openia"]}, "unknown provider"),
])
def test_bad_requirements_get_a_typed_error_listing_valid_values(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(InvalidRequestError, match=message.replace("(", r"\(")):
        select_model(**kwargs)  # type: ignore[arg-type]


def test_speed_and_quality_orders_follow_their_stated_rules() -> None:
    fast = select_model(prefer="speed", include_unkeyed=True, providers=["groq", "openai"])
    assert fast.ranked[0].info.provider == "groq"  # own inference hardware first
    assert "speed rule" in fast.ranked[0].why[0]
    best = select_model(prefer="quality", include_unkeyed=True, providers=["openai"]).ranked[0]
    assert best.info.reasoning is True and "a reasoning model" in best.why[0]


def test_models_select_cli(capsys: pytest.CaptureFixture[str]) -> None:
    code, out = run("models", "select", "--supports", "vision", "--all", "--budget", "0.001", "--json", capsys=capsys)
    data = json.loads(out)
    assert code == 0 and data["ranked"] and all(Decimal(row["estimated_cost"]) <= Decimal("0.001") for row in data["ranked"])
    code, out = run("models", "select", "--prefer", "vibes", capsys=capsys)
    assert code == 2


# --- the advisor ------------------------------------------------------------------------------------------

@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


@pytest.fixture
def priced_assessor() -> Iterator[str]:
    pricing.set_price("mock/assessor", input="0.0000001", output="0.0000004")  # $0.10 / $0.40 per 1M
    yield "mock/assessor"
    from llmclient import price_table

    price_table._user_rows.pop("mock/assessor", None)
    price_table._table.cache_clear()


ASSESSMENT = {"complexity": "moderate", "needs_reasoning": False, "needs_vision": False, "needs_pdf": True,
              "expected_input_tokens": 30_000, "expected_output_tokens": 800,
              "rationale": "50 pages of PDF in, a one-page summary out"}


def test_the_advisor_asks_a_cheap_model_and_reports_what_that_cost(mock: MockProvider, priced_assessor: str) -> None:
    mock.reply(json.dumps(ASSESSMENT), input_tokens=400, output_tokens=90)
    advisor = ModelAdvisor(client=Client(priced_assessor), include_unkeyed=True)
    advice = advisor.recommend_model_for_task("summarise 50-page PDFs", budget_per_request=0.01)
    assert advice.assessment.assessment == ComplexityAssessment(**ASSESSMENT)
    assert advice.assessment.assessed_by == "mock/assessor"
    # 400 x $0.10/1M + 90 x $0.40/1M = $0.00004 + $0.000036
    assert advice.assessment_cost == Decimal("0.000076")
    assert advice.best is not None and advice.best.info.pdf is True
    assert advice.best.estimated_cost is not None and advice.best.estimated_cost <= Decimal("0.01")
    # the pick is priced for the assessment's tokens: 30,000 in, 800 out
    row = pricing.row_for(advice.best.model)
    assert row is not None
    assert advice.best.estimated_cost == 30_000 * row.prices["input"] + 800 * row.prices["output"]
    assert advice.saving is not None and advice.saving >= 0
    asked = mock.requests[0]
    assert asked["response_format"]["json_schema"]["name"] == "ComplexityAssessment"
    assert "summarise 50-page PDFs" in asked["messages"][-1]["content"]


def test_a_reasoning_task_requires_a_reasoning_model(mock: MockProvider) -> None:
    mock.reply(json.dumps({**ASSESSMENT, "complexity": "complex", "needs_reasoning": True, "needs_pdf": False,
                           "expected_input_tokens": 2_000}))
    advice = ModelAdvisor(client=Client("mock/any"), include_unkeyed=True).recommend_model_for_task(
        "prove this lemma", budget_per_request=0.05)
    assert advice.best is not None and advice.best.info.reasoning is True
    assert advice.assessment.cost is None  # the mock model has no price: unknown, not $0


def test_without_a_client_the_assessment_is_labelled_rules() -> None:
    advice = ModelAdvisor(providers=["openai"], include_unkeyed=True).recommend_model_for_task("summarise 50-page PDFs", 0.01)
    assert advice.assessment.assessed_by == "rules"
    assert advice.assessment.assessment.expected_input_tokens == 30_000  # 50 pages x 600 tokens
    assert advice.assessment.assessment.needs_pdf is True and advice.assessment.cost is None
    # OpenAI's prices (https://platform.openai.com/docs/pricing), for 30,000 tokens in and 600 out:
    # gpt-5-nano $0.05 / $0.40 per 1M: 0.0015 + 0.00024; gpt-5-mini $0.25 / $2: 0.0075 + 0.0012.
    assert advice.best is not None and (advice.best.model, advice.best.estimated_cost) == ("openai/gpt-5-nano", Decimal("0.00174"))
    assert advice.baseline is not None and advice.baseline.estimated_cost == Decimal("0.0087")
    assert advice.baseline.info.reasoning is True and advice.baseline.info.output_price == 2
    assert advice.saving == Decimal("0.00696")


def test_a_fast_response_ranks_by_speed_and_input_text_sets_the_size() -> None:
    advice = ModelAdvisor(providers=["groq", "openai"], include_unkeyed=True).recommend_model_for_task(
        "classify support tickets by topic", response_time_requirement="fast", input_text=" hello" * 1_000)
    assert advice.best is not None and advice.best.info.provider == "groq"
    assert advice.why[2] == "ranked by speed (a fast response was asked)"
    assert "about 1,500 tokens in" in advice.why[1]  # 6,000 bytes at 4 bytes a token


def test_token_requirements_add_the_schema_and_the_output() -> None:
    needs = ModelAdvisor().estimate_token_requirements("one two three", "short", "simple")
    assert needs.output_tokens == 150 + 40 and needs.schema_tokens == 120
    assert needs.input_tokens == needs.input.tokens + 120
    with pytest.raises(InvalidRequestError, match="expected_output_length must be"):
        ModelAdvisor().estimate_token_requirements("x", -3)


def test_the_capabilities_matrix_has_a_row_per_model() -> None:
    matrix = {row["model"]: row for row in ModelAdvisor().get_model_capabilities_matrix(provider="openai")}
    assert matrix["openai/gpt-4o-mini"]["vision"] is True and matrix["openai/gpt-3.5-turbo"]["vision"] is False


def test_models_recommend_cli_without_a_key_uses_rules(capsys: pytest.CaptureFixture[str]) -> None:
    assert not any(os.environ.get(spec.api_key_env) for spec in REGISTRY.values())
    code, out = run("models", "recommend", "summarise 50-page PDFs", "--budget", "0.01", "--all", capsys=capsys)
    assert code == 0
    assert "recommended: " in out and "assessment by rules" in out


# --- the documented examples run, offline ------------------------------------------------------------

@pytest.mark.parametrize("example", ["select_model.py", "model_advisor.py"])
def test_the_documented_examples_run(example: str) -> None:
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if not any(k == s.api_key_env for s in REGISTRY.values())}
    path = Path(__file__).resolve().parent.parent / "examples" / example
    result = subprocess.run([sys.executable, str(path)], capture_output=True, text=True, timeout=120, env=env)
    assert result.returncode == 0, result.stderr
    if example == "select_model.py":
        # gpt-4o: 3,000 x $2.50/1M + 500 x $10/1M = $0.0125 (https://platform.openai.com/docs/pricing)
        assert "openai/gpt-4o is out: estimated $0.0125 per call > budget $0.002" in result.stdout
    else:
        assert "recommended: " in result.stdout and "assessed by rules" in result.stdout


def test_a_key_only_in_dotenv_counts_as_set(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.config import reset_config

    dotenv = tmp_path / ".env"
    dotenv.write_text("GEMINI_API_KEY=test-key-from-dotenv\n")
    monkeypatch.setenv("LLMCLIENT_ENV_FILE", str(dotenv))
    reset_config()
    try:
        picked = select_model(capabilities=["tools"])
    finally:
        monkeypatch.delenv("LLMCLIENT_ENV_FILE")
        reset_config()
    assert picked.ranked and {c.info.provider for c in picked.ranked} == {"gemini"}
