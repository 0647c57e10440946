"""Hostile and broken input over real loopback sockets, by the issue's categories, for every wire
(OpenAI chat completions, Anthropic Messages, Gemini generateContent, Cohere v2 chat) and the
call modes each case applies to (complete, acomplete, stream, astream).

Categories: untyped exceptions; silently wrong results; unclear typed errors (redirects, a fake
Content-Encoding, a mixed-case Content-Type); hangs; secrets (one smoke test: record mode's
own suite is elsewhere); quadratic parsing (a 5 MB event, no timing assertion); attachments
that are not regular files (no request is sent).

The server is `tests.hostile.RawServer`: each request gets the raw reply a test scripts (status
line, headers, body pieces, drips), whatever its path, so the four wires share it.
"""

from __future__ import annotations

import gzip
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from llmclient import (
    APIError,
    Client,
    LLMError,
    MalformedResponseError,
    RequestTimeoutError,
)
from llmclient.cassettes import use_cassette
from tests.hostile import (
    FINISH_MAP,
    MODES,
    ONE_ATTEMPT,
    WIRES,
    Call,
    Event,
    Framing,
    Mode,
    RawServer,
    Reply,
    Script,
    Seen,
    Wire,
    body_of,
    call,
    check_response,
    check_stream_events,
    client,
    describe,
    encode_sse,
    events_of,
    is_stream_request,
    json_reply,
    sse_reply,
    typed_not_catch_all,
    watchdog,
)

STREAMED: tuple[Mode, ...] = ("stream", "astream")
WHOLE: tuple[Mode, ...] = ("complete", "acomplete")
STOP = {wire: next(raw for raw, meaning in FINISH_MAP[wire].items() if meaning == "stop") for wire in WIRES}
USAGE = {"input": 11, "output": 7, "cache_read": 0, "cache_write": 0, "reasoning": 0}


def every(wires: tuple[Wire, ...] = WIRES, modes: tuple[Mode, ...] = MODES) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("wire", "mode"), [(w, m) for w in wires for m in modes])


def script(wire: Wire, *pieces: str, **fields: Any) -> Script:
    return Script(text=pieces or ("Paris", " is", " the", " capital."), finish=fields.pop("finish", STOP[wire]),
                  usage=fields.pop("usage", USAGE), model=fields.pop("model", "m-1"), **fields)


def answering(wire: Wire, s: Script) -> Callable[[Seen], Reply]:
    """The valid answer `s`: as an event stream to a stream request, as JSON otherwise."""
    def reply(seen: Seen) -> Reply:
        if is_stream_request(seen):
            return sse_reply(encode_sse(events_of(wire, s)))
        return json_reply(body_of(wire, s))
    return reply


def as_either(body: bytes, status: int = 200, content_type: str = "application/json") -> Callable[[Seen], Reply]:
    """`body` as the JSON answer, or as the one event of a stream (`data: <body>`)."""
    def reply(seen: Seen) -> Reply:
        if is_stream_request(seen) and status < 300:
            return sse_reply(b"data: " + body + b"\n\n")
        return Reply(status=status, headers=[("content-type", content_type), ("content-length", str(len(body)))],
                     pieces=[body])
    return reply


def run(wire: Wire, mode: Mode, reply: Callable[[Seen], Reply] | Reply, *, timeout: float = 5.0,
        watch: float = 20.0, **options: Any) -> Any:
    """One call against a fresh RawServer; the outcome, with the server's requests."""
    with RawServer(reply) as server, watchdog(watch):
        outcome = call(client(wire, server.url, timeout=timeout), mode, **options)
    outcome.requests = server.requests
    return outcome


def assert_typed(outcome: Any, what: str) -> LLMError:
    error = outcome.error
    assert error is not None, f"{what}: expected an error, got {outcome.response!r}"
    assert isinstance(error, LLMError), f"{what}: untyped exception escaped: {describe(error)}"
    return error


# === 1. Untyped exceptions: only LLMError subclasses leave a call ================================

DEEP_ARRAY = b"[" * 100_000 + b"]" * 100_000
DEEP_OBJECT = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
COMMON_HOSTILE: dict[str, bytes] = {
    "deep-array": DEEP_ARRAY,
    "deep-object": DEEP_OBJECT,
    "not-utf8": b"\xff\xfe\x00{\x80",
    "nan": b"NaN",
    "two-documents": b'{"a": 1}{"b": 2}',
    "huge-number": b"1" * 5000,
}
WIRE_HOSTILE: dict[Wire, dict[str, Any]] = {
    "openai": {
        "choice-not-object": {"choices": [5]},
        "choices-object": {"choices": {"0": {}}},
        "tool-call-shapes": {"choices": [{"index": 0, "message": {"tool_calls": [{"function": {"name": ["x"], "arguments": 5}},
                                                                                 5, {"function": None}]},
                                          "finish_reason": 5}]},
        "content-parts": {"choices": [{"index": 0, "message": {"content": [5, {"type": "text"}, {"type": "thinking",
                                                                                                    "thinking": 5}]}}]},
        "usage-shapes": {"choices": [{"index": 0, "message": {"content": "hi"}, "finish_reason": "stop"}],
                         "usage": {"prompt_tokens_details": 5, "completion_tokens_details": [1]}},
        "reasoning-details": {"choices": [{"index": 0, "message": {"content": "hi", "reasoning_details": [5, {"text": 5}]},
                                           "finish_reason": "stop"}]},
    },
    "anthropic": {
        "block-not-object": {"type": "message", "content": [5], "stop_reason": "end_turn"},
        "tool-use-shapes": {"type": "message", "content": [{"type": "tool_use", "name": 5, "id": None, "input": "x"}],
                            "stop_reason": "tool_use"},
        "content-string": {"type": "message", "content": "text", "stop_reason": "end_turn"},
        "usage-iterations": {"type": "message", "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
                             "usage": {"iterations": [5, {"input_tokens": "x"}]}},
        "thinking-shapes": {"type": "message", "content": [{"type": "thinking", "thinking": 5}, {"type": "text", "text": 5}],
                            "stop_reason": "end_turn"},
    },
    "gemini": {
        "candidate-not-object": {"candidates": [5]},
        "parts-shapes": {"candidates": [{"content": {"parts": [5, {"functionCall": 5}, {"text": 5}]}, "finishReason": "STOP"}]},
        "candidates-object": {"candidates": {"a": 1}},
        "prompt-feedback-shapes": {"promptFeedback": 5, "usageMetadata": 5},
        "function-call-shapes": {"candidates": [{"content": {"parts": [{"functionCall": {"name": None, "args": [1]}}]},
                                                 "finishReason": "STOP", "index": "0"}]},
    },
    "cohere": {
        "content-shapes": {"message": {"content": [5, {"type": "text", "text": 5}], "tool_calls": [{"function": 5}, 5]},
                           "finish_reason": "COMPLETE"},
        "content-string": {"message": {"content": "x"}, "finish_reason": "COMPLETE"},
        "usage-shapes": {"message": {"content": [{"type": "text", "text": "hi"}]}, "finish_reason": "COMPLETE",
                         "usage": {"billed_units": 5}},
        "tool-plan-shape": {"message": {"content": [], "tool_plan": 5, "tool_calls": [{"id": 5, "function": {"name": 5}}]},
                            "finish_reason": "TOOL_CALL"},
    },
}
HOSTILE_ERRORS: dict[str, tuple[int, Any]] = {
    "429-details-not-list": (429, {"error": {"details": 5, "message": "slow down"}}),
    "429-retry-delay-shapes": (429, {"error": {"details": [5, {"retryDelay": 5}, {"retryDelay": "1e999s"}]}}),
    "400-list": (400, [5]),
    "503-metadata-raw": (503, {"error": {"metadata": {"raw": 5, "retry_after": "x"}, "message": None}}),
    "401-message-object": (401, {"error": {"message": {"text": "no"}, "code": [1], "type": 5}}),
    "500-deep": (500, None),
}


def _untyped_cases() -> list[tuple[Wire, str, bytes]]:
    cases = [(wire, name, body) for wire in WIRES for name, body in COMMON_HOSTILE.items()]
    cases += [(wire, name, json.dumps(body).encode()) for wire in WIRES for name, body in WIRE_HOSTILE[wire].items()]
    return cases


class TestUntypedExceptions:
    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(("wire", "name", "body"), _untyped_cases(), ids=[f"{w}-{n}" for w, n, _ in _untyped_cases()])
    def test_a_hostile_body_is_a_typed_error_or_a_consistent_response(self, wire: Wire, name: str, body: bytes,
                                                                      mode: Mode) -> None:
        outcome = run(wire, mode, as_either(body))
        what = f"{wire} {mode} {name}"
        if outcome.error is not None:
            assert isinstance(outcome.error, LLMError), f"{what}: untyped exception escaped: {describe(outcome.error)}"
        else:
            check_response(wire, outcome.response, [_parsed(body)], what)
        assert outcome.elapsed < 5.0

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize("wire", WIRES)
    @pytest.mark.parametrize("case", HOSTILE_ERRORS)
    def test_a_hostile_error_body_is_its_typed_status_error(self, wire: Wire, mode: Mode, case: str) -> None:
        status, payload = HOSTILE_ERRORS[case]
        body = DEEP_ARRAY if payload is None else json.dumps(payload).encode()
        outcome = run(wire, mode, as_either(body, status))
        error = assert_typed(outcome, f"{wire} {mode} {case}")
        assert isinstance(error, APIError) and error.status_code == status, describe(error)
        assert typed_not_catch_all(error), describe(error)


def _parsed(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, RecursionError):
        return None


# === 2. Silently wrong results: never an answer the body did not give ===========================

SHAPELESS: dict[str, bytes] = {"empty": b"", "whitespace": b" \r\n", "object": b"{}", "id-only": b'{"id": "x"}',
                               "null": b"null", "list": b"[]"}


def _neither(wire: Wire) -> dict[str, Any]:
    """A body that finishes normally but carries no text and no tool call at all."""
    bodies: dict[Wire, dict[str, Any]] = {
        "openai": {"id": "c", "choices": [{"index": 0, "message": {"role": "assistant"}, "finish_reason": "stop"}]},
        "anthropic": {"id": "m", "type": "message", "role": "assistant", "content": [], "stop_reason": "end_turn"},
        "gemini": {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP", "index": 0}]},
        "cohere": {"id": "c", "message": {"role": "assistant", "content": []}, "finish_reason": "COMPLETE"}}
    return bodies[wire]


COUNT_PATH: dict[Wire, tuple[str, ...]] = {"openai": ("usage", "prompt_tokens"), "anthropic": ("usage", "output_tokens"),
                                           "gemini": ("usageMetadata", "candidatesTokenCount"),
                                           "cohere": ("usage", "billed_units", "output_tokens")}
BAD_COUNTS: dict[str, Any] = {"string": "12", "negative": -3, "fraction": 1.5, "bool": True, "list": [12], "object": {"n": 12}}


def _with(body: dict[str, Any], path: tuple[str, ...], value: Any) -> dict[str, Any]:
    body = json.loads(json.dumps(body))
    node = body
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return body


def _refusals() -> list[tuple[Wire, str, dict[str, Any]]]:
    return [
        ("openai", "refusal", {"id": "c", "object": "chat.completion", "model": "m", "choices": [{"index": 0, "message": {
            "role": "assistant", "content": None, "refusal": "I can't help with that."}, "finish_reason": "stop"}]}),
        ("anthropic", "stop-reason-refusal", {"id": "m", "type": "message", "role": "assistant", "model": "m",
                                              "content": [], "stop_reason": "refusal"}),
        ("gemini", "prompt-blocked", {"promptFeedback": {"blockReason": "SAFETY", "safetyRatings": []},
                                      "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}, "modelVersion": "m"}),
        ("gemini", "candidate-safety", {"candidates": [{"finishReason": "SAFETY", "index": 0,
                                                        "safetyRatings": [{"category": "HARM_CATEGORY_HARASSMENT",
                                                                           "probability": "HIGH", "blocked": True}]}],
                                        "usageMetadata": {"promptTokenCount": 9, "totalTokenCount": 9}}),
    ]


def _after_end(wire: Wire) -> bytes:
    """What a stream sends after its end marker (none of it may be used)."""
    return {"openai": b'data: {"choices":[{"index":0,"delta":{"content":" LATE"},"finish_reason":null}]}\n\n'
                      b'data: {"error": {"message": "late error", "type": "server_error"}}\n\ndata: \xff\xfe\n\n',
            "anthropic": b'event: content_block_delta\ndata: {"type":"content_block_delta","index":0,'
                         b'"delta":{"type":"text_delta","text":" LATE"}}\n\nevent: error\ndata: {"type":"error",'
                         b'"error":{"type":"overloaded_error","message":"late"}}\n\ngarbage\xff\n\n',
            "cohere": b'event: content-delta\ndata: {"type":"content-delta","index":0,"delta":{"message":{"content":'
                      b'{"text":" LATE"}}}}\n\nevent: error\ndata: {"message": "late"}\n\n\xff\xfe\n\n',
            "gemini": b""}[wire]


class TestSilentlyWrongResults:
    @every(modes=WHOLE)
    @pytest.mark.parametrize("shape", SHAPELESS)
    def test_an_empty_or_shapeless_body_is_malformed(self, wire: Wire, mode: Mode, shape: str) -> None:
        outcome = run(wire, mode, as_either(SHAPELESS[shape]))
        error = assert_typed(outcome, f"{wire} {mode} {shape}")
        assert type(error) is MalformedResponseError, describe(error)

    @every()
    def test_stop_with_neither_text_nor_tool_calls_is_malformed(self, wire: Wire, mode: Mode) -> None:
        body = json.dumps(_neither(wire)).encode()
        if mode in STREAMED:  # the same answer as a stream: its events carry no text and no tool call
            streams: dict[Wire, list[Event]] = {
                "openai": [(None, {"choices": [{"index": 0, "delta": {"role": "assistant"}, "finish_reason": None}]}),
                           (None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), (None, "[DONE]")],
                "anthropic": [("message_start", {"type": "message_start", "message": {"model": "m", "content": []}}),
                              ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "end_turn"}}),
                              ("message_stop", {"type": "message_stop"})],
                "gemini": [(None, {"candidates": [{"content": {"role": "model", "parts": []}, "finishReason": "STOP"}]})],
                "cohere": [("message-start", {"type": "message-start", "delta": {"message": {"role": "assistant"}}}),
                           ("message-end", {"type": "message-end", "delta": {"finish_reason": "COMPLETE"}})]}
            reply: Any = sse_reply(encode_sse(streams[wire]))
        else:
            reply = as_either(body)
        outcome = run(wire, mode, reply)
        error = assert_typed(outcome, f"{wire} {mode}")
        assert type(error) is MalformedResponseError, describe(error)

    @every()
    @pytest.mark.parametrize("bad", BAD_COUNTS)
    def test_a_count_that_is_not_a_non_negative_integer_is_malformed(self, wire: Wire, mode: Mode, bad: str) -> None:
        s = script(wire)
        if mode in STREAMED:
            events = events_of(wire, s)
            index, path = {"openai": (-2, ("usage", "prompt_tokens")), "anthropic": (-2, ("usage", "output_tokens")),
                           "gemini": (-1, ("usageMetadata", "candidatesTokenCount")),
                           "cohere": (-1, ("delta", "usage", "billed_units", "output_tokens"))}[wire]
            name, payload = events[index]
            events[index] = (name, _with(payload, path, BAD_COUNTS[bad]))
            reply: Any = sse_reply(encode_sse(events))
        else:
            reply = json_reply(_with(body_of(wire, s), COUNT_PATH[wire], BAD_COUNTS[bad]))
        outcome = run(wire, mode, reply)
        error = assert_typed(outcome, f"{wire} {mode} count {BAD_COUNTS[bad]!r}")
        assert type(error) is MalformedResponseError, describe(error)

    @pytest.mark.parametrize("mode", MODES)
    @pytest.mark.parametrize(("wire", "name", "body"), _refusals(), ids=[f"{w}-{n}" for w, n, _ in _refusals()])
    def test_a_refusal_or_a_blocked_prompt_is_content_filter(self, wire: Wire, name: str, body: dict[str, Any],
                                                             mode: Mode) -> None:
        data = json.dumps(body).encode()
        if mode in STREAMED and wire == "gemini":
            reply: Any = sse_reply(b"data: " + data + b"\r\n\r\n")
        elif mode in STREAMED and wire == "openai":
            chunks = [(None, {"choices": [{"index": 0, "delta": {"role": "assistant", "content": None,
                                                                 "refusal": "I can't help with that."},
                                           "finish_reason": None}]}),
                      (None, {"choices": [{"index": 0, "delta": {}, "finish_reason": "stop"}]}), (None, "[DONE]")]
            reply = sse_reply(encode_sse(chunks))
        elif mode in STREAMED:
            events = [("message_start", {"type": "message_start", "message": {"model": "m", "content": [], "usage": {
                "input_tokens": 5, "output_tokens": 1}}}),
                      ("message_delta", {"type": "message_delta", "delta": {"stop_reason": "refusal"},
                                         "usage": {"output_tokens": 1}}),
                      ("message_stop", {"type": "message_stop"})]
            reply = sse_reply(encode_sse(events))
        else:
            reply = json_reply(body)
        outcome = run(wire, mode, reply)
        assert outcome.error is None, f"{wire} {mode} {name}: {describe(outcome.error)}"
        assert outcome.response.finish_reason == "content_filter", outcome.response

    @every(wires=("openai", "anthropic", "cohere"), modes=STREAMED)
    def test_nothing_after_the_end_marker_is_used(self, wire: Wire, mode: Mode) -> None:
        s = script(wire)
        data = encode_sse(events_of(wire, s)) + _after_end(wire)
        outcome = run(wire, mode, sse_reply(data, piece=7))
        assert outcome.error is None, f"{wire} {mode}: {describe(outcome.error)}"
        assert outcome.response.text == "Paris is the capital."
        assert [e.text for e in outcome.events if e.kind == "text"] == ["Paris", " is", " the", " capital."]
        assert outcome.response.finish_reason == "stop"

    @every(modes=STREAMED)
    @pytest.mark.parametrize("newline", ["\n", "\r\n", "\r"])
    def test_the_events_are_the_response(self, wire: Wire, mode: Mode, newline: str) -> None:
        tool = Call("call_1", "get_weather", {"city": "Paris"}, ('{"ci', 'ty": "Par', 'is"}'))
        s = Script(reasoning=("Think", "ing."), text=("Par", "is", " \u2028é😀"), calls=(tool,),
                   finish={"openai": "tool_calls", "anthropic": "tool_use", "gemini": "STOP", "cohere": "TOOL_CALL"}[wire],
                   usage=USAGE)
        outcome = run(wire, mode, sse_reply(encode_sse(events_of(wire, s), Framing(newline=newline)), piece=3))
        assert outcome.error is None, f"{wire} {mode}: {describe(outcome.error)}"
        r = outcome.response
        assert (r.text, r.reasoning, r.finish_reason) == ("Paris \u2028é😀", "Thinking.", "tool_calls")
        assert [(c.name, c.arguments) for c in r.tool_calls] == [("get_weather", {"city": "Paris"})]
        check_stream_events(r, outcome.events, f"{wire} {mode}")


# === 3. Unclear typed errors: the error says what happened ======================================


class TestUnclearTypedErrors:
    @every()
    @pytest.mark.parametrize("code", [301, 302, 307, 308])
    def test_a_redirect_is_a_clear_error_and_nothing_follows_it(self, wire: Wire, mode: Mode, code: int) -> None:
        with RawServer(answering(wire, script(wire))) as elsewhere:
            target = f"{elsewhere.url}/moved/here"
            outcome = run(wire, mode, Reply(status=code, reason="Moved", headers=[
                ("location", target), ("content-type", "text/html"), ("content-length", "0")]))
            assert elsewhere.count == 0, "the redirect was followed: the key went to another host"
        error = assert_typed(outcome, f"{wire} {mode} {code}")
        assert isinstance(error, APIError) and error.status_code == code, describe(error)
        assert "redirect" in error.message.lower() and target in error.message, \
            f"the error does not say it was a redirect, nor where to: {error.message!r}"

    @every()
    def test_a_fake_gzip_content_encoding_is_malformed(self, wire: Wire, mode: Mode) -> None:
        def reply(seen: Seen) -> Reply:
            s = script(wire)
            data = encode_sse(events_of(wire, s)) if is_stream_request(seen) else json.dumps(body_of(wire, s)).encode()
            kind = "text/event-stream" if is_stream_request(seen) else "application/json"
            return Reply(headers=[("content-type", kind), ("content-encoding", "gzip"),
                                  ("content-length", str(len(data)))], pieces=[data])

        outcome = run(wire, mode, reply)
        error = assert_typed(outcome, f"{wire} {mode}")
        assert type(error) is MalformedResponseError, \
            f"a body that is not the gzip it claims is a malformed response, got {describe(error)}"
        assert "gzip" in error.message.lower() or "encoding" in error.message.lower(), error.message

    @every()
    def test_a_real_gzip_body_is_read(self, wire: Wire, mode: Mode) -> None:
        def reply(seen: Seen) -> Reply:
            s = script(wire)
            data = encode_sse(events_of(wire, s)) if is_stream_request(seen) else json.dumps(body_of(wire, s)).encode()
            packed = gzip.compress(data)
            kind = "text/event-stream" if is_stream_request(seen) else "application/json"
            return Reply(headers=[("content-type", kind), ("content-encoding", "gzip"),
                                  ("content-length", str(len(packed)))], pieces=[packed])

        outcome = run(wire, mode, reply)
        assert outcome.error is None, describe(outcome.error)
        assert outcome.response.text == "Paris is the capital."

    @every(modes=STREAMED)
    @pytest.mark.parametrize("content_type", ["Application/JSON", "APPLICATION/JSON; Charset=UTF-8",
                                              "application/json;charset=utf-8"])
    def test_a_json_answer_to_a_stream_is_read_whatever_its_content_type_case(self, wire: Wire, mode: Mode,
                                                                              content_type: str) -> None:
        data = json.dumps(body_of(wire, script(wire))).encode()
        outcome = run(wire, mode, Reply(headers=[("content-type", content_type), ("content-length", str(len(data)))],
                                        pieces=[data]))
        assert outcome.error is None, f"{content_type}: {describe(outcome.error)}"
        assert outcome.response.text == "Paris is the capital."
        assert "".join(e.text for e in outcome.events if e.kind == "text") == "Paris is the capital."

    @every(modes=STREAMED)
    @pytest.mark.parametrize("content_type", ["Text/Event-Stream", "TEXT/EVENT-STREAM; CHARSET=UTF-8"])
    def test_an_event_stream_is_read_whatever_its_content_type_case(self, wire: Wire, mode: Mode,
                                                                    content_type: str) -> None:
        outcome = run(wire, mode, sse_reply(encode_sse(events_of(wire, script(wire))), content_type=content_type))
        assert outcome.error is None, f"{content_type}: {describe(outcome.error)}"
        assert outcome.response.text == "Paris is the capital."


# === 4. Hangs: no call outlives its timeout ======================================================

DRIP_GAP = 0.4
TIMEOUT = 1.5


class TestHangs:
    @every(modes=WHOLE)
    def test_a_body_dripped_a_byte_at_a_time_ends_at_the_timeout(self, wire: Wire, mode: Mode) -> None:
        data = json.dumps(body_of(wire, script(wire))).encode()
        reply = Reply(headers=[("content-type", "application/json"), ("content-length", str(len(data)))],
                      pieces=[bytes([b]) for b in data], gap=DRIP_GAP)
        outcome = run(wire, mode, reply, timeout=TIMEOUT, watch=TIMEOUT + 5)
        error = assert_typed(outcome, f"{wire} {mode}")
        assert type(error) is RequestTimeoutError, describe(error)
        assert outcome.elapsed < TIMEOUT + 1.0, f"took {outcome.elapsed:.2f} s with a {TIMEOUT} s timeout"

    @every()
    def test_a_head_dripped_a_byte_at_a_time_ends_at_the_timeout(self, wire: Wire, mode: Mode) -> None:
        reply = Reply(headers=[("content-type", "application/json"), ("content-length", "2")], pieces=[b"{}"],
                      gap=DRIP_GAP, drip_head=True)
        outcome = run(wire, mode, reply, timeout=TIMEOUT, watch=TIMEOUT + 5)
        error = assert_typed(outcome, f"{wire} {mode}")
        assert type(error) is RequestTimeoutError, describe(error)
        assert outcome.elapsed < TIMEOUT + 1.0, f"took {outcome.elapsed:.2f} s with a {TIMEOUT} s timeout"

    @every(modes=STREAMED)
    def test_a_stream_event_dripped_a_byte_at_a_time_ends_at_the_timeout(self, wire: Wire, mode: Mode) -> None:
        """An event that never completes (a byte every 0.4 s, never its blank line) is no progress."""
        head = encode_sse(events_of(wire, script(wire))[:1])
        reply = Reply(headers=[("content-type", "text/event-stream")], pieces=[head, b"data: {"],
                      gap=DRIP_GAP, forever=b" ")
        outcome = run(wire, mode, reply, timeout=TIMEOUT, watch=TIMEOUT + 5)
        error = assert_typed(outcome, f"{wire} {mode}")
        assert type(error) is RequestTimeoutError, describe(error)
        assert outcome.elapsed < TIMEOUT + 1.0, f"took {outcome.elapsed:.2f} s with a {TIMEOUT} s timeout"

    @pytest.mark.parametrize("wire", WIRES)
    def test_every_wire_has_a_finite_default_timeout(self, wire: Wire) -> None:
        c = Client({"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5",
                    "gemini": "gemini/gemini-2.5-flash", "cohere": "cohere/command-a-03-2025"}[wire], api_key="k-12345678")
        timeout = c._route.pipeline().timeout
        assert timeout is not None and 0 < timeout <= 600, f"{wire}: default timeout {timeout!r}"

    def test_a_gemini_call_without_a_timeout_still_ends(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The default applies to Gemini's calls too (patched down to keep the test short)."""
        import llmclient.pipeline

        monkeypatch.setattr(llmclient.pipeline, "DEFAULT_TIMEOUT", TIMEOUT)
        reply = Reply(headers=[("content-type", "application/json")], pieces=[b"{"], gap=DRIP_GAP, forever=b" ")
        with RawServer(reply) as server, watchdog(20):
            outcome = call(client("gemini", server.url, timeout=None), "complete")
        error = assert_typed(outcome, "gemini complete")
        assert type(error) is RequestTimeoutError, describe(error)
        assert outcome.elapsed < TIMEOUT + 1.0


# === 5. Secrets (smoke: the record-mode suite is tests/test_record_secrets.py) ==================


class TestSecrets:
    def test_a_recorded_cassette_holds_no_key_even_when_the_server_echoes_it(self, tmp_path: Path) -> None:
        key = "sk-proj-hostileSmokeKey0123456789abcdef"

        def reply(seen: Seen) -> Reply:
            body = {"error": {"message": f"Incorrect API key provided: {key}. Also {seen.headers.get('authorization')}",
                              "type": "invalid_request_error", "code": "invalid_api_key"}}
            data = json.dumps(body).encode()
            return Reply(status=401, reason="Unauthorized", headers=[
                ("content-type", "application/json"), ("content-length", str(len(data))), ("x-echo-key", key)],
                pieces=[data])

        path = tmp_path / "echo.yaml"
        with RawServer(reply) as server:
            c = Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key=key, retry=ONE_ATTEMPT)
            with use_cassette(path, mode="record"), pytest.raises(LLMError) as caught:
                c.complete("Hi")
        assert path.is_file() and "Incorrect API key provided" in path.read_text()
        assert key not in path.read_text(), "the key was recorded"
        assert isinstance(caught.value, APIError) and caught.value.status_code == 401

    @pytest.mark.parametrize("mode", MODES)
    def test_an_error_does_not_repeat_the_key_a_server_echoed(self, mode: Mode) -> None:
        """Error messages end up in logs and tracebacks: the key llmclient sent is masked in them."""
        key = "sk-proj-hostileSmokeKey0123456789abcdef"
        data = json.dumps({"error": {"message": f"Incorrect API key provided: {key}.", "type": "invalid_request_error",
                                     "code": "invalid_api_key"}}).encode()
        reply = Reply(status=401, reason="Unauthorized", headers=[("content-type", "application/json"),
                                                                  ("content-length", str(len(data)))], pieces=[data])
        with RawServer(reply) as server, watchdog(20):
            c = Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key=key, retry=ONE_ATTEMPT)
            outcome = call(c, mode)
        error = assert_typed(outcome, mode)
        assert key not in str(error) and key not in repr(error) and key not in error.message, str(error)


# === 6. Quadratic parsing: a 5 MB event decodes, whatever its chunking =========================

BIG = ("The quick brown fox jumps over the lazy dog. é😀 " * 110_000)[:5_000_000]


class TestQuadraticParsing:
    @every(modes=STREAMED)
    def test_a_5_mb_single_event_decodes(self, wire: Wire, mode: Mode) -> None:
        s = Script(text=(BIG,), finish=STOP[wire], usage=USAGE)
        data = encode_sse(events_of(wire, s), Framing(ascii_json=False))  # raw UTF-8, cut inside characters
        outcome = run(wire, mode, sse_reply(data, piece=8192), timeout=120, watch=180)
        assert outcome.error is None, describe(outcome.error)
        assert outcome.response.text == BIG
        assert "".join(e.text for e in outcome.events if e.kind == "text") == BIG


# === 7. Attachments: only regular files are read and sent =======================================


def _symlink_to_passwd(tmp_path: Path) -> Path:
    return _link(tmp_path / "notes.txt", "/etc/passwd")


def _link(link: Path, target: str) -> Path:
    link.symlink_to(target)
    return link


def _fifo(tmp_path: Path) -> Path:
    fifo = tmp_path / "pipe.txt"
    os.mkfifo(fifo)
    return fifo


ATTACHMENTS: dict[str, Callable[[Path], Path]] = {
    "symlink-to-dev-zero": lambda tmp: _link(tmp / "zero.png", "/dev/zero"),
    "symlink-to-proc": lambda tmp: _link(tmp / "status.txt", "/proc/self/status"),
    "fifo": _fifo,
    "proc-self-status": lambda _tmp: Path("/proc/self/status"),
}


class TestAttachments:
    def test_a_symlink_is_read_as_the_regular_file_it_leads_to_and_says_so(self, tmp_path: Path) -> None:
        # The rule: a symlink is followed only to a regular file, and the part records the
        # resolved target (what errors and telemetry show), not the name it was given as.
        from llmclient.request import Request

        [part] = Request.build("What is this?", files=[_symlink_to_passwd(tmp_path)]).messages[0].files
        assert (part.name, part.resolved) == ("notes.txt", os.path.realpath("/etc/passwd"))
        assert part.label == f"notes.txt (read from {os.path.realpath('/etc/passwd')})"

    @every()
    @pytest.mark.parametrize("kind", ATTACHMENTS)
    def test_a_path_that_is_not_a_regular_file_is_refused_and_nothing_is_sent(self, wire: Wire, mode: Mode, kind: str,
                                                                              tmp_path: Path) -> None:
        path = ATTACHMENTS[kind](tmp_path)
        outcome = run(wire, mode, answering(wire, script(wire)), files=[path], watch=10)
        error = assert_typed(outcome, f"{wire} {mode} {kind}")
        assert typed_not_catch_all(error), describe(error)
        assert outcome.requests == [], f"a request was sent: {outcome.requests[0].body[:200]!r}"
        assert outcome.elapsed < 5.0
