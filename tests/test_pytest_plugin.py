"""llmclient's pytest plugin, run the way a user runs it: each test writes a test file into a
pytester directory and runs pytest on it in a subprocess (the plugin loads from its entry point, as
installed). Not inline: an inline run drops from sys.modules what it imported first (vcrpy's stubs,
llmclient's wire modules, ...), leaving this session with two copies of them.

Expected values are read off the cassette body of tests/cassettes/openai/text.yaml ("Paris.",
21 prompt and 2 completion tokens) and gpt-4o-mini's published prices ($0.15 / $0.60 per million
tokens): 21 x 0.15e-6 + 2 x 0.60e-6 = 0.00000315 + 0.0000012 = 0.00000435."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from llmclient import scan_secrets

pytest_plugins = ["pytester"]

TEXT_CASSETTE = Path(__file__).resolve().parent / "cassettes" / "openai" / "text.yaml"
SECRET_KEY = "sk-proj-" + "AbcdEfghIjklMnopQrstUvwxYzabCdefGhijKlmn"  # invented; 40 letters
ARGS = ("-p", "no:randomly", "-p", "no:cacheprovider", "--strict-markers", "-o", "asyncio_default_fixture_loop_scope=function")

MISMATCH = ("the closest recorded request differs at messages[0].content: recorded 'What is the capital of France? "
            "Answer in one word.', sent 'What is the capital of Spain? Answer in one word.'")

HEADER = '''
import os
import pytest
from llmclient import Client

CAPITAL = "What is the capital of France? Answer in one word."

def answer(prompt=CAPITAL):
    assert "OPENAI_API_KEY" not in os.environ  # replay needs no key
    return Client("openai/gpt-4o-mini").complete(prompt)
'''


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _cassette(pytester: pytest.Pytester, relative: str) -> Path:
    """A copy of tests/cassettes/openai/text.yaml at `relative` in the pytester directory."""
    path = pytester.path / relative
    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(TEXT_CASSETTE, path)
    return path


def test_llm_cassette_marker_replays_without_a_key_and_names_a_mismatch(pytester: pytest.Pytester) -> None:
    _cassette(pytester, "cassettes/text.yaml")
    pytester.makepyfile(test_marker=HEADER + '''
from pathlib import Path

@pytest.mark.llm_cassette("cassettes/text.yaml")
def test_replays():
    response = answer()
    assert (response.text, response.usage.input_tokens, response.usage.output_tokens) == ("Paris.", 21, 2)

@pytest.mark.llm_cassette("cassettes/text.yaml")
def test_changed_prompt():
    answer("What is the capital of Spain? Answer in one word.")

@pytest.mark.llm_cassette("cassettes/text.yaml")
def test_left_unplayed():
    pass  # strict (the default): a passing replay that played nothing fails

@pytest.mark.llm_cassette("cassettes/text.yaml", strict=False)
def test_left_unplayed_not_strict():
    pass

class TestNamed:
    @pytest.mark.parametrize("model", ["gpt-4o/mini"])
    def test_default_path(self, model, llm_cassette):
        assert answer().text == "Paris."
        assert llm_cassette.path.name == "TestNamed.test_default_path[gpt-4o-mini].yaml"
        assert llm_cassette.path.parent == Path(__file__).parent / "cassettes" / "test_marker"
        assert [request.uri for request in llm_cassette.sent] == ["https://api.openai.com/v1/chat/completions"]

@pytest.mark.llm_cassette("cassettes/text.yaml", mod="replay")
def test_misspelt_argument():
    pass

def test_unrecorded(llm_cassette):
    answer()

def test_no_marker_no_waiver():
    from llmclient import ConfigurationError
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        answer()
''')
    _cassette(pytester, "cassettes/test_marker/TestNamed.test_default_path[gpt-4o-mini].yaml")
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=5, failed=1, errors=3)
    assert ("ReplayMismatchError: openai/gpt-4o-mini: no recorded interaction for POST https://api.openai.com/v1/chat/"
            "completions in ") in result.stdout.str()
    assert MISMATCH in result.stdout.str()
    result.stdout.fnmatch_lines(["*ERROR at teardown of test_left_unplayed*", "*were never requested*"])
    result.stdout.fnmatch_lines(["*ERROR at setup of test_misspelt_argument*",
                                 "*bad @pytest.mark.llm_cassette arguments*unexpected keyword argument 'mod'*"])
    result.stdout.fnmatch_lines(["*ConfigurationError: no cassette at *cassettes/test_marker/test_unrecorded.yaml*"])


def test_vcr_marker_replays_with_llmclient_matching_and_no_key(pytester: pytest.Pytester) -> None:
    for name in ("test_replays", "test_changed_prompt", "test_recording_needs_a_key"):
        _cassette(pytester, f"cassettes/test_vcr/{name}.yaml")
    pytester.makepyfile(test_vcr=HEADER + '''
from llmclient import ConfigurationError, cassettes

@pytest.mark.vcr
def test_replays(vcr_config):
    assert answer().text == "Paris."
    assert vcr_config == {k: v for k, v in cassettes.vcr_config("replay").items() if k != "record_mode"}

@pytest.mark.vcr
def test_changed_prompt():
    answer("What is the capital of Spain? Answer in one word.")

@pytest.mark.vcr(record_mode="all")
def test_recording_needs_a_key():
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        answer()

def test_without_the_marker():
    assert not cassettes.replaying()
''')
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(passed=3, failed=1)
    # pytest-recording's default matching ignores the body: this mismatch is llmclient's matcher's
    assert "ReplayMismatchError: openai/gpt-4o-mini: no recorded interaction" in result.stdout.str()
    assert MISMATCH in result.stdout.str()


RECORDING_TESTS = '''
import json
import os
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from llmclient import Client, ProviderSpec, register_provider, unregister_provider

HITS = []

class Pong(BaseHTTPRequestHandler):
    def do_POST(self):
        HITS.append(self.headers["authorization"])
        self.rfile.read(int(self.headers["content-length"]))
        data = json.dumps({"id": "x", "object": "chat.completion", "created": 1, "model": "local",
                           "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"},
                                        "finish_reason": "stop"}],
                           "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass

@pytest.fixture
def provider():
    HITS.clear()
    server = ThreadingHTTPServer(("127.0.0.1", 0), Pong)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    register_provider(ProviderSpec(name="loopback", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                                   api_key_env="LOOPBACK_API_KEY"))
    yield "loopback/local"
    unregister_provider("loopback")
    server.shutdown()
    server.server_close()

def ping(provider):
    assert Client(provider).complete("ping").text == "pong"
    assert len(HITS) == (1 if os.environ.get("LOOPBACK_API_KEY") else 0)  # replay sends nothing

@pytest.mark.llm_cassette
def test_llm_cassette(provider):
    ping(provider)

@pytest.mark.vcr
def test_vcr(provider):
    ping(provider)
'''


def test_record_mode_writes_scrubbed_cassettes_that_replay_without_a_key(pytester: pytest.Pytester,
                                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    pytester.makepyfile(test_recording=RECORDING_TESTS)
    monkeypatch.setenv("LOOPBACK_API_KEY", SECRET_KEY)
    pytester.runpytest_subprocess(*ARGS, "--llm-record-mode=record", "--record-mode=all").assert_outcomes(passed=2)

    for name in ("test_llm_cassette", "test_vcr"):
        text = (pytester.path / "cassettes" / "test_recording" / f"{name}.yaml").read_text()
        assert SECRET_KEY not in text and SECRET_KEY[-20:] not in text
        assert "REDACTED" in text and "pong" in text and '"content":"ping"' in text.replace(" ", "")
        assert scan_secrets(pytester.path / "cassettes") == []

    monkeypatch.delenv("LOOPBACK_API_KEY")  # replay: no key, and the server is not called
    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=2)


SNAPSHOT_TESTS = HEADER + '''
@pytest.mark.llm_cassette("cassettes/text.yaml")
def test_answer(llm_snapshot):
    assert answer() == llm_snapshot
'''


def test_llm_snapshot_writes_the_stable_projection_then_compares_with_it(pytester: pytest.Pytester) -> None:
    cassette = _cassette(pytester, "cassettes/text.yaml")
    pytester.makepyfile(test_snap=SNAPSHOT_TESTS)
    pytester.runpytest_subprocess(*ARGS, "--snapshot-update").assert_outcomes(passed=1)

    written = pytester.path / "__snapshots__" / "test_snap" / "test_answer.json"
    assert json.loads(written.read_text()) == {
        "text": "Paris.",
        "tool_calls": [],
        "finish_reason": "stop",
        "raw_finish_reason": "stop",
        "usage": {"input_tokens": 21, "output_tokens": 2, "cache_read_tokens": 0, "cache_write_tokens": 0,
                  "reasoning_tokens": 0},
        "cost": {"total": "0.00000435", "source": "price-table"},  # 21 x $0.15/M + 2 x $0.60/M
    }
    for unstable in ("chatcmpl", "latency", "1763942400", "2024-07-18", "fp_"):
        assert unstable not in written.read_text()

    pytester.runpytest_subprocess(*ARGS).assert_outcomes(passed=1)

    cassette.write_text(cassette.read_text().replace('"content":"Paris."', '"content":"Lyon."'))
    result = pytester.runpytest_subprocess(*ARGS)
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(["*- *\"text\": \"Paris.\"*", "*+ *\"text\": \"Lyon.\"*"])


def test_llm_snapshot_without_syrupy_says_what_to_install(pytester: pytest.Pytester) -> None:
    _cassette(pytester, "cassettes/text.yaml")
    pytester.makeconftest("import sys\nsys.modules['syrupy'] = None  # as if it were not installed\n")
    pytester.makepyfile(test_snap=SNAPSHOT_TESTS)
    result = pytester.runpytest_subprocess(*ARGS, "-p", "no:syrupy")
    result.assert_outcomes(errors=1)
    result.stdout.fnmatch_lines(["*the llm_snapshot fixture needs syrupy: pip install syrupy*"])


def test_the_plugin_imports_neither_vcrpy_nor_syrupy() -> None:
    code = ("import sys, llmclient.pytest_plugin; "
            "print(sorted({m.split('.')[0] for m in sys.modules} & {'vcr', 'syrupy', 'pytest_recording'}))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_plugin_is_registered_through_its_entry_point(pytester: pytest.Pytester) -> None:
    pytester.makepyfile(test_plain="def test_nothing():\n    pass\n")
    result = pytester.runpytest_subprocess(*ARGS, "--llm-record-mode=record")
    assert result.ret == pytest.ExitCode.OK and "llmclient-" in result.stdout.str()  # "plugins: ..., llmclient-<version>"
    result = pytester.runpytest_subprocess(*ARGS, "-p", "no:llmclient", "--llm-record-mode=record")
    assert result.ret == pytest.ExitCode.USAGE_ERROR  # the option is the plugin's, and the plugin is "llmclient"

