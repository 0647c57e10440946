"""Record and replay provider traffic as vcrpy cassettes, safely.

    with use_cassette("cassettes/openai/text.yaml", mode="replay") as cassette:
        Client("openai/gpt-4o-mini").complete("Hi")
    cassette.assert_all_played()

Modes: `replay` (nothing reaches the network; an unmatched request raises ReplayMismatchError),
`record` (every request goes out and the cassette is rewritten with exactly what was recorded),
`auto` (replay what the cassette holds, record what it lacks). Requests match on method, host,
a lenient path (a leading `/beta` is dropped, `/v1alpha` reads as `/v1beta`) and the query minus
`beta`/`key`; a cassette holding several calls to one endpoint also matches the body's
model/messages/tools/stream (not max_tokens or temperature), so a reordered test cannot get
another call's reply. A request body over 256 KB is stored as its SHA-256 and size, and matched
on them. Recording scrubs keys from headers, query strings and bodies; `scan_secrets`
checks committed files.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlsplit

from llmclient.errors import ConfigurationError, ReplayMismatchError

Mode = Literal["replay", "record", "auto"]
REPLAY_API_KEY = "replay-placeholder-key"
REDACTED = "REDACTED"
ELIDE_OVER = 256 * 1024
ELIDED_KEY = "llmclient_elided_body"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-goog-user-project",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)
SECRET_QUERY = frozenset({"key", "api_key", "token"})
_IGNORED_QUERY = frozenset({"beta"}) | SECRET_QUERY
_BODY_KEYS = ("model", "messages", "system", "tools", "stream", "contents", "systemInstruction")

# Key formats of the providers we talk to, and bearer tokens. A provider's error body may echo
# a key's ends ("Incorrect API key provided: sk-abc...WXYZ"): masked too.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "anthropic key": re.compile(r"sk-ant-[A-Za-z0-9_-]{16,}"),
    "openrouter key": re.compile(r"sk-or-v1-[A-Za-z0-9]{16,}"),
    "openai key": re.compile(r"sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"),
    "echoed key": re.compile(r"\b(?:sk|gsk|xai)[-_][A-Za-z0-9_-]{0,12}\*{2,}[A-Za-z0-9]{2,8}|sk-[A-Za-z0-9_-]{1,12}\.{3}[A-Za-z0-9]{2,8}"),
    "google key": re.compile(r"AIza[0-9A-Za-z_-]{30,}"),
    "groq key": re.compile(r"gsk_[A-Za-z0-9]{16,}"),
    "xai key": re.compile(r"xai-[A-Za-z0-9]{16,}"),
    "bearer token": re.compile(r"Bearer\s+(?!REDACTED)[A-Za-z0-9._~+/=-]{12,}"),
}
_PLACEHOLDER = re.compile(r"REDACTED|PLACEHOLDER|placeholder|test-key|sk-test|dummy|fake", re.IGNORECASE)

_depth_lock = threading.Lock()
_replay_depth = 0


def replaying() -> bool:
    """True while a replay-mode cassette is active (then no real API key is needed)."""
    return _replay_depth > 0


@dataclass
class CassetteSession:
    """The cassette in use; ask it, after the calls, whether everything recorded was played."""

    path: Path
    mode: Mode
    _cassette: Any

    @property
    def play_count(self) -> int:
        return int(self._cassette.play_count)

    @property
    def unplayed(self) -> list[str]:
        """"METHOD URL" of every recorded interaction that no request used."""
        played = self._cassette.play_counts
        return [f"{r.method} {r.uri}" for i, r in enumerate(self._cassette.requests) if not played[i]]

    @property
    def all_played(self) -> bool:
        return not self.unplayed

    def assert_all_played(self) -> None:
        if self.unplayed:
            raise ReplayMismatchError(
                f"{len(self.unplayed)} recorded interaction(s) in {self.path} were never requested: "
                + "; ".join(self.unplayed)
            )


@contextmanager
def use_cassette(path: str | Path, mode: Mode = "replay", *, strict: bool = False) -> Iterator[CassetteSession]:
    """Replay or record the HTTP traffic of every llmclient call inside the block.

    `strict=True` also fails the block, when it ends without error, if an interaction was left
    unplayed.
    """
    import vcr

    if mode not in ("replay", "record", "auto"):
        raise ConfigurationError(f"cassette mode must be 'replay', 'record' or 'auto', got {mode!r}")
    path = Path(path)
    if mode == "replay" and not path.is_file():
        raise ConfigurationError(f"no cassette at {path}: record it first with mode='record'")
    several_calls = {"to one endpoint": False}

    def llm_body(r1: Any, r2: Any) -> None:
        if _elided(r1) is not None or _elided(r2) is not None:  # stored as a digest: match on it, always
            assert _body_digest(r1) == _body_digest(r2), "the (long) request bodies differ"
            return
        if several_calls["to one endpoint"]:
            assert _body_key(r1) == _body_key(r2), "the request bodies differ (model/messages/tools/stream)"

    recorder = vcr.VCR(
        record_mode={"replay": "none", "record": "all", "auto": "new_episodes"}[mode],
        decode_compressed_response=True,
        drop_unused_requests=mode == "record",
        filter_headers=[(name, REDACTED) for name in sorted(SECRET_HEADERS)],
        filter_query_parameters=[(name, REDACTED) for name in sorted(SECRET_QUERY)],
        # vcrpy also passes every incoming request through this hook before matching: in replay a
        # long body must stay whole so that it is matched against what the cassette holds.
        before_record_request=_scrub_request if mode != "replay" else _scrub_request_keep_length,
        before_record_response=_scrub_response,
    )
    recorder.register_matcher("lenient_path", _match_path)
    recorder.register_matcher("llm_query", _match_query)
    recorder.register_matcher("llm_body", llm_body)
    with _replay_scope(mode == "replay"):
        with recorder.use_cassette(str(path), match_on=["method", "host", "lenient_path", "llm_query", "llm_body"]) as cassette:
            endpoints = Counter(_endpoint(request) for request in cassette.requests)
            several_calls["to one endpoint"] = any(count > 1 for count in endpoints.values())
            session = CassetteSession(path, mode, cassette)
            yield session
            if strict:
                session.assert_all_played()


@contextmanager
def _replay_scope(active: bool) -> Iterator[None]:
    global _replay_depth
    if not active:
        yield
        return
    with _depth_lock:
        _replay_depth += 1
    try:
        yield
    finally:
        with _depth_lock:
            _replay_depth -= 1


def _normal_path(path: str) -> str:
    if path.startswith("/beta/"):
        path = path[len("/beta") :]
    return path.replace("/v1alpha/", "/v1beta/", 1)


def _match_path(r1: Any, r2: Any) -> None:
    assert _normal_path(r1.path) == _normal_path(r2.path), f"{r1.path} != {r2.path}"


def _query_key(request: Any) -> list[tuple[str, str]]:
    return sorted((k, v) for k, v in parse_qsl(urlsplit(request.uri).query) if k not in _IGNORED_QUERY)


def _match_query(r1: Any, r2: Any) -> None:
    assert _query_key(r1) == _query_key(r2), "the query strings differ"


def _endpoint(request: Any) -> tuple[str, str, str]:
    return request.method, request.host, _normal_path(request.path)


def _body_key(request: Any) -> Any:
    body = request.body
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    try:
        data = json.loads(body or "null")
    except ValueError:
        return body
    if not isinstance(data, dict):
        return data
    return {key: data[key] for key in _BODY_KEYS if key in data}


def elided_body(body: bytes) -> str:
    """How a request body over `ELIDE_OVER` bytes is stored: its digest and size, not its text
    (a 3 MB context-window prompt or a 10 MB PDF does not belong in a cassette)."""
    return json.dumps({ELIDED_KEY: {"sha256": hashlib.sha256(body).hexdigest(), "bytes": len(body)}})


def _raw_body(request: Any) -> bytes:
    body = request.body or b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _elided(request: Any) -> dict[str, Any] | None:
    body = _raw_body(request)
    if not body.startswith(b'{"' + ELIDED_KEY.encode()):
        return None
    try:
        value = json.loads(body)[ELIDED_KEY]
    except (ValueError, KeyError, TypeError):
        return None
    return value if isinstance(value, dict) else None


def _body_digest(request: Any) -> tuple[str, int]:
    elided = _elided(request)
    if elided is not None:
        return str(elided.get("sha256")), int(elided.get("bytes", -1))
    body = _raw_body(request)
    return hashlib.sha256(body).hexdigest(), len(body)


def mask_secrets(text: str) -> str:
    """`text` with every key-like string replaced by REDACTED."""
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub(lambda m: m.group(0) if _PLACEHOLDER.search(m.group(0)) else REDACTED, text)
    return text


def _scrub_request(request: Any) -> Any:
    if request.body and len(_raw_body(request)) > ELIDE_OVER:
        request.body = elided_body(_raw_body(request)).encode("utf-8")
        return request
    return _scrub_request_keep_length(request)


def _scrub_request_keep_length(request: Any) -> Any:
    if request.body:
        body = request.body.decode("utf-8", errors="replace") if isinstance(request.body, bytes) else request.body
        request.body = mask_secrets(body).encode("utf-8")
    return request


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    for name in list(headers):
        if name.lower() in SECRET_HEADERS:
            headers[name] = [REDACTED]
    body = response.get("body") or {}
    raw = body.get("string")
    if isinstance(raw, bytes):
        try:
            raw = raw.decode("utf-8")
        except UnicodeDecodeError:
            return response
    if isinstance(raw, str):
        masked = mask_secrets(raw)
        body["string"] = masked.encode("utf-8") if isinstance(body.get("string"), bytes) else masked
    return response


@dataclass(frozen=True)
class SecretFinding:
    path: Path
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


_HEADER_LINE = re.compile(r"^\s*-?\s*['\"]?(" + "|".join(sorted(SECRET_HEADERS)) + r")['\"]?\s*:\s*(.*)$", re.IGNORECASE)
_QUERY_SECRET = re.compile(r"[?&](" + "|".join(sorted(SECRET_QUERY)) + r")=([^&\s'\"]+)")


def scan_secrets(path: str | Path) -> list[SecretFinding]:
    """Key-like strings, unredacted secret headers and key query parameters in a file or a tree."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    findings: list[SecretFinding] = []
    for file in files:
        lines = file.read_bytes().decode("utf-8", errors="replace").splitlines()
        for number, line in enumerate(lines, 1):
            findings += _line_findings(file, number, line, lines[number] if number < len(lines) else "")
    return findings


def _line_findings(file: Path, number: int, line: str, next_line: str) -> list[SecretFinding]:
    found = []
    for kind, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(line):
            if not _PLACEHOLDER.search(match.group(0)):
                found.append(SecretFinding(file, number, kind, _redacted_excerpt(match.group(0))))
    header = _HEADER_LINE.match(line)
    if header:
        # YAML puts a header's values either on the same line ([value]) or on the next ("- value").
        value = header.group(2).strip() or next_line.strip().lstrip("-").strip()
        value = value.strip("[]'\" ")
        if value and not _PLACEHOLDER.search(value):
            found.append(SecretFinding(file, number, f"{header.group(1).lower()} header", _redacted_excerpt(value)))
    for match in _QUERY_SECRET.finditer(line):
        if not _PLACEHOLDER.search(match.group(2)):
            found.append(SecretFinding(file, number, f"{match.group(1)}= query parameter", _redacted_excerpt(match.group(2))))
    return found


def _redacted_excerpt(secret: str) -> str:
    """Enough to find the secret, not enough to use it."""
    return secret[:6] + "..." if len(secret) > 6 else "..."
