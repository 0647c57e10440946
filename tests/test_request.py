"""Request.build: argument validation (typed errors that say what to fix) and tool conversion."""

from __future__ import annotations

import math
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from llmclient import BadRequestError, InvalidRequestError, Message, Request, Tool, ToolCall
from llmclient.request import to_tool

WEATHER_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
WEATHER_TOOL = {"name": "get_weather", "description": "Weather in a city.", "parameters": WEATHER_SCHEMA}


def get_weather(city: str, unit: Literal["c", "f"] = "c") -> str:
    """Current weather in a city."""
    return f"20 {unit} in {city}"


def test_invalid_request_error_is_a_bad_request_and_a_value_error() -> None:
    assert issubclass(InvalidRequestError, BadRequestError)
    assert issubclass(InvalidRequestError, ValueError)


@pytest.mark.parametrize(
    ("prompt", "kwargs", "expected"),
    [
        ("", {}, "the prompt is empty"),
        ("  \n\t", {}, "the prompt is empty"),
        ([], {}, "the list of messages is empty: pass at least one user message"),
        (b"hi", {}, "the prompt must be a string or a list of messages, got bytes"),
        (42, {}, "the prompt must be a string or a list of messages, got int"),
        (["hi"], {}, "messages[0] must be a Message or a dict, got str"),
        ([{"role": "bot", "content": "hi"}], {}, "messages[0] has role 'bot'; use one of system, user, assistant, tool"),
        ([{"content": "hi"}], {}, "messages[0] has role None; use one of system, user, assistant, tool"),
        (
            [{"role": "user", "content": "hi", "foo": 1, "images": []}],
            {},
            "messages[0] has unknown keys ['foo', 'images']",
        ),
        ([{"role": "user", "content": "   "}], {}, "messages[0] (user) has empty content"),
        ([{"role": "user", "content": ""}], {"files": []}, "messages[0] (user) has empty content"),
        ("hi", {"top_p": 1.5}, "top_p must be a number from 0 to 1, got 1.5"),
        ("hi", {"stop": []}, "stop must be a non-empty string or a list of them"),
        ("hi", {"response_format": {"type": "text"}}, 'response_format must be {"type": "json_object"}'),
        ("hi", {"response_format": {"type": "json_schema", "json_schema": {"name": "a"}}},
         'response_format json_schema needs "json_schema": {"schema": {...}}'),
        ("hi", {"response_format": {"type": "json_schema", "json_schema": {"schema": {"type": "object"}, "description": "d"}}},
         "response_format has keys llmclient does not send: ['description']"),
        (
            [{"role": "user", "content": "hi"}, {"role": "tool", "content": "42"}],
            {},
            "messages[1] is a tool result without tool_call_id: say which call it answers",
        ),
        (
            [{"role": "user", "content": "hi", "tool_calls": [{"id": "c1", "name": "f", "arguments": {}}]}],
            {},
            "messages[0] has tool_calls but role 'user'; only assistant turns call tools",
        ),
        (
            [{"role": "user", "content": [{"type": "image_url", "image_url": "x"}]}],
            {},
            "messages[0].content[0] is not a text part",
        ),
        ([{"role": "user", "content": 7}], {}, "messages[0].content must be a string or a list of parts, got int"),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c1", "function": {"name": "f", "arguments": "{oops"}}]}],
            {},
            "messages[0].tool_calls[0].arguments is not valid JSON",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"id": "c1", "name": "f", "arguments": "[1, 2]"}]}],
            {},
            "messages[0].tool_calls[0] needs an id, a name and object arguments",
        ),
        (
            [{"role": "assistant", "tool_calls": [{"name": "f", "arguments": {}}]}],
            {},
            "messages[0].tool_calls[0] needs an id, a name and object arguments",
        ),
        ("hi", {"system": "  "}, "system= is empty"),
        ("hi", {"max_tokens": 0}, "max_tokens must be a positive integer, got 0"),
        ("hi", {"max_tokens": True}, "max_tokens must be a positive integer, got True"),
        ("hi", {"max_tokens": 1.5}, "max_tokens must be a positive integer, got 1.5"),
        ("hi", {"temperature": -0.1}, "temperature must be a number >= 0, got -0.1"),
        ("hi", {"temperature": "0.5"}, "temperature must be a number >= 0, got '0.5'"),
    ],
)
def test_invalid_arguments_raise_a_typed_error_saying_what_to_fix(prompt: Any, kwargs: dict[str, Any], expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build(prompt, **kwargs)
    assert expected in str(caught.value)


@pytest.mark.parametrize(
    ("tools", "tool_choice", "expected"),
    [
        (
            [{"name": "f", "parameters": {"type": "string"}}],
            None,
            """tool 'f': parameters must be a JSON-schema object ({"type": "object", "properties": {...}}), got {"type": "string"}""",
        ),
        ([{"name": "f", "parameters": ["city"]}], None, "tool 'f': parameters must be a JSON-schema object"),
        (
            [{"name": "f", "parameters": {"type": "object", "properties": ["city"]}}],
            None,
            "tool 'f': parameters.properties must be an object mapping names to schemas",
        ),
        ([{"name": "f", "description": 3}], None, "tool 'f': description must be a string"),
        ([{"name": "get weather"}], None, "tool name 'get weather' must be 1-64 letters, digits, '_' or '-'"),
        ([{"name": ""}], None, "tool name '' must be 1-64 letters, digits, '_' or '-'"),
        ([{"name": "a" * 65}], None, "must be 1-64 letters, digits, '_' or '-'"),
        ([{"name": "wetter.heute"}], None, "tool name 'wetter.heute' must be 1-64"),
        ([{"description": "no name"}], None, "tool name None must be 1-64"),
        ([lambda city: city], None, "function '<lambda>' cannot be a tool"),
        ([42], None, "a tool must be a function, a Tool or a JSON-schema dict, got int"),
        (
            [WEATHER_TOOL, {"type": "function", "function": WEATHER_TOOL}],
            None,
            "tools= has several tools named get_weather; tool names must be unique",
        ),
        ([], "required", "tool_choice='required' but no tools= were given"),
        ([WEATHER_TOOL], "get_time", "tool_choice 'get_time' is not one of 'auto', 'none', 'required' or the tools given (get_weather)"),
        ([], "any", "tool_choice 'any' is not one of 'auto', 'none', 'required' or the tools given (none)"),
        ([WEATHER_TOOL], {"type": "function"}, "tool_choice must be 'auto', 'none', 'required' or a tool name"),
    ],
)
def test_invalid_tools_and_tool_choice(tools: list[Any], tool_choice: Any, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build("hi", tools=tools, tool_choice=tool_choice)
    assert expected in str(caught.value)


@pytest.mark.parametrize("tool_choice", ["auto", "none", "required", "get_weather"])
def test_valid_tool_choices_are_kept(tool_choice: str) -> None:
    assert Request.build("hi", tools=[WEATHER_TOOL], tool_choice=tool_choice).tool_choice == tool_choice


@pytest.mark.parametrize(
    "tool",
    [
        WEATHER_TOOL,
        {"type": "function", "function": WEATHER_TOOL},  # OpenAI form
        {"name": "get_weather", "description": "Weather in a city.", "input_schema": WEATHER_SCHEMA},  # Anthropic form
        Tool(name="get_weather", description="Weather in a city.", parameters=WEATHER_SCHEMA),
    ],
)
def test_tool_dict_forms_give_the_same_tool(tool: Any) -> None:
    assert to_tool(tool) == Tool(name="get_weather", description="Weather in a city.", parameters=WEATHER_SCHEMA)


def test_tool_without_parameters_takes_no_arguments() -> None:
    assert to_tool({"name": "now"}) == Tool(name="now", parameters={"type": "object", "properties": {}})


def test_typed_function_becomes_a_tool_with_exact_schema() -> None:
    assert to_tool(get_weather).model_dump() == {
        "name": "get_weather",
        "description": "Current weather in a city.",
        "parameters": {
            "type": "object",
            "properties": {
                "city": {"type": "string"},
                "unit": {"type": "string", "enum": ["c", "f"], "default": "c"},
            },
            "required": ["city"],
        },
    }


def test_function_schema_keeps_a_parameter_named_title_and_drops_title_noise() -> None:
    def add_note(title: str, pages: list[int] | None = None) -> None:
        pass

    assert to_tool(add_note).model_dump() == {
        "name": "add_note",
        "description": "",
        "parameters": {
            "type": "object",
            "properties": {
                "title": {"type": "string"},
                "pages": {"anyOf": [{"type": "array", "items": {"type": "integer"}}, {"type": "null"}], "default": None},
            },
            "required": ["title"],
        },
    }


class _Book(BaseModel):
    title: str = "Dune"
    year: int = 1965


def test_a_title_inside_a_default_is_data_and_is_kept() -> None:
    def save_book(book: _Book = _Book(), shelf: str = "title") -> None:  # noqa: B008
        pass

    parameters = to_tool(save_book).parameters
    assert parameters["properties"]["book"]["default"] == {"title": "Dune", "year": 1965}
    assert parameters["properties"]["shelf"] == {"type": "string", "default": "title"}
    assert "title" not in parameters["$defs"]["_Book"]  # pydantic's label of the model is still dropped
    assert parameters["$defs"]["_Book"]["properties"]["title"] == {"type": "string", "default": "Dune"}


def untyped(city, days: int = 1):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN201
    return city


def variadic(*cities: str) -> None:
    pass


def keywords(**options: str) -> None:
    pass


@pytest.mark.parametrize(
    ("function", "expected"),
    [
        (untyped, "tool 'untyped': parameter 'city' needs a type annotation"),
        (variadic, "tool 'variadic': *cities cannot be described to a model; use named parameters"),
        (keywords, "tool 'keywords': *options cannot be described to a model; use named parameters"),
    ],
)
def test_functions_that_cannot_be_described_are_refused(function: Any, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build("hi", tools=[function])
    assert expected in str(caught.value)


def test_tool_round_trip_builds_with_json_string_arguments_parsed() -> None:
    request = Request.build(
        [
            {"role": "user", "content": "Weather in Paris?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'}}
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": {"temp_c": 18}},
        ],
        system="Be brief.",
        tools=[get_weather],
    )
    assert request.messages == [
        Message(role="system", content="Be brief."),
        Message(role="user", content="Weather in Paris?"),
        Message(role="assistant", content="", tool_calls=[ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"})]),
        Message(role="tool", content='{"temp_c": 18}', tool_call_id="call_1"),
    ]
    assert [tool.name for tool in request.tools] == ["get_weather"]


def test_flat_tool_call_and_empty_argument_string_are_accepted() -> None:
    request = Request.build(
        [
            {"role": "user", "content": "time?"},
            {"role": "assistant", "tool_calls": [{"id": "c1", "name": "now", "arguments": ""}]},
            Message(role="tool", content="12:00", tool_call_id="c1"),
        ]
    )
    assert request.messages[1].tool_calls == [ToolCall(id="c1", name="now", arguments={})]


@pytest.mark.parametrize("result", [{1, 2}, object(), {"when": b"bytes"}])
def test_non_json_tool_result_in_a_message_dict_is_an_invalid_request(result: Any) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build([{"role": "user", "content": "go"}, {"role": "tool", "tool_call_id": "c1", "content": result}])
    assert "which is not JSON-serialisable" in str(caught.value)
    assert "return a str, or a dict/list of JSON values" in str(caught.value)


def test_scalars_and_options_are_kept() -> None:
    request = Request.build("hi", max_tokens=5, temperature=1, seed=7, top_p=0.5, stop="END")
    assert (request.max_tokens, request.temperature, request.top_p, request.stop, request.options) == (
        5, 1.0, 0.5, ["END"], {"seed": 7})
    assert isinstance(request.temperature, float)
    assert request.messages == [Message(role="user", content="hi")]


# --- defects found by these tests, fixed: they stay as regressions ---


def test_tool_name_with_trailing_newline_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        to_tool({"name": "get_weather\n"})


def test_tool_instance_is_validated_like_a_dict() -> None:
    with pytest.raises(InvalidRequestError):
        Request.build("hi", tools=[Tool(name="bad name!", parameters={"type": "string"})])


def test_nan_temperature_is_refused() -> None:
    with pytest.raises(InvalidRequestError):
        Request.build("hi", temperature=math.nan)
