"""Call options whose meaning differs by wire: `reasoning_effort` (OpenAI's spelling) becomes the
thinking budget where the API takes one, and `extra_headers` are HTTP headers, never body keys.
Expected shapes are the providers' documented ones:
https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking (thinking: {type: enabled,
budget_tokens >= 1024}, counted in max_tokens), https://ai.google.dev/gemini-api/docs/thinking
(generationConfig.thinkingConfig: {thinkingBudget, includeThoughts}), and the OpenAI chat reference
(reasoning_effort as is)."""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from llmclient import InvalidRequestError
from llmclient.pipeline import Pipeline
from llmclient.providers import REGISTRY
from llmclient.request import Request


def prepared(provider: str, model: str, **call: Any) -> httpx.Request:
    spec = REGISTRY[provider]
    return Pipeline(spec, model, spec.base_url, None).prepare(Request.build("How many r in strawberry?", **call), "sk-test-key",
                                                       stream=False)


def body(request: httpx.Request) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(request.read())
    return data


@pytest.mark.parametrize(("effort", "budget"), [("low", 1024), ("medium", 2048), ("high", 4096)])
def test_anthropic_thinks_with_the_budget_on_top_of_the_default_max_tokens(effort: str, budget: int) -> None:
    sent = body(prepared("anthropic", "claude-sonnet-4-5", reasoning_effort=effort))
    assert sent["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert sent["max_tokens"] == 4096 + budget and "reasoning_effort" not in sent


def test_anthropic_thinking_must_fit_in_the_max_tokens_given() -> None:
    assert body(prepared("anthropic", "claude-sonnet-4-5", reasoning_effort="low", max_tokens=2000))["max_tokens"] == 2000
    with pytest.raises(InvalidRequestError, match=r"max_tokens=1024 must be above the thinking budget of 1024 tokens"):
        prepared("anthropic", "claude-sonnet-4-5", reasoning_effort="low", max_tokens=1024)


def test_gemini_thinks_with_a_budget_and_returns_its_thoughts() -> None:
    sent = body(prepared("gemini", "gemini-2.5-flash", reasoning_effort="low", max_tokens=100))
    assert sent["generationConfig"] == {"maxOutputTokens": 100, "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True}}
    assert "reasoningEffort" not in sent
    assert body(prepared("gemini", "gemini-2.5-flash", reasoning_effort="none"))["generationConfig"] == {
        "thinkingConfig": {"thinkingBudget": 0}}


def test_cohere_thinks_with_a_token_budget() -> None:
    # https://docs.cohere.com/docs/reasoning: thinking {type: enabled, token_budget} or {type: disabled}
    sent = body(prepared("cohere", "command-a-reasoning-08-2025", reasoning_effort="medium"))
    assert sent["thinking"] == {"type": "enabled", "token_budget": 2048} and "reasoning_effort" not in sent
    assert body(prepared("cohere", "command-a-reasoning-08-2025", reasoning_effort="none"))["thinking"] == {"type": "disabled"}


def test_the_openai_wire_sends_reasoning_effort_as_it_is() -> None:
    assert body(prepared("openai", "o4-mini", reasoning_effort="low"))["reasoning_effort"] == "low"


@pytest.mark.parametrize("provider", ["anthropic", "gemini", "cohere"])
def test_an_effort_the_wire_cannot_express_is_refused(provider: str) -> None:
    with pytest.raises(InvalidRequestError, match=r"reasoning_effort must be one of none, low, medium, high .* got 'max'"):
        prepared(provider, "m", reasoning_effort="max")


@pytest.mark.parametrize("provider", ["openai", "anthropic", "gemini", "cohere"])
def test_extra_headers_are_headers_not_body_keys(provider: str) -> None:
    request = prepared(provider, "m", extra_headers={"X-Trace": "abc", "anthropic-beta": "context-1m-2025-08-07"})
    assert (request.headers["x-trace"], request.headers["anthropic-beta"]) == ("abc", "context-1m-2025-08-07")
    assert not {"extra_headers", "extraHeaders", "x-trace"} & set(body(request))


def test_extra_headers_may_not_replace_a_header_the_wire_sets() -> None:
    with pytest.raises(InvalidRequestError, match="extra_headers may not set anthropic-version: llmclient sets it for anthropic"):
        prepared("anthropic", "claude-sonnet-4-5", extra_headers={"Anthropic-Version": "2020-01-01"})


def test_a_providers_own_key_header_is_refused_on_every_route() -> None:
    from llmclient.litellm_route import LitellmPipeline

    spec = REGISTRY["openai"].model_copy(update={"name": "acme", "key_header": "x-acme-key", "key_prefix": ""})
    with pytest.raises(InvalidRequestError, match="extra_headers may not set x-acme-key: llmclient sets it for acme"):
        Pipeline(spec, "m", spec.base_url, None).prepare(Request.build("hi", extra_headers={"X-Acme-Key": "k"}), "key",
                                                         stream=False)
    litellm = REGISTRY["litellm"]
    with pytest.raises(InvalidRequestError, match="extra_headers may not set authorization"):
        LitellmPipeline(litellm, "openai/gpt-4o-mini", None, None).prepare(
            Request.build("hi", extra_headers={"Authorization": "Bearer x"}), "key", stream=False)


@pytest.mark.parametrize("name", ["Authorization", "x-api-key", "Content-Type", "x-goog-api-key"])
def test_extra_headers_may_not_replace_the_key_or_the_framing(name: str) -> None:
    with pytest.raises(InvalidRequestError, match=f"extra_headers may not set {name.lower()}: llmclient sets them"):
        Request.build("hi", extra_headers={name: "x"})


@pytest.mark.parametrize(("headers", "problem"), [
    ({"bad name": "x"}, "is not a header name"), ({"x-a": "one\r\ntwo"}, "must be a one-line string"),
    ({"x-a": 5}, "must be a one-line string"), ("x-a: 1", "takes a mapping"),
    ({"X-A": "1", "x-a": "2"}, "names x-a more than once"),
])
def test_malformed_extra_headers_are_refused(headers: Any, problem: str) -> None:
    with pytest.raises(InvalidRequestError, match=problem):
        Request.build("hi", extra_headers=headers)


@pytest.mark.parametrize("provider", ["openai", "groq", "anthropic", "cohere"])
def test_stream_as_a_provider_option_is_refused_not_sent(provider: str) -> None:
    # A non-stream OpenAI body has no "stream" key for the option to clash with; sent, the server
    # would stream a billed answer that the JSON decoder then refuses.
    with pytest.raises(InvalidRequestError, match="stream"):
        prepared(provider, "some-model", max_tokens=10, stream=True)
