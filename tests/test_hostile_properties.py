"""Hostile and broken input, generated: per wire (OpenAI chat completions, Anthropic Messages,
Gemini generateContent, Cohere v2 chat), 2,000 generated bodies and 2,000 generated streams go
through the public API (`Client.complete` / `Client.stream`, and a sample through `acomplete` /
`astream`), each answered in-process through `llmclient.transport.interceptor`.

The boundary every call must hold: it returns a consistent `Response` or raises an `LLMError`
subclass, within the call's timeout. Besides that:
- a valid answer, however it is framed (line endings, chunking, comments, BOM, no last blank
  line, data after the end marker) gives exactly the Response its script says;
- an empty, non-JSON or shapeless body is `MalformedResponseError`, never an empty answer;
- a token count that is present but not a non-negative integer is `MalformedResponseError`;
- refusals and blocked prompts are finish_reason "content_filter";
- a stream's deltas are its Response (text and reasoning concatenate to it, tool calls match).

Generated inputs: valid scripts serialised per wire; the same with 1-3 mutations (deleted keys,
nulls, wrong types, huge/negative/float/string/bool counts, deep nesting, unicode); random JSON;
random bytes; deep nesting; error statuses with hostile error bodies and headers; and for
streams events dropped/duplicated/swapped/garbled, garbage lines, CR/CRLF endings, random
chunkings. Runs are derandomized (same examples on every run, no example database).
"""

from __future__ import annotations

import dataclasses
import json
import random
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llmclient import APIError, LLMError, MalformedResponseError
from tests.hostile import (
    COUNT_KEYS,
    END_MARKER,
    FINISH_MAP,
    USAGE_CONTAINER,
    WIRES,
    Answer,
    Call,
    Event,
    Framing,
    Mode,
    Outcome,
    Script,
    Wire,
    answering,
    assert_typed,
    body_of,
    call,
    check_response,
    check_stream_events,
    chunked,
    client,
    encode_sse,
    events_of,
    expected_of,
    get_at,
    is_count_path,
    is_valid_count,
    json_paths,
    matches,
    mutate_at,
    utf8_safe,
    watchdog,
)

# A stream without its usage chunk warns (UsageMissingWarning); thousands of them say nothing here.
pytestmark = pytest.mark.filterwarnings("ignore:.*the stream ended without the usage")

EXAMPLES = 2000  # per wire, for bodies and for streams each
ASYNC_EXAMPLES = 150  # per wire, through acomplete / astream

SETTINGS = settings(deadline=None, derandomize=True, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.filter_too_much,
                                           HealthCheck.large_base_example])

CLIENTS = {wire: client(wire) for wire in WIRES}

# --- strategies ----------------------------------------------------------------------------------
# Per-example cost is mostly generation: the pools below are drawn from by index (one cheap draw)
# rather than generated afresh, and no strategy is built inside a composite.

ADVERSARIAL_TEXT = ["", " ", "\n", "\r\n", "\r", "data: x", "[DONE]", "event: error", "\u2028", "\u2029", "\ufeff",
                    "é", "😀", "\x00", "\ud800", "\\", '"', "}", "{\"a\":", "\u0085", "a\n\ndata: {}",
                    "\x1b[31m", "e\u0301", "ﷺ", "\U0010ffff", "מימין", "   ", "\t", "null", "0", "true", "Hello", " world"]


def _pool(seed: int, size: int, max_len: int) -> list[str]:
    """Deterministic strings over much of Unicode, to draw from cheaply. No surrogates: JSON joins an
    escaped high+low pair into one character, so only the lone high surrogate "\\ud800" is used, alone."""
    rng = random.Random(seed)
    planes = [(0x20, 0x7E), (0x80, 0x2FF), (0x370, 0x3FF), (0x590, 0x6FF), (0x2000, 0x206F), (0x4E00, 0x4E80),
              (0xE000, 0xE0FF), (0xFFF0, 0xFFFF), (0x1F600, 0x1F64F), (0x0, 0x1F)]
    out = []
    for _ in range(size):
        low, high = rng.choice(planes)
        out.append("".join(chr(rng.randint(low, high)) for _ in range(rng.randint(0, max_len))))
    return out


TEXT_POOL = ADVERSARIAL_TEXT + _pool(1, 200, 8)
INDEX = st.integers(0, 1 << 30)  # drawn once, reduced modulo a pool's length


def pick(draw: st.DrawFn, pool: Sequence[Any]) -> Any:
    return pool[draw(INDEX) % len(pool)]


pieces_text = st.one_of(st.sampled_from(TEXT_POOL), st.sampled_from(TEXT_POOL), st.sampled_from(TEXT_POOL),
                        st.text(max_size=6))
pieces = {3: st.lists(pieces_text, max_size=3).map(tuple), 4: st.lists(pieces_text, max_size=4).map(tuple)}
leaf = st.one_of(st.none(), st.booleans(), st.integers(-10**20, 10**20),
                 st.floats(allow_nan=False, allow_infinity=False), st.sampled_from(TEXT_POOL))
ARGUMENT_POOL: list[dict[str, Any]] = [{}, {"city": "Paris"}, {"city": "Paris", "unit": "c"}, {"n": 1, "xs": [1, 2.5, None]},
                                       {"": ""}, {"ünï": "😀", "q": "\u2028"}, {"nested": {"a": {"b": [True, False]}}},
                                       {"big": 10**30, "neg": -1, "f": 1e-300}, {"s": "\ud800"}, {"k": "}{\"]"}]
arguments = st.one_of(st.sampled_from(ARGUMENT_POOL), st.sampled_from(ARGUMENT_POOL),
                      st.dictionaries(st.sampled_from(TEXT_POOL), st.one_of(leaf, st.lists(leaf, max_size=2)), max_size=3))
NAME_POOL = ["get_weather", "lookup", "f", "x_1", "Ünïcode", "a-b", "tool.with.dots", "😀", "a" * 64] + \
            [t for t in TEXT_POOL if t.strip()][:60]
tool_names = st.sampled_from(NAME_POOL)
ID_POOL = ["call_" + "".join(random.Random(i).choices("abcdefghijklmnopqrstuvwxyz0123456789_", k=1 + i % 12))
           for i in range(100)] + ["toolu_01A", "call_ünï", "c" * 200]
counts = st.one_of(st.integers(0, 10**6), st.integers(0, 10**6), st.integers(10**15, 10**30))
json_values = st.recursive(leaf, lambda inner: st.one_of(st.lists(inner, max_size=4),
                                                          st.dictionaries(st.sampled_from(TEXT_POOL), inner, max_size=4)),
                           max_leaves=10)
WRONG_VALUES: list[Any] = [None, "", "x", "12", "-1", 0, -1, -10**30, 10**30, 1.5, -0.5, 2.0, 1e300, True, False, [], {},
                           [1], {"a": 1}, "\ud800", "😀" * 3, {"type": "text", "text": 1}, "1e3", 12.0000001]
MODEL_POOL = ["m-1", "gpt-4o-mini-2024-07-18", "claude-sonnet-4-5-20250929", "gemini-2.5-flash", "ñ", "x" * 300, "",
              "openai/gpt-4o", "../../etc/passwd", "a b"]
CUT_LISTS = st.lists(INDEX, max_size=3)


@st.composite
def calls(draw: st.DrawFn, wire: Wire) -> Call:
    args = draw(arguments)
    text = json.dumps(args)
    cuts = sorted(c % (len(text) + 1) for c in draw(CUT_LISTS))
    fragments = tuple(text[a:b] for a, b in zip([0, *cuts], [*cuts, len(text)]))
    ident = None if wire == "gemini" and draw(st.booleans()) else pick(draw, ID_POOL)
    return Call(ident, pick(draw, NAME_POOL), args, fragments)


@st.composite
def usages(draw: st.DrawFn) -> dict[str, int]:
    input_ = draw(counts)
    output = draw(counts)
    return {"input": input_, "output": output, "cache_read": draw(INDEX) % (input_ + 1),
            "cache_write": draw(INDEX) % 10**6, "reasoning": draw(INDEX) % (output + 1)}


USAGES = st.one_of(st.none(), usages(), usages())
CALL_LISTS = {wire: st.lists(calls(wire), max_size=2).map(tuple) for wire in WIRES}
FINISH_POOLS = {(wire, with_calls): sorted(f for f in FINISH_MAP[wire] if with_calls or FINISH_MAP[wire][f] != "tool_calls")
                for wire in WIRES for with_calls in (False, True)}
BLOCK_REASONS = ["SAFETY", "OTHER", "BLOCKLIST", "PROHIBITED_CONTENT"]


@st.composite
def scripts(draw: st.DrawFn, wire: Wire) -> Script:
    tool_calls = draw(CALL_LISTS[wire])
    script = Script(reasoning=draw(pieces[3]), text=draw(pieces[4]), calls=tool_calls,
                    finish=pick(draw, FINISH_POOLS[wire, bool(tool_calls)]), usage=draw(USAGES),
                    model=pick(draw, MODEL_POOL))
    special = draw(INDEX) % 20
    if special == 0 and wire == "openai":  # a refusal: no content, the refusal text, "stop"
        script = Script(refusal=pick(draw, TEXT_POOL) or "No.", finish="stop", usage=script.usage, model=script.model)
    if special == 0 and wire == "gemini":  # a blocked prompt: no candidates at all
        script = Script(blocked=pick(draw, BLOCK_REASONS), finish="", usage=script.usage, model=script.model)
    return script


DEEP = "\x00DEEP\x00"


def dumps(value: Any, depth: int = 0, ascii_json: bool = True) -> bytes:
    """JSON bytes; a DEEP marker string becomes `depth` nested arrays (json.dumps cannot nest that deep)."""
    text = json.dumps(value, ensure_ascii=ascii_json)
    if not ascii_json and not utf8_safe(text):
        text = json.dumps(value)
    if depth:
        marker = json.dumps(DEEP, ensure_ascii=ascii_json)
        text = text.replace(marker, "[" * depth + "1" + "]" * depth)
    return text.encode("utf-8", errors="surrogatepass")


MUTATION_OPS = ["delete", "null", "wrong", "wrong", "random", "deep", "text"]


@st.composite
def mutations(draw: st.DrawFn, value: Any) -> tuple[Any, list[tuple[tuple[Any, ...], str, Any]], int]:
    """`value` with 1-3 mutations; the list of (path, op, new value); the nesting depth of a DEEP one."""
    done: list[tuple[tuple[Any, ...], str, Any]] = []
    depth = 0
    for _ in range(1 + draw(INDEX) % 3):
        paths = json_paths(value)
        if not paths:
            break
        path = pick(draw, paths)
        op = pick(draw, MUTATION_OPS)
        if op == "delete":
            value = mutate_at(value, path, "delete")
            done.append((path, "delete", None))
            continue
        new: Any
        if op == "null":
            new = None
        elif op == "wrong":
            new = pick(draw, WRONG_VALUES)
        elif op == "random":
            new = draw(json_values)
        elif op == "deep":
            new, depth = DEEP, pick(draw, [50, 900, 5000, 100_000])
        else:
            new = draw(pieces_text)
        value = mutate_at(value, path, "set", new)
        done.append((path, "set", new))
    return value, done, depth


STATUSES = [201, 204, 206, 300, 301, 302, 304, 307, 308, 400, 401, 403, 404, 408, 409, 413, 418, 422, 429, 451, 499,
            500, 501, 502, 503, 504, 520, 529, 599]
HEADER_VALUES = ["1", "0", "-5", "nan", "inf", "-inf", "1e309", "1e9", "", "garbage", "Wed, 21 Oct 2015 07:28:00 GMT",
                 "Mon, 01 Jan 0001 00:00:00 GMT", "Fri, 31 Dec 9999 23:59:59 GMT", "1m2.5s", "250ms", "\u00e9"]
HEADER_NAMES = ["retry-after", "retry-after-ms", "date", "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"]
CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain", "text/html",
                 "text/event-stream", ""]
JSON_TYPES = ["application/json", "application/json; charset=utf-8", "Application/JSON", "text/plain", ""]
SSE_TYPES = ["text/event-stream", "text/event-stream; charset=utf-8"]


def headers(draw: st.DrawFn, content_type: str | None = None) -> dict[str, str]:
    out = {"content-type": content_type if content_type is not None else pick(draw, CONTENT_TYPES)}
    for _ in range(draw(INDEX) % 4):
        name = pick(draw, HEADER_NAMES)
        out[name] = "0" if name == "x-ratelimit-remaining-requests" and draw(INDEX) % 2 else pick(draw, HEADER_VALUES)
    return {k: v.encode("utf-8").decode("latin-1") for k, v in out.items() if v or k != "content-type"}


HOSTILE_ERROR_BODIES: list[Any] = [
    {"error": {"details": 5}}, {"error": {"details": [5, None, {"retryDelay": 5}, {"retryDelay": "xs"}]}},
    {"error": {"metadata": {"raw": 5, "retry_after": "x"}}}, {"error": {"message": {"nested": True}, "code": [1]}},
    {"error": {"code": True, "status": 5}}, {"error": None}, {"error": []}, {"error": "plain"},
    [{"error": {"message": "listed", "details": {"a": 1}}}], [], [5], "just a string", 5, None,
    {"error": {"message": "x" * 10000}}, {"message": None}, {"detail": [{"msg": "pydantic-style"}]},
    {"error": {"details": [{"reason": "API_KEY_INVALID"}]}}, {"error": {"details": "API_KEY_INVALID"}},
    {"error": {"code": 429.5, "type": ["a"]}}, {"error": {"metadata": None, "message": "\ud800"}},
    {"error": {"details": [{"retryDelay": "1e999s"}, {"retryDelay": "nans"}]}}, {"error": {"metadata": {"retry_after": 1e308}}},
]
TYPICAL_ERRORS: dict[Wire, Any] = {
    "openai": {"error": {"message": "m", "type": "invalid_request_error", "param": None, "code": "c"}},
    "anthropic": {"type": "error", "error": {"type": "rate_limit_error", "message": "m"}},
    "gemini": {"error": {"code": 429, "message": "m", "status": "RESOURCE_EXHAUSTED",
                         "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "3s"}]}},
    "cohere": {"id": "x", "message": "m"}}


def error_body(draw: st.DrawFn, wire: Wire) -> Any:
    choice = draw(INDEX) % 4
    if choice == 0:
        return TYPICAL_ERRORS[wire]
    if choice == 1:
        return pick(draw, HOSTILE_ERROR_BODIES)
    if choice == 2:
        return json.loads(json.dumps(draw(mutations(TYPICAL_ERRORS[wire]))[0]).replace(json.dumps(DEEP), '"deep"'))
    return draw(json_values)


# --- reporting -----------------------------------------------------------------------------------


@contextmanager
def reporting(case: dict[str, Any]) -> Iterator[None]:
    """An assertion's message, then the input that produced it (status, headers, the body's bytes
    and how they were cut), so each failure is its own reproducer."""
    try:
        yield
    except AssertionError as exc:  # the same exception, re-raised: Hypothesis tells failures apart by where they arose
        sizes = [len(p) for p in case["pieces"]]
        exc.args = ((f"{exc}\n    input: status {case['status']}, headers {case['headers']}, chunk sizes {sizes}, "
                    f"body {case['data'][:3000]!r}{' ...' if len(case['data']) > 3000 else ''}"),)
        raise


# --- bodies --------------------------------------------------------------------------------------

BODY_KINDS = ["valid", "valid", "mutated", "mutated", "mutated", "mutated", "random_json", "bytes", "deep", "empty",
              "status", "status"]
ODD_BYTES = [b"\xff\xfe{", b"{\"choices\": [", b"null", b"[]", b"{}", b"\"\"", b"<html>502</html>", b"\xef\xbb\xbf{}",
             b"NaN", b"Infinity", b"{\"a\": NaN}", b"1e999999", b"{\"a\":1}{\"b\":2}", b"\x00" * 8, b"{\"a\": \"\\ud800\"}"]
DEEP_SHAPES = [("[", "]"), ('{"a":', "}"), ('{"choices":[', "]}")]
EMPTY_BODIES = [b"", b" ", b"\n", b"\r\n\r\n", b"\t"]
RANDOM_BYTES = st.binary(max_size=64)
CUTS = st.lists(INDEX, max_size=5)


@st.composite
def bodies(draw: st.DrawFn, wire: Wire) -> dict[str, Any]:
    """One generated answer to a non-streamed call, and what the oracle needs to judge it."""
    kind = pick(draw, BODY_KINDS)
    case: dict[str, Any] = {"kind": kind, "status": 200, "payload": None, "script": None, "mutations": [],
                            "headers": {"content-type": "application/json"}}
    if kind in ("valid", "mutated"):
        script = draw(scripts(wire))
        body = body_of(wire, script)
        case["script"] = script
        depth = 0
        if kind == "mutated":
            body, case["mutations"], depth = draw(mutations(body))
        case["payload"] = body
        data = dumps(body, depth, ascii_json=bool(draw(INDEX) % 2))
        case["headers"] = headers(draw, pick(draw, JSON_TYPES))
    elif kind == "random_json":
        case["payload"] = draw(json_values)
        data = dumps(case["payload"])
    elif kind == "bytes":
        data = draw(RANDOM_BYTES) if draw(INDEX) % 2 else pick(draw, ODD_BYTES)
    elif kind == "deep":
        depth = pick(draw, [900, 1000, 3000, 100_000])
        opener, closer = pick(draw, DEEP_SHAPES)
        data = (opener * depth + "1" + closer * depth).encode()
    elif kind == "empty":
        data = pick(draw, EMPTY_BODIES)
    else:
        case["status"] = pick(draw, STATUSES)
        case["payload"] = error_body(draw, wire)
        data = dumps(case["payload"]) if draw(INDEX) % 4 else draw(RANDOM_BYTES)
        case["headers"] = headers(draw)
    case["data"] = data
    case["pieces"] = chunked(data, [c % (len(data) + 1) for c in draw(CUTS)])
    return case


def _json_content_type(case: dict[str, Any]) -> bool:
    return str(case["headers"].get("content-type", "")).lower().startswith("application/json")


def judge_body(wire: Wire, case: dict[str, Any], mode: Mode) -> None:
    with reporting(case):
        _judge_body(wire, case, mode)


def _answered(wire: Wire, case: dict[str, Any], mode: Mode, what: str) -> Outcome | None:
    """The call's outcome for the case's answer: always typed; for an error status, an APIError of
    that status (then None: nothing more to judge)."""
    with answering(Answer(case["status"], case["headers"], case["pieces"])), watchdog(10):
        outcome = call(CLIENTS[wire], mode)
    assert_typed(outcome, what)
    if case["status"] >= 300:
        error = outcome.error
        assert isinstance(error, APIError) and error.status_code == case["status"], \
            f"{what}: expected an APIError with status_code {case['status']}, got {error!r} / {outcome.response!r}"
        return None
    return outcome


def _judge_body(wire: Wire, case: dict[str, Any], mode: Mode) -> None:
    what = f"{wire} {mode} ({case['kind']} body)"
    outcome = _answered(wire, case, mode, what)
    if outcome is None:
        return
    error, response = outcome.error, outcome.response
    # A stream() answered with a body that is not an event stream reads it as one JSON answer only
    # when it says it is JSON (case-insensitively); anything else is read as an event stream.
    as_json = mode != "stream" or _json_content_type(case)
    if case["kind"] in ("bytes", "deep", "empty"):
        assert isinstance(error, LLMError), f"{what}: a body that is not a JSON answer gave {response!r}"
        if case["kind"] in ("deep", "empty"):
            assert isinstance(error, MalformedResponseError), f"{what}: expected MalformedResponseError, got {error!r}"
    if case["kind"] == "mutated" and len(case["mutations"]) == 1 and as_json:
        strict_count(wire, case["mutations"][0], outcome, what, top=(USAGE_CONTAINER[wire],))
    script = case["script"]
    if response is None:
        if case["kind"] == "valid" and as_json:
            raise AssertionError(f"{what}: a valid answer raised {describe_error(error)}")
        return
    check_response(wire, response, [case["payload"]], what)
    if mode == "stream":
        check_stream_events(response, outcome.events, what)
    if case["kind"] == "valid" and as_json:
        if script.refusal is not None or script.blocked is not None:
            assert response.finish_reason == "content_filter", \
                f"{what}: a {'refusal' if script.refusal is not None else 'blocked prompt'} gave finish_reason " \
                f"{response.finish_reason!r}"
        else:
            matches(wire, response, expected_of(wire, script), what)


def strict_count(wire: Wire, mutation: tuple[tuple[Any, ...], str, Any], outcome: Any, what: str,
                 top: tuple[Any, ...]) -> None:
    """A count present but not a non-negative integer (or a usage that is not an object) is malformed."""
    path, op, new = mutation
    if op != "set" or new is None:
        return
    bad_count = is_count_path(wire, path) and not is_valid_count(new) and new != DEEP
    bad_container = tuple(path) == tuple(top) and not isinstance(new, dict)
    if bad_count or bad_container:
        assert isinstance(outcome.error, MalformedResponseError), \
            f"{what}: {'/'.join(map(str, path))} = {new!r:.80} must be MalformedResponseError, got " \
            f"{describe_error(outcome.error)} / usage {outcome.response.usage if outcome.response else None!r}"


def describe_error(error: BaseException | None) -> str:
    return f"{type(error).__name__}: {str(error)[:300]}" if error is not None else "no error"


def _generated_test(wire: Wire, cases: Callable[[Wire], Any], judge: Callable[..., None],
                    how: str, what: str) -> Any:
    """One test per wire (so each wire gets its own EXAMPLES): `judge` each generated case through `how`."""
    @settings(SETTINGS, max_examples=EXAMPLES)
    @given(case=cases(wire))
    def test(case: dict[str, Any]) -> None:
        judge(wire, case, how)

    test.__doc__ = f"{EXAMPLES} generated {wire} {what} through {how}(): the boundary holds."
    return test


test_openai_bodies = _generated_test("openai", bodies, judge_body, "complete", "bodies")
test_anthropic_bodies = _generated_test("anthropic", bodies, judge_body, "complete", "bodies")
test_gemini_bodies = _generated_test("gemini", bodies, judge_body, "complete", "bodies")
test_cohere_bodies = _generated_test("cohere", bodies, judge_body, "complete", "bodies")


@pytest.mark.parametrize("wire", WIRES)
@settings(SETTINGS, max_examples=ASYNC_EXAMPLES)
@given(data=st.data())
def test_bodies_through_acomplete(wire: Wire, data: st.DataObject) -> None:
    judge_body(wire, data.draw(bodies(wire)), "acomplete")


@pytest.mark.parametrize("wire", WIRES)
@settings(SETTINGS, max_examples=ASYNC_EXAMPLES)
@given(data=st.data())
def test_bodies_answering_a_stream_call(wire: Wire, data: st.DataObject) -> None:
    """A server that ignores stream=true: its whole body (JSON, or garbage) answers stream()."""
    judge_body(wire, data.draw(bodies(wire)), "stream")


# --- streams -------------------------------------------------------------------------------------

NEWLINES = ["\n", "\r\n", "\r"]


def framing(draw: st.DrawFn, n_events: int) -> Framing:
    bits = draw(INDEX)
    comments = frozenset(draw(INDEX) % (n_events + 1) for _ in range(bits % 3))
    return Framing(newline=NEWLINES[(bits >> 2) % 3], space=bool(bits >> 4 & 1), comments=comments,
                   bom=(bits >> 5) % 10 == 0, final_blank=(bits >> 9) % 5 != 0, ascii_json=bool(bits >> 12 & 1))


GARBAGE_EVENTS: list[Event] = [(None, "not json"), (None, ""), (None, "{"), (None, "[DONE]"), ("error", {"error": {"message": "boom"}}),
                               (None, {"type": "error", "error": {"type": "api_error", "message": "late"}}),
                               (None, [1, 2]), (None, "null"), (None, "1e999999"), ("ping", {"type": "ping"}),
                               (None, '{"a":' * 5000 + "1" + "}" * 5000), (None, "[" * 100_000 + "]" * 100_000),
                               ("message_stop", {"type": "message_stop"}), ("message-end", {"type": "message-end"})]
GARBLED_DATA = ["", "{", "nul", "\"x\"", "{}", "[]", "\ud800"]
TAILS = [b"garbage line without newline", b"data: {\"choices\": [", b"\xff\xfe", b"event: error\ndata: {\"error\": {}}\n\n",
         b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"LATE\"}}]}\n\n"]
GARBAGE_LINES = ["data: {}", "data: [DONE]", "event: x", ":", "data:", "data: {\"type\": \"message_stop\"}", "retry: x",
                 "id", "data: {\"type\":\"message-end\",\"delta\":{\"finish_reason\":\"COMPLETE\"}}", "\x00", "data: \ud800"]
EVENT_OPS = ["drop", "dup", "swap", "garbage", "garble"]


def _stream_kinds(wire: Wire) -> list[str]:
    kinds = ["valid", "valid", "mutated", "mutated", "mutated", "events", "garbage", "json_body", "status"]
    return kinds + ["trailing"] if END_MARKER[wire] is not None else kinds


@st.composite
def streams(draw: st.DrawFn, wire: Wire) -> dict[str, Any]:
    kind = pick(draw, _stream_kinds(wire))
    case: dict[str, Any] = {"kind": kind, "status": 200, "payloads": [], "script": None, "mutation": None,
                            "headers": {"content-type": pick(draw, SSE_TYPES)}}
    if kind in ("valid", "mutated", "events", "trailing"):
        script = draw(scripts(wire))
        if script.blocked is not None or script.refusal is not None:
            script = Script(finish=min(FINISH_MAP[wire]), text=("x",))
        events = events_of(wire, script)
        case["script"] = script
        if kind == "mutated":  # 1-3 JSON mutations of one event's payload
            index = draw(INDEX) % len(events)
            name, payload = events[index]
            if isinstance(payload, (dict, list)) and json_paths(payload):
                mutated, done, depth = draw(mutations(payload))
                if depth:
                    mutated = json.loads(json.dumps(mutated).replace(json.dumps(DEEP), json.dumps("deep")))
                events = [*events[:index], (name, mutated), *events[index + 1:]]
                if len(done) == 1:
                    case["mutation"] = (index, done[0])
        elif kind == "events":  # drop, duplicate, swap, garble, insert garbage events
            for _ in range(1 + draw(INDEX) % 3):
                if not events:
                    break
                op, i, j = pick(draw, EVENT_OPS), draw(INDEX) % len(events), draw(INDEX) % len(events)
                if op == "drop":
                    events = events[:i] + events[i + 1:]
                elif op == "dup":
                    events = events[:i + 1] + [events[i]] + events[i + 1:]
                elif op == "swap":
                    events = list(events)
                    events[i], events[j] = events[j], events[i]
                elif op == "garbage":
                    events = events[:i] + [pick(draw, GARBAGE_EVENTS)] + events[i:]
                else:
                    events = events[:i] + [(events[i][0], pick(draw, GARBLED_DATA))] + events[i + 1:]
        if kind == "trailing":  # a valid stream, then more after its end marker: none of it is used
            extra = [pick(draw, GARBAGE_EVENTS + [events[1], events[-2], events[-1]]) for _ in range(1 + draw(INDEX) % 3)]
            data = encode_sse(events, dataclasses.replace(framing(draw, len(events)), final_blank=True)) + encode_sse(extra)
            if draw(INDEX) % 2:
                data += pick(draw, TAILS)
            case["payloads"] = [payload for _, payload in events]  # what counts: up to the end marker
        else:
            data = encode_sse(events, framing(draw, len(events)))
            case["payloads"] = [payload for _, payload in events]
    elif kind == "garbage":
        if draw(INDEX) % 2:
            data = draw(RANDOM_BYTES)
        else:
            lines = [pick(draw, GARBAGE_LINES + TEXT_POOL[:40]) for _ in range(draw(INDEX) % 8)]
            data = "\n".join(lines).encode("utf-8", errors="surrogatepass")
    elif kind == "json_body":  # a server that ignores stream=true answers with one JSON body
        script = draw(scripts(wire))
        body = body_of(wire, script)
        if draw(INDEX) % 2:
            body = json.loads(json.dumps(draw(mutations(body))[0]).replace(json.dumps(DEEP), json.dumps("deep")))
        else:
            case["script"] = script
        case["payloads"] = [body]
        case["headers"] = {"content-type": pick(draw, ["application/json", "application/json; charset=utf-8"])}
        data = dumps(body)
    else:
        case["status"] = pick(draw, STATUSES)
        data = dumps(error_body(draw, wire))
        case["headers"] = headers(draw)
    case["data"] = data
    case["pieces"] = chunked(data, [c % (len(data) + 1) for c in draw(CUTS)])
    return case


def judge_stream(wire: Wire, case: dict[str, Any], mode: Mode) -> None:
    with reporting(case):
        _judge_stream(wire, case, mode)


def _judge_stream(wire: Wire, case: dict[str, Any], mode: Mode) -> None:
    what = f"{wire} {mode} ({case['kind']} stream)"
    outcome = _answered(wire, case, mode, what)
    if outcome is None:
        return
    error, response = outcome.error, outcome.response
    if case["mutation"] is not None:
        index, (path, op, new) = case["mutation"]
        later = case["payloads"][index + 1:]
        before_end = all(not _is_end(wire, p) for p in case["payloads"][:index])
        key = path[-1] if path else None
        superseded = any(isinstance(p, dict) and _usage_of(wire, p) is not None and
                         (wire != "anthropic" or key in _usage_of(wire, p)) for p in later)
        if before_end and not superseded:
            strict_count(wire, (path, op, new), outcome, what, top=_usage_path(wire, case["payloads"][index]))
    script = case["script"]
    if response is None:
        if script is not None and case["kind"] in ("valid", "trailing", "json_body"):
            raise AssertionError(f"{what}: a valid stream raised {describe_error(error)}")
        return
    check_response(wire, response, case["payloads"], what)
    check_stream_events(response, outcome.events, what)
    if script is not None and case["kind"] in ("valid", "trailing", "json_body"):
        matches(wire, response, expected_of(wire, script), what)


def _is_end(wire: Wire, payload: Any) -> bool:
    if wire == "openai":
        return bool(payload == "[DONE]")
    if wire == "anthropic":
        return isinstance(payload, dict) and payload.get("type") == "message_stop"
    return wire == "cohere" and isinstance(payload, dict) and payload.get("type") == "message-end"


def _usage_path(wire: Wire, payload: Any) -> tuple[Any, ...]:
    """Where the usage object sits in one stream payload of this wire."""
    if wire == "anthropic" and isinstance(payload, dict) and payload.get("type") == "message_start":
        return ("message", "usage")
    if wire == "cohere":
        return ("delta", "usage")
    return (USAGE_CONTAINER[wire],)


def _usage_of(wire: Wire, payload: dict[str, Any]) -> Any:
    try:
        usage = get_at(payload, _usage_path(wire, payload))
    except (KeyError, IndexError, TypeError):
        return None
    return usage if isinstance(usage, dict) else None


test_openai_streams = _generated_test("openai", streams, judge_stream, "stream", "streams")
test_anthropic_streams = _generated_test("anthropic", streams, judge_stream, "stream", "streams")
test_gemini_streams = _generated_test("gemini", streams, judge_stream, "stream", "streams")
test_cohere_streams = _generated_test("cohere", streams, judge_stream, "stream", "streams")


@pytest.mark.parametrize("wire", WIRES)
@settings(SETTINGS, max_examples=ASYNC_EXAMPLES)
@given(data=st.data())
def test_streams_through_astream(wire: Wire, data: st.DataObject) -> None:
    judge_stream(wire, data.draw(streams(wire)), "astream")


# --- the oracle's own sanity ---------------------------------------------------------------------


@pytest.mark.parametrize("wire", WIRES)
def test_count_paths_are_found_in_the_scripts_bodies(wire: Wire) -> None:
    script = Script(text=("hi",), usage={"input": 5, "output": 3, "cache_read": 1, "cache_write": 1, "reasoning": 1})
    paths = [p for p in json_paths(body_of(wire, script)) if is_count_path(wire, p)]
    assert len(paths) >= 3 and all(p[-1] in COUNT_KEYS[wire] for p in paths)


# --- pinned cases: inputs the generators found once (exploration depends on what passes) --------

NOT_AN_OBJECT: list[Any] = ["", 0, False, [], "x", 5, [1], 1.5]


def _usage_event_index(wire: Wire, events: list[Event]) -> tuple[int, tuple[str, ...]]:
    """The event carrying the final usage, and the usage object's path inside it."""
    for index in range(len(events) - 1, -1, -1):
        payload = events[index][1]
        if isinstance(payload, dict) and _usage_of(wire, payload) is not None:
            return index, _usage_path(wire, payload)
    raise AssertionError(f"no usage in the {wire} script's events")


@pytest.mark.parametrize("value", NOT_AN_OBJECT, ids=repr)
@pytest.mark.parametrize("mode", ["complete", "stream"])
@pytest.mark.parametrize("wire", WIRES)
def test_a_usage_that_is_not_an_object_is_malformed(wire: Wire, mode: Mode, value: Any) -> None:
    """`"usage": ""` (or 0, [], false, ...) reports usage in a shape no count can be read from:
    malformed, like a count of the wrong type; never `usage=None` ("the provider reported none")."""
    script = Script(text=("Hi",), finish=min(f for f, m in FINISH_MAP[wire].items() if m == "stop"),
                    usage={"input": 5, "output": 2, "cache_read": 0, "cache_write": 0, "reasoning": 0})
    if mode == "complete":
        data = dumps(mutate_at(body_of(wire, script), (USAGE_CONTAINER[wire],), "set", value))
        content_type = "application/json"
    else:
        events = events_of(wire, script)
        index, path = _usage_event_index(wire, events)
        events[index] = (events[index][0], mutate_at(events[index][1], path, "set", value))
        data, content_type = encode_sse(events), "text/event-stream"
    with answering(Answer(200, {"content-type": content_type}, [data])), watchdog(10):
        outcome = call(CLIENTS[wire], mode)
    assert_typed(outcome, f"{wire} {mode}")
    assert isinstance(outcome.error, MalformedResponseError), \
        f"{wire} {mode}: usage {value!r} gave {describe_error(outcome.error)} / " \
        f"usage {outcome.response.usage if outcome.response else None!r}\n    input: {data!r}"


SSE = "text/event-stream"
JSON = "application/json"
# (wire, mode, content type, body, must be MalformedResponseError). Each was once found by the
# generators above; the rest of the boundary (typed, consistent, events = response) holds too.
PINNED: dict[str, tuple[Wire, Mode, str, bytes, bool]] = {
    "openai-reasoning-above-output": ("openai", "complete", JSON, (b'{"choices":[{"index":0,"message":{"content":"hi"},'
                                      b'"finish_reason":"stop"}],"usage":{"prompt_tokens":3,"completion_tokens_details":'
                                      b'{"reasoning_tokens":1}}}'), True),
    "openai-cached-above-prompt": ("openai", "complete", JSON, (b'{"choices":[{"index":0,"message":{"content":"hi"},'
                                   b'"finish_reason":"stop"}],"usage":{"completion_tokens":3,"prompt_tokens_details":'
                                   b'{"cached_tokens":1}}}'), True),
    "gemini-cached-above-prompt": ("gemini", "complete", JSON, (b'{"candidates":[{"content":{"parts":[{"text":"hi"}]},'
                                   b'"finishReason":"STOP"}],"usageMetadata":{"candidatesTokenCount":1,'
                                   b'"cachedContentTokenCount":5}}'), True),
    "openai-finish-tool-calls-without-a-call": ("openai", "complete", JSON, (b'{"choices":[{"index":0,"message":'
                                                b'{"content":""},"finish_reason":"tool_calls"}]}'), True),
    "anthropic-tool-use-with-empty-id": ("anthropic", "complete", JSON, (b'{"type":"message","content":[{"type":"tool_use",'
                                         b'"id":"","name":"f","input":{}}],"stop_reason":"tool_use"}'), True),
    "openai-streamed-tool-call-without-a-name": ("openai", "stream", SSE, (b'data: {"choices":[{"index":0,"delta":'
                                                 b'{"tool_calls":[{"index":0,"id":"c1","function":{"arguments":"{}"}}]}}]}'
                                                 b'\n\ndata: {"choices":[{"index":0,"delta":{},"finish_reason":'
                                                 b'"tool_calls"}]}\n\ndata: [DONE]\n\n'), True),
    "cohere-streamed-tool-call-without-a-name": ("cohere", "stream", SSE, (b'event: tool-call-start\ndata: {"type":'
                                                 b'"tool-call-start","index":0,"delta":{"message":{"tool_calls":{"id":"c1",'
                                                 b'"type":"function","function":{"arguments":"{}"}}}}}\n\nevent: message-end\n'
                                                 b'data: {"type":"message-end","delta":{"finish_reason":"TOOL_CALL"}}\n\n'), True),
    "gemini-last-event-without-blank-line": ("gemini", "stream", SSE, (b'\xef\xbb\xbfdata: {"candidates":[{"content":'
                                             b'{"parts":[{"text":"deep"}]},"finishReason":"MAX_TOKENS"}]}\n'), False),
    "gemini-chunks-after-the-finish-reason": ("gemini", "stream", SSE, (b'data: {"candidates":[{"content":{"parts":'
                                              b'[{"text":"a"}]},"finishReason":"STOP"}]}\r\n\r\ndata: {"candidates":'
                                              b'[{"content":{"parts":[{"text":"b"}]}}]}\r\n\r\n'), False),
    "openai-text-after-finish-no-done-no-blank-line": ("openai", "stream", SSE, (b'data: {"choices":[{"index":0,"delta":{},'
                                                       b'"finish_reason":"stop"}]}\n\ndata: {"choices":[{"index":0,'
                                                       b'"delta":{"content":"x"},"finish_reason":null}]}\n'), False),
    "openai-bytes-after-done": ("openai", "stream", SSE, (b'data: {"choices":[{"index":0,"delta":{"content":"hi"},'
                                b'"finish_reason":"stop"}]}\n\ndata: [DONE]\n\ndata: not json\n\n\xff\xfe'), False),
    "anthropic-thinking-only-end-turn": ("anthropic", "complete", JSON, (b'{"type":"message","content":[{"type":"thinking",'
                                         b'"thinking":"hmm","signature":"s"},{"text":""}],"stop_reason":"end_turn"}'), False),
}


@pytest.mark.parametrize("name", PINNED)
def test_pinned_inputs(name: str) -> None:
    wire, mode, content_type, data, malformed = PINNED[name]
    with answering(Answer(200, {"content-type": content_type}, [data])), watchdog(10):
        outcome = call(CLIENTS[wire], mode)
    what = f"{name}: {wire} {mode}\n    input: {data!r}"
    assert_typed(outcome, what)
    if malformed:
        assert isinstance(outcome.error, MalformedResponseError), f"{what}\n    gave {describe_error(outcome.error)} / " \
                                                                  f"{outcome.response!r}"
    if outcome.response is not None:
        payloads = [json.loads(line[5:]) for line in data.decode("utf-8", "replace").splitlines()
                    if line.startswith("data:") and line[5:].strip().startswith("{")] if mode == "stream" else [json.loads(data)]
        check_response(wire, outcome.response, payloads, what)
        if mode == "stream":
            check_stream_events(outcome.response, outcome.events, what)
