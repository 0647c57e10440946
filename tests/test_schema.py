"""Structured output end to end against a loopback server speaking the OpenAI wire (tests/loopback.py): the
strategy chosen from capabilities, the request each strategy sends, validation, re-ask with the
error, and usage/cost summed over attempts."""

from __future__ import annotations

import dataclasses
import json
from decimal import Decimal
from typing import Any

import pytest
from pydantic import BaseModel
from typing_extensions import TypedDict  # pydantic needs it on Python 3.11

from llmclient import InvalidRequestError, SchemaValidationError
from tests.loopback import Server, client, reply


class City(BaseModel):
    city: str
    population_m: float


class CityDict(TypedDict):
    city: str
    population_m: float


@dataclasses.dataclass
class CityData:
    city: str
    population_m: float


PARIS = {"city": "Paris", "population_m": 2.1}


def test_native_strategy_sends_a_strict_json_schema(loopback: type[Server]) -> None:
    loopback.queue = [reply(json.dumps(PARIS))]
    result = client("nat").structured_result("Largest city of France?", schema=City)
    assert (result.value, result.strategy, len(result.attempts)) == (City(**PARIS), "native", 1)
    response_format = loopback.bodies[0]["response_format"]
    assert response_format["type"] == "json_schema"
    assert response_format["json_schema"]["name"] == "City" and response_format["json_schema"]["strict"] is True
    assert response_format["json_schema"]["schema"]["additionalProperties"] is False


def test_an_invalid_answer_is_sent_back_with_the_error_and_costs_add_up(loopback: type[Server]) -> None:
    loopback.queue = [reply('{"city": "Paris"}', tokens=(10, 5)), reply(json.dumps(PARIS), tokens=(40, 7))]
    result = client("nat").structured_result("Largest city of France?", schema=City)
    assert result.value == City(**PARIS)
    assert [a.error for a in result.attempts] == ["the answer does not match the schema: population_m: Field required", None]
    second = loopback.bodies[1]["messages"]
    assert second[-2] == {"role": "assistant", "content": '{"city": "Paris"}'}
    assert second[-1]["role"] == "user" and "population_m: Field required" in second[-1]["content"]
    assert (result.usage.input_tokens, result.usage.output_tokens) == (50, 12)
    assert result.cost is not None and result.cost.total == Decimal("0.000074")  # 50 x $1 + 12 x $2 per 1M


def test_tool_strategy_forces_one_tool_with_the_schema(loopback: type[Server]) -> None:
    loopback.queue = [reply(None, arguments={"city": "Paris"}), reply(None, arguments=PARIS)]
    result = client("tls").structured_result("Largest city of France?", schema=City)
    assert (result.value, result.strategy) == (City(**PARIS), "tool")
    first = loopback.bodies[0]
    assert [t["function"]["name"] for t in first["tools"]] == ["City"]
    assert first["tool_choice"] == {"type": "function", "function": {"name": "City"}}
    assert "response_format" not in first
    answered = loopback.bodies[1]["messages"][-1]  # the error goes back as the tool's result
    assert answered["role"] == "tool" and answered["tool_call_id"] == "call_1" and "population_m" in answered["content"]


def test_prompted_strategy_extracts_fenced_json(loopback: type[Server]) -> None:
    loopback.queue = [reply("Sure! Here it is:\n```json\n" + json.dumps(PARIS) + "\n```")]
    assert client("txt").structured("Largest city of France?", schema=City) == City(**PARIS)
    system = loopback.bodies[0]["messages"][0]
    assert system["role"] == "system" and '"population_m"' in system["content"] and "JSON" in system["content"]


def test_after_the_last_attempt_every_error_is_reported(loopback: type[Server]) -> None:
    loopback.queue = [reply("not json"), reply("[]"), reply('{"city": 3}')]
    with pytest.raises(SchemaValidationError) as caught:
        client("nat").structured("Largest city of France?", schema=City, max_retries=2)
    assert len(caught.value.attempts) == 3 and len(loopback.bodies) == 3
    assert "attempt 1: the answer is not valid JSON (Expecting value at position 0)" in caught.value.message
    assert [a.raw for a in caught.value.attempts] == ["not json", "[]", '{"city": 3}']


@pytest.mark.parametrize(("schema", "expected"), [
    (CityDict, PARIS),
    (CityData, CityData(**PARIS)),
    ({"type": "object", "properties": {"city": {"type": "string"}, "population_m": {"type": "number"}},
      "required": ["city", "population_m"]}, PARIS),
])
def test_typeddicts_dataclasses_and_dict_schemas(loopback: type[Server], schema: Any, expected: Any) -> None:
    loopback.queue = [reply(json.dumps(PARIS))]
    assert client("nat").structured("Largest city of France?", schema=schema) == expected


def test_a_dict_schema_is_checked_too(loopback: type[Server]) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    loopback.queue = [reply('{"city": 7}'), reply('{"town": "Paris"}')]
    with pytest.raises(SchemaValidationError, match=r"value\.city: expected string, got int.*value\.city: required"):
        client("nat").structured("?", schema=schema, max_retries=1)


async def test_astructured(loopback: type[Server]) -> None:
    loopback.queue = [reply("oops"), reply(json.dumps(PARIS))]
    result = await client("nat").astructured_result("Largest city of France?", schema=City)
    assert (result.value, len(result.attempts)) == (City(**PARIS), 2)


def test_strategy_override_and_bad_arguments(loopback: type[Server]) -> None:
    loopback.queue = [reply(json.dumps(PARIS))]
    assert client("nat").structured_result("?", schema=City, strategy="prompted").strategy == "prompted"
    assert "response_format" not in loopback.bodies[0]
    with pytest.raises(InvalidRequestError, match="strategy= must be one of native, tool, prompted"):
        client("nat").structured("?", schema=City, strategy="magic")  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="schema= takes a pydantic model"):
        client("nat").structured("?", schema=int)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="max_retries must be an integer >= 0"):
        client("nat").structured("?", schema=City, max_retries=-1)
    assert len(loopback.bodies) == 1  # the bad calls sent nothing


@pytest.mark.parametrize("provider", ["gemini", "cohere", "openai", "anthropic"])
def test_the_native_strategy_asks_in_each_wire_s_own_form(provider: str) -> None:
    # Gemini: generationConfig.responseMimeType + responseJsonSchema; Cohere: response_format
    # json_object with the bare schema; OpenAI: response_format json_schema; Anthropic:
    # output_config.format (their API references) - never OpenAI's field passed through as is.
    from llmclient.providers import REGISTRY
    from llmclient.request import Request
    from llmclient.schema import Target, first_request
    from llmclient.wire import codec

    class City(BaseModel):
        name: str

    spec = REGISTRY[provider]
    request = first_request(Request.build("Largest city of France?"), Target(City), "native")
    body = codec(spec.wire).encode(request, spec, "m", stream=False).body
    schema = {"type": "object", "title": "City", "properties": {"name": {"type": "string", "title": "Name"}},
              "required": ["name"], "additionalProperties": False}  # pydantic's schema, closed for strict mode
    if provider == "gemini":
        assert "responseFormat" not in body and "response_format" not in body
        assert body["generationConfig"] == {"responseMimeType": "application/json", "responseJsonSchema": schema}
    elif provider == "cohere":
        assert body["response_format"] == {"type": "json_object", "json_schema": schema}
    elif provider == "openai":
        assert body["response_format"] == {"type": "json_schema", "json_schema": {"name": "City", "schema": schema, "strict": True}}
    else:
        assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}
