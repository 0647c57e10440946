"""The store's upkeep, run by the writer thread about once a minute, when the store closes and
whenever the process has appended half a segment, under a lock file shared by every process writing
to the directory: retention (day folders older than LLM_RETENTION_DAYS), the size cap
(LLM_STORAGE_MAX_SIZE_MB: rotate today's file into a segment at a tenth of the cap, delete the
oldest days, then the oldest segments), and the rolling summary.json (which `flush()` merges too).

A summary.json that is not JSON, or not the summary's shape (edited by hand, written by another
tool), would fail every merge and never be written again: the file, or the day that is not the
shape, starts over, with one logged warning.
"""

from __future__ import annotations

import json
import logging
import math
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from llmclient.telemetry.record import Summary

DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")
SUMMARY = "summary.json"
log = logging.getLogger("llmclient")


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
    days_ = _summary_days(path)
    for day, increment in increments.items():
        _merge(days_.setdefault(day, {}), increment)
    first = oldest_kept(retention_days)
    days_ = {day: value for day, value in sorted(days_.items()) if day >= first}
    out = {"schema": 1, "updated": datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"), "days": days_}
    handle, temporary = tempfile.mkstemp(dir=directory, prefix=".summary.", suffix=".tmp")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as file:
            # Compact: the json module's C encoder (an indented file takes its slow Python one, 4x the time).
            file.write(json.dumps(out, sort_keys=True, separators=(",", ":"), default=_exact))
        os.replace(temporary, path)
    except BaseException:  # a full disk: no half-written temporary file left behind, one per try
        Path(temporary).unlink(missing_ok=True)
        raise


class Tally:
    """What the records written since the last merge add to summary.json. Counted per record on
    the writer thread (a few list updates: its time is paid by the process's calls), put in the
    summary's shape only when merged."""

    def __init__(self) -> None:
        # (day, model) -> [calls, failed_calls, input_tokens, output_tokens, cost_usd or None, unpriced_calls]
        self._rows: dict[tuple[str, str], list[Any]] = {}
        self._duration_ms: dict[str, float] = {}

    def __bool__(self) -> bool:
        return bool(self._rows)

    def add(self, day: str, summaries: list[Summary]) -> None:
        """Count one day's written records (`record.Lines.summary`)."""
        rows, duration = self._rows, 0.0
        for model, success, tokens, cost, duration_ms in summaries:
            row = rows.get((day, model))
            if row is None:
                row = rows[(day, model)] = [0, 0, 0, 0, None, 0]
            row[0] += 1
            if not success:
                row[1] += 1
            if tokens is not None:
                row[2] += tokens[0]
                row[3] += tokens[1]
            if cost is not None:
                row[4] = cost if row[4] is None else row[4] + cost
            elif success:
                row[5] += 1
            duration += duration_ms
        self._duration_ms[day] = self._duration_ms.get(day, 0.0) + duration

    def increments(self) -> dict[str, dict[str, Any]]:
        """Per day: calls, failed_calls, input/output/total_tokens, cost_usd (when any call was
        priced), unpriced_calls (successful calls without a price, when any), duration_ms, and
        the same counts (but the duration) per model under "models"."""
        days: dict[str, dict[str, Any]] = {}
        for (day, model), (calls, failed, input_tokens, output_tokens, cost, unpriced) in self._rows.items():
            counts: dict[str, Any] = {"calls": calls, "failed_calls": failed, "input_tokens": input_tokens,
                                      "output_tokens": output_tokens, "total_tokens": input_tokens + output_tokens}
            if cost is not None:
                counts["cost_usd"] = cost
            if unpriced:
                counts["unpriced_calls"] = unpriced
            totals = days.setdefault(day, {"models": {}})
            totals["models"][model] = counts
            for key, value in counts.items():
                totals[key] = totals.get(key, 0) + value
        for day, duration in self._duration_ms.items():
            days[day]["duration_ms"] = duration
        return days


def _summary_days(path: Path) -> dict[str, Any]:
    """summary.json's days that are the summary's shape; what is not (or not JSON) starts over, said once."""
    try:
        summary = json.loads(path.read_text(encoding="utf-8"))
    except OSError:  # none yet (the first merge), or unreadable: written anew
        return {}
    except ValueError as exc:  # also bad UTF-8
        log.warning("telemetry: %s is not JSON (%s); it starts over", path, exc)
        return {}
    if not isinstance(summary, dict) or not isinstance(summary.get("days"), dict):
        log.warning("telemetry: %s is not a summary (an object with a \"days\" object); it starts over", path)
        return {}
    days_: dict[str, Any] = summary["days"]
    wrong = [day for day, counts in days_.items() if not _is_day(counts)]
    if wrong:
        log.warning("telemetry: %s: day(s) %s not in the summary's shape (counts, cost_usd, models); "
                    "they start over", path, ", ".join(wrong))
    return {day: counts for day, counts in days_.items() if day not in wrong}


def _is_day(counts: Any, models: bool = True) -> bool:
    """A day's (or, `models` false, a model's) counts as `Tally.increments` writes them: numbers, the
    cost a decimal string (or number), and per model the same under "models"."""
    if not isinstance(counts, dict):
        return False
    for key, value in counts.items():
        if key == "models" and models:
            if not isinstance(value, dict) or not all(_is_day(model, models=False) for model in value.values()):
                return False
        elif key == "cost_usd":
            if not _is_cost(value):
                return False
        elif isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
            return False
    return True


def _is_cost(value: Any) -> bool:
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return False
    try:
        return Decimal(str(value)).is_finite()
    except InvalidOperation:
        return False


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
