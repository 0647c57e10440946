"""complete(..., validators=[...]): refuse, say why, ask again; against a loopback OpenAI-wire
server (tests/loopback.py) so the re-ask conversation is checked on the wire."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
from pydantic import BaseModel

from llmclient import InvalidRequestError, SchemaValidationError, is_json, matches_schema, not_empty, regex
from tests.loopback import Server, client, reply


class Point(BaseModel):
    x: int
    y: int


def test_builtins_accept_and_refuse_with_a_reason() -> None:
    assert not_empty("  hi ") is None and not_empty(" \n") == "the answer is empty"
    assert is_json('{"a": 1}') is None
    assert is_json("```json\n{}\n```") == "the answer is not valid JSON (Expecting value at position 0); reply with only the JSON"
    assert matches_schema(Point)('{"x": 1, "y": 2}') is None
    assert matches_schema(Point)('{"x": 1}') == "the answer does not match the schema: y: Field required"
    assert matches_schema({"type": "object", "required": ["x"]})("{}") == "the answer does not match the schema: value.x: required"
    assert regex(r"\d{4}")("in 1999") is None and regex(r"\d{4}", full=True)("in 1999") is not None
    assert regex(r"\d{4}", full=True)(" 1999\n") is None
    assert regex("^yes$")("no") == "the answer does not contain a match for the pattern '^yes$'"


def test_a_refused_answer_is_sent_back_and_the_accepted_one_returned(loopback: type[Server]) -> None:
    loopback.queue = [reply("", tokens=(10, 1)), reply("Sure: 42", tokens=(30, 4)), reply("42", tokens=(40, 2))]
    response = client("nat").complete("The answer?", validators=[not_empty, regex(r"^\d+$")], max_retries=2)
    assert response.text == "42"
    assert [a.error for a in response.rejected] == ["the answer is empty", "the answer does not contain a match for the pattern '^\\\\d+$'"]
    assert [a.raw for a in response.rejected] == ["", "Sure: 42"]
    # The empty answer is not replayed as an assistant turn; the refusal is.
    second, third = loopback.bodies[1]["messages"], loopback.bodies[2]["messages"]
    assert [m["role"] for m in second] == ["user", "user"] and second[1]["content"].startswith("Invalid: the answer is empty.")
    assert third[-2] == {"role": "assistant", "content": "Sure: 42"} and "pattern" in third[-1]["content"]
    assert (response.usage.input_tokens, response.usage.output_tokens) == (40, 2)  # this call only
    assert (response.total_usage.input_tokens, response.total_usage.output_tokens) == (80, 7)
    assert response.total_cost is not None and response.total_cost.total == Decimal("0.000094")  # 80 x $1 + 7 x $2 per 1M


def test_a_validator_may_raise_or_return_false(loopback: type[Server]) -> None:
    def short(text: str) -> None:
        if len(text) >= 5:
            raise ValueError("keep it under 5 characters")

    loopback.queue = [reply("far too long"), reply("ok!")]
    assert client("nat").complete("?", validators=[short]).rejected[0].error == "keep it under 5 characters"
    loopback.queue = [reply("a"), reply("b")]
    assert client("nat").complete("?", validators=[lambda t: t == "b"]).rejected[0].error == "refused by <lambda>"


def test_after_the_last_attempt_every_refusal_is_reported(loopback: type[Server]) -> None:
    loopback.queue = [reply("no"), reply("nope")]
    with pytest.raises(SchemaValidationError) as caught:
        client("nat").complete("?", validators=[is_json], max_retries=1)
    assert [a.raw for a in caught.value.attempts] == ["no", "nope"] and len(loopback.bodies) == 2
    assert caught.value.message.startswith("no answer passed the validators after 2 attempt(s) (validators): attempt 1: the answer is not valid JSON")


def test_a_bug_in_a_validator_is_not_the_models_to_fix(loopback: type[Server]) -> None:
    loopback.queue = [reply("x")]
    with pytest.raises(KeyError):
        client("nat").complete("?", validators=[lambda t: {}["missing"]])
    assert len(loopback.bodies) == 1


async def test_acomplete_with_validators(loopback: type[Server]) -> None:
    loopback.queue = [reply('{"x": 1}'), reply(json.dumps({"x": 1, "y": 2}))]
    response = await client("nat").acomplete("A point?", validators=[matches_schema(Point)])
    assert Point.model_validate_json(response.text) == Point(x=1, y=2) and len(response.rejected) == 1


def test_bad_validator_arguments_send_nothing(loopback: type[Server]) -> None:
    with pytest.raises(InvalidRequestError, match="validators= takes a list of callables"):
        client("nat").complete("?", validators=is_json)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="each validator must be a callable"):
        client("nat").complete("?", validators=["not_empty"])  # type: ignore[list-item]
    with pytest.raises(InvalidRequestError, match="pass validators= too"):
        client("nat").complete("?", max_retries=3)
    with pytest.raises(InvalidRequestError, match="a stream's text is already delivered"):
        client("nat").stream("?", validators=[not_empty])
    loopback.queue = [reply("x")]
    with pytest.raises(InvalidRequestError, match=r"validator <lambda> returned 3: return None to accept"):
        client("nat").complete("?", validators=[lambda t: 3])  # type: ignore[arg-type,return-value]
    assert len(loopback.bodies) == 1
