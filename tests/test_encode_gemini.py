"""The Gemini encoder: real recorded requests reproduced from their meaning, and hand-written
expectations for what the recordings do not show (refusals, options, ids, error bodies).

Every recorded Gemini request whose `call` (../shared/reference-traffic README, "`call`")
describes it fully (or all but thought signatures that are all Google's marker for unsigned calls,
which the encoder sends itself) is rebuilt as a `Request` from that `call`, encoded, and compared
with the body Google's SDK sent and Gemini accepted. The SDK spells some things differently; each rule in
`_AS_WE_SEND` rewrites the RECORDED body one way, with the reason both forms are the same request.
"""

from __future__ import annotations

import base64
import copy
import json
import os
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from llmclient.errors import InvalidRequestError, UnsupportedCapabilityError
from llmclient.providers import ProviderSpec
from llmclient.request import Request, ResponseFormat, Tool
from llmclient.types import FilePart, Message, TextPart, ToolCall
from llmclient.wire import FileData, WireRequest, gemini
from tests.request_fidelity import request_of

REPO = Path(__file__).resolve().parent.parent
CORPUS = Path(os.environ.get("LLMCLIENT_REFERENCE_TRAFFIC", REPO.parent / "shared" / "reference-traffic")) / "gemini"
SPEC = ProviderSpec(name="gemini", base_url="https://generativelanguage.googleapis.com/v1beta",
                    api_key_env="GEMINI_API_KEY", wire="gemini", files_in_tool_results="gemini-3")
# base64 of b"skip_thought_signature_validator", Google's documented signature for calls it did not sign
UNSIGNED = "c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I="
PNG_B64 = base64.b64encode(b"\x89PNG\r\n\x1a\n fake png").decode()

# Recorded requests whose `call` cannot give back the request (xfail: they must keep differing).
CALL_LOSES = {
    "test_google__test_google_model_empty_assistant_response":
        "the call drops empty texts, and with them the empty model turn the conversation had; "
        "test_empty_model_turn_as_recorded sends the whole conversation",
}


# --- the recorded requests ----------------------------------------------------------------------

def _signatures(value: Any) -> list[Any]:
    if isinstance(value, dict):
        own = [v for k, v in value.items() if k in ("thoughtSignature", "thought_signature")]
        return own + [s for v in value.values() for s in _signatures(v)]
    if isinstance(value, list):
        return [s for v in value for s in _signatures(v)]
    return []


def _sent(name: str) -> dict[str, Any]:
    return yaml.load((CORPUS / f"{name}.yaml").read_text(), Loader=yaml.CSafeLoader)["interactions"][0]["request"]  # type: ignore[no-any-return]


def _described(expected: dict[str, Any], name: str) -> bool:
    """The call says everything the request did; or everything but thought signatures that are
    all the unsigned marker, which the encoder sends itself."""
    if expected["call"] is None:
        return False
    if expected["call_unsupported"] == []:
        return True
    if expected["call_unsupported"] != ["thought signature"]:
        return False
    return set(_signatures(json.loads(_sent(name)["body"]))) == {UNSIGNED}


def _recorded() -> list[Any]:
    if not CORPUS.is_dir():
        return [pytest.param(None, marks=pytest.mark.skip(reason=f"no reference traffic at {CORPUS}"))]
    params = []
    for path in sorted(CORPUS.glob("*.expected.json")):
        name = path.name[: -len(".expected.json")]
        if _described(json.loads(path.read_text()), name):
            marks = [pytest.mark.xfail(reason=CALL_LOSES[name], strict=True)] if name in CALL_LOSES else []
            params.append(pytest.param(name, id=name, marks=marks))
    return params


def _decoded(data: str) -> bytes:
    """Standard or URL-safe base64 (the SDK sends the latter), padding optional."""
    return base64.b64decode(data + "=" * (-len(data) % 4), altchars=b"-_")


def plain(value: Any) -> Any:
    """An encoded body as JSON: each FileData as the base64 the transport streams in its place."""
    if isinstance(value, FileData):
        assert value.prefix == "" and value.part.data is not None
        return value.part.data
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [plain(item) for item in value]
    return value


# --- the recorded body, as we spell it -------------------------------------------------------------

_USER_DATA = {"parametersJsonSchema", "parameters", "args", "response", "responseJsonSchema"}


def _camel_case(value: Any) -> Any:
    """Gemini reads a field in camelCase or snake_case (proto JSON); the SDK writes some in
    snake_case (parameters_json_schema, inline_data, mime_type), we write the REST reference's
    camelCase. Schemas, arguments and results are the caller's data and keep their keys."""
    if isinstance(value, list):
        return [_camel_case(item) for item in value]
    if not isinstance(value, dict):
        return value
    out = {}
    for key, item in value.items():
        key = re.sub(r"_([a-z])", lambda m: m.group(1).upper(), key)
        out[key] = item if key in _USER_DATA else _camel_case(item)
    return out


def _standard_base64(body: dict[str, Any]) -> None:
    """The SDK sends inline files in URL-safe base64, we in standard base64: the same bytes."""
    for part in _parts(body):
        for blob in [part.get("inlineData")] + [p["inlineData"] for p in (part.get("functionResponse") or {}).get("parts", [])]:
            if blob:
                blob["data"] = base64.b64encode(_decoded(blob["data"])).decode()


def _no_default_settings(body: dict[str, Any]) -> None:
    """responseModalities ["TEXT"] is a text model's default (the call drops it as one), an empty
    generationConfig sets nothing, and a declaration's description "" is proto3's unset string:
    we send none of them."""
    config = body.get("generationConfig", {})
    if config.get("responseModalities") == ["TEXT"]:
        del config["responseModalities"]
    if "generationConfig" in body and not config:
        del body["generationConfig"]
    for declaration in _declarations(body):
        if declaration.get("description") == "":
            del declaration["description"]


def _instructions_only(body: dict[str, Any]) -> None:
    """The SDK tags systemInstruction with role "user"; the REST reference's examples, and we,
    send its parts only (the instructions are not a turn; the call has no such role)."""
    body.get("systemInstruction", {}).pop("role", None)


def _any_function(body: dict[str, Any]) -> None:
    """Mode ANY allowing every declared function is mode ANY (the call reads both as "required")."""
    config = body.get("toolConfig", {}).get("functionCallingConfig", {})
    names = sorted(d["name"] for d in _declarations(body))
    if config.get("mode") == "ANY" and len(names) > 1 and sorted(config.get("allowedFunctionNames", [])) == names:
        del config["allowedFunctionNames"]


def _result_text(body: dict[str, Any]) -> None:
    """We send a tool result as {"result": its text}: Gemini lets the caller name the key (its
    reference suggests "output" or "result") and the text reaches the model as the caller gave
    it. pydantic-ai sends a string under "return_value", and an object result as the response
    itself, which the call gives as its compact JSON (sorted keys): the text a caller passes us."""
    for part in _parts(body):
        response = (part.get("functionResponse") or {}).get("response")
        if response is None:
            continue
        if list(response) == ["return_value"] and isinstance(response["return_value"], str):
            part["functionResponse"]["response"] = {"result": response["return_value"]}
        elif not response.keys() & {"output", "return_value", "content", "result", "error"}:
            part["functionResponse"]["response"] = {"result": json.dumps(response, separators=(",", ":"), sort_keys=True)}


def _json_schema_parameters(body: dict[str, Any]) -> None:
    """Older pydantic-ai declared tools with the OpenAPI-subset `parameters` (type names in upper
    case); we send the caller's JSON Schema in parametersJsonSchema, which keeps what `parameters`
    cannot hold. Same schema once the type names are in JSON Schema's lower case."""
    def lower(value: Any) -> Any:
        if isinstance(value, dict):
            return {k: v.lower() if k == "type" and isinstance(v, str) else lower(v) for k, v in value.items()}
        return [lower(v) for v in value] if isinstance(value, list) else value

    for declaration in _declarations(body):
        if "parameters" in declaration:
            declaration["parametersJsonSchema"] = lower(declaration.pop("parameters"))


def _signed_steps(body: dict[str, Any]) -> None:
    """The first function call of each model step carries the unsigned marker, which Gemini 3
    requires and pydantic-ai now sends to every model (its recordings made before that lack it;
    see test_google_model_structured_output__i1 for one with it)."""
    for content in body["contents"]:
        calls = [part for part in content["parts"] if "functionCall" in part]
        if content["role"] == "model" and calls and not _signatures(calls):
            calls[0]["thoughtSignature"] = UNSIGNED


_AS_WE_SEND: tuple[Callable[[dict[str, Any]], None], ...] = (
    _standard_base64, _no_default_settings, _instructions_only, _any_function, _result_text,
    _json_schema_parameters, _signed_steps,
)


def _parts(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [part for content in body["contents"] for part in content["parts"]]


def _declarations(body: dict[str, Any]) -> list[dict[str, Any]]:
    return [d for tool in body.get("tools", []) for d in tool.get("functionDeclarations", [])]


def as_we_send(recorded: dict[str, Any]) -> dict[str, Any]:
    body: dict[str, Any] = _camel_case(copy.deepcopy(recorded))
    for rule in _AS_WE_SEND:
        rule(body)
    return body


@pytest.mark.parametrize("name", _recorded())
def test_recorded_request(name: str) -> None:
    sent = _sent(name)
    call = json.loads((CORPUS / f"{name}.expected.json").read_text())["call"]
    recorded = json.loads(sent["body"])
    model = re.search(r"/models/([^:/]+):", sent["uri"]).group(1)  # type: ignore[union-attr]
    wire = gemini.encode(request_of(call, recorded), SPEC, model, stream=call["stream"])
    assert SPEC.base_url + wire.path == sent["uri"]
    assert wire.headers == {}
    assert plain(wire.body) == as_we_send(recorded)


@pytest.mark.skipif(not CORPUS.is_dir(), reason=f"no reference traffic at {CORPUS}")
def test_empty_model_turn_as_recorded() -> None:
    name = "test_google__test_google_model_empty_assistant_response"
    request = Request(messages=[Message.user("Hi"), Message.assistant(""), Message.user("Was your previous response empty?")])
    wire = gemini.encode(request, SPEC, "gemini-2.5-flash", stream=False)
    assert plain(wire.body) == as_we_send(json.loads(_sent(name)["body"]))


# --- hand-written expectations -------------------------------------------------------------------

def encode(*messages: Message, model: str = "gemini-2.5-flash", stream: bool = False, **fields: Any) -> dict[str, Any]:
    return gemini.encode(Request(messages=list(messages), **fields), SPEC, model, stream=stream).body


def test_path_names_the_model_and_the_body_only_what_the_call_set() -> None:
    request = Request(messages=[Message.user("Hi")])
    assert gemini.encode(request, SPEC, "gemini-3-pro-preview", stream=False) == WireRequest(
        "/models/gemini-3-pro-preview:generateContent", {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}]})
    assert gemini.encode(request, SPEC, "gemini-3-pro-preview", stream=True).path == \
        "/models/gemini-3-pro-preview:streamGenerateContent?alt=sse"


@pytest.mark.parametrize("model", ["gemini-1.5-flash", "gemini-2.0-flash", "gemini-2.5-pro"])
def test_system_messages_go_to_system_instruction_on_every_model(model: str) -> None:
    body = encode(Message.system("Be brief."), Message.user("Hi"), Message.system("Answer in French.", cache="5m"),
                  model=model)
    assert body == {"contents": [{"role": "user", "parts": [{"text": "Hi"}]}],
                    "systemInstruction": {"parts": [{"text": "Be brief.\n\nAnswer in French."}]}}


def test_instructions_alone_get_an_empty_user_turn() -> None:
    assert encode(Message.system("Tell a joke."))["contents"] == [{"role": "user", "parts": [{"text": ""}]}]


def test_generation_config() -> None:
    body = encode(Message.user("Hi"), max_tokens=50, temperature=0.0, top_p=0.5, stop=["END"],
                  response_format=ResponseFormat(type="json_schema", name="answer", strict=True,
                                                 json_schema={"type": "object", "additionalProperties": False}))
    assert body["generationConfig"] == {
        "maxOutputTokens": 50, "temperature": 0.0, "topP": 0.5, "stopSequences": ["END"],
        "responseMimeType": "application/json", "responseJsonSchema": {"type": "object", "additionalProperties": False},
    }
    json_object = encode(Message.user("Hi"), response_format=ResponseFormat(type="json_object"))
    assert json_object["generationConfig"] == {"responseMimeType": "application/json"}


def test_tools_keep_their_json_schema() -> None:
    schema = {"type": "object", "properties": {"p": {"$ref": "#/$defs/P"}}, "$defs": {"P": {"type": "string"}},
              "additionalProperties": False}
    body = encode(Message.user("Hi"), tools=[Tool(name="f", description="Find.", parameters=schema),
                                            Tool(name="g", parameters={"type": "object", "properties": {}})])
    assert body["tools"] == [{"functionDeclarations": [
        {"name": "f", "description": "Find.", "parametersJsonSchema": schema},
        {"name": "g", "parametersJsonSchema": {"type": "object", "properties": {}}},
    ]}]


@pytest.mark.parametrize(("choice", "config"), [
    ("auto", {"mode": "AUTO"}), ("none", {"mode": "NONE"}), ("required", {"mode": "ANY"}),
    ("g", {"mode": "ANY", "allowedFunctionNames": ["g"]}),
])
def test_tool_choice(choice: str, config: dict[str, Any]) -> None:
    tools = [Tool(name=n, parameters={"type": "object"}) for n in ("f", "g")]
    assert encode(Message.user("Hi"), tools=tools, tool_choice=choice)["toolConfig"] == {"functionCallingConfig": config}


def test_tool_round_trip() -> None:
    mine = ToolCall(id="toolu_01", name="weather", arguments={"city": "Paris"})
    theirs = ToolCall(id=gemini.synthetic_id(1, "time"), name="time", arguments={})
    body = encode(
        Message.user("Weather and time in Paris?"),
        Message.assistant("Let me look.", [mine, theirs]),
        Message.tool_result(mine, {"temp": 21}),
        Message(role="tool", content="12:00", tool_call_id=theirs.id),  # no name: found from the call
        Message.user("Thanks. And tomorrow?"),
    )
    assert body["contents"] == [
        {"role": "user", "parts": [{"text": "Weather and time in Paris?"}]},
        {"role": "model", "parts": [
            {"text": "Let me look."},
            {"functionCall": {"name": "weather", "args": {"city": "Paris"}, "id": "toolu_01"}, "thoughtSignature": UNSIGNED},
            {"functionCall": {"name": "time", "args": {}}},
        ]},
        {"role": "user", "parts": [
            {"functionResponse": {"name": "weather", "response": {"result": '{"temp": 21}'}, "id": "toolu_01"}},
            {"functionResponse": {"name": "time", "response": {"result": "12:00"}}},
        ]},
        {"role": "user", "parts": [{"text": "Thanks. And tomorrow?"}]},
    ]


def test_consecutive_messages_of_one_role_are_one_content() -> None:
    body = encode(Message.user("One."), Message.user("Two."), Message.assistant("Three."), Message.assistant("Four."))
    assert body["contents"] == [{"role": "user", "parts": [{"text": "One."}, {"text": "Two."}]},
                                {"role": "model", "parts": [{"text": "Three."}, {"text": "Four."}]}]


def test_every_step_signs_its_first_call() -> None:
    first, second = (ToolCall(id=f"c{i}", name="f", arguments={}) for i in (1, 2))
    body = encode(Message.user("Go"), Message.assistant("", [first]), Message.tool_result(first, "ok"),
                  Message.assistant("", [second]), Message.tool_result(second, "ok"))
    signed = [part.get("thoughtSignature") for content in body["contents"] for part in content["parts"] if "functionCall" in part]
    assert signed == [UNSIGNED, UNSIGNED]


def test_decoded_calls_without_an_id_go_back_without_one() -> None:
    decoded = gemini.decode({"candidates": [{"content": {"role": "model", "parts": [
        {"functionCall": {"name": "f", "args": {"x": 1}}}, {"functionCall": {"name": "g", "args": {}, "id": "g-7"}}]},
        "finishReason": "STOP"}]})
    assert [call.id for call in decoded.tool_calls] == ["call_0_f", "g-7"]
    body = encode(Message.user("Go"), Message.assistant("", decoded.tool_calls),
                  *(Message.tool_result(call, "done") for call in decoded.tool_calls))
    assert [part["functionCall"].get("id") for part in body["contents"][1]["parts"]] == [None, "g-7"]
    assert [part["functionResponse"].get("id") for part in body["contents"][2]["parts"]] == [None, "g-7"]


@pytest.mark.parametrize(("call_id", "synthetic"), [
    ("call_0_get_weather", True), ("call_12_f", True), ("pyd_ai_0e1a07b3", False), ("call_abc", False),
    ("toolu_01", False), ("call_x_f", False),
])
def test_is_synthetic(call_id: str, synthetic: bool) -> None:
    assert gemini.is_synthetic(call_id) is synthetic


def test_files() -> None:
    image = FilePart(media_type="image/png", name="a.png", data=PNG_B64)
    pdf = FilePart(media_type="application/pdf", name="b.pdf", url="https://example.com/b.pdf")
    text = FilePart(media_type="text/plain", name='notes "1".txt', data=base64.b64encode(b"hello").decode())
    body = encode(Message(role="user", content=[TextPart(text="Compare."), image, pdf, text]))
    parts = body["contents"][0]["parts"]
    assert parts[1] == {"inlineData": {"mimeType": "image/png", "data": FileData(image)}}
    assert parts[2] == {"fileData": {"mimeType": "application/pdf", "fileUri": "https://example.com/b.pdf"}}
    assert parts[3] == {"text": '<file name="notes \\"1\\".txt">\nhello\n</file>'}


def test_files_inside_a_tool_result_on_gemini_3() -> None:
    call = ToolCall(id="c1", name="chart", arguments={})
    image = FilePart(media_type="image/png", name="a.png", data=PNG_B64)
    notes = FilePart(media_type="text/plain", name="n.txt", data=base64.b64encode(b"sales up").decode())
    result = Message(role="tool", content=[TextPart(text="Here."), image, notes], tool_call_id="c1", name="chart")
    body = encode(Message.user("Chart?"), Message.assistant("", [call]), result, model="gemini-3-flash-preview")
    assert body["contents"][2]["parts"] == [{"functionResponse": {
        "name": "chart", "id": "c1",
        "response": {"result": 'Here.\n\n<file name="n.txt">\nsales up\n</file>'},
        "parts": [{"inlineData": {"mimeType": "image/png", "data": FileData(image)}}],
    }}]


@pytest.mark.parametrize(("model", "file"), [
    ("gemini-2.5-flash", FilePart(media_type="image/png", name="a.png", data=PNG_B64)),
    ("gemini-3-flash-preview", FilePart(media_type="image/png", name="a.png", url="https://example.com/a.png")),
])
def test_files_a_tool_result_cannot_carry_are_refused(model: str, file: FilePart) -> None:
    call = ToolCall(id="c1", name="chart", arguments={})
    result = Message(role="tool", content=[TextPart(text="Here."), file], tool_call_id="c1", name="chart")
    with pytest.raises(UnsupportedCapabilityError, match="a.png"):
        encode(Message.user("Chart?"), Message.assistant("", [call]), result, model=model)


def test_refusals() -> None:
    with pytest.raises(InvalidRequestError, match="needs the tool's name"):
        encode(Message.user("Hi"), Message(role="tool", content="ok", tool_call_id="unknown"))
    image = FilePart(media_type="image/png", name="a.png", data=PNG_B64)
    with pytest.raises(UnsupportedCapabilityError, match="system instruction is text only"):
        encode(Message(role="system", content=[TextPart(text="Look:"), image]), Message.user("Hi"))


def test_options_join_the_body_and_generation_config() -> None:
    safety = [{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}]
    body = encode(Message.user("Hi"), max_tokens=10, options={
        "safety_settings": safety, "generationConfig": {"thinking_config": {"thinking_budget": 0}, "seed": 7}})
    assert body["safetySettings"] == safety
    assert body["generationConfig"] == {"maxOutputTokens": 10, "thinkingConfig": {"thinking_budget": 0}, "seed": 7}


@pytest.mark.parametrize("options", [
    {"contents": []},
    {"system_instruction": {"parts": [{"text": "x"}]}},
    {"generation_config": {"max_output_tokens": 5}},
    {"generationConfig": "fast"},
    {"safety_settings": [], "safetySettings": []},
])
def test_options_may_not_replace_what_the_call_sets(options: dict[str, Any]) -> None:
    with pytest.raises(InvalidRequestError):
        encode(Message.system("Be brief."), Message.user("Hi"), max_tokens=10, options=options)


@pytest.mark.parametrize(("status", "error_type", "retry_after", "expected"), [
    (429, None, 2.5, {"code": 429, "message": "m", "status": "RESOURCE_EXHAUSTED", "details": [
        {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "2.5s"}]}),
    (500, None, None, {"code": 500, "message": "m", "status": "INTERNAL"}),
    (502, None, None, {"code": 502, "message": "m", "status": "UNAVAILABLE"}),
    (409, None, None, {"code": 409, "message": "m", "status": "FAILED_PRECONDITION"}),
    (400, "OUT_OF_RANGE", None, {"code": 400, "message": "m", "status": "OUT_OF_RANGE"}),
])
def test_error_body(status: int, error_type: str | None, retry_after: float | None, expected: dict[str, Any]) -> None:
    assert gemini.error_body(status, "m", error_type, retry_after) == ({"error": expected}, {})


def test_gemma_gets_the_instructions_in_the_first_user_turn() -> None:
    # Gemma models on the Gemini API answer 400 "Developer instruction is not enabled for
    # models/gemma-3-27b-it" to a systemInstruction.
    from llmclient.providers import REGISTRY
    from llmclient.request import Request
    from llmclient.wire import gemini

    request = Request.build("Capital of France?", system="Answer in one word.")
    gemma = gemini.encode(request, REGISTRY["gemini"], "gemma-3-27b-it", stream=False).body
    assert "systemInstruction" not in gemma
    assert gemma["contents"] == [{"role": "user", "parts": [{"text": "Answer in one word."}, {"text": "Capital of France?"}]}]
    flash = gemini.encode(request, REGISTRY["gemini"], "gemini-2.5-flash", stream=False).body
    assert flash["systemInstruction"] == {"parts": [{"text": "Answer in one word."}]}


@pytest.mark.parametrize("choice", ["auto", "none"])
def test_a_tool_choice_without_tools_sends_no_tool_config(choice: str) -> None:
    # Gemini answers 400 "Function calling config is set without function_declarations."
    # (pydantic/pydantic-ai#5791): without tools the choice asks nothing.
    body = encode(Message.user("Hi"), tool_choice=choice)
    assert "toolConfig" not in body and "tools" not in body
