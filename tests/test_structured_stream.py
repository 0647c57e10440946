"""stream_structured: the partial-JSON parser on hand-written prefixes, and partial objects then
the validated value end to end against a loopback OpenAI-wire stream (tests/loopback.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import BaseModel

from llmclient import InvalidRequestError, SchemaValidationError
from llmclient.structured_stream import parse_partial
from tests.loopback import Server, client, stream_reply


class City(BaseModel):
    city: str
    population_m: float
    districts: list[str]


@pytest.mark.parametrize(("prefix", "expected"), [
    ("", None),
    ("{", {}),
    ('{"ci', {}),  # a key cut off is dropped
    ('{"city"', {}),
    ('{"city": ', {}),
    ('{"city": "Pa', {"city": "Pa"}),  # a string value grows in place
    ('{"city": "Pa\\', {"city": "Pa"}),  # a lone trailing backslash is half an escape
    ('{"city": "P\\"a', {"city": 'P"a'}),
    ('{"city": "Paris", "population_m": 2', {"city": "Paris"}),  # 2 may become 2.1
    ('{"city": "Paris", "population_m": 2.1,', {"city": "Paris", "population_m": 2.1}),
    ('{"city": "Paris", "population_m": 2.1}', {"city": "Paris", "population_m": 2.1}),
    ('{"ok": tru', {}),
    ('{"ok": true', {"ok": True}),
    ('{"districts": ["Marais", "Bas', {"districts": ["Marais", "Bas"]}),
    ('{"districts": [1, 2', {"districts": [1]}),
    ('{"a": {"b": [{"c": "d', {"a": {"b": [{"c": "d"}]}}),
    ('{"a": "x, y', {"a": "x, y"}),  # a comma inside a string is not a cut
])
def test_parse_partial(prefix: str, expected: Any) -> None:
    assert parse_partial(prefix) == expected


PARIS = {"city": "Paris", "population_m": 2.1, "districts": ["Marais", "Montmartre"]}
PIECES = ['{"city": "Pa', 'ris", "popul', 'ation_m": 2', '.1, "districts": ["Mar', 'ais", "Montmartre"]}']
EXPECTED_PARTIALS = [
    {"city": "Pa"},
    {"city": "Paris"},
    {"city": "Paris", "population_m": 2.1, "districts": ["Mar"]},
    {"city": "Paris", "population_m": 2.1, "districts": ["Marais", "Montmartre"]},
]


def test_native_stream_yields_partials_then_the_value(loopback: type[Server]) -> None:
    loopback.queue = [stream_reply(PIECES, tokens=(20, 9))]
    stream = client("nat").stream_structured("Largest city of France?", schema=City)
    items = list(stream)
    assert items[:-1] == EXPECTED_PARTIALS
    assert items[-1] == City(**PARIS) and stream.value == City(**PARIS)
    assert stream.usage is not None and (stream.usage.input_tokens, stream.usage.output_tokens) == (20, 9)
    assert stream.cost is not None and str(stream.cost.total) == "0.000038"  # 20 x $1 + 9 x $2 per 1M
    body = loopback.bodies[0]
    assert body["stream"] is True and body["response_format"]["json_schema"]["name"] == "City"


def test_tool_stream_reads_the_forced_tools_arguments(loopback: type[Server]) -> None:
    loopback.queue = [stream_reply(PIECES, tool="City")]
    stream = client("tls").stream_structured("Largest city of France?", schema=City)
    assert list(stream)[:-1] == EXPECTED_PARTIALS and stream.value == City(**PARIS)
    assert loopback.bodies[0]["tool_choice"] == {"type": "function", "function": {"name": "City"}}


async def test_async_stream_structured(loopback: type[Server]) -> None:
    loopback.queue = [stream_reply(PIECES)]
    stream = client("nat").astream_structured("Largest city of France?", schema=City)
    items = [item async for item in stream]
    assert items[:-1] == EXPECTED_PARTIALS and stream.value == City(**PARIS) == await stream.get_value()


def test_an_invalid_streamed_answer_is_not_asked_again(loopback: type[Server]) -> None:
    loopback.queue = [stream_reply(['{"city": "Paris"}'])]
    stream = client("nat").stream_structured("?", schema=City)
    with pytest.raises(SchemaValidationError, match="native strategy, streamed") as caught:
        list(stream)
    assert [a.raw for a in caught.value.attempts] == ['{"city": "Paris"}'] and len(loopback.bodies) == 1
    with pytest.raises(SchemaValidationError):
        stream.value  # noqa: B018


def test_a_model_without_native_or_tool_support_is_refused_before_sending(loopback: type[Server]) -> None:
    with pytest.raises(InvalidRequestError, match="stream_structured needs the native or tool strategy"):
        client("txt").stream_structured("?", schema=City)
    assert loopback.bodies == []


def test_value_before_iterating_drains_the_stream(loopback: type[Server]) -> None:
    loopback.queue = [stream_reply([json.dumps(PARIS)])]
    assert client("nat").stream_structured("?", schema=City).value == City(**PARIS)
