"""`draft_fixture` / `draft_all`: expected values drafted from a cassette's raw bodies agree with the
hand-written fixtures (written by a person from the same bodies and a published price)."""

from __future__ import annotations

import json
import shutil
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmclient import ConfigurationError
from llmclient.conformance.draft import draft_all, draft_fixture
from llmclient.conformance.scenarios import BY_NAME
from llmclient.conformance.targets import Target

REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes"
FIXTURES = REPO / "fixtures" / "conformance"
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-sonnet-4-5", "gemini": "gemini-2.5-flash",
          "groq": "llama-3.3-70b-versatile", "openrouter": "openai/gpt-4o-mini", "deepseek": "deepseek-chat",
          "mistral": "mistral-small-latest", "litellm": "openai/gpt-4o-mini"}
# The values a person writes from the cassette and a published price (not notes or citations).
INDEPENDENT = ("text", "finish_reason", "raw_finish_reason", "tool_calls", "usage", "cost", "cost_source",
               "error", "status_code", "retry_after", "deltas", "value", "retries", "price_tier", "computed_cost")

PAIRS = [
    ("openai", "text"),
    ("anthropic", "stream_text"),
    ("gemini", "tool_call"),
    ("openrouter", "text"),  # provider-reported cost (usage.cost)
    ("openai", "error_rate_limit"),
    ("anthropic", "tool_round_trip"),
    ("openai", "stream_tool_call"),  # streamed argument fragments, no text deltas
    ("openai", "retry_rate_limit"),  # a 429 then the answer: retries, wait from retry-after
    ("anthropic", "retry_server_error"),  # a 529 then the answer: wait from backoff
    ("anthropic", "billing_cache_write"),  # 1-hour cache writes at their own price
    ("gemini", "billing_tiered"),  # the long-context price tier
    ("gemini", "billing_reasoning"),  # thoughts inside output
    ("deepseek", "billing_cache_read"),
    ("openai", "structured_reask"),  # two attempts and the value
    ("gemini", "structured_native"),
    ("openai", "structured_prompted"),  # the value from fenced JSON in the text
    ("gemini", "stream_text"),  # Gemini's CRLF-framed SSE
    ("gemini", "image_url"),  # the client's GET of the image is not an answer
    ("litellm", "text"),
    ("anthropic", "error_overloaded"),
    ("gemini", "error_rate_limit"),  # retry delay in the body
    ("openai", "error_stream_event"),  # an error event inside a 200 stream
    ("anthropic", "error_truncated_stream"),
    ("deepseek", "error_malformed"),
    ("mistral", "error_context_window"),
]


def target(provider: str) -> Target:
    return Target(provider=provider, model=MODELS[provider])


def normal(key: str, value: Any) -> Any:
    return Decimal(value).normalize() if key in ("cost", "computed_cost") and value is not None else value


def differences(drafted: dict[str, Any], hand: dict[str, Any], where: str = "") -> list[str]:
    return [f"{where}{key}: drafted {drafted.get(key)!r}, hand-written {hand[key]!r}" for key in INDEPENDENT
            if key in hand and normal(key, drafted.get(key)) != normal(key, hand[key])]


@pytest.mark.parametrize(("provider", "scenario"), PAIRS, ids=[f"{p}-{s}" for p, s in PAIRS])
def test_draft_agrees_with_the_hand_written_fixture(provider: str, scenario: str, tmp_path: Path) -> None:
    written = draft_fixture(target(provider), BY_NAME[scenario], CASSETTES, tmp_path)
    assert written == tmp_path / provider / f"{scenario}.json"
    drafted = json.loads(written.read_text())
    hand = json.loads((FIXTURES / provider / f"{scenario}.json").read_text())
    assert list(drafted)[:2] == ["draft", "draft_note"] and drafted["draft"] is True
    assert f"cassettes/{provider}/{scenario}.yaml" in drafted["draft_note"]
    problems = differences(drafted, hand)
    wanted = hand.get("responses", [hand])
    got = drafted.get("responses", [drafted])
    assert len(got) == len(wanted), problems
    if "responses" in hand:
        for index, (one, want) in enumerate(zip(got, wanted)):
            problems += differences(one, want, f"response {index + 1}: ")
    assert not problems, "\n".join(problems)
    if "message_contains" in drafted:  # a prefix of the classified message; the hand-written one is part of it too
        assert drafted["message_contains"]


def test_a_cost_draft_cites_the_price_row_and_shows_the_arithmetic(tmp_path: Path) -> None:
    drafted = json.loads(draft_fixture(target("anthropic"), BY_NAME["billing_cache_write"], CASSETTES, tmp_path).read_text())
    assert "https://docs.anthropic.com/en/docs/about-claude/pricing" in drafted["source"]
    assert "as of 2026-11-24" in drafted["source"] and "no Date header: today" in drafted["source"]
    assert drafted["cost_formula"] == ("uncached input 17 x 0.000003 + 1-hour cache writes 1636 x 0.000006 + output 5 x "
                                       "0.000015 = 0.000051 + 0.009816 + 0.000075 = 0.009942")


def test_the_date_header_is_the_pricing_day(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    (cassettes / "openai").mkdir(parents=True)
    text = (CASSETTES / "openai" / "text.yaml").read_text()
    text = text.replace("      openai-processing-ms:", "      date:\n      - Mon, 24 Nov 2025 10:00:00 GMT\n      openai-processing-ms:")
    (cassettes / "openai" / "text.yaml").write_text(text)
    drafted = json.loads(draft_fixture(target("openai"), BY_NAME["text"], cassettes, tmp_path / "out").read_text())
    assert "priced on 2025-11-24 (the Date header)" in drafted["source"]
    assert drafted["cost"] == "0.00000435"


def test_an_existing_fixture_is_kept_unless_overwrite(tmp_path: Path) -> None:
    path = tmp_path / "openai" / "text.json"
    path.parent.mkdir()
    path.write_text('{"hand": "written"}')
    with pytest.raises(ConfigurationError, match="exists"):
        draft_fixture(target("openai"), BY_NAME["text"], CASSETTES, tmp_path)
    assert path.read_text() == '{"hand": "written"}'
    draft_fixture(target("openai"), BY_NAME["text"], CASSETTES, tmp_path, overwrite=True)
    assert json.loads(path.read_text())["draft"] is True


@pytest.mark.parametrize("content", ["interactions: [\n  - {request: ", "- just\n- a list\n", "interactions:\n- response: {}\n"],
                         ids=["not-yaml", "not-a-cassette", "no-status"])
def test_a_broken_cassette_is_refused_naming_the_file(content: str, tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "openai" / "text.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(content)
    with pytest.raises(ConfigurationError) as raised:
        draft_fixture(target("openai"), BY_NAME["text"], tmp_path / "cassettes", tmp_path / "fixtures")
    assert str(cassette) in raised.value.message
    assert not (tmp_path / "fixtures" / "openai" / "text.json").exists()


def test_an_undecodable_answer_is_refused_naming_the_file(tmp_path: Path) -> None:
    cassettes = tmp_path / "cassettes"
    (cassettes / "openai").mkdir(parents=True)
    shutil.copy(CASSETTES / "deepseek" / "error_malformed.yaml", cassettes / "openai" / "text.yaml")  # a 200 not JSON
    with pytest.raises(ConfigurationError, match="cannot be decoded") as raised:
        draft_fixture(target("openai"), BY_NAME["text"], cassettes, tmp_path / "fixtures")
    assert str(cassettes / "openai" / "text.yaml") in raised.value.message


def test_a_missing_cassette_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="no cassette at .*text.yaml"):
        draft_fixture(target("openai"), BY_NAME["text"], tmp_path, tmp_path / "fixtures")


def test_draft_all_says_what_it_wrote_and_why_it_skipped(tmp_path: Path) -> None:
    (tmp_path / "openai").mkdir()
    (tmp_path / "openai" / "system_prompt.json").write_text("{}")
    chosen = [BY_NAME[name] for name in ("text", "system_prompt", "file_unsupported_type", "billing_cache_write", "error_auth")]
    done = {(provider, scenario): what for provider, scenario, what in draft_all([target("openai")], chosen, CASSETTES, tmp_path)}
    assert done[("openai", "text")] == tmp_path / "openai" / "text.json"
    assert done[("openai", "error_auth")] == tmp_path / "openai" / "error_auth.json"
    assert "exists" in str(done[("openai", "system_prompt")])
    assert "makes no request" in str(done[("openai", "file_unsupported_type")])
    assert "capability not declared: cache_write" in str(done[("openai", "billing_cache_write")])
    assert json.loads((tmp_path / "openai" / "system_prompt.json").read_text()) == {}
    with pytest.raises(ConfigurationError, match="makes no request"):
        draft_fixture(target("openai"), BY_NAME["file_unsupported_type"], CASSETTES, tmp_path)
