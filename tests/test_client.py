"""The client end to end on authored cassettes: sync, async, streams and a tool round trip.

Expected values are literals read off the cassette bodies in `tests/cassettes/` (the prices are
gpt-4o-mini's $0.15 / $0.60 per million tokens and claude-sonnet-4-5's $3 / $15, from the
providers' pricing pages)."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import pytest

from llmclient import (
    Client,
    ConfigurationError,
    Message,
    ReplayMismatchError,
    Request,
    ToolCall,
    Usage,
    use_cassette,
)

CASSETTES = Path(__file__).resolve().parent / "cassettes"  # the unit tests' own; cassettes/ is the conformance suite's
CAPITAL_WORD = "What is the capital of France? Answer in one word."
CAPITAL_SENTENCE = "What is the capital of France? Answer in one sentence."
WEATHER = "What is the weather in Paris?"
WEATHER_RESULT = {"temperature_c": 18, "conditions": "sunny"}


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    raise AssertionError("the model asks for the tool; the test answers it")


def _usage(input_tokens: int, output_tokens: int) -> Usage:
    return Usage(input_tokens=input_tokens, output_tokens=output_tokens)


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay needs no key: prove it by removing any a developer may have set."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


def test_complete_returns_text_usage_and_cost() -> None:
    with use_cassette(CASSETTES / "openai/text.yaml", strict=True):
        response = Client("openai/gpt-4o-mini").complete(CAPITAL_WORD)
    assert (response.text, response.finish_reason, response.raw_finish_reason) == ("Paris.", "stop", "stop")
    assert response.usage == _usage(21, 2)
    assert response.usage.total_tokens == 23
    assert response.cost is not None and response.cost.total == Decimal("0.00000435")  # 21 x 0.15e-6 + 2 x 0.6e-6
    assert (response.provider, response.model) == ("openai", "gpt-4o-mini-2024-07-18")
    assert response.raw["id"] == "chatcmpl-CXa7uthoredText0001"
    assert response.latency_ms >= 0


async def test_acomplete_matches_complete() -> None:
    with use_cassette(CASSETTES / "openai/text.yaml", strict=True):
        async with Client("openai/gpt-4o-mini") as client:
            response = await client.acomplete(CAPITAL_WORD)
    assert (response.text, response.usage) == ("Paris.", _usage(21, 2))


def test_stream_deltas_concatenate_and_usage_arrives_once() -> None:
    with use_cassette(CASSETTES / "openai/stream_text.yaml", strict=True):
        stream = Client("openai/gpt-4o-mini").stream(CAPITAL_SENTENCE)
        deltas = [event.text for event in stream if event.kind == "text"]
    assert deltas == ["The", " capital", " of", " France", " is", " Paris", "."]
    response = stream.response
    assert response.text == "The capital of France is Paris."
    assert response.usage == _usage(22, 7)  # the final usage chunk, counted once
    assert response.cost is not None and response.cost.total == Decimal("0.0000075")  # 22 x 0.15e-6 + 7 x 0.6e-6
    assert len(response.raw["chunks"]) == 10


async def test_astream_yields_the_same_events() -> None:
    with use_cassette(CASSETTES / "anthropic/stream_text.yaml", strict=True):
        stream = Client("anthropic/claude-sonnet-4-5").astream(CAPITAL_SENTENCE)
        deltas = [event.text async for event in stream]
        response = await stream.get_response()
    assert deltas == ["The capital of France", " is Paris."]
    assert (response.text, response.finish_reason, response.raw_finish_reason) == (
        "The capital of France is Paris.", "stop", "end_turn")
    assert response.usage == _usage(21, 10)  # input from message_start, output from message_delta
    assert response.cost is not None and response.cost.total == Decimal("0.000213")  # 21 x 3e-6 + 10 x 15e-6


def test_reading_response_drains_the_stream() -> None:
    with use_cassette(CASSETTES / "openai/stream_text.yaml", strict=True):
        response = Client("openai/gpt-4o-mini").stream(CAPITAL_SENTENCE).response
    assert response.text == "The capital of France is Paris."


@pytest.mark.parametrize(
    ("model", "cassette", "call_id", "preamble", "answer", "usage"),
    [
        ("openai/gpt-4o-mini", "openai/tool_round_trip.yaml", "call_Qv3dWb5Tn8yLp2KcR7mXs4Hf", "",
         "It is sunny in Paris, 18 °C.", (94, 12)),
        ("anthropic/claude-sonnet-4-5", "anthropic/tool_round_trip.yaml", "toolu_01A09q90qw90lq917835lq9",
         "I'll check the weather in Paris.", "It is sunny in Paris at 18 °C.", (501, 19)),
    ],
)
def test_tool_round_trip(model: str, cassette: str, call_id: str, preamble: str, answer: str,
                         usage: tuple[int, int]) -> None:
    # Both calls go to one endpoint, so the cassette also matches request bodies: the second call
    # only replays if the assistant tool call and the tool result were encoded as recorded.
    with use_cassette(CASSETTES / cassette, strict=True) as session:
        client = Client(model)
        first = client.complete(WEATHER, tools=[get_weather], max_tokens=200)
        assert first.tool_calls == [ToolCall(id=call_id, name="get_weather", arguments={"city": "Paris"})]
        assert (first.finish_reason, first.text) == ("tool_calls", preamble)
        history = [Message.user(WEATHER), first.message, Message.tool_result(first.tool_calls[0], WEATHER_RESULT)]
        second = client.complete(history, tools=[get_weather], max_tokens=200)
    assert session.play_count == 2
    assert (second.text, second.finish_reason, second.tool_calls) == (answer, "stop", [])
    assert second.usage == _usage(*usage)


def test_a_dict_schema_tool_is_the_same_tool_as_the_function() -> None:
    schema_tool = {
        "type": "function",
        "function": {
            "name": "get_weather",
            "description": "Get the current weather for a city.",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
        },
    }
    with use_cassette(CASSETTES / "openai/tool_round_trip.yaml") as session:
        response = Client("openai/gpt-4o-mini").complete(WEATHER, tools=[schema_tool], max_tokens=200)
    assert response.tool_calls[0].arguments == {"city": "Paris"}
    assert session.unplayed == ["POST https://api.openai.com/v1/chat/completions"]


def test_a_request_value_is_accepted() -> None:
    request = Request.build(CAPITAL_WORD)
    with use_cassette(CASSETTES / "openai/text.yaml", strict=True):
        assert Client("openai/gpt-4o-mini").complete(request).text == "Paris."
    with pytest.raises(TypeError, match="either a Request or keywords"):
        Client("openai/gpt-4o-mini").complete(request, max_tokens=5)


def test_unmatched_request_names_the_url_not_a_disguised_500() -> None:
    with use_cassette(CASSETTES / "openai/text.yaml"):
        with pytest.raises(ReplayMismatchError, match=r"no recorded interaction for POST https://api\.groq\.com/openai/v1/chat/completions"):
            Client("groq/llama-3.3-70b-versatile").complete(CAPITAL_WORD)


def test_missing_key_outside_replay_names_the_env_var() -> None:
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        Client("openai/gpt-4o-mini").complete(CAPITAL_WORD)


def test_strict_cassette_reports_unplayed_interactions() -> None:
    with pytest.raises(ReplayMismatchError, match=r"1 recorded interaction\(s\) .* were never requested"):
        with use_cassette(CASSETTES / "openai/tool_round_trip.yaml", strict=True):
            Client("openai/gpt-4o-mini").complete(WEATHER, tools=[get_weather], max_tokens=200)
