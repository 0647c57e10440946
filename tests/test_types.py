"""Value types: Usage arithmetic, Message helpers, Response.message, frozen models, tool results."""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

import pytest
from pydantic import ValidationError

from llmclient import Cost, InvalidRequestError, Message, Prices, Request, Response, TextPart, ToolCall, Usage
from llmclient.types import tool_result_text

CALL = ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})


def response(**overrides: Any) -> Response:
    fields: dict[str, Any] = {
        "text": "",
        "finish_reason": "tool_calls",
        "usage": Usage(input_tokens=10, output_tokens=5),
        "model": "gpt-4o-mini",
        "provider": "openai",
        "latency_ms": 12.5,
        "raw": {},
        "tool_calls": [CALL, ToolCall(id="call_2", name="get_time", arguments={})],
    }
    fields.update(overrides)
    return Response(**fields)


@pytest.mark.parametrize(
    ("counts", "total"),
    [
        ({}, 0),
        ({"input_tokens": 12, "output_tokens": 30}, 42),
        ({"input_tokens": 1000, "cache_read_tokens": 800, "cache_write_tokens": 100, "output_tokens": 7}, 1007),
        ({"input_tokens": 5, "output_tokens": 200, "reasoning_tokens": 150}, 205),
    ],
)
def test_usage_total_is_input_plus_output(counts: dict[str, int], total: int) -> None:
    usage = Usage(**counts)
    assert usage.total_tokens == total
    assert usage.model_dump()["total_tokens"] == total


def test_usage_defaults_and_rejects_negative_or_unknown_counts() -> None:
    assert Usage().model_dump() == {
        "input_tokens": 0,
        "output_tokens": 0,
        "cache_read_tokens": 0,
        "cache_write_tokens": 0,
        "reasoning_tokens": 0,
        "iterations": (),
        "tool_uses": {},
        "total_tokens": 0,
    }
    with pytest.raises(ValidationError):
        Usage(input_tokens=-1)
    with pytest.raises(ValidationError):
        Usage(prompt_tokens=3)  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("message", "expected"),
    [
        (Message.system("Be brief."), {"role": "system", "content": "Be brief.", "tool_calls": [], "tool_call_id": None, "name": None}),
        (Message.user("hi"), {"role": "user", "content": "hi", "tool_calls": [], "tool_call_id": None, "name": None}),
        (Message.assistant(), {"role": "assistant", "content": "", "tool_calls": [], "tool_call_id": None, "name": None}),
        (
            Message.assistant("Checking.", [CALL]),
            {
                "role": "assistant",
                "content": "Checking.",
                "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
                "tool_call_id": None,
                "name": None,
            },
        ),
        (
            Message.tool_result(CALL, "18 C"),
            {"role": "tool", "content": "18 C", "tool_calls": [], "tool_call_id": "call_1", "name": "get_weather"},
        ),
        (
            Message.tool_result(CALL, {"temp_c": 18, "sky": "clair ☀"}),
            {
                "role": "tool",
                "content": '{"temp_c": 18, "sky": "clair ☀"}',
                "tool_calls": [],
                "tool_call_id": "call_1",
                "name": "get_weather",
            },
        ),
    ],
)
def test_message_helpers(message: Message, expected: dict[str, Any]) -> None:
    assert message.model_dump() == expected


@pytest.mark.parametrize(
    ("result", "text"),
    [
        ("plain", "plain"),
        ("", ""),
        (None, "null"),
        (True, "true"),
        (3, "3"),
        ([1, "a", None], '[1, "a", null]'),
        ({"ok": False}, '{"ok": false}'),
        ({"city": "Zürich"}, '{"city": "Zürich"}'),
    ],
)
def test_tool_result_text_is_json_for_non_strings(result: Any, text: str) -> None:
    assert tool_result_text("f", result) == text


@pytest.mark.parametrize(("result", "kind"), [({1, 2}, "set"), (object(), "object"), ({"raw": b"\x00"}, "dict")])
def test_tool_result_that_is_not_json_is_an_invalid_request(result: Any, kind: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Message.tool_result(CALL, result)
    assert f"the result of tool 'get_weather' is a {kind}, which is not JSON-serialisable" in str(caught.value)
    assert isinstance(caught.value.__cause__, TypeError)


def test_tool_result_with_nan_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        tool_result_text("f", {"x": math.nan})


def test_message_text_joins_parts() -> None:
    message = Message(role="user", content=[TextPart(text="Hello, "), TextPart(text="world")])
    assert message.text == "Hello, world"
    assert Message.user("plain").text == "plain"


def test_message_rejects_unknown_role_and_fields() -> None:
    with pytest.raises(ValidationError):
        Message(role="bot", content="hi")  # type: ignore[arg-type]
    with pytest.raises(ValidationError):
        Message(role="user", content="hi", images=[])  # type: ignore[call-arg]


def test_response_message_round_trips_tool_calls() -> None:
    reply = response(text="Let me check.", reasoning="the user wants weather")
    assert reply.message == Message(
        role="assistant",
        content="Let me check.",
        tool_calls=[
            ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
            ToolCall(id="call_2", name="get_time", arguments={}),
        ],
    )
    conversation = [Message.user("Weather in Paris?"), reply.message, Message.tool_result(CALL, {"temp_c": 18})]
    assert Request.build(conversation).messages == conversation


@pytest.mark.parametrize("value", [Usage(input_tokens=10, output_tokens=5), response()])
def test_dumped_values_validate_back(value: Usage | Response) -> None:
    assert type(value).model_validate_json(value.model_dump_json()) == value


def test_response_finish_reason_is_normalised() -> None:
    for reason in ("stop", "length", "tool_calls", "content_filter", "other"):
        assert response(finish_reason=reason).finish_reason == reason
    with pytest.raises(ValidationError):
        response(finish_reason="end_turn")


def test_response_usage_is_required_but_may_be_none() -> None:
    assert response(usage=None).usage is None
    fields = response().model_dump()
    del fields["usage"]
    with pytest.raises(ValidationError):
        Response(**fields)


PRICES = Prices(input=Decimal("0.00000015"), output=Decimal("0.0000006"), source="openai.com/api/pricing", as_of="2025-01-01")
COST = Cost(
    input=Decimal("0.0000015"),
    cache_read=Decimal("0"),
    cache_write=Decimal("0"),
    output=Decimal("0.000003"),
    total=Decimal("0.0000045"),
    source="price-table",
    prices=PRICES,
)


@pytest.mark.parametrize(
    ("value", "field", "new"),
    [
        (Usage(input_tokens=1), "input_tokens", 2),
        (CALL, "name", "other"),
        (Message.user("hi"), "content", "bye"),
        (response(), "text", "changed"),
        (COST, "total", Decimal("1")),
        (PRICES, "input", Decimal("1")),
        (TextPart(text="a"), "text", "b"),
    ],
)
def test_values_are_frozen(value: Any, field: str, new: Any) -> None:
    before = getattr(value, field)
    with pytest.raises(ValidationError):
        setattr(value, field, new)
    assert getattr(value, field) == before


def test_values_are_hashable_where_their_fields_are() -> None:
    assert hash(Usage(input_tokens=3)) == hash(Usage(input_tokens=3))
    assert Usage(input_tokens=3) == Usage(input_tokens=3)


def test_cost_source_is_provider_or_price_table() -> None:
    assert COST.model_copy(update={"source": "provider"}).source == "provider"
    with pytest.raises(ValidationError):
        Cost(**{**COST.model_dump(), "source": "estimate"})


def _cost(source: str, total: str, *, tools: str = "0", computed: str | None = None) -> Cost:
    return Cost(input=Decimal("0.001"), cache_read=Decimal(0), cache_write=Decimal(0), output=Decimal("0.002"),
                tools=Decimal(tools), total=Decimal(total), source=source,  # type: ignore[arg-type]
                computed_total=None if computed is None else Decimal(computed))


def test_summed_costs_keep_the_tool_fees_so_the_parts_add_up_to_the_total() -> None:
    from llmclient.types import sum_cost

    # Two answers that each ran a web search at $0.01 (0.001 + 0.002 + 0.01 = 0.013 each).
    summed = sum_cost([_cost("price-table", "0.013", tools="0.01"), _cost("price-table", "0.013", tools="0.01")])
    assert summed is not None
    assert (summed.tools, summed.total) == (Decimal("0.02"), Decimal("0.026"))
    assert summed.input + summed.cache_read + summed.cache_write + summed.output + summed.tools == summed.total


def test_a_cache_hit_in_a_sum_does_not_relabel_where_the_dollars_came_from() -> None:
    from llmclient.cache import HIT_COST
    from llmclient.types import sum_cost

    provider = sum_cost([HIT_COST, _cost("provider", "0.004", computed="0.003")])  # a hit refused, then asked again
    assert provider is not None
    assert (provider.source, provider.total, provider.computed_total) == ("provider", Decimal("0.004"), Decimal("0.003"))
    priced = sum_cost([_cost("price-table", "0.003"), HIT_COST])
    assert priced is not None and (priced.source, priced.total) == ("price-table", Decimal("0.003"))
    hits = sum_cost([HIT_COST, HIT_COST])
    assert hits is not None and (hits.source, hits.total) == ("cache", Decimal(0))
    mixed = sum_cost([_cost("provider", "0.004", computed="0.003"), _cost("price-table", "0.003")])
    assert mixed is not None and (mixed.source, mixed.total, mixed.computed_total) == ("price-table", Decimal("0.007"), None)
    assert sum_cost([_cost("provider", "0.004"), None]) is None  # an unknown part: never a partial sum
