"""The HTML conformance report: escaped and truncated as text, and working in headless Chromium
(Debian's /usr/bin/chromium driven by Playwright; `nox -s tests` installs it where it is missing)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from playwright.sync_api import Browser

from llmclient.conformance.html_report import LIMIT, render_html
from llmclient.conformance.report import write
from llmclient.conformance.runner import Cell, run_cell
from llmclient.conformance.scenarios import BY_NAME
from llmclient.conformance.targets import Target
from tests.browser import browser, open_page  # noqa: F401 - browser: the headless Chromium fixture

DIFF = "text: expected 'Paris.', got 'Lyon.'"
REQUEST = {"endpoint": "POST https://api.anthropic.com/v1/messages", "model": "claude-sonnet-4-5",
           "messages": [{"role": "user", "parts": [{"text": "What is the capital of France?"}]}], "max_tokens": 64}

CELLS = [
    Cell("openai", "text", "pass", seconds=0.012, requests=[{"endpoint": "POST /v1/chat/completions"}],
         responses=[{"text": "Paris."}], expected={"text": "Paris."}),
    Cell("anthropic", "text", "fail", DIFF + "; finish_reason: expected 'stop', got 'length'", 0.034,
         [REQUEST], [{"text": "Lyon.", "finish_reason": "length"}], {"text": "Paris.", "finish_reason": "stop"},
         [DIFF, "finish_reason: expected 'stop', got 'length'"]),
    Cell("gemini", "tools", "unsupported", "capability not declared: tools"),
    Cell("openai", "tools", "known", "litellm drops the tool call (observed: tool_calls differ)", 0.02,
         problems=["tool_calls: expected [{'name': 'get_weather'}], got []"]),
]


def test_render_html_escapes_cell_text_and_cuts_huge_strings() -> None:
    attack = "<script>alert('x')</script>"
    huge = "w" * 3_000_000
    cell = Cell(f"evil{attack}", "text", "fail", attack, problems=[f"text: expected {attack!r}, got 'x'"],
                requests=[{"messages": [{"role": "user", "parts": [{"text": huge}]}]}], responses=[{"text": attack}])
    page = render_html([cell], 1.0)
    assert attack not in page and "&lt;script&gt;alert(" in page
    assert "w" * LIMIT in page and "w" * (LIMIT + 1) not in page
    assert f"[{3_000_000 - LIMIT:,} more chars cut]" in page
    assert len(page) < 50_000
    assert "http" not in render_html(CELLS[:1], 1.0)  # nothing fetched: no URL at all without cell text


def test_write_adds_the_html_report(tmp_path: Path) -> None:
    """The real writer on a cell the runner produced from a recorded cassette, and a hand-made one."""
    (tmp_path / "cassettes" / "openai").mkdir(parents=True)
    (tmp_path / "fixtures" / "openai").mkdir(parents=True)
    shutil.copy(Path(__file__).parent / "cassettes" / "openai" / "text.yaml", tmp_path / "cassettes" / "openai")
    (tmp_path / "fixtures" / "openai" / "text.json").write_text(json.dumps({"text": "Lyon."}))
    real = run_cell(Target("openai", "gpt-4o-mini"), BY_NAME["text"],
                    cassettes=tmp_path / "cassettes", fixtures=tmp_path / "fixtures")
    assert real.outcome == "fail"
    paths = write(tmp_path / "report", [real, CELLS[2]], 1.5, {"builtin_providers_seconds": 1.2})
    page = tmp_path / "report" / "conformance-report.html"
    assert page in paths and page.is_file()
    text = page.read_text(encoding="utf-8")
    assert 'data-cell="openai/text" data-outcome="fail"' in text
    assert "&#x27;Lyon.&#x27;" in text and "&#x27;Paris.&#x27;" in text  # the fixture difference, escaped
    assert "builtin_providers_seconds: 1.2" in text


def test_report_in_headless_chromium(browser: Browser, tmp_path: Path) -> None:
    html_file = tmp_path / "conformance-report.html"
    html_file.write_text(render_html(CELLS, 0.5, {"builtin_providers_seconds": 0.4}), encoding="utf-8")
    opened = open_page(browser, html_file)
    page, errors, urls = opened.page, opened.errors, opened.urls

    assert page.title() == "Conformance matrix"
    assert page.inner_text("#counts").startswith("1 pass1 FAIL1 unsupported1 known FAIL4 cells")
    colours = {}
    for cell in CELLS:
        td = page.locator(f'td[data-cell="{cell.provider}/{cell.scenario}"]')
        assert td.get_attribute("data-outcome") == cell.outcome
        colours[cell.outcome] = td.evaluate("element => getComputedStyle(element).backgroundColor")
    assert len(set(colours.values())) == 4, colours
    red, green, _ = (int(n) for n in colours["pass"][4:-1].split(","))
    assert green > red  # green pass
    red, green, _ = (int(n) for n in colours["fail"][4:-1].split(","))
    assert red > green  # red fail

    detail = page.locator('[data-detail="anthropic/text"]')
    assert not detail.is_visible()
    page.click('td[data-cell="anthropic/text"]')
    assert detail.is_visible()
    assert DIFF in detail.inner_text()
    assert detail.locator("li.diff .got").first.inner_text() == "'Lyon.'"
    assert detail.locator("li.diff .got").first.is_visible()
    assert '"claude-sonnet-4-5"' in detail.inner_text()  # the request, pretty-printed
    assert not page.locator('[data-detail="openai/text"]').is_visible()
    shot = tmp_path / "report.png"
    page.screenshot(path=str(shot), full_page=True)
    page.keyboard.press("Escape")
    assert not detail.is_visible()

    assert errors == []
    assert urls == [html_file.as_uri()]  # self-contained: nothing but the file itself was requested
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and shot.stat().st_size > 10_000
