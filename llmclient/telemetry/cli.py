"""`llmclient telemetry ...`: the store's queries on the command line (DuckDB: llmclient[telemetry]).

    llmclient telemetry stats [today|week]        calls, success and failure, tokens, cost, unpriced calls
    llmclient telemetry costs [--days N]          cost by model, by project and by day
    llmclient telemetry models [--top N]          the most used models
    llmclient telemetry agents                    by agent_name
    llmclient telemetry performance [--top N]     average and p95 response times, the slowest operations
    llmclient telemetry patterns                  peak hours, busiest day, weekdays, common operations
    llmclient telemetry export [-o FILE] [--format csv|jsonl] [--fields a,b] [--days N]
    llmclient telemetry report --html FILE        one self-contained page: cost trend and model x day heatmap

Every command takes --dir DIR (default LLM_TELEMETRY_DIR, else .llm-telemetry) and --json (machine
readable: dollars as decimal strings, exact). Days are the local calendar days of whoever runs the
command, today included (`--days 30`: today and the 29 before); records are stamped in UTC and the
conversion is done per record (see query.py). Lines that are not a readable record are skipped and
counted ("skipped 3 unreadable lines"). An empty or missing store is said so, with exit 0.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import os
import shutil
import sys
import tempfile
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path
from typing import Any, TextIO

from llmclient.cli_text import jsonable, table
from llmclient.errors import ConfigurationError
from llmclient.telemetry import query
from llmclient.telemetry.export import EXPORT_DEFAULT, EXPORT_FIELDS, export_records
from llmclient.telemetry.query import Result
from llmclient.telemetry.upkeep import days as day_folders
from llmclient.telemetry.window import Window, window


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    telemetry = commands.add_parser("telemetry", help="query the local telemetry store (pip install 'llmclient[telemetry]')",
                                    description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    queries = telemetry.add_subparsers(required=True, metavar="QUERY")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--dir", type=Path, default=None,
                        help="the store (default: LLM_TELEMETRY_DIR, else .llm-telemetry)")
    common.add_argument("--json", action="store_true", help="machine-readable output; dollars as decimal strings")

    def command(name: str, run: Callable[[argparse.Namespace, TextIO], int], text: str, days: int | None = 30,
                ) -> argparse.ArgumentParser:
        parser = queries.add_parser(name, parents=[common], help=text, description=text)
        if days is not None:
            parser.add_argument("--days", type=_positive, default=days,
                                help=f"the last N local days, today included (default {days})")
        parser.set_defaults(run=_quiet_when_the_reader_stops(run))
        return parser

    stats = command("stats", _stats, "calls, success and failure, tokens, cost and unpriced calls", days=None)
    stats.add_argument("period", nargs="?", choices=("today", "week"), default="today",
                       help="today (since local midnight) or week (the last 7 local days); default today")
    command("costs", _costs, "cost by model, by project and by day (unpriced calls counted apart)")
    command("models", _models, "the most used models").add_argument("--top", type=_positive, default=10)
    command("agents", _agents, "calls, tokens, cost and response times by agent_name")
    command("performance", _performance, "average and p95 response times; the slowest operations").add_argument(
        "--top", type=_positive, default=10, help="how many of the slowest operations (default 10)")
    command("patterns", _patterns, "peak hours, the busiest day, weekdays and the most common operations")
    export = command("export", _export, "the records as CSV or JSON lines, to a file or stdout (then what is "
                     "said about them goes to stderr)", days=None)
    export.add_argument("--days", type=_positive, default=None, help="the last N local days (default: every day)")
    export.add_argument("-o", "--output", type=Path, default=None, help="the file to write (default: stdout)")
    export.add_argument("--format", choices=("csv", "jsonl"), default="csv")
    export.add_argument("--fields", type=lambda text: tuple(f.strip() for f in text.split(",") if f.strip()),
                        default=EXPORT_DEFAULT,
                        help=f"comma-separated columns (default: {', '.join(EXPORT_DEFAULT)}; "
                             f"any of: {', '.join(EXPORT_FIELDS)})")
    report = command("report", _report, "one self-contained HTML page: summary, cost trend, model x day heatmap")
    report.add_argument("--html", type=Path, required=True, metavar="FILE", help="the page to write")


def _positive(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of 1 or more, got {text!r}")
    return number


def _quiet_when_the_reader_stops(run: Callable[[argparse.Namespace, TextIO], int],
                                 ) -> Callable[[argparse.Namespace, TextIO], int]:
    """`run`, ending quietly with 0 when what it writes to is a pipe whose reader stopped (`| head -1`):
    the reader has what it wanted."""
    @functools.wraps(run)
    def guarded(args: argparse.Namespace, out: TextIO) -> int:
        try:
            code = run(args, out)
            out.flush()  # what is still buffered fails here, not as a traceback at exit
            return code
        except BrokenPipeError:
            _stop_writing(out)
            return 0
    return guarded


def _stop_writing(out: TextIO) -> None:
    """Point `out`'s file at /dev/null: the flush at exit of what is still buffered would fail again."""
    try:
        descriptor = out.fileno()
    except (AttributeError, OSError, ValueError):  # a stream without a file (a StringIO): nothing is flushed at exit
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, descriptor)
    os.close(devnull)


def _directory(args: argparse.Namespace) -> Path:
    return args.dir if args.dir is not None else query.default_directory()


# --- output ------------------------------------------------------------------------------------------

def _empty_line(result: Result) -> str:
    where = result.directory
    if not where.is_dir():
        why = "not a directory" if where.exists() else "no such directory"
        return f"no telemetry store at {where} ({why}; set LLM_TELEMETRY_DIR or pass --dir)"
    days = [folder.name for folder in day_folders(where)]
    span = _span(result.window)
    held = f"; it holds {days[0]} .. {days[-1]} (UTC days)" if days else "; it holds no day folder"
    return f"no telemetry records in {where} for {result.window.label}{span}{held}"


def _span(window: Window) -> str:
    if window.first is None or window.last is None:
        return ""
    days = f"{window.first}" if window.first == window.last else f"{window.first} .. {window.last}"
    offsets = " -> ".join(dict.fromkeys(_utc(seconds) for _, seconds in window.shifts))
    return f" ({days}, local days, {offsets})"


def _utc(seconds: int) -> str:
    sign = "-" if seconds < 0 else "+"
    hours, rest = divmod(abs(seconds), 3600)
    return f"UTC{sign}{hours:02d}:{rest // 60:02d}"


def _skipped(result: Result) -> str:
    count = result.skipped
    return f"skipped {count:,} unreadable line{'s' if count != 1 else ''}\n" if count else ""


def _emit(args: argparse.Namespace, out: TextIO, name: str, result: Result,
          human: Callable[[dict[str, Any]], list[str]]) -> int:
    """The common frame: the JSON document, or the header, the command's lines and the skipped count."""
    empty = result.records == 0
    if args.json:
        document = {"command": name, "directory": str(result.directory), "window": result.window.as_json(),
                    "files": result.files, "records": result.records, "skipped_lines": result.skipped,
                    "empty": empty, "message": _empty_line(result) if empty else None, **result.data}
        out.write(json.dumps(_finite(document), indent=2, default=jsonable, allow_nan=False) + "\n")
        return 0
    if empty:
        out.write(_empty_line(result) + "\n" + _skipped(result))
        return 0
    out.write(f"telemetry in {result.directory}: {result.window.label}{_span(result.window)}\n")
    out.write("".join(line + "\n" for line in human(result.data)) + _skipped(result))
    return 0


def _finite(value: Any) -> Any:
    """`value` with every NaN or infinite float as None: JSON has no such number (json.dumps would write
    NaN, which no JSON parser reads)."""
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    if isinstance(value, dict):
        return {key: _finite(item) for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(item) for item in value]
    return value


def _int(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _ms(value: float | None) -> str:
    return "-" if value is None or not math.isfinite(value) else f"{value:,.1f}"


def _money(value: Decimal | None) -> str:
    """Every digit of the exact sum (a cent is far too coarse for a call's cost); "-" when unknown."""
    return "-" if value is None else f"${value.normalize():,f}"


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:.1f}%" if whole else "-"


def _name(value: str | None) -> str:
    return "(none)" if value is None else value


def _totals_lines(totals: dict[str, Any]) -> list[str]:
    calls = totals["calls"]
    ok = calls - totals["failed"]
    tokens = (f"input {totals['input_tokens']:,}, output {totals['output_tokens']:,}, cache read "
              f"{totals['cache_read_tokens']:,}, cache write {totals['cache_write_tokens']:,}, reasoning "
              f"{totals['reasoning_tokens']:,}")
    return table(["", "", ""], [
        ["calls", f"{calls:,}", ""],
        ["succeeded", f"{ok:,}", f"{_share(ok, calls)}"],
        ["failed", f"{totals['failed']:,}", f"{_share(totals['failed'], calls)}: {totals['errors']:,} errors, "
                                            f"{totals['abandoned']:,} abandoned streams"],
        ["tokens", f"{totals['total_tokens']:,}", tokens],
        ["cost", _money(totals["cost_usd"]), f"over {totals['priced']:,} priced calls"],
        ["unpriced", f"{totals['unpriced']:,}", "calls without a known price (not counted in the cost)"],
        ["cache hits", f"{totals['cache_hits']:,}", f"{_share(totals['cache_hits'], calls)}: answered by the response "
                                                    "cache, no request sent ($0, no tokens)"],
    ], "lrl")[1:]


# --- the commands ------------------------------------------------------------------------------------

def _stats(args: argparse.Namespace, out: TextIO) -> int:
    span = window(1 if args.period == "today" else 7, label=args.period)
    return _emit(args, out, "stats", query.stats(_directory(args), span), lambda data: _totals_lines(data["totals"]))


def _cost_rows(rows: list[dict[str, Any]], key: str) -> list[list[str]]:
    return [[_name(row[key]) if key != "day" else str(row[key]), _int(row["calls"]), _money(row["cost_usd"]),
             _int(row["unpriced"])] for row in rows]


def _costs(args: argparse.Namespace, out: TextIO) -> int:
    def human(data: dict[str, Any]) -> list[str]:
        totals = data["totals"]
        lines = [f"total {_money(totals['cost_usd'])} over {totals['priced']:,} priced calls; "
                 f"{totals['unpriced']:,} unpriced (not counted), {totals['calls']:,} calls", ""]
        for title, key in (("by_model", "model"), ("by_project", "project"), ("by_day", "day")):
            lines += table([key, "calls", "cost", "unpriced"], _cost_rows(data[title], key)) + [""]
        return lines[:-1]
    return _emit(args, out, "costs", query.costs(_directory(args), window(args.days)), human)


def _usage_rows(rows: list[dict[str, Any]], key: str, calls: int) -> list[list[str]]:
    return [[_name(row[key]), _int(row["calls"]), _share(row["calls"], calls), _int(row["failed"]),
             _int(row["input_tokens"]), _int(row["output_tokens"]), _money(row["cost_usd"]), _int(row["unpriced"]),
             _ms(row["avg_ms"]), _ms(row["p95_ms"])] for row in rows]


_USAGE = ["calls", "share", "failed", "input tokens", "output tokens", "cost", "unpriced", "avg ms", "p95 ms"]


def _models(args: argparse.Namespace, out: TextIO) -> int:
    def human(data: dict[str, Any]) -> list[str]:
        lines = table(["model", *_USAGE], _usage_rows(data["models"], "model", data["totals"]["calls"]))
        if data["other_models"]:
            lines.append(f"and {data['other_models']} other model(s): {data['other_calls']:,} calls")
        return lines
    return _emit(args, out, "models", query.models(_directory(args), window(args.days), args.top), human)


def _agents(args: argparse.Namespace, out: TextIO) -> int:
    def human(data: dict[str, Any]) -> list[str]:
        return table(["agent", *_USAGE], _usage_rows(data["agents"], "agent_name", data["totals"]["calls"]))
    return _emit(args, out, "agents", query.agents(_directory(args), window(args.days)), human)


def _performance(args: argparse.Namespace, out: TextIO) -> int:
    def human(data: dict[str, Any]) -> list[str]:
        overall = data["totals"]
        lines = [f"response time over {overall['calls']:,} calls: average {_ms(overall['avg_ms'])} ms, median "
                 f"{_ms(overall['p50_ms'])} ms, p95 {_ms(overall['p95_ms'])} ms, max {_ms(overall['max_ms'])} ms"]
        if overall["streams"]:
            lines.append(f"time to first token over {overall['streams']:,} streams: average "
                         f"{_ms(overall['avg_ttft_ms'])} ms, p95 {_ms(overall['p95_ttft_ms'])} ms")
        lines += ["", *table(["model", "calls", "avg ms", "p50 ms", "p95 ms", "max ms", "ttft p95 ms"], [
            [row["model"], _int(row["calls"]), _ms(row["avg_ms"]), _ms(row["p50_ms"]), _ms(row["p95_ms"]),
             _ms(row["max_ms"]), _ms(row["p95_ttft_ms"])] for row in data["by_model"]])]
        lines += ["", "slowest operations (by p95)", *table(["operation", "calls", "avg ms", "p95 ms", "max ms"], [
            [_name(row["operation"]), _int(row["calls"]), _ms(row["avg_ms"]), _ms(row["p95_ms"]), _ms(row["max_ms"])]
            for row in data["slowest_operations"]])]
        return lines
    result = query.performance(_directory(args), window(args.days), args.top)
    return _emit(args, out, "performance", result, human)


def _patterns(args: argparse.Namespace, out: TextIO) -> int:
    def human(data: dict[str, Any]) -> list[str]:
        most = max(row["calls"] for row in data["by_hour"]) or 1
        peaks = ", ".join(f"{row['hour']:02d}:00-{row['hour'] + 1:02d}:00 ({row['calls']:,} calls)"
                          for row in data["peak_hours"])
        busiest = data["busiest_day"]
        lines = [f"peak hours (local): {peaks}",
                 f"busiest day: {busiest['day']} {busiest['day']:%A} ({busiest['calls']:,} calls)", "",
                 *table(["hour", "calls", ""], [[f"{row['hour']:02d}:00", _int(row["calls"]),
                                                 "#" * round(40 * row["calls"] / most)] for row in data["by_hour"]],
                        "lrl"),
                 "", *table(["weekday", "calls"], [[row["weekday"], _int(row["calls"])] for row in data["by_weekday"]]),
                 "", "most common operations",
                 *table(["operation", "calls", "share"], [[_name(row["operation"]), _int(row["calls"]),
                                                           f"{row['share']:.1f}%"] for row in data["operations"]])]
        return lines
    return _emit(args, out, "patterns", query.patterns(_directory(args), window(args.days)), human)


def _export(args: argparse.Namespace, out: TextIO) -> int:
    directory, span, target = _directory(args), window(args.days), args.output
    if target is not None and (target.is_file() or not target.exists()):  # replaced whole, never half-written
        return _exported(args, out, export_records(directory, span, target, args.format, args.fields), target)
    # To stdout, or into a pipe or device given as -o (/dev/stdout, a FIFO): written into, never replaced;
    # what is said about the export goes to stderr, so that what is piped is the data alone.
    with tempfile.TemporaryDirectory(prefix="llmclient-export-") as folder:
        written = Path(folder) / f"export.{args.format}"
        result = export_records(directory, span, written, args.format, args.fields)
        if result.records:
            try:
                if target is None:
                    _copy(written, out)
                else:
                    with written.open("rb") as source, target.open("wb") as sink:
                        shutil.copyfileobj(source, sink, 1 << 20)
            except BrokenPipeError:  # the reader stopped (`| head`): it has what it wanted
                if target is None:
                    _stop_writing(out)
                return 0
            except OSError as exc:
                raise ConfigurationError(f"cannot write {target}: {exc}") from exc
    return _exported(args, sys.stderr, result, target)


def _copy(path: Path, out: TextIO) -> None:
    with path.open("rb") as source:
        buffer = getattr(out, "buffer", None)
        if buffer is None:  # a text stream without bytes underneath (a StringIO)
            out.write(source.read().decode("utf-8"))
            return
        out.flush()
        shutil.copyfileobj(source, buffer, 1 << 20)
        buffer.flush()


def _exported(args: argparse.Namespace, notes: TextIO, result: Result, path: Path | None) -> int:
    if args.json:
        return _emit(args, notes, "export", result, lambda data: [])
    if result.records == 0:
        notes.write(_empty_line(result) + "\n" + _skipped(result))
        return 0
    where = f" to {path}" if path is not None else ""
    notes.write(f"exported {result.records:,} records{where} ({args.format}) from {result.directory}: "
                f"{result.window.label}{_span(result.window)}\n{_skipped(result)}")
    return 0


def _report(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.telemetry.report_html import figures, write

    result = figures(_directory(args), window(args.days))
    if result.records:
        write(args.html, result)

    def human(data: dict[str, Any]) -> list[str]:
        return [f"wrote {args.html}: {len(data['by_day'])} days, {len(data['by_model'])} models, "
                f"{result.records:,} calls, {_money(data['totals']['cost_usd'])}"]
    if args.json and result.records:
        result = Result(result.directory, result.window, result.files, result.records, result.skipped,
                        {"html": str(args.html), **result.data})
    return _emit(args, out, "report", result, human)
