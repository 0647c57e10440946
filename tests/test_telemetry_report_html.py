"""`llmclient telemetry report --html`: one self-contained page, checked in headless Chromium
(Debian's /usr/bin/chromium driven by Playwright; never `playwright install`). Expected figures are
summed here, in plain Python, from the records the test wrote."""

from __future__ import annotations

import json
import random
import time
from collections import defaultdict
from collections.abc import Iterator
from datetime import date, datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser

from llmclient.cli import main
from llmclient.telemetry import report_html
from llmclient.telemetry.window import window
from tests.browser import browser, open_page  # noqa: F401 - browser: the headless Chromium fixture

NOW = datetime.now(timezone.utc).replace(microsecond=0) - timedelta(minutes=5)  # the CLI's window ends now
DAYS = 7
EVIL = "evil/<script>window.injected = 1</script>"
MODELS = ["openai/gpt-4o-mini", "anthropic/claude-sonnet-4-5", "litellm/ollama/llama3", EVIL]


def record(ts: datetime, model: str, cost: str | None, success: bool = True) -> str:
    text = json.dumps({
        "schema": 1, "timestamp": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"), "call_id": f"{random.getrandbits(128):032x}",
        "kind": "complete", "mode": "sync", "agent_name": "triage", "operation": "qa", "session_id": None,
        "user_id": None, "provider": model.partition("/")[0], "model": model, "requested_model": model,
        "profile": None, "duration_ms": 120.5, "ttft_ms": None,
        "tokens": {"input": 100, "output": 20, "total": 120, "cache_read": 0, "cache_write": 0, "reasoning": 0},
        "cost_usd": "COST", "cost_source": None if cost is None else "price-table", "success": success,
        "outcome": "ok" if success else "error", "finish_reason": "stop" if success else None, "request_id": None,
        "attempts": 1, "retries": [], "reasks": 0, "prompt_hash": None, "response_hash": None, "replay": False,
        "llmclient_version": "0.1.0", "pid": 1, "metadata": {"project": "main", "git_branch": None, "error": None,
                                                              "tags": None}})
    return text.replace('"COST"', "null" if cost is None else cost)


@pytest.fixture(autouse=True)
def utc(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Local days are UTC days here (test_telemetry_queries.py covers other zones)."""
    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    yield
    monkeypatch.undo()
    time.tzset()


@pytest.fixture
def store(tmp_path: Path) -> tuple[Path, list[dict[str, Any]]]:
    """Records over the last DAYS days (one day without any call), and a corrupt line."""
    rng = random.Random(11)
    lines = []
    for _ in range(400):
        day = rng.choice([n for n in range(DAYS) if n != 2])
        ts = (NOW - timedelta(days=day)).replace(hour=0, minute=0, second=0) + timedelta(seconds=rng.uniform(0, 86399))
        if ts > NOW:
            ts = NOW - timedelta(seconds=rng.uniform(1, 3600))
        model = rng.choice(MODELS[:3] if day else MODELS)  # the hostile name only today
        cost = None if model.startswith("litellm") else f"0.{rng.randint(1, 10**8):08d}"
        lines.append(record(ts, model, cost, success=rng.random() > 0.1))
    by_day: dict[str, list[str]] = defaultdict(list)
    for text in lines:
        by_day[json.loads(text)["timestamp"][:10]].append(text)
    for day, texts in by_day.items():
        (tmp_path / day).mkdir()
        (tmp_path / day / "telemetry.jsonl").write_text("\n".join(texts) + "\n{\"schema\":1,\"times", encoding="utf-8")
    return tmp_path, [json.loads(text, parse_float=Decimal) for text in lines]


def expected(records: list[dict[str, Any]]) -> tuple[dict[date, Decimal | None],
                                                   dict[tuple[str, date], tuple[int, Decimal | None]]]:
    """The cost per day and (calls, cost) per model and day: the sum of the priced calls; None (unknown)
    where there were calls and none was priced. A day or cell without any call is absent: $0."""
    per_day: dict[date, Decimal | None] = {}
    cells: dict[tuple[str, date], tuple[int, Decimal | None]] = {}
    for r in records:
        day, cost = date.fromisoformat(r["timestamp"][:10]), r["cost_usd"]
        per_day[day] = plus(per_day.get(day), cost)
        calls, cell_cost = cells.get((r["model"], day), (0, None))
        cells[(r["model"], day)] = (calls + 1, plus(cell_cost, cost))
    return per_day, cells


def plus(total: Decimal | None, cost: Decimal | None) -> Decimal | None:
    return total if cost is None else (total or Decimal(0)) + cost


def known(text: str) -> Decimal | None:
    """A data-cost or data-value: an exact decimal, or empty for an unknown cost."""
    return None if text == "" else Decimal(text)


def test_render_is_self_contained_and_escaped(store: tuple[Path, list[dict[str, Any]]]) -> None:
    directory, _ = store
    page = report_html.render(report_html.figures(directory, window(DAYS, now=NOW)))
    assert "<script>window.injected" not in page and "&lt;script&gt;window.injected" in page
    assert "http" not in page and "src=" not in page and "@import" not in page  # nothing to fetch


def test_cli_writes_the_page(tmp_path: Path, store: tuple[Path, list[dict[str, Any]]],
                             capsys: pytest.CaptureFixture[str]) -> None:
    directory, _ = store
    page = tmp_path / "out" / "report.html"
    assert main(["telemetry", "report", "--html", str(page), "--dir", str(directory), "--days", "3650"]) == 0
    out = capsys.readouterr().out
    assert f"wrote {page}" in out and f"skipped {DAYS - 1} unreadable lines" in out
    assert page.read_text(encoding="utf-8").startswith("<!DOCTYPE html>")


def test_report_in_headless_chromium(tmp_path: Path, store: tuple[Path, list[dict[str, Any]]],
                                     browser: Browser) -> None:
    directory, records = store
    result = report_html.figures(directory, window(DAYS, now=NOW))
    html_file = tmp_path / "report.html"
    report_html.write(html_file, result)
    per_day, cells = expected(records)
    days = [NOW.date() - timedelta(days=n) for n in reversed(range(DAYS))]
    models = sorted({r["model"] for r in records})

    opened = open_page(browser, html_file)
    page, errors, urls = opened.page, opened.errors, opened.urls
    assert page.title() == "LLM telemetry report"

    # the summary
    summary = {key: value for key, value in page.eval_on_selector_all(
        "#summary dd", "nodes => nodes.map(n => [n.dataset.key, n.dataset.value])")}
    assert int(summary["calls"]) == len(records)
    assert int(summary["failed"]) == sum(not r["success"] for r in records)
    assert Decimal(summary["cost_usd"]) == sum(r["cost_usd"] or 0 for r in records)
    assert int(summary["unpriced"]) == sum(r["cost_usd"] is None for r in records)  # all report tokens
    assert int(summary["skipped"]) == DAYS - 1  # one cut-off line per day folder with records

    # the cost trend: a bar per day, the empty day too, heights in proportion to the exact sums
    bars = page.eval_on_selector_all("#cost-trend rect.bar[data-day]", "nodes => nodes.map(n => "
                                     "[n.dataset.day, n.dataset.cost, n.getBBox().height])")
    assert [day for day, _, _ in bars] == [str(day) for day in days]
    assert {day: known(cost) for day, cost, _ in bars} == {str(day): per_day.get(day, Decimal(0))
                                                            for day in days}
    tallest = max(cost or 0 for cost in per_day.values())
    for _day, cost, height in bars:
        assert height == pytest.approx(float((known(cost) or 0) / tallest) * bars_height(page), abs=0.2)
    assert page.locator("#cost-trend rect.bar[data-day]").nth(days.index(NOW.date() - timedelta(days=2))) \
        .get_attribute("height") == "0.0"

    # the heatmap: models x days cells, each with the exact figures
    heat = page.eval_on_selector_all("#heatmap td.cell", "nodes => nodes.map(n => [n.dataset.model, "
                                     "n.dataset.day, n.dataset.calls, n.dataset.cost])")
    assert len(heat) == len(models) * DAYS
    assert sorted({model for model, *_ in heat}) == models
    for model, day, calls, cost in heat:
        want_calls, want_cost = cells.get((model, date.fromisoformat(day)), (0, Decimal(0)))
        assert (int(calls), known(cost)) == (want_calls, want_cost), (model, day)
    assert any(cost is None for _, cost in cells.values())  # the unpriced model's cells: unknown, never 0
    busiest = max(cells, key=lambda key: cells[key][0])
    selector = f'#heatmap td.cell[data-day="{busiest[1]}"][data-model="{busiest[0]}"]'
    by_calls = page.locator(selector).evaluate("n => getComputedStyle(n).backgroundColor")
    assert by_calls.startswith("rgba(208, 64, 32, 1") or by_calls == "rgb(208, 64, 32)"
    page.select_option("#colour-by", "cost")
    assert page.get_attribute("#heatmap", "data-colour") == "cost"
    dearest = max(cells, key=lambda key: cells[key][1] or 0)
    selector = f'#heatmap td.cell[data-day="{dearest[1]}"][data-model="{dearest[0]}"]'
    assert page.locator(selector).evaluate("n => getComputedStyle(n).backgroundColor") in (
        "rgb(208, 64, 32)", "rgba(208, 64, 32, 1)")
    page.hover(selector)
    assert page.inner_text("#readout").startswith(f"{dearest[0]} on {dearest[1]}: {cells[dearest][0]} calls")
    unknown = next(key for key, (_, cost) in sorted(cells.items()) if cost is None)
    selector = f'#heatmap td.cell[data-day="{unknown[1]}"][data-model="{unknown[0]}"]'
    assert page.locator(selector).evaluate("n => n.classList.contains('unknown')")  # not drawn as $0
    page.hover(selector)
    assert page.inner_text("#readout") == (f"{unknown[0]} on {unknown[1]}: {cells[unknown][0]} calls, cost unknown, "
                                           f"{cells[unknown][0]} unpriced")
    assert page.evaluate("window.injected") is None  # the hostile model name stayed text
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    assert errors == []
    assert urls == [html_file.as_uri()]  # self-contained: nothing but the file itself was requested
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def bars_height(page: Any) -> float:
    """The chart's plot height: what the tallest bar fills."""
    return float(page.get_attribute("#cost-trend", "data-plot-height"))


def test_an_unknown_cost_is_never_written_as_zero(tmp_path: Path, browser: Browser) -> None:
    """Every call unpriced: the summary's cost, the bars of the days with calls and their heatmap cells
    carry an empty cost and say "unknown"; a day without any call is $0."""
    today = NOW.date()
    noon = NOW.replace(hour=12, minute=0, second=0)
    lines = [record(noon - timedelta(days=1, minutes=n), "litellm/ollama/llama3", None) for n in range(3)]
    (tmp_path / "store" / str(today - timedelta(days=1))).mkdir(parents=True)
    (tmp_path / "store" / str(today - timedelta(days=1)) / "telemetry.jsonl").write_text("\n".join(lines) + "\n")
    result = report_html.figures(tmp_path / "store", window(3, now=NOW))
    html_file = tmp_path / "report.html"
    report_html.write(html_file, result)

    opened = open_page(browser, html_file)
    page = opened.page
    assert page.locator('#summary dd[data-key="cost_usd"]').get_attribute("data-value") == ""
    assert page.inner_text('#summary dd[data-key="cost_usd"]') == "unknown"
    bars = page.eval_on_selector_all("#cost-trend rect.bar[data-day]", "nodes => nodes.map(n => "
                                     "[n.dataset.day, n.dataset.cost, n.textContent])")
    assert [(day, cost) for day, cost, _ in bars] == [(str(today - timedelta(days=2)), "0"),
                                                      (str(today - timedelta(days=1)), ""), (str(today), "0")]
    assert bars[1][2] == f"{today - timedelta(days=1)}: unknown cost over 3 calls, 3 without a known price"
    cell = f'#heatmap td.cell[data-day="{today - timedelta(days=1)}"]'
    assert page.get_attribute(cell, "data-cost") == ""
    assert "unknown cost over 3 calls" in (page.get_attribute(cell, "title") or "")
    page.select_option("#colour-by", "cost")
    assert page.locator(cell).evaluate("n => n.classList.contains('unknown') && !n.classList.contains('none')")
    page.hover(cell)
    assert page.inner_text("#readout") == (f"litellm/ollama/llama3 on {today - timedelta(days=1)}: 3 calls, "
                                           "cost unknown, 3 unpriced")
    assert opened.errors == []
