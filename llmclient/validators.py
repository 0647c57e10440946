"""Validators for plain completions: `complete(..., validators=[...])` checks the answer's text
and, when a validator refuses it, sends the refusal back to the model and asks again (the same
loop as structured output: `max_retries` more attempts, usage and cost summed in
`Response.total_usage` / `total_cost`, `SchemaValidationError` with every attempt at the end).

A validator is a callable taking the answer's text that either returns None (accepted) or an
error message (refused), or raises `ValueError` / `AssertionError` (refused, with the exception's
text). Any other exception is a bug in the validator and propagates: it is not the model's to fix.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from llmclient.errors import InvalidRequestError, SchemaValidationError
from llmclient.request import Request
from llmclient.policies.reask import Invalid, exhausted_error
from llmclient.schema import Target, reask_in_text
from llmclient.types import Attempt, Response

Validator = Callable[[str], str | bool | None]

_ASK_AGAIN = "Answer the original request again, corrected."


def not_empty(text: str) -> str | None:
    """Refuses an answer that is empty or only whitespace."""
    return None if text.strip() else "the answer is empty"


def is_json(text: str) -> str | None:
    """Refuses an answer that is not one JSON value (no prose, no code fence around it)."""
    try:
        json.loads(text)
    except json.JSONDecodeError as exc:
        return f"the answer is not valid JSON ({exc.msg} at position {exc.pos}); reply with only the JSON"
    return None


def matches_schema(schema: type[Any] | Mapping[str, Any]) -> Validator:
    """Refuses an answer that is not JSON matching `schema` (a pydantic model, TypedDict,
    dataclass or JSON-schema dict, as for `structured`)."""
    target: Target[Any] = Target(schema)

    def check(text: str) -> str | None:
        try:
            target.parse(text)
        except Invalid as problem:
            return str(problem)
        return None

    check.__name__ = f"matches_schema({target.name})"
    return check


def regex(pattern: str | re.Pattern[str], *, full: bool = False) -> Validator:
    """Refuses an answer in which `pattern` is not found (`full=True`: that it does not match
    the whole answer, surrounding whitespace aside)."""
    compiled = re.compile(pattern)

    def check(text: str) -> str | None:
        found = compiled.fullmatch(text.strip()) if full else compiled.search(text)
        if found is None:
            how = "match" if full else "contain a match for"
            return f"the answer does not {how} the pattern {compiled.pattern!r}"
        return None

    check.__name__ = f"regex({compiled.pattern!r})"
    return check


def checked(validators: Sequence[Validator]) -> tuple[Validator, ...]:
    """The validators, checked to be callables before any request is sent."""
    if isinstance(validators, (str, bytes)) or not isinstance(validators, Sequence):
        raise InvalidRequestError(f"validators= takes a list of callables, got {validators!r}")
    for validator in validators:
        if not callable(validator):
            raise InvalidRequestError(f"each validator must be a callable taking the answer's text, got {validator!r}")
    return tuple(validators)


def first_refusal(text: str, validators: Sequence[Validator]) -> str | None:
    """The first validator's refusal of `text`, as a message for the model; None when all accept."""
    for validator in validators:
        name = getattr(validator, "__name__", type(validator).__name__)
        try:
            verdict = validator(text)
        except (ValueError, AssertionError) as exc:
            return str(exc) or f"refused by {name}"
        if verdict is None or verdict is True:
            continue
        if verdict is False:
            return f"refused by {name}"
        if isinstance(verdict, str):
            if verdict:
                return verdict
            continue
        raise InvalidRequestError(f"validator {name} returned {verdict!r}: return None to accept or an error message to refuse")
    return None


class ValidatorLoop:
    """One `complete(..., validators=...)` call across its attempts (see `policies.reask.AskLoop`).
    `json_answer` (JSON mode, `llmclient.json_mode`): `is_json` runs first, on every answer that
    calls no tools."""

    def __init__(self, request: Request, validators: tuple[Validator, ...], *, json_answer: bool = False) -> None:
        self.current = request
        self.validators = validators
        self.json_answer = json_answer
        self.attempts: list[Attempt] = []

    def judge(self, response: Response) -> Response:
        checks = (is_json, *self.validators) if self.json_answer and not response.tool_calls else self.validators
        error = first_refusal(response.text, checks)
        if error is not None:
            self.attempts.append(Attempt(response=response, raw=response.text, error=error))
            self.current = reask_in_text(self.current, response, error, _ASK_AGAIN)
            raise Invalid(error)
        return response.model_copy(update={"rejected": tuple(self.attempts)})

    def exhausted(self, provider: str, model: str) -> SchemaValidationError:
        return exhausted_error(provider, model, "no answer passed the validators", "validators", self.attempts)
