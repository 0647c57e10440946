"""How a request finds its recorded interaction in a cassette, and what to say when none fits.

vcrpy calls each matcher with (the request sent, a recorded request); a matcher raises
AssertionError with the reason they differ. The body matcher compares the two bodies as parsed
JSON, so key order and spacing do not matter and every field does, and its reason names the first
field that differs (`messages[0].content: recorded 'What is the capital...', sent 'Write a poem'`).
A body over `ELIDE_OVER` bytes is stored as its digest and size and compared on them (then no
field can be named: "the bodies differ"). A key is never matched on, and so never shown.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from llmclient.errors import ReplayMismatchError

ELIDE_OVER = 256 * 1024
ELIDED_KEY = "llmclient_elided_body"
SECRET_QUERY = frozenset({"key", "api_key", "api-key", "access_token", "token", "sig"})
_SHOWN = 60  # characters of a differing value shown in a mismatch


def normal_path(path: str) -> str:
    if path.startswith("/beta/"):
        path = path[len("/beta") :]
    return path.replace("/v1alpha/", "/v1beta/", 1)


def match_path(r1: Any, r2: Any) -> None:
    assert normal_path(r1.path) == normal_path(r2.path), f"path: recorded {r2.path}, sent {r1.path}"


def secret_query() -> frozenset[str]:
    """The query parameters that carry a key: the usual ones and every registered provider's."""
    from llmclient.providers import REGISTRY

    return SECRET_QUERY | {spec.key_query for spec in REGISTRY.values() if spec.key_query}


def _query_key(request: Any) -> list[tuple[str, str]]:
    # A key is never matched on (replay sends a placeholder) and so never shown in a mismatch.
    ignored = secret_query() | {"beta"}
    return sorted((k, v) for k, v in parse_qsl(urlsplit(request.uri).query) if k not in ignored)


def match_query(r1: Any, r2: Any) -> None:
    assert _query_key(r1) == _query_key(r2), f"query: recorded {_query_key(r2)}, sent {_query_key(r1)}"


def match_body(r1: Any, r2: Any) -> None:
    """The semantic body matcher: `r1` is the request sent, `r2` the recorded one."""
    if elided(r1) is not None or elided(r2) is not None:  # stored as a digest: match on it
        assert body_digest(r1) == body_digest(r2), "body: the (long) request bodies differ (digest and size)"
        return
    sent, recorded = raw_body(r1), raw_body(r2)
    if sent == recorded:
        return
    try:
        sent_json, recorded_json = json.loads(sent or b"null"), json.loads(recorded or b"null")
    except ValueError:
        raise AssertionError(f"body: recorded {_short(recorded)}, sent {_short(sent)}") from None
    difference = first_difference(recorded_json, sent_json)
    assert difference is None, difference


def first_difference(recorded: Any, sent: Any, where: str = "body") -> str | None:
    """Where two JSON values first differ, in the recorded value's key order, or None."""
    if isinstance(recorded, dict) and isinstance(sent, dict):
        for key in [*recorded, *(k for k in sent if k not in recorded)]:
            at = f"{key}" if where == "body" else f"{where}.{key}"
            if key not in sent:
                return f"{at}: recorded {_short(recorded[key])}, not sent"
            if key not in recorded:
                return f"{at}: sent {_short(sent[key])}, not recorded"
            found = first_difference(recorded[key], sent[key], at)
            if found is not None:
                return found
        return None
    if isinstance(recorded, list) and isinstance(sent, list):
        for index, (was, now) in enumerate(zip(recorded, sent)):
            found = first_difference(was, now, f"{where}[{index}]")
            if found is not None:
                return found
        if len(recorded) != len(sent):
            return f"{where}: recorded {len(recorded)} item(s), sent {len(sent)}"
        return None
    if type(recorded) is not type(sent) and not (_number(recorded) and _number(sent)) or recorded != sent:
        return f"{where}: recorded {_short(recorded)}, sent {_short(sent)}"
    return None


def _number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _short(value: Any) -> str:
    if isinstance(value, bytes):
        value = value.decode("utf-8", errors="replace")
    text = repr(value) if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    return text if len(text) <= _SHOWN else text[: _SHOWN - 5] + "...'" if isinstance(value, str) else text[:_SHOWN] + "..."


def replay_mismatch(exc: BaseException, what: str, provider: str, model: str) -> ReplayMismatchError | None:
    """vcrpy's refusal of an unmatched request in a replay (`exc`, or one it wraps) as our typed
    error, naming what was asked and the first field where the closest recording differs; None
    when `exc` is something else."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        if type(current).__name__ == "CannotOverwriteExistingCassetteException":
            cassette = getattr(getattr(current, "cassette", None), "_path", "the cassette")
            return ReplayMismatchError(
                f"no recorded interaction for {what} in {cassette}{mismatch_detail(current)} (replay mode sends "
                f"nothing to the network; record it with mode='record' or fix the request)",
                provider=provider, model=model)
        seen.add(id(current))
        current = current.__cause__ or current.__context__
    return None


def mismatch_detail(exc: BaseException) -> str:
    """What vcrpy found closest to an unmatched request, as one sentence ("" when nothing came close)."""
    similar = getattr(exc, "similar_requests", None) or []
    if any(not failed for _request, _succeeded, failed in similar):
        return ("; a recorded interaction matches it but was already played: this request came more often than it "
                "was recorded (record the repeats too, or ask it once)")
    for _request, _succeeded, failed in similar[:1]:
        reasons = [str(message).strip() for _name, message in failed if str(message).strip()]
        if reasons:
            return f"; the closest recorded request differs at {reasons[0]}"
    return ""


def elided_body(body: bytes) -> str:
    """How a request body over `ELIDE_OVER` bytes is stored: its digest and size, not its text
    (a 3 MB context-window prompt or a 10 MB PDF does not belong in a cassette)."""
    return json.dumps({ELIDED_KEY: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}})


def raw_body(request: Any) -> bytes:
    body = request.body or b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def elided(request: Any) -> dict[str, Any] | None:
    body = raw_body(request)
    if not body.startswith(b'{"' + ELIDED_KEY.encode()):
        return None
    try:
        value = json.loads(body)[ELIDED_KEY]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def body_digest(request: Any) -> tuple[str, int]:
    found = elided(request)
    if found is not None:
        return str(found.get("sha256")), int(found.get("bytes", -1))
    body = raw_body(request)
    return hashlib.sha256(body).hexdigest(), len(body)
