"""A job on disk, so that results can be fetched (and a fetch resumed) from any process.

    $LLMCLIENT_BATCH_DIR/<job id>/            (default: $XDG_CACHE_HOME/llmclient/batches, else
        job.json                               ~/.cache/llmclient/batches)
        part-<n>-<file>.jsonl

`job.json` holds the provider, the model, the base URL, the custom ids in the caller's order, the
items refused before sending (their errors), and each provider batch: its id, its items, its last
known status, and which of its result files are complete. A provider batch is saved as
"submitting" (with OpenAI's input file id and the time) before its create request is sent, so a
process that dies, or a request whose answer never comes, leaves a job that knows the batch may
exist: it is looked for, and adopted, when the job is next read (`BatchJob`). It is replaced atomically (a temporary
file, fsync'd, renamed). `part-<n>-<file>.jsonl` is a provider result file (OpenAI's output or
error file, Anthropic's results) as far as it has arrived: whole lines only, appended and fsync'd
as they arrive, so its size is the byte offset a resumed download asks for (`Range: bytes=N-`).
A concurrent run (a provider without a batch API) writes `results.jsonl` the same way, one answer
or error per line.

The API key is never written here: requests and keys stay in memory; error messages had the key
masked before they were raised.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Any

from llmclient import errors as errors_module
from llmclient.errors import BatchError, ConfigurationError, LLMError, ModelRetiredError

SCHEMA = 1
_JOB_ID = re.compile(r"job-[0-9a-f]{16}")


def default_dir() -> Path:
    """LLMCLIENT_BATCH_DIR, else $XDG_CACHE_HOME/llmclient/batches, else ~/.cache/llmclient/batches."""
    given = os.environ.get("LLMCLIENT_BATCH_DIR")
    if given:
        return Path(given)
    cache = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(cache) / "llmclient" / "batches"


def new_job_id() -> str:
    return f"job-{os.urandom(8).hex()}"  # 64 random bits (secrets would cost every import)


def checked_job_id(job_id: str) -> str:
    if not isinstance(job_id, str) or not _JOB_ID.fullmatch(job_id):
        raise ConfigurationError(f"{job_id!r} is not a batch job id (they look like job-0123456789abcdef)")
    return job_id


@dataclass
class Part:
    """One provider batch: the indices of its items, and what is known of it so far."""

    indices: list[int]
    batch_id: str | None = None
    input_file_id: str | None = None
    status: str = "pending"  # the provider's word
    # pending | submitting (the create request was or is being sent: the provider may have made the
    # batch without our hearing of it) | in_progress | ended | refused
    state: str = "pending"
    counts: dict[str, int] = field(default_factory=dict)  # succeeded, errored, processing
    files: dict[str, dict[str, Any]] = field(default_factory=dict)  # name -> {"url": ..., "complete": bool}
    error: dict[str, Any] | None = None  # the error every item of a refused or failed batch gets
    submitted_at: float | None = None  # our clock (Unix seconds) when the create request was sent
    note: str | None = None  # what the last search for a "submitting" part's batch found

    def to_json(self) -> dict[str, Any]:
        return {"indices": self.indices, "batch_id": self.batch_id, "input_file_id": self.input_file_id,
                "status": self.status, "state": self.state, "counts": self.counts, "files": self.files,
                "error": self.error, "submitted_at": self.submitted_at, "note": self.note}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Part:
        return cls(indices=list(data["indices"]), batch_id=data.get("batch_id"), input_file_id=data.get("input_file_id"),
                   status=data.get("status", "pending"), state=data.get("state", "pending"),
                   counts=dict(data.get("counts") or {}), files=dict(data.get("files") or {}), error=data.get("error"),
                   submitted_at=data.get("submitted_at"), note=data.get("note"))

    @property
    def fetched(self) -> bool:
        return self.state == "ended" and all(entry.get("complete") for entry in self.files.values())


@dataclass
class Manifest:
    job_id: str
    kind: str  # "batch-api" | "concurrent"
    provider: str
    model: str  # the model id, without the provider
    base_url: str
    custom_ids: list[str]
    refused: dict[int, dict[str, Any]] = field(default_factory=dict)
    parts: list[Part] = field(default_factory=list)
    split: str | None = None
    recorded: bool = False  # the items are in the telemetry store
    json_items: list[int] = field(default_factory=list)  # items in JSON mode: their answers are checked when read
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat().replace("+00:00", "Z"))

    def to_json(self) -> dict[str, Any]:
        return {"schema": SCHEMA, "job_id": self.job_id, "created_at": self.created_at, "kind": self.kind,
                "provider": self.provider, "model": self.model, "base_url": self.base_url,
                "custom_ids": self.custom_ids, "refused": {str(k): v for k, v in sorted(self.refused.items())},
                "split": self.split, "recorded": self.recorded, "json_items": self.json_items,
                "parts": [part.to_json() for part in self.parts]}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Manifest:
        if data.get("schema") != SCHEMA:
            raise ConfigurationError(f"batch job file of schema {data.get('schema')!r}; this llmclient reads {SCHEMA}")
        return cls(job_id=data["job_id"], kind=data["kind"], provider=data["provider"], model=data["model"],
                   base_url=data["base_url"], custom_ids=list(data["custom_ids"]),
                   refused={int(k): v for k, v in (data.get("refused") or {}).items()},
                   parts=[Part.from_json(part) for part in data.get("parts") or []], split=data.get("split"),
                   recorded=bool(data.get("recorded")), json_items=[int(i) for i in data.get("json_items") or []],
                   created_at=data.get("created_at", ""))


class JobStore:
    """The directory of one job."""

    def __init__(self, job_id: str, root: Path | str | None = None) -> None:
        self.job_id = checked_job_id(job_id)
        self.root = Path(root) if root is not None else default_dir()
        self.path = self.root / job_id

    def create(self, manifest: Manifest) -> None:
        """The job's directory and its job.json; a directory that cannot be made or written is a
        ConfigurationError naming it (before anything is sent)."""
        try:
            self.path.mkdir(parents=True, exist_ok=False, mode=0o700)
            self.save(manifest)
        except OSError as exc:
            raise ConfigurationError(f"cannot create the batch job directory {self.path}: {exc.strerror or exc} (set "
                                     f"LLMCLIENT_BATCH_DIR, or pass job_dir= / --dir, to a writable directory)") from exc

    def load(self) -> Manifest:
        try:
            text = (self.path / "job.json").read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"no batch job {self.job_id} in {self.root} (set LLMCLIENT_BATCH_DIR, or pass "
                                     f"job_dir=, to where it was submitted)") from None
        except (OSError, ValueError) as exc:  # not a directory, no permission, not UTF-8
            raise ConfigurationError(f"cannot read batch job {self.job_id} in {self.root}: "
                                     f"{getattr(exc, 'strerror', None) or exc}") from exc
        try:
            return Manifest.from_json(json.loads(text))
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigurationError(f"{self.path / 'job.json'} is not a batch job file ({type(exc).__name__}: {exc})") from exc

    def save(self, manifest: Manifest) -> None:
        """Replace job.json atomically."""
        target = self.path / "job.json"
        temporary = target.with_name(f".job.json.{os.getpid()}.tmp")
        with open(temporary, "w", encoding="utf-8") as out:
            json.dump(manifest.to_json(), out, ensure_ascii=False, indent=1)
            out.flush()
            os.fsync(out.fileno())
        os.replace(temporary, target)
        _fsync_dir(self.path)

    def lines_file(self, name: str) -> Path:
        return self.path / f"{name}.jsonl"

    def received(self, name: str) -> int:
        """Bytes of whole lines already on disk for `name` (a line cut by a crash is dropped)."""
        path = self.lines_file(name)
        try:
            size = path.stat().st_size
        except FileNotFoundError:
            return 0
        if size == 0:
            return 0
        with open(path, "rb+") as handle:
            handle.seek(-1, os.SEEK_END)
            if handle.read(1) == b"\n":
                return size
            handle.seek(0)
            whole = handle.read().rfind(b"\n") + 1
            handle.truncate(whole)
            handle.flush()
            os.fsync(handle.fileno())
        return whole

    @contextmanager
    def appender(self, name: str) -> Iterator[LineWriter]:
        with open(self.lines_file(name), "ab") as handle:
            yield LineWriter(handle)

    def read_lines(self, name: str) -> Iterator[dict[str, Any]]:
        path = self.lines_file(name)
        if not path.exists():
            return
        with open(path, "rb") as handle:
            for number, line in enumerate(handle, 1):
                if line.strip():
                    try:
                        value = json.loads(line)
                    except ValueError:
                        value = {"llmclient_unreadable_line": number, "text": line[:200].decode("utf-8", "replace")}
                    yield value if isinstance(value, dict) else {"llmclient_unreadable_line": number, "text": str(value)}

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Held while results are fetched, so two processes do not append to one file."""
        try:
            import fcntl
        except ImportError:  # Windows: no advisory lock
            yield
            return
        with open(self.path / ".lock", "a") as handle:
            fcntl.flock(handle.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle.fileno(), fcntl.LOCK_UN)


class LineWriter:
    """Appends bytes that end on a line boundary, fsync'd each time."""

    def __init__(self, handle: Any) -> None:
        self._handle = handle

    def write(self, data: bytes) -> None:
        if data:
            self._handle.write(data)
            self._handle.flush()
            os.fsync(self._handle.fileno())


def _fsync_dir(path: Path) -> None:
    try:
        descriptor = os.open(path, os.O_RDONLY)
    except OSError:  # not on every platform
        return
    try:
        os.fsync(descriptor)
    except OSError:
        pass
    finally:
        os.close(descriptor)


# --- errors as records ---------------------------------------------------------------------------

def error_record(error: LLMError) -> dict[str, Any]:
    """What is kept of an error (its message already has the key masked)."""
    record: dict[str, Any] = {"type": type(error).__name__, "message": error.message, "provider": error.provider,
                              "model": error.model, "status_code": error.status_code,
                              "retry_after": error.retry_after, "error_type": error.error_type}
    if isinstance(error, BatchError):
        record["reason"], record["batch_id"] = error.reason, error.batch_id
    if isinstance(error, ModelRetiredError):
        record["retired_on"] = error.retired_on.isoformat()
    return record


def error_from_record(record: dict[str, Any]) -> LLMError:
    """The typed error a record was made from (its class by name; LLMError for an unknown name)."""
    kind = getattr(errors_module, str(record.get("type")), None)
    if not (isinstance(kind, type) and issubclass(kind, LLMError)):
        kind = LLMError
    error = kind.__new__(kind)
    LLMError.__init__(error, str(record.get("message", "")), provider=record.get("provider"), model=record.get("model"),
                      status_code=record.get("status_code"), retry_after=record.get("retry_after"),
                      error_type=record.get("error_type"))
    if isinstance(error, BatchError):
        error.reason = str(record.get("reason") or "failed")
        error.batch_id = record.get("batch_id")
    if isinstance(error, ModelRetiredError):
        error.retired_on = date.fromisoformat(str(record.get("retired_on") or "1970-01-01"))
    return error
