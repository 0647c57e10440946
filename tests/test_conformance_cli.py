"""`llmclient conformance` on bad input: each mistake is a typed error (exit 2) or a failing cell
that names the file and says what to fix; nothing is skipped quietly."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from llmclient.cli import main

REPO = Path(__file__).resolve().parent.parent
CONFIG = str(REPO / "llmclient.toml")


def _run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    code = main(["conformance", *args])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_a_missing_cassettes_folder(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "--config", CONFIG, "--cassettes", str(tmp_path / "nowhere"), "--report", str(tmp_path))
    assert code == 2
    assert f"ConfigurationError: no cassettes folder at {tmp_path / 'nowhere'}: pass --cassettes DIR" in err


def test_an_unknown_scenario_or_provider(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    code, _, err = _run(capsys, "--config", CONFIG, "--scenario", "txet", "--provider", "opneai", "--report", str(tmp_path))
    assert code == 2
    assert "unknown provider 'opneai' (the matrix of " in err and "has: openai, anthropic" in err
    assert "unknown scenario 'txet' (scenarios: text, system_prompt" in err


def test_a_providers_file_with_a_typo(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text((REPO / "llmclient.toml").read_text().replace("api_key_env = ", "api_key_evn = "))
    code, _, err = _run(capsys, "--config", str(config), "--report", str(tmp_path))
    assert code == 2
    assert f"{config}: providers.cerebras.api_key_evn: unknown key (did you mean 'api_key_env'?)" in err


def test_a_matrix_naming_an_undeclared_provider(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text('[conformance.models]\nacme = "acme-1"\n')
    code, _, err = _run(capsys, "--config", str(config), "--report", str(tmp_path))
    assert code == 2
    assert f"{config}: conformance.models.acme: 'acme' is not a provider" in err
    assert "declare it under [providers.acme] with base_url and api_key_env" in err


def test_no_matrix_at_all(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text('default = "openai/gpt-4o-mini"\n')
    code, _, err = _run(capsys, "--config", str(config), "--report", str(tmp_path))
    assert code == 2 and f"no [conformance] table in {config}: name the matrix with [conformance.models]" in err


@pytest.mark.parametrize(("content", "shown"), [
    ("interactions: [\n  {request:\n", "is not a readable vcrpy cassette (ParserError: while parsing a flow node"),
    ("just a string\n", "is not a readable vcrpy cassette"),
    ("interactions:\n- {request: 5}\n", "is not a readable vcrpy cassette"),
])
def test_a_corrupt_cassette_fails_its_cell_naming_the_file(capsys: pytest.CaptureFixture[str], tmp_path: Path,
                                                          content: str, shown: str) -> None:
    cassette = tmp_path / "cassettes" / "openai" / "text.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text(content)
    code, out, _ = _run(capsys, "--config", CONFIG, "--cassettes", str(tmp_path / "cassettes"),
                        "--provider", "openai", "--scenario", "text", "--report", str(tmp_path))
    assert code == 1
    assert f"FAIL openai/text: {cassette} {shown}" in out
    assert "fix its YAML" in out


def test_a_fixture_that_is_not_json_or_is_a_draft(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    fixtures = tmp_path / "fixtures"
    shutil.copytree(REPO / "fixtures" / "conformance" / "openai", fixtures / "openai")
    fixture = fixtures / "openai" / "text.json"
    good = json.loads(fixture.read_text())
    fixture.write_text("{not json")
    code, out, _ = _run(capsys, "--config", CONFIG, "--fixtures", str(fixtures), "--provider", "openai",
                        "--scenario", "text", "--report", str(tmp_path))
    assert code == 1 and f"FAIL openai/text: {fixture} is not valid JSON" in out
    fixture.write_text(json.dumps({"draft": True, "draft_note": "drafted", **good}))
    code, out, _ = _run(capsys, "--config", CONFIG, "--fixtures", str(fixtures), "--provider", "openai",
                        "--scenario", "text", "--report", str(tmp_path))
    assert code == 1 and f"FAIL openai/text: {fixture} is a draft: check every value" in out


def test_record_and_draft_need_a_provider(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    for flag in ("--record", "--draft-expected"):
        code, _, err = _run(capsys, "--config", CONFIG, flag, "--report", str(tmp_path))
        assert code == 2 and f"{flag} needs --provider" in err


def test_the_checkouts_declared_provider_is_a_provider(capsys: pytest.CaptureFixture[str]) -> None:
    # cerebras is declared once, in llmclient.toml: the suite runs it, and `llmclient replay` knows it.
    code = main(["replay", "--config", CONFIG, str(REPO / "cassettes" / "cerebras" / "text.yaml")])
    out = capsys.readouterr().out
    assert code == 0 and "model     cerebras/llama-3.3-70b" in out


def test_a_built_in_providers_overrides_reach_the_suite(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # One place: [providers.openai] with its capabilities narrowed is what the suite runs.
    config = tmp_path / "llmclient.toml"
    config.write_text('[providers.openai]\ncapabilities = ["streaming"]\n\n[conformance.models]\nopenai = "gpt-4o-mini"\n')
    code, out, _ = _run(capsys, "--config", str(config), "--cassettes", str(REPO / "cassettes"), "--fixtures",
                        str(REPO / "fixtures" / "conformance"), "--scenario", "tool_call", "--scenario", "text",
                        "--report", str(tmp_path / "report"))
    assert code == 0, out
    assert "1 pass, 0 FAIL, 1 unsupported" in out
    from llmclient import REGISTRY
    assert "tools" in REGISTRY["openai"].capabilities  # the built-in spec is back after the run


def test_replay_rebuilds_the_prompt_so_it_matches_the_endpoint(capsys: pytest.CaptureFixture[str]) -> None:
    # `llmclient replay` sends only the prompt: a cassette of a richer call (a system prompt, a
    # max_tokens cut) still shows its answer, and --prompt replaces the prompt.
    for name, answer in (("system_prompt", "response  paris\n"), ("max_tokens", "finish    length")):
        assert main(["replay", str(REPO / "cassettes" / "openai" / f"{name}.yaml")]) == 0
        assert answer in capsys.readouterr().out
    assert main(["replay", str(REPO / "cassettes" / "openai" / "text.yaml"), "--prompt", "Hello"]) == 0
    assert "prompt    Hello\n" in capsys.readouterr().out


def test_drafting_from_a_broken_cassette_fails(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    cassette = tmp_path / "cassettes" / "openai" / "text.yaml"
    cassette.parent.mkdir(parents=True)
    cassette.write_text("interactions: [\n")
    code, out, _ = _run(capsys, "--config", CONFIG, "--cassettes", str(tmp_path / "cassettes"), "--fixtures",
                        str(tmp_path / "fixtures"), "--provider", "openai", "--scenario", "text", "--scenario",
                        "system_prompt", "--draft-expected")
    assert code == 1
    assert f"openai/text: failed: {cassette}: not valid YAML (while parsing a flow node" in out
    assert "openai/system_prompt: skipped: no cassette at" in out  # nothing recorded: nothing to draft, not a failure
