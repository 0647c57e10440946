"""JSON mode: `response_format={"type": "json_object"}` adds a JSON instruction, keeps the provider's
native mode where its wire has one, checks the answer is JSON and asks again when it is not.

Expected values are the texts each test queues on the mock provider (OpenAI wire) and the parse
error Python's json module gives for them ("Expecting value" at position 0 for prose)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from llmclient import Client, SchemaValidationError, Usage
from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.json_mode import INSTRUCTION, for_wire, with_instruction
from llmclient.policies.retry import RetryPolicy
from llmclient.providers import REGISTRY
from llmclient.request import Request
from llmclient.testing import MockProvider
from llmclient.validators import is_json, regex
from llmclient.wire import anthropic, cohere, gemini

JSON_OBJECT = {"type": "json_object"}
PROSE = "Sure! Here is the city: Paris, France."
ANSWER = '{"city": "Paris", "country": "France"}'


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


def client() -> Client:
    return Client("mock/m", retry=RetryPolicy(max_attempts=1))


def system_texts(body: dict[str, Any]) -> list[str]:
    return [m["content"] if isinstance(m["content"], str) else "".join(p["text"] for p in m["content"])
            for m in body["messages"] if m["role"] == "system"]


def last_user_text(body: dict[str, Any]) -> str:
    content = [m for m in body["messages"] if m["role"] == "user"][-1]["content"]
    return content if isinstance(content, str) else "".join(part["text"] for part in content)


def test_a_non_json_answer_is_asked_again_with_the_parse_error(mock: MockProvider) -> None:
    mock.reply(PROSE, input_tokens=20, output_tokens=9).reply(ANSWER, input_tokens=40, output_tokens=12)
    response = client().complete("Where is the Eiffel Tower? Give city and country.", response_format=JSON_OBJECT)
    assert json.loads(response.text) == {"city": "Paris", "country": "France"}
    first, second = mock.requests
    assert system_texts(first) == [INSTRUCTION] and "JSON" in INSTRUCTION
    assert first["response_format"] == JSON_OBJECT and second["response_format"] == JSON_OBJECT  # native mode kept
    assert "the answer is not valid JSON (Expecting value at position 0)" in last_user_text(second)
    assert [m["role"] for m in second["messages"]] == ["system", "user", "assistant", "user"]
    assert second["messages"][2]["content"] == PROSE
    assert system_texts(second) == [INSTRUCTION]  # not added twice on the re-ask
    assert [a.raw for a in response.rejected] == [PROSE]
    assert response.rejected[0].error is not None and "not valid JSON" in response.rejected[0].error
    assert response.total_usage == Usage(input_tokens=60, output_tokens=21)
    assert response.usage == Usage(input_tokens=40, output_tokens=12)


def test_a_json_first_answer_is_one_request(mock: MockProvider) -> None:
    mock.reply(ANSWER)
    response = client().complete("Where is the Eiffel Tower?", response_format=JSON_OBJECT)
    assert json.loads(response.text)["city"] == "Paris" and response.rejected == ()
    assert len(mock.requests) == 1


def test_the_instruction_follows_the_callers_system_text(mock: MockProvider) -> None:
    mock.reply(ANSWER)
    client().complete("Where?", system="You are a geographer.", response_format=JSON_OBJECT)
    assert system_texts(mock.requests[0]) == ["You are a geographer.", INSTRUCTION]


def test_a_system_text_that_already_asks_for_json_gets_no_second_instruction(mock: MockProvider) -> None:
    mock.reply(PROSE).reply(ANSWER)
    response = client().complete("Where?", system="Reply with a json object.", response_format=JSON_OBJECT)
    assert [system_texts(body) for body in mock.requests] == [["Reply with a json object."]] * 2
    assert len(response.rejected) == 1  # the answer is still checked


def test_an_answer_calling_tools_is_not_checked_as_json(mock: MockProvider) -> None:
    mock.reply_tool_call("get_country", {})
    tool = {"name": "get_country", "parameters": {"type": "object", "properties": {}}}
    response = client().complete("Largest city of my country?", tools=[tool], response_format=JSON_OBJECT)
    assert response.tool_calls[0].name == "get_country" and response.rejected == ()
    mock.reply_tool_call("get_country", {})
    stream = client().stream("Largest city of my country?", tools=[tool], response_format=JSON_OBJECT)
    assert stream.response.tool_calls[0].name == "get_country"


def test_without_json_mode_nothing_is_added(mock: MockProvider) -> None:
    mock.reply(PROSE)
    assert client().complete("Where?").text == PROSE
    assert system_texts(mock.requests[0]) == [] and "response_format" not in mock.requests[0]


def test_the_callers_validators_run_too_and_max_retries_counts_the_re_asks(mock: MockProvider) -> None:
    mock.reply(PROSE).reply('{"city": "Lyon"}').reply(ANSWER)
    response = client().complete("Where?", response_format=JSON_OBJECT, validators=[regex("Paris")], max_retries=2)
    assert response.text == ANSWER
    assert [a.error for a in response.rejected][1] == "the answer does not contain a match for the pattern 'Paris'"
    mock.reply(PROSE)
    with pytest.raises(SchemaValidationError, match="not valid JSON") as caught:
        client().complete("Where?", response_format=JSON_OBJECT, max_retries=0)
    assert len(caught.value.attempts) == 1


def test_is_json_given_by_the_caller_runs_once(mock: MockProvider) -> None:
    mock.reply(PROSE).reply(ANSWER)
    response = client().complete("Where?", response_format=JSON_OBJECT, validators=[is_json])
    assert len(response.rejected) == 1 and len(mock.requests) == 2


def test_max_retries_alone_still_needs_validators_outside_json_mode() -> None:
    with pytest.raises(InvalidRequestError, match="pass validators= too"):
        client().complete("Where?", max_retries=1)


async def test_acomplete_asks_again(mock: MockProvider) -> None:
    mock.reply("```json\n" + ANSWER + "\n```").reply(ANSWER)
    response = await client().acomplete("Where?", response_format=JSON_OBJECT)
    assert json.loads(response.text)["country"] == "France"
    assert "not valid JSON" in last_user_text(mock.requests[1]) and system_texts(mock.requests[0]) == [INSTRUCTION]


def test_a_stream_carries_the_instruction_and_checks_the_end(mock: MockProvider) -> None:
    mock.reply_stream(['{"city": ', '"Paris"}'])
    stream = client().stream("Where?", response_format=JSON_OBJECT)
    assert "".join(event.text for event in stream if event.kind == "text") == '{"city": "Paris"}'
    assert json.loads(stream.response.text) == {"city": "Paris"}
    assert system_texts(mock.requests[0]) == [INSTRUCTION] and mock.requests[0]["response_format"] == JSON_OBJECT


def test_a_stream_that_is_not_json_raises_after_its_last_event(mock: MockProvider) -> None:
    mock.reply_stream(["Paris, ", "France."])
    stream = client().stream("Where?", response_format=JSON_OBJECT)
    seen: list[str] = []
    with pytest.raises(SchemaValidationError, match="streamed answer is not JSON") as caught:
        for event in stream:
            seen.append(event.text or "")
    assert "".join(seen) == "Paris, France."  # every event was delivered first
    assert stream.response.text == "Paris, France." and caught.value.attempts[0].raw == "Paris, France."
    assert len(mock.requests) == 1  # a stream is not asked again


async def test_astream_checks_the_end(mock: MockProvider) -> None:
    mock.reply_stream(["[1, ", "2]"]).reply_stream(["no"])
    good = client().astream("Numbers?", response_format=JSON_OBJECT)
    assert [json.loads((await good.get_response()).text)] == [[1, 2]]
    bad = client().astream("Numbers?", response_format=JSON_OBJECT)
    with pytest.raises(SchemaValidationError):
        await bad.get_response()


def test_the_instruction_is_added_once_and_only_in_json_mode() -> None:
    request = Request.build("Where?", system="Be brief.", response_format=JSON_OBJECT)
    once = with_instruction(request)
    assert with_instruction(once) == once and [m.text for m in once.messages] == ["Be brief.", INSTRUCTION, "Where?"]
    plain = Request.build("Where?")
    assert with_instruction(plain) == plain


def _weather(city: str) -> str:
    """The weather in a city."""
    return "sunny"


def test_gemini_and_cohere_json_mode_with_tools_gets_only_the_instruction() -> None:
    # Gemini: 400 "Function calling with a response mime type: 'application/json' is unsupported";
    # Cohere's v2 reference: response_format "is not supported when used in combinations with ... tools".
    request = with_instruction(Request.build("Where?", response_format=JSON_OBJECT, tools=[_weather]))
    spec = REGISTRY["gemini"]
    body = gemini.encode(for_wire(request, spec), spec, "gemini-2.5-flash", stream=False).body
    assert "generationConfig" not in body and body["tools"] and INSTRUCTION in json.dumps(body["systemInstruction"])
    spec = REGISTRY["cohere"]
    body = cohere.encode(for_wire(request, spec), spec, "command-a-03-2025", stream=False).body
    assert "response_format" not in body and body["tools"] and INSTRUCTION in json.dumps(body["messages"][0])
    assert for_wire(request, REGISTRY["openai"]) is request  # OpenAI takes both


@pytest.mark.parametrize(("provider", "model", "wire"), [("gemini", "gemini-2.5-flash", gemini),
                                                         ("cohere", "command-a-03-2025", cohere)])
def test_a_json_schema_with_tools_is_refused_where_the_api_refuses_it(provider: str, model: str, wire: Any) -> None:
    request = Request.build("Where?", tools=[_weather], response_format={
        "type": "json_schema", "json_schema": {"name": "place", "schema": {"type": "object"}}})
    with pytest.raises(UnsupportedCapabilityError, match="while it is offered tools"):
        wire.encode(for_wire(request, REGISTRY[provider]), REGISTRY[provider], model, stream=False)


def test_wires_without_a_json_object_mode_get_only_the_instruction() -> None:
    request = with_instruction(Request.build("Where?", response_format=JSON_OBJECT))
    spec = REGISTRY["anthropic"]
    body = anthropic.encode(for_wire(request, spec), spec, "claude-sonnet-4-5", stream=False).body
    assert "output_config" not in body and INSTRUCTION in json.dumps(body["system"])
    spec = REGISTRY["gemini"]
    body = gemini.encode(for_wire(request, spec), spec, "gemini-2.5-flash", stream=False).body
    assert body["generationConfig"] == {"responseMimeType": "application/json"}  # Gemini's native JSON mode
    assert for_wire(request, REGISTRY["openai"]) is request


def test_gemini_3_is_sent_a_json_schema_with_tools() -> None:
    request = Request.build("Where?", tools=[_weather], response_format={
        "type": "json_schema", "json_schema": {"name": "place", "schema": {"type": "object"}}})
    body = gemini.encode(request, REGISTRY["gemini"], "gemini-3-pro-preview", stream=False).body
    assert body["generationConfig"]["responseJsonSchema"] == {"type": "object"} and body["tools"]


def test_a_json_schema_to_a_groq_model_that_takes_none_is_refused_before_sending() -> None:
    # console.groq.com/docs/structured-outputs: json_schema on the listed model families only.
    from llmclient.wire import openai

    request = Request.build("Where?", response_format={
        "type": "json_schema", "json_schema": {"name": "place", "schema": {"type": "object"}}})
    with pytest.raises(UnsupportedCapabilityError, match="takes no JSON schema"):
        openai.encode(request, REGISTRY["groq"], "llama-3.3-70b-versatile", stream=False)
    body = openai.encode(request, REGISTRY["groq"], "openai/gpt-oss-120b", stream=False).body
    assert body["response_format"]["type"] == "json_schema"
    assert openai.encode(request, REGISTRY["openai"], "gpt-4o-mini", stream=False).body["response_format"]["type"] == "json_schema"
