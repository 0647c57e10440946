"""`llmclient telemetry ...` on a store of 1,000,000 records: every command, as a real subprocess
(`python -m llmclient telemetry ...`, so interpreter start and the DuckDB import are counted), must
answer in <= 3 s. Prints the seconds per command and the machine; exits 1 if any is over.

The store is generated into a temporary directory (deleted afterwards; --keep to look at it): 30
UTC days ending now, busier on weekdays and in working hours, several models, agents, operations
and projects, ~3% failed calls, unpriced models (cost null), streams with a time to first token,
retries, a rotated segment on the busiest days, and a few corrupt lines (a truncated line, garbage,
an old-schema record) that the commands must skip and count.

    python benchmarks/telemetry_queries.py [--records 1000000] [--days 30] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path

LIMIT = 3.0  # seconds per command
# The store's days are UTC days; in UTC the CLI's 30 local days are exactly those.
ENV = dict(os.environ, TZ="UTC", LLM_TELEMETRY_STORAGE_ENABLED="false")
# (model, input price, output price per token; None: unpriced, its cost is null), weight
MODELS = [
    ("openai/gpt-4o-mini", Decimal("0.00000015"), Decimal("0.0000006"), 30),
    ("openai/gpt-4o", Decimal("0.0000025"), Decimal("0.00001"), 10),
    ("anthropic/claude-sonnet-4-5", Decimal("0.000003"), Decimal("0.000015"), 15),
    ("anthropic/claude-haiku-4-5", Decimal("0.000001"), Decimal("0.000005"), 12),
    ("gemini/gemini-2.5-flash", Decimal("0.0000003"), Decimal("0.0000025"), 14),
    ("cohere/command-r", Decimal("0.00000015"), Decimal("0.0000006"), 5),
    ("mistral/mistral-small-latest", Decimal("0.0000001"), Decimal("0.0000003"), 6),
    ("litellm/ollama/llama3.1", None, None, 5),
    ("openai/ft:gpt-4o-mini:acme:7f3a", None, None, 3),
]
AGENTS = [("triage", 25), ("summarizer", 20), ("coder", 15), ("support-bot", 15), ("research", 10), (None, 15)]
OPERATIONS = [("qa", 25), ("summarize", 20), ("classify", 15), ("extract", 12), ("chat", 15), ("translate", 5),
              (None, 8)]
PROJECTS = [("main", 50), ("billing", 20), ("web", 20), ("data-pipeline", 10)]
HOURS = [1, 1, 1, 1, 1, 2, 3, 6, 10, 12, 12, 11, 9, 11, 12, 12, 10, 8, 5, 4, 3, 2, 2, 1]  # weight per UTC hour
CORRUPT = ['{"schema":1,"timestamp":"2026-01-01T00:00:00.000000Z","call_id":"trunc',  # a cut-off write
           "\x00\x00garbage that is not JSON",
           '{"schema":0,"timestamp":"2026-01-01T00:00:00Z","model":"old/format","cost":1}']

_LINE = ('{{"schema":1,"timestamp":"{ts}","call_id":"{cid}","kind":"{kind}","mode":"{mode}","agent_name":{agent},'
         '"operation":{op},"session_id":{session},"user_id":{user},"provider":"{provider}","model":"{model}",'
         '"requested_model":"{model}","profile":null,"duration_ms":{ms},"ttft_ms":{ttft},"tokens":{tokens},'
         '"cost_usd":{cost},"cost_source":{source},"success":{success},"outcome":"{outcome}",'
         '"finish_reason":{finish},"request_id":{rid},"attempts":{attempts},"retries":{retries},"reasks":0,'
         '"prompt_hash":"sha256:{ph}","response_hash":{rh},"replay":false,"llmclient_version":"0.1.0",'
         '"pid":{pid},"metadata":{{"project":"{project}","git_branch":"main","error":{error},"tags":null}}}}')
_RETRY = ('[{"model":"%s","error":"ServerError","status_code":503,"waited":0.5,'
          '"message":"503 Service Unavailable: the server is overloaded, try again later"}]')
_ERROR = '{"type":"RateLimitError","status_code":429,"message":"429 Too Many Requests: rate limit reached"}'


def _q(value: str | None) -> str:
    return "null" if value is None else f'"{value}"'


def _draw(rng: random.Random, table: list[tuple[str | None, int]], count: int) -> list[str | None]:
    return rng.choices([value for value, _ in table], [weight for _, weight in table], k=count)


def generate(directory: Path, records: int = 1_000_000, days: int = 30, seed: int = 7) -> int:
    """Write `records` records (and a few corrupt lines) spread over the last `days` UTC days;
    the number of corrupt lines written."""
    rng = random.Random(seed)
    now = datetime.now(timezone.utc)
    first = (now - timedelta(days=days - 1)).replace(hour=0, minute=0, second=0, microsecond=0)
    weights = [(1.0 if (first + timedelta(days=d)).weekday() < 5 else 0.45) * rng.uniform(0.8, 1.2)
               for d in range(days)]
    per_day = [int(records * w / sum(weights)) for w in weights]
    per_day[-1] += records - sum(per_day)
    model_names = [m[0] for m in MODELS]
    model_weights = [m[3] for m in MODELS]
    prices = {m[0]: (m[1], m[2]) for m in MODELS}
    corrupt = 0
    for day_index, count in enumerate(per_day):
        day = first + timedelta(days=day_index)
        limit = (now - day).total_seconds() if day_index == days - 1 else 86400.0  # today: nothing after now
        hours = [h for h in range(24) if h * 3600 < limit]
        seconds = sorted(min(limit - 1e-3, rng.choices(hours, [HOURS[h] for h in hours])[0] * 3600
                             + rng.random() * 3600) for _ in range(count))
        lines = []
        models = rng.choices(model_names, model_weights, k=count)
        agents, operations = _draw(rng, AGENTS, count), _draw(rng, OPERATIONS, count)
        projects = _draw(rng, PROJECTS, count)
        for second, model, agent, operation, project in zip(seconds, models, agents, operations, projects):
            ts = (day + timedelta(seconds=max(second, 0.0))).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            roll = rng.random()
            failed = roll < 0.03
            abandoned = not failed and roll < 0.035
            stream = rng.random() < 0.3
            ms = round(rng.lognormvariate(6.5, 0.7), 3)
            input_tokens, output_tokens = rng.randint(20, 4000), rng.randint(1, 800)
            price = prices[model]
            cost = "null" if failed or price[0] is None else format(
                input_tokens * price[0] + output_tokens * price[1], "f")  # type: ignore[operator]
            retried = failed or rng.random() < 0.04
            lines.append(_LINE.format(
                ts=ts, cid=f"{rng.getrandbits(128):032x}", kind="stream" if stream else "complete",
                mode=rng.choice(("sync", "async")), agent=_q(agent), op=_q(operation),
                session=_q(f"s{rng.randint(1, 5000)}"), user=_q(f"u{rng.randint(1, 300)}" if rng.random() < 0.5 else None),
                provider=model.partition("/")[0], model=model, ms=ms,
                ttft="null" if not stream or failed else round(ms * rng.uniform(0.05, 0.4), 3),
                tokens="null" if failed else (f'{{"input":{input_tokens},"output":{output_tokens},'
                                              f'"total":{input_tokens + output_tokens},"cache_read":0,'
                                              f'"cache_write":0,"reasoning":0}}'),
                cost=cost, source="null" if cost == "null" else '"price-table"',
                success="false" if failed or abandoned else "true",
                outcome="error" if failed else "abandoned" if abandoned else "ok",
                finish="null" if failed or abandoned else '"stop"',
                rid="null" if failed else f'"chatcmpl-{rng.getrandbits(64):016x}"',
                attempts=1 + retried, retries=_RETRY % model if retried else "[]",
                ph=f"{rng.getrandbits(256):064x}", rh="null" if failed else f'"sha256:{rng.getrandbits(256):064x}"',
                pid=rng.randint(1000, 60000), project=project,
                error=_ERROR if failed else "null"))
        if day_index % 10 == 3:  # a few corrupt lines on some days, as a crash or an old writer leaves them
            lines.insert(len(lines) // 2, CORRUPT[(day_index // 10) % len(CORRUPT)])
            corrupt += 1
        folder = directory / day.strftime("%Y-%m-%d")
        folder.mkdir(parents=True, exist_ok=True)
        if count > records / days * 1.1:  # the busiest days were rotated once: a segment and the live file
            half = len(lines) // 2
            (folder / "telemetry.120000000000.jsonl").write_text("\n".join(lines[:half]) + "\n", encoding="utf-8")
            lines = lines[half:]
        (folder / "telemetry.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return corrupt


def commands(store: Path, out: Path) -> list[list[str]]:
    """Every query command, with its defaults (30 days; export: every day), as the CLI's arguments."""
    return [["stats", "today"], ["stats", "week"], ["costs", "--days", "30"], ["models", "--top", "10"], ["agents"],
            ["performance"], ["patterns"], ["costs", "--json"], ["export"], ["export", "-o", str(out / "calls.csv")],
            ["export", "--format", "jsonl", "-o", str(out / "calls.jsonl")],
            ["report", "--html", str(out / "report.html")]]


def run(arguments: list[str], store: Path, runs: int) -> tuple[float, float, str]:
    """Best and worst seconds of `runs` runs, and the first run's output (stdout, else stderr)."""
    command = [sys.executable, "-m", "llmclient", "telemetry", *arguments, "--dir", str(store)]
    times, shown = [], ""
    for number in range(runs):
        started = time.perf_counter()
        # export to stdout writes some 150 MB: into /dev/null, as a pipe to a fast reader would take it
        done = subprocess.run(command, stdout=subprocess.DEVNULL if arguments == ["export"] else subprocess.PIPE,
                              stderr=subprocess.PIPE, text=True, check=False, env=ENV)
        times.append(time.perf_counter() - started)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(arguments)} failed ({done.returncode}):\n{done.stderr}")
        if number == 0:
            shown = done.stdout or done.stderr
    return min(times), max(times), shown


def main() -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--records", type=int, default=1_000_000)
    parser.add_argument("--days", type=int, default=30)
    parser.add_argument("--runs", type=int, default=3, help="runs per command; the best counts (a shared machine)")
    parser.add_argument("--keep", action="store_true", help="keep the generated store and outputs")
    options = parser.parse_args()
    import duckdb

    folder = Path(tempfile.mkdtemp(prefix="llmclient-telemetry-bench-"))
    try:
        store, out = folder / "store", folder / "out"
        out.mkdir()
        started = time.perf_counter()
        corrupt = generate(store, options.records, options.days)
        size = sum(path.stat().st_size for path in store.rglob("*.jsonl"))
        print(f"machine: {os.cpu_count()} cpus, {platform.platform()}, {platform.processor() or platform.machine()}, "
              f"python {platform.python_version()}, duckdb {duckdb.__version__}, load average "
              f"{' '.join(f'{load:.2f}' for load in os.getloadavg())}")
        print(f"store: {options.records:,} records + {corrupt} corrupt lines over {options.days} days, "
              f"{size / 1e6:,.0f} MB in {folder} (generated in {time.perf_counter() - started:.1f} s)")
        print(f"each command as `python -m llmclient telemetry ... --dir STORE`, best of {options.runs} runs:")
        slow = []
        for arguments in commands(store, out):
            best, worst, said = run(arguments, store, options.runs)
            label = " ".join(arguments).replace(str(out) + "/", "")
            print(f"  {label:<40} {best:6.2f} s  (worst {worst:.2f} s)")
            if best > LIMIT:
                slow.append(label)
            if arguments[0] != "stats" and "--json" not in arguments:  # every corrupt line is in these windows
                assert f"skipped {corrupt} unreadable lines" in said, (label, said[-300:])
        check = json.loads(run(["costs", "--json"], store, 1)[2])
        assert check["records"] == options.records, check["records"]
        assert check["skipped_lines"] == corrupt, (check["skipped_lines"], corrupt)
        print(f"costs --json: {check['records']:,} records, {check['skipped_lines']} skipped lines (as generated), "
              f"total ${check['totals']['cost_usd']}")
        print(f"FAIL: over {LIMIT:g} s: {', '.join(slow)}" if slow else f"OK: every command in <= {LIMIT:g} s")
        return 1 if slow else 0
    finally:
        if options.keep:
            print(f"kept {folder}")
        else:
            shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
