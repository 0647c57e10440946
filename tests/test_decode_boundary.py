"""Hostile and broken input: the decode boundary lets no untyped exception out, and results are
truthful (a refusal is a refusal, an unknown number is an error, never a guessed 0).

Bodies are written by hand in the providers' real shapes (OpenAI chat completions, Anthropic
Messages, Gemini generateContent, Cohere v2 chat); expected values are the ones written into them.
A few cases go over real sockets through the loopback fault server (tests/fault_server.py).
"""

from __future__ import annotations

import json
import math
import time
import warnings
from typing import Any

import pytest

from llmclient import errors as e
from llmclient.assemble import Assembler, StreamAssembly
from llmclient.errors import UsageMissingWarning, retry_after_from
from llmclient.providers import REGISTRY, ProviderSpec
from llmclient.types import Response
from tests.fault_server import FaultServer, status
from tests.test_faults import Mode, call, error_of
from tests.test_wire import sse

COHERE = ProviderSpec(name="cohere", base_url="https://api.cohere.com", api_key_env="CO_API_KEY", wire="cohere")
MODES: tuple[Mode, ...] = ("complete", "acomplete", "stream", "astream")


def assembler(provider: str) -> Assembler:
    return Assembler(COHERE if provider == "cohere" else REGISTRY[provider], "test-model")


def respond(provider: str, body: dict[str, Any] | str | bytes, content_type: str = "application/json") -> Response:
    raw = body if isinstance(body, bytes) else body.encode() if isinstance(body, str) else json.dumps(body).encode()
    return assembler(provider).response(raw, time.perf_counter(), content_type=content_type)


def stream(provider: str, body: bytes) -> Response:
    assembly = StreamAssembly(assembler(provider), time.perf_counter(), status=200,
                              content_type="text/event-stream; charset=utf-8")
    for i in range(0, len(body), 64):
        assembly.feed(body[i : i + 64])
    return assembly.finish()


def openai_body(message: Any = None, *, usage: Any = None, finish: str = "stop", **extra: Any) -> dict[str, Any]:
    message = {"role": "assistant", "content": "Paris.", "refusal": None} if message is None else message
    return {"id": "chatcmpl-B9", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": finish}],
            "usage": usage or {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16},
            "system_fingerprint": "fp_06737a9306", **extra}


def openai_chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> dict[str, Any]:
    choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
    return {"id": "chatcmpl-C1", "object": "chat.completion.chunk", "created": 1741569952,
            "model": "gpt-4o-mini-2024-07-18", "choices": choices, **extra}


OPENAI_STREAM_USAGE = {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12}


def anthropic_events(*deltas: dict[str, Any], after: tuple[Any, ...] = ()) -> bytes:
    start = {"type": "message_start", "message": {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
        "stop_reason": None, "stop_sequence": None,
        "usage": {"input_tokens": 12, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": 1}}}
    return sse(("message_start", start),
               ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
               *[("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": d}) for d in deltas],
               ("content_block_stop", {"type": "content_block_stop", "index": 0}),
               ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn", "stop_sequence": None},
                                  "usage": {"output_tokens": 5}}),
               ("message_stop", {"type": "message_stop"}), *after)


def nested(depth: int) -> str:
    return "[" * depth + "]" * depth


# --- 1. no untyped exception escapes --------------------------------------------------------------


@pytest.mark.parametrize("depth", [100_000, 300])  # past Python's recursion limit, and below it but past ours
def test_deeply_nested_200_body_is_malformed(depth: int) -> None:
    body = json.dumps(openai_body(), separators=(",", ":")).replace('"logprobs":null', f'"logprobs":{nested(depth)}')
    with pytest.raises(e.MalformedResponseError, match=r"nests deeper than 200 levels; HTTP 200; content type 'application/json'"):
        respond("openai", body)


def test_nesting_within_the_limit_is_read() -> None:
    body = json.dumps(openai_body(), separators=(",", ":")).replace('"logprobs":null', f'"logprobs":{nested(150)}')
    assert respond("openai", body).text == "Paris."


def test_deeply_nested_error_body_is_still_the_typed_error_of_its_status() -> None:
    body = ('{"error": {"message": ' + nested(100_000) + ', "type": "invalid_request_error"}}').encode()
    error = assembler("openai").http_error(400, {"content-type": "application/json"}, body)
    assert type(error) is e.BadRequestError and error.status_code == 400
    error = assembler("anthropic").http_error(529, {}, ('{"type": "error", "error": ' + nested(500) + "}").encode())
    assert type(error) is e.OverloadedError


def test_deeply_nested_stream_event_is_malformed() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": ""}),
               '{"choices": [{"index": 0, "delta": {"content": ' + nested(100_000) + "}}]}", "[DONE]")
    with pytest.raises(e.MalformedResponseError, match="nests deeper"):
        stream("openai", body)


def test_deeply_nested_tool_arguments_are_malformed() -> None:
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a": ' + nested(5000) + "}"}}
    with pytest.raises(e.MalformedResponseError, match="arguments of tool call 'f' nests deeper"):
        respond("openai", openai_body({"role": "assistant", "content": None, "tool_calls": [call]}, finish="tool_calls"))


@pytest.mark.parametrize("details", [5, True, "RetryInfo", {"retryDelay": "3s"}])
def test_error_details_of_any_type_give_the_typed_error(details: Any) -> None:
    body = {"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                      "status": "RESOURCE_EXHAUSTED", "details": details}}
    error = assembler("gemini").http_error(429, {}, json.dumps(body).encode())
    assert type(error) is e.RateLimitError
    assert error.message == "Resource has been exhausted (e.g. check quota)."
    assert error.retry_after is None  # no RetryInfo list: no wait is known


def test_error_event_with_odd_details_in_a_stream() -> None:
    body = sse({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE", "details": 7}})
    with pytest.raises(e.ServerError, match="The model is overloaded."):
        stream("gemini", body)


def test_streamed_tool_call_indexes_of_mixed_type_are_malformed() -> None:
    first = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": ""}}
    second = {"index": "1", "id": "call_b", "type": "function", "function": {"name": "get_time", "arguments": ""}}
    body = sse(openai_chunk({"role": "assistant", "content": None, "tool_calls": [first]}),
               openai_chunk({"tool_calls": [second]}), openai_chunk({}, "tool_calls"), "[DONE]")
    with pytest.raises(e.MalformedResponseError, match="tool call's index is str '1', not an integer"):
        stream("openai", body)


def test_anthropic_text_delta_with_null_text_is_malformed() -> None:
    body = anthropic_events({"type": "text_delta", "text": "Hel"}, {"type": "text_delta", "text": None})
    with pytest.raises(e.MalformedResponseError, match="text_delta has NoneType None") as caught:
        stream("anthropic", body)
    assert "; HTTP 200; content type 'text/event-stream; charset=utf-8'" in caught.value.message


def test_a_decoder_failure_carries_status_content_type_and_an_excerpt() -> None:
    # `function` is a number where an object belongs: a TypeError inside the decoder
    message = {"role": "assistant", "content": None, "tool_calls": [{"id": "call_1", "type": "function", "function": 5}]}
    with pytest.raises(e.MalformedResponseError) as caught:
        respond("openai", openai_body(message, finish="tool_calls"), content_type="application/json; charset=utf-8")
    error = caught.value
    assert error.provider == "openai" and error.status_code is None  # the exchange was fine, the content is not
    assert "; HTTP 200; content type 'application/json; charset=utf-8'" in error.message
    assert "TypeError" in error.message and 'it began: \'{"id": "chatcmpl-B9"' in error.message
    assert isinstance(error.__cause__, TypeError)


def test_a_failure_at_the_end_of_a_stream_is_malformed_too() -> None:
    # the arguments only fail to parse when the stream is assembled at its end
    call = {"index": 0, "id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city": '}}
    body = sse(openai_chunk({"role": "assistant", "content": None, "tool_calls": [call]}),
               openai_chunk({}, "tool_calls"), openai_chunk(None, usage=OPENAI_STREAM_USAGE), "[DONE]")
    with pytest.raises(e.MalformedResponseError, match="JSONDecodeError: Expecting value.*; the arguments of tool call 'get_weather' is not valid JSON"):
        stream("openai", body)


# --- 2. truthful results ---------------------------------------------------------------------------

REFUSAL = "I'm sorry, but I can't help with that."


def test_openai_refusal_is_content_filter_with_its_text() -> None:
    r = respond("openai", openai_body({"role": "assistant", "content": None, "refusal": REFUSAL}))
    assert (r.text, r.refusal, r.finish_reason, r.raw_finish_reason) == ("", REFUSAL, "content_filter", "stop")


def test_openai_streamed_refusal_is_content_filter_with_its_text() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": None, "refusal": ""}),
               openai_chunk({"refusal": "I'm sorry, but "}), openai_chunk({"refusal": "I can't help with that."}),
               openai_chunk({}, "stop"), openai_chunk(None, usage=OPENAI_STREAM_USAGE), "[DONE]")
    r = stream("openai", body)
    assert (r.text, r.refusal, r.finish_reason, r.raw_finish_reason) == ("", REFUSAL, "content_filter", "stop")


def test_an_answer_without_refusal_has_none() -> None:
    r = respond("openai", openai_body())
    assert (r.text, r.refusal, r.finish_reason) == ("Paris.", None, "stop")


@pytest.mark.parametrize(("provider", "body", "problem"), [
    ("openai", openai_body(None) | {"choices": [{"index": 0, "message": None, "finish_reason": "stop"}]}, "message is NoneType"),
    ("openai", openai_body() | {"choices": []}, "no answer"),
    ("gemini", {"candidates": [], "usageMetadata": {"promptTokenCount": 4, "totalTokenCount": 4},
                "modelVersion": "gemini-2.5-flash"}, "no candidate and no promptFeedback.blockReason"),
    ("anthropic", {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                   "content": [{"type": "text", "text": None}], "stop_reason": "end_turn",
                   "usage": {"input_tokens": 12, "output_tokens": 5}}, "text block has NoneType"),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": None}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "modelVersion": "gemini-2.5-flash"}, "text part has NoneType"),
    ("openai", openai_body({"role": "assistant", "content": [{"type": "text", "text": None}]}), "text part has NoneType"),
    ("cohere", {"id": "c1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": None}]},
                "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 2}}}, "text item has NoneType"),
], ids=["openai-message-null", "openai-no-choices", "gemini-no-candidates", "anthropic-null-text", "gemini-null-text",
        "mistral-null-text-part", "cohere-null-text"])
def test_no_answer_is_malformed_never_an_empty_answer(provider: str, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(e.MalformedResponseError, match=problem):
        respond(provider, body)


def test_a_stream_of_only_done_is_malformed() -> None:
    with pytest.raises(e.MalformedResponseError, match=r"\[DONE\] and no chunk"):
        stream("openai", sse("[DONE]"))


@pytest.mark.parametrize("reason", ["PROHIBITED_CONTENT", "OTHER"])
def test_gemini_blocked_prompt_is_content_filter(reason: str) -> None:
    body = {"promptFeedback": {"blockReason": reason}, "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
            "modelVersion": "gemini-2.5-flash", "responseId": "abc"}
    r = respond("gemini", body)
    assert (r.text, r.finish_reason, r.raw_finish_reason, r.tool_calls) == ("", "content_filter", reason, [])
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (7, 0)
    streamed = stream("gemini", sse(body))
    assert (streamed.finish_reason, streamed.raw_finish_reason) == ("content_filter", reason)


BAD_COUNTS = [('"12"', "str '12'"), ("1e999", "float inf"), ("-3", "int -3"), ("true", "bool True"), ("2.5", "float 2.5")]


@pytest.mark.parametrize(("value", "shown"), BAD_COUNTS, ids=["string", "1e999", "negative", "bool", "fraction"])
@pytest.mark.parametrize(("provider", "template", "field"), [
    ("openai", json.dumps(openai_body(usage={"prompt_tokens": 14, "completion_tokens": "@", "total_tokens": 16})),
     "completion_tokens"),
    ("anthropic", json.dumps({"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
                              "content": [{"type": "text", "text": "Hi"}], "stop_reason": "end_turn",
                              "usage": {"input_tokens": 12, "cache_read_input_tokens": "@", "output_tokens": 5}}),
     "cache_read_input_tokens"),
    ("gemini", json.dumps({"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP"}],
                           "usageMetadata": {"promptTokenCount": "@", "candidatesTokenCount": 1, "totalTokenCount": 5}}),
     "promptTokenCount"),
    ("cohere", json.dumps({"id": "c1", "finish_reason": "COMPLETE", "message": {"role": "assistant", "content": [{"type": "text", "text": "Hi"}]},
                           "usage": {"billed_units": {"input_tokens": 5, "output_tokens": "@"}}}),
     "billed_units.output_tokens"),
])
def test_a_token_count_that_is_no_count_is_malformed(provider: str, template: str, field: str, value: str, shown: str) -> None:
    body = template.replace('"@"', value)
    with pytest.raises(e.MalformedResponseError, match=f"usage field {field} is {shown}"):
        respond(provider, body)


def test_an_integral_float_count_is_still_a_count() -> None:
    r = respond("openai", openai_body(usage={"prompt_tokens": 14.0, "completion_tokens": 2, "total_tokens": 16}))
    assert r.usage is not None and r.usage.input_tokens == 14


def test_openrouter_negative_cost_is_malformed() -> None:
    usage = {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16, "cost": -0.0002}
    with pytest.raises(e.MalformedResponseError, match="usage field cost is float -0.0002"):
        respond("openrouter", openai_body(usage=usage, provider="OpenAI"))
    r = respond("openrouter", openai_body(usage=usage | {"cost": 0.0002}, provider="OpenAI"))
    assert r.cost is not None and r.cost.source == "provider" and str(r.cost.total) == "0.0002"


def test_stream_without_the_usage_it_asked_for_warns_and_reports_none() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": "Hi"}), openai_chunk({}, "stop"), "[DONE]")
    with pytest.warns(UsageMissingWarning, match="openai/test-model: the stream ended without the usage it asked for"):
        r = stream("openai", body)
    assert (r.text, r.usage, r.finish_reason) == ("Hi", None, "stop")


def test_stream_that_did_not_ask_for_usage_does_not_warn() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": "Hi"}), openai_chunk({}, "stop"), "[DONE]")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        r = stream("mistral", body)  # Mistral's spec sends no stream_options
    assert r.usage is None


def test_nothing_after_done_is_used() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": "Paris."}), openai_chunk({}, "stop"),
               openai_chunk(None, usage=OPENAI_STREAM_USAGE), "[DONE]",
               openai_chunk({"content": " And more."}), openai_chunk(None, usage={"prompt_tokens": 1, "completion_tokens": 1}))
    r = stream("openai", body)
    assert r.text == "Paris." and r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens) == (9, 3)
    assert len(r.raw["chunks"]) == 3


def test_nothing_after_message_stop_is_used() -> None:
    late = ("content_block_delta", {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": " late"}})
    r = stream("anthropic", anthropic_events({"type": "text_delta", "text": "Hello"}, after=(late, "not even JSON")))
    assert r.text == "Hello" and r.usage is not None and r.usage.output_tokens == 5


def test_nothing_after_cohere_message_end_is_used() -> None:
    body = sse(("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}}),
               ("message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE",
                                "usage": {"billed_units": {"input_tokens": 5, "output_tokens": 1}}}}),
               ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " more"}}}}))
    assert stream("cohere", body).text == "Hi"


@pytest.mark.parametrize(("headers", "payload", "expected"), [
    ({"retry-after": "nan"}, None, None),
    ({"retry-after": "inf"}, None, None),
    ({"retry-after": "-5"}, None, None),  # delay-seconds is 1*DIGIT (RFC 9110 §10.2.3): no wait said
    ({"retry-after-ms": "NaN", "retry-after": "3"}, None, 3.0),
    ({"retry-after-ms": "-Infinity"}, None, None),
    ({}, {"error": {"code": 429, "details": [{"retryDelay": "nans"}]}}, None),
    ({}, {"error": {"code": 429, "details": [{"retryDelay": "-2s"}]}}, 0.0),
    ({}, {"error": {"code": 429, "metadata": {"retry_after": float("inf")}}}, None),
    ({"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "nan"}, None, None),
], ids=["nan", "inf", "negative", "ms-nan-falls-back", "ms-minus-inf", "body-nan", "body-negative", "metadata-inf", "bucket-nan"])
def test_retry_after_is_never_nan_or_infinite(headers: dict[str, str], payload: Any, expected: float | None) -> None:
    assert retry_after_from(headers, payload) == expected


def test_retry_after_from_an_enormous_number_in_the_message_is_none() -> None:
    assert retry_after_from({}, None, "Please try again in " + "9" * 400 + "s.") is None


def test_a_429_with_a_nan_wait_has_no_retry_after() -> None:
    error = assembler("openai").http_error(429, {"retry-after": "NaN"}, b'{"error": {"message": "slow down", "type": "requests"}}')
    assert type(error) is e.RateLimitError and error.retry_after is None
    body = b'{"error": {"message": "slow down", "code": 429, "metadata": {"retry_after": 1e999}}}'
    error = assembler("openrouter").http_error(429, {}, body)
    assert error.retry_after is None or not math.isnan(error.retry_after)
    assert error.retry_after is None


# --- 3. redirects, encodings, content types over real sockets ----------------------------------------


@pytest.fixture
def server() -> Any:
    with FaultServer() as running:
        yield running


@pytest.mark.parametrize("mode", MODES)
async def test_a_redirect_is_an_api_error_naming_status_and_location(server: FaultServer, mode: Mode) -> None:
    server.script(status(307, headers={"location": "https://elsewhere.example/v1/chat/completions"}, body=b""))
    error = error_of(await call(server, "openai", mode))
    assert type(error) is e.APIError
    assert error.status_code == 307
    assert "HTTP 307 redirect to 'https://elsewhere.example/v1/chat/completions'" in error.message
    assert server.count == 1  # not followed


def test_a_redirect_without_location_says_so() -> None:
    error = assembler("anthropic").http_error(301, {}, b"")
    assert type(error) is e.APIError and error.status_code == 301 and "without a Location header" in error.message


@pytest.mark.parametrize("mode", MODES)
async def test_a_body_that_is_not_the_gzip_it_claims_is_malformed(server: FaultServer, mode: Mode) -> None:
    server.script(status(200, headers={"content-encoding": "gzip"}, body=json.dumps(openai_body()).encode()))
    error = error_of(await call(server, "openai", mode))
    assert type(error) is e.MalformedResponseError
    assert "Content-Encoding 'gzip'" in error.message


@pytest.mark.parametrize("mode", MODES)
async def test_a_mixed_case_json_content_type_is_json(server: FaultServer, mode: Mode) -> None:
    server.script(status(200, headers={"content-type": "Application/JSON; Charset=UTF-8"}, body=openai_body()))
    outcome = await call(server, "openai", mode)
    assert outcome.error is None and outcome.response is not None
    assert (outcome.response.text, outcome.response.finish_reason) == ("Paris.", "stop")


@pytest.mark.parametrize("mode", MODES)
async def test_deep_nesting_over_the_wire_is_malformed(server: FaultServer, mode: Mode) -> None:
    body = json.dumps(openai_body(), separators=(",", ":")).replace('"logprobs":null', f'"logprobs":{nested(50_000)}')
    server.script(status(200, body=body.encode()))
    error = error_of(await call(server, "openai", mode))
    assert type(error) is e.MalformedResponseError and "nests deeper" in error.message


# --- answers that say nothing, or contradict themselves --------------------------------------------


@pytest.mark.parametrize(("provider", "body", "problem"), [
    ("openai", openai_body({"role": "assistant"}), "no text, tool call or refusal"),
    ("openai", openai_body({"role": "assistant", "content": None, "reasoning_content": "Thinking..."}), "no text, tool call or refusal"),
    ("openai", openai_body({"role": "assistant", "content": None}, finish="tool_calls"), "'tool_calls' with no tool call"),
    ("openai", openai_body({"role": "assistant", "content": None, "tool_calls": [
        {"id": "call_1", "type": "function", "function": {"name": "", "arguments": "{}"}}]}, finish="tool_calls"),
     "tool call 'call_1' named '' has no name"),
    ("openai", openai_body(usage="12"), "usage field usage is str '12', not an object"),
    ("openai", openai_body(usage={"prompt_tokens": 10, "completion_tokens": 2, "prompt_tokens_details": {"cached_tokens": 11}}),
     r"cached tokens above prompt_tokens \(11 > 10\)"),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": ""}, "usage field usageMetadata is str ''"),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": "Hi"}], "role": "model"}, "finishReason": "STOP", "index": 0}],
                "usageMetadata": {"promptTokenCount": 4, "cachedContentTokenCount": 9, "candidatesTokenCount": 1}},
     r"cachedContentTokenCount above the prompt \(9 > 4\)"),
], ids=["openai-nothing-said", "openai-reasoning-only", "openai-tool-finish-without-calls", "openai-nameless-call", "openai-usage-string",
        "openai-cache-above-prompt", "gemini-usage-string", "gemini-cache-above-prompt"])
def test_an_answer_that_contradicts_itself_is_malformed(provider: str, body: dict[str, Any], problem: str) -> None:
    with pytest.raises(e.MalformedResponseError, match=problem):
        respond(provider, body)


def test_an_empty_text_with_a_finish_reason_is_an_empty_answer() -> None:
    r = respond("openai", openai_body({"role": "assistant", "content": ""}, finish="length"))
    assert (r.text, r.finish_reason) == ("", "length")


def test_a_streamed_call_without_a_name_is_malformed() -> None:
    call = {"index": 0, "id": "call_a", "type": "function", "function": {"arguments": "{}"}}
    body = sse(openai_chunk({"role": "assistant", "content": None, "tool_calls": [call]}), openai_chunk({}, "tool_calls"),
               openai_chunk(None, usage=OPENAI_STREAM_USAGE), "[DONE]")
    with pytest.raises(e.MalformedResponseError, match="streamed tool call 0 has no name"):
        stream("openai", body)


def test_bytes_that_are_not_utf8_after_the_end_marker_are_ignored() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": "Paris."}), openai_chunk({}, "stop"),
               openai_chunk(None, usage=OPENAI_STREAM_USAGE), "[DONE]") + b"\xff\xfe garbage\n\n"
    assembly = StreamAssembly(assembler("openai"), time.perf_counter())
    events = assembly.feed(body)  # one chunk: the valid events before the bad bytes still count
    assert [event.text for event in events] == ["Paris."]
    assert assembly.finish().text == "Paris."


def test_bytes_that_are_not_utf8_before_the_end_are_malformed() -> None:
    body = sse(openai_chunk({"role": "assistant", "content": "Paris."})) + b"data: \xff\n\n" + sse("[DONE]")
    with pytest.raises(e.MalformedResponseError, match="UnicodeDecodeError"):
        stream("openai", body)


def test_a_tool_call_without_an_id_is_malformed() -> None:
    body = {"id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
            "content": [{"type": "tool_use", "id": "", "name": "get_weather", "input": {"city": "Paris"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 12, "output_tokens": 5}}
    with pytest.raises(e.MalformedResponseError, match="tool call '' named 'get_weather' has no id"):
        respond("anthropic", body)
