"""The local telemetry store: one JSON line per call, in day folders, written off the call's thread.

    <dir>/                       LLM_TELEMETRY_DIR, default ./.llm-telemetry
      summary.json               rolling totals per day (all processes), rewritten atomically
      2026-12-04/                one folder per UTC day
        telemetry.jsonl          one record per call (`record.py` documents the fields)
        telemetry.<time>.jsonl   earlier segments of the day (rotation)
        prompts.jsonl            only with LLM_STORE_PROMPTS=true
        responses.jsonl          only with LLM_STORE_RESPONSES=true

Settings, read from the environment when the store first writes (or given to `configure`):
LLM_TELEMETRY_STORAGE_ENABLED (default true), LLM_TELEMETRY_DIR, LLM_STORE_PROMPTS and
LLM_STORE_RESPONSES (default false), LLM_RETENTION_DAYS (default 30: older day folders are
deleted), LLM_STORAGE_MAX_SIZE_MB (default 100: the whole store; a day's file is rotated into a
segment at a tenth of it, and the oldest days, then the oldest segments, are deleted to stay under).
An invalid value warns once and its default is used.

How it stays out of the call's way: a finished call takes the few values of its response its
record needs (`record.Finished`; the response itself, which the garbage collector would walk while
it waits, is let go) and puts them on a queue (no I/O, no hashing, no JSON); one daemon thread per
process builds the lines and appends them. (Measured and dropped: taking the values as `marshal`
bytes instead, so that nothing waiting is walked by the collector, saved its full collections but
cost the call's thread more than they did, mostly the request's JSON for prompt_hash.) That thread's CPU time is paid by the process's calls
too (they share the GIL), so the lines are built lean: about 30 us a record on the 2-core machine of
`benchmarks/telemetry_overhead.py`, where a loopback call costs about 1.2 ms. Each file is
opened with O_APPEND and every batch of lines is one `write` under the file's flock, so lines from
many threads and processes never interleave. A write cut short (a full disk) is taken back; a file
found ending mid-line (a writer killed mid-write) gets that line ended before the next batch, so a
torn record never swallows the next one. The writer takes a record as soon as it is queued, but
takes at most one batch per LINGER (50 ms): records that come faster wait and are written together
(waking the writer for each would cost back-to-back calls more than the writing). So a process
killed with SIGKILL loses only the records still on its queue: its in-flight one, or those of the
last 50 ms when calls end faster than that. Records are written at exit (as long as the writer makes
progress), in multiprocessing's forked children too. The summary counts the records written; it is
merged into summary.json on `flush()`, at close and with the minutely upkeep.
A directory that cannot be written (read-only, full disk) costs the records written meanwhile (it is
tried again every 30 s) and one `TelemetryWarning`; calls never fail or wait for it, and a warning
that the warnings filter turns into an error is logged, not raised.
"""

from __future__ import annotations

import atexit
import errno
import logging
import math
import os
import queue
import sys
import threading
import time
import warnings
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient.errors import TelemetryWarning
from llmclient.telemetry import record as records

if sys.platform != "win32":
    import fcntl

if TYPE_CHECKING:
    from collections.abc import Mapping

    from llmclient.telemetry import upkeep
    from llmclient.telemetry.observe import Observation

log = logging.getLogger("llmclient")
MAX_QUEUED = 100_000  # records waiting for the writer; beyond it they are dropped and counted
HOUSEKEEPING_EVERY = 60.0  # seconds between retention / size checks and summary merges
RETRY_AFTER = 30.0  # seconds a directory that failed is left alone before it is tried again
LINGER = 0.05  # seconds: at most one batch per LINGER; records that come faster wait to be written together
BATCH = 1024  # records in one batch at most
FILES = {"telemetry": "telemetry.jsonl", "prompt": "prompts.jsonl", "response": "responses.jsonl"}


@dataclass(frozen=True)
class Settings:
    directory: Path = Path(".llm-telemetry")
    enabled: bool = True
    store_prompts: bool = False
    store_responses: bool = False
    retention_days: int = 30
    max_size_mb: float = 100.0

    @classmethod
    def from_env(cls, env: Mapping[str, str] | None = None) -> Settings:
        """The settings from LLM_* variables; an invalid value warns once and its default is used."""
        env = os.environ if env is None else env
        default = cls()
        # Absolute once: a program that changes directory later keeps writing to one store.
        return cls(directory=Path(env.get("LLM_TELEMETRY_DIR") or default.directory).absolute(),
                   enabled=_flag(env, "LLM_TELEMETRY_STORAGE_ENABLED", default.enabled),
                   store_prompts=_flag(env, "LLM_STORE_PROMPTS", default.store_prompts),
                   store_responses=_flag(env, "LLM_STORE_RESPONSES", default.store_responses),
                   retention_days=int(_number(env, "LLM_RETENTION_DAYS", default.retention_days, whole=True)),
                   max_size_mb=_number(env, "LLM_STORAGE_MAX_SIZE_MB", default.max_size_mb, whole=False))

    @property
    def max_bytes(self) -> int:
        return int(self.max_size_mb * 1024 * 1024)

    @property
    def segment_bytes(self) -> int:
        return max(self.max_bytes // 10, 64 * 1024)


def _flag(env: Mapping[str, str], name: str, default: bool) -> bool:
    value = env.get(name, "").strip().lower()
    if not value:
        return default
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    _warn_once(f"{name}={env[name]!r} is not true or false; using {str(default).lower()}")
    return default


def _number(env: Mapping[str, str], name: str, default: float, *, whole: bool) -> float:
    value = env.get(name, "").strip()
    if not value:
        return default
    try:
        number = int(value) if whole else float(value)
        if number > 0 and math.isfinite(number):
            return number
    except ValueError:
        pass
    _warn_once(f"{name}={value!r} is not a {'whole ' if whole else ''}number above 0; using {default:g}")
    return default


_warned: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _warned:
        _warned.add(message)
        _warn(message)


def _warn(message: str) -> None:
    log.warning("telemetry: %s", message)
    try:
        warnings.warn(TelemetryWarning(f"llmclient telemetry: {message}"), stacklevel=3)
    except Exception:  # noqa: BLE001, S110 - an error by the warnings filter: logged above; no call fails of it
        pass


class _Stop(threading.Event):
    """Put on the queue by `Store.close`: the writer writes what came before, closes its files and ends."""


class Store:
    """The writer of one process for one directory."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.written = 0  # records appended by this process
        self.dropped = 0  # records lost (queue full, directory not writable)
        self._queue: queue.SimpleQueue[Any] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._start_lock = threading.Lock()
        self._closed = False
        self._fds: dict[tuple[str, str], tuple[int, int]] = {}  # (day, file) -> (fd, inode)
        self._tally: upkeep.Tally | None = None  # what the records written add to summary.json, not merged yet
        self._failing_since: float | None = None  # when writing last failed; None while it works
        self._warned = False  # the directory's trouble was reported (once, until writing works again)
        self._next_housekeeping = 0.0
        self._unkept = 0  # bytes appended since the last housekeeping
        self._last_batch = 0.0  # when the writer last took a batch (monotonic)
        self._hurry = threading.Event()  # set by flush and close: no lingering

    def submit(self, observation: Observation) -> None:
        if self._closed:  # replaced by `configure` while the call ran: the store now in place takes it
            if _store is not None and _store is not self:
                submit(observation)
            return
        if self._queue.qsize() >= MAX_QUEUED:  # a writer that cannot keep up must not grow memory without end
            self.dropped += 1
            _warn_once(f"more than {MAX_QUEUED} records wait for the writer; new records are dropped")
            return
        settings = self.settings
        try:
            finished = records.Finished(observation, store_prompts=settings.store_prompts,
                                        store_responses=settings.store_responses)
        except Exception:  # a record that cannot be built costs that record, never the call
            self.dropped += 1
            log.warning("telemetry: a call's record could not be built", exc_info=True)
            return
        self._queue.put(finished)
        if self._thread is None:
            self._start()

    def flush(self, timeout: float = 5.0) -> bool:
        """Wait until every record submitted so far is written and the summary merged."""
        done = self._signal(threading.Event())
        return done is None or done.wait(timeout)

    def drain(self, stall: float = 2.0, limit: float = 60.0) -> bool:
        """`flush` for the process's exit: wait while the writer makes progress (at most `limit`
        seconds); give up after `stall` seconds without any."""
        done, deadline, seen = self._signal(threading.Event()), time.monotonic() + limit, self.written + self.dropped
        while done is not None and not done.wait(stall):
            if self.written + self.dropped == seen or time.monotonic() > deadline:
                return False
            seen = self.written + self.dropped
        return True

    def close(self, timeout: float = 5.0) -> bool:
        """Write what was submitted, merge the summary, close the files and end the writer thread;
        records submitted later go to the process's current store."""
        self._closed = True
        done = self._signal(_Stop())
        return done is None or done.wait(timeout)

    def _signal(self, event: threading.Event) -> threading.Event | None:
        """`event`, set once the writer has dealt with everything queued before it; None: no writer."""
        if self._thread is None or not self._thread.is_alive():
            return None
        self._queue.put(event)
        self._hurry.set()  # no lingering
        return event

    def _start(self) -> None:
        global _exit_hooked
        with self._start_lock:
            if self._thread is None:  # set once running: a flush meanwhile must not think there is no writer
                thread = threading.Thread(target=self._run, name="llmclient-telemetry", daemon=True)
                thread.start()
                self._thread = thread
        mp_util = sys.modules.get("multiprocessing.util")
        if mp_util is not None and _exit_hooked != os.getpid():  # a forked multiprocessing child ends in
            _exit_hooked = os.getpid()  # os._exit, without atexit: its exit function runs finalizers
            mp_util.Finalize(None, _at_exit, exitpriority=100)

    # --- the writer thread --------------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            batch = [self._queue.get()]
            wait = self._last_batch + LINGER - time.monotonic()
            if wait > 0:  # records come fast: let them gather (waking this thread per record costs the calls more)
                self._hurry.wait(wait)
            self._hurry.clear()
            while len(batch) < BATCH:
                try:
                    batch.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            self._last_batch = 0.0 if len(batch) == BATCH else time.monotonic()  # a backlog: no lingering
            signals = [item for item in batch if isinstance(item, threading.Event)]
            calls = [item for item in batch if not isinstance(item, threading.Event)]
            stop = any(isinstance(item, _Stop) for item in signals)
            try:  # never let the writer die: the next records may go through
                if calls:
                    self._write(calls)
                if (stop or time.monotonic() >= self._next_housekeeping
                        or self._unkept >= self.settings.segment_bytes // 2):  # rotate before a segment is much over
                    self._housekeeping()
                elif signals and self._tally:  # a flush: the summary counts what was written (retention can wait)
                    self._merge_summary()
            except Exception as exc:  # noqa: BLE001
                self._trouble("cannot rotate, prune or summarise", exc)
            if stop:
                self.close_files()
            for item in signals:
                item.set()
            if stop:
                return

    def _write(self, calls: list[records.Finished]) -> None:
        from llmclient.telemetry import upkeep

        if self._failing_since is not None and time.monotonic() - self._failing_since < RETRY_AFTER:
            self.dropped += len(calls)
            return
        out: dict[tuple[str, str], list[bytes]] = {}
        summaries: dict[str, list[records.Summary]] = {}
        cwd = os.getcwd()  # once a batch: a syscall, and the records' project and branch come from it
        for call in calls:
            try:
                lines = records.lines(call, cwd)
            except Exception:  # a record that cannot be built costs that record, not the directory
                self.dropped += 1
                log.warning("telemetry: a call's record could not be built", exc_info=True)
                _warn_once("a call's record could not be built and was dropped (the llmclient log has why)")
                continue
            day = lines.day
            texts = out.get((day, "telemetry"))
            if texts is None:
                texts = out[(day, "telemetry")] = []
                summaries[day] = []
            texts.append(lines.telemetry)
            summaries[day].append(lines.summary)
            if lines.prompt is not None:
                out.setdefault((day, "prompt"), []).append(lines.prompt)
            if lines.response is not None:
                out.setdefault((day, "response"), []).append(lines.response)

        unwritten = sum(map(len, summaries.values()))
        tally = self._tally if self._tally is not None else upkeep.Tally()
        self._tally = tally
        try:
            for (day, kind), texts in out.items():  # a day's telemetry comes before its prompts and responses
                data = _unbreakable(b"\n".join(texts) + b"\n")
                _append(self._fd(day, kind), data)
                self._unkept += len(data)
                if kind == "telemetry":
                    tally.add(day, summaries[day])
                    self.written += len(texts)
                    unwritten -= len(texts)
        except Exception as exc:  # noqa: BLE001
            self.dropped += unwritten
            self._failing_since = time.monotonic()
            self.close_files()
            self._trouble("cannot write to", exc, "their records are dropped until it can be written")
            return
        if self._failing_since is not None:
            log.info("telemetry: writing to %s again", self.settings.directory)
            self._failing_since, self._warned = None, False

    def _fd(self, day: str, kind: str) -> int:
        path = self.settings.directory / day / FILES[kind]
        if (day, kind) in self._fds:
            fd, inode = self._fds.pop((day, kind))
            try:
                if os.stat(path).st_ino == inode:
                    self._fds[(day, kind)] = fd, inode
                    return fd
            except OSError:  # rotated or deleted by another process: reopen
                pass
            os.close(fd)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
        self._fds[(day, kind)] = fd, os.fstat(fd).st_ino
        return fd

    def _trouble(self, what: str, exc: Exception, then: str = "") -> None:
        """One warning for the directory's trouble, until writing works again."""
        if not self._warned:
            self._warned = True
            _warn(f"{what} {self.settings.directory} ({type(exc).__name__}: {exc}); calls go on"
                  + (f", {then}" if then else ""))

    def _housekeeping(self) -> None:
        from llmclient.telemetry import upkeep

        self._next_housekeeping = time.monotonic() + HOUSEKEEPING_EVERY
        self._unkept = 0
        directory = self.settings.directory
        if not directory.is_dir():
            return
        with upkeep.locked(directory):
            upkeep.apply_retention(directory, self.settings.retention_days)
            upkeep.enforce_size(directory, self.settings.max_bytes, self.settings.segment_bytes)
            if self._tally:
                upkeep.merge_summary(directory, self._tally.increments(), self.settings.retention_days)
                self._tally = None

    def _merge_summary(self) -> None:
        from llmclient.telemetry import upkeep

        directory = self.settings.directory
        if self._tally and directory.is_dir():
            with upkeep.locked(directory):
                upkeep.merge_summary(directory, self._tally.increments(), self.settings.retention_days)
            self._tally = None

    def close_files(self) -> None:
        for fd, _ in self._fds.values():
            try:
                os.close(fd)
            except OSError:
                pass
        self._fds.clear()


def _unbreakable(data: bytes) -> bytes:
    """JSON lines that stay one line each for readers that also end lines at U+0085, U+2028 and
    U+2029 (Python's str.splitlines among them): JSON encoders write those three as they are, and
    they can only stand inside a JSON string, where their escapes mean the same."""
    return data.replace(b"\xc2\x85", b"\\u0085").replace(b"\xe2\x80\xa8", b"\\u2028").replace(b"\xe2\x80\xa9", b"\\u2029")


def _append(fd: int, data: bytes) -> None:
    """All of `data` at the end of the file, on a line of its own, under the file's flock (every
    writer takes it, so the end seen is not another writer's half-done write). A write cut short (a
    full disk) is taken back, and OSError raised."""
    if sys.platform != "win32":
        fcntl.flock(fd, fcntl.LOCK_EX)
    try:
        size = os.fstat(fd).st_size
        if size and sys.platform != "win32" and os.pread(fd, 1, size - 1) != b"\n":  # a writer died mid-write
            data = b"\n" + data
        written = os.write(fd, data)
        if written < len(data):
            try:
                os.ftruncate(fd, size)
            except OSError:
                os.write(fd, b"\n")  # nothing else could be done: the next batch ends the line (above)
            raise OSError(errno.ENOSPC, f"only {written} of {len(data)} bytes could be written")
    finally:
        if sys.platform != "win32":
            fcntl.flock(fd, fcntl.LOCK_UN)


# --- the process's store -----------------------------------------------------------------------------

_store: Store | None = None
_lock = threading.Lock()
_exit_hooked: int | None = None  # the pid whose multiprocessing finalizer writes the records at exit


def current() -> Store:
    global _store
    if _store is None:
        with _lock:
            if _store is None:
                _store = Store(Settings.from_env())
    return _store


def submit(observation: Observation) -> None:
    store = _store or current()
    if store.settings.enabled:
        store.submit(observation)


def configure(**changes: Any) -> Store:
    """Replace the process's store: the environment's settings with `changes` (fields of
    `Settings`) on top. The old store writes the records submitted to it, then stops."""
    global _store
    if "directory" in changes:
        changes["directory"] = Path(changes["directory"]).absolute()
    store = Store(replace(Settings.from_env(), **changes))
    with _lock:
        old, _store = _store, store
    if old is not None:
        old.close()
    return store


def flush(timeout: float = 5.0) -> bool:
    """Write every record submitted so far (and merge the summary); False if `timeout` passed first."""
    return _store.flush(timeout) if _store is not None else True


def _after_fork_in_child() -> None:
    global _store, _lock
    _lock = threading.Lock()  # a thread of the parent may have held it at the fork
    if _store is not None:  # the writer thread does not survive a fork; the parent writes its own records
        _store = Store(_store.settings)


def _at_exit() -> None:
    if _store is not None:
        _store.drain()


os.register_at_fork(after_in_child=_after_fork_in_child)
atexit.register(_at_exit)
