"""Project sessions. They run in the environment nox itself runs in (the dev venv the README sets
up), so a session never re-resolves dependencies or reaches for the network (one exception: on a
machine without /usr/bin/chromium, `tests` first installs Debian's, for the HTML report's browser test).

    nox -s tests typecheck      what CI runs (tests include the conformance suite as pytest)
    nox -s conformance          the provider x scenario matrix, offline, with its report
    nox -s record -- PROVIDER [SCENARIO ...]   record real cassettes (needs the key; never in CI)
    nox -s coverage             tests under coverage, with the missed lines
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import nox

nox.options.default_venv_backend = "none"
nox.options.sessions = ["tests", "typecheck"]
nox.options.error_on_missing_interpreters = True

PYTHON = sys.executable  # the interpreter nox runs under: the project's venv
CHROMIUM = Path("/usr/bin/chromium")  # the browser tests/test_conformance_html.py drives (Debian's package)


@nox.session
def tests(session: nox.Session) -> None:
    """Unit tests, the reference-traffic replay and the secret lint of cassettes/ and fixtures/."""
    if not CHROMIUM.exists():
        _install_chromium(session)
    session.run(PYTHON, "-m", "pytest", *session.posargs)


def _install_chromium(session: nox.Session) -> None:
    """Debian's chromium (not `playwright install`, which downloads a browser of its own)."""
    if shutil.which("apt-get") is None:
        session.error(f"{CHROMIUM} is missing and there is no apt-get: install chromium there by hand")
    # sudo drops the environment: pass DEBIAN_FRONTEND through env(1) as well.
    apt = ["apt-get"] if os.geteuid() == 0 else ["sudo", "-n", "env", "DEBIAN_FRONTEND=noninteractive", "apt-get"]
    env = {"DEBIAN_FRONTEND": "noninteractive"}
    session.run(*apt, "update", "-qq", external=True, env=env, silent=True)  # a fresh image has no lists
    session.run(*apt, "install", "-y", "-qq", "--no-install-recommends", "chromium",
                external=True, env=env, silent=True)  # dpkg is chatty; nox shows its output if it fails


@nox.session
def conformance(session: nox.Session) -> None:
    """The main job: replay every (provider, scenario) cell; report in reports/."""
    session.run(PYTHON, "-m", "llmclient", "conformance", *session.posargs)


@nox.session
def record(session: nox.Session) -> None:
    """Record real cassettes for one provider through the scrubbing pipeline, then replay them."""
    if not session.posargs:
        session.error("name the provider: nox -s record -- anthropic [scenario ...]")
    provider, *scenarios = session.posargs
    session.run(PYTHON, "-m", "llmclient", "conformance", "--record", "--provider", provider,
                *(arg for scenario in scenarios for arg in ("--scenario", scenario)))


@nox.session
def typecheck(session: nox.Session) -> None:
    session.run(PYTHON, "-m", "mypy", "--strict", "llmclient")


@nox.session
def coverage(session: nox.Session) -> None:
    session.run(PYTHON, "-m", "coverage", "run", "-m", "pytest", "-q", *session.posargs)
    session.run(PYTHON, "-m", "coverage", "report")


@nox.session
def benchmarks(session: nox.Session) -> None:
    """Performance as ratios against baselines measured in the same run (not a pass/fail gate)."""
    session.run(PYTHON, "benchmarks/import_time.py")
    session.run(PYTHON, "benchmarks/cost.py")
    session.run(PYTHON, "benchmarks/rate_limiter.py", *session.posargs)  # 2 x 30 s at 600 RPM
    session.run(PYTHON, "benchmarks/pdf_memory.py")
