"""Checks of a call's arguments that need none of the request types: JSON values, containers,
headers and stop sequences. Each refusal is an `InvalidRequestError` that says what is wrong and
where (`messages[3].tool_calls[0] (lookup) arguments['when']`, `tools[2]`), raised by
`Request.build` before anything is sent, rather than a TypeError from an encoder later.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from pydantic import BaseModel

from llmclient.errors import InvalidRequestError

MAX_DEPTH = 128  # deeper JSON is no tool's arguments; the walk stops there (a cycle ends there too)


def json_problem(value: Any) -> tuple[str, str] | None:
    """(where, what) of the first part of `value` that JSON cannot carry — a non-JSON type, NaN
    or an infinity, a lone surrogate, a non-string key, nesting over `MAX_DEPTH` (a cycle) — where
    is a subscript path such as `['rows'][2]`; None when `value` is all JSON."""
    stack: list[tuple[Any, str, int]] = [(value, "", 0)]
    while stack:
        item, at, depth = stack.pop()
        if depth > MAX_DEPTH:
            return at, f"nesting deeper than {MAX_DEPTH} levels (a value that contains itself?)"
        if item is None or isinstance(item, (bool, int)):
            continue
        if isinstance(item, float):
            if not math.isfinite(item):
                return at, f"{item!r}, which JSON has no number for"
        elif isinstance(item, str):
            problem = _unpaired(item)
            if problem:
                return at, problem
        elif isinstance(item, Mapping):
            for key, child in reversed(list(item.items())):
                if not isinstance(key, str):
                    return at, f"the key {key!r} ({type(key).__name__}); JSON object keys are strings"
                if _unpaired(key):
                    return f"{at}[{key!r}]", f"a key with {_unpaired(key)}"
                stack.append((child, f"{at}[{key!r}]", depth + 1))
        elif isinstance(item, (list, tuple)):
            stack.extend((child, f"{at}[{i}]", depth + 1) for i, child in reversed(list(enumerate(item))))
        else:
            return at, f"of type {type(item).__name__} ({_short(item)}), which is not a JSON value"
    return None


def check_json(value: Any, where: str, hint: str = "") -> None:
    """Refuse `value` unless JSON can carry it whole, naming `where` and the path inside it."""
    problem = json_problem(value)
    if problem is not None:
        at, what = problem
        raise InvalidRequestError(f"{where}{at} is {what}; it cannot be sent as JSON{hint}")


def _unpaired(text: str) -> str | None:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        return f"a lone UTF-16 surrogate {exc.object[exc.start:exc.end]!r}"
    return None


def _short(value: object) -> str:
    try:
        text = repr(value)
    except Exception:  # a hostile __repr__
        text = object.__repr__(value)
    return text if len(text) <= 60 else text[:57] + "..."


def items_of(value: object, keyword: str, takes: str) -> list[Any]:
    """The items of a list-like argument; a string, a mapping, a single model or function, or a
    non-iterable is refused (`tools=5`, `tools=my_function`, `tools={"name": ...}`)."""
    if isinstance(value, (str, bytes, bytearray, Mapping, BaseModel)) or callable(value) \
            or not isinstance(value, Iterable):
        single = isinstance(value, (Mapping, BaseModel)) or callable(value)
        raise InvalidRequestError(f"{keyword}= takes a list of {takes}, got {type(value).__name__}"
                                  + (": wrap the one you mean in a list" if single else ""))
    return list(value)


def each(items: Sequence[Any], keyword: str, build: Callable[[Any], Any]) -> list[Any]:
    """`build` of each item, a refusal naming the item's index (`tools[2]: ...`)."""
    built = []
    for index, item in enumerate(items):
        try:
            built.append(build(item))
        except InvalidRequestError as exc:
            raise InvalidRequestError(f"{keyword}[{index}]: {exc.message}") from exc
    return built


_HEADER_NAME = re.compile(r"^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")  # an RFC 9110 token
# Headers llmclient owns on every provider: the body's framing, and the usual key headers (the
# provider's own key header is refused when the request is prepared for it).
OWN_HEADERS = frozenset({"content-type", "content-length", "host", "transfer-encoding", "authorization",
                         "proxy-authorization", "x-api-key", "api-key", "x-goog-api-key"})


def headers(given: Mapping[str, str] | None) -> dict[str, str]:
    """`extra_headers=` checked: one-line values, valid names each given once, none llmclient sets."""
    if given is None:
        return {}
    if not isinstance(given, Mapping):
        raise InvalidRequestError(f"extra_headers takes a mapping of header names to values, got {type(given).__name__}")
    for name, value in given.items():
        if not isinstance(name, str) or not _HEADER_NAME.match(name):
            raise InvalidRequestError(f"extra_headers: {name!r} is not a header name (letters, digits and -)")
        if not isinstance(value, str) or any(c in value for c in "\r\n\0"):
            raise InvalidRequestError(f"extra_headers[{name!r}] must be a one-line string, got {value!r}")
    lowered = [name.lower() for name in given]
    twice = sorted({name for name in lowered if lowered.count(name) > 1})
    if twice:
        raise InvalidRequestError(f"extra_headers names {', '.join(twice)} more than once (header names ignore case)")
    owned = sorted(set(lowered) & OWN_HEADERS)
    if owned:
        raise InvalidRequestError(f"extra_headers may not set {', '.join(owned)}: llmclient sets them (the key comes "
                                  f"from api_key= or the provider's environment variable)")
    return dict(zip(lowered, given.values()))


def stop_sequences(stop: str | Sequence[str] | None) -> list[str] | None:
    if stop is None:
        return None
    sequences = [stop] if isinstance(stop, str) else stop
    if not isinstance(sequences, Sequence) or not sequences or not all(isinstance(s, str) and s for s in sequences):
        raise InvalidRequestError(f"stop must be a non-empty string or a list of them, got {stop!r}")
    return list(sequences)
