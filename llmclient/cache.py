"""The response cache: a repeated request answered from disk instead of the provider.

    client = Client("openai/gpt-4o-mini", cache=".llm-cache")       # every call of this client
    client.complete("Capital of France?")                           # sent, and stored
    client.complete("Capital of France?").cached                    # True: no request was sent
    client.complete("...", cache=False)                             # this call goes to the provider
    client.complete("...", temperature=0.8, cache=True)             # a sampled call, cached because asked

What a hit is keyed on: the models the call may go to (its fallbacks too) with their base URLs, and the whole `Request`
(messages, files by the digest of their bytes, tools, tool_choice, max_tokens, temperature, top_p,
stop, response_format, provider options, extra headers), canonically, as a SHA-256 digest. The
API key is never part of it; nothing of the request is stored but that digest. A call and a
stream are cached apart: a stream is kept as the bytes of its events and replayed as a stream
(the same decoder reads them, so its events and final `Response` are the ones first given).

What is stored: only answers. An error is never cached; a stream is stored when it ends cleanly;
an answer the provider withheld (a content filter, a refusal) is not stored, nor one refused by
`validators=` (or JSON mode, or a schema): only the one accepted. A call with `temperature > 0` asks for a sample: it is cached only when asked, by
`cache=True` (or a cache) on the call itself, or `ResponseCache(..., sampled=True)`. A call that
leaves temperature unset is cached (the provider's default applies to every repeat alike).

A hit: `response.cached` is True, its `cost` is zero (`source="cache"`: nothing was billed), its
usage the original answer's (what the answer took; `billed_usage` is None); running totals
(`llmclient.track`) count it in `cache_hits`, not in tokens or dollars; the telemetry record has
`cache_hit: true`. No rate-limit permit is taken and no retry happens.

The store is SQLite in WAL mode, one file (`responses.sqlite3`) in the directory, one connection
per thread and process: safe for many threads and processes at once (writes are transactions,
readers never see a half-written entry). Entries older than `ttl` seconds are misses (and are
removed now and then). So is an entry this version cannot read (written by another version, or
changed by hand): a stored stream is decoded whole before it is replayed, so the caller's loop
never meets the error; the fresh answer replaces it. A directory that cannot be created or written, or a file that is not a
cache, gives one `CacheWarning`; the calls go on uncached.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import timedelta
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient.errors import CacheWarning, InvalidRequestError
from llmclient.files import check_on_disk
from llmclient.request import Request
from llmclient.types import Cost, FilePart, Response

if TYPE_CHECKING:
    import sqlite3

__all__ = ["HIT_COST", "ResponseCache", "StoredStream", "keepable", "request_key"]

FILE_NAME = "responses.sqlite3"
FORMAT = 1  # part of every key: entries of another format are never read as this one's
_PURGE_EVERY = 256  # stores between two removals of expired entries
_log = logging.getLogger("llmclient")

HIT_COST = Cost(input=Decimal(0), cache_read=Decimal(0), cache_write=Decimal(0), output=Decimal(0),
                tools=Decimal(0), total=Decimal(0), source="cache")
"""The cost of an answer served from the cache: nothing was billed."""

_SCHEMA = """CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    model TEXT NOT NULL,
    stored REAL NOT NULL,
    meta TEXT NOT NULL,
    body BLOB NOT NULL
)"""


@dataclass(frozen=True)
class StoredStream:
    """A stream's answer as it came: the model that answered ("<provider>/<model id>"), its
    content type, Date header and body (the events' bytes, decoded of any content-encoding)."""

    model: str
    content_type: str | None
    date: str | None
    body: bytes


class ResponseCache:
    """Answers kept in `directory` (created when first used), each for `ttl` seconds (a number or a
    `timedelta`; None: until removed). `sampled=True` also caches calls with `temperature > 0`
    without their asking. `hits` and `misses` count this object's lookups."""

    def __init__(self, directory: str | os.PathLike[str], *, ttl: float | timedelta | None = None,
                 sampled: bool = False) -> None:
        if isinstance(directory, ResponseCache) or not isinstance(directory, (str, os.PathLike)):
            raise InvalidRequestError(f"a cache directory is a path, got {type(directory).__name__}")
        seconds = ttl.total_seconds() if isinstance(ttl, timedelta) else ttl
        if seconds is not None and (isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds > 0):
            raise InvalidRequestError(f"ttl must be a number of seconds > 0, a timedelta, or None; got {ttl!r}")
        if not isinstance(sampled, bool):
            raise InvalidRequestError(f"sampled must be True or False, got {sampled!r}")
        self.directory = Path(directory).expanduser().absolute()  # a later chdir changes nothing
        self.ttl: float | None = None if seconds is None else float(seconds)
        self.sampled = sampled
        self.hits = 0
        self.misses = 0
        self._local = threading.local()
        self._lock = threading.Lock()
        self._off: str | None = None  # why this cache reads and writes nothing (warned once)
        self._warned: set[str] = set()  # "read", "write": the failures already warned about
        self._stores = 0

    def __repr__(self) -> str:
        return f"ResponseCache({str(self.directory)!r}, ttl={self.ttl!r}, sampled={self.sampled!r})"

    # --- answers ---------------------------------------------------------------------------------

    def get_response(self, key: str) -> Response | None:
        row = self._get(key, "complete")
        if row is None:
            return None
        try:
            return Response.model_validate_json(row[1])
        except ValueError:  # an entry this version cannot read: a miss (it is replaced when stored again)
            self.unreadable()
            return None

    def put_response(self, key: str, model: str, response: Response) -> None:
        body = response.model_copy(update={"retries": (), "rejected": ()}).model_dump_json().encode()
        self._put(key, "complete", model, {}, body)

    def get_stream(self, key: str) -> StoredStream | None:
        row = self._get(key, "stream")
        if row is None:
            return None
        try:
            meta = json.loads(row[0])
            return StoredStream(meta["model"], meta.get("content_type"), meta.get("date"), row[1])
        except (ValueError, TypeError, KeyError):  # not what this version writes: a miss, replaced when stored again
            self.unreadable()
            return None

    def unreadable(self) -> None:
        """The entry just counted as a hit could not be read: it was a miss."""
        with self._lock:
            self.hits -= 1
            self.misses += 1

    def put_stream(self, key: str, stored: StoredStream) -> None:
        meta = {"model": stored.model, "content_type": stored.content_type, "date": stored.date}
        self._put(key, "stream", stored.model, meta, stored.body)

    # --- upkeep ------------------------------------------------------------------------------------

    def __len__(self) -> int:
        connection = self._connection()
        if connection is None:
            return 0
        return int(connection.execute("SELECT count(*) FROM responses").fetchone()[0])

    def clear(self) -> None:
        """Remove every entry."""
        connection = self._connection()
        if connection is not None:
            with connection:
                connection.execute("DELETE FROM responses")

    def purge(self) -> int:
        """Remove the entries older than `ttl`; the number removed."""
        connection = self._connection()
        if connection is None or self.ttl is None:
            return 0
        with connection:
            return connection.execute("DELETE FROM responses WHERE stored < ?", (time.time() - self.ttl,)).rowcount

    # --- the store ---------------------------------------------------------------------------------

    def _get(self, key: str, kind: str) -> tuple[str, bytes] | None:
        import sqlite3  # not at import time: only a client with a cache pays for it

        connection = self._connection()
        row = None
        if connection is not None:
            try:
                row = connection.execute("SELECT stored, meta, body FROM responses WHERE key = ? AND kind = ?",
                                         (key, kind)).fetchone()
            except sqlite3.Error as exc:  # a miss; the next lookup tries again (a lock held past the timeout passes)
                self._warn_once("read", f"the response cache in {self.directory} could not be read ({exc}); "
                                        f"calls go on, uncached")
        hit = row is not None and (self.ttl is None or row[0] >= time.time() - self.ttl)
        with self._lock:
            if hit:
                self.hits += 1
            else:
                self.misses += 1
        return (row[1], bytes(row[2])) if hit and row is not None else None

    def _put(self, key: str, kind: str, model: str, meta: dict[str, Any], body: bytes) -> None:
        import sqlite3

        connection = self._connection()
        if connection is None:
            return
        try:
            with connection:
                connection.execute("INSERT OR REPLACE INTO responses (key, kind, model, stored, meta, body) "
                                   "VALUES (?, ?, ?, ?, ?, ?)", (key, kind, model, time.time(), json.dumps(meta), body))
            with self._lock:
                self._stores += 1
                purge = self.ttl is not None and self._stores % _PURGE_EVERY == 0
            if purge:
                self.purge()
        except sqlite3.Error as exc:  # warned once; the next answer is tried again (the disk may have room by then)
            self._warn_once("write", f"the response cache in {self.directory} cannot store answers ({exc}); "
                                     f"calls go on, their answers not cached")

    def _connection(self) -> sqlite3.Connection | None:
        """This thread's connection (a forked process opens its own); None when the cache is off."""
        import sqlite3

        if self._off is not None:
            return None
        local = self._local
        connection: sqlite3.Connection | None = getattr(local, "connection", None)
        if connection is not None and local.pid == os.getpid():
            return connection
        try:
            self.directory.mkdir(parents=True, exist_ok=True)
            connection = sqlite3.connect(self.directory / FILE_NAME, timeout=30.0, isolation_level=None)
            connection.execute("PRAGMA busy_timeout = 30000")  # writers from other processes wait, never fail
            connection.execute("PRAGMA journal_mode = WAL")  # readers never wait for a writer
            connection.execute("PRAGMA synchronous = NORMAL")
            connection.execute(_SCHEMA)
        except (sqlite3.Error, OSError) as exc:
            self._fail("cannot be used", exc)
            return None
        connection.isolation_level = "DEFERRED"  # `with connection:` is then one transaction
        local.connection, local.pid = connection, os.getpid()
        return connection

    def _fail(self, what: str, exc: BaseException) -> None:
        with self._lock:
            if self._off is not None:
                return
            self._off = str(exc)
        self._warn_once("open", f"the response cache in {self.directory} {what} ({type(exc).__name__}: {exc}); "
                                f"calls go on uncached")

    def _warn_once(self, kind: str, message: str) -> None:
        with self._lock:
            if self._warned:  # one warning per cache, whatever failed first
                return
            self._warned.add(kind)
        _log.warning("%s", message)
        warnings.warn(message, CacheWarning, stacklevel=2)


def request_key(kind: str, model: str, base_url: str, request: Request) -> str:
    """The digest a call is cached under: `kind` ("complete" or "stream"), the models and base URLs
    it may go to, and the request, canonically (JSON with sorted keys; file contents by digest).
    A file on disk is read here (after the checks its sending gets: a FIFO or a device is refused)."""
    dumped = request.model_dump(mode="json", exclude={"check_context"})
    for message, shown in zip(request.messages, dumped["messages"]):
        if isinstance(message.content, list):
            shown["content"] = [_file_digest(part, seen) if isinstance(part, FilePart) else seen
                                for part, seen in zip(message.content, shown["content"])]
    text = json.dumps({"format": FORMAT, "kind": kind, "model": model, "base_url": base_url, "request": dumped},
                      sort_keys=True, ensure_ascii=False, separators=(",", ":"), default=str)
    return hashlib.sha256(text.encode("utf-8", "surrogatepass")).hexdigest()


def _file_digest(part: FilePart, shown: dict[str, Any]) -> dict[str, Any]:
    """A file part with its content as a digest: inline data decoded and hashed, a file on disk
    read and hashed (up to the size it was attached at: the bytes that would be sent; a file
    edited since is another request). A file that cannot be read keeps its path: the send says why."""
    if part.url is not None:
        return shown
    digest = hashlib.sha256()
    if part.data is not None:  # the same bytes inline or on disk: the same request
        digest.update(base64.b64decode(part.data))
    else:
        check_on_disk(part)  # raises as the send would: nothing is read from a FIFO, a device, /proc
        try:
            with open(part.path or "", "rb") as handle:
                left = (part.size or 0) + 1  # one byte past the attached size: a file grown since differs
                while left > 0 and (chunk := handle.read(min(left, 1 << 20))):
                    digest.update(chunk)
                    left -= len(chunk)
        except OSError:
            return shown
    kept = {name: value for name, value in shown.items() if name not in ("data", "path", "resolved", "size")}
    return {**kept, "sha256": digest.hexdigest()}


def keepable(response: Response) -> bool:
    """Whether an answer is kept: not one the provider withheld (a content filter, a refusal), which
    a repeat might not be."""
    return response.finish_reason != "content_filter" and response.refusal is None

