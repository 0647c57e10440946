"""Wire decoders through the Assembler: provider bodies and SSE streams -> Response, typed errors
for error events inside 200 responses, MalformedResponseError for bodies of the wrong shape."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest

from llmclient import errors as e
from llmclient.assemble import Assembler, StreamAssembly
from llmclient.providers import REGISTRY, ProviderSpec
from llmclient.types import Response, StreamEvent, ToolCall
from llmclient.wire import StreamErrorEvent

COHERE = ProviderSpec(name="cohere", base_url="https://api.cohere.com", api_key_env="CO_API_KEY",
                      wire="cohere")
MODEL = "test-model"


def assembler(provider: str) -> Assembler:
    return Assembler(COHERE if provider == "cohere" else REGISTRY[provider], MODEL)


def respond(provider: str, body: dict[str, Any] | bytes) -> Response:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return assembler(provider).response(raw, time.perf_counter())


def sse(*events: Any, sep: str = "\n\n") -> bytes:
    """`data:` events; a (name, payload) pair adds an `event:` line; str payloads are sent as is."""
    out = []
    for item in events:
        name, payload = item if isinstance(item, tuple) else (None, item)
        data = payload if isinstance(payload, str) else json.dumps(payload)
        out.append((f"event: {name}\n" if name else "") + f"data: {data}{sep}")
    return "".join(out).encode()


def run_stream(provider: str, body: bytes, size: int = 7) -> tuple[list[StreamEvent], Response]:
    """Feed in small odd-sized chunks, like a network would."""
    assembly = StreamAssembly(assembler(provider), time.perf_counter())
    events: list[StreamEvent] = []
    for i in range(0, len(body), size):
        events += assembly.feed(body[i : i + size])
    return events, assembly.finish()


def texts(events: list[StreamEvent], kind: str = "text") -> list[str]:
    return [ev.text for ev in events if ev.kind == kind]


def test_openai_text() -> None:
    r = respond("openai", {
        "id": "chatcmpl-B9", "object": "chat.completion", "created": 1741569952, "model": "gpt-4o-mini-2024-07-18",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": "Paris.", "refusal": None},
                     "logprobs": None, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 14, "completion_tokens": 2, "total_tokens": 16}, "system_fingerprint": "fp_06737a9306"})
    assert (r.text, r.reasoning, r.tool_calls, r.finish_reason, r.raw_finish_reason) == ("Paris.", None, [], "stop", "stop")
    assert (r.model, r.provider, r.usage.input_tokens, r.usage.output_tokens) == ("gpt-4o-mini-2024-07-18", "openai", 14, 2)


def test_openai_parallel_tool_calls() -> None:
    calls = [{"id": "call_abc", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Paris\"}"}},
             {"id": "call_def", "type": "function", "function": {"name": "get_time", "arguments": ""}},
             {"id": "call_ghi", "type": "custom", "custom": {"name": "run_sql", "input": "SELECT 1"}}]  # not a function call
    r = respond("openai", {"choices": [{"index": 0, "finish_reason": "tool_calls",
                                        "message": {"role": "assistant", "content": None, "tool_calls": calls}}]})
    assert r.text == ""
    assert r.tool_calls == [ToolCall(id="call_abc", name="get_weather", arguments={"city": "Paris"}),
                            ToolCall(id="call_def", name="get_time", arguments={})]
    assert r.finish_reason == "tool_calls"


@pytest.mark.parametrize(("message", "text", "reasoning"), [
    ({"content": "42", "reasoning_content": "Six times seven."}, "42", "Six times seven."),  # DeepSeek, Z.ai
    ({"content": "42", "reasoning": "Six times seven."}, "42", "Six times seven."),  # Groq, OpenRouter
    ({"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Six times seven."}]},
                  {"type": "text", "text": "42"}]}, "42", "Six times seven."),  # Mistral magistral
])
def test_openai_reasoning_dialects(message: dict, text: str, reasoning: str) -> None:
    r = respond("openai", {"choices": [{"index": 0, "message": {"role": "assistant", **message}, "finish_reason": "stop"}]})
    assert (r.text, r.reasoning) == (text, reasoning)


def test_anthropic_blocks_server_tools_are_not_tool_calls() -> None:
    r = respond("anthropic", {
        "id": "msg_01", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929",
        "content": [
            {"type": "thinking", "thinking": "The user wants the weather.", "signature": "EqQB"},
            {"type": "text", "text": "Let me check."},
            {"type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {"query": "paris weather"}},
            {"type": "web_search_tool_result", "tool_use_id": "srvtoolu_01", "content": []},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}}],
        "stop_reason": "tool_use", "stop_sequence": None, "usage": {"input_tokens": 410, "output_tokens": 95}})
    assert (r.text, r.reasoning) == ("Let me check.", "The user wants the weather.")
    assert r.tool_calls == [ToolCall(id="toolu_01", name="get_weather", arguments={"city": "Paris"})]
    assert (r.finish_reason, r.raw_finish_reason, r.model) == ("tool_calls", "tool_use", "claude-sonnet-4-5-20250929")


def test_gemini_parts_code_execution_is_not_a_tool_call() -> None:
    r = respond("gemini", {
        "candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model", "parts": [
            {"text": "Weather needs a tool.", "thought": True},
            {"executableCode": {"language": "PYTHON", "code": "print(1)"}},
            {"codeExecutionResult": {"outcome": "OUTCOME_OK", "output": "1\n"}},
            {"text": "Let me look."},
            {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}}]}}],
        "usageMetadata": {"promptTokenCount": 30, "candidatesTokenCount": 12, "totalTokenCount": 42},
        "modelVersion": "gemini-2.5-flash", "responseId": "abc123"})
    assert (r.text, r.reasoning) == ("Let me look.", "Weather needs a tool.")
    assert r.tool_calls == [ToolCall(id="call_0_get_weather", name="get_weather", arguments={"city": "Paris"})]
    assert (r.finish_reason, r.raw_finish_reason, r.model) == ("tool_calls", "STOP", "gemini-2.5-flash")


def test_cohere_tool_plan_is_reasoning() -> None:
    r = respond("cohere", {
        "id": "c1", "finish_reason": "TOOL_CALL",
        "message": {"role": "assistant", "tool_plan": "I will call get_weather.", "tool_calls": [
            {"id": "get_weather_x1", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\":\"Paris\"}"}}]},
        "usage": {"billed_units": {"input_tokens": 41, "output_tokens": 25}, "tokens": {"input_tokens": 1441, "output_tokens": 54}}})
    assert (r.text, r.reasoning, r.finish_reason, r.model) == ("", "I will call get_weather.", "tool_calls", MODEL)
    assert r.tool_calls == [ToolCall(id="get_weather_x1", name="get_weather", arguments={"city": "Paris"})]


@pytest.mark.parametrize(("provider", "body", "finish"), [
    ("openai", {"choices": [{"message": {"content": "a"}, "finish_reason": "length"}]}, "length"),
    ("openai", {"choices": [{"message": {"content": ""}, "finish_reason": "content_filter"}]}, "content_filter"),
    ("openai", {"choices": [{"finish_reason": "stop", "message": {"tool_calls": [  # Groq/others say "stop" here
        {"id": "c", "function": {"name": "f", "arguments": "{}"}}]}}]}, "tool_calls"),
    ("anthropic", {"content": [], "stop_reason": "max_tokens"}, "length"),
    ("anthropic", {"content": [], "stop_reason": "refusal"}, "content_filter"),
    ("anthropic", {"content": [], "stop_reason": "pause_turn"}, "other"),
    ("gemini", {"candidates": [{"content": {"parts": [{"text": "a"}]}, "finishReason": "MAX_TOKENS"}]}, "length"),
    ("gemini", {"candidates": [{"finishReason": "SAFETY"}]}, "content_filter"),
    ("cohere", {"message": {"content": [{"type": "text", "text": "a"}]}, "finish_reason": "MAX_TOKENS"}, "length"),
])
def test_finish_reasons(provider: str, body: dict, finish: str) -> None:
    assert respond(provider, body).finish_reason == finish


def test_openai_stream_text_and_usage_chunk() -> None:
    chunk = {"id": "c1", "object": "chat.completion.chunk", "model": "gpt-4o-mini-2024-07-18", "usage": None}
    body = sse(
        {**chunk, "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}, "finish_reason": None}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]},
        {**chunk, "choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": None},
                              {"index": 1, "delta": {"content": "(second choice, n=2)"}, "finish_reason": "length"}]},
        {**chunk, "choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]},
        {**chunk, "choices": [], "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11}},
        "[DONE]")
    events, r = run_stream("openai", body)
    assert events == [StreamEvent(kind="text", text="Hel"), StreamEvent(kind="text", text="lo")]
    assert (r.text, r.finish_reason, r.model, r.usage.input_tokens, r.usage.output_tokens) == (
        "Hello", "stop", "gpt-4o-mini-2024-07-18", 9, 2)
    assert len(r.raw["chunks"]) == 5  # every JSON chunk kept, [DONE] is not one


def test_openai_stream_tool_call_fragments() -> None:
    def delta(calls: list) -> dict:
        return {"choices": [{"index": 0, "delta": {"tool_calls": calls}, "finish_reason": None}]}
    body = sse(
        delta([{"index": 0, "id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": ""}}]),
        delta([{"index": 0, "function": {"arguments": "{\"ci"}}]),
        delta([{"index": 0, "function": {"arguments": "ty\": \"Paris\"}"}}]),
        delta([{"index": 1, "id": "call_2", "type": "function", "function": {"name": "get_time", "arguments": "{}"}}]),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]")
    events, r = run_stream("openai", body)
    assert [(ev.tool_call.index, ev.tool_call.arguments) for ev in events] == [
        (0, ""), (0, "{\"ci"), (0, "ty\": \"Paris\"}"), (1, "{}")]
    assert r.tool_calls == [ToolCall(id="call_1", name="get_weather", arguments={"city": "Paris"}),
                            ToolCall(id="call_2", name="get_time", arguments={})]
    assert r.finish_reason == "tool_calls"


def test_anthropic_stream() -> None:
    def block_delta(index: int, delta: dict) -> tuple[str, dict]:
        return "content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta}
    body = sse(
        ("message_start", {"type": "message_start", "message": {
            "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5-20250929", "content": [],
            "stop_reason": None, "usage": {"input_tokens": 472, "cache_read_input_tokens": 0, "output_tokens": 1}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "thinking", "thinking": ""}}),
        block_delta(0, {"type": "thinking_delta", "thinking": "Need weather."}),
        ("content_block_start", {"type": "content_block_start", "index": 1, "content_block": {"type": "text", "text": ""}}),
        ("ping", {"type": "ping"}),
        block_delta(1, {"type": "text_delta", "text": "Checking"}),
        block_delta(1, {"type": "text_delta", "text": " now."}),
        ("content_block_start", {"type": "content_block_start", "index": 2, "content_block": {
            "type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {}}}),
        block_delta(2, {"type": "input_json_delta", "partial_json": "{\"city\": "}),
        block_delta(2, {"type": "input_json_delta", "partial_json": "\"Paris\"}"}),
        ("content_block_start", {"type": "content_block_start", "index": 3, "content_block": {
            "type": "server_tool_use", "id": "srvtoolu_01", "name": "web_search", "input": {}}}),
        block_delta(3, {"type": "input_json_delta", "partial_json": "{\"query\": \"paris\"}"}),
        ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 64}}),
        ("message_stop", {"type": "message_stop"}))
    events, r = run_stream("anthropic", body)
    assert texts(events) == ["Checking", " now."]
    assert texts(events, "reasoning") == ["Need weather."]
    assert "".join(ev.tool_call.arguments for ev in events if ev.tool_call) == "{\"city\": \"Paris\"}"  # server tool: no events
    assert (r.text, r.reasoning, r.finish_reason, r.model) == ("Checking now.", "Need weather.", "tool_calls", "claude-sonnet-4-5-20250929")
    assert r.tool_calls == [ToolCall(id="toolu_01", name="get_weather", arguments={"city": "Paris"})]
    assert (r.usage.input_tokens, r.usage.output_tokens) == (472, 64)


def test_gemini_stream_crlf() -> None:
    body = sse(
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hmm.", "thought": True}]}, "index": 0}],
         "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}, "modelVersion": "gemini-2.5-flash"},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "Hel"}]}, "index": 0}]},
        {"candidates": [{"content": {"role": "model", "parts": [{"text": "lo"}]}, "finishReason": "STOP", "index": 0}],
         "usageMetadata": {"promptTokenCount": 8, "candidatesTokenCount": 2, "thoughtsTokenCount": 5, "totalTokenCount": 15}},
        sep="\r\n\r\n")
    events, r = run_stream("gemini", body, size=5)
    assert events == [StreamEvent(kind="reasoning", text="Hmm."), StreamEvent(kind="text", text="Hel"),
                      StreamEvent(kind="text", text="lo")]
    assert (r.text, r.reasoning, r.finish_reason, r.model) == ("Hello", "Hmm.", "stop", "gemini-2.5-flash")
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.reasoning_tokens) == (8, 7, 5)


def test_cohere_stream() -> None:
    body = sse(
        ("message-start", {"id": "c1", "type": "message-start", "delta": {"message": {"role": "assistant", "content": []}}}),
        ("content-start", {"type": "content-start", "index": 0, "delta": {"message": {"content": {"type": "text", "text": ""}}}}),
        ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": "Hi"}}}}),
        ("content-delta", {"type": "content-delta", "index": 0, "delta": {"message": {"content": {"text": " there"}}}}),
        ("content-end", {"type": "content-end", "index": 0}),
        ("message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE", "usage": {
            "billed_units": {"input_tokens": 5, "output_tokens": 2}, "tokens": {"input_tokens": 71, "output_tokens": 4}}}}))
    events, r = run_stream("cohere", body)
    assert texts(events) == ["Hi", " there"]
    assert (r.text, r.finish_reason, r.usage.input_tokens, r.usage.output_tokens) == ("Hi there", "stop", 5, 2)


STREAM_ERRORS = [
    ("anthropic", sse(("message_start", {"type": "message_start", "message": {"model": "claude-sonnet-4-5", "usage": {}}}),
                      ("error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}})),
     e.OverloadedError, "Overloaded"),
    ("groq", sse({"choices": [{"index": 0, "delta": {"reasoning": "We"}, "finish_reason": None}]},
                 ("error", {"error": {"message": "Tool call validation failed: parameters did not match schema",
                                      "type": "invalid_request_error", "code": "tool_use_failed", "status_code": 400}})),
     e.BadRequestError, "Tool call validation failed: parameters did not match schema"),
    ("openai", sse({"choices": [{"index": 0, "delta": {"content": "The"}, "finish_reason": None}]},
                   {"error": {"message": "The server had an error while processing your request. Sorry about that!",
                              "type": "server_error"}}),
     e.ServerError, "The server had an error while processing your request. Sorry about that!"),
    ("gemini", sse({"error": {"code": 429, "message": "Resource has been exhausted (e.g. check quota).",
                              "status": "RESOURCE_EXHAUSTED"}}, sep="\r\n\r\n"),
     e.RateLimitError, "Resource has been exhausted (e.g. check quota)."),
]


@pytest.mark.parametrize(("provider", "body", "cls", "message"), STREAM_ERRORS, ids=[c[0] for c in STREAM_ERRORS])
def test_error_event_in_stream(provider: str, body: bytes, cls: type, message: str) -> None:
    with pytest.raises(e.APIError) as caught:
        run_stream(provider, body)
    err = caught.value
    assert type(err) is cls
    assert (err.provider, err.model, err.status_code, err.message) == (provider, MODEL, None, message)
    assert isinstance(err.__cause__, StreamErrorEvent)


def test_event_error_line_marks_an_error_without_an_error_key() -> None:
    # vLLM-style error object: no "error" key, so only the `event: error` line says what it is
    body = sse(("error", {"object": "error", "message": "max_tokens must be at least 1", "type": "BadRequestError", "code": 400}))
    with pytest.raises(e.APIError) as caught:
        run_stream("openai", body)
    assert not isinstance(caught.value, e.MalformedResponseError)
    assert caught.value.message == "max_tokens must be at least 1"


@pytest.mark.parametrize(("provider", "body", "cls"), [
    ("anthropic", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}, e.OverloadedError),
    ("openai", {"error": {"message": "Rate limit", "type": "requests", "code": "rate_limit_exceeded"}}, e.RateLimitError),
    ("gemini", {"error": {"code": 500, "message": "Internal error encountered.", "status": "INTERNAL"}}, e.ServerError),
    ("cohere", {"id": "c1", "message": "invalid request: model 'command-z' not found"}, e.APIError),  # no type to go by
])
def test_error_object_in_a_200_body(provider: str, body: dict, cls: type) -> None:
    with pytest.raises(e.APIError) as caught:
        respond(provider, body)
    assert type(caught.value) is cls
    assert (caught.value.provider, caught.value.status_code) == (provider, None)


def test_openrouter_mid_stream_error_chunk_with_choices() -> None:
    body = sse({"id": "gen-1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "Hel"}}]},
               {"id": "gen-1", "object": "chat.completion.chunk", "provider": "OpenAI",
                "error": {"code": "server_error", "message": "Provider disconnected unexpectedly"},
                "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}]}, "[DONE]")
    with pytest.raises(e.ServerError):
        run_stream("openrouter", body)


MALFORMED = [
    ("openai", b'{"id": "chatcmpl-1", "choices": [{"index": 0, "mess'),
    ("openai", b'{"id": "chatcmpl-1", "object": "chat.completion"}'),
    ("openai", b'{"choices": [{"message": {"tool_calls": [{"id": "call_1", "type": "function"}]}}]}'),
    ("openai", b'{"choices": [{"message": {"tool_calls": [{"function": {"name": "f", "arguments": "{\\"a\\": 1"}}]}}]}'),
    ("openai", b""),
    ("openai", b"<html><body>Bad gateway</body></html>"),
    ("anthropic", b'{"type": "message", "content": "hi"}'),
    ("anthropic", b'{"content": [{"type": "tool_use", "name": "f", "input": {}}]}'),
    ("gemini", b'{"candidates": ["oops"]}'),
    ("gemini", b'{"candidates": [{"content": {"parts": [{"functionCall": {"name": "f", "args": [1]}}]}}]}'),
    ("cohere", b'{"id": "c1", "finish_reason": "COMPLETE"}'),
]


@pytest.mark.parametrize(("provider", "body"), MALFORMED)
def test_malformed_body(provider: str, body: bytes) -> None:
    with pytest.raises(e.MalformedResponseError) as caught:
        respond(provider, body)
    assert (caught.value.provider, caught.value.model) == (provider, MODEL)
    assert caught.value.message.endswith(f"it began: {body.decode()!r}")


def test_malformed_excerpt_is_short() -> None:
    with pytest.raises(e.MalformedResponseError) as caught:
        respond("openai", b'{"choices": "' + b"a" * 5000)
    assert caught.value.message.endswith("it began: '{\"choices\": \"" + "a" * 187 + "...'")


TRUNCATED = [
    ("openai", sse({"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": None}]}),
     "the stream ended before [DONE] or a finish_reason", '{"choices": [{"index": 0, "delta": {"content": "Hel"}, "finish_reason": null}]}'),
    ("anthropic", sse(("message_start", {"type": "message_start", "message": {"model": "m", "usage": {}}}),
                      ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}})),
     "the stream ended before message_stop", '{"type": "message_delta", "delta": {"stop_reason": "end_turn"}}'),
    ("gemini", sse({"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}, sep="\r\n\r\n"),
     "the stream ended before a chunk with a finishReason", '{"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}'),
    ("cohere", sse(("content-delta", {"type": "content-delta", "delta": {"message": {"content": {"text": "Hi"}}}})),
     "the stream ended before message-end", '{"type": "content-delta", "delta": {"message": {"content": {"text": "Hi"}}}}'),
]


@pytest.mark.parametrize(("provider", "body", "problem", "last"), TRUNCATED, ids=[c[0] for c in TRUNCATED])
def test_truncated_stream(provider: str, body: bytes, problem: str, last: str) -> None:
    with pytest.raises(e.MalformedResponseError) as caught:
        run_stream(provider, body)
    assert caught.value.provider == provider
    assert problem in caught.value.message
    assert caught.value.message.endswith(f"it began: {last!r}")


@pytest.mark.parametrize(("provider", "body", "began"), [
    ("openai", b'data: {"choices": [{"delta": {"content": "Hi"}\n\n', '{"choices": [{"delta": {"content": "Hi"}'),
    ("anthropic", b'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"type": "text_delta"}}\n\n',
     '{"type": "content_block_delta", "delta": {"type": "text_delta"}}'),
    ("openai", b'data: "just a string"\n\n', '"just a string"'),
    ("openai", b'data: {"x": "\xff"}\n\n', 'data: {"x": "\ufffd"}'),  # invalid UTF-8: the raw chunk is quoted
])
def test_bad_stream_event(provider: str, body: bytes, began: str) -> None:
    with pytest.raises(e.MalformedResponseError) as caught:
        StreamAssembly(assembler(provider), time.perf_counter()).feed(body)
    assert (caught.value.provider, caught.value.model) == (provider, MODEL)
    assert caught.value.message.endswith(f"it began: {began!r}")


def test_negative_usage_is_malformed() -> None:
    with pytest.raises(e.MalformedResponseError):
        respond("openai", {"choices": [{"message": {"content": "hi"}, "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": -1, "completion_tokens": 2}})


def test_gemini_empty_object_is_malformed() -> None:
    with pytest.raises(e.MalformedResponseError, match=r"no candidate and no promptFeedback.blockReason"):
        Assembler(REGISTRY["gemini"], "gemini-2.5-flash").response(b"{}", 0.0)


def test_finish_reason_error_mid_stream_raises_a_server_error() -> None:
    # Mistral ends a generation that failed upstream with finish_reason "error" (mistralai/client-python#74).
    body = sse({"id": "m1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": "1, 2, "}}]},
               {"id": "m1", "object": "chat.completion.chunk", "choices": [{"index": 0, "delta": {"content": ""}, "finish_reason": "error"}],
                "usage": {"prompt_tokens": 31, "completion_tokens": 4, "total_tokens": 35}}, "[DONE]")
    with pytest.raises(e.ServerError, match="finish_reason 'error'"):
        run_stream("mistral", body)


def test_an_object_error_chunk_raises() -> None:
    body = sse({"object": "error", "message": "max_tokens must be at least 1", "type": "BadRequestError", "code": 400})
    with pytest.raises(e.BadRequestError, match="max_tokens must be at least 1"):
        run_stream("openai", body)


def test_deepseek_insufficient_system_resource_is_a_server_error() -> None:
    body = {"id": "d1", "object": "chat.completion", "model": "deepseek-chat",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "1, 2,"}, "finish_reason": "insufficient_system_resource"}],
            "usage": {"prompt_tokens": 18, "completion_tokens": 4, "total_tokens": 22}}
    with pytest.raises(e.ServerError, match="insufficient_system_resource"):
        respond("deepseek", body)


def test_stream_reasoning_beside_text_in_one_delta_is_kept() -> None:
    # DeepSeek/Z.ai style: a delta can carry text and reasoning_content together; the decoder's
    # fast path for plain text chunks must not take it.
    from llmclient.wire.openai import StreamDecoder
    from llmclient.wire.sse import SSEEvent

    decoder = StreamDecoder()
    decoder.feed(SSEEvent("message", '{"choices":[{"index":0,"delta":{"content":"a","reasoning_content":"think"}}]}'))
    decoder.feed(SSEEvent("message", '{"choices":[{"index":0,"delta":{"role":"assistant","content":"b"},"finish_reason":"stop"}]}'))
    decoded = decoder.finish()
    assert (decoded.text, decoded.reasoning, decoded.raw_finish_reason) == ("ab", "think", "stop")


def test_sse_chunks_of_one_event_and_split_events_parse_alike() -> None:
    from llmclient.wire.sse import SSEParser

    whole = b'event: content_block_delta\ndata: {"a":1}\n\ndata: {"b":2}\n\n'
    one_by_one = SSEParser()
    events = one_by_one.feed(whole[:42]) + one_by_one.feed(whole[42:])
    byte_by_byte = SSEParser()
    events_bytes = [e for i in range(len(whole)) for e in byte_by_byte.feed(whole[i:i + 1])]
    assert events == events_bytes == [("content_block_delta", '{"a":1}'), ("message", '{"b":2}')]


def _tool_delta(*calls: dict) -> dict:
    return {"choices": [{"index": 0, "delta": {"tool_calls": list(calls)}, "finish_reason": None}]}


def _call(id: str | None, name: str, arguments: str, **more: Any) -> dict:
    return {**({"id": id} if id else {}), "type": "function", "function": {"name": name, "arguments": arguments}, **more}


@pytest.mark.parametrize("body", [
    # Google's OpenAI-compatible endpoint: no index (openai-python#2806).
    sse(_tool_delta(_call("a", "f", '{"x": 1}')), _tool_delta(_call("b", "g", '{"y": 2}')),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]"),
    # Ollama: index 0 for every parallel call (ollama#15457).
    sse(_tool_delta(_call("a", "f", '{"x": 1}', index=0), _call("b", "g", '{"y": 2}', index=0)),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]"),
    # Neither index nor id, two calls in one delta.
    sse(_tool_delta(_call(None, "f", '{"x": 1}'), _call(None, "g", '{"y": 2}')),
        {"choices": [{"index": 0, "delta": {}, "finish_reason": "tool_calls"}]}, "[DONE]"),
], ids=["no-index", "index-0-each", "no-index-no-id"])
def test_openai_dialect_parallel_tool_calls_without_distinct_indices_stay_apart(body: bytes) -> None:
    events, r = run_stream("openai", body, size=5)
    assert [(call.name, call.arguments) for call in r.tool_calls] == [("f", {"x": 1}), ("g", {"y": 2})]
    assert [ev.tool_call.index for ev in events if ev.tool_call is not None] == [0, 1]


def test_openai_stream_leaves_out_a_call_that_is_not_a_function_as_a_whole_answer_does() -> None:
    custom = {"index": 0, "id": "c1", "type": "custom", "custom": {"name": "grep", "input": "foo"}}
    body = sse({"choices": [{"index": 0, "delta": {"content": "ok", "tool_calls": [custom]}, "finish_reason": None}]},
               {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}, "[DONE]")
    _, streamed = run_stream("openai", body)
    whole = respond("openai", {"id": "x", "object": "chat.completion", "created": 1, "model": "m", "choices": [
        {"index": 0, "message": {"role": "assistant", "content": "ok", "tool_calls": [
            {"id": "c1", "type": "custom", "custom": {"name": "grep", "input": "foo"}}]}, "finish_reason": "stop"}]})
    assert (streamed.text, streamed.tool_calls) == (whole.text, whole.tool_calls) == ("ok", [])
