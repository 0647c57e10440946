"""The store's upkeep, run by the writer thread about once a minute, on `flush()` and whenever the
process has appended half a segment, under a lock file shared by every process writing to the
directory: retention (day folders older than LLM_RETENTION_DAYS), the size cap
(LLM_STORAGE_MAX_SIZE_MB: rotate today's file into a segment at a tenth of the cap, delete the
oldest days, then the oldest segments), and the rolling summary.json.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUMMARY = "summary.json"


@contextmanager
def locked(directory: Path) -> Iterator[None]:
    """Exclusive among processes (flock on `<dir>/.lock`; where there is no flock, within this one)."""
    try:
        import fcntl
    except ImportError:  # Windows: the writer thread is the only one of this process anyway
        yield
        return
    fd = os.open(directory / ".lock", os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the lock


def days(directory: Path) -> list[Path]:
    """The day folders, oldest first."""
    return sorted(p for p in directory.iterdir() if p.is_dir() and DAY.match(p.name))


def today() -> str:
    return datetime.now(timezone.utc).strftime("%Y-%m-%d")


def oldest_kept(retention_days: int) -> str:
    """The first day (YYYY-MM-DD, UTC) within `retention_days`; "" (every day) when that is before year 1."""
    try:
        return (datetime.now(timezone.utc) - timedelta(days=retention_days)).strftime("%Y-%m-%d")
    except OverflowError:
        return ""


def apply_retention(directory: Path, retention_days: int) -> list[str]:
    """Delete day folders older than `retention_days` (UTC); the names deleted."""
    first = oldest_kept(retention_days)
    removed = []
    for folder in days(directory):
        if folder.name < first:
            shutil.rmtree(folder, ignore_errors=True)
            removed.append(folder.name)
    return removed


def enforce_size(directory: Path, max_bytes: int, segment_bytes: int) -> list[str]:
    """Rotate today's large files into segments, then delete the oldest days and segments while
    the store is over `max_bytes`. The live files of today are never deleted. What was removed."""
    removed: list[str] = []
    current = directory / today()
    for live in current.glob("*.jsonl") if current.is_dir() else ():
        if "." not in live.stem and live.stat().st_size >= segment_bytes:
            stamp = datetime.now(timezone.utc).strftime("%H%M%S%f")
            live.rename(live.with_name(f"{live.stem}.{stamp}.jsonl"))  # writers reopen by inode
    total = _size(directory)
    for folder in days(directory):
        if total <= max_bytes or folder.name >= today():
            break
        freed = _size(folder)
        shutil.rmtree(folder, ignore_errors=True)
        removed.append(folder.name)
        total -= freed
    if total > max_bytes and current.is_dir():
        for segment in sorted(current.glob("*.*.jsonl"), key=lambda p: p.name.split(".")[1]):
            if total <= max_bytes:
                break
            total -= segment.stat().st_size
            segment.unlink()
            removed.append(f"{current.name}/{segment.name}")
    return removed


def _size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def merge_summary(directory: Path, increments: dict[str, dict[str, Any]], retention_days: int) -> None:
    """Add this process's increments to summary.json (under the lock), drop days past retention,
    and replace the file atomically."""
    path = directory / SUMMARY
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
        if not isinstance(summary, dict) or not isinstance(summary.get("days"), dict):
            summary = {}
    except (OSError, ValueError):
        summary = {}
    days_: dict[str, Any] = summary.get("days", {})
    for day, increment in increments.items():
        _merge(days_.setdefault(day, {}), increment)
    first = oldest_kept(retention_days)
    days_ = {day: value for day, value in sorted(days_.items()) if day >= first}
    out = {"schema": 1, "updated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "days": days_}
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".summary.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            json.dump(out, file, indent=1, sort_keys=True, default=_exact)
        os.replace(temporary, path)
    except BaseException:  # a full disk: no half-written temporary file left behind, one per try
        Path(temporary).unlink(missing_ok=True)
        raise


def count(day: dict[str, Any], summary: dict[str, Any]) -> None:
    """Add one written record's `Lines.summary` to its day's increments (merged by `merge_summary`)."""
    tokens = summary["tokens"] or {}
    cost = summary["cost"]
    for bucket in (day, day.setdefault("models", {}).setdefault(summary["model"], {})):
        bucket["calls"] = bucket.get("calls", 0) + 1
        bucket["failed_calls"] = bucket.get("failed_calls", 0) + (not summary["success"])
        for name in ("input", "output", "total"):
            bucket[f"{name}_tokens"] = bucket.get(f"{name}_tokens", 0) + tokens.get(name, 0)
        if cost is not None:
            bucket["cost_usd"] = bucket.get("cost_usd", Decimal(0)) + cost
        elif summary["success"]:
            bucket["unpriced_calls"] = bucket.get("unpriced_calls", 0) + 1
    day["duration_ms"] = day.get("duration_ms", 0.0) + summary["duration_ms"]


def _merge(into: dict[str, Any], increment: dict[str, Any]) -> None:
    for key, value in increment.items():
        if isinstance(value, dict):
            _merge(into.setdefault(key, {}), value)
        elif key == "cost_usd":
            into[key] = str(Decimal(str(into.get(key, 0))) + value)
        else:
            into[key] = into.get(key, 0) + value


def _exact(value: Any) -> str:
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")
