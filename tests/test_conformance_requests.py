"""The request half of every cell. A scenario states what its requests carry; the suite captures
what llmclient actually sent and checks it, so a request that lacks the image, the PDF, the earlier
turns, the system text, the tools or the forced tool_choice fails its cell even when its cassette
was recorded from that same broken request (the replay matches, the request check does not)."""

from __future__ import annotations

import dataclasses
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from llmclient import Client, ReplayMismatchError, use_cassette
from llmclient.conformance.author import captured_requests, write_requests
from llmclient.cassettes import SentRequest
from llmclient.conformance.expect import Contains, OneOf, projection, request_problems
from llmclient.conformance.runner import run_cell, unsupported
from llmclient.conformance.scenarios import (
    BY_NAME, CITY_FACTS, IMAGE_QUESTION, LONG_PROMPT, MULTI_TURN, PDF_QUESTION, STRAWBERRY, WEATHER, CityFacts, Observed,
)
from llmclient.conformance.targets import load_suite

REPO = Path(__file__).resolve().parent.parent
SUITE = load_suite(REPO / "llmclient.toml")


def _answer(call: Callable[[Client], object]) -> Callable[[Client], Observed]:
    def run(client: Client) -> Observed:
        response = call(client)
        return Observed(response=response, responses=[response])  # type: ignore[arg-type]
    return run


# The structured_tool scenario's tool, offered but not forced.
CITY_FACTS_TOOL = {"type": "function", "function": {"name": "CityFacts", "description": "Give the answer as CityFacts.",
                                                    "parameters": CityFacts.model_json_schema()}}
# Each mutation: the scenario's call with one thing left out, and the request problem it must give.
MUTATIONS = {
    "drop image": ("image_input", _answer(lambda c: c.complete(IMAGE_QUESTION)),
                   'request: messages[0].parts: no part matching {"type": "image"'),
    "drop PDF": ("pdf_input", _answer(lambda c: c.complete(PDF_QUESTION)),
                 'request: messages[0].parts: no part matching {"type": "pdf"'),
    "drop earlier turns": ("multi_turn", _answer(lambda c: c.complete(MULTI_TURN[-1:])),
                           "request: messages: expected 3 item(s), sent 1"),
    "drop system": ("system_prompt", _answer(lambda c: c.complete("What is the capital of France?")),
                    "request: system: expected \"Answer in exactly one word"),
    "drop tools": ("tool_call", _answer(lambda c: c.complete(WEATHER)), "request: tools: expected 1 item(s), sent 0"),
    "drop tool_choice": ("structured_tool",
                         _answer(lambda c: c.complete(CITY_FACTS, tools=[CITY_FACTS_TOOL])),
                         "request: tool_choice: expected {'name': 'CityFacts'} or 'required', sent null"),
}


@pytest.mark.parametrize("provider", [target.provider for target in SUITE.targets])
@pytest.mark.parametrize("mutation", list(MUTATIONS))
def test_a_request_lacking_what_the_scenario_sends_fails_its_cell(provider: str, mutation: str, tmp_path: Path) -> None:
    name, mutated_call, problem = MUTATIONS[mutation]
    scenario = BY_NAME[name]
    target = SUITE.target(provider)
    if not SUITE.cassette(provider, name).is_file():
        assert unsupported(target, scenario), f"{provider}/{name} has no cassette"
        pytest.skip(f"{provider} does not declare what {name} needs")
    cassettes, fixtures = tmp_path / "cassettes", tmp_path / "fixtures"
    for folder, source, suffix in ((cassettes, SUITE.cassettes, "yaml"), (fixtures, SUITE.fixtures, "json")):
        (folder / provider).mkdir(parents=True)
        shutil.copy(source / provider / f"{name}.{suffix}", folder / provider / f"{name}.{suffix}")
    mutated = dataclasses.replace(scenario, call=mutated_call)
    assert run_cell(target, scenario, cassettes=cassettes, fixtures=fixtures).outcome == "pass"  # unmutated

    # The cassette recorded from the broken request: the replay matches it, the cell still fails.
    cassette = cassettes / provider / f"{name}.yaml"
    write_requests(cassette, captured_requests(target, mutated, cassette))
    cell = run_cell(target, mutated, cassettes=cassettes, fixtures=fixtures)
    assert cell.outcome == "fail"
    assert cell.problems[0].startswith(problem), cell.problems
    assert "ReplayMismatchError" not in cell.detail  # caught by the request check, not by the replay

    # And against the cassette of the right request, replay refuses it too.
    shutil.copy(SUITE.cassette(provider, name), cassette)
    assert "ReplayMismatchError" in run_cell(target, mutated, cassettes=cassettes, fixtures=fixtures).detail


def test_every_scenario_that_sends_a_request_says_what_it_must_carry() -> None:
    for scenario in BY_NAME.values():
        assert len(scenario.sends) == scenario.interactions, scenario.name


def test_a_different_prompt_or_model_does_not_replay_another_calls_answer() -> None:
    # The one-interaction cassette answers "What is the capital of France?" to gpt-4o-mini.
    cassette = SUITE.cassette("openai", "text")
    with use_cassette(cassette), pytest.raises(ReplayMismatchError) as caught:
        Client("openai/gpt-4o-mini").complete("Write a poem about cats")
    assert ("closest recorded request differs at messages[0].content: recorded 'What is the capital of France? "
            "Answer in one word.', sent 'Write a poem about cats'") in str(caught.value)
    with use_cassette(cassette), pytest.raises(ReplayMismatchError, match="differs at model: recorded 'gpt-4o-mini', sent 'gpt-4o'"):
        Client("openai/gpt-4o").complete("What is the capital of France? Answer in one word.")
    with use_cassette(cassette), pytest.raises(ReplayMismatchError, match="differs at temperature: sent 0.5, not recorded"):
        Client("openai/gpt-4o-mini").complete("What is the capital of France? Answer in one word.", temperature=0.5)


@pytest.mark.parametrize(("want", "got", "problem"), [
    ({"system": "x"}, {"system": None}, "request: system: expected \"x\", sent null"),
    ({"messages": [{"role": "user", "parts": [{"type": "text", "text": "a"}]}]},
     {"messages": [{"role": "user", "parts": [{"type": "image"}, {"type": "text", "text": "a"}]}]}, None),
    ({"system": Contains("schema")}, {"system": "no"}, "request: system: expected text containing 'schema', sent \"no\""),
    ({"tool_choice": OneOf(({"name": "f"}, "required"))}, {"tool_choice": "required"}, None),
    ({"max_tokens": 16}, {}, "request: max_tokens: not sent"),
    ({"stream": True}, {"stream": 1}, "request: stream: expected true, sent 1"),
])
def test_expectations_match_as_documented(want: dict[str, object], got: dict[str, object], problem: str | None) -> None:
    found = request_problems((want,), [got])
    assert found == ([problem] if problem else [])


def test_a_cell_shows_both_halves() -> None:
    cell = run_cell(SUITE.target("anthropic"), BY_NAME["image_input"], cassettes=SUITE.cassettes, fixtures=SUITE.fixtures)
    assert cell.outcome == "pass"
    [request] = cell.requests
    assert request["endpoint"] == "POST https://api.anthropic.com/v1/messages" and request["model"] == "claude-sonnet-4-5"
    image = request["messages"][0]["parts"][1]
    # sha256 of llmclient/conformance/inputs/tiny.png, computed independently with `sha256sum`.
    assert image == {"type": "image", "media_type": "image/png", "sha256": TINY_PNG_SHA256}
    assert cell.responses[0]["text"] and cell.expected is not None and json.dumps(cell.as_dict())


TINY_PNG_SHA256 = "396f6aba97b0b4ac60a22cae643ef2df1676ab98050fa468bbcb1aadb69b9e44"


def _sent(uri: str, body: dict[str, object]) -> SentRequest:
    return SentRequest("POST", uri, {"content-type": "application/json"}, json.dumps(body).encode())


@pytest.mark.parametrize(("wire", "uri", "body", "problem"), [
    # Before llmclient mapped it, reasoning_effort went to Anthropic and Gemini as an unknown body key.
    ("anthropic", "https://api.anthropic.com/v1/messages",
     {"model": "m", "max_tokens": 10, "messages": [{"role": "user", "content": STRAWBERRY}], "reasoning_effort": "low"},
     'request: reasoning: expected {"budget": 1024}, sent null'),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent",
     {"contents": [{"role": "user", "parts": [{"text": STRAWBERRY}]}], "reasoningEffort": "low"},
     'request: reasoning: expected {"budget": 1024}, sent null'),
    ("openai", "https://api.openai.com/v1/chat/completions",
     {"model": "m", "messages": [{"role": "user", "content": STRAWBERRY}], "thinking": {"type": "enabled"}},
     'request: reasoning: expected "low", sent null'),
    ("anthropic", "https://api.anthropic.com/v1/messages",
     {"model": "m", "max_tokens": 2048, "messages": [{"role": "user", "content": STRAWBERRY}],
      "thinking": {"type": "enabled", "budget_tokens": 1024}}, None),
])
def test_the_reasoning_a_request_asks_for_is_checked_per_wire(wire: str, uri: str, body: dict[str, object],
                                                                problem: str | None) -> None:
    found = request_problems(BY_NAME["billing_reasoning"].sends, [projection(_sent(uri, body), wire)])
    assert found == ([problem] if problem else [])


def test_the_long_context_beta_goes_to_anthropic_only() -> None:
    sends = BY_NAME["billing_tiered"].sends
    gemini = projection(SentRequest("POST", "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent",
                                    {"anthropic-beta": "context-1m-2025-08-07"},
                                    json.dumps({"contents": [{"role": "user", "parts": [{"text": LONG_PROMPT}]}]}).encode()),
                        "gemini")
    assert request_problems(sends, [gemini]) == ['request: headers: expected no \'anthropic-beta\', sent {"anthropic-beta": "context-1m-2025-08-07"}']
