"""`llmclient serve --replay DIR`: answers from recorded cassettes, with no network and no keys.

DIR has the repository's layout, `DIR/<provider>/*.yaml` (vcrpy cassettes). A request runs through
`Client` as any other; the provider its model resolves to picks `DIR/<provider>/`, and llmclient's
HTTP request (encoded as it would be sent) is answered by a recorded interaction whose request
matches it as the test suite matches (`llmclient.cassette_match`: method, host, lenient path,
query, and the body compared as parsed JSON). The recorded answer is decoded by llmclient like
any replay, so the client gets the same usage, cost and errors.

When several recordings match (the same request recorded for several scenarios): a whole 2xx
answer (JSON that is no error; a stream that ends with [DONE] and holds no error event) before
an error answer, then the first cassette by file name. The request header `x-llmclient-cassette:
<name>` (a file stem, e.g. `error_rate_limit`) takes only that cassette's recordings, played in
their recorded order (a retried request gets the next one: a 429 then the 200), starting over
after the last. When nothing matches, the answer is a 404 `no_recorded_interaction` error naming
the closest recorded request (its cassette and interaction) and the first field where it differs.

The answers are given through llmclient's test hook (`transport.interceptor`), for the requests
of this server's calls only (a context variable marks them), so the rest of the process is left
alone; while the server runs, `llmclient.cassettes.replaying()` is true (no key is needed).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx

from llmclient import cassettes, transport
from llmclient.cassette_match import match_body, match_path, match_query
from llmclient.errors import ConfigurationError, ReplayMismatchError

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec

CASSETTE_HEADER = "x-llmclient-cassette"
_ACTIVE: ContextVar[tuple[ReplayIndex, str | None] | None] = ContextVar("llmclient_serve_replay", default=None)
_previous: transport.Interceptor | None = None
_DROPPED_HEADERS = frozenset({"content-length", "transfer-encoding"})


@dataclass
class Recorded:
    path: Path
    index: int
    request: Any  # vcr.request.Request
    response: dict[str, Any]

    @property
    def label(self) -> str:
        return f"{self.path} (interaction {self.index})"

    def healthy(self) -> bool:
        """A whole 2xx answer: JSON that is not an error, or a stream ending with [DONE] without an error event."""
        if not 200 <= int(self.response["status"]["code"]) < 300:
            return False
        body = _body_bytes(self.response)
        if b"data:" in body[:64]:
            return body.rstrip().endswith(b"data: [DONE]") and b'"error"' not in body
        try:
            parsed = json.loads(body)
        except ValueError:
            return False
        return not (isinstance(parsed, dict) and "error" in parsed)


class ReplayIndex:
    """The cassettes under one directory, read on first use per provider."""

    def __init__(self, root: Path) -> None:
        if not root.is_dir():
            raise ConfigurationError(f"--replay {root}: no such directory (expected {root}/<provider>/*.yaml cassettes)")
        self.root = root
        self._lock = threading.Lock()
        self._loaded: dict[str, list[Recorded]] = {}
        self._played: dict[Path, set[int]] = {}

    def activate(self, cassette: str | None = None) -> None:
        """Answer the calls of the current request (task) from here; `cassette` pins one file."""
        _ACTIVE.set((self, cassette))

    def recorded(self, provider: str) -> list[Recorded]:
        with self._lock:
            if provider not in self._loaded:
                self._loaded[provider] = _load(self.root / provider)
            return self._loaded[provider]

    def models(self) -> list[str]:
        found: list[str] = []
        for folder in sorted(p for p in self.root.iterdir() if p.is_dir()):
            for item in self.recorded(folder.name):
                model = _model_of(item.request)
                if model and f"{folder.name}/{model}" not in found:
                    found.append(f"{folder.name}/{model}")
        return found

    def answer(self, request: httpx.Request, spec: ProviderSpec, cassette: str | None) -> httpx.Response:
        sent = _as_vcr(request)
        recorded = self.recorded(spec.name)
        if cassette is not None:
            recorded = [item for item in recorded if item.path.stem == cassette or item.path.name == cassette]
            if not recorded:
                raise ReplayMismatchError(f"{CASSETTE_HEADER}: no cassette {cassette!r} under {self.root / spec.name}",
                                          provider=spec.name)
        matching = [item for item in recorded if _why_not(sent, item.request) is None]
        if not matching:
            raise self._mismatch(sent, recorded, spec)
        if cassette is None:
            chosen = min(matching, key=lambda item: (not item.healthy(), str(item.path), item.index))
        else:
            with self._lock:
                played = self._played.setdefault(matching[0].path, set())
                fresh = [item for item in matching if item.index not in played]
                if not fresh:
                    played.difference_update(item.index for item in matching)
                    fresh = matching
                chosen = fresh[0]
                played.add(chosen.index)
        return _response(chosen.response, request)

    def _mismatch(self, sent: Any, recorded: list[Recorded], spec: ProviderSpec) -> ReplayMismatchError:
        where = f"{sent.method} {sent.uri.split('?', 1)[0]}"
        if not recorded:
            return ReplayMismatchError(f"no recorded interaction for {where}: no cassettes under {self.root / spec.name}",
                                       provider=spec.name)
        same_endpoint = [item for item in recorded if _endpoint_differs(sent, item.request) is None]
        pool = same_endpoint or recorded
        closest = min(pool, key=lambda item: (_distance(item.request, sent), str(item.path), item.index))
        reason = _why_not(sent, closest.request) or "?"
        return ReplayMismatchError(f"no recorded interaction for {where} under {self.root / spec.name}; the closest "
                                   f"recorded request is {closest.label}, which differs at {reason}", provider=spec.name)


def _load(folder: Path) -> list[Recorded]:
    from vcr.serialize import deserialize
    from vcr.serializers import yamlserializer

    found: list[Recorded] = []
    for path in sorted(folder.glob("*.yaml")) if folder.is_dir() else []:
        try:
            loaded = deserialize(path.read_text(encoding="utf-8"), yamlserializer)
        except Exception as exc:
            raise ConfigurationError(f"{path} is not a readable vcrpy cassette ({type(exc).__name__}: {exc})") from exc
        requests, responses = loaded[0], loaded[1]
        found += [Recorded(path, i, req, resp) for i, (req, resp) in enumerate(zip(requests, responses))]
    return found


def _as_vcr(request: httpx.Request) -> Any:
    from vcr.request import Request

    return Request(request.method, str(request.url), request.read(), dict(request.headers))


def _endpoint_differs(sent: Any, recorded: Any) -> str | None:
    if sent.method != recorded.method:
        return f"method: recorded {recorded.method}, sent {sent.method}"
    if sent.host != recorded.host:
        return f"host: recorded {recorded.host}, sent {sent.host}"
    for matcher in (match_path, match_query):
        try:
            matcher(sent, recorded)
        except AssertionError as exc:
            return str(exc)
    return None


def _why_not(sent: Any, recorded: Any) -> str | None:
    """Why `recorded` does not answer `sent` (the first difference), or None when it does."""
    differs = _endpoint_differs(sent, recorded)
    if differs is not None:
        return differs
    try:
        match_body(sent, recorded)
    except AssertionError as exc:
        return str(exc) or "body: the bodies differ"
    return None


def _json_of(request: Any) -> Any:
    body = request.body or b""
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return body


def _distance(recorded: Any, sent: Any) -> int:
    """How many values differ between two requests' bodies (a rough nearness, for the error)."""
    return _leaves_apart(_json_of(recorded), _json_of(sent))


def _leaves_apart(a: Any, b: Any) -> int:
    if isinstance(a, dict) and isinstance(b, dict):
        return sum(_leaves_apart(a.get(k), b.get(k)) if k in a and k in b else 1 for k in {*a, *b})
    if isinstance(a, list) and isinstance(b, list):
        return sum(_leaves_apart(x, y) for x, y in zip(a, b)) + abs(len(a) - len(b))
    return 0 if a == b else 1


_GEMINI_MODEL = re.compile(r"/models/([^:/]+)")


def _model_of(request: Any) -> str | None:
    body = _json_of(request)
    if isinstance(body, dict) and isinstance(body.get("model"), str):
        return str(body["model"])
    found = _GEMINI_MODEL.search(request.path)
    return found.group(1) if found else None


def _body_bytes(response: dict[str, Any]) -> bytes:
    body = (response.get("body") or {}).get("string") or b""
    return body.encode("utf-8") if isinstance(body, str) else bytes(body)


def _response(recorded: dict[str, Any], request: httpx.Request) -> httpx.Response:
    headers = [(name, value) for name, values in (recorded.get("headers") or {}).items()
               if name.lower() not in _DROPPED_HEADERS for value in (values if isinstance(values, list) else [values])]
    return httpx.Response(int(recorded["status"]["code"]), headers=headers, content=_body_bytes(recorded), request=request)


def _hook(request: httpx.Request, spec: ProviderSpec) -> httpx.Response | None:
    active = _ACTIVE.get()
    if active is None:  # not a replay server's call: whatever hook was there before answers
        return _previous(request, spec) if _previous is not None else None
    index, cassette = active
    return index.answer(request, spec, cassette)


def install() -> None:
    """Put the replay hook in front of llmclient's HTTP layer (once; it defers to the hook it replaced)."""
    global _previous
    if transport.interceptor is not _hook:
        _previous = transport.interceptor
        transport.interceptor = _hook


@asynccontextmanager
async def lifespan(app: Any) -> AsyncIterator[None]:
    install()
    with cassettes.replay_scope():  # no key is needed: nothing is sent
        yield
