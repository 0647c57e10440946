"""Headless Chromium for the tests of the self-contained HTML pages (the conformance report, the
telemetry report): Debian's /usr/bin/chromium driven by playwright, never `playwright install`.
`nox -s tests` installs chromium where it is missing, so a missing browser fails the test: CI must
not pass by skipping the only check that the pages render."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

CHROMIUM = Path("/usr/bin/chromium")
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
        "--disable-background-networking", "--disable-component-update", "--disable-sync"]


@pytest.fixture
def browser() -> Iterator[Browser]:
    if not CHROMIUM.exists():
        pytest.fail(f"{CHROMIUM} is missing: apt-get install chromium (nox -s tests does it on Debian)")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)  # a fresh temporary profile
        yield launched
        launched.close()


@dataclass
class Opened:
    """A page opened on a local file, with what it logged as errors and every URL it requested."""

    page: Page
    errors: list[str] = field(default_factory=list)
    urls: list[str] = field(default_factory=list)


def open_page(browser: Browser, html_file: Path) -> Opened:
    page = browser.new_page()
    opened = Opened(page)
    page.on("console", lambda message: opened.errors.append(message.text) if message.type == "error" else None)
    page.on("pageerror", lambda error: opened.errors.append(str(error)))
    page.on("request", lambda request: opened.urls.append(request.url))
    page.goto(html_file.as_uri())
    return opened
