"""The request half of a cell: what each request sent means, and whether it carries what the
scenario says it must.

A request is projected to the wire-independent `call` (`call_shape.extract_call`: system,
messages with their parts, tools, tool_choice, response_format, max_tokens, stream, ...) plus
its `model` and `endpoint`. A scenario's expectation is a partial projection: every key it names
must be in the request with that value. Mappings need only the keys given; lists must have
exactly the items given, in order, except a turn's `parts`: those named, in any order, among any others; strings match
exactly unless the expectation is a `Contains`; `OneOf` accepts any of its choices.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from llmclient.cassettes import REDACTED, SentRequest
from llmclient.conformance.call_shape import extract_call

# The corpus's endpoint names (call_shape) of each wire llmclient speaks.
ENDPOINTS = {"openai": "openai_chat_completions", "litellm": "openai_chat_completions",
             "anthropic": "anthropic_messages", "gemini": "gemini_generate_content", "cohere": "cohere_v2_chat"}
_MISSING = object()
# Headers every request carries for the transport's sake, left out of the projection.
_TRANSPORT_HEADERS = frozenset({"host", "content-length", "accept-encoding", "connection", "user-agent", "accept"})


@dataclass(frozen=True)
class Contains:
    """A string holding `text`."""

    text: str

    def __repr__(self) -> str:
        return f"text containing {self.text!r}"


@dataclass(frozen=True)
class Json:
    """A string holding this JSON value (a tool result, whatever its spacing or key order)."""

    value: Any

    def __repr__(self) -> str:
        return f"JSON text of {json.dumps(self.value)}"


@dataclass(frozen=True)
class Includes:
    """A list with at least one item matching `item` (among any others)."""

    item: Any

    def __repr__(self) -> str:
        return f"a list including {self.item!r}"


@dataclass(frozen=True)
class Lacks:
    """A mapping without `key` (what one wire must not be sent)."""

    key: str

    def __repr__(self) -> str:
        return f"no {self.key!r}"


@dataclass(frozen=True)
class ByWire:
    """What the request carries on each wire (`"*"`: every other one), where the wires differ."""

    expected: Mapping[str, Any]

    def on(self, wire: str) -> Any:
        return self.expected.get(wire, self.expected.get("*"))


@dataclass(frozen=True)
class OneOf:
    """Any of the choices (e.g. a forced tool as `{"name": ...}`, or `"required"` where the API
    cannot name one)."""

    choices: tuple[Any, ...]

    def __repr__(self) -> str:
        return " or ".join(repr(choice) for choice in self.choices)


def projection(sent: SentRequest, wire: str) -> dict[str, Any]:
    """What `sent` means: its call (for a chat request), model and endpoint."""
    url = urlsplit(sent.uri)
    endpoint = f"{sent.method} {url.scheme}://{url.netloc}{url.path}"
    if sent.method != "POST":  # e.g. the download of an image a provider cannot fetch itself
        return {"endpoint": endpoint}
    try:
        body = json.loads(sent.body or b"null")
    except ValueError:
        return {"endpoint": endpoint, "body": sent.body[:200].decode("utf-8", errors="replace")}
    if not isinstance(body, dict):
        return {"endpoint": endpoint, "body": body}
    left_out: list[str] = []
    try:
        call = extract_call(sent.method, sent.uri, body, ENDPOINTS.get(wire, "openai_chat_completions"), left_out)
    except (ValueError, KeyError, TypeError, AttributeError) as exc:  # a body no chat wire would send
        return {"endpoint": endpoint, "unreadable": f"{type(exc).__name__}: {exc}"}
    model = body.get("model")
    if model is None and "/models/" in url.path:  # Gemini names it in the path
        model = url.path.split("/models/", 1)[1].split(":", 1)[0]
    headers = {name.lower(): value for name, value in sent.headers.items()  # secrets: already REDACTED, left out
               if value != REDACTED and name.lower() not in _TRANSPORT_HEADERS}
    return {"wire": wire, "model": model, "endpoint": endpoint, **call, "reasoning": _reasoning(body, wire),
            "headers": headers, "left_out": sorted(set(left_out))}


def _reasoning(body: Mapping[str, Any], wire: str) -> Any:
    """The reasoning the request asks for, which the call shape leaves out: OpenAI's effort as is,
    else the wire's thinking budget as {"budget": tokens} (0: thinking off), None when not asked."""
    if wire in ("openai", "litellm"):
        return body.get("reasoning_effort")
    if wire == "gemini":
        config = (body.get("generationConfig") or {}).get("thinkingConfig")
        return {"budget": config.get("thinkingBudget")} if isinstance(config, Mapping) else None
    thinking = body.get("thinking")
    if not isinstance(thinking, Mapping):
        return None
    if thinking.get("type") == "disabled":
        return {"budget": 0}
    return {"budget": thinking.get("budget_tokens" if wire == "anthropic" else "token_budget")}


def request_problems(expected: tuple[Mapping[str, Any], ...], sent: list[dict[str, Any]]) -> list[str]:
    """Every way the requests sent fall short of the scenario's expectation, as readable lines."""
    if len(sent) != len(expected):
        what = "no request" if not expected else f"{len(expected)} request(s)"
        return [f"requests: the scenario sends {what}, {len(sent)} were sent"]
    problems: list[str] = []
    for index, (want, got) in enumerate(zip(expected, sent)):
        where = f"request {index + 1}" if len(expected) > 1 else "request"
        problems += [f"{where}: {problem}" for problem in _differences(want, got, "", str(got.get("wire", "")))]
    return problems


def _differences(want: Any, got: Any, where: str, wire: str = "") -> list[str]:
    if isinstance(want, ByWire):
        return _differences(want.on(wire), got, where, wire)
    if isinstance(want, Lacks):
        if isinstance(got, Mapping) and want.key not in got:
            return []
        return [f"{where}: expected {want!r}, sent {_shown(got)}"]
    if isinstance(want, OneOf):
        if any(not _differences(choice, got, where, wire) for choice in want.choices):
            return []
        return [f"{where or 'value'}: expected {want!r}, sent {_shown(got)}"]
    if isinstance(want, Includes):
        if isinstance(got, list) and any(not _differences(want.item, item, where, wire) for item in got):
            return []
        return [f"{where}: expected {want!r}, sent {_shown(got)}"]
    if isinstance(want, Json):
        try:
            if isinstance(got, str) and json.loads(got) == want.value:
                return []
        except ValueError:
            pass
        return [f"{where}: expected {want!r}, sent {_shown(got)}"]
    if isinstance(want, Contains):
        if isinstance(got, str) and want.text in got:
            return []
        return [f"{where}: expected {want!r}, sent {_shown(got)}"]
    if isinstance(want, Mapping):
        if not isinstance(got, Mapping):
            return [f"{where or 'value'}: expected {_shown(dict(want))}, sent {_shown(got)}"]
        problems: list[str] = []
        for key, value in want.items():
            at = f"{where}.{key}" if where else str(key)
            found = got.get(key, _MISSING)
            problems += [f"{at}: not sent"] if found is _MISSING else _differences(value, found, at, wire)
        return problems
    if isinstance(want, (list, tuple)):
        if not isinstance(got, list):
            return [f"{where}: expected {len(want)} item(s), sent {_shown(got)}"]
        if where.endswith("parts"):
            return _unordered(list(want), got, where, wire)
        if len(want) != len(got):
            return [f"{where}: expected {len(want)} item(s), sent {len(got)}: {_shown(got)}"]
        return [problem for index, (w, g) in enumerate(zip(want, got))
                for problem in _differences(w, g, f"{where}[{index}]", wire)]
    if want != got or isinstance(want, bool) != isinstance(got, bool):
        return [f"{where}: expected {_shown(want)}, sent {_shown(got)}"]
    return []


def _unordered(want: list[Any], got: list[Any], where: str, wire: str) -> list[str]:
    left = list(got)
    missing = []
    for item in want:
        match = next((i for i, candidate in enumerate(left) if not _differences(item, candidate, where, wire)), None)
        if match is None:
            missing.append(item)
        else:
            left.pop(match)
    # Parts beyond those named may be there (the text a model said before its tool call, echoed).
    return [f"{where}: no part matching {_shown(item)} among {_shown(got)}" for item in missing]


def _shown(value: Any, limit: int = 160) -> str:
    text = repr(value) if isinstance(value, (ByWire, Contains, Includes, Json, Lacks, OneOf)) else json.dumps(value, ensure_ascii=False, default=repr)
    return text if len(text) <= limit else f"{text[:limit]}... ({len(text):,} chars)"
