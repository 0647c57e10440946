"""The queries behind `llmclient telemetry ...`: DuckDB over the JSONL store, plain data out.

Reading. Only the day folders a window needs are read (their names are UTC dates): the live
`telemetry.jsonl` and its rotated segments, with an explicit schema (`COLUMNS`: no type detection
over a million lines), `format='newline_delimited'` and `ignore_errors=true`. DuckDB gives a row of
nulls for each line it cannot parse; such rows and those that are not a schema-1 record with the
fields every query needs, of values a real call has (`VALID`: a truncated line, garbage, an old or
other schema, a duration or cost that is no number, negative, NaN or beyond any real call's) are
the `skipped` lines. Each is counted against its file (a sequence per file, advanced only by the
invalid rows) in the same single pass that answers the command. Blank lines are not rows and are
not counted.

A cut-off line. DuckDB's reader parses a line in place and, where JSON allows whitespace (after a
key's colon, inside an array), reads on past the newline: the cut line swallows the next, which
then fails its own parse (the first parse wrote into it) and comes out as a second row of nulls;
nothing is raised. A next line that completes the cut one as JSON fails the whole read instead. So
only a file with two invalid rows or more can have lost a line: those few are read again line by
line (`read_json_objects` never reads past a line's end, then `from_json`), and one whose invalid
lines are not as many that way, or that DuckDB refused, is read line by line in the command's pass,
done again. Reading line by line is some three times slower, so every other file keeps the fast
reader: a store whose files have at most one bad line each costs nothing more, one with a cut line
that swallowed the next costs one more pass.

Time. `timestamp` is read as TIMESTAMPTZ (an offset such as +02:00 is honoured; without one it is
UTC, the connection's time zone) and converted to a UTC TIMESTAMP by arithmetic on the epoch (a
time zone conversion would cost a tenth of a command).

Days. Records are stamped in UTC and filed by UTC day, but "today" means the reader's day. A window
is N local calendar days ending today (`stats today` is 1, `stats week` 7): from the local midnight
N-1 days ago to the next one, as UTC instants; the folders read are the UTC dates that span covers.
Per-day and per-hour figures are local too: a record's UTC time is shifted by the local UTC offset
in force at that instant (a daylight-saving change inside the window is found and applied).

Money. cost_usd is read as JSON (a cost that is no number is told apart from a null one), cast to
DECIMAL(38,12) and summed as such, never as a float: exact for every cost of at most 12 decimals and
15 significant digits (the cast passes a number through a double, rounded to the scale). A null or
absent cost is unknown, never 0: `unpriced` counts the calls that answered (or reported tokens)
without a known price, as `llmclient.track()` does; a group without any priced call has a cost of
None. A cost that is there but is not a JSON number, is negative or is over `MAX_COST_USD` makes the
line unreadable: it is no real call's, and a few of them would overflow the DECIMAL sum.
"""

from __future__ import annotations

import json
import re
import tempfile
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import timedelta, timezone
from itertools import groupby
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError
from llmclient.telemetry.upkeep import days as day_folders
from llmclient.telemetry.window import Window, local_time_sql, sql_timestamp

INSTALL = "pip install 'llmclient[telemetry]'"
FILE = re.compile(r"^telemetry(?:\.(\d+))?\.jsonl$")  # the live file, or a rotated segment
TOKENS = ("input", "output", "total", "cache_read", "cache_write", "reasoning")
# Every field a query may read; DuckDB converts only those a query uses (each costs on a million lines).
# `timestamp` and `cost_usd` are read raw and converted by `_CONVERTED`.
COLUMNS = {
    "schema": "BIGINT", "timestamp": "TIMESTAMPTZ", "model": "VARCHAR", "success": "BOOLEAN", "outcome": "VARCHAR",
    "duration_ms": "DOUBLE", "ttft_ms": "DOUBLE", "kind": "VARCHAR", "mode": "VARCHAR", "call_id": "VARCHAR",
    "agent_name": "VARCHAR", "operation": "VARCHAR", "session_id": "VARCHAR", "user_id": "VARCHAR",
    "requested_model": "VARCHAR", "tokens": f"STRUCT({', '.join(f'{name} BIGINT' for name in TOKENS)})",
    "cost_usd": "JSON", "cost_source": "VARCHAR", "finish_reason": "VARCHAR", "attempts": "BIGINT",
    "cache_hit": "BOOLEAN",
    "metadata": "STRUCT(project VARCHAR, error STRUCT(type VARCHAR))",
}
# The UTC instant (epoch arithmetic, no time zone lookup), and the cost as a DECIMAL: NULL when it is
# null or absent, and also when it is there but no JSON number (then `cost_json`, what was there, is
# not NULL). A number's text begins with a digit or "-"; the cast alone would take "0.25" or true.
_NUMBER = "left(cost_usd, 1) IN ('-', '0', '1', '2', '3', '4', '5', '6', '7', '8', '9')"
_CONVERTED = ("* REPLACE (make_timestamp(epoch_us(timestamp)) AS timestamp, "
              f"CASE WHEN {_NUMBER} THEN TRY_CAST(cost_usd AS DECIMAL(38,12)) END AS cost_usd), cost_usd AS cost_json")
MAX_COST_USD = 10**12  # dollars: no call costs more; a bigger cost is a corrupt line
MAX_DURATION_MS = 10**12  # some 31 years: no call lasts longer; sums of a million of them stay finite
# A row is a record when it has what every query reads, of values a real call has; the others are the
# skipped lines. NaN sorts above every number in DuckDB, so BETWEEN refuses it as it does infinity.
VALID = ("coalesce(schema = 1 AND timestamp IS NOT NULL AND model IS NOT NULL AND success IS NOT NULL "
         f"AND outcome IS NOT NULL AND duration_ms BETWEEN 0 AND {MAX_DURATION_MS} "
         f"AND (ttft_ms IS NULL OR ttft_ms BETWEEN 0 AND {MAX_DURATION_MS}) "
         f"AND (cost_json IS NULL OR cost_usd BETWEEN 0 AND {MAX_COST_USD}), false)")
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
def connect() -> Iterator[tuple[Any, Any]]:
    """DuckDB and an in-memory connection in UTC (a timestamp without an offset is UTC), spilling into
    a temporary folder (never the working directory, DuckDB's default for an in-memory database).
    Extensions are never fetched: json is built in."""
    duckdb = load_duckdb()
    with tempfile.TemporaryDirectory(prefix="llmclient-duckdb-") as spill:
        connection = duckdb.connect(":memory:", config={"temp_directory": spill, "autoinstall_known_extensions": False})
        try:
            connection.execute("SET TimeZone = 'UTC'")
            yield duckdb, connection
        finally:
            connection.close()


def within(span: Window) -> str:
    if span.start is None or span.end is None:
        return "true"
    return f"timestamp >= {sql_timestamp(span.start)} AND timestamp < {sql_timestamp(span.end)}"


@dataclass(frozen=True)
class Answer:
    """A statement's rows, the files it read and their lines that are not a readable record."""

    rows: list[dict[str, Any]]
    paths: list[Path]
    skipped: int


def execute(duckdb: Any, connection: Any, paths: list[Path], span: Window, statement: Callable[[str], str]) -> Answer:
    """Run `statement(records)`, `records` a subquery of the readable records of `paths` within `span`
    (the other lines counted, per file), and fetch its rows. A file in which DuckDB's reader swallowed
    a line, or that it refused, is then read line by line and the statement run again (module doc)."""
    by_line: set[Path] = set()
    while True:
        fast = [path for path in paths if path not in by_line]
        try:
            connection.execute("".join(f"CREATE OR REPLACE SEQUENCE skipped_{n} START 1; "
                                       for n in range(len(paths) + 1)))
            connection.execute(statement(_records(paths, by_line, span)))
            names = [column[0] for column in connection.description]
            rows = [dict(zip(names, row)) for row in connection.fetchall()]
        except duckdb.InvalidInputException as exc:  # a cut line the next completes as JSON: in the file named
            if not fast:
                raise ConfigurationError(f"telemetry query failed: {exc}") from exc
            by_line.update([path for path in fast if f'"{path}"' in str(exc)] or fast)
            continue
        except duckdb.IOException as exc:  # a file deleted (retention, size cap) since it was listed: without it
            present = [path for path in paths if path.is_file()]
            if len(present) == len(paths) or not present:
                raise ConfigurationError(f"telemetry query failed: {exc}") from exc
            paths = present
            continue
        except duckdb.Error as exc:
            raise ConfigurationError(f"telemetry query failed: {exc}") from exc
        skipped = _skipped(connection, len(paths))
        torn = _torn(duckdb, connection, paths, by_line, skipped)
        if not torn:
            return Answer(rows, paths, sum(skipped))
        by_line.update(torn)


def _records(paths: list[Path], by_line: Collection[Path], span: Window) -> str:
    """The readable records of `paths` within `span`, in the files' order; every other line advances
    its file's sequence (`skipped_<n>`; the last one for a file name DuckDB spells otherwise)."""
    runs = [(line_by_line, list(run)) for line_by_line, run in groupby(paths, key=lambda path: path in by_line)]
    read = " UNION ALL BY NAME ".join(f"SELECT * FROM {_by_line(run) if line_by_line else _fast(run)}"
                                      for line_by_line, run in runs)
    count = " ".join(f"WHEN {literal(str(path))} THEN nextval('skipped_{n}')" for n, path in enumerate(paths))
    skip = f"(CASE filename {count} ELSE nextval('skipped_{len(paths)}') END) < 0"  # false: the row is not kept
    return (f"(SELECT * FROM (SELECT {_CONVERTED} FROM ({read})) "
            f"WHERE CASE WHEN {VALID} THEN {within(span)} ELSE {skip} END)")


def _fast(paths: list[Path]) -> str:
    spec = "{" + ", ".join(f"'{name}': '{kind}'" for name, kind in COLUMNS.items()) + "}"
    return (f"read_json({_listed(paths)}, columns={spec}, format='newline_delimited', ignore_errors=true, "
            "filename=true)")


def _by_line(paths: list[Path], columns: Collection[str] = COLUMNS) -> str:
    """`paths` read one line at a time (read_json_objects never reads past a line's end), as `_fast`'s
    columns (`columns` of them)."""
    structure = json.dumps({name: COLUMNS[name] for name in columns})
    return (f"(SELECT unnest(from_json(json, {literal(structure)})), filename FROM read_json_objects("
            f"{_listed(paths)}, format='newline_delimited', ignore_errors=true, filename=true))")


def _listed(paths: list[Path]) -> str:
    return "[" + ", ".join(literal(str(path)) for path in paths) + "]"


def _skipped(connection: Any, files: int) -> list[int]:
    """The lines skipped per file (the last: in files DuckDB named otherwise)."""
    found = dict(connection.execute("SELECT sequence_name, last_value FROM duckdb_sequences()").fetchall())
    return [found.get(f"skipped_{n}") or 0 for n in range(files + 1)]


_VALID_COLUMNS = ("schema", "timestamp", "model", "success", "outcome", "duration_ms", "ttft_ms", "cost_usd")


def _torn(duckdb: Any, connection: Any, paths: list[Path], by_line: Collection[Path], skipped: list[int]) -> list[Path]:
    """The files read by the fast reader whose skipped lines are not those found line by line. A line
    swallowed makes two invalid rows, the cut line's and its own (the cut line's parse wrote into it),
    so a file with fewer is as it was written, and is not read again."""
    fast = [path for path in paths if path not in by_line]
    if skipped[-1]:  # rows DuckDB named by another file name: no file can be told apart
        return fast
    suspects = [path for number, path in enumerate(paths) if skipped[number] >= 2 and path not in by_line]
    if not suspects:
        return []
    try:
        counted = dict(connection.execute(
            f"SELECT filename, count(*) FROM (SELECT {_CONVERTED} FROM {_by_line(suspects, _VALID_COLUMNS)}) "
            f"WHERE NOT {VALID} GROUP BY filename").fetchall())
    except duckdb.Error:  # read again line by line in the statement, which says what is wrong
        return suspects
    return [path for path in suspects if counted.get(str(path), 0) != skipped[paths.index(path)]]


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
    groups = ", ".join("(" + ", ".join(group) + ")" for group in (*sets.values(), ()))
    grouping = f"GROUPING({', '.join(keys)})" if keys else "0"
    select = _ANALYTIC.format(local=local_time_sql(span.shifts))
    with connect() as (duckdb, connection):
        answer = execute(duckdb, connection, paths, span, lambda records: (
            f"SELECT {grouping} AS grouping_id{''.join(', ' + key for key in keys)}, {aggregates} "
            f"FROM (SELECT {select} FROM {records}) GROUP BY GROUPING SETS ({groups})"))
    everything = (1 << len(keys)) - 1  # the grouping id of the set without keys
    totals = next((row for row in answer.rows if row["grouping_id"] == everything), None)
    if totals is None or not totals["calls"]:
        return Result(directory, span, len(answer.paths), 0, answer.skipped, {})
    data: dict[str, Any] = {"totals": _clean(totals, keys)}
    for name, group in sets.items():
        bits = sum(1 << (len(keys) - 1 - keys.index(key)) for key in keys if key not in group)
        data[name] = [_clean(row, [key for key in keys if key not in group])
                      for row in answer.rows if row["grouping_id"] == bits]
    return Result(directory, span, len(answer.paths), totals["calls"], answer.skipped, data)


def _clean(row: dict[str, Any], drop: list[str]) -> dict[str, Any]:
    clean = {name: value for name, value in row.items() if name not in ("grouping_id", *drop)}
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
