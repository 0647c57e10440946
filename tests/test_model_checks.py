"""What the model catalogue refuses before a request: each check raises with zero requests sent
(a counting interceptor stands where the network would be), and what it lets through is sent.

Limits and capabilities below are the providers' published figures, cited where used; the checks
read them from the shipped catalogue (llmclient/data/models.json).
"""

from __future__ import annotations

import json
import warnings
from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmclient import (
    Client,
    ContextWindowExceededError,
    InvalidRequestError,
    LLMError,
    ModelDeprecationWarning,
    ModelRetiredError,
    ProviderSpec,
    UnsupportedCapabilityError,
    cassettes,
    model_checks,
    models,
    transport,
)

REPO = Path(__file__).resolve().parent.parent
PNG = REPO / "llmclient" / "conformance" / "inputs" / "tiny.png"
PDF = REPO / "llmclient" / "conformance" / "inputs" / "tiny.pdf"


@pytest.fixture
def sent(monkeypatch: pytest.MonkeyPatch) -> list[dict[str, Any]]:
    """Every request body that reached the transport; each is answered with a short OpenAI-wire reply."""
    bodies: list[dict[str, Any]] = []

    def answer(request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        body = json.loads(request.read() or b"{}")
        bodies.append(body)
        reply = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1764892800, "model": body.get("model", ""),
                 "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
                 "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
        return httpx.Response(200, json=reply, request=request)

    monkeypatch.setattr(transport, "interceptor", answer)
    for env in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "DEEPSEEK_API_KEY"):
        monkeypatch.setenv(env, "sk-test-not-a-real-key")
    return bodies


# --- files -------------------------------------------------------------------------------------------

def test_an_image_to_gpt_35_turbo_is_refused_before_any_request(sent: list[dict[str, Any]]) -> None:
    # gpt-3.5-turbo takes text only (https://platform.openai.com/docs/models/gpt-3-5-turbo: "Input: text").
    with Client("openai/gpt-3.5-turbo") as client:
        with pytest.raises(UnsupportedCapabilityError, match=r"tiny\.png.*gpt-3\.5-turbo does not take images"):
            client.complete("What is in this picture?", files=[PNG])
        with pytest.raises(UnsupportedCapabilityError):
            client.stream("What is in this picture?", files=[PNG])
    assert sent == []


async def test_the_refusal_holds_for_async_calls(sent: list[dict[str, Any]]) -> None:
    async with Client("openai/gpt-3.5-turbo") as client:
        with pytest.raises(UnsupportedCapabilityError):
            await client.acomplete("What is in this picture?", files=[PNG])
    assert sent == []


def test_the_same_image_goes_to_a_model_that_takes_images(sent: list[dict[str, Any]]) -> None:
    # gpt-4o-mini: "Input: text, image" (https://platform.openai.com/docs/models/gpt-4o-mini).
    with Client("openai/gpt-4o-mini") as client:
        assert client.complete("What is in this picture?", files=[PNG]).text == "ok"
    assert len(sent) == 1 and sent[0]["messages"][0]["content"][1]["type"] == "image_url"


def test_a_pdf_to_a_model_without_pdf_input_is_refused(sent: list[dict[str, Any]]) -> None:
    assert models.info("openai/gpt-3.5-turbo") is not None
    with Client("openai/gpt-3.5-turbo") as client, pytest.raises(UnsupportedCapabilityError, match="PDFs"):
        client.complete("Summarise", files=[PDF])
    assert sent == []


# --- tools, max_tokens -------------------------------------------------------------------------------

def test_tools_to_a_model_without_tools_are_refused(sent: list[dict[str, Any]], catalogue_entry: Any) -> None:
    catalogue_entry("openai/no-tools-model", {"tools": False, "context_window": 8192, "max_output_tokens": 1024})

    def lookup(city: str) -> str:
        """Weather in a city."""
        return city

    with Client("openai/no-tools-model") as client:
        with pytest.raises(UnsupportedCapabilityError, match="1 tool.*does not call tools"):
            client.complete("Weather in Paris?", tools=[lookup])
        assert client.complete("Weather in Paris?").text == "ok"  # the same model without tools is sent
    assert len(sent) == 1


def test_max_tokens_above_the_output_limit_is_refused(sent: list[dict[str, Any]]) -> None:
    # gpt-4o-mini: "16,384 max output tokens" (https://platform.openai.com/docs/models/gpt-4o-mini).
    with Client("openai/gpt-4o-mini") as client:
        with pytest.raises(InvalidRequestError, match=r"max_tokens=16,385 is above .* output limit of 16,384"):
            client.complete("Write a lot", max_tokens=16_385)
        assert sent == []
        client.complete("Write a lot", max_tokens=16_384)
    assert sent[0]["max_completion_tokens"] == 16_384


# --- the context window ------------------------------------------------------------------------------

def test_an_input_over_the_context_window_is_refused_unless_asked(sent: list[dict[str, Any]]) -> None:
    # gpt-3.5-turbo: "16,385 context window" (https://platform.openai.com/docs/models/gpt-3-5-turbo).
    # " hello" is one cl100k token, so 20,000 of them are 20,000 tokens, with no tokenizer needed to know
    # it is over: a hand count.
    prompt = " hello" * 20_000
    with Client("openai/gpt-3.5-turbo") as client:
        with pytest.raises(ContextWindowExceededError, match=r"over openai/gpt-3\.5-turbo's context window of 16,385"):
            client.complete(prompt)
        assert sent == []
        client.complete(prompt, check_context=False)
    assert len(sent) == 1


def test_a_long_input_within_the_window_is_sent(sent: list[dict[str, Any]]) -> None:
    # 60,000 characters of " hello" are 10,000 tokens: within 16,385 though 4 bytes a character would not be.
    with Client("openai/gpt-3.5-turbo") as client:
        client.complete(" hello" * 10_000)
    assert len(sent) == 1


def test_anthropics_1m_context_beta_widens_the_window() -> None:
    # claude-sonnet-4-5: 200K context, 1M with the context-1m-2025-08-07 beta header
    # (https://docs.anthropic.com/en/docs/build-with-claude/context-windows#1m-token-context-window).
    # 900,000 bytes are over 200K tokens by the 4-bytes-a-token estimate (no Claude tokenizer offline).
    from llmclient import Request

    info = models.info("anthropic/claude-sonnet-4-5")
    assert info is not None and info.context_window == 200_000
    # 1,200,000 bytes are 300K tokens by the estimate: past 1.25 x 200K (an estimate refuses only there).
    prompt = " hello" * 200_000
    with pytest.raises(ContextWindowExceededError, match=r"about 300,00\d tokens \(estimated"):
        model_checks.check(Request.build(prompt), info, today=date(2026, 1, 1))
    model_checks.check(Request.build(prompt, extra_headers={"anthropic-beta": "context-1m-2025-08-07"}), info,
                       today=date(2026, 1, 1))


def test_an_estimate_just_over_the_window_is_sent() -> None:
    # 900,000 bytes: 225K tokens by the estimate, over 200K but within 1.25x: the provider decides.
    from llmclient import Request

    info = models.info("anthropic/claude-sonnet-4-5")
    assert info is not None
    model_checks.check(Request.build(" hello" * 150_000), info, today=date(2026, 1, 1))


def test_an_attached_text_file_counts_toward_the_window(sent: list[dict[str, Any]], tmp_path: Path) -> None:
    # A .txt file is sent as text: 40,000 x " hello" are 40,000 cl100k tokens, over gpt-3.5-turbo's 16,385.
    notes = tmp_path / "notes.txt"
    notes.write_text(" hello" * 40_000)
    with Client("openai/gpt-3.5-turbo") as client, pytest.raises(ContextWindowExceededError, match="40,0"):
        client.complete("Summarise the notes", files=[notes])
    assert sent == []


LONG_PROFILE = '[profiles.long]\nmodel = "openai/gpt-3.5-turbo"\nfallbacks = ["openai/gpt-4o-mini"]\n'


def test_context_exceeded_moves_a_profile_to_its_fallback(sent: list[dict[str, Any]], configured: Any) -> None:
    configured(LONG_PROFILE)
    with Client("long") as client:
        response = client.complete(" hello" * 20_000)
    assert [body["model"] for body in sent] == ["gpt-4o-mini"]
    assert response.retries and response.retries[0].error == "ContextWindowExceededError"


def test_a_stream_falls_back_on_the_context_window_too(sent: list[dict[str, Any]], configured: Any) -> None:
    configured(LONG_PROFILE)
    with Client("long") as client:
        stream = client.stream(" hello" * 20_000)  # not refused here: the chain moves past the primary
        try:
            list(stream)  # the interceptor answers with a JSON body; what matters here is who got the request
        except LLMError:
            pass
    assert [body["model"] for body in sent] == ["gpt-4o-mini"]


@pytest.mark.parametrize(("fallback", "why"), [
    ("anthropic/claude-3-5-sonnet-20241022", "ModelRetiredError"),  # retired 2025-10-22 (Anthropic's page)
    ("openai/gpt-4", "ModelLimitError"),  # gpt-4: 8,192 max output (https://platform.openai.com/docs/models/gpt-4)
])
def test_a_fallback_the_catalogue_refuses_is_skipped(sent: list[dict[str, Any]], configured: Any,
                                                     monkeypatch: pytest.MonkeyPatch, fallback: str, why: str) -> None:
    from llmclient import RateLimitError

    configured(f'[profiles.p]\nmodel = "openai/gpt-4o-mini"\nfallbacks = ["{fallback}", "openai/gpt-4o"]\n'
               f'retry = {{ max_attempts = 1 }}\n')
    answer = transport.interceptor
    assert answer is not None

    def busy_primary(request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        if json.loads(request.read())["model"] == "gpt-4o-mini":
            sent.append({"model": "gpt-4o-mini"})
            return httpx.Response(429, json={"error": {"message": "slow down", "type": "rate_limit"}}, request=request)
        return answer(request, spec)

    monkeypatch.setattr(transport, "interceptor", busy_primary)
    with Client("p") as client:
        response = client.complete("Hello", max_tokens=10_000)
    assert [body["model"] for body in sent] == ["gpt-4o-mini", "gpt-4o"]
    assert [(r.model, r.error) for r in response.retries] == [
        ("openai/gpt-4o-mini", RateLimitError.__name__), (fallback, why)]


# --- retirement ----------------------------------------------------------------------------------------

def test_a_retired_model_is_refused_with_its_date(sent: list[dict[str, Any]]) -> None:
    # Claude Sonnet 3.5 (claude-3-5-sonnet-20241022) was retired on 2025-10-22
    # (https://docs.anthropic.com/en/docs/about-claude/model-deprecations).
    with Client("anthropic/claude-3-5-sonnet-20241022") as client:
        with pytest.raises(ModelRetiredError, match="retired on 2025-10-22") as raised:
            client.complete("Hello")
    assert raised.value.retired_on == date(2025, 10, 22)
    assert sent == []


def test_a_retired_model_replays_from_a_recording_with_a_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    info = models.info("anthropic/claude-3-5-sonnet-20241022")
    assert info is not None and info.retires == date(2025, 10, 22)
    model_checks._warned.discard(info.model)
    monkeypatch.setattr(cassettes, "replaying", lambda: True)
    with pytest.warns(ModelDeprecationWarning, match="retired on 2025-10-22 .replaying a recording of it"):
        model_checks.check(_request("Hello"), info)


def test_a_shutdown_date_only_litellm_gives_warns_and_sends(sent: list[dict[str, Any]]) -> None:
    # litellm 1.106.12 gives gpt-3.5-turbo a deprecation_date of 2026-10-23; OpenAI's deprecations page
    # is not cited for it, so the call goes (the provider decides) with a warning naming the date.
    info = models.info("openai/gpt-3.5-turbo")
    assert info is not None and info.retires == date(2026, 10, 23) and info.retires_source == "litellm"
    model_checks._warned.discard(info.model)
    with pytest.warns(ModelDeprecationWarning, match="litellm's model map gives 2026-10-23") as caught:
        with Client("openai/gpt-3.5-turbo") as client:
            client.complete("Hello")
    assert len(sent) == 1
    assert caught[0].filename == __file__  # the warning points at the caller's line, not into llmclient


def test_the_retirement_day_itself_is_refused_and_the_day_before_warns() -> None:
    info = models.info("anthropic/claude-3-5-sonnet-20241022")
    assert info is not None
    with pytest.raises(ModelRetiredError):
        model_checks.check(_request("Hi"), info, today=date(2025, 10, 22))
    model_checks._warned.discard(info.model)
    with pytest.warns(ModelDeprecationWarning, match="will be retired on 2025-10-22"):
        model_checks.check(_request("Hi"), info, today=date(2025, 10, 21))


def test_through_a_router_the_makers_retirement_only_warns(sent: list[dict[str, Any]],
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    # Claude Sonnet 3.7 left Anthropic's API on 2026-02-19; OpenRouter may serve it from elsewhere.
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    info = models.info("openrouter/anthropic/claude-3.7-sonnet")
    assert info is not None and info.key == "anthropic/claude-3-7-sonnet-20250219" and info.retirement_confirmed
    model_checks._warned.discard(info.model)
    with pytest.warns(ModelDeprecationWarning, match="which may still serve it"):
        with Client("openrouter/anthropic/claude-3.7-sonnet") as client:
            client.complete("Hello")
    assert len(sent) == 1


def test_a_future_retirement_warns_once(catalogue_entry: Any) -> None:
    catalogue_entry("openai/sunset-model", {"retires": "2099-01-31", "replacement": "openai/gpt-4o-mini"})
    info = models.info("openai/sunset-model")
    assert info is not None
    with pytest.warns(ModelDeprecationWarning, match="retired on 2099-01-31; use openai/gpt-4o-mini instead"):
        model_checks.check(_request("Hi"), info)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        model_checks.check(_request("Hi"), info)  # once per model and process


# --- what passes through ---------------------------------------------------------------------------------

def test_a_model_the_catalogue_does_not_list_is_sent_unchecked(sent: list[dict[str, Any]]) -> None:
    assert models.info("openai/ft:gpt-3.5-turbo:acme:custom:abc123") is None
    with Client("openai/ft:gpt-3.5-turbo:acme:custom:abc123") as client:
        client.complete("What is in this picture?", files=[PNG], max_tokens=1_000_000)
    assert len(sent) == 1


def test_openrouter_takes_a_pdf_for_any_model(sent: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch) -> None:
    # "this feature works on any model on OpenRouter" (https://openrouter.ai/docs/features/multimodal/pdfs):
    # the PDF gpt-3.5-turbo refuses at OpenAI goes through OpenRouter, which parses it.
    monkeypatch.setenv("OPENROUTER_API_KEY", "sk-or-test")
    info = models.info("openrouter/openai/gpt-3.5-turbo")
    assert info is not None and info.pdf is True and info.vision is False
    with Client("openrouter/openai/gpt-3.5-turbo") as client:
        client.complete("Summarise", files=[PDF])
    assert len(sent) == 1


def test_a_users_file_corrects_an_entry_field_by_field(catalogue_entry: Any) -> None:
    catalogue_entry("openai/gpt-3.5-turbo", {"context_window": 16_000})
    info = models.info("openai/gpt-3.5-turbo")
    assert info is not None and info.context_window == 16_000
    assert info.max_output_tokens == 4_096 and info.vision is False  # the shipped facts stay


def test_info_reads_prices_as_they_are_now() -> None:
    from llmclient import price_table, pricing

    before = models.info("openai/gpt-4o-mini")
    pricing.set_price("openai/gpt-4o-mini", input="0.000001", output="0.000002")
    try:
        after = models.info("openai/gpt-4o-mini")
    finally:
        price_table._user_rows.pop("openai/gpt-4o-mini", None)
        price_table._table.cache_clear()
    assert before is not None and after is not None
    assert (before.input_price, after.input_price) == (Decimal("0.15"), Decimal("1"))


def test_an_unknown_capability_is_not_a_refusal(sent: list[dict[str, Any]], catalogue_entry: Any) -> None:
    catalogue_entry("openai/unknown-inputs", {"input": {"image": None, "pdf": None}, "tools": None})
    with Client("openai/unknown-inputs") as client:
        client.complete("What is in this picture?", files=[PNG])
    assert len(sent) == 1


# --- helpers ------------------------------------------------------------------------------------------------

def _request(text: str) -> Any:
    from llmclient import Request

    return Request.build(text)


@pytest.fixture
def configured(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Make a TOML text this test's configuration (profiles, fallbacks)."""
    from llmclient.config import reset_config

    def use(text: str) -> None:
        config = tmp_path / "llmclient.toml"
        config.write_text(text)
        monkeypatch.setenv("LLMCLIENT_CONFIG", str(config))
        reset_config()

    yield use
    monkeypatch.delenv("LLMCLIENT_CONFIG", raising=False)
    reset_config()


@pytest.fixture
def catalogue_entry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    """Add catalogue entries through LLMCLIENT_MODELS (a user's file), for this test only."""
    entries: dict[str, Any] = {}

    def add(key: str, entry: dict[str, Any]) -> None:
        entries[key] = {"source": "test", **entry}
        path = tmp_path / "models.json"
        path.write_text(json.dumps({"models": entries}))
        monkeypatch.setenv("LLMCLIENT_MODELS", str(path))
        models._catalogue.cache_clear()

    yield add
    monkeypatch.delenv("LLMCLIENT_MODELS", raising=False)
    models._catalogue.cache_clear()


@pytest.mark.parametrize(("text", "message"), [
    ('{"models": {"openai/x": {"context_window": "lots"}}}', r"LLMCLIENT_MODELS=.*models\.json: model entry openai/x: context_window"),
    ("not json", r"LLMCLIENT_MODELS=.*models\.json: expected a JSON file \{\"models\""),
])
def test_a_malformed_users_file_names_the_variable_the_file_and_the_problem(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str, message: str) -> None:
    from llmclient import ConfigurationError

    path = tmp_path / "models.json"
    path.write_text(text)
    monkeypatch.setenv("LLMCLIENT_MODELS", str(path))
    models._catalogue.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match=message):
            models.info("openai/gpt-4o-mini")
    finally:
        monkeypatch.delenv("LLMCLIENT_MODELS")
        models._catalogue.cache_clear()
