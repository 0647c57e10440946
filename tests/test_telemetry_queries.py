"""`llmclient telemetry ...` on stores written here: every figure is checked against sums computed
in plain Python from the records the test wrote (Decimal for dollars, zoneinfo for local days),
never against the query code. Stores live in tmp_path and are always passed with --dir."""

from __future__ import annotations

import csv
import io
import json
import random
import re
import statistics
import subprocess
import sys
import time
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from llmclient.cli import main
from llmclient.errors import ConfigurationError
from llmclient.telemetry import export, query
from llmclient.telemetry.window import window

NOW = datetime(2026, 3, 10, 15, 30, tzinfo=timezone.utc)
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "gemini/gemini-2.5-flash", "litellm/ollama/llama3"]
COMMANDS = [["stats"], ["stats", "week"], ["costs"], ["models"], ["agents"], ["performance"], ["patterns"],
            ["export"], ["report", "--html", "REPORT"]]


def line(ts: datetime, *, model: str = "openai/gpt-4o-mini", cost: str | None = "0.0001", success: bool = True,
         tokens: tuple[int, int] | None = (10, 2), agent: str | None = "triage", operation: str | None = "qa",
         project: str = "main", duration: float = 100.0, ttft: float | None = None, kind: str = "complete") -> str:
    """A schema-1 record as the store writes it: the cost as a JSON number of its exact digits."""
    record: dict[str, Any] = {
        "schema": 1, "timestamp": ts.astimezone(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "call_id": f"{random.getrandbits(128):032x}", "kind": kind, "mode": "sync", "agent_name": agent,
        "operation": operation, "session_id": "s1", "user_id": None, "provider": model.partition("/")[0],
        "model": model, "requested_model": model, "profile": None, "duration_ms": duration, "ttft_ms": ttft,
        "tokens": None if tokens is None else {"input": tokens[0], "output": tokens[1], "total": sum(tokens),
                                               "cache_read": 0, "cache_write": 0, "reasoning": 0},
        "cost_usd": "COST", "cost_source": None if cost is None else "price-table", "success": success,
        "outcome": "ok" if success else "error", "finish_reason": "stop" if success else None,
        "request_id": None, "attempts": 1, "retries": [], "reasks": 0, "prompt_hash": None, "response_hash": None,
        "replay": False, "llmclient_version": "0.1.0", "pid": 1,
        "metadata": {"project": project, "git_branch": "main", "error": None if success else
                     {"type": "ServerError", "status_code": 503, "message": "down"}, "tags": None},
    }
    return json.dumps(record).replace('"COST"', "null" if cost is None else cost)


def write(store: Path, lines: list[str], name: str = "telemetry.jsonl", end: str = "\n") -> None:
    """Append lines to the day files their timestamps say (UTC days), as the store does."""
    by_day: dict[str, list[str]] = defaultdict(list)
    for text in lines:
        by_day[json.loads(text)["timestamp"][:10]].append(text)
    for day, texts in by_day.items():
        (store / day).mkdir(parents=True, exist_ok=True)
        with (store / day / name).open("a", encoding="utf-8") as file:
            file.write("\n".join(texts) + end)


def parsed(lines: list[str]) -> list[dict[str, Any]]:
    return [json.loads(text, parse_float=Decimal) for text in lines]


def unpriced(record: dict[str, Any]) -> bool:
    return record["cost_usd"] is None and (record["success"] or record["tokens"] is not None)


@pytest.fixture(autouse=True)
def local_zone(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    """The process's local time zone: UTC unless the test says `local_zone("Asia/Kolkata")`."""
    def use(name: str) -> ZoneInfo:
        monkeypatch.setenv("TZ", name)
        time.tzset()
        return ZoneInfo(name)
    use("UTC")
    yield use
    monkeypatch.undo()
    time.tzset()


def random_lines(rng: random.Random, start: datetime, hours: int, count: int) -> list[str]:
    out = []
    for _ in range(count):
        failed = rng.random() < 0.1
        model = rng.choice(MODELS)
        cost = None if failed or model.startswith("litellm") else f"0.{rng.randint(1, 10**9):09d}"
        out.append(line(start + timedelta(seconds=rng.uniform(0, hours * 3600)), model=model, cost=cost,
                        success=not failed, tokens=None if failed and rng.random() < 0.7 else
                        (rng.randint(1, 5000), rng.randint(1, 900)), agent=rng.choice(["triage", "coder", None]),
                        operation=rng.choice(["qa", "summarize", None]), project=rng.choice(["main", "web"]),
                        duration=round(rng.uniform(5, 5000), 3), kind=rng.choice(["complete", "stream"]),
                        ttft=round(rng.uniform(1, 300), 3) if rng.random() < 0.4 else None))
    return out


def test_window_is_local_days_across_a_daylight_saving_change(local_zone: Any) -> None:
    zone = local_zone("America/New_York")  # clocks go forward on 2026-03-08
    span = window(7, now=NOW)
    assert (span.first, span.last) == (date(2026, 3, 4), date(2026, 3, 10))
    assert span.start == datetime(2026, 3, 4, tzinfo=zone).astimezone(timezone.utc)
    assert span.end == datetime(2026, 3, 11, tzinfo=zone).astimezone(timezone.utc)
    assert [offset for _, offset in span.shifts] == [-5 * 3600, -4 * 3600]
    assert span.shifts[1][0] == datetime(2026, 3, 8, 7, tzinfo=timezone.utc)  # 02:00 EST


def test_stats_and_costs_match_the_records(tmp_path: Path, local_zone: Any) -> None:
    zone = local_zone("Asia/Kolkata")  # +05:30: a UTC day is split across two local days
    rng = random.Random(3)
    span = window(7, now=NOW)
    assert span.start is not None and span.end is not None
    inside = random_lines(rng, span.start, 7 * 24, 600)
    outside = [line(span.start - timedelta(seconds=1)), line(span.end), line(span.start - timedelta(days=3))]
    write(tmp_path, inside + outside)
    records = parsed(inside)

    stats = query.stats(tmp_path, span)
    totals = stats.data["totals"]
    assert stats.records == totals["calls"] == 600 and stats.skipped == 0
    assert totals["failed"] == sum(not r["success"] for r in records)
    assert totals["input_tokens"] == sum(r["tokens"]["input"] for r in records if r["tokens"])
    assert totals["output_tokens"] == sum(r["tokens"]["output"] for r in records if r["tokens"])
    assert totals["cost_usd"] == sum(r["cost_usd"] for r in records if r["cost_usd"] is not None)
    assert totals["priced"] == sum(r["cost_usd"] is not None for r in records)
    assert totals["unpriced"] == sum(map(unpriced, records)) > 0

    costs = query.costs(tmp_path, span).data
    for key, field in (("by_model", "model"), ("by_project", "project")):
        want: dict[str, Decimal] = defaultdict(Decimal)
        for r in records:
            name = r["model"] if field == "model" else r["metadata"]["project"]
            want[name] += r["cost_usd"] or 0
        got = {row[field]: row["cost_usd"] or Decimal(0) for row in costs[key]}
        assert got == want
    assert [row["model"] for row in costs["by_model"]][-1] == "litellm/ollama/llama3"  # no cost: last
    assert next(row for row in costs["by_model"] if row["model"].startswith("litellm"))["cost_usd"] is None
    per_day: dict[date, list[dict[str, Any]]] = defaultdict(list)
    for r in records:
        stamp = datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00"))
        per_day[stamp.astimezone(zone).date()].append(r)
    assert [row["day"] for row in costs["by_day"]] == [date(2026, 3, 4) + timedelta(days=n) for n in range(7)]
    for row in costs["by_day"]:
        day = per_day[row["day"]]
        assert row["calls"] == len(day)
        assert (row["cost_usd"] or Decimal(0)) == sum((r["cost_usd"] or Decimal(0)) for r in day)
        assert row["unpriced"] == sum(map(unpriced, day))


def test_stats_count_the_answers_of_the_response_cache(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A hit is recorded with cache_hit true, no tokens and $0 from the "cache" source; records written before
    the field existed count as misses."""
    now = datetime.now(timezone.utc)
    midnight = now.astimezone().replace(hour=0, minute=0, second=0, microsecond=0)
    now = max(now - timedelta(minutes=1), midnight + timedelta(seconds=1))  # today, as `stats today` sees it
    hit = json.loads(line(now, cost="0", tokens=None))
    hit.update(cache_hit=True, cost_source="cache")
    missed = json.loads(line(now))
    missed["cache_hit"] = False
    old = line(now)  # no cache_hit field at all
    assert "cache_hit" not in json.loads(old)
    write(tmp_path, [json.dumps(hit), json.dumps(hit), json.dumps(missed), old])
    totals = query.stats(tmp_path, window(1)).data["totals"]
    assert (totals["calls"], totals["cache_hits"], totals["priced"], totals["cost_usd"]) == (4, 2, 4, Decimal("0.0002"))
    assert main(["telemetry", "stats", "today", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(r"^cache hits +2 +50\.0%: answered by the response cache, no request sent", out, re.M), out


def test_costs_are_exact_decimals(tmp_path: Path) -> None:
    """0.1 + 0.2 ... as a float sum is not 3; and 12-decimal costs keep every digit."""
    lines = [line(NOW - timedelta(minutes=n), cost="0.1" if n % 2 else "0.2") for n in range(20)]
    lines += [line(NOW - timedelta(hours=1), cost="0.000000123457"), line(NOW - timedelta(hours=2), cost="12.5")]
    write(tmp_path, lines)
    totals = query.stats(tmp_path, window(1, now=NOW)).data["totals"]
    assert totals["cost_usd"] == Decimal("15.500000123457")
    assert sum([0.1, 0.2] * 10) != 3.0  # what a float sum would have shown


def test_models_agents_performance_patterns(tmp_path: Path, local_zone: Any) -> None:
    zone = local_zone("Europe/Berlin")
    rng = random.Random(5)
    span = window(3, now=NOW)
    assert span.start is not None
    inside = random_lines(rng, span.start, 3 * 24, 400)
    write(tmp_path, inside)
    records = parsed(inside)

    models = query.models(tmp_path, span, top=2).data
    counts = Counter(r["model"] for r in records)
    assert [(row["model"], row["calls"]) for row in models["models"]] == counts.most_common(2)
    assert models["other_models"] == len(counts) - 2
    assert models["other_calls"] == sum(count for _, count in counts.most_common()[2:])

    agents = query.agents(tmp_path, span).data["agents"]
    by_agent = Counter(r["agent_name"] for r in records)
    assert {row["agent_name"]: row["calls"] for row in agents} == dict(by_agent)
    for row in agents:
        durations = [float(r["duration_ms"]) for r in records if r["agent_name"] == row["agent_name"]]
        assert row["avg_ms"] == pytest.approx(statistics.fmean(durations))
        assert row["p95_ms"] == pytest.approx(statistics.quantiles(durations, n=100, method="inclusive")[94])

    performance = query.performance(tmp_path, span, top=10).data
    durations = [float(r["duration_ms"]) for r in records]
    overall = performance["totals"]
    assert overall["avg_ms"] == pytest.approx(statistics.fmean(durations))
    assert overall["p50_ms"] == pytest.approx(statistics.median(durations))
    assert overall["p95_ms"] == pytest.approx(statistics.quantiles(durations, n=100, method="inclusive")[94])
    assert overall["max_ms"] == max(durations)
    ttfts = [float(r["ttft_ms"]) for r in records if r["ttft_ms"] is not None]
    assert overall["streams"] == len(ttfts)
    assert overall["p95_ttft_ms"] == pytest.approx(statistics.quantiles(ttfts, n=100, method="inclusive")[94])
    slowest = performance["slowest_operations"]
    p95s = {op: statistics.quantiles([float(r["duration_ms"]) for r in records if r["operation"] == op], n=100,
                                     method="inclusive")[94] for op in {r["operation"] for r in records}}
    assert [row["operation"] for row in slowest] == sorted(p95s, key=lambda op: -p95s[op])

    patterns = query.patterns(tmp_path, span).data
    local = [datetime.fromisoformat(r["timestamp"].replace("Z", "+00:00")).astimezone(zone) for r in records]
    hours = Counter(stamp.hour for stamp in local)
    assert [row["calls"] for row in patterns["by_hour"]] == [hours.get(hour, 0) for hour in range(24)]
    assert patterns["peak_hours"][0]["calls"] == max(hours.values())
    days = Counter(stamp.date() for stamp in local)
    assert (patterns["busiest_day"]["day"], patterns["busiest_day"]["calls"]) == max(days.items(), key=lambda i: i[1])
    weekdays = Counter(stamp.strftime("%A") for stamp in local)
    assert {row["weekday"]: row["calls"] for row in patterns["by_weekday"] if row["calls"]} == dict(weekdays)
    operations = Counter(r["operation"] for r in records)
    assert {row["operation"]: row["calls"] for row in patterns["operations"]} == dict(operations)
    assert sum(row["share"] for row in patterns["operations"]) == pytest.approx(100)


CORRUPT = ["{\"schema\":1,\"timestamp\":\"2026-03-10T10:00:00.000000Z\",\"call_id\":\"ab",  # cut off
           "\x00\x01 garbage that is not JSON",
           '{"schema":0,"timestamp":"2026-03-10T10:00:00Z","model":"old/format","success":true}',
           '{"schema":1,"timestamp":"2026-03-10T10:00:00.000000Z"}',  # fields missing
           "[1, 2, 3]",
           '{"schema":1,"timestamp":"2026-13-45T10:00:00.000000Z","model":"x","success":true,"outcome":"ok",'
           '"duration_ms":1}']


def corrupt_store(store: Path) -> tuple[list[str], int]:
    """Good records with every kind of bad line among them; the number of bad lines."""
    good = [line(NOW - timedelta(hours=n), cost="0.25") for n in range(1, 6)]
    day = store / "2026-03-10"
    day.mkdir(parents=True)
    body = "\n".join([good[0], *CORRUPT, good[1], good[2]]) + "\n"
    (day / "telemetry.jsonl").write_bytes(body.encode() + b'{"model": "\xff\xfe"}\n' + good[3].encode()
                                          + b"\n" + good[4][:40].encode())  # invalid UTF-8; a truncated last line
    # A line cut off and the next one continuing it as JSON: DuckDB refuses the file even with ignore_errors.
    (day / "telemetry.101010000000.jsonl").write_text(good[4] + '\n{"schema":1,"model":\n"x"}\n', encoding="utf-8")
    (day / "prompts.jsonl").write_text("not a record file\n", encoding="utf-8")  # never read
    return good[:5], len(CORRUPT) + 1 + 1 + 2


def test_corrupt_lines_are_skipped_and_counted(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    _, bad = corrupt_store(tmp_path)
    result = query.stats(tmp_path, window(1, now=NOW))
    assert (result.records, result.skipped) == (5, bad)
    assert result.data["totals"]["cost_usd"] == Decimal("1.25")
    exported = export.export_records(tmp_path, window(None), tmp_path / "out.csv")
    assert (exported.records, exported.skipped) == (5, bad)
    for command in (["costs"], ["patterns"], ["export", "-o", str(tmp_path / "x.csv")]):
        assert main(["telemetry", *command, "--dir", str(tmp_path), "--days", "3650"]) == 0
        captured = capsys.readouterr()
        assert f"skipped {bad} unreadable lines" in captured.out + captured.err
        assert "Traceback" not in captured.out + captured.err


def test_empty_or_missing_store_says_so(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    empty = tmp_path / "empty"
    (empty / "2020-01-01").mkdir(parents=True)  # a day folder with an empty file, and the summary
    (empty / "2020-01-01" / "telemetry.jsonl").write_text("")
    (empty / "summary.json").write_text("{}")
    old = tmp_path / "old"  # nothing in the window asked for
    write(old, [line(datetime(2020, 1, 1, tzinfo=timezone.utc))])
    for store in (tmp_path / "missing", empty, old):
        for command in COMMANDS:
            command = [str(tmp_path / "r.html") if part == "REPORT" else part for part in command]
            if store == old and command == ["export"]:
                command = ["export", "--days", "7"]
            assert main(["telemetry", *command, "--dir", str(store)]) == 0
            captured = capsys.readouterr()
            said = captured.out + captured.err
            assert str(store) in said and ("no telemetry store" in said or "no telemetry records" in said), said
            assert main(["telemetry", *command, "--dir", str(store), "--json"]) == 0
            document = json.loads(capsys.readouterr().out or "{}") if command[0] != "export" else None
            if document is not None:
                assert document["empty"] is True and str(store) in document["message"]
    assert not (tmp_path / "r.html").exists()


def test_cli_tables_and_json(tmp_path: Path, capsys: pytest.CaptureFixture[str], local_zone: Any) -> None:
    """Records around now (the CLI's window ends today), in UTC+05:30."""
    zone = local_zone("Asia/Kolkata")
    now = datetime.now(timezone.utc)
    midnight = datetime.combine(now.astimezone(zone).date(), datetime.min.time(), zone)
    today = [line(max(now - timedelta(minutes=n), midnight + timedelta(seconds=1 + n)), model=MODELS[n % 2],
                  cost=f"0.00001234{n}", project=["main", "web"][n % 2]) for n in range(6)]
    today += [line(midnight + timedelta(seconds=1), model=MODELS[3], cost=None)]
    yesterday = [line(midnight - timedelta(seconds=1), cost="5")]  # the last second of the local yesterday
    write(tmp_path, today + yesterday)
    want = sum(Decimal(r["cost_usd"]) for r in parsed(today) if r["cost_usd"] is not None)

    assert main(["telemetry", "stats", "today", "--dir", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert re.search(rf"^calls +{len(today)}$", out, re.M), out
    assert re.search(rf"^cost +\${re.escape(format(want.normalize(), 'f'))} +over 6 priced calls$", out, re.M), out
    assert re.search(r"^unpriced +1 +calls without a known price", out, re.M), out
    assert "skipped" not in out
    assert main(["telemetry", "costs", "--days", "1", "--dir", str(tmp_path), "--json"]) == 0
    document = json.loads(capsys.readouterr().out)
    assert document["records"] == len(today) and document["skipped_lines"] == 0
    assert document["totals"]["cost_usd"] == format(want.normalize(), "f")
    assert {row["model"]: row["cost_usd"] and Decimal(row["cost_usd"]) for row in document["by_model"]} == {
        MODELS[0]: sum(Decimal(r["cost_usd"]) for r in parsed(today[:6:2])),
        MODELS[1]: sum(Decimal(r["cost_usd"]) for r in parsed(today[1:6:2])), MODELS[3]: None}
    assert main(["telemetry", "costs", "--days", "1", "--dir", str(tmp_path)]) == 0
    rows = [row for row in capsys.readouterr().out.splitlines() if row.startswith(("openai/", "anthropic/"))]
    assert len(rows) == 2 and len({row.rindex(".") for row in rows}) == 1  # the dollars line up on their point


def test_export_csv_jsonl_and_stdout(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rng = random.Random(9)
    lines = random_lines(rng, NOW - timedelta(days=2), 48, 50)
    write(tmp_path, lines)
    # The store's order: day by day, each day's lines as they were written.
    records = sorted(parsed(lines), key=lambda r: r["timestamp"][:10])
    export.export_records(tmp_path, window(None), tmp_path / "out.csv")
    rows = list(csv.DictReader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert list(rows[0]) == list(export.EXPORT_DEFAULT)
    assert [row["call_id"] for row in rows] == [r["call_id"] for r in records]
    assert [Decimal(row["cost_usd"]) if row["cost_usd"] else None for row in rows] == [r["cost_usd"] for r in records]
    export.export_records(tmp_path, window(None), tmp_path / "out.jsonl", "jsonl", ("timestamp", "model", "cost_usd"))
    exported = [json.loads(text) for text in (tmp_path / "out.jsonl").read_text().splitlines()]
    assert [row["cost_usd"] and Decimal(row["cost_usd"]) for row in exported] == [r["cost_usd"] for r in records]
    assert all(row["cost_usd"] is None or isinstance(row["cost_usd"], str) for row in exported)
    assert [(row["timestamp"], row["model"]) for row in exported] == [(r["timestamp"], r["model"]) for r in records]
    assert main(["telemetry", "export", "--dir", str(tmp_path), "--fields", "call_id,success"]) == 0
    captured = capsys.readouterr()
    assert captured.out.splitlines() == ["call_id,success", *(f"{r['call_id']},{str(r['success']).lower()}"
                                                             for r in records)]
    assert "exported 50 records" in captured.err
    with pytest.raises(ConfigurationError, match="unknown export field"):
        export.export_records(tmp_path, window(None), tmp_path / "x.csv", "csv", ("nope",))
    (tmp_path / "a-file").write_text("")
    assert main(["telemetry", "export", "--dir", str(tmp_path), "-o", str(tmp_path / "a-file" / "x.csv")]) == 2
    assert "cannot write" in capsys.readouterr().err
    assert sorted(path.name for path in tmp_path.iterdir() if not path.name[:1].isdigit()) == [
        "a-file", "out.csv", "out.jsonl"]  # no partial file left behind


@pytest.mark.parametrize(("workers", "kernel_copy"), [(1, True), (3, True), (4, True), (3, False)])
def test_export_in_parts_keeps_the_store_order_one_header_and_every_count(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, workers: int, kernel_copy: bool) -> None:
    """Export cuts the files into runs, one DuckDB connection each, and joins the parts (in the kernel,
    or by reading and writing where it cannot): the rows come out exactly as one reader would give
    them, a bad line in any run is counted once."""
    monkeypatch.setattr(export.os, "cpu_count", lambda: workers)
    if not kernel_copy:
        def refused(*args: Any) -> int:
            raise OSError(18, "Invalid cross-device link")
        monkeypatch.setattr(export.os, "copy_file_range", refused, raising=False)
    days = [NOW - timedelta(days=n) for n in range(6, 0, -1)]
    lines = [line(day + timedelta(minutes=m), cost=f"0.{m + 1:02d}") for day in days for m in range(7)]
    write(tmp_path, lines)
    late = line(days[4] + timedelta(minutes=30))
    torn = tmp_path / days[4].strftime("%Y-%m-%d") / "telemetry.jsonl"  # the input DuckDB refuses, in a late run
    torn.write_text(torn.read_text() + '{"schema":1,"model":\n"x"}\n' + late + "\n")
    garbage = tmp_path / days[1].strftime("%Y-%m-%d") / "telemetry.jsonl"
    garbage.write_text(garbage.read_text() + "not json\n")
    expected = [r["call_id"] for r in parsed(lines[:5 * 7] + [late] + lines[5 * 7:])]
    exported = export.export_records(tmp_path, window(None), tmp_path / "out.csv", "csv", ("call_id", "cost_usd"))
    rows = list(csv.reader(io.StringIO((tmp_path / "out.csv").read_text())))
    assert rows[0] == ["call_id", "cost_usd"] and ["call_id", "cost_usd"] not in rows[1:]
    written = [row[0] for row in rows[1:]]
    assert exported.records == len(written) == 6 * 7 + 1 and exported.skipped == 2 + 1
    assert exported.files == 6
    assert written == expected  # the store's order, day by day


def test_rotated_segments_are_read_and_other_files_not(tmp_path: Path) -> None:
    write(tmp_path, [line(NOW - timedelta(hours=1), cost="1")], name="telemetry.093000000000.jsonl")
    write(tmp_path, [line(NOW - timedelta(hours=2), cost="2")])
    write(tmp_path, [line(NOW - timedelta(hours=3), cost="4")], name="telemetry-copy.jsonl")
    result = query.stats(tmp_path, window(1, now=NOW))
    assert (result.files, result.records, result.data["totals"]["cost_usd"]) == (2, 2, Decimal(3))


def test_without_duckdb_a_configuration_error_names_the_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                capsys: pytest.CaptureFixture[str]) -> None:
    write(tmp_path, [line(NOW)])
    monkeypatch.setitem(sys.modules, "duckdb", None)  # import duckdb raises ImportError
    with pytest.raises(ConfigurationError, match=r"pip install 'llmclient\[telemetry\]'"):
        query.stats(tmp_path, window(1, now=NOW))
    assert main(["telemetry", "stats", "--dir", str(tmp_path)]) == 2
    assert "pip install 'llmclient[telemetry]'" in capsys.readouterr().err


def test_real_subprocess_and_help(tmp_path: Path) -> None:
    write(tmp_path, [line(datetime.now(timezone.utc), cost="0.5")])
    done = subprocess.run([sys.executable, "-m", "llmclient", "telemetry", "stats", "week", "--dir", str(tmp_path),
                           "--json"], capture_output=True, text=True, check=True, cwd=tmp_path)
    assert json.loads(done.stdout)["totals"]["cost_usd"] == "0.5"
    listed = subprocess.run([sys.executable, "-m", "llmclient", "--help"], capture_output=True, text=True, check=True)
    assert "telemetry" in listed.stdout
    assert not list(tmp_path.glob(".tmp*")) and not list(tmp_path.glob("*.wal"))  # DuckDB left nothing here
