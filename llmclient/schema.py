"""Structured output: a validated value of the caller's schema, whatever the provider supports.

The strategy is chosen here, once, from the provider's declared capabilities:
- native    - the provider's JSON-schema response format (`structured_output` capability),
- tool      - one tool whose input schema is the caller's, forced with tool_choice (`tools`),
- prompted  - instructions plus JSON extraction from the text (fenced or not): the last resort.
`strategy=` overrides it. An answer that is not valid JSON or fails validation is sent back to
the model with the error, and asked again (`llmclient.policies.reask`), up to `max_retries` times;
usage and cost are summed over every attempt. After the last one: `SchemaValidationError` with
every attempt.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, Generic, Literal, TypeVar

from typing_extensions import is_typeddict  # knows both typing and typing_extensions TypedDicts

from pydantic import BaseModel, PydanticUserError, TypeAdapter, ValidationError

from llmclient.errors import InvalidRequestError, SchemaValidationError
from llmclient.policies.reask import AskLoop, Invalid, exhausted_error
from llmclient.request import Request, ResponseFormat, Tool
from llmclient.types import Attempt, Cost, Message, Response, Usage, sum_cost, sum_usage

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec

T = TypeVar("T")
Strategy = Literal["native", "tool", "prompted"]
STRATEGIES: tuple[Strategy, ...] = ("native", "tool", "prompted")
_FENCED = re.compile(r"```(?:json)?\s*(.*?)```", re.DOTALL)


@dataclasses.dataclass(frozen=True)
class StructuredResult(Generic[T]):
    """The validated value and what it took: every attempt, usage and cost summed over them."""

    value: T
    strategy: Strategy
    attempts: tuple[Attempt, ...]

    @property
    def usage(self) -> Usage:
        return sum_usage([a.response.billed_usage for a in self.attempts])

    @property
    def cost(self) -> Cost | None:
        return sum_cost([a.response.cost for a in self.attempts])


class Target(Generic[T]):
    """The caller's schema: a pydantic model, a TypedDict, a dataclass, or a JSON-schema dict."""

    def __init__(self, schema: Any) -> None:
        self.schema = schema
        if isinstance(schema, Mapping):
            if schema.get("type") != "object":
                raise InvalidRequestError('a JSON-schema dict for structured output must have "type": "object"')
            self.json_schema: dict[str, Any] = dict(schema)
            self.name = str(schema.get("title") or "answer")
            self._adapter: TypeAdapter[Any] | None = None
        elif isinstance(schema, type) and (issubclass(schema, BaseModel) or is_typeddict(schema) or dataclasses.is_dataclass(schema)):
            try:
                self._adapter = TypeAdapter(schema)
                self.json_schema = self._adapter.json_schema()
            except PydanticUserError as exc:  # e.g. typing.TypedDict on Python 3.11
                raise InvalidRequestError(f"schema {schema.__name__} cannot be used: {exc.message}") from exc
            self.name = schema.__name__
        else:
            raise InvalidRequestError(
                f"schema= takes a pydantic model, a TypedDict, a dataclass or a JSON-schema dict, got {schema!r}"
            )
        self.name = re.sub(r"[^A-Za-z0-9_-]", "_", self.name)[:64] or "answer"

    def parse(self, text: str) -> T:
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise Invalid(f"the answer is not valid JSON ({exc.msg} at position {exc.pos})") from exc
        if self._adapter is None:
            problems = check_json_schema(data, self.json_schema)
            if problems:
                raise Invalid("the answer does not match the schema: " + "; ".join(problems[:5]))
            return data  # type: ignore[no-any-return]
        try:
            return self._adapter.validate_python(data)  # type: ignore[no-any-return]
        except ValidationError as exc:
            details = "; ".join(f"{'.'.join(map(str, e['loc'])) or 'value'}: {e['msg']}" for e in exc.errors()[:5])
            raise Invalid(f"the answer does not match the schema: {details}") from exc

    def strict_schema(self) -> tuple[dict[str, Any], bool]:
        """The schema for a strict native response format, and whether strict mode can hold."""
        schema = json.loads(json.dumps(self.json_schema))
        strict = _close_objects(schema)
        return schema, strict


def _close_objects(node: Any) -> bool:
    """additionalProperties: false on every object; strict needs every property required."""
    strict = True
    if isinstance(node, dict):
        if node.get("type") == "object" and "properties" in node:
            node.setdefault("additionalProperties", False)
            strict = set(node.get("required", [])) == set(node["properties"])
        for value in node.values():
            strict = _close_objects(value) and strict
    elif isinstance(node, list):
        for item in node:
            strict = _close_objects(item) and strict
    return strict


_JSON_TYPES: dict[str, tuple[type, ...]] = {
    "object": (dict,), "array": (list,), "string": (str,), "integer": (int,), "number": (int, float),
    "boolean": (bool,), "null": (type(None),),
}


def check_json_schema(value: Any, schema: Mapping[str, Any], where: str = "value") -> list[str]:
    """The common JSON-schema subset (type, properties, required, items, enum), for dict schemas."""
    problems: list[str] = []
    kinds = schema.get("type")
    if kinds is not None:
        allowed = kinds if isinstance(kinds, list) else [kinds]
        ok = any(isinstance(value, _JSON_TYPES.get(k, (object,))) and not (k in ("integer", "number") and isinstance(value, bool))
                 for k in allowed)
        if not ok:
            return [f"{where}: expected {' or '.join(allowed)}, got {type(value).__name__}"]
    if "enum" in schema and value not in schema["enum"]:
        problems.append(f"{where}: {value!r} is not one of {schema['enum']}")
    if isinstance(value, dict):
        problems += [f"{where}.{key}: required" for key in schema.get("required", []) if key not in value]
        for key, sub in (schema.get("properties") or {}).items():
            if key in value:
                problems += check_json_schema(value[key], sub, f"{where}.{key}")
        if schema.get("additionalProperties") is False:
            problems += [f"{where}.{key}: not allowed" for key in value if key not in (schema.get("properties") or {})]
    if isinstance(value, list) and isinstance(schema.get("items"), Mapping):
        for index, item in enumerate(value):
            problems += check_json_schema(item, schema["items"], f"{where}[{index}]")
    return problems


def choose_strategy(spec: ProviderSpec, requested: Strategy | None = None, model_id: str = "") -> Strategy:
    """The one place the strategy is decided: the caller's choice, else the best the model has."""
    if requested is not None:
        if requested not in STRATEGIES:
            raise InvalidRequestError(f"strategy= must be one of {', '.join(STRATEGIES)}, got {requested!r}")
        return requested
    if spec.native_schema(model_id):
        return "native"
    return "tool" if "tools" in spec.capabilities else "prompted"


def first_request(request: Request, target: Target[Any], strategy: Strategy) -> Request:
    """The request that asks for the schema in the strategy's way."""
    if strategy == "native":  # each wire sends it in its own form (response_format, responseJsonSchema, ...)
        schema, strict = target.strict_schema()
        wanted = ResponseFormat(type="json_schema", json_schema=schema, name=target.name, strict=strict)
        return request.model_copy(update={"response_format": wanted})
    if strategy == "tool":
        tool = Tool(name=target.name, description=f"Give the answer as {target.name}.", parameters=target.json_schema)
        return request.model_copy(update={"tools": [*request.tools, tool], "tool_choice": target.name})
    instruction = ("Answer with only a JSON value matching this JSON schema, and nothing else:\n"
                   + json.dumps(target.json_schema))
    return request.model_copy(update={"messages": [Message.system(instruction), *request.messages]})


def answer_text(response: Response, target: Target[Any], strategy: Strategy) -> str:
    """The JSON the model produced, by strategy (raises Invalid when there is none)."""
    if strategy == "tool":
        calls = [call for call in response.tool_calls if call.name == target.name]
        if not calls:
            raise Invalid(f"the answer did not call {target.name}")
        return json.dumps(calls[0].arguments)
    text = response.text.strip()
    if strategy == "prompted":
        fenced = _FENCED.search(text)
        if fenced:
            return fenced.group(1).strip()
        start = min((i for i in (text.find("{"), text.find("[")) if i >= 0), default=-1)
        end = max(text.rfind("}"), text.rfind("]"))
        if start >= 0 and end > start:
            return text[start : end + 1]
    return text


def reask(request: Request, response: Response, target: Target[Any], strategy: Strategy, error: str) -> Request:
    """The conversation so far plus the error, so the next attempt can correct itself."""
    if strategy == "tool":
        calls = [call for call in response.tool_calls if call.name == target.name]
        if calls:
            fix = f"Invalid: {error}. Answer again with the corrected value only."
            results = [Message.tool_result(call, fix) for call in calls]
            return request.model_copy(update={"messages": [*request.messages, response.message, *results]})
    return reask_in_text(request, response, error, "Answer again with the corrected value only.")


def reask_in_text(request: Request, response: Response, error: str, instruction: str) -> Request:
    """The conversation plus the refused answer and a user turn saying what was wrong."""
    follow_up = Message.user(f"Invalid: {error}. {instruction}")
    earlier = [response.message] if response.text.strip() else []
    return request.model_copy(update={"messages": [*request.messages, *earlier, follow_up]})


class _Loop(Generic[T]):
    """The state of one structured call across attempts."""

    def __init__(self, request: Request, target: Target[T], strategy: Strategy) -> None:
        self.target, self.strategy = target, strategy
        self.current = first_request(request, target, strategy)
        self.attempts: list[Attempt] = []

    def judge(self, response: Response) -> StructuredResult[T]:
        raw = ""
        try:
            raw = answer_text(response, self.target, self.strategy)
            value = self.target.parse(raw)
        except Invalid as problem:  # tenacity retries on it, with the error in the conversation
            self.attempts.append(Attempt(response=response, raw=raw, error=str(problem)))
            self.current = reask(self.current, response, self.target, self.strategy, str(problem))
            raise
        self.attempts.append(Attempt(response=response, raw=raw, error=None))
        return StructuredResult(value, self.strategy, tuple(self.attempts))

    def exhausted(self, provider: str, model: str) -> SchemaValidationError:
        return exhausted_error(provider, model, f"no valid {self.target.name}", f"{self.strategy} strategy", self.attempts)


def structured_loop(request: Request, target: Target[T], strategy: Strategy) -> AskLoop[StructuredResult[T]]:
    """The re-ask loop of one structured call (see `llmclient.policies.reask`)."""
    return _Loop(request, target, strategy)
