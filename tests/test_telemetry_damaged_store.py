"""`llmclient telemetry ...` on stores that were damaged or written by another tool: a line cut off
where JSON allows a newline, timestamps with a UTC offset, durations and costs that are no real
call's, and a reader that stops reading. Every expected figure is worked out by hand in the test.
Stores live in tmp_path and are always passed with --dir."""

from __future__ import annotations

import csv
import io
import json
import re
import subprocess
import sys
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmclient.cli import main
from llmclient.telemetry import export, query
from llmclient.telemetry.query import Result
from llmclient.telemetry.window import window
from tests.test_telemetry_queries import NOW, line, local_zone, write  # noqa: F401 - local_zone: autouse, UTC

# Where a write may have been cut off so that JSON reads on into the next line: after a key's colon,
# inside an object or an array (the cut after 10 characters is `{"schema":`).
CUTS = {"10 characters": lambda text: text[:10],
        "kind": lambda text: text[:text.index('"kind":') + len('"kind":')],
        "tokens": lambda text: text[:text.index('"tokens": {"input":') + len('"tokens": {"input":')],
        "retries": lambda text: text[:text.index('"retries": [') + len('"retries": [')]}


def today_at(minutes_ago: int) -> datetime:
    """A moment of today (the CLI's `stats` window), `minutes_ago` before now but after local midnight."""
    now = datetime.now(timezone.utc)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    return max(now - timedelta(minutes=minutes_ago), midnight + timedelta(seconds=1 + minutes_ago))


def call_ids(lines: list[str]) -> list[str]:
    return [json.loads(text)["call_id"] for text in lines]


@pytest.mark.parametrize("cut", CUTS)
def test_a_cut_off_line_never_swallows_the_next_record(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                       cut: str) -> None:
    """r1, r2 cut off, r3, r4 on their own lines: 3 calls ($0.75) and 1 skipped line, r3 exported."""
    r1, r2, r3, r4 = (line(today_at(4 - n), cost="0.25") for n in range(4))
    day = tmp_path / json.loads(r1)["timestamp"][:10]
    day.mkdir()
    (day / "telemetry.jsonl").write_text("\n".join([r1, CUTS[cut](r2), r3, r4]) + "\n", encoding="utf-8")

    stats = query.stats(tmp_path, window(None))
    assert (stats.records, stats.skipped) == (3, 1)
    assert stats.data["totals"]["cost_usd"] == Decimal("0.75")
    exported = export.export_records(tmp_path, window(None), tmp_path / "out.csv", "csv", ("call_id",))
    assert (exported.records, exported.skipped) == (3, 1)
    assert [row["call_id"] for row in csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text()))] == \
        call_ids([r1, r3, r4])

    assert main(["telemetry", "stats", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^calls +3$", out, re.M) and "skipped 1 unreadable line\n" in out, out


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_cut_off_lines_in_several_files_keep_every_record_and_the_store_order(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int) -> None:
    """Files with a swallowing cut, a cut DuckDB refuses outright (the next line continues it as JSON)
    and garbage, among clean files: every good line is read once, in the store's order."""
    monkeypatch.setattr(export.os, "cpu_count", lambda: workers)
    days = [NOW - timedelta(days=n) for n in range(4, 0, -1)]
    lines = {day: [line(day + timedelta(minutes=m), cost=f"0.{m + 1:02d}") for m in range(5)] for day in days}
    bodies = {day: list(texts) for day, texts in lines.items()}
    bodies[days[0]].insert(2, CUTS["kind"](lines[days[0]][0]))  # swallows the third record
    bodies[days[1]][1:1] = ['{"schema":1,"model":', '"x"}']  # refused: a cut line continued by the next
    bodies[days[2]].insert(4, "not json")
    bodies[days[3]].insert(0, CUTS["retries"](lines[days[3]][1]))  # the file's first line
    for day, texts in bodies.items():
        (tmp_path / day.strftime("%Y-%m-%d")).mkdir()
        (tmp_path / day.strftime("%Y-%m-%d") / "telemetry.jsonl").write_text("\n".join(texts) + "\n")
    everything = [text for day in days for text in lines[day]]

    stats = query.stats(tmp_path, window(None))
    assert (stats.records, stats.skipped, stats.files) == (20, 5, 4)
    assert stats.data["totals"]["cost_usd"] == 4 * Decimal("0.15")  # 0.01 + ... + 0.05 a day
    exported = export.export_records(tmp_path, window(None), tmp_path / "out.csv", "csv", ("call_id",))
    assert (exported.records, exported.skipped, exported.files) == (20, 5, 4)
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert [row["call_id"] for row in rows] == call_ids(everything)


def test_timestamps_with_a_utc_offset_are_read_as_the_instant_they_name(tmp_path: Path, local_zone: Any) -> None:
    """01:00+02:00 is 23:00 UTC the day before; 20:30-05:30 is 02:00 UTC the next day. Read in
    UTC+05:30 (Kolkata), so that DuckDB's own time zone setting cannot shift them either."""
    local_zone("Asia/Kolkata")
    a = line(datetime(2026, 3, 10, 12, tzinfo=timezone.utc), cost="1").replace(
        "2026-03-10T12:00:00.000000Z", "2026-03-10T01:00:00+02:00")
    b = line(datetime(2026, 3, 10, 12, tzinfo=timezone.utc), cost="2").replace(
        "2026-03-10T12:00:00.000000Z", "2026-03-09T20:30:00-05:30")
    c = line(datetime(2026, 3, 10, 12, tzinfo=timezone.utc), cost="4")
    write(tmp_path, [a, b, c])
    span = window(2, now=NOW)  # 2026-03-09 and 2026-03-10, Kolkata days

    patterns = query.patterns(tmp_path, span)
    assert (patterns.records, patterns.skipped) == (3, 0)
    # 23:00Z, 02:00Z and 12:00Z are 04:30, 07:30 and 17:30 in Kolkata, all on 2026-03-10
    assert {row["hour"]: row["calls"] for row in patterns.data["by_hour"] if row["calls"]} == {4: 1, 7: 1, 17: 1}
    costs = query.costs(tmp_path, span).data["by_day"]
    assert [(row["day"], row["calls"], row["cost_usd"]) for row in costs] == [
        (date(2026, 3, 9), 0, None), (date(2026, 3, 10), 3, Decimal(7))]
    export.export_records(tmp_path, span, tmp_path / "out.csv", "csv", ("timestamp", "cost_usd"))
    exported = csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text()))
    rows = {row["cost_usd"]: row["timestamp"] for row in exported}
    assert rows == {"1": "2026-03-09T23:00:00.000000Z", "2": "2026-03-10T02:00:00.000000Z",
                    "4": "2026-03-10T12:00:00.000000Z"}
    outside = window(1, now=datetime(2026, 3, 9, 12, tzinfo=timezone.utc))  # 2026-03-09 in Kolkata: none of them
    assert query.stats(tmp_path, outside).records == 0


def test_a_cost_beyond_any_real_call_is_skipped_not_a_traceback(tmp_path: Path,
                                                               capsys: pytest.CaptureFixture[str]) -> None:
    """Three costs of $9e25 sum past DuckDB's DECIMAL(38,12); no call costs more than $1e12 (that one is kept)."""
    at = NOW - timedelta(hours=1)
    good = [line(at, cost="0.5"), line(at, cost="1000000000000")]
    bad = [line(at, cost=cost) for cost in ("9e25", "9e25", "9e25", "1000000000000.01")]
    write(tmp_path, good + bad)

    stats = query.stats(tmp_path, window(1, now=NOW))
    assert (stats.records, stats.skipped) == (2, 4)
    assert (stats.data["totals"]["cost_usd"], stats.data["totals"]["priced"]) == (Decimal("1000000000000.5"), 2)
    for command in (["costs"], ["costs", "--json"], ["models"], ["report", "--html", str(tmp_path / "r.html")]):
        assert main(["telemetry", *command, "--dir", str(tmp_path), "--days", "3650"]) == 0
        said = capsys.readouterr().out
        assert "skipped 4 unreadable lines" in said or '"skipped_lines": 4' in said, said


def test_a_cost_or_duration_that_is_not_a_number_is_an_unreadable_line(tmp_path: Path) -> None:
    """A cost present but not a JSON number (or negative) is no unknown price: the line is corrupt, as is
    one whose duration is negative or not a number. Only a null cost is unpriced."""
    at = NOW - timedelta(hours=1)
    good = [line(at, cost="0.5", duration=100.0), line(at, cost=None, duration=300.0),
            line(at, cost="0.25", duration=200.0)]
    bad = [line(at, cost=cost) for cost in ('"abc"', '"0.25"', "-1", "true", '{"usd": 1}')]
    bad += [line(at, duration=100.0).replace('"duration_ms": 100.0', f'"duration_ms": {duration}')
            for duration in ("-5", '"abc"', "null")]
    write(tmp_path, good + bad)

    stats = query.stats(tmp_path, window(1, now=NOW))
    totals = stats.data["totals"]
    assert (stats.records, stats.skipped) == (3, 8)
    assert (totals["cost_usd"], totals["priced"], totals["unpriced"]) == (Decimal("0.75"), 2, 1)
    performance = query.performance(tmp_path, window(1, now=NOW)).data["totals"]
    assert (performance["avg_ms"], performance["p50_ms"], performance["max_ms"]) == (200.0, 200.0, 300.0)
    assert performance["p95_ms"] == pytest.approx(290.0)  # 200 + 0.9 * (300 - 200)
    exported = export.export_records(tmp_path, window(None), tmp_path / "out.csv")
    assert (exported.records, exported.skipped) == (3, 8)


def test_every_json_output_is_valid_json_and_no_text_says_nan(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    """Should a non-finite number ever reach the output, --json says null and the tables "-"."""
    write(tmp_path, [line(today_at(1), duration=100.0).replace('"duration_ms": 100.0', '"duration_ms": NaN'),
                     line(today_at(2), duration=1e308), line(today_at(3), duration=1e308), line(today_at(4))])

    def refuse(constant: str) -> None:
        raise ValueError(f"{constant} is not JSON")

    for command in ("stats", "costs", "models", "agents", "performance", "patterns"):
        assert main(["telemetry", command, "--dir", str(tmp_path), "--json"]) == 0
        document = json.loads(capsys.readouterr().out, parse_constant=refuse)
        assert (document["records"], document["skipped_lines"]) == (1, 3), command
        assert main(["telemetry", command, "--dir", str(tmp_path)]) == 0
        said = capsys.readouterr().out
        assert not re.search(r"\b(nan|inf|infinity)\b", said, re.I), said

    real = query.performance

    def infinite(directory: Path, span: Any, top: int = 10) -> Result:
        result = real(directory, span, top)
        totals = result.data["totals"]
        totals.update(avg_ms=float("nan"), p95_ms=float("inf"), max_ms=float("-inf"))
        result.data["by_model"][0]["p50_ms"] = float("nan")
        return result

    monkeypatch.setattr(query, "performance", infinite)
    assert main(["telemetry", "performance", "--dir", str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out, parse_constant=refuse)
    assert [document["totals"][key] for key in ("avg_ms", "p95_ms", "max_ms", "p50_ms")] == [None, None, None, 100.0]
    assert document["by_model"][0]["p50_ms"] is None
    assert main(["telemetry", "performance", "--dir", str(tmp_path)]) == 0
    said = capsys.readouterr().out
    assert not re.search(r"\b(nan|inf|infinity)\b", said, re.I), said
    assert "average - ms, median 100.0 ms, p95 - ms, max - ms" in said


def test_a_reader_that_stops_reading_gets_no_traceback(tmp_path: Path) -> None:
    """`llmclient telemetry ... | head -1`: the pipe closes before the command writes; it ends quietly, 0."""
    write(tmp_path, [line(today_at(n), cost="0.5") for n in range(3)])
    commands = [["stats"], ["stats", "week", "--json"], ["costs"], ["models"], ["agents"], ["performance"],
                ["patterns", "--json"], ["export"], ["report", "--html", str(tmp_path / "r.html")]]
    running = []
    for command in commands:
        process = subprocess.Popen([sys.executable, "-m", "llmclient", "telemetry", *command, "--dir", str(tmp_path)],
                                   stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=tmp_path)
        assert process.stdout is not None
        process.stdout.close()  # the reader is gone before anything is written
        running.append((command, process))
    for command, process in running:
        _, errors = process.communicate(timeout=120)
        assert (process.returncode, errors.decode()) == (0, ""), command
