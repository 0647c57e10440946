"""Responses replayed from tests/cassettes/, compared with their snapshots in
tests/__snapshots__/test_snapshots/ (llmclient's pytest plugin: the `llm_cassette` marker and the
`llm_snapshot` fixture). Rewrite the snapshots with `pytest tests/test_snapshots.py --snapshot-update`,
then check them by hand against the cassette bodies and the published prices, as below.

Checked by hand (cassette body -> snapshot; prices per million tokens from the providers' pricing
pages: gpt-4o-mini $0.15 in / $0.60 out, claude-sonnet-4-5 $3 in / $15 out):
- openai/text.yaml: content "Paris.", finish_reason "stop", prompt_tokens 21, completion_tokens 2,
  cached 0, reasoning 0 -> cost 21 x 0.15e-6 + 2 x 0.60e-6 = 0.00000315 + 0.0000012 = "0.00000435".
- anthropic/stream_text.yaml: deltas "The capital of France" + " is Paris.", stop_reason "end_turn"
  (finish_reason "stop"), input_tokens 21 (message_start), output_tokens 10 (message_delta), cache
  0 -> 21 x 3e-6 + 10 x 15e-6 = 0.000063 + 0.00015 = "0.000213".
- openai/tool_round_trip.yaml: 1st: no text, get_weather({"city": "Paris"}), finish "tool_calls",
  58 / 15 tokens -> 58 x 0.15e-6 + 15 x 0.60e-6 = 0.0000087 + 0.000009 = "0.0000177"; 2nd:
  "It is sunny in Paris, 18 °C.", "stop", 94 / 12 tokens -> 0.0000141 + 0.0000072 = "0.0000213".
"""

from __future__ import annotations

import pytest
from syrupy.assertion import SnapshotAssertion

from llmclient import Client, Message

CAPITAL_WORD = "What is the capital of France? Answer in one word."
CAPITAL_SENTENCE = "What is the capital of France? Answer in one sentence."
WEATHER = "What is the weather in Paris?"


def get_weather(city: str) -> str:
    """Get the current weather for a city."""
    raise AssertionError("the model asks for the tool; the test answers it")


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    """Replay needs no key: prove it by removing any a developer may have set."""
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)


@pytest.mark.llm_cassette("cassettes/openai/text.yaml")
def test_openai_text(llm_snapshot: SnapshotAssertion) -> None:
    assert Client("openai/gpt-4o-mini").complete(CAPITAL_WORD) == llm_snapshot


@pytest.mark.llm_cassette("cassettes/anthropic/stream_text.yaml")
def test_anthropic_stream(llm_snapshot: SnapshotAssertion) -> None:
    assert Client("anthropic/claude-sonnet-4-5").stream(CAPITAL_SENTENCE).response == llm_snapshot


@pytest.mark.llm_cassette("cassettes/openai/tool_round_trip.yaml")
def test_openai_tool_round_trip(llm_snapshot: SnapshotAssertion) -> None:
    client = Client("openai/gpt-4o-mini")
    first = client.complete(WEATHER, tools=[get_weather], max_tokens=200)
    history = [Message.user(WEATHER), first.message,
               Message.tool_result(first.tool_calls[0], {"temperature_c": 18, "conditions": "sunny"})]
    second = client.complete(history, tools=[get_weather], max_tokens=200)
    assert [first, second] == llm_snapshot
