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
headers, query strings and bodies (`llmclient.scrub`); `scan_secrets` checks committed files.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from llmclient.cassette_match import (
    ELIDE_OVER,
    elided_body,
    match_body,
    match_path,
    match_query,
    raw_body,
)
from llmclient.errors import ConfigurationError, ReplayMismatchError
from llmclient.secret_scan import SecretFinding, scan_secrets
from llmclient.scrub import (
    REDACTED,
    SECRET_HEADERS,
    SECRET_PATTERNS,
    add_key,
    holds_key_in_use,
    keys_in_use,
    mask_secret_bytes,
    mask_secrets,
    scrub_response,
    scrubbed_headers,
    scrubbed_uri,
    secret_headers,
)

__all__ = [  # with the secret-related names of llmclient.scrub, imported from here too
    "MATCHERS", "REDACTED", "REPLAY_API_KEY", "SECRET_HEADERS", "SECRET_PATTERNS", "CassetteSession", "Match", "Mode",
    "SecretFinding", "SentRequest", "holds_key_in_use", "mask_secrets", "register_matchers", "remember_key", "replaying",
    "scan_secrets", "scrubbed_headers", "scrubbed_uri", "secret_headers", "use_cassette", "vcr_config",
]

Mode = Literal["replay", "record", "auto"]
REPLAY_API_KEY = "replay-placeholder-key"

_depth_lock = threading.Lock()
_replay_depth = 0
_open_cassettes = 0


def remember_key(key: str) -> None:
    """Called for every key about to be sent (cheap when no cassette is open): inside a cassette
    block, the key is masked wherever it appears in what a cassette records or a session shows
    (headers of any name, URLs, bodies, in any encoding `llmclient.scrub` knows)."""
    if _open_cassettes:
        add_key(key)


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
        # Compressed bodies are decoded by the scrubber, leniently (vcrpy keeps one it fails to
        # decode, such as a gzip body cut short, compressed: a key inside it would go unmasked).
        "decode_compressed_response": False,
        "drop_unused_requests": mode == "record",
        # No vcrpy filter_headers / filter_query_parameters: they would hide the key from the hook
        # below, which masks those (by name and by value) and learns the key from them, to mask it
        # wherever the server echoes it (also where `remember_key` is not called: pytest-recording).
        # vcrpy also passes every incoming request through this hook before matching: in replay a
        # long body must stay whole so that it is matched against what the cassette holds.
        "before_record_request": _scrub_request if mode != "replay" else _scrub_request_keep_length,
        "before_record_response": scrub_response,
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
            headers = scrubbed_headers(request.headers)  # first: it learns credential headers' values
            sent.append(SentRequest(request.method, scrubbed_uri(request.uri), headers, mask_secret_bytes(raw_body(request))))
        return filtered(request)

    cassette._before_record_request = capture
    return sent


_SEEN = "_llmclient_seen"


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
def replay_scope() -> Iterator[None]:
    """Calls made inside this block are answered from recordings by the caller's own means (the
    replay server's interceptor): they need no key, as in `use_cassette(..., mode="replay")`."""
    with _replay_scope(True):
        yield


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


def _scrub_request(request: Any) -> Any:
    request = _scrub_request_keep_length(request)
    if request.body and len(raw_body(request)) > ELIDE_OVER:  # the digest of the masked body, as replay hashes it
        request.body = elided_body(raw_body(request)).encode("utf-8")
    return request


def _scrub_request_keep_length(request: Any) -> Any:
    for name, value in scrubbed_headers(request.headers).items():  # first: they learn the credentials sent
        request.headers[name] = value
    request.uri = scrubbed_uri(request.uri)
    if request.body:
        request.body = _masked_body(raw_body(request), keys_in_use())
    return request


@functools.lru_cache(maxsize=8)
def _masked_body(body: bytes, keys: frozenset[str]) -> bytes:  # keys: part of the cache key
    # vcrpy filters one request several times (to match, to play, to record): mask a body once.
    # Its bytes are masked in place, whatever their encoding (a file upload is not UTF-8).
    return mask_secret_bytes(body)
