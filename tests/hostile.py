"""Shared pieces of the hostile-input suites (tests/test_hostile_properties.py, tests/test_hostile_faults.py).

- `Script`: what a valid answer says (reasoning, text, tool calls, finish reason, usage), and per
  wire its non-streamed body (`body_of`) and its stream events (`events_of`), in the shapes of
  recorded traffic (cassettes/, /work/shared/reference-traffic); `expected_of` is the Response
  those must give, written from the script by hand (not by calling the library's decoders).
- Mutations of JSON values (`mutate_at`, `json_paths`), SSE framing (`encode_sse`) and chunking.
- `answer(...)`: answers every request in-process through `llmclient.transport.interceptor`
  with a scripted status, headers and body chunks; `call(...)` makes one public call
  (complete / acomplete / stream / astream) and returns what came back or what was raised.
- Oracles: `check_boundary` (only LLMError subclasses; a Response is consistent) and friends.
- `RawServer`: a loopback HTTP server that plays raw byte-level replies (drips, redirects, fake
  Content-Encoding, any path), for the wires tests/fault_server.py does not serve.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import json
import signal
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import httpx

from llmclient import Client, LLMError, Response, RetryPolicy, transport
from llmclient.errors import APIError

Wire = Literal["openai", "anthropic", "gemini", "cohere"]
Mode = Literal["complete", "acomplete", "stream", "astream"]
WIRES: tuple[Wire, ...] = ("openai", "anthropic", "gemini", "cohere")
MODES: tuple[Mode, ...] = ("complete", "acomplete", "stream", "astream")
ONE_ATTEMPT = RetryPolicy(max_attempts=1)
CALL_TIMEOUT = 5.0
MODEL = {"openai": "openai/gpt-4o-mini", "anthropic": "anthropic/claude-sonnet-4-5",
         "gemini": "gemini/gemini-2.5-flash", "cohere": "cohere/command-a-03-2025"}
KEY = {"openai": "sk-hostile-test", "anthropic": "sk-ant-hostile-test", "gemini": "hostile-gemini-key",
       "cohere": "hostile-cohere-key"}
FINISHES = frozenset({"stop", "length", "tool_calls", "content_filter", "other"})


def base_url(wire: Wire, root: str) -> str:
    """The base URL a user gives to point a client at `root` (a proxy, a loopback server)."""
    return {"openai": f"{root}/v1", "anthropic": root, "gemini": f"{root}/v1beta", "cohere": root}[wire]


def client(wire: Wire, root: str = "http://hostile.invalid", *, timeout: float | None = CALL_TIMEOUT,
           retry: RetryPolicy = ONE_ATTEMPT) -> Client:
    return Client(MODEL[wire], base_url=base_url(wire, root), api_key=KEY[wire], timeout=timeout, retry=retry)


# --- valid answers, per wire ---------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    id: str | None
    name: str
    arguments: dict[str, Any]
    fragments: tuple[str, ...]  # the arguments' JSON text, cut as a stream sends it


@dataclass(frozen=True)
class Script:
    """One valid answer. `finish` is a raw finish reason the wire documents; `usage` the wire's raw
    counts (None: the answer reports none); `refusal`/`blocked` make it a refusal or a blocked prompt."""

    reasoning: tuple[str, ...] = ()
    text: tuple[str, ...] = ()
    calls: tuple[Call, ...] = ()
    finish: str = "stop"
    usage: Mapping[str, int] | None = None
    model: str = "m-1"
    refusal: str | None = None  # OpenAI message.refusal
    blocked: str | None = None  # Gemini promptFeedback.blockReason (no candidates)


# Raw finish reasons each wire documents, and what they mean.
FINISH_MAP: dict[Wire, dict[str, str]] = {
    "openai": {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"},
    "anthropic": {"end_turn": "stop", "stop_sequence": "stop", "max_tokens": "length", "tool_use": "tool_calls",
                  "refusal": "content_filter"},
    "gemini": {"STOP": "stop", "MAX_TOKENS": "length", "SAFETY": "content_filter", "RECITATION": "content_filter",
               "PROHIBITED_CONTENT": "content_filter"},
    "cohere": {"COMPLETE": "stop", "STOP_SEQUENCE": "stop", "MAX_TOKENS": "length", "TOOL_CALL": "tool_calls"},
}
# The count fields llmclient reads, by wire: (container key, path inside it).
COUNT_KEYS: dict[Wire, frozenset[str]] = {
    "openai": frozenset({"prompt_tokens", "completion_tokens", "cached_tokens", "reasoning_tokens",
                         "prompt_cache_hit_tokens", "num_cached_tokens", "cache_write_tokens"}),
    "anthropic": frozenset({"input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"}),
    "gemini": frozenset({"promptTokenCount", "candidatesTokenCount", "thoughtsTokenCount", "cachedContentTokenCount",
                         "toolUsePromptTokenCount"}),
    "cohere": frozenset({"input_tokens", "output_tokens", "cached_tokens"}),
}
USAGE_CONTAINER: dict[Wire, str] = {"openai": "usage", "anthropic": "usage", "gemini": "usageMetadata", "cohere": "usage"}
END_MARKER: dict[Wire, str | None] = {"openai": "[DONE]", "anthropic": "message_stop", "gemini": None, "cohere": "message-end"}


def raw_usage(wire: Wire, script: Script) -> dict[str, Any] | None:
    u = script.usage
    if u is None:
        return None
    if wire == "openai":
        return {"prompt_tokens": u["input"], "completion_tokens": u["output"], "total_tokens": u["input"] + u["output"],
                "prompt_tokens_details": {"cached_tokens": u["cache_read"], "audio_tokens": 0},
                "completion_tokens_details": {"reasoning_tokens": u["reasoning"], "audio_tokens": 0}}
    if wire == "anthropic":  # input_tokens excludes the cache reads and writes
        return {"input_tokens": u["input"], "cache_creation_input_tokens": u["cache_write"],
                "cache_read_input_tokens": u["cache_read"], "output_tokens": u["output"], "service_tier": "standard"}
    if wire == "gemini":
        return {"promptTokenCount": u["input"], "candidatesTokenCount": u["output"], "thoughtsTokenCount": u["reasoning"],
                "cachedContentTokenCount": u["cache_read"],
                "totalTokenCount": u["input"] + u["output"] + u["reasoning"]}
    return {"billed_units": {"input_tokens": u["input"], "output_tokens": u["output"]},
            "tokens": {"input_tokens": u["input"] + 7, "output_tokens": u["output"]}, "cached_tokens": u["cache_read"]}


def expected_usage(wire: Wire, script: Script) -> dict[str, int] | None:
    """The Usage the script's counts must give, in the contract's inclusive buckets."""
    u = script.usage
    if u is None:
        return None
    if wire == "openai":
        return {"input_tokens": u["input"], "output_tokens": u["output"], "cache_read_tokens": u["cache_read"],
                "cache_write_tokens": 0, "reasoning_tokens": u["reasoning"]}
    if wire == "anthropic":
        return {"input_tokens": u["input"] + u["cache_read"] + u["cache_write"], "output_tokens": u["output"],
                "cache_read_tokens": u["cache_read"], "cache_write_tokens": u["cache_write"], "reasoning_tokens": 0}
    if wire == "gemini":
        return {"input_tokens": u["input"], "output_tokens": u["output"] + u["reasoning"],
                "cache_read_tokens": u["cache_read"], "cache_write_tokens": 0, "reasoning_tokens": u["reasoning"]}
    return {"input_tokens": u["input"], "output_tokens": u["output"], "cache_read_tokens": u["cache_read"],
            "cache_write_tokens": 0, "reasoning_tokens": 0}


@dataclass(frozen=True)
class Expected:
    text: str
    reasoning: str | None
    calls: tuple[tuple[str | None, str, dict[str, Any]], ...]  # (id or None when synthetic, name, arguments)
    finish: str
    usage: dict[str, int] | None


def expected_of(wire: Wire, script: Script) -> Expected:
    finish = FINISH_MAP[wire].get(script.finish, "other")
    if script.calls and finish == "stop":
        finish = "tool_calls"
    if script.refusal is not None or script.blocked is not None:
        finish = "content_filter"
    calls = tuple((c.id if wire != "gemini" or c.id else None, c.name, c.arguments) for c in script.calls)
    text = "" if script.blocked is not None else "".join(script.text)
    reasoning = "" if script.blocked is not None else "".join(script.reasoning)
    return Expected(text, reasoning or None, () if script.blocked else calls, finish, expected_usage(wire, script))


def body_of(wire: Wire, script: Script) -> dict[str, Any]:
    """The non-streamed answer."""
    text, reasoning = "".join(script.text), "".join(script.reasoning)
    usage = raw_usage(wire, script)
    with_usage = {} if usage is None else {USAGE_CONTAINER[wire]: usage}
    if wire == "openai":
        message: dict[str, Any] = {"role": "assistant", "content": text if (text or not script.calls) else None,
                                   "refusal": script.refusal, "annotations": []}
        if script.refusal is not None:
            message["content"] = None
        if reasoning:
            message["reasoning_content"] = reasoning
        if script.calls:
            message["tool_calls"] = [{"id": c.id, "type": "function",
                                      "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in script.calls]
        return {"id": "chatcmpl-h", "object": "chat.completion", "created": 1, "model": script.model,
                "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": script.finish}],
                **with_usage, "system_fingerprint": "fp_h"}
    if wire == "anthropic":
        content: list[dict[str, Any]] = []
        if reasoning:
            content.append({"type": "thinking", "thinking": reasoning, "signature": "sig"})
        if text or not script.calls:
            content.append({"type": "text", "text": text})
        content += [{"type": "tool_use", "id": c.id, "name": c.name, "input": c.arguments} for c in script.calls]
        return {"id": "msg_h", "type": "message", "role": "assistant", "model": script.model, "content": content,
                "stop_reason": script.finish, "stop_sequence": None, **with_usage}
    if wire == "gemini":
        if script.blocked is not None:
            return {"promptFeedback": {"blockReason": script.blocked, "safetyRatings": []}, **with_usage,
                    "modelVersion": script.model, "responseId": "r1"}
        parts: list[dict[str, Any]] = []
        if reasoning:
            parts.append({"text": reasoning, "thought": True})
        if text or not script.calls:
            parts.append({"text": text})
        parts += [{"functionCall": {**({"id": c.id} if c.id else {}), "name": c.name, "args": c.arguments}}
                  for c in script.calls]
        return {"candidates": [{"content": {"role": "model", "parts": parts}, "finishReason": script.finish, "index": 0}],
                **with_usage, "modelVersion": script.model, "responseId": "r1"}
    items: list[dict[str, Any]] = []
    if reasoning:
        items.append({"type": "thinking", "thinking": reasoning})
    if text or not script.calls:
        items.append({"type": "text", "text": text})
    message = {"role": "assistant", "content": items}
    if script.calls:
        message["tool_calls"] = [{"id": c.id, "type": "function",
                                  "function": {"name": c.name, "arguments": json.dumps(c.arguments)}} for c in script.calls]
    return {"id": "c-h", "finish_reason": script.finish, "message": message, **with_usage}


Event = tuple[str | None, Any]  # (SSE event name or None, payload: JSON value, or a str sent verbatim)


def events_of(wire: Wire, script: Script) -> list[Event]:
    """The streamed answer, event by event (the end marker included)."""
    usage = raw_usage(wire, script)
    if wire == "openai":
        head = {"id": "chatcmpl-h", "object": "chat.completion.chunk", "created": 1, "model": script.model}

        def chunk(delta: dict[str, Any] | None, finish: str | None = None, **extra: Any) -> Event:
            choices = [] if delta is None else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
            return None, {**head, "choices": choices, **extra}

        events = [chunk({"role": "assistant", "content": "", "refusal": None})]
        events += [chunk({"reasoning_content": piece}) for piece in script.reasoning]
        events += [chunk({"content": piece}) for piece in script.text]
        for index, c in enumerate(script.calls):
            events.append(chunk({"tool_calls": [{"index": index, "id": c.id, "type": "function",
                                                 "function": {"name": c.name, "arguments": ""}}]}))
            events += [chunk({"tool_calls": [{"index": index, "function": {"arguments": f}}]}) for f in c.fragments]
        events.append(chunk({}, script.finish))
        if usage is not None:
            events.append(chunk(None, usage=usage))
        return [*events, (None, "[DONE]")]
    if wire == "anthropic":
        start_usage = None if usage is None else {**usage, "output_tokens": 1}
        message: dict[str, Any] = {"id": "msg_h", "type": "message", "role": "assistant", "model": script.model,
                                   "content": [], "stop_reason": None, "stop_sequence": None, **({} if start_usage is None else {"usage": start_usage})}
        events = [("message_start", {"type": "message_start", "message": message})]
        index = 0

        def block(start: dict[str, Any], deltas: list[dict[str, Any]]) -> None:
            nonlocal index
            events.append(("content_block_start", {"type": "content_block_start", "index": index, "content_block": start}))
            events.extend(("content_block_delta", {"type": "content_block_delta", "index": index, "delta": d}) for d in deltas)
            events.append(("content_block_stop", {"type": "content_block_stop", "index": index}))
            index += 1

        if script.reasoning:
            block({"type": "thinking", "thinking": "", "signature": ""},
                  [{"type": "thinking_delta", "thinking": p} for p in script.reasoning])
        if script.text or not script.calls:
            block({"type": "text", "text": ""}, [{"type": "text_delta", "text": p} for p in script.text])
            events.insert(2, ("ping", {"type": "ping"}))
        for c in script.calls:
            block({"type": "tool_use", "id": c.id, "name": c.name, "input": {}},
                  [{"type": "input_json_delta", "partial_json": f} for f in c.fragments])
        delta: dict[str, Any] = {"type": "message_delta", "delta": {"stop_reason": script.finish, "stop_sequence": None}}
        if usage is not None:
            delta["usage"] = {k: v for k, v in usage.items() if k != "service_tier"}
        return [*events, ("message_delta", delta), ("message_stop", {"type": "message_stop"})]
    if wire == "gemini":
        def gchunk(parts: list[dict[str, Any]], finish: str | None = None, last: bool = False) -> Event:
            candidate: dict[str, Any] = {"content": {"role": "model", "parts": parts}, "index": 0}
            if finish is not None:
                candidate["finishReason"] = finish
            body: dict[str, Any] = {"candidates": [candidate]}
            if usage is not None and last:
                body["usageMetadata"] = usage
            return None, {**body, "modelVersion": script.model, "responseId": "r1"}

        events = [gchunk([{"text": p, "thought": True}]) for p in script.reasoning]
        events += [gchunk([{"text": p}]) for p in script.text]
        calls = [{"functionCall": {**({"id": c.id} if c.id else {}), "name": c.name, "args": c.arguments}}
                 for c in script.calls]
        if calls:
            events.append(gchunk(calls))
        events.append(gchunk([{"text": ""}], script.finish, last=True))
        return events
    events = [("message-start", {"id": "c-h", "type": "message-start",
                                 "delta": {"message": {"role": "assistant", "content": [], "tool_plan": "", "tool_calls": [],
                                                       "citations": []}}})]
    index = 0
    if script.reasoning:
        events.append(("content-start", {"type": "content-start", "index": index,
                                         "delta": {"message": {"content": {"type": "thinking", "thinking": ""}}}}))
        events += [("content-delta", {"type": "content-delta", "index": index,
                                      "delta": {"message": {"content": {"thinking": p}}}}) for p in script.reasoning]
        events.append(("content-end", {"type": "content-end", "index": index}))
        index += 1
    if script.text or not script.calls:
        events.append(("content-start", {"type": "content-start", "index": index,
                                         "delta": {"message": {"content": {"type": "text", "text": ""}}}}))
        events += [("content-delta", {"type": "content-delta", "index": index,
                                      "delta": {"message": {"content": {"text": p}}}}) for p in script.text]
        events.append(("content-end", {"type": "content-end", "index": index}))
    for n, c in enumerate(script.calls):
        events.append(("tool-call-start", {"type": "tool-call-start", "index": n, "delta": {"message": {"tool_calls": {
            "id": c.id, "type": "function", "function": {"name": c.name, "arguments": ""}}}}}))
        events += [("tool-call-delta", {"type": "tool-call-delta", "index": n,
                                        "delta": {"message": {"tool_calls": {"function": {"arguments": f}}}}}) for f in c.fragments]
        events.append(("tool-call-end", {"type": "tool-call-end", "index": n}))
    end: dict[str, Any] = {"finish_reason": script.finish}
    if usage is not None:
        end["usage"] = usage
    return [*events, ("message-end", {"type": "message-end", "delta": end})]


# --- SSE framing ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Framing:
    """How events become bytes: line ending, `data:` with or without its space, comment and
    unknown-field lines between events, a BOM, the last blank line left off, compact JSON or not."""

    newline: str = "\n"
    space: bool = True
    comments: frozenset[int] = frozenset()  # before these event indexes: comment, id, retry and unknown-field lines
    bom: bool = False
    final_blank: bool = True
    ascii_json: bool = False


def data_text(payload: Any, ascii_json: bool = False) -> str:
    if isinstance(payload, str):
        return payload
    text = json.dumps(payload, ensure_ascii=ascii_json, separators=(",", ":"))
    return text if ascii_json or utf8_safe(text) else json.dumps(payload, separators=(",", ":"))


def utf8_safe(text: str) -> bool:
    """Whether `text` encodes as UTF-8 (no lone surrogate: JSON carries those only as escapes)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def encode_sse(events: Sequence[Event], framing: Framing = Framing()) -> bytes:
    nl = framing.newline
    out: list[str] = ["\ufeff"] if framing.bom else []
    for index, (name, payload) in enumerate(events):
        if index in framing.comments:
            out.append(f": keep-alive{nl}id: {index}{nl}retry: 1000{nl}garbage line{nl}x-unknown-field: 1{nl}")
        if name is not None:
            out.append(f"event: {name}{nl}")
        out.append(f"data:{' ' if framing.space else ''}{data_text(payload, framing.ascii_json)}{nl}{nl}")
    text = "".join(out)
    if not framing.final_blank:
        text = text[: -len(nl)]
    return text.encode("utf-8", errors="surrogatepass")


def chunked(data: bytes, cuts: Sequence[int]) -> list[bytes]:
    """`data` cut at `cuts` (positions, any order, clipped), every byte kept, in order."""
    points = sorted({max(0, min(len(data), c)) for c in cuts} | {0, len(data)})
    return [data[a:b] for a, b in itertools.pairwise(points) if b > a] or [b""]


# --- JSON mutation -------------------------------------------------------------------------------

Path = tuple[Any, ...]


def json_paths(value: Any, prefix: Path = (), limit: int = 400) -> list[Path]:
    """Every path to a value inside `value` (the root excluded), breadth-first, at most `limit`."""
    paths: list[Path] = []
    queue: list[tuple[Path, Any]] = [(prefix, value)]
    while queue and len(paths) < limit:
        path, node = queue.pop(0)
        items: Any = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
        for key, child in items:
            paths.append((*path, key))
            queue.append(((*path, key), child))
    return paths


def get_at(value: Any, path: Path) -> Any:
    for key in path:
        value = value[key]
    return value


def mutate_at(value: Any, path: Path, op: str, new: Any = None) -> Any:
    """A copy of `value` with the node at `path` replaced by `new` ("set") or deleted ("delete")."""
    value = json.loads(json.dumps(value))
    parent = get_at(value, path[:-1])
    if op == "delete":
        del parent[path[-1]]
    else:
        parent[path[-1]] = new
    return value


def is_valid_count(value: Any) -> bool:
    """A non-negative integer (an integral float counts: JSON has one number type)."""
    if isinstance(value, bool):
        return False
    if isinstance(value, int):
        return value >= 0
    return isinstance(value, float) and value.is_integer() and value >= 0


def is_count_path(wire: Wire, path: Path) -> bool:
    """Whether `path` leads to a count llmclient reads (under the wire's usage container)."""
    return bool(path) and isinstance(path[-1], str) and path[-1] in COUNT_KEYS[wire] and USAGE_CONTAINER[wire] in path[:-1] \
        and "tokens" not in path[:-1] and "iterations" not in path[:-1]


# --- answering in-process ------------------------------------------------------------------------


class Chunks(httpx.SyncByteStream, httpx.AsyncByteStream):
    """A body delivered in the given pieces, sync or async."""

    def __init__(self, pieces: Sequence[bytes]) -> None:
        self.pieces = list(pieces)

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


@dataclass
class Answer:
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    pieces: Sequence[bytes] = (b"",)


@contextlib.contextmanager
def answering(answer: Answer) -> Iterator[list[httpx.Request]]:
    """Every request inside the block gets `answer`; the requests are listed."""
    seen: list[httpx.Request] = []

    def hook(request: httpx.Request, spec: Any) -> httpx.Response:
        seen.append(request)
        head = [(k.encode("latin-1"), v.encode("latin-1")) for k, v in answer.headers.items()]  # as they come off a socket
        return httpx.Response(answer.status, headers=head, stream=Chunks(answer.pieces), request=request)

    previous = transport.interceptor
    transport.interceptor = hook
    try:
        yield seen
    finally:
        transport.interceptor = previous


class Hung(Exception):
    """The call ran past the watchdog: a hang (raised from SIGALRM, so it is not an LLMError)."""


@contextlib.contextmanager
def watchdog(seconds: float) -> Iterator[None]:
    """Raise `Hung` in the main thread if the block runs longer than `seconds`."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def fire(*_: Any) -> None:
        raise Hung(f"no result within {seconds} s")

    previous = signal.signal(signal.SIGALRM, fire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@dataclass
class Outcome:
    response: Response | None = None
    error: BaseException | None = None
    events: list[Any] = field(default_factory=list)
    elapsed: float = 0.0
    requests: list[Any] = field(default_factory=list)  # what a server saw, when the call went to one


def call(c: Client, mode: Mode, prompt: str = "Hi", **options: Any) -> Outcome:
    """One public call; what it returned or raised (anything, Hung included, is kept)."""
    outcome = Outcome()
    started = time.monotonic()
    try:
        if mode == "complete":
            outcome.response = c.complete(prompt, **options)
        elif mode == "stream":
            with c.stream(prompt, **options) as stream:
                for event in stream:
                    outcome.events.append(event)
                outcome.response = stream.response
        else:
            outcome.response = asyncio.run(_acall(c, mode, prompt, outcome, options))
    except BaseException as exc:
        if isinstance(exc, KeyboardInterrupt):
            raise
        outcome.error = exc
    outcome.elapsed = time.monotonic() - started
    return outcome


async def _acall(c: Client, mode: Mode, prompt: str, outcome: Outcome, options: dict[str, Any]) -> Response:
    if mode == "acomplete":
        return await c.acomplete(prompt, **options)
    async with c.astream(prompt, **options) as stream:
        async for event in stream:
            outcome.events.append(event)
        return await stream.get_response()


# --- oracles -------------------------------------------------------------------------------------


def describe(exc: BaseException) -> str:
    return f"{type(exc).__module__}.{type(exc).__qualname__}: {str(exc)[:300]}"


def assert_typed(outcome: Outcome, what: str) -> None:
    """Only an LLMError subclass may escape a public call; never a hang."""
    error = outcome.error
    if error is not None and not isinstance(error, LLMError):
        raise AssertionError(f"untyped exception escaped from {what}: {describe(error)}") from error
    assert outcome.elapsed < CALL_TIMEOUT, f"{what} took {outcome.elapsed:.1f} s, past the call timeout"


def _str_at(container: Any, key: str) -> bool:
    return isinstance(container, dict) and isinstance(container.get(key), str)


def _has_text_field(wire: Wire, payload: Any) -> bool:
    """Whether one body or stream payload holds a text field where the wire puts the answer's text
    (even an empty one): the provider said "the answer is this text"."""
    if not isinstance(payload, dict):
        return False
    if wire == "openai":
        for choice in payload.get("choices") or []:
            if not isinstance(choice, dict):
                continue
            for key in ("message", "delta"):
                holder = choice.get(key)
                if _str_at(holder, "content"):
                    return True
                content = holder.get("content") if isinstance(holder, dict) else None
                if isinstance(content, list) and any(_str_at(p, "text") for p in content):
                    return True
        return False
    if wire == "anthropic":
        blocks = payload.get("content")
        if isinstance(blocks, list) and any(isinstance(b, dict) and b.get("type") == "text" and _str_at(b, "text") for b in blocks):
            return True
        start = payload.get("content_block")
        delta = payload.get("delta")
        return (isinstance(start, dict) and start.get("type") == "text" and _str_at(start, "text")) or \
            (isinstance(delta, dict) and delta.get("type") == "text_delta" and _str_at(delta, "text"))
    if wire == "gemini":
        for candidate in payload.get("candidates") or []:
            content = candidate.get("content") if isinstance(candidate, dict) else None
            parts = content.get("parts") if isinstance(content, dict) else None
            if isinstance(parts, list) and any(_str_at(p, "text") and not p.get("thought") for p in parts):
                return True
        return False
    message = payload.get("message")
    items = message.get("content") if isinstance(message, dict) else None
    if isinstance(items, list) and any(isinstance(i, dict) and i.get("type") == "text" and _str_at(i, "text") for i in items):
        return True
    delta = payload.get("delta")
    inner = delta.get("message") if isinstance(delta, dict) else None
    content = inner.get("content") if isinstance(inner, dict) else None
    return _str_at(content, "text")


def has_text_field(wire: Wire, payloads: Sequence[Any]) -> bool:
    return any(_has_text_field(wire, payload) for payload in payloads)


def check_response(wire: Wire, response: Response, payloads: Sequence[Any], what: str) -> None:
    """A Response that came back is consistent. `payloads`: the body, or the stream's event payloads."""
    assert isinstance(response, Response), what
    assert response.finish_reason in FINISHES, f"{what}: finish_reason {response.finish_reason!r}"
    assert isinstance(response.text, str), what
    assert response.reasoning is None or (isinstance(response.reasoning, str) and response.reasoning), what
    assert isinstance(response.model, str) and response.model, f"{what}: model {response.model!r}"
    usage = response.usage
    if usage is not None:
        counts = {name: getattr(usage, name) for name in
                  ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")}
        for name, count in counts.items():
            assert type(count) is int and count >= 0, f"{what}: usage.{name} = {count!r}"
        if wire != "cohere":  # Cohere reports cached tokens outside its billed input (Usage's docstring)
            assert counts["cache_read_tokens"] + counts["cache_write_tokens"] <= counts["input_tokens"], \
                f"{what}: cache reads + writes above the input: {counts}"
        assert counts["reasoning_tokens"] <= counts["output_tokens"], f"{what}: reasoning above the output: {counts}"
    for tool_call in response.tool_calls:
        assert isinstance(tool_call.name, str) and tool_call.name, f"{what}: a tool call without a name: {tool_call!r}"
        assert isinstance(tool_call.id, str) and tool_call.id, f"{what}: a tool call without an id: {tool_call!r}"
        assert isinstance(tool_call.arguments, dict), what
    if response.finish_reason == "tool_calls":
        assert response.tool_calls, f"{what}: finish_reason 'tool_calls' with no tool call (raw {response.raw_finish_reason!r})"
    # An empty answer: no text, no tool call, no reasoning. (A reasoning-only answer is what the
    # provider sent: the body had content, so it is not shapeless.)
    if not response.text and not response.tool_calls and not response.reasoning \
            and response.finish_reason != "content_filter":
        if response.finish_reason == "stop":
            assert has_text_field(wire, payloads), \
                f"{what}: finish 'stop' with empty text and no tool calls from a body that had neither"
        else:
            assert response.raw_finish_reason is not None or has_text_field(wire, payloads), \
                f"{what}: an empty answer (finish {response.finish_reason!r}, no raw finish reason) from a shapeless body"


def check_stream_events(response: Response, events: Sequence[Any], what: str) -> None:
    """The events are the response: text and reasoning deltas concatenate to it; one tool call
    per index, whose name, id and arguments are the response's."""
    text = "".join(e.text for e in events if e.kind == "text")
    assert text == response.text, f"{what}: text deltas {text!r} != response.text {response.text!r}"
    reasoning = "".join(e.text for e in events if e.kind == "reasoning")
    assert reasoning == (response.reasoning or ""), f"{what}: reasoning deltas {reasoning!r} != {response.reasoning!r}"
    calls: dict[int, dict[str, Any]] = {}
    for e in events:
        if e.kind != "tool_call":
            continue
        d = e.tool_call
        call_ = calls.setdefault(d.index, {"id": None, "name": None, "arguments": ""})
        call_["id"] = call_["id"] or d.id
        call_["name"] = call_["name"] or d.name
        call_["arguments"] += d.arguments
    assert len(calls) == len(response.tool_calls), \
        f"{what}: {len(calls)} tool calls streamed, {len(response.tool_calls)} in the response"
    for (_, streamed), final in zip(sorted(calls.items()), response.tool_calls):
        assert streamed["name"] in (None, final.name), f"{what}: streamed name {streamed['name']!r} != {final.name!r}"
        assert streamed["id"] in (None, final.id), f"{what}: streamed id {streamed['id']!r} != {final.id!r}"
        try:
            parsed = json.loads(streamed["arguments"]) if streamed["arguments"].strip() else {}
        except ValueError:
            parsed = streamed["arguments"]
        assert parsed == final.arguments, \
            f"{what}: streamed arguments {streamed['arguments']!r} != response arguments {final.arguments!r}"


def matches(wire: Wire, response: Response, expected: Expected, what: str) -> None:
    got_usage = None if response.usage is None else {
        name: getattr(response.usage, name)
        for name in ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")}
    got = (response.text, response.reasoning, response.finish_reason, got_usage)
    want = (expected.text, expected.reasoning, expected.finish, expected.usage)
    assert got == want, f"{what}: got (text, reasoning, finish, usage) {got!r}, expected {want!r}"
    calls = tuple((c.id if want_id is not None else None, c.name, c.arguments)
                  for c, (want_id, _, _) in zip(response.tool_calls, expected.calls))
    assert len(response.tool_calls) == len(expected.calls) and calls == expected.calls, \
        f"{what}: tool calls {response.tool_calls!r}, expected {expected.calls!r}"


# --- a raw loopback server -----------------------------------------------------------------------


@dataclass
class Reply:
    """A raw HTTP reply: the status line and headers, then body pieces, each after `gap` seconds.
    `drip_head`: the head itself goes out a byte every `gap` seconds."""

    status: int = 200
    reason: str = "OK"
    headers: Sequence[tuple[str, str]] = ()
    pieces: Sequence[bytes] = ()
    gap: float = 0.0
    drip_head: bool = False
    forever: bytes | None = None  # after the pieces, this byte string every `gap` s until the client leaves


@dataclass
class Seen:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class RawServer:
    """Loopback HTTP/1.1 server: each request gets `reply(seen)`; the connection closes after it.
    Every request is recorded in `requests`. A context manager; closing joins every thread."""

    def __init__(self, reply: Callable[[Seen], Reply] | Reply) -> None:
        self._reply = reply if callable(reply) else (lambda _seen: reply)
        self.requests: list[Seen] = []
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._sock.bind(("127.0.0.1", 0))
        self._sock.listen(16)
        self._sock.settimeout(0.05)
        self.url = f"http://127.0.0.1:{self._sock.getsockname()[1]}"
        self._accept = threading.Thread(target=self._serve, name="hostile-raw-accept", daemon=True)

    def __enter__(self) -> Self:
        self._accept.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._accept.join(5)
        for thread in self._threads:
            thread.join(5)
        self._sock.close()

    @property
    def count(self) -> int:
        return len(self.requests)

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except OSError:
                continue
            thread = threading.Thread(target=self._handle, args=(conn,), name="hostile-raw-conn", daemon=True)
            self._threads.append(thread)
            thread.start()

    def _handle(self, conn: socket.socket) -> None:
        conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        conn.settimeout(10)
        try:
            seen = self._read_request(conn)
            if seen is None:
                return
            self.requests.append(seen)
            reply = self._reply(seen)
            head = f"HTTP/1.1 {reply.status} {reply.reason}\r\n" + "".join(f"{k}: {v}\r\n" for k, v in reply.headers) + \
                "connection: close\r\n\r\n"
            if reply.drip_head:
                for byte in head.encode():
                    if self._stop.wait(reply.gap):
                        return
                    conn.sendall(bytes([byte]))
            else:
                conn.sendall(head.encode())
            for piece in reply.pieces:
                if reply.gap and self._stop.wait(reply.gap):
                    return
                conn.sendall(piece)
            while reply.forever is not None and not self._stop.wait(reply.gap):
                conn.sendall(reply.forever)
        except OSError:
            pass  # the client left
        finally:
            with contextlib.suppress(OSError):
                conn.shutdown(socket.SHUT_RDWR)
            conn.close()

    def _read_request(self, conn: socket.socket) -> Seen | None:
        data = b""
        while b"\r\n\r\n" not in data:
            piece = conn.recv(65536)
            if not piece:
                return None
            data += piece
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        method, path, _ = lines[0].split(" ", 2)
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        length = int(headers.get("content-length") or 0)
        while len(body) < length:
            piece = conn.recv(65536)
            if not piece:
                break
            body += piece
        return Seen(method, path, headers, body)


def sse_reply(data: bytes, *, piece: int = 0, content_type: str = "text/event-stream") -> Reply:
    pieces = [data[i:i + piece] for i in range(0, len(data), piece)] if piece else [data]
    return Reply(headers=[("content-type", content_type), ("content-length", str(len(data)))], pieces=pieces)


def json_reply(body: Any, status: int = 200, headers: Sequence[tuple[str, str]] = ()) -> Reply:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    return Reply(status=status, headers=[("content-type", "application/json"), ("content-length", str(len(data))),
                                         *headers], pieces=[data])


def is_stream_request(seen: Seen) -> bool:
    if ":streamGenerateContent" in seen.path:
        return True
    try:
        return json.loads(seen.body).get("stream") is True
    except (ValueError, AttributeError):
        return False


def typed_not_catch_all(error: BaseException | None) -> bool:
    return isinstance(error, LLMError) and type(error) not in (LLMError, APIError)
