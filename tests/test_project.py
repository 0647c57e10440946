"""Project wiring that CI relies on: `.ci/run` runs exactly the README's test command, and the
README's offline example works."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from llmclient.cli import main

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()
COMMANDS = re.findall(r"```sh\n(.+?)\n```", README)


def test_readme_opens_with_the_two_setup_commands() -> None:
    assert len(COMMANDS) >= 2
    main_job, tests = COMMANDS[:2]
    assert main_job.startswith("python3 -m venv .venv && ") and main_job.endswith("/llmclient conformance")
    assert tests.startswith("python3 -m venv .venv && ") and "nox -s tests typecheck" in tests


def test_ci_runs_exactly_the_readme_test_command() -> None:
    ci_lines = [line for line in (REPO / ".ci/run").read_text().splitlines() if line and not line.startswith(("#", "set ", "cd "))]
    assert ci_lines == [COMMANDS[1]]


def test_replay_example_prints_response_usage_and_cost(capsys: pytest.CaptureFixture[str],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.chdir(REPO)
    assert main(["replay", "cassettes/openai/text.yaml"]) == 0  # the example the README names
    out = capsys.readouterr().out
    assert "response  Paris.\n" in out
    assert "usage     input 21 (cache read 0, cache write 0), output 2 (reasoning 0), total 23\n" in out
    assert "cost      $0.00000435 " in out  # 21 x $0.15/M + 2 x $0.60/M


def test_cli_scan_secrets_exit_codes(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan-secrets", str(REPO / "cassettes")]) == 0
    (tmp_path / "leak.yaml").write_text("Authorization: Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z\n")
    assert main(["scan-secrets", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "leak.yaml:1: openai key: sk-pro..." in out
    assert "sk-proj-Ab3dEf6h" not in out  # findings never print the secret itself


def test_cli_reports_a_missing_cassette_as_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["replay", "no/such/cassette.yaml"]) == 2
    assert "ConfigurationError: no cassette at no/such/cassette.yaml" in capsys.readouterr().err


def test_cli_conformance_writes_its_report(tmp_path: Path, capsys: pytest.CaptureFixture[str],
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("LLMCLIENT_CONFIG")  # the checkout's llmclient.toml holds the matrix
    assert main(["conformance", "--provider", "openai", "--scenario", "text", "--report", str(tmp_path)]) == 0
    report = json.loads((tmp_path / "conformance-report.json").read_text())
    [result] = report["results"]
    assert {key: result[key] for key in ("provider", "scenario", "outcome", "detail", "problems")} == {
        "provider": "openai", "scenario": "text", "outcome": "pass", "detail": "", "problems": []}
    assert result["requests"][0]["messages"] == [
        {"role": "user", "parts": [{"type": "text", "text": "What is the capital of France? Answer in one word."}]}]
    assert result["responses"][0]["text"] == "Paris."  # cassettes/openai/text.yaml's answer
    assert report["seconds"] > 0
    assert "| text | pass |" in (tmp_path / "conformance-report.md").read_text()
    assert "1 pass, 0 FAIL, 0 unsupported" in capsys.readouterr().out


def test_cli_conformance_rejects_unknown_names(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    monkeypatch.delenv("LLMCLIENT_CONFIG")
    assert main(["conformance", "--provider", "nosuch", "--report", "/tmp/unused"]) == 2
    assert "unknown provider 'nosuch'" in capsys.readouterr().err
