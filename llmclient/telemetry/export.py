"""`llmclient telemetry export`: the window's records as flat rows (CSV, or JSON lines) in a file,
read by DuckDB as every query is (`query.py`: the files, the schema, the skipped lines, the files
read again line by line).

Rows come in the store's order. The files are cut into runs of about equal bytes, one DuckDB
connection per core with one thread each (many threads would need DuckDB's order-keeping, a third of
an export's time; on one thread it costs nothing, and keeps a union of readers in the files' order),
and the parts are joined in order.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from functools import partial
from pathlib import Path

from llmclient.errors import ConfigurationError
from llmclient.telemetry.query import TOKENS, Result, connect, execute, files, literal, load_duckdb
from llmclient.telemetry.window import Window

# `export`'s columns, by name: the record's fields flat. Every column costs on a million rows (the
# default export fits in the time budget), so the rest are asked for by name; the hashes, pid,
# version, retries' details and tags stay in the store.
EXPORT_FIELDS = {
    "timestamp": "strftime(timestamp, '%Y-%m-%dT%H:%M:%S.%fZ')", "call_id": "call_id", "kind": "kind", "mode": "mode",
    "agent_name": "agent_name", "operation": "operation", "session_id": "session_id", "user_id": "user_id",
    "model": "model", "requested_model": "requested_model", "duration_ms": "duration_ms", "ttft_ms": "ttft_ms",
    **{f"{name}_tokens": f"tokens.{name}" for name in TOKENS},
    "cost_usd": "rtrim(rtrim(CAST(cost_usd AS VARCHAR), '0'), '.')",  # exact, as text: no float ever sees it
    "cost_source": "cost_source", "success": "success", "outcome": "outcome", "finish_reason": "finish_reason",
    "attempts": "attempts", "project": "metadata.project", "error_type": "metadata.error.type",
}
EXPORT_DEFAULT = ("timestamp", "call_id", "agent_name", "operation", "session_id", "model", "duration_ms", "ttft_ms",
                  "input_tokens", "output_tokens", "cost_usd", "success", "outcome", "attempts", "project", "error_type")


def export_records(directory: Path, span: Window, destination: Path, fmt: str = "csv",
           fields: tuple[str, ...] = EXPORT_DEFAULT) -> Result:
    """Write the window's records as flat rows of `fields` (`EXPORT_FIELDS`) to `destination`: whole
    or not at all, and not at all when there is no record. Rows come in the store's order, day by day
    (segments before the live file), as written: when calls ended, so nearly by `timestamp` (when
    they began); sorting a million rows would cost a third of the time budget."""
    if fmt not in ("csv", "jsonl"):
        raise ConfigurationError(f"--format must be csv or jsonl, got {fmt!r}")
    unknown = [field for field in fields if field not in EXPORT_FIELDS]
    if unknown or not fields:
        raise ConfigurationError(f"unknown export field(s) {', '.join(unknown) or '(none given)'}; "
                                 f"the fields: {', '.join(EXPORT_FIELDS)}")
    if fmt == "csv":
        columns, options = ", ".join(f"{EXPORT_FIELDS[field]} AS {field}" for field in fields), "FORMAT csv, HEADER true"
    else:  # each line built by json_object (escaped JSON, no raw tab or newline) and written verbatim:
        # steadier and faster than DuckDB's JSON writer on a million rows
        columns = "json_object(" + ", ".join(f"'{field}', {EXPORT_FIELDS[field]}" for field in fields) + ")"
        options = "FORMAT csv, HEADER false, QUOTE '', ESCAPE '', DELIM '\t'"  # a tab: never in JSON text
    load_duckdb()
    paths = files(directory, span)
    if not paths:
        return Result(directory, span, 0, 0, 0, {})
    slices = _slices(paths, min(os.cpu_count() or 1, MAX_EXPORT_WORKERS))
    parts = [destination.with_name(f".{destination.name}.{os.getpid()}.partial{number or ''}")
             for number in range(len(slices))]
    try:
        destination.parent.mkdir(parents=True, exist_ok=True)
        parts[0].touch()  # a destination that cannot be written is said so before the store is read
    except OSError as exc:
        raise ConfigurationError(f"cannot write {destination}: {exc}") from exc
    try:
        done = _in_parallel([  # the header (csv) in the first part only
            partial(_export_slice, chosen, span, part, columns,
                    options if number == 0 else options.replace("HEADER true", "HEADER false"))
            for number, (chosen, part) in enumerate(zip(slices, parts))])
        records = sum(rows for _, rows, _ in done)
        if records:
            try:
                _concatenate(parts)
                os.replace(parts[0], destination)
            except OSError as exc:
                raise ConfigurationError(f"cannot write {destination}: {exc}") from exc
    finally:
        for part in parts:
            part.unlink(missing_ok=True)
    return Result(directory, span, sum(read for read, _, _ in done), records, sum(skipped for _, _, skipped in done),
                  {"rows": records, "format": fmt} if records else {})


MAX_EXPORT_WORKERS = 4  # connections (one per core) at most: past that the disk, not the CPU, is the limit


def _slices(paths: list[Path], count: int) -> list[list[Path]]:
    """`paths` cut into at most `count` consecutive runs of about equal bytes (none empty)."""
    sizes = [_size(path) for path in paths]
    total, filled = sum(sizes) or 1, 0
    runs: list[list[Path]] = []
    current: list[Path] = []
    for path, size in zip(paths, sizes):
        current.append(path)
        filled += size
        if filled >= total * (len(runs) + 1) / count and len(runs) < count - 1:
            runs.append(current)
            current = []
    return [*runs, current] if current else runs


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:  # deleted since it was listed (retention): the read says so
        return 0


def _in_parallel(tasks: list[Callable[[], tuple[int, int, int]]]) -> list[tuple[int, int, int]]:
    """Run the tasks on threads (DuckDB lets go of the GIL); the first error is raised."""
    import threading

    results: list[tuple[int, int, int] | BaseException | None] = [None] * len(tasks)

    def run(number: int) -> None:
        try:
            results[number] = tasks[number]()
        except BaseException as exc:  # noqa: BLE001 - raised below, on the caller's thread
            results[number] = exc

    threads = [threading.Thread(target=run, args=(number,), daemon=True) for number in range(1, len(tasks))]
    for thread in threads:
        thread.start()
    run(0)
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return [result for result in results if isinstance(result, tuple)]


def _export_slice(paths: list[Path], span: Window, part: Path, columns: str, options: str) -> tuple[int, int, int]:
    """(files read, rows written, lines skipped) of one run of files written to `part`."""
    with connect() as (duckdb, connection):
        connection.execute("SET threads = 1; SET preserve_insertion_order = true")  # the store's order
        answer = execute(duckdb, connection, paths, span, lambda records: (
            f"COPY (SELECT {columns} FROM {records}) TO {literal(str(part))} ({options})"))
    return len(answer.paths), next(iter(answer.rows[0].values())), answer.skipped


def _concatenate(parts: list[Path]) -> None:
    """Append the other parts to the first, in order (in the kernel where it can)."""
    import shutil

    with parts[0].open("r+b") as out:
        for part in parts[1:]:
            with part.open("rb") as source:
                end, size, done = out.seek(0, os.SEEK_END), os.fstat(source.fileno()).st_size, 0
                try:
                    while done < size:
                        copied = os.copy_file_range(source.fileno(), out.fileno(), size - done, done, end + done)
                        if not copied:
                            break
                        done += copied
                except (AttributeError, OSError):  # not Linux, or not between these file systems
                    pass
                if done < size:
                    source.seek(done)
                    out.seek(end + done)
                    shutil.copyfileobj(source, out)
