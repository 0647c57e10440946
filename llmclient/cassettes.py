"""Record and replay provider traffic as vcrpy cassettes, safely.

    with use_cassette("cassettes/openai/text.yaml", mode="replay") as cassette:
        Client("openai/gpt-4o-mini").complete("Hi")
    cassette.assert_all_played()

Modes: `replay` (nothing reaches the network; an unmatched request raises ReplayMismatchError
naming the first field where it differs from the closest recorded one), `record` (every request
goes out and the cassette is rewritten with exactly what was recorded), `auto` (replay what the
cassette holds, record what it lacks). Requests match on method, host, a lenient path (a leading
`/beta` is dropped, `/v1alpha` reads as `/v1beta`), the query minus `beta` and key parameters, and the body
compared semantically: as parsed JSON (key order and spacing do not matter; every field does:
model, messages, tools, parameters), for every cassette, one interaction or many. A request body
over 256 KB is stored as its SHA-256 and size, and matched on them. `match="endpoint"` drops the
body comparison, for replaying a recording with a request other than the one recorded. Every
request the block sends is kept, as sent, in `CassetteSession.sent`. Recording scrubs keys from
headers, query strings and bodies; `scan_secrets` checks committed files.
"""

from __future__ import annotations

import functools
import re
import threading
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from llmclient.cassette_match import (
    ELIDE_OVER,
    SECRET_QUERY,
    elided_body,
    match_body,
    match_path,
    match_query,
    raw_body,
    secret_query,
)
from llmclient.errors import ConfigurationError, ReplayMismatchError

Mode = Literal["replay", "record", "auto"]
REPLAY_API_KEY = "replay-placeholder-key"
REDACTED = "REDACTED"

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
_open_cassettes = 0
# Every key llmclient sent while a cassette block was open: masked wherever it appears in what a
# cassette records or a session shows (headers of any name, URLs, bodies), whatever its format.
_keys_in_use: set[str] = set()
_PLACEHOLDER_KEYS = frozenset({"replay-placeholder-key", "no-key-needed"})


def remember_key(key: str) -> None:
    """Called for every key about to be sent (cheap when no cassette is open)."""
    if _open_cassettes and len(key) >= 8 and key not in _PLACEHOLDER_KEYS:
        with _depth_lock:
            _keys_in_use.add(key)


def secret_headers() -> frozenset[str]:
    """The header names that carry a secret: the usual ones and every registered provider's key header."""
    from llmclient.providers import REGISTRY

    return SECRET_HEADERS | {spec.key_header.lower() for spec in REGISTRY.values() if spec.key_header}


def scrubbed_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """`headers` with every secret one's value (by name, or holding a key in use) replaced by REDACTED."""
    names = secret_headers()
    return {str(name): REDACTED if str(name).lower() in names or _holds_key(str(value)) else str(value)
            for name, value in headers.items()}


def scrubbed_uri(uri: str) -> str:
    """`uri` with secret query values (by name, or holding a key in use) replaced by REDACTED."""
    parts = urlsplit(uri)
    if not parts.query and not _holds_key(uri):
        return uri
    names = secret_query()
    query = [(k, REDACTED if k in names or _holds_key(v) else v) for k, v in parse_qsl(parts.query, keep_blank_values=True)]
    return _mask_keys(urlunsplit(parts._replace(query=urlencode(query, safe=REDACTED))))


def holds_key_in_use(text: str) -> bool:
    """Whether `text` holds a key llmclient sent inside a cassette block."""
    return any(key in text for key in _keys_in_use)


_holds_key = holds_key_in_use


def _mask_keys(text: str) -> str:
    for key in _keys_in_use:
        text = text.replace(key, REDACTED)
    return text


def replaying() -> bool:
    """True while a replay-mode cassette is active (then no real API key is needed)."""
    return _replay_depth > 0


@dataclass(frozen=True)
class SentRequest:
    """A request as it left llmclient inside a cassette block, before matching: its secrets (key
    headers, key query parameters, the key in use anywhere) already REDACTED."""

    method: str
    uri: str
    headers: dict[str, str]
    body: bytes


@dataclass
class CassetteSession:
    """The cassette in use: what was sent through it, and, after the calls, whether everything
    recorded was played."""

    path: Path
    mode: Mode
    _cassette: Any
    sent: list[SentRequest] = field(default_factory=list)

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


Match = Literal["request", "endpoint"]
MATCHERS = {"lenient_path": match_path, "llm_query": match_query, "llm_body": match_body}
_RECORD_MODES = {"replay": "none", "record": "all", "auto": "new_episodes"}


def vcr_config(mode: Mode = "replay", *, match: Match = "request") -> dict[str, Any]:
    """vcrpy's settings for llmclient's scrubbing and matching (`vcr.VCR(**vcr_config())`, after
    `register_matchers`): what `use_cassette` and the pytest plugin's `vcr_config` both use."""
    if mode not in _RECORD_MODES:
        raise ConfigurationError(f"cassette mode must be 'replay', 'record' or 'auto', got {mode!r}")
    if match not in ("request", "endpoint"):
        raise ConfigurationError(f"cassette match must be 'request' or 'endpoint', got {match!r}")
    return {
        "record_mode": _RECORD_MODES[mode],
        "decode_compressed_response": True,
        "drop_unused_requests": mode == "record",
        "filter_headers": [(name, REDACTED) for name in sorted(secret_headers())],
        "filter_query_parameters": [(name, REDACTED) for name in sorted(secret_query())],
        # vcrpy also passes every incoming request through this hook before matching: in replay a
        # long body must stay whole so that it is matched against what the cassette holds.
        "before_record_request": _scrub_request if mode != "replay" else _scrub_request_keep_length,
        "before_record_response": _scrub_response,
        "match_on": ["method", "host", "lenient_path", "llm_query", *(["llm_body"] if match == "request" else [])],
    }


def register_matchers(recorder: Any) -> None:
    for name, matcher in MATCHERS.items():
        recorder.register_matcher(name, matcher)


@contextmanager
def use_cassette(path: str | Path, mode: Mode = "replay", *, strict: bool = False,
                 match: Match = "request") -> Iterator[CassetteSession]:
    """Replay or record the HTTP traffic of every llmclient call inside the block.

    `strict=True` also fails the block, when it ends without error, if an interaction was left
    unplayed. `match="endpoint"` matches on method, host, path and query only (see the module).
    """
    import vcr

    settings = vcr_config(mode, match=match)
    path = Path(path)
    if mode == "replay" and not path.is_file():
        raise ConfigurationError(f"no cassette at {path}: record it first with mode='record'")
    recorder = vcr.VCR(**settings)
    register_matchers(recorder)
    with _replay_scope(mode == "replay"), _open(), ExitStack() as stack:
        try:
            cassette = stack.enter_context(recorder.use_cassette(str(path)))
        except Exception as exc:  # yaml's, or a shape vcrpy cannot read
            raise ConfigurationError(
                f"{path} is not a readable vcrpy cassette ({type(exc).__name__}: {' '.join(str(exc).split())[:200]}): "
                f"fix its YAML (a mapping with `interactions:`, each a request and a response) or record it again"
            ) from exc
        sent = _capture_sent(cassette)
        session = CassetteSession(path, mode, cassette, sent)
        yield session
        if strict:
            session.assert_all_played()


def _capture_sent(cassette: Any) -> list[SentRequest]:
    """From now on, every request the cassette is asked about, once each, as it was sent (secrets
    masked). vcrpy hands the request it built from the real one to its filter several times (to
    match, to play, to record), and deep copies of it: the first sight of an unmarked request is
    the request as sent; marking it marks every copy made after."""
    sent: list[SentRequest] = []
    filtered = cassette._before_record_request  # vcrpy's filter chain; the one hook that sees every request

    def capture(request: Any) -> Any:
        if not getattr(request, _SEEN, False):
            setattr(request, _SEEN, True)
            sent.append(SentRequest(request.method, scrubbed_uri(request.uri), scrubbed_headers(request.headers),
                                    _mask_keys_in(raw_body(request))))
        return filtered(request)

    cassette._before_record_request = capture
    return sent


_SEEN = "_llmclient_seen"


def _mask_keys_in(body: bytes) -> bytes:
    for key in _keys_in_use:
        body = body.replace(key.encode("utf-8"), REDACTED.encode())
    return body


@contextmanager
def _open() -> Iterator[None]:
    global _open_cassettes
    with _depth_lock:
        _open_cassettes += 1
    try:
        yield
    finally:
        with _depth_lock:
            _open_cassettes -= 1


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


def mask_secrets(text: str) -> str:
    """`text` with every key in use and every key-like string replaced by REDACTED."""
    text = _mask_keys(text)
    for pattern in SECRET_PATTERNS.values():
        text = pattern.sub(lambda m: m.group(0) if _PLACEHOLDER.search(m.group(0)) else REDACTED, text)
    return text


def _scrub_request(request: Any) -> Any:
    request = _scrub_request_keep_length(request)
    if request.body and len(raw_body(request)) > ELIDE_OVER:  # the digest of the masked body, as replay hashes it
        request.body = elided_body(raw_body(request)).encode("utf-8")
    return request


def _scrub_request_keep_length(request: Any) -> Any:
    if request.body:
        request.body = _masked_body(raw_body(request), frozenset(_keys_in_use))
    for name, value in scrubbed_headers(request.headers).items():
        request.headers[name] = value
    request.uri = scrubbed_uri(request.uri)
    return request


@functools.lru_cache(maxsize=8)
def _masked_body(body: bytes, keys: frozenset[str]) -> bytes:  # keys: part of the cache key
    # vcrpy filters one request several times (to match, to play, to record): mask a body once.
    return mask_secrets(body.decode("utf-8", errors="replace")).encode("utf-8")


def _scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    headers = response.get("headers") or {}
    names = secret_headers()
    for name, values in list(headers.items()):
        if name.lower() in names or any(_holds_key(str(value)) for value in values or []):
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
