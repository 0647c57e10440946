"""Days as the reader means them. Records are stamped in UTC and filed by UTC day, but "today" is
the reader's day: a `Window` is N local calendar days ending today (`stats today` is 1, `stats
week` 7), from the local midnight N-1 days ago to the next one, as UTC instants; the folders read
are the UTC dates that span covers. Per-day and per-hour figures are local too: a record's UTC time
is shifted by the local UTC offset in force at that instant (a daylight-saving change inside the
window is found and applied: `local_time_sql`).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta, timezone
from typing import Any

from llmclient.errors import ConfigurationError

MAX_DAYS = 36_600  # a century: the UTC offsets of a window are looked up day by day


@dataclass(frozen=True)
class Window:
    """Local calendar days `first`..`last` as the UTC instants [start, end); all None: every day."""

    label: str
    first: date | None = None
    last: date | None = None
    start: datetime | None = None
    end: datetime | None = None
    shifts: tuple[tuple[datetime, int], ...] = ()  # (UTC instant, local UTC offset in seconds from then on)

    def as_json(self) -> dict[str, Any]:
        return {"label": self.label, "first_day": _iso(self.first), "last_day": _iso(self.last),
                "start_utc": _iso(self.start), "end_utc": _iso(self.end),
                "utc_offsets": [{"from_utc": _iso(at), "seconds": seconds} for at, seconds in self.shifts]}

    def days(self) -> list[date]:
        if self.first is None or self.last is None:
            return []
        return [self.first + timedelta(days=n) for n in range((self.last - self.first).days + 1)]


def window(days: int | None, *, now: datetime | None = None, label: str | None = None) -> Window:
    """The last `days` local days, today included (None: every day in the store)."""
    if days is None:
        return Window(label or "every day in the store")
    if not 1 <= days <= MAX_DAYS:
        raise ConfigurationError(f"--days must be 1 to {MAX_DAYS}, got {days}")
    local_now = (now or datetime.now(timezone.utc)).astimezone()
    last = local_now.date()
    first = last - timedelta(days=days - 1)
    start, end = _midnight(first), _midnight(last + timedelta(days=1))
    default = "today" if days == 1 else f"the last {days} days"
    return Window(label or default, first, last, start, end, _shifts(start, end))


def _midnight(day: date) -> datetime:
    """The local midnight that begins `day`, as a UTC instant."""
    return datetime(day.year, day.month, day.day).astimezone().astimezone(timezone.utc)


def _offset(second: int) -> int:
    offset = datetime.fromtimestamp(second, timezone.utc).astimezone().utcoffset()
    return int(offset.total_seconds()) if offset is not None else 0


def _shifts(start: datetime, end: datetime) -> tuple[tuple[datetime, int], ...]:
    """The local UTC offset over [start, end): each change found day by day (changes are months
    apart), then to the second."""
    at, stop = int(start.timestamp()), int(end.timestamp())
    shifts = [(at, _offset(at))]
    while at < stop:
        step = min(at + 86400, stop)
        if _offset(step) != shifts[-1][1]:
            low, high = at, step  # the offset changes in (low, high]
            while high - low > 1:
                middle = (low + high) // 2
                low, high = (middle, high) if _offset(middle) == shifts[-1][1] else (low, middle)
            shifts.append((high, _offset(high)))
        at = step
    return tuple((datetime.fromtimestamp(second, timezone.utc), offset) for second, offset in shifts)


def _iso(value: date | datetime | None) -> str | None:
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")
    return value.isoformat() if value is not None else None


def sql_timestamp(instant: datetime) -> str:
    return "TIMESTAMP '" + instant.astimezone(timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f") + "'"


def local_time_sql(shifts: tuple[tuple[datetime, int], ...]) -> str:
    """SQL for a record's UTC `timestamp` as the local wall-clock time."""
    if not shifts:
        return "timestamp"
    cases = [f"WHEN timestamp < {sql_timestamp(shifts[n + 1][0])} THEN timestamp + to_seconds({offset})"
             for n, (_, offset) in enumerate(shifts[:-1])]
    last = f"timestamp + to_seconds({shifts[-1][1]})"
    return f"CASE {' '.join(cases)} ELSE {last} END" if cases else last
