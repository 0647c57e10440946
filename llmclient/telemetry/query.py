"""The queries behind `llmclient telemetry ...`: DuckDB over the JSONL store, plain data out.

Reading. Only the day folders a window needs are read (their names are UTC dates): the live
`telemetry.jsonl` and its rotated segments, with an explicit schema (`COLUMNS`: no type detection
over a million lines), `format='newline_delimited'` and `ignore_errors=true`. DuckDB gives a row of
nulls for each line it cannot parse; such rows and those that are not a schema-1 record with the
fields every query needs (`VALID`: a truncated line, garbage, an old or other schema) are the
`skipped` lines, counted in the same single pass that answers the command: its grouping sets all
carry `valid`, and the invalid rows' group is the count (`export.py` counts them with a sequence that
only the invalid rows advance). Blank lines are not rows and are not counted. The one input DuckDB
refuses outright even so (a line cut off and the next continuing it as JSON) fails the whole read:
the files it fails on are then copied with every line that is not a JSON object replaced by a
marker DuckDB reads as a null row, and counted the same way.

Days. Records are stamped in UTC and filed by UTC day, but "today" means the reader's day. A window
is N local calendar days ending today (`stats today` is 1, `stats week` 7): from the local midnight
N-1 days ago to the next one, as UTC instants; the folders read are the UTC dates that span covers.
Per-day and per-hour figures are local too: a record's UTC time is shifted by the local UTC offset
in force at that instant (a daylight-saving change inside the window is found and applied).

Money. cost_usd is read as DECIMAL(38,12) and summed as such, never as a float: exact for every
cost of at most 12 decimals and 15 significant digits (DuckDB's JSON reader passes a number through
a double, and rounds to the scale). A null cost is unknown, never 0: `unpriced` counts the calls
that answered (or reported tokens) without a known price, as `llmclient.track()` does; a group
without any priced call has a cost of None.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta, timezone
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError
from llmclient.telemetry.upkeep import days as day_folders
from llmclient.telemetry.window import Window, local_time_sql, sql_timestamp

INSTALL = "pip install 'llmclient[telemetry]'"
FILE = re.compile(r"^telemetry(?:\.(\d+))?\.jsonl$")  # the live file, or a rotated segment
TOKENS = ("input", "output", "total", "cache_read", "cache_write", "reasoning")
# Every field a query may read; DuckDB converts only those a query uses (each costs on a million lines).
COLUMNS = {
    "schema": "BIGINT", "timestamp": "TIMESTAMP", "model": "VARCHAR", "success": "BOOLEAN", "outcome": "VARCHAR",
    "duration_ms": "DOUBLE", "ttft_ms": "DOUBLE", "kind": "VARCHAR", "mode": "VARCHAR", "call_id": "VARCHAR",
    "agent_name": "VARCHAR", "operation": "VARCHAR", "session_id": "VARCHAR", "user_id": "VARCHAR",
    "requested_model": "VARCHAR", "tokens": f"STRUCT({', '.join(f'{name} BIGINT' for name in TOKENS)})",
    "cost_usd": "DECIMAL(38,12)", "cost_source": "VARCHAR", "finish_reason": "VARCHAR", "attempts": "BIGINT",
    "cache_hit": "BOOLEAN",
    "metadata": "STRUCT(project VARCHAR, error STRUCT(type VARCHAR))",
}
# A row is a record when it has what every query reads; the others are the skipped lines.
VALID = ("coalesce(schema = 1 AND timestamp IS NOT NULL AND model IS NOT NULL AND success IS NOT NULL "
         "AND outcome IS NOT NULL AND duration_ms IS NOT NULL, false)")
# The columns the aggregates and groups use (the optimizer drops those a query does not).
_ANALYTIC = ("timestamp, {local} AS local_ts, CAST(local_ts AS DATE) AS day, hour(local_ts) AS hour, isodow(local_ts) AS weekday, "
             "model, success, outcome, duration_ms, ttft_ms, agent_name, operation, metadata.project AS project, "
             "tokens IS NOT NULL AS has_tokens, cache_hit, "
             + ", ".join(f"tokens.{name} AS {name}_tokens" for name in TOKENS) + ", cost_usd AS cost")
SUMS = ("count(*) AS calls, count(*) FILTER (WHERE NOT success) AS failed, "
        "count(*) FILTER (WHERE outcome = 'error') AS errors, count(*) FILTER (WHERE outcome = 'abandoned') AS abandoned, "
        + ", ".join(f"coalesce(sum({name}_tokens), 0) AS {name}_tokens" for name in TOKENS) + ", "
        "sum(cost) AS cost_usd, count(cost) AS priced, "
        "count(*) FILTER (WHERE cost IS NULL AND (success OR has_tokens)) AS unpriced, "
        "count(*) FILTER (WHERE cache_hit) AS cache_hits")
# Both percentiles from one sorted state (half the work of two quantile_cont); unpacked by `_clean`.
TIMES = ("avg(duration_ms) AS avg_ms, quantile_cont(duration_ms, [0.5, 0.95]) AS percentiles_ms, "
         "max(duration_ms) AS max_ms")
P95 = "avg(duration_ms) AS avg_ms, quantile_cont(duration_ms, 0.95) AS p95_ms"
TTFT = "count(ttft_ms) AS streams, avg(ttft_ms) AS avg_ttft_ms, quantile_cont(ttft_ms, 0.95) AS p95_ttft_ms"


def default_directory() -> Path:
    from llmclient.telemetry.store import Settings

    return Settings.from_env().directory


def files(directory: Path, span: Window) -> list[Path]:
    """The record files the window needs, oldest first (a day's segments before its live file)."""
    if not directory.is_dir():
        return []
    try:
        return _files(directory, span)
    except OSError as exc:  # a folder that cannot be listed
        raise ConfigurationError(f"cannot read the telemetry store at {directory}: {exc}") from exc


def _files(directory: Path, span: Window) -> list[Path]:
    low = span.start.astimezone(timezone.utc).date().isoformat() if span.start else ""
    high = (span.end - timedelta(microseconds=1)).astimezone(timezone.utc).date().isoformat() if span.end else "~"
    found: list[Path] = []
    for folder in day_folders(directory):
        if low <= folder.name <= high:
            day = [(match.group(1) or "~", path) for path in folder.iterdir()
                   if (match := FILE.match(path.name)) and path.is_file()]
            found += [path for _, path in sorted(day)]  # "~" sorts the live file after the segments
    return found


def load_duckdb() -> Any:
    try:
        import duckdb
    except ImportError as exc:
        raise ConfigurationError(f"`llmclient telemetry` queries need DuckDB: {INSTALL}") from exc
    return duckdb


@contextmanager
def connect() -> Iterator[tuple[Any, Any, str]]:
    """DuckDB, an in-memory connection, and its folder for spilling (never the working directory,
    DuckDB's default for an in-memory database). Extensions are never fetched: json is built in."""
    duckdb = load_duckdb()
    with tempfile.TemporaryDirectory(prefix="llmclient-duckdb-") as spill:
        connection = duckdb.connect(":memory:", config={"temp_directory": spill, "autoinstall_known_extensions": False})
        try:
            yield duckdb, connection, spill
        finally:
            connection.close()


def within(span: Window) -> str:
    if span.start is None or span.end is None:
        return "true"
    return f"timestamp >= {sql_timestamp(span.start)} AND timestamp < {sql_timestamp(span.end)}"


def execute(duckdb: Any, connection: Any, paths: list[Path], spill: str, statement: Callable[[str], str]) -> list[Path]:
    """Run `statement(source)`, `source` reading `paths`; the paths read (a file DuckDB refuses is
    replaced by a copy with its bad lines marked, see the module's doc)."""
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items()) + "}"

    def source(read: list[Path]) -> str:
        listed = "[" + ", ".join(literal(str(path)) for path in read) + "]"
        return f"read_json({listed}, columns={spec}, format='newline_delimited', ignore_errors=true)"

    try:
        connection.execute(statement(source(paths)))
        return paths
    except duckdb.InvalidInputException:
        pass
    except duckdb.IOException as exc:  # a file deleted (retention, size cap) since it was listed: without it
        present = [path for path in paths if path.is_file()]
        if len(present) == len(paths) or not present:
            raise ConfigurationError(f"telemetry query failed: {exc}") from exc
        return execute(duckdb, connection, present, spill, statement)
    readable = []
    for number, path in enumerate(paths):
        try:
            connection.execute(f"SELECT count(*), count(schema) FROM {source([path])}").fetchone()
            readable.append(path)
        except duckdb.InvalidInputException:
            readable.append(_marked(path, Path(spill) / f"marked-{number}.jsonl"))
    try:
        connection.execute(statement(source(readable)))
    except duckdb.Error as exc:
        raise ConfigurationError(f"telemetry query failed: {exc}") from exc
    return readable


def _marked(path: Path, copy: Path) -> Path:
    """`path` with every line that is not a JSON object replaced by one DuckDB reads as a null row."""
    with path.open("rb") as source, copy.open("wb") as out:
        for line in source:
            text = line.rstrip(b"\r\n")
            try:
                good = not text.strip() or isinstance(json.loads(text), dict)
            except (ValueError, RecursionError):  # ValueError: also bad UTF-8
                good = False
            out.write(text + b"\n" if good else b"-\n")
    return copy


def literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


@dataclass(frozen=True)
class Result:
    """What a command found; `data` is empty when the window holds no record (`records` 0)."""

    directory: Path
    window: Window
    files: int
    records: int
    skipped: int  # lines in the files read that are not a readable schema-1 record
    data: dict[str, Any]


def grouped(directory: Path, span: Window, sets: dict[str, tuple[str, ...]], aggregates: str) -> Result:
    """One pass: `aggregates` over the window's records for each grouping set, by name (`data[name]`
    a list of rows); `data["totals"]` is the row over every record. Columns: `_ANALYTIC`'s."""
    keys = list(dict.fromkeys(key for group in sets.values() for key in group))
    load_duckdb()  # without DuckDB, say how to install it even when there is nothing to read yet
    paths = files(directory, span)
    if not paths:
        return Result(directory, span, 0, 0, 0, {})
    groups = ", ".join("(" + ", ".join(("valid", *group)) + ")" for group in (*sets.values(), ()))
    grouping = f"GROUPING({', '.join(keys)})" if keys else "0"
    select = _ANALYTIC.format(local=local_time_sql(span.shifts))
    with connect() as (duckdb, connection, spill):
        read = execute(duckdb, connection, paths, spill, lambda source: (
            f"SELECT {grouping} AS grouping_id, valid{''.join(', ' + key for key in keys)}, {aggregates} "
            f"FROM (SELECT {select}, {VALID} AS valid FROM {source}) WHERE NOT valid OR ({within(span)}) "
            f"GROUP BY GROUPING SETS ({groups})"))
        names = [column[0] for column in connection.description]
        rows = [dict(zip(names, row)) for row in connection.fetchall()]
    everything = (1 << len(keys)) - 1  # the grouping id of the set without keys
    skipped = sum(row["calls"] for row in rows if row["grouping_id"] == everything and not row["valid"])
    totals = next((row for row in rows if row["grouping_id"] == everything and row["valid"]), None)
    if totals is None:
        return Result(directory, span, len(read), 0, skipped, {})
    data: dict[str, Any] = {"totals": _clean(totals, keys)}
    for name, group in sets.items():
        bits = sum(1 << (len(keys) - 1 - keys.index(key)) for key in keys if key not in group)
        data[name] = [_clean(row, [key for key in keys if key not in group])
                      for row in rows if row["grouping_id"] == bits and row["valid"]]
    return Result(directory, span, len(read), totals["calls"], skipped, data)


def _clean(row: dict[str, Any], drop: list[str]) -> dict[str, Any]:
    clean = {name: value for name, value in row.items() if name not in ("grouping_id", "valid", *drop)}
    if "percentiles_ms" in clean:
        clean["p50_ms"], clean["p95_ms"] = clean.pop("percentiles_ms")
    return clean


# --- the commands' data: one pass each --------------------------------------------------------------

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
NO_CALLS = {"calls": 0, "failed": 0, "errors": 0, "abandoned": 0, **{f"{name}_tokens": 0 for name in TOKENS},
             "cost_usd": None, "priced": 0, "unpriced": 0}


def cost_order(row: dict[str, Any]) -> tuple[Any, ...]:
    cost = row["cost_usd"]
    return (cost is None, -(cost or 0), -row["calls"])


def calls_order(key: str) -> Callable[[dict[str, Any]], tuple[Any, ...]]:
    return lambda row: (-row["calls"], row[key] is None, row[key] or "")


def every_day(span: Window, rows: list[dict[str, Any]], empty: dict[str, Any]) -> list[dict[str, Any]]:
    """A row for every local day of the window, those without a call too."""
    found = {row["day"]: row for row in rows}
    return [found.get(day, {"day": day, **empty}) for day in span.days()]


def stats(directory: Path, span: Window) -> Result:
    return grouped(directory, span, {}, SUMS)


def costs(directory: Path, span: Window) -> Result:
    result = grouped(directory, span, {"by_model": ("model",), "by_project": ("project",), "by_day": ("day",)}, SUMS)
    if result.records:
        data = result.data
        data["by_model"].sort(key=cost_order)
        data["by_project"].sort(key=cost_order)
        data["by_day"] = every_day(span, data["by_day"], NO_CALLS)
    return result


def models(directory: Path, span: Window, top: int) -> Result:
    result = grouped(directory, span, {"models": ("model",)}, f"{SUMS}, {P95}")
    if result.records:
        everyone = sorted(result.data["models"], key=calls_order("model"))
        result.data.update(models=everyone[:max(top, 0)], other_models=len(everyone[max(top, 0):]),
                           other_calls=sum(row["calls"] for row in everyone[max(top, 0):]))
    return result


def agents(directory: Path, span: Window) -> Result:
    result = grouped(directory, span, {"agents": ("agent_name",)}, f"{SUMS}, {P95}")
    if result.records:
        result.data["agents"].sort(key=calls_order("agent_name"))
    return result


def performance(directory: Path, span: Window, top: int = 10) -> Result:
    """Response times of every call (failed ones too: a timeout is slow) overall and by model, the
    operations slowest at the 95th percentile, and streams' time to first token. Percentiles
    interpolate linearly between the closest ranks (quantile_cont)."""
    result = grouped(directory, span, {"by_model": ("model",), "slowest_operations": ("operation",)},
                     f"count(*) AS calls, {TIMES}, {TTFT}")
    if result.records:
        data = result.data
        data["by_model"].sort(key=lambda row: (-row["p95_ms"], row["model"]))
        data["slowest_operations"] = sorted(data["slowest_operations"],
                                            key=lambda row: (-row["p95_ms"], -row["avg_ms"]))[:top]
    return result


def patterns(directory: Path, span: Window, top: int = 10) -> Result:
    """When calls are made (local hours, weekdays, days) and what for (operations)."""
    result = grouped(directory, span, {"by_hour": ("hour",), "by_weekday": ("weekday",), "by_day": ("day",),
                                       "operations": ("operation",)}, "count(*) AS calls")
    if result.records:
        data = result.data
        hours = {row["hour"]: row["calls"] for row in data["by_hour"]}
        weekdays = {row["weekday"]: row["calls"] for row in data["by_weekday"]}
        data["by_hour"] = [{"hour": hour, "calls": hours.get(hour, 0)} for hour in range(24)]
        data["peak_hours"] = sorted(data["by_hour"], key=lambda row: (-row["calls"], row["hour"]))[:3]
        data["by_weekday"] = [{"weekday": name, "calls": weekdays.get(number, 0)}
                              for number, name in enumerate(WEEKDAYS, 1)]
        data["by_day"] = every_day(span, data["by_day"], {"calls": 0})
        data["busiest_day"] = max(data["by_day"], key=lambda row: row["calls"])  # the earliest of equals
        data["operations"] = [{**row, "share": 100 * row["calls"] / result.records}
                              for row in sorted(data["operations"], key=calls_order("operation"))[:top]]
    return result
