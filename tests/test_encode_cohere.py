"""The Cohere v2 chat encoder: recorded requests reproduced, then each rule on its own.

The recorded requests are real ones (an official SDK's, accepted by Cohere) from
`../shared/reference-traffic/cohere/`; each fully described case (`call_unsupported == []`) is
rebuilt as a `Request` from its `call` and must encode to the recorded body exactly. The other
expected bodies are written by hand from Cohere's API reference (https://docs.cohere.com/reference/chat).
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.providers import REGISTRY
from llmclient.request import Request, ResponseFormat, Tool
from llmclient.types import FilePart, Message, TextPart, ToolCall
from llmclient.wire import FileData, cohere
from tests.request_fidelity import request_of

SPEC = REGISTRY["cohere"]
MODEL = "command-a-03-2025"
SHARED = Path(__file__).resolve().parents[2] / "shared"
CORPUS = Path(os.environ.get("LLMCLIENT_REFERENCE_TRAFFIC", SHARED / "reference-traffic"))


# --- recorded requests ----------------------------------------------------------------------------

def _recorded() -> list[Any]:
    if not (CORPUS / "cohere").is_dir():
        return [pytest.param(None, None, marks=pytest.mark.skip(reason=f"no reference traffic at {CORPUS}/cohere "
                                                                       f"(set LLMCLIENT_REFERENCE_TRAFFIC)"))]
    cases = []
    for expected_file in sorted((CORPUS / "cohere").glob("*.expected.json")):
        expected = json.loads(expected_file.read_text())
        if expected["call_unsupported"] == []:
            cassette = expected_file.with_name(expected_file.name.removesuffix(".expected.json") + ".yaml")
            cases.append(pytest.param(cassette, expected["call"], id=cassette.stem))
    return cases


@pytest.mark.parametrize(("cassette", "call"), _recorded())
def test_recorded_request_is_reproduced(cassette: Path, call: dict[str, Any]) -> None:
    recorded = yaml.safe_load(cassette.read_text())["interactions"][0]["request"]
    sent = json.loads(recorded["body"])
    wire = cohere.encode(request_of(call, sent), SPEC, sent["model"], stream=call["stream"])
    assert SPEC.base_url + wire.path == recorded["uri"]
    assert wire.body == sent
    assert dict(wire.headers) == {}


def test_seven_recorded_requests_are_fully_described() -> None:
    """Guards the test above against quietly checking fewer cases than the corpus holds."""
    if not (CORPUS / "cohere").is_dir():
        pytest.skip(f"no reference traffic at {CORPUS}/cohere")
    assert len(_recorded()) == 7


# --- every field ----------------------------------------------------------------------------------

def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


PNG = FilePart(media_type="image/png", name="dot.png", data=_b64(b"\x89PNG\r\n\x1a\n"))
PHOTO = FilePart(media_type="image/jpeg", name="https://example.com/cat.jpg", url="https://example.com/cat.jpg")
NOTES = FilePart(media_type="text/plain", name='my "notes".txt', data=_b64("line one\nline two".encode()))
PDF = FilePart(media_type="application/pdf", name="paper.pdf", data=_b64(b"%PDF-1.7"))
WEATHER = Tool(name="get_weather", description="Weather for a city.",
               parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                           "additionalProperties": False, "$defs": {"unit": {"enum": ["C", "F"]}}})
CLOCK = Tool(name="get_time", parameters={"type": "object", "properties": {}})
CALL = ToolCall(id="call_1", name="get_weather", arguments={"city": "Zürich"})


def test_every_field_is_encoded() -> None:
    request = Request(
        messages=[
            Message.system("Be brief.", cache="5m"),
            Message.user("Weather?"),
            Message(role="user", content=[TextPart(text="Look:"), PNG, PHOTO, NOTES]),
            Message.assistant("Checking.", [CALL]),
            Message(role="tool", content="Sunny", tool_call_id="call_1", name="get_weather"),
            Message.system("Answer in French."),
        ],
        tools=[WEATHER, CLOCK],
        max_tokens=100,
        temperature=0.2,
        top_p=0.9,
        stop=["END", "STOP"],
        options={"seed": 7, "thinking": {"type": "disabled"}},
    )
    wire = cohere.encode(request, SPEC, MODEL, stream=True)
    assert wire.path == "/v2/chat"
    assert wire.body == {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "Be brief.\n\nAnswer in French."},
            {"role": "user", "content": "Weather?"},
            {"role": "user", "content": [
                {"type": "text", "text": "Look:"},
                {"type": "image_url", "image_url": {"url": FileData(PNG, prefix="data:image/png;base64,")}},
                {"type": "image_url", "image_url": {"url": "https://example.com/cat.jpg"}},
                {"type": "text", "text": '<file name="my \\"notes\\".txt">\nline one\nline two\n</file>'},
            ]},
            {"role": "assistant", "content": "Checking.", "tool_calls": [
                {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'}},
            ]},
            {"role": "tool", "tool_call_id": "call_1", "content": "Sunny"},
        ],
        "tools": [
            {"type": "function", "function": {
                "name": "get_weather", "description": "Weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
                               "additionalProperties": False, "$defs": {"unit": {"enum": ["C", "F"]}}}}},
            {"type": "function", "function": {"name": "get_time", "parameters": {"type": "object", "properties": {}}}},
        ],
        "max_tokens": 100,
        "temperature": 0.2,
        "p": 0.9,
        "stop_sequences": ["END", "STOP"],
        "stream": True,
        "seed": 7,
        "thinking": {"type": "disabled"},
    }


def test_minimal_request() -> None:
    wire = cohere.encode(Request.build("hi"), SPEC, MODEL, stream=False)
    assert wire.body == {"model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}


def test_assistant_turn_that_only_calls_tools_has_no_content() -> None:
    request = Request.build([Message.user("Weather?"), Message.assistant("", [CALL]), Message.tool_result(CALL, {"t": 21})],
                            tools=[WEATHER])
    assert cohere.encode(request, SPEC, MODEL, stream=False).body["messages"][1:] == [
        {"role": "assistant", "tool_calls": [
            {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Zürich"}'}}]},
        {"role": "tool", "tool_call_id": "call_1", "content": '{"t": 21}'},
    ]


def test_json_object_response_format() -> None:
    request = Request.build("A JSON object, please.", response_format={"type": "json_object"})
    assert cohere.encode(request, SPEC, MODEL, stream=False).body["response_format"] == {"type": "json_object"}


@pytest.mark.parametrize(("choice", "tools", "wire_choice"), [
    (None, ["get_weather", "get_time"], None),
    ("auto", ["get_weather", "get_time"], None),  # Cohere's default; it has no word for it
    ("none", ["get_weather", "get_time"], "NONE"),
    ("required", ["get_weather", "get_time"], "REQUIRED"),
    ("get_time", ["get_time"], "REQUIRED"),  # no named form: only that tool is offered, and a call required
])
def test_tool_choice(choice: str | None, tools: list[str], wire_choice: str | None) -> None:
    body = cohere.encode(Request.build("?", tools=[WEATHER, CLOCK], tool_choice=choice), SPEC, MODEL, stream=False).body
    assert [tool["function"]["name"] for tool in body["tools"]] == tools
    assert body.get("tool_choice") == wire_choice


# --- refusals -------------------------------------------------------------------------------------

@pytest.mark.parametrize("message", [
    Message(role="user", content=[TextPart(text="Read this."), PDF]),
    Message(role="user", content=[FilePart(media_type="application/pdf", name="p.pdf", url="https://example.com/p.pdf")]),
    Message(role="user", content=[FilePart(media_type="audio/wav", name="a.wav", data=_b64(b"RIFF"))]),
    Message(role="tool", content=[TextPart(text="see image"), PNG], tool_call_id="call_1", name="get_weather"),
    Message(role="system", content=[TextPart(text="Use this."), NOTES]),
    Message(role="assistant", content=[TextPart(text="Here."), PNG]),
], ids=["pdf", "pdf-url", "audio", "file-in-tool-result", "file-in-system", "file-in-assistant"])
def test_what_cohere_cannot_take_is_refused(message: Message) -> None:
    request = Request(messages=[Message.user("hi"), message])
    with pytest.raises(UnsupportedCapabilityError) as refused:
        cohere.encode(request, SPEC, MODEL, stream=False)
    assert (refused.value.provider, refused.value.model) == ("cohere", MODEL)


def test_text_file_by_url_is_refused() -> None:
    part = FilePart(media_type="text/plain", name="n.txt", url="https://example.com/n.txt")
    with pytest.raises(InvalidRequestError, match="inline"):
        cohere.encode(Request(messages=[Message(role="user", content=[part])]), SPEC, MODEL, stream=False)


def test_named_tool_choice_without_that_tool_is_refused() -> None:
    request = Request(messages=[Message.user("?")], tools=[WEATHER], tool_choice="get_time")  # bypasses build's check
    with pytest.raises(InvalidRequestError, match="get_time"):
        cohere.encode(request, SPEC, MODEL, stream=False)


@pytest.mark.parametrize("key", ["model", "messages", "p", "stop_sequences", "stream"])
def test_options_may_not_set_what_the_encoder_sets(key: str) -> None:
    request = Request.build("hi", top_p=0.5, stop="x", **{key: "other"})
    with pytest.raises(InvalidRequestError, match=key):
        cohere.encode(request, SPEC, MODEL, stream=False)


# --- error bodies ---------------------------------------------------------------------------------

def test_error_body() -> None:
    assert cohere.error_body(429, "slow down", None, 2.5) == ({"id": "simulated", "message": "slow down"},
                                                              {"retry-after": "2.5"})
    # Cohere's errors have no type field: error_type changes nothing.
    assert cohere.error_body(400, "bad", "context_length_exceeded", None) == ({"id": "simulated", "message": "bad"}, {})


def test_a_tool_choice_without_tools_is_not_sent() -> None:
    request = Request(messages=[Message.user("hi")], tool_choice="none")
    assert cohere.encode(request, SPEC, MODEL, stream=False).body == {
        "model": MODEL, "messages": [{"role": "user", "content": "hi"}], "stream": False}


def test_a_json_schema_is_cohere_s_json_object_with_its_schema() -> None:
    # Cohere's response_format goes without tools (its reference: "not supported when used in
    # combinations with the `documents` or `tools` parameters").
    request = Request(messages=[Message.user("Weather?")],
                      response_format=ResponseFormat(type="json_schema", json_schema={"type": "object"}, name="answer",
                                                     strict=True))
    assert cohere.encode(request, SPEC, MODEL, stream=False).body["response_format"] == {
        "type": "json_object", "json_schema": {"type": "object"}}
    with pytest.raises(UnsupportedCapabilityError, match="offered tools"):
        cohere.encode(request.model_copy(update={"tools": [WEATHER]}), SPEC, MODEL, stream=False)
