"""The Anthropic Messages encoder, checked against real recorded requests and hand-written shapes.

Recorded: every request in ../shared/reference-traffic/anthropic whose `call` describes it fully is
rebuilt as a `Request` from that `call` and encoded; the body must equal the recorded one up to
the spellings the corpus README normalises (an empty tool description, `is_error: false`, a tool
result's text as a string or as text blocks, consecutive turns of one role). The requests whose
only undescribed feature is files inside a tool result are rebuilt with those files too.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmclient.errors import (
    InvalidRequestError,
    OverloadedError,
    RateLimitError,
    ServerError,
    UnsupportedCapabilityError,
    classify,
)
from llmclient.providers import REGISTRY, ProviderSpec
from llmclient.request import Request, ResponseFormat, Tool
from llmclient.types import FilePart, Message, TextPart, ToolCall
from llmclient.wire import FileData, anthropic
from tests.request_fidelity import request_of

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LLMCLIENT_REFERENCE_TRAFFIC", REPO.parent / "shared" / "reference-traffic")) / "anthropic"
ANTHROPIC = REGISTRY["anthropic"]
PNG_B64 = base64.b64encode((REPO / "llmclient" / "conformance" / "inputs" / "tiny.png").read_bytes()).decode()
MODEL = "claude-sonnet-4-5"


# --- recorded requests ---------------------------------------------------------------------------

def _recorded(reason: str) -> list[tuple[str, dict[str, Any], dict[str, Any]]]:
    """(name, call, recorded body) of every case whose undescribed features are exactly `reason`."""
    found = []
    for path in sorted(CORPUS.glob("*.expected.json")) if CORPUS.is_dir() else []:
        expected = json.loads(path.read_text())
        if expected["call_unsupported"] != ([reason] if reason else []):
            continue
        name = path.name[: -len(".expected.json")]
        request = yaml.load(path.with_name(name + ".yaml").read_text(), Loader=yaml.CSafeLoader)["interactions"][0]["request"]
        found.append((name, expected["call"], json.loads(request["body"])))
    return found


FULLY_DESCRIBED = _recorded("")
FILES_IN_TOOL_RESULTS = _recorded("files in tool result")
needs_corpus = pytest.mark.skipif(not FULLY_DESCRIBED, reason=f"reference traffic not found at {CORPUS} "
                                  "(set LLMCLIENT_REFERENCE_TRAFFIC to its directory)")


def sent(body: Any) -> Any:
    """The body as the transport sends it: each FileData becomes its prefix plus the base64."""
    if isinstance(body, FileData):
        assert body.part.data is not None
        return body.prefix + body.part.data
    if isinstance(body, dict):
        return {key: sent(value) for key, value in body.items()}
    if isinstance(body, list):
        return [sent(item) for item in body]
    return body


def normalised(body: dict[str, Any]) -> dict[str, Any]:
    """Only the spellings the corpus README says mean the same request, for the Anthropic wire."""
    body = json.loads(json.dumps(body))
    for tool in body.get("tools", []):
        if tool.get("description") == "":
            del tool["description"]
    turns: list[dict[str, Any]] = []
    for turn in body["messages"]:
        content = [{"type": "text", "text": turn["content"]}] if isinstance(turn["content"], str) else turn["content"]
        for block in content:
            if block["type"] == "tool_result":
                if block.get("is_error") is False:
                    del block["is_error"]
                inner = block.get("content")
                if isinstance(inner, list) and all(item["type"] == "text" for item in inner):
                    block["content"] = "\n\n".join(item["text"] for item in inner)
        content = [block for block in content if not (block["type"] == "text" and not block["text"])]
        if turns and turns[-1]["role"] == turn["role"]:
            turns[-1]["content"] += content
        else:
            turns.append({"role": turn["role"], "content": content})
    body["messages"] = turns
    return body


def encoded(call: dict[str, Any], recorded: dict[str, Any], request: Request | None = None) -> dict[str, Any]:
    wire = anthropic.encode(request or request_of(call, recorded), ANTHROPIC, recorded["model"], stream=call["stream"])
    assert wire.path == "/v1/messages"
    assert wire.headers == {"anthropic-version": "2023-06-01"}
    return sent(wire.body)  # type: ignore[no-any-return]


@needs_corpus
@pytest.mark.parametrize(("name", "call", "recorded"), FULLY_DESCRIBED, ids=[case[0] for case in FULLY_DESCRIBED])
def test_a_fully_described_recorded_request_is_reproduced(name: str, call: dict[str, Any], recorded: dict[str, Any]) -> None:
    assert normalised(encoded(call, recorded)) == normalised(recorded)


@needs_corpus
def test_most_recorded_requests_are_reproduced_byte_for_byte() -> None:
    # The rest differ only in spellings the official SDK chose: `"description": ""`, `is_error: false`,
    # tool result text as blocks, or two user turns in a row (listed by the test above when wrong).
    exact = [name for name, call, recorded in FULLY_DESCRIBED if encoded(call, recorded) == recorded]
    assert len(exact) >= 25, f"{len(exact)}/{len(FULLY_DESCRIBED)} exactly as recorded"


def _with_tool_result_files(call: dict[str, Any], recorded: dict[str, Any]) -> Request:
    """`call` plus the files inside its tool results, read (in order) from the recorded blocks."""
    request = request_of(call, recorded)
    results = {block["tool_use_id"]: block["content"] for turn in recorded["messages"] if isinstance(turn["content"], list)
               for block in turn["content"] if block["type"] == "tool_result" and isinstance(block.get("content"), list)}
    messages = []
    for message in request.messages:
        if message.role == "tool" and message.tool_call_id in results:
            parts: list[TextPart | FilePart] = [
                TextPart(text=block["text"]) if block["type"] == "text"
                else FilePart(media_type=block["source"]["media_type"], name="f", data=block["source"]["data"])
                for block in results[message.tool_call_id]
            ]
            message = message.model_copy(update={"content": parts})
        messages.append(message)
    return request.model_copy(update={"messages": messages})


@needs_corpus
@pytest.mark.parametrize(("name", "call", "recorded"), FILES_IN_TOOL_RESULTS, ids=[case[0] for case in FILES_IN_TOOL_RESULTS])
def test_files_inside_recorded_tool_results_are_reproduced(name: str, call: dict[str, Any], recorded: dict[str, Any]) -> None:
    if any(block.get("source", {}).get("type") == "file" for turn in recorded["messages"] if isinstance(turn["content"], list)
           for result in turn["content"] if isinstance(result.get("content"), list) for block in result["content"]):
        pytest.skip("an uploaded-file reference (Files API): llmclient sends files inline or by URL")
    assert normalised(encoded(call, recorded, _with_tool_result_files(call, recorded))) == normalised(recorded)


# --- files ---------------------------------------------------------------------------------------

def body_of(*messages: Message, spec: ProviderSpec = ANTHROPIC, stream: bool = False, **fields: Any) -> dict[str, Any]:
    return anthropic.encode(Request(messages=list(messages), **fields), spec, MODEL, stream=stream).body


def test_inline_images_and_pdfs_are_file_data_the_transport_fills_in(tmp_path: Path) -> None:
    image = FilePart(media_type="image/png", name="tiny.png", data=PNG_B64)
    pdf_path = tmp_path / "doc.pdf"
    pdf_path.write_bytes(b"%PDF-1.4 tiny")
    pdf = FilePart(media_type="application/pdf", name="doc.pdf", path=str(pdf_path), size=13)
    body = body_of(Message(role="user", content=[TextPart(text="Compare."), image, pdf]), max_tokens=9)
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "Compare."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": FileData(image)}},
        {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": FileData(pdf)}},
    ]


def test_urls_go_as_url_sources_and_text_files_as_named_text() -> None:
    notes = FilePart(media_type="text/plain", name="notes.txt", data=base64.b64encode("héllo\n".encode()).decode())
    parts: list[TextPart | FilePart] = [
        FilePart(media_type="image/jpeg", name="cat", url="https://example.com/cat.jpg"),
        FilePart(media_type="application/pdf", name="paper", url="https://example.com/paper.pdf"),
        notes,
    ]
    assert body_of(Message(role="user", content=parts), max_tokens=9)["messages"][0]["content"] == [
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "document", "source": {"type": "url", "url": "https://example.com/paper.pdf"}},
        {"type": "text", "text": '<file name="notes.txt">\nhéllo\n\n</file>'},
    ]


def test_a_tool_result_holding_files_is_blocks_inside_the_result() -> None:
    image = FilePart(media_type="image/png", name="chart.png", data=PNG_B64)
    call = ToolCall(id="toolu_1", name="chart", arguments={})
    body = body_of(Message.user("Chart?"), Message.assistant("", [call]),
                   Message(role="tool", content=[TextPart(text="Here."), image], tool_call_id="toolu_1", name="chart"),
                   max_tokens=9)
    assert body["messages"][2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
        {"type": "text", "text": "Here."},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": FileData(image)}},
    ]}]}


# --- cache markers -------------------------------------------------------------------------------

def test_a_cached_system_prompt_is_a_text_block_with_its_ttl() -> None:
    body = body_of(Message.system("You are a reference desk.", cache="1h"), Message.user("Hi"), max_tokens=9)
    assert body["system"] == [{"type": "text", "text": "You are a reference desk.",
                               "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    five = body_of(Message.system("Rules.", cache="5m"), Message.user("Hi"), max_tokens=9)
    assert five["system"] == [{"type": "text", "text": "Rules.", "cache_control": {"type": "ephemeral"}}]


def test_system_blocks_join_like_the_plain_system_text() -> None:
    body = body_of(Message.system("First."), Message.user("Hi"), Message.system("Second.", cache="5m"), max_tokens=9)
    assert body["system"] == [{"type": "text", "text": "First."},
                              {"type": "text", "text": "\n\nSecond.", "cache_control": {"type": "ephemeral"}}]
    plain = body_of(Message.system("First."), Message.user("Hi"), Message.system("Second."), max_tokens=9)
    assert plain["system"] == "First.\n\nSecond."


def test_cache_markers_on_user_text_and_tool_results() -> None:
    call = ToolCall(id="toolu_1", name="look", arguments={})
    body = body_of(Message(role="user", content=[TextPart(text="Long doc.", cache="5m"), TextPart(text="Question?")]),
                   Message.assistant("", [call]),
                   Message(role="tool", content=[TextPart(text="found", cache="1h")], tool_call_id="toolu_1"), max_tokens=9)
    assert body["messages"][0]["content"][0] == {"type": "text", "text": "Long doc.", "cache_control": {"type": "ephemeral"}}
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_1", "content": [
        {"type": "text", "text": "found", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]}]


def test_no_cache_markers_where_the_spec_takes_none() -> None:
    spec = ANTHROPIC.model_copy(update={"cache_markers": False})
    body = body_of(Message.system("Rules.", cache="1h"), Message(role="user", content=[TextPart(text="Hi", cache="5m")]),
                   spec=spec, max_tokens=9)
    assert body["system"] == "Rules."
    assert body["messages"][0]["content"] == [{"type": "text", "text": "Hi"}]


# --- turns ---------------------------------------------------------------------------------------

def test_tool_results_and_the_next_user_message_are_one_user_turn_results_first() -> None:
    a, b = ToolCall(id="toolu_a", name="f", arguments={"x": 1}), ToolCall(id="toolu_b", name="f", arguments={})
    body = body_of(Message.user("Go."), Message.assistant("Calling.", [a, b]),
                   Message(role="tool", content="one", tool_call_id="toolu_a", name="f"),
                   Message(role="tool", content="two", tool_call_id="toolu_b", name="f"),
                   Message.user("And?"), max_tokens=9)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Go."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Calling."},
                                          {"type": "tool_use", "id": "toolu_a", "name": "f", "input": {"x": 1}},
                                          {"type": "tool_use", "id": "toolu_b", "name": "f", "input": {}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "one"},
                                     {"type": "tool_result", "tool_use_id": "toolu_b", "content": "two"},
                                     {"type": "text", "text": "And?"}]},
    ]


def test_a_user_message_between_call_and_result_still_puts_the_result_first() -> None:
    call = ToolCall(id="toolu_a", name="f", arguments={})
    body = body_of(Message.user("Go."), Message.assistant("", [call]), Message.user("Meanwhile."),
                   Message(role="tool", content="done", tool_call_id="toolu_a"), max_tokens=9)
    assert body["messages"][2]["content"] == [{"type": "tool_result", "tool_use_id": "toolu_a", "content": "done"},
                                              {"type": "text", "text": "Meanwhile."}]


def test_same_role_turns_merge_and_empty_text_is_not_sent() -> None:
    body = body_of(Message.user("One."), Message.assistant(""),
                   Message(role="user", content=[TextPart(text=""), TextPart(text="Two.")]),
                   Message.assistant("Yes."), Message.assistant("More."), max_tokens=9)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "One."}, {"type": "text", "text": "Two."}]},
        {"role": "assistant", "content": [{"type": "text", "text": "Yes."}, {"type": "text", "text": "More."}]},
    ]


def test_an_empty_tool_result_has_no_content() -> None:
    call = ToolCall(id="toolu_a", name="f", arguments={})
    body = body_of(Message.user("Go."), Message.assistant("", [call]), Message(role="tool", content="", tool_call_id="toolu_a"),
                   max_tokens=9)
    assert body["messages"][2] == {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_a"}]}


# --- tools, choices, parameters -------------------------------------------------------------------

WEATHER = Tool(name="weather", description="Weather for a city.",
               parameters={"type": "object", "properties": {"city": {"$ref": "#/$defs/City"}}, "required": ["city"],
                           "additionalProperties": False, "$defs": {"City": {"type": "string"}}})
CLOCK = Tool(name="clock", parameters={"type": "object", "properties": {}})


def test_tools_keep_their_schema_and_an_empty_description_is_left_out() -> None:
    assert body_of(Message.user("Hi"), tools=[WEATHER, CLOCK], max_tokens=9)["tools"] == [
        {"name": "weather", "description": "Weather for a city.", "input_schema": WEATHER.parameters},
        {"name": "clock", "input_schema": {"type": "object", "properties": {}}},
    ]


@pytest.mark.parametrize(("choice", "expected"), [
    ("auto", {"type": "auto"}), ("none", {"type": "none"}), ("required", {"type": "any"}),
    ("clock", {"type": "tool", "name": "clock"}),
])
def test_tool_choice(choice: str, expected: dict[str, str]) -> None:
    body = body_of(Message.user("Hi"), tools=[WEATHER, CLOCK], tool_choice=choice, max_tokens=9)
    assert (body["tool_choice"], len(body["tools"])) == (expected, 2)


def test_without_named_tool_choice_only_the_named_tool_is_offered_and_required() -> None:
    spec = ANTHROPIC.model_copy(update={"named_tool_choice": False})
    body = body_of(Message.user("Hi"), spec=spec, tools=[WEATHER, CLOCK], tool_choice="clock", max_tokens=9)
    assert ([tool["name"] for tool in body["tools"]], body["tool_choice"]) == (["clock"], {"type": "any"})


def test_no_tools_no_tool_choice() -> None:
    assert "tool_choice" not in body_of(Message.user("Hi"), tool_choice="none", max_tokens=9)


def test_parameters_path_headers_and_options() -> None:
    wire = anthropic.encode(Request(messages=[Message.user("Hi")], temperature=0.2, top_p=0.9, stop=["END"],
                                    options={"top_k": 40, "metadata": {"user_id": "u1"}}),
                            ANTHROPIC, MODEL, stream=True)
    assert (wire.path, dict(wire.headers)) == ("/v1/messages", {"anthropic-version": "2023-06-01"})
    assert wire.body == {"model": MODEL, "max_tokens": 4096,
                         "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi"}]}], "stream": True,
                         "temperature": 0.2, "top_p": 0.9, "stop_sequences": ["END"],
                         "top_k": 40, "metadata": {"user_id": "u1"}}


def test_a_json_schema_response_format_is_output_config() -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"],
              "additionalProperties": False}
    fmt = ResponseFormat(type="json_schema", json_schema=schema, name="city", strict=True)
    body = body_of(Message.user("Hi"), max_tokens=9, response_format=fmt)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": schema}}


# --- refusals ------------------------------------------------------------------------------------

def test_max_tokens_is_required_when_the_spec_has_no_default() -> None:
    spec = ANTHROPIC.model_copy(update={"default_max_tokens": None})
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        body_of(Message.user("Hi"), spec=spec)
    assert body_of(Message.user("Hi"), spec=spec, max_tokens=7)["max_tokens"] == 7


@pytest.mark.parametrize(("messages", "fields", "error", "match"), [
    ([Message.user("Hi")], {"response_format": ResponseFormat(type="json_object")}, UnsupportedCapabilityError, "schema"),
    ([Message.user("Hi")], {"options": {"model": "other"}}, InvalidRequestError, "may not set"),
    ([Message(role="user", content=[FilePart(media_type="audio/wav", name="a.wav", data="AAAA")])], {},
     UnsupportedCapabilityError, "audio/wav"),
    ([Message(role="system", content=[TextPart(text="Look:"), FilePart(media_type="image/png", name="p", data=PNG_B64)]),
      Message.user("Hi")], {}, UnsupportedCapabilityError, "system"),
    ([Message.user("Hi"), Message(role="assistant", content=[FilePart(media_type="image/png", name="p", data=PNG_B64)])], {},
     UnsupportedCapabilityError, "assistant"),
    ([Message.system("Only instructions.")], {}, InvalidRequestError, "user or assistant message"),
    ([Message(role="user", content=[FilePart(media_type="text/plain", name="t.txt", url="https://example.com/t.txt")])], {},
     InvalidRequestError, "inline"),
    ([Message.user("Hi")], {"tool_choice": "required"}, InvalidRequestError, "no such tool"),
])
def test_refusals(messages: list[Message], fields: dict[str, Any], error: type[Exception], match: str) -> None:
    with pytest.raises(error, match=match):
        body_of(*messages, max_tokens=9, **fields)


def test_files_in_a_tool_result_are_refused_where_the_spec_takes_none() -> None:
    spec = ANTHROPIC.model_copy(update={"files_in_tool_results": None})
    call = ToolCall(id="toolu_1", name="chart", arguments={})
    result = Message(role="tool", content=[FilePart(media_type="image/png", name="p", data=PNG_B64)], tool_call_id="toolu_1")
    with pytest.raises(UnsupportedCapabilityError, match="tool result"):
        body_of(Message.user("Chart?"), Message.assistant("", [call]), result, spec=spec, max_tokens=9)


# --- error bodies --------------------------------------------------------------------------------

@pytest.mark.parametrize(("status", "error_type", "expected_type", "cls"), [
    (429, None, "rate_limit_error", RateLimitError),
    (529, None, "overloaded_error", OverloadedError),
    (503, None, "api_error", ServerError),
    (500, "overloaded_error", "overloaded_error", OverloadedError),
])
def test_error_body_is_anthropics_shape_and_classifies(status: int, error_type: str | None, expected_type: str,
                                                       cls: type) -> None:
    body, headers = anthropic.error_body(status, "Try later.", error_type, 2.5)
    assert {key: body[key] for key in ("type", "error")} == {
        "type": "error", "error": {"type": expected_type, "message": "Try later."}}
    assert headers == {"retry-after": "2.5"}
    error = classify(status, body, headers=headers)
    assert (type(error), error.retry_after) == (cls, 2.5)


def test_error_body_without_retry_after_has_no_header() -> None:
    assert anthropic.error_body(400, "Bad.", None, None) == (
        {"type": "error", "error": {"type": "invalid_request_error", "message": "Bad."}, "request_id": "req_simulated"}, {})


@needs_corpus
def test_error_body_matches_the_recorded_404() -> None:
    recorded = yaml.load((CORPUS / "test_model_name_suggestions__test_model_name_suggestion_anthropic.yaml").read_text(),
                         Loader=yaml.CSafeLoader)["interactions"][0]["response"]
    expected = json.loads(recorded["body"]["string"])
    body, _ = anthropic.error_body(recorded["status"]["code"], expected["error"]["message"], None, None)
    assert {k: v for k, v in body.items() if k != "request_id"} == {k: v for k, v in expected.items() if k != "request_id"}


# --- what the API refuses: whitespace-only text and stop sequences -----------------------------------

def test_claudes_whitespace_before_a_tool_use_is_not_sent_back_as_a_text_block() -> None:
    # Claude often answers "\n\n" then a tool_use; the API refuses that text block when it comes
    # back ("messages: text content blocks must contain non-whitespace text", anthropics/claude-code#23369).
    call = ToolCall(id="toolu_1", name="get_weather", arguments={"city": "Paris"})
    body = body_of(Message.user("Weather in Paris?"), Message.assistant("\n\n", [call]),
                   Message.tool_result(call, "  "), Message.user([TextPart(text="Thanks."), TextPart(text=" \t")]),
                   max_tokens=50)
    assert body["messages"] == [
        {"role": "user", "content": [{"type": "text", "text": "Weather in Paris?"}]},
        {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_1", "name": "get_weather",
                                           "input": {"city": "Paris"}}]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_1"},
                                     {"type": "text", "text": "Thanks."}]},
    ]


@pytest.mark.parametrize("stop", [["\n"], ["END", " \n\t"]])
def test_a_stop_sequence_of_only_whitespace_is_refused_before_sending(stop: list[str]) -> None:
    # The API answers 400 "stop_sequences: each stop sequence must contain non-whitespace"
    # (BerriAI/litellm#3286); dropping it would let the answer run past where the caller stops.
    with pytest.raises(UnsupportedCapabilityError, match="only whitespace"):
        body_of(Message.user("List fruits"), max_tokens=50, stop=stop)
    assert body_of(Message.user("List fruits"), max_tokens=50, stop=["\nEND"])["stop_sequences"] == ["\nEND"]
