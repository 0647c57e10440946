"""The conformance runner's guards: a cell fails on a fixture difference, an unplayed interaction,
a request with no recorded match, or a missing cassette; a capability not declared is
"unsupported", never a pass."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from llmclient.conformance.record import record_cell
from llmclient.conformance.runner import Cell, run_cell
from llmclient.conformance.scenarios import BY_NAME
from llmclient.conformance.targets import Suite, Target, load_suite
from llmclient import ProviderSpec, register_provider, unregister_provider
from tests.test_cassettes import SECRET_KEY, _Provider, provider  # noqa: F401  (provider is a fixture)

REPO = Path(__file__).resolve().parent.parent
TEXT_CASSETTE = Path(__file__).resolve().parent / "cassettes" / "openai" / "text.yaml"
EXPECTED = {
    "text": "Paris.", "finish_reason": "stop", "raw_finish_reason": "stop", "tool_calls": [],
    "usage": {"input_tokens": 21, "output_tokens": 2, "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0},
    "cost": "0.00000435",
}


@pytest.fixture
def dirs(tmp_path: Path) -> tuple[Path, Path]:
    cassettes, fixtures = tmp_path / "cassettes", tmp_path / "fixtures"
    (cassettes / "openai").mkdir(parents=True)
    (fixtures / "openai").mkdir(parents=True)
    shutil.copy(TEXT_CASSETTE, cassettes / "openai" / "text.yaml")
    (fixtures / "openai" / "text.json").write_text(json.dumps(EXPECTED))
    return cassettes, fixtures


def run(dirs: tuple[Path, Path], scenario: str = "text", target: Target = Target("openai", "gpt-4o-mini")) -> Cell:
    return run_cell(target, BY_NAME[scenario], cassettes=dirs[0], fixtures=dirs[1])


def test_a_matching_cell_passes(dirs: tuple[Path, Path]) -> None:
    assert run(dirs).outcome == "pass"


@pytest.mark.parametrize(("field", "wrong", "shown"), [
    ("text", "Lyon.", "text: expected 'Lyon.', got 'Paris.'"),
    ("cost", "0.0000044", "cost: expected '0.0000044', got '0.00000435'"),
    ("usage", {**EXPECTED["usage"], "cache_read_tokens": 5}, "usage: expected"),
    ("finish_reason", "length", "finish_reason: expected 'length', got 'stop'"),
])
def test_a_fixture_difference_fails_naming_the_field(dirs: tuple[Path, Path], field: str, wrong: object, shown: str) -> None:
    (dirs[1] / "openai" / "text.json").write_text(json.dumps({**EXPECTED, field: wrong}))
    cell = run(dirs)
    assert cell.outcome == "fail" and shown in cell.detail


def test_an_unplayed_interaction_fails(dirs: tuple[Path, Path]) -> None:
    path = dirs[0] / "openai" / "text.yaml"
    data = yaml.safe_load(path.read_text())
    data["interactions"].append(data["interactions"][0])
    path.write_text(yaml.safe_dump(data))
    cell = run(dirs)
    assert cell.outcome == "fail" and "1 recorded interaction(s) never requested" in cell.detail


def test_a_request_without_a_recorded_match_fails(dirs: tuple[Path, Path]) -> None:
    path = dirs[0] / "openai" / "text.yaml"
    path.write_text(path.read_text().replace("https://api.openai.com/v1/chat/completions", "https://api.openai.com/v1/responses"))
    cell = run(dirs)
    assert cell.outcome == "fail"
    assert "ReplayMismatchError: openai/gpt-4o-mini: no recorded interaction for POST https://api.openai.com/v1/chat/completions" in cell.detail


def test_a_missing_cassette_or_fixture_fails(dirs: tuple[Path, Path]) -> None:
    assert run(dirs, "system_prompt").detail.startswith("no cassette at ")
    (dirs[1] / "openai" / "text.json").unlink()
    assert run(dirs).detail.startswith("no expected values at ")


def test_an_error_scenario_that_succeeds_fails(dirs: tuple[Path, Path]) -> None:
    shutil.copy(dirs[0] / "openai" / "text.yaml", dirs[0] / "openai" / "error_server.yaml")
    (dirs[1] / "openai" / "error_server.json").write_text(json.dumps({"error": "ServerError", "status_code": 500}))
    cell = run(dirs, "error_server")
    assert (cell.outcome, cell.detail) == ("fail", "expected ServerError, but the call succeeded")


def test_an_undeclared_capability_is_unsupported_not_pass(dirs: tuple[Path, Path]) -> None:
    register_provider(ProviderSpec(name="plain", base_url="https://plain.example/v1", api_key_env="PLAIN_API_KEY",
                                   capabilities=frozenset()))
    try:
        cell = run(dirs, "tool_call", Target("plain", "m"))
    finally:
        unregister_provider("plain")
    assert (cell.outcome, cell.detail) == ("unsupported", "capability not declared: tools")


def test_record_mode_records_through_the_scrubbing_pipeline_then_replays(
        provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient import REGISTRY

    monkeypatch.setenv("LOOPBACK_API_KEY", SECRET_KEY)
    target = Target("loopback", "local-model", REGISTRY["loopback"])
    suite = Suite((target,), tmp_path / "cassettes", tmp_path / "fixtures")
    (suite.fixtures / "loopback").mkdir(parents=True)
    # Written from the loopback server's canned answer (tests/test_cassettes.py ANSWER); no price known.
    (suite.fixtures / "loopback" / "text.json").write_text(json.dumps({
        "text": "pong", "finish_reason": "stop", "cost": None,
        "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}}))
    recorded = record_cell(suite, target, BY_NAME["text"])
    assert (recorded.result, recorded.statuses, len(_Provider.requests)) == ("recorded", [200], 1)
    assert recorded.bytes == suite.cassette("loopback", "text").stat().st_size > 0
    assert {"authorization header", "openai-organization header", "set-cookie header"} <= set(recorded.scrubbed)
    cassette = suite.cassette("loopback", "text").read_text()
    assert SECRET_KEY not in cassette and "REDACTED" in cassette
    replayed = run_cell(target, BY_NAME["text"], cassettes=suite.cassettes, fixtures=suite.fixtures)
    assert (replayed.outcome, len(_Provider.requests)) == ("pass", 1)  # the replay sent nothing


def test_a_recording_that_contradicts_its_scenario_is_refused_not_written(
        provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient import REGISTRY

    target = Target("loopback", "local-model", REGISTRY["loopback"])
    suite = Suite((target,), tmp_path / "cassettes", tmp_path / "fixtures")
    # The loopback server accepts any key: error_auth "recorded" there is a 200, not a 401.
    refused = record_cell(suite, target, BY_NAME["error_auth"])
    assert (refused.result, refused.statuses, refused.ok) == ("refused", [200], False)
    assert "error_auth needs 401/403, the provider answered 200; nothing written" in refused.detail
    assert not suite.cassette("loopback", "error_auth").exists()
    assert list(suite.cassettes.rglob("*.yaml")) == []  # no scratch file left behind either


def test_a_recording_with_no_network_fails_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # A closed loopback port stands in for "no network": nothing answers.
    spec = ProviderSpec(name="nowhere", base_url="http://127.0.0.1:9/v1", api_key_env="NOWHERE_API_KEY")
    monkeypatch.setenv("NOWHERE_API_KEY", "a-key")
    target = Target("nowhere", "m", spec)
    suite = Suite((target,), tmp_path / "cassettes", tmp_path / "fixtures")
    failed = record_cell(suite, target, BY_NAME["text"])
    assert (failed.result, failed.ok) == ("failed", False)
    assert failed.detail.startswith("nothing was recorded") and "APIConnectionError" in failed.detail
    assert not suite.cassette("nowhere", "text").exists()


def test_fault_cassettes_are_generated_from_the_wire_fault_bodies(tmp_path: Path) -> None:
    # A provider speaking the OpenAI wire with only its text and stream_text recorded: every fault
    # scenario gets a cassette built from llmclient.wire.openai's fault bodies, and replays as the
    # contract says (fixtures below written from the contract, DESIGN section 2).
    target = Target("openai", "gpt-4o-mini")
    suite = Suite((target,), tmp_path / "cassettes", tmp_path / "fixtures")
    for name in ("text", "stream_text"):
        (suite.cassettes / "openai").mkdir(parents=True, exist_ok=True)
        shutil.copy(REPO / "cassettes" / "openai" / f"{name}.yaml", suite.cassette("openai", name))
    expected = {
        "error_rate_limit": {"error": "RateLimitError", "status_code": 429, "retry_after": 2.0},
        "error_server": {"error": "ServerError", "status_code": 500},
        "error_overloaded": {"error": "ServerError", "status_code": 503},
        "error_malformed": {"error": "MalformedResponseError"},
        "error_truncated_stream": {"error": "MalformedResponseError", "status_code": None},
        "error_stream_event": {"error": "ServerError", "status_code": None},
    }
    (suite.fixtures / "openai").mkdir(parents=True)
    for name, fixture in expected.items():
        generated = record_cell(suite, target, BY_NAME[name])
        assert (generated.result, generated.ok) == ("generated", True), generated.detail
        assert "Generated by `llmclient conformance --record`" in suite.cassette("openai", name).read_text()
        suite.fixture("openai", name).write_text(json.dumps(fixture))
        cell = run_cell(target, BY_NAME[name], cassettes=suite.cassettes, fixtures=suite.fixtures)
        assert cell.outcome == "pass", f"{name}: {cell.detail}"
    assert record_cell(suite, target, BY_NAME["error_server"]).result == "kept"  # never overwritten


def test_faults_need_the_recorded_answers_they_build_on(tmp_path: Path) -> None:
    target = Target("openai", "gpt-4o-mini")
    failed = record_cell(Suite((target,), tmp_path, tmp_path), target, BY_NAME["retry_rate_limit"])
    assert failed.result == "failed" and "record text first" in failed.detail


def test_a_zero_request_scenario_fails_if_a_request_is_made(dirs: tuple[Path, Path]) -> None:
    import dataclasses

    sends_anyway = dataclasses.replace(BY_NAME["file_unsupported_type"], call=BY_NAME["error_server"].call)
    (dirs[1] / "openai" / "file_unsupported_type.json").write_text(json.dumps({"error": "UnsupportedCapabilityError"}))
    cell = run_cell(Target("openai", "gpt-4o-mini"), sends_anyway, cassettes=dirs[0], fixtures=dirs[1])
    assert cell.outcome == "fail" and "expected 'UnsupportedCapabilityError', got 'ReplayMismatchError'" in cell.detail


def test_the_litellm_column_without_litellm_is_unsupported_not_a_failure(monkeypatch: pytest.MonkeyPatch) -> None:
    # `pip install -e .` alone has no litellm: its column says so instead of failing every cell.
    import importlib.util

    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "litellm" else real(name, *a))
    suite = load_suite(REPO / "llmclient.toml")
    cell = run_cell(suite.target("litellm"), BY_NAME["text"], cassettes=suite.cassettes, fixtures=suite.fixtures)
    assert (cell.outcome, cell.detail) == ("unsupported", "litellm is not installed: pip install 'llmclient[litellm]' for its column")


def test_a_known_failure_shows_as_such_and_turns_into_a_failure_when_it_passes(dirs: tuple[Path, Path]) -> None:
    fixture = dirs[1] / "openai" / "text.json"
    expected = json.loads(fixture.read_text())
    fixture.write_text(json.dumps({**expected, "known_failure": "a note"}))
    assert run(dirs).outcome == "fail"
    fixture.write_text(json.dumps({**expected, "text": "not what the cassette says", "known_failure": "a note"}))
    cell = run(dirs)
    assert cell.outcome == "known" and cell.detail.startswith("a note (observed: text:")


# A key in no known format, sent in a header or a query parameter the provider names itself.
PLAIN_KEY = "acme-live-SECRET1234567890"


@pytest.mark.parametrize("where", [{"key_header": "x-acme-key", "key_prefix": ""}, {"key_query": "apikey"}])
def test_a_key_in_a_providers_own_header_or_query_is_never_recorded_or_shown(
        provider: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, where: dict[str, str]) -> None:
    from llmclient import REGISTRY
    from llmclient.conformance.report import write

    spec = REGISTRY["loopback"].model_copy(update={"name": "acme", "api_key_env": "ACME_KEY", **where})
    monkeypatch.setenv("ACME_KEY", PLAIN_KEY)
    target = Target("acme", "local-model", spec)
    suite = Suite((target,), tmp_path / "cassettes", tmp_path / "fixtures")
    recorded = record_cell(suite, target, BY_NAME["text"])
    assert recorded.result == "recorded", recorded.detail
    assert recorded.scrubbed and recorded.scrubbed != ["nothing"]
    faults = record_cell(suite, target, BY_NAME["error_server"])  # generated, requests replayed with the key set
    assert faults.result == "generated", faults.detail
    (suite.fixtures / "acme").mkdir(parents=True)
    (suite.fixtures / "acme" / "text.json").write_text(json.dumps({
        "text": "pong", "finish_reason": "stop", "cost": None,
        "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}}))
    cell = run_cell(target, BY_NAME["text"], cassettes=suite.cassettes, fixtures=suite.fixtures)  # the key is still set
    assert cell.outcome == "pass", cell.detail
    reports = write(tmp_path / "report", [cell], 0.1)
    for path in [*suite.cassettes.rglob("*.yaml"), *reports]:
        assert PLAIN_KEY not in path.read_text(), f"the key is in {path}"
    assert PLAIN_KEY not in repr(cell.requests)
    monkeypatch.delenv("ACME_KEY")  # and the replay needs no key
    assert run_cell(target, BY_NAME["text"], cassettes=suite.cassettes, fixtures=suite.fixtures).outcome == "pass"


def test_a_session_never_shows_the_key_it_sent(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient import Client, use_cassette

    key = "sk-proj-" + "k" * 40
    monkeypatch.setenv("OPENAI_API_KEY", key)
    with use_cassette(TEXT_CASSETTE) as session:
        Client("openai/gpt-4o-mini").complete("What is the capital of France? Answer in one word.")
    assert key not in repr(session.sent)
    assert session.sent[0].headers["authorization"] == "REDACTED"
