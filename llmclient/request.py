"""The request value object: every argument of a call, validated once, shared by all entry points.

`Request.build(...)` is the single place that knows the call keywords; `Client.complete`,
`acomplete`, `stream` and `astream` forward to it.
"""

from __future__ import annotations

import inspect
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any, Literal, get_type_hints

from pydantic import BaseModel, ConfigDict, ValidationError, create_model

from llmclient.errors import InvalidRequestError
from llmclient.files import FileLike, check_on_disk, with_files
from llmclient.request_checks import check_json, each, headers, items_of, stop_sequences
from llmclient.types import ROLES, FilePart, Message, TextPart, ToolCall, tool_result_text

Prompt = str | Message | Sequence[Message | Mapping[str, Any]]

_TOOL_NAME = re.compile(r"[A-Za-z0-9_-]{1,64}")  # used with fullmatch: "$" would accept a final "\n"
_CHOICES = ("auto", "none", "required")


class Tool(BaseModel):
    """A function the model may call; `parameters` is a JSON-schema object."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    description: str = ""
    parameters: dict[str, Any]


ToolLike = Tool | Mapping[str, Any] | Callable[..., Any]


class ResponseFormat(BaseModel):
    """Ask for JSON: any JSON object (`json_object`), or one matching `json_schema` (`json_schema`,
    with an optional `name` and `strict` adherence where the provider offers it)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: Literal["json_schema", "json_object"]
    json_schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool | None = None

    @classmethod
    def of(cls, value: ResponseFormat | Mapping[str, Any]) -> ResponseFormat:
        """From a ResponseFormat or the OpenAI form: `{"type": "json_object"}` or
        `{"type": "json_schema", "json_schema": {"name": ..., "schema": {...}, "strict": ...}}`."""
        if isinstance(value, ResponseFormat):
            return value
        if not isinstance(value, Mapping) or value.get("type") not in ("json_schema", "json_object"):
            raise InvalidRequestError('response_format must be {"type": "json_object"} or {"type": "json_schema", '
                                      f'"json_schema": {{"name": ..., "schema": {{...}}}}}}, got {value!r:.120}')
        if value["type"] == "json_object":
            if set(value) != {"type"}:
                raise InvalidRequestError(f"response_format json_object takes no other keys, got {sorted(value)}")
            return cls(type="json_object")
        spec = value.get("json_schema")
        if not isinstance(spec, Mapping) or not isinstance(spec.get("schema"), Mapping):
            raise InvalidRequestError('response_format json_schema needs "json_schema": {"schema": {...}}')
        unknown = (set(spec) - {"name", "schema", "strict"}) | (set(value) - {"type", "json_schema"})
        if unknown:  # e.g. OpenAI's json_schema.description, which no other provider has a place for
            raise InvalidRequestError(f"response_format has keys llmclient does not send: {sorted(unknown)}; "
                                      f"describe the answer in the schema's own \"description\" instead")
        name, strict = spec.get("name"), spec.get("strict")
        if name is not None and not (isinstance(name, str) and _TOOL_NAME.fullmatch(name)):
            raise InvalidRequestError(f"response_format name {name!r} must be 1-64 letters, digits, '_' or '-'")
        if strict is not None and not isinstance(strict, bool):
            raise InvalidRequestError(f"response_format strict must be true or false, got {strict!r}")
        check_json(spec["schema"], "response_format json_schema.schema")
        return cls(type="json_schema", json_schema=dict(spec["schema"]), name=name, strict=strict)


class Request(BaseModel):
    """One call's arguments. `options` are provider-specific keywords, put into the request body
    as they are (a key the wire format sets itself is refused, not overwritten)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    messages: list[Message]
    tools: list[Tool] = []
    tool_choice: str | None = None
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] | None = None
    response_format: ResponseFormat | None = None
    extra_headers: dict[str, str] = {}  # sent as HTTP headers (e.g. anthropic-beta), never in the body
    options: dict[str, Any] = {}
    check_context: bool = True  # False: send an input the catalogue estimates over the context window anyway

    @property
    def system(self) -> str | None:
        """Every system message's text, joined by a blank line (None when there is none)."""
        texts = [message.text for message in self.messages if message.role == "system"]
        return "\n\n".join(texts) if texts else None

    @classmethod
    def build(
        cls,
        prompt: Prompt,
        *,
        system: str | None = None,
        tools: Sequence[ToolLike] | None = None,
        tool_choice: str | None = None,
        files: Sequence[FileLike] | None = None,
        max_tokens: int | None = None,
        temperature: float | None = None,
        top_p: float | None = None,
        stop: str | Sequence[str] | None = None,
        response_format: ResponseFormat | Mapping[str, Any] | None = None,
        extra_headers: Mapping[str, str] | None = None,
        check_context: bool = True,
        **provider_options: Any,
    ) -> Request:
        messages = _messages(prompt)
        if files is not None:
            if isinstance(files, (str, bytes)) or not isinstance(files, Sequence):
                raise InvalidRequestError("files= takes a list (of paths, bytes, file objects or URLs)")
            messages = with_files(messages, files)
        if system is not None:
            if not isinstance(system, str) or not system.strip():
                raise InvalidRequestError("system= is empty: pass the instructions as a non-empty string, or omit it")
            messages.insert(0, Message.system(system))
        given = [] if tools is None else items_of(tools, "tools", "tools (functions, Tool objects or JSON-schema dicts)")
        built_tools: list[Tool] = each(given, "tools", to_tool)
        names = [tool.name for tool in built_tools]
        duplicates = sorted({name for name in names if names.count(name) > 1})
        if duplicates:
            raise InvalidRequestError(f"tools= has several tools named {', '.join(duplicates)}; tool names must be unique")
        _check_tool_choice(tool_choice, names)
        if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1):
            raise InvalidRequestError(f"max_tokens must be a positive integer, got {max_tokens!r}")
        if temperature is not None and (
            isinstance(temperature, bool) or not isinstance(temperature, (int, float))
            or not math.isfinite(temperature) or temperature < 0
        ):
            raise InvalidRequestError(f"temperature must be a number >= 0, got {temperature!r}")
        if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 <= top_p <= 1):
            raise InvalidRequestError(f"top_p must be a number from 0 to 1, got {top_p!r}")
        if not isinstance(check_context, bool):
            raise InvalidRequestError(f"check_context must be True or False, got {check_context!r}")
        return cls(
            messages=messages,
            tools=built_tools,
            tool_choice=tool_choice,
            max_tokens=max_tokens,
            temperature=None if temperature is None else float(temperature),
            top_p=None if top_p is None else float(top_p),
            stop=stop_sequences(stop),
            response_format=None if response_format is None else ResponseFormat.of(response_format),
            extra_headers=headers(extra_headers),
            options=dict(provider_options),
            check_context=check_context,
        )


def _messages(prompt: Prompt) -> list[Message]:
    if isinstance(prompt, str):
        if not prompt.strip():
            raise InvalidRequestError("the prompt is empty: pass the text to send, or a list of messages")
        return [Message.user(prompt)]
    if isinstance(prompt, Message):
        prompt = [prompt]
    if not isinstance(prompt, Sequence) or isinstance(prompt, (bytes, bytearray)):
        raise InvalidRequestError(
            f"the prompt must be a string or a list of messages, got {type(prompt).__name__} "
            f"(a single Message does too, and a Client call takes a Request)"
        )
    if not prompt:
        raise InvalidRequestError("the list of messages is empty: pass at least one user message")
    # Instructions alone are a valid call (the model answers them), as every provider accepts.
    return [_message(item, index) for index, item in enumerate(prompt)]


def _message(item: object, index: int) -> Message:  # validated at runtime: callers pass anything
    where = f"messages[{index}]"
    if isinstance(item, Message):
        message = item
    elif isinstance(item, Mapping):
        role = item.get("role")
        if role not in ROLES:
            raise InvalidRequestError(f"{where} has role {role!r}; use one of {', '.join(ROLES)}")
        unknown = set(item) - {"role", "content", "tool_calls", "tool_call_id", "name"}
        if unknown:
            raise InvalidRequestError(f"{where} has unknown keys {sorted(unknown)}")
        content = item.get("content")
        if role == "tool" and content is not None and not isinstance(content, (str, list)):
            try:
                content = tool_result_text(str(item.get("name") or item.get("tool_call_id")), content)
            except InvalidRequestError as exc:
                raise InvalidRequestError(f"{where}: {exc.message}") from exc
        calls = item.get("tool_calls") or []
        if not isinstance(calls, (list, tuple)):
            raise InvalidRequestError(f"{where}.tool_calls must be a list of tool calls, got {type(calls).__name__}")
        try:
            message = Message(
                role=role,
                content=_content(content, where),
                tool_calls=[_tool_call(call, f"{where}.tool_calls[{i}]") for i, call in enumerate(calls)],
                tool_call_id=item.get("tool_call_id"),
                name=item.get("name"),
            )
        except ValidationError as exc:
            raise InvalidRequestError(f"{where} is not a valid message: {_first_error(exc)}") from exc
    else:
        raise InvalidRequestError(f"{where} must be a Message or a dict, got {type(item).__name__}")
    if message.role == "tool" and not message.tool_call_id:
        raise InvalidRequestError(f"{where} is a tool result without tool_call_id: say which call it answers")
    if message.role != "assistant" and message.tool_calls:
        raise InvalidRequestError(f"{where} has tool_calls but role {message.role!r}; only assistant turns call tools")
    if message.role in ("system", "user") and not message.text.strip() and not message.files:
        raise InvalidRequestError(f"{where} ({message.role}) has empty content")
    for part in message.files:  # a hand-built part may name a FIFO, which would block the send
        check_on_disk(part)
    for i, call in enumerate(message.tool_calls):  # sent back as JSON text: an encoder must not meet a set
        check_json(call.arguments, f"{where}.tool_calls[{i}] ({call.name}) arguments",
                   "; tool-call arguments are JSON values (str, number, bool, None, list, dict)")
    return message


def _content(content: Any, where: str) -> str | list[TextPart | FilePart]:
    if content is None or isinstance(content, str):
        return content or ""
    if isinstance(content, list):
        parts: list[TextPart | FilePart] = []
        for i, part in enumerate(content):
            if isinstance(part, (TextPart, FilePart)):
                parts.append(part)
            elif isinstance(part, Mapping) and part.get("type") == "text" and isinstance(part.get("text"), str):
                try:
                    parts.append(TextPart(**part))  # unknown keys are refused, not dropped
                except ValidationError as exc:
                    raise InvalidRequestError(f"{where}.content[{i}] is not a valid text part: {_first_error(exc)}") from exc
            else:
                raise InvalidRequestError(f"{where}.content[{i}] is not a text part ({{'type': 'text', 'text': ...}})")
        return parts
    raise InvalidRequestError(f"{where}.content must be a string or a list of parts, got {type(content).__name__}")


def _tool_call(call: Any, where: str) -> ToolCall:
    if isinstance(call, ToolCall):
        return call
    if not isinstance(call, Mapping):
        raise InvalidRequestError(f"{where} must be a ToolCall or a dict, got {type(call).__name__}")
    nested = call.get("function")
    function: Mapping[str, Any] = nested if isinstance(nested, Mapping) else call
    arguments = function.get("arguments", {})
    if isinstance(arguments, str):
        try:
            arguments = json.loads(arguments or "{}")
        except ValueError as exc:
            raise InvalidRequestError(f"{where}.arguments is not valid JSON: {exc}") from exc
    if not isinstance(arguments, dict) or not isinstance(call.get("id"), str) or not isinstance(function.get("name"), str):
        raise InvalidRequestError(f"{where} needs an id, a name and object arguments")
    return ToolCall(id=call["id"], name=function["name"], arguments=arguments)


def to_tool(tool: ToolLike) -> Tool:
    """A `Tool` from a Tool, a JSON-schema tool dict (OpenAI or flat form) or a typed function."""
    if isinstance(tool, Tool):
        return _tool_from_dict(tool.model_dump())  # a hand-built Tool gets the same checks
    if isinstance(tool, Mapping):
        return _tool_from_dict(tool)
    if callable(tool):
        return _tool_from_function(tool)
    raise InvalidRequestError(f"a tool must be a function, a Tool or a JSON-schema dict, got {type(tool).__name__}")


def _tool_from_dict(tool: Mapping[str, Any]) -> Tool:
    spec = tool.get("function", tool) if tool.get("type") == "function" else tool
    if not isinstance(spec, Mapping):
        raise InvalidRequestError(f'a tool dict of type "function" needs "function": {{"name": ..., "parameters": '
                                  f'{{...}}}}, got "function": {type(spec).__name__}')
    name = spec.get("name")
    if not isinstance(name, str) or not _TOOL_NAME.fullmatch(name):
        raise InvalidRequestError(f"tool name {name!r} must be 1-64 letters, digits, '_' or '-'")
    parameters = spec.get("parameters", spec.get("input_schema", {"type": "object", "properties": {}}))
    if not isinstance(parameters, Mapping) or parameters.get("type") != "object":
        raise InvalidRequestError(
            f"tool {name!r}: parameters must be a JSON-schema object "
            f'({{"type": "object", "properties": {{...}}}}), got {json.dumps(parameters, default=repr)[:120]}'
        )
    if not isinstance(parameters.get("properties", {}), Mapping):
        raise InvalidRequestError(f"tool {name!r}: parameters.properties must be an object mapping names to schemas")
    description = spec.get("description", "")
    if not isinstance(description, str):
        raise InvalidRequestError(f"tool {name!r}: description must be a string")
    check_json(parameters, f"tool {name!r}: parameters")
    return Tool(name=name, description=description, parameters=dict(parameters))


def _tool_from_function(function: Callable[..., Any]) -> Tool:
    name = getattr(function, "__name__", "")
    if not _TOOL_NAME.fullmatch(name):
        raise InvalidRequestError(f"function {name!r} cannot be a tool: its name must be 1-64 letters, digits, '_' or '-'")
    try:
        hints = get_type_hints(function)
    except Exception as exc:  # unresolvable forward references and the like
        raise InvalidRequestError(f"tool {name!r}: cannot resolve its type hints ({exc})") from exc
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError) as exc:  # builtins and classes implemented in C
        raise InvalidRequestError(f"function {name!r} cannot be a tool: its signature cannot be read ({exc})") from exc
    fields: dict[str, Any] = {}
    for param in signature.parameters.values():
        if param.kind in (param.VAR_POSITIONAL, param.VAR_KEYWORD):
            raise InvalidRequestError(f"tool {name!r}: *{param.name} cannot be described to a model; use named parameters")
        if param.name not in hints:
            raise InvalidRequestError(f"tool {name!r}: parameter {param.name!r} needs a type annotation")
        default = ... if param.default is param.empty else param.default
        fields[param.name] = (hints[param.name], default)
    try:
        schema = create_model(f"{name}_arguments", **fields).model_json_schema()
    except Exception as exc:  # pydantic cannot build a schema for some annotation
        raise InvalidRequestError(f"tool {name!r}: its parameters have no JSON schema ({exc})") from exc
    return Tool(name=name, description=inspect.getdoc(function) or "", parameters=_without_titles(schema))


_VALUES = frozenset({"default", "examples", "const", "enum"})  # keywords holding data, not schemas


def _without_titles(schema: Any) -> Any:
    """Drop pydantic's generated "title" keys (noise to the model), keeping properties named title
    and every value inside a default, an example, a const or an enum (data: its "title" is a field)."""
    if isinstance(schema, dict):
        return {
            key: (value if key in _VALUES
                  else {k: _without_titles(v) for k, v in value.items()} if key in ("properties", "$defs")
                  else _without_titles(value))
            for key, value in schema.items()
            if not (key == "title" and isinstance(value, str))
        }
    if isinstance(schema, list):
        return [_without_titles(item) for item in schema]
    return schema


def _check_tool_choice(tool_choice: str | None, names: list[str]) -> None:
    if tool_choice is None:
        return
    if not isinstance(tool_choice, str):
        raise InvalidRequestError(f"tool_choice must be 'auto', 'none', 'required' or a tool name, got {tool_choice!r}")
    if tool_choice in _CHOICES:
        if tool_choice == "required" and not names:
            raise InvalidRequestError("tool_choice='required' but no tools= were given")
        return
    if tool_choice not in names:
        raise InvalidRequestError(
            f"tool_choice {tool_choice!r} is not one of 'auto', 'none', 'required' or the tools given "
            f"({', '.join(names) or 'none'})"
        )


def _first_error(exc: ValidationError) -> str:
    error = exc.errors()[0]
    return f"{'.'.join(str(p) for p in error['loc'])}: {error['msg']}"
