"""The issue's "done when", end to end from a wheel: built from the checkout, installed in a fresh
venv outside it, a provider declared only in a temp `llmclient.toml` is used by `Client`, recorded
against a loopback server (tests/fake_provider.py, a real subprocess), drafted, reviewed (this test
edits the drafts, checking them against what the server is known to answer) and passes the suite;
`--record` against a server that refuses the key exits non-zero and writes nothing.

The wheel's dependencies are not downloaded: a .pth file in the new venv names the dev venv's
site-packages (only that directory: its own .pth files, the editable install's finder among them,
are not processed), and the test checks that `llmclient` is imported from the wheel.
"""

from __future__ import annotations

import json
import os
import re
import select
import shutil
import subprocess
import sys
import sysconfig
import time
from collections.abc import Iterator
from contextlib import contextmanager
from importlib import metadata
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
FAKE_PROVIDER = REPO / "tests" / "fake_provider.py"
# Fake keys shaped like OpenAI project keys, so the scrubber's key patterns are what must catch them.
KEY = "sk-proj-" + "QmWnEbRvTcYxUzIaOsPdLfKgJhMnBvCxZlKjHgFd"
OTHER_KEY = "sk-proj-" + "PoIuYtReWqLkJhGfDsAzMxNcBvQwErTyUiOpAsDf"
RECORDED = ["text", "system_prompt", "multi_turn", "max_tokens", "stream_text", "tool_call", "tool_round_trip",
            "error_auth", "error_not_found", "error_bad_request"]
GENERATED = ["error_rate_limit", "error_server", "error_overloaded", "error_malformed", "error_truncated_stream",
             "error_stream_event", "retry_rate_limit", "retry_server_error"]
CHOSEN = [arg for scenario in RECORDED + GENERATED for arg in ("--scenario", scenario)]
TIMEOUT = 120  # seconds, any one command
IGNORED = shutil.ignore_patterns(".git", ".venv", ".nox", ".mypy_cache", ".ruff_cache", ".pytest_cache", "__pycache__",
                                 "build", "dist", "*.egg-info", "reports", "node_modules")

# What the scenarios send (written out here, not imported from llmclient) and what the fake server
# answers them: the review checks the drafts against these, not against the drafting code.
CAPITAL = "What is the capital of France? Answer in one word."
SYSTEM = "Answer in exactly one word, in lowercase, without punctuation."
CAPITAL_BARE = "What is the capital of France?"
MULTI_TURN = ["My name is Ada. Please remember it.", "Nice to meet you, Ada! I'll remember your name.",
              "What is my name? Answer in one word."]
STORY = "Write a long story about a lighthouse keeper."
STORY_CUT = "In a small coastal village, where the waves crashed against jagg"  # 16 tokens of 4 characters
COUNT = "Count from 1 to 5, separated by commas and spaces."
WEATHER = "What is the weather in Paris?"
AFTER_TOOL = "It is 18 °C and sunny in Paris."


def usage(prompt: list[str], answer: str) -> dict[str, int]:
    """The fake server's usage rule: a token per 4 characters of message text, at least 1."""
    return {"input_tokens": max(1, sum(map(len, prompt)) // 4), "output_tokens": max(1, len(answer) // 4),
            "cache_read_tokens": 0, "cache_write_tokens": 0, "reasoning_tokens": 0}


def answer(text: str, prompt: list[str], finish: str = "stop", **more: Any) -> dict[str, Any]:
    return {"text": text, "finish_reason": finish, "tool_calls": [], "usage": usage(prompt, text), "cost": None, **more}


def failure(name: str, status: int | None, **more: Any) -> dict[str, Any]:
    return {"error": name, "status_code": status, **more}


WEATHER_CALL = {"finish_reason": "tool_calls", "tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}],
                "usage": usage([WEATHER], json.dumps({"city": "Paris"}))}
EXPECTED: dict[str, dict[str, Any]] = {
    "text": answer("Paris.", [CAPITAL]),
    "system_prompt": answer("paris", [SYSTEM, CAPITAL_BARE]),
    "multi_turn": answer("Ada.", MULTI_TURN),
    "max_tokens": {**answer(STORY_CUT, [STORY], "length"), "usage": {**usage([STORY], STORY_CUT), "output_tokens": 16}},
    "stream_text": answer("1, 2, 3, 4, 5", [COUNT], deltas=["1,", " ", "2,", " ", "3,", " ", "4,", " ", "5"]),
    "tool_call": WEATHER_CALL,
    "tool_round_trip": {"responses": [WEATHER_CALL, {"text": AFTER_TOOL, "finish_reason": "stop", "tool_calls": []}]},
    "error_auth": failure("AuthenticationError", 401, message_contains="Incorrect API key provided"),
    "error_not_found": failure("NotFoundError", 404, message_contains="no-such-model"),
    "error_bad_request": failure("BadRequestError", 400, message_contains="temperature"),
    "error_rate_limit": failure("RateLimitError", 429, retry_after=2.0),
    "error_server": failure("ServerError", 500),
    "error_overloaded": failure("ServerError", 503),  # OpenAI wire: a 503 is a plain ServerError
    "error_malformed": failure("MalformedResponseError", None),
    "error_truncated_stream": failure("MalformedResponseError", None),
    "error_stream_event": failure("ServerError", None),
    "retry_rate_limit": answer("Paris.", [CAPITAL], retries=[{"error": "RateLimitError", "status_code": 429, "waited": 2.0}]),
    "retry_server_error": answer("Paris.", [CAPITAL], retries=[{"error": "ServerError", "status_code": 503, "waited": 0.5}]),
}


def run(command: list[str | Path], cwd: Path, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(part) for part in command], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=TIMEOUT, check=False)


def shown(result: subprocess.CompletedProcess[str]) -> str:
    return f"exit {result.returncode}\n--- stdout\n{result.stdout}\n--- stderr\n{result.stderr}"


def clean_env(**extra: str) -> dict[str, str]:
    """os.environ without anything pointing Python or llmclient at the checkout (conftest sets
    LLMCLIENT_CONFIG; PYTHONPATH, a venv, coverage hooks), and no user site-packages."""
    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("LLMCLIENT_", "PYTHON", "VIRTUAL_ENV", "COVERAGE_", "ACME_"))}
    return {**env, "PYTHONNOUSERSITE": "1", **extra}


def build_wheel(tmp: Path) -> Path:
    """The wheel of a copy of the checkout (so the build leaves no build/ folder in it): without build
    isolation when this interpreter has the backend pyproject.toml asks for, else with it (from PyPI)."""
    source = tmp / "checkout"
    shutil.copytree(REPO, source, ignore=IGNORED, symlinks=True)
    command: list[str | Path] = [sys.executable, "-m", "pip", "wheel", "--no-deps", "--disable-pip-version-check",
                                 "-w", tmp / "dist", source]
    if offline_backend():
        command.insert(4, "--no-build-isolation")
    result = run(command, tmp, clean_env())
    assert result.returncode == 0, shown(result)
    (wheel,) = (tmp / "dist").glob("llmclient-*.whl")
    return wheel


def offline_backend() -> bool:
    """setuptools >= 69 (pyproject's build requirement) with a bdist_wheel (its own from 70.1, else `wheel`)."""
    try:
        version = tuple(int(part) for part in metadata.version("setuptools").split(".")[:2])
    except (metadata.PackageNotFoundError, ValueError):
        return False
    try:
        metadata.version("wheel")
        has_wheel = True
    except metadata.PackageNotFoundError:
        has_wheel = False
    return version >= (69, 0) and (version >= (70, 1) or has_wheel)


def fresh_venv(tmp: Path, wheel: Path) -> Path:
    """A new venv holding the wheel; its dependencies come from the dev venv's site-packages."""
    venv = tmp / "venv"
    result = run([sys.executable, "-m", "venv", "--without-pip", venv], tmp, clean_env())
    assert result.returncode == 0, shown(result)
    python = venv / "bin" / "python"
    result = run([sys.executable, "-m", "pip", "--python", python, "install", "--no-deps", "--no-index",
                  "--disable-pip-version-check", wheel], tmp, clean_env())
    assert result.returncode == 0, shown(result)
    site = Path(run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], tmp,
                    clean_env()).stdout.strip())
    (site / "dev-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv


@contextmanager
def fake_provider(key: str) -> Iterator[int]:
    """tests/fake_provider.py accepting only `key`: its port, and the process stopped afterwards."""
    server = subprocess.Popen([sys.executable, str(FAKE_PROVIDER), "--key", key], stdout=subprocess.PIPE, text=True,
                              env=clean_env())
    try:
        assert server.stdout is not None
        ready, _, _ = select.select([server.stdout], [], [], 15)
        line = server.stdout.readline() if ready else ""
        assert line.startswith("PORT "), f"the fake provider did not start (printed {line!r}, exit {server.poll()})"
        yield int(line.split()[1])
    finally:
        server.terminate()
        try:
            server.wait(timeout=5)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait(timeout=5)
        if server.stdout is not None:
            server.stdout.close()


def write_config(folder: Path, port: int, *, typo: bool = False) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    config = folder / "llmclient.toml"
    config.write_text(f"""# A provider llmclient does not know, declared here only.
[providers.acme]
{'base_ulr' if typo else 'base_url'} = "http://127.0.0.1:{port}/v1"
api_key_env = "ACME_API_KEY"
wire = "openai"
capabilities = ["tools", "streaming"]

[conformance.models]
acme = "acme-1"
""")
    return config


def recording_lines(stdout: str) -> dict[str, str]:
    """scenario -> its recording result (recorded, generated, refused, failed, ...)."""
    pattern = r"^(recorded|generated|kept|refused|failed|skipped)\s+acme/(\w+)\b"
    return {match[2]: match[1] for match in re.finditer(pattern, stdout, re.MULTILINE)}


def review(fixtures: Path) -> None:
    """What a person does with the drafts: check the values against what is known independently
    (here: what the fake server answers), then delete the draft keys."""
    for scenario, expected in EXPECTED.items():
        path = fixtures / "acme" / f"{scenario}.json"
        drafted = json.loads(path.read_text())
        assert list(drafted)[:2] == ["draft", "draft_note"] and drafted["draft"] is True, path
        assert f"cassettes/acme/{scenario}.yaml" in drafted["draft_note"]
        wanted = expected.get("responses", [expected])
        got = drafted.get("responses", [drafted])
        assert len(got) == len(wanted), (scenario, drafted)
        for one, want in zip(got, wanted):
            for key, value in want.items():
                if key == "responses":
                    continue
                if key == "message_contains":
                    assert value in drafted[key], (scenario, key, drafted[key])
                else:
                    assert one.get(key) == value, (scenario, key, one.get(key), value)
        del drafted["draft"], drafted["draft_note"]
        path.write_text(json.dumps(drafted, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def test_a_provider_declared_in_a_temp_config_works_from_the_wheel(tmp_path: Path) -> None:
    timings: dict[str, float] = {}
    started = last = time.perf_counter()

    def lap(name: str) -> None:
        nonlocal last
        now = time.perf_counter()
        timings[name], last = round(now - last, 2), now

    wheel = build_wheel(tmp_path)
    lap("build the wheel")
    venv = fresh_venv(tmp_path, wheel)
    python, cli = venv / "bin" / "python", venv / "bin" / "llmclient"
    work = tmp_path / "project"
    work.mkdir()
    env = clean_env()
    lap("fresh venv")

    # llmclient comes from the wheel, and the wheel holds no other top-level package.
    where = run([python, "-c", "import llmclient; print(llmclient.__file__)"], work, env)
    assert where.returncode == 0, shown(where)
    assert Path(where.stdout.strip()).is_relative_to(venv), where.stdout
    stray = run([python, "-c", "import conformance"], work, env)
    assert stray.returncode != 0 and "No module named 'conformance'" in stray.stderr, shown(stray)

    with fake_provider(KEY) as port:
        write_config(work, port)
        env = clean_env(ACME_API_KEY=KEY)

        # Client, with the configuration found from the working directory.
        said = run([python, "-c", "from llmclient import Client\n"
                    "response = Client('acme/acme-1').complete('hi')\n"
                    "print(response.text, response.model, response.usage.input_tokens)"], work, env)
        assert said.returncode == 0, shown(said)
        assert said.stdout.split() == ["Paris.", "acme-1", "1"], said.stdout
        lap("Client")

        conformance: list[str | Path] = [cli, "conformance", "--config", "llmclient.toml", "--provider", "acme", *CHOSEN,
                                         "--report", "report"]
        recorded = run([*conformance, "--record"], work, env)
        lap("record")
        assert recorded.returncode == 1, shown(recorded)  # recorded, but no expected values yet
        results = recording_lines(recorded.stdout)
        assert results == {**dict.fromkeys(RECORDED, "recorded"), **dict.fromkeys(GENERATED, "generated")}, shown(recorded)
        assert f"0 recording(s) failed or refused of {len(RECORDED + GENERATED)}" in recorded.stdout
        assert "no expected values at" in recorded.stdout
        cassettes = work / "cassettes"
        assert sorted(path.name for path in (cassettes / "acme").iterdir()) == sorted(
            f"{scenario}.yaml" for scenario in RECORDED + GENERATED)
        for path in cassettes.rglob("*"):
            if path.is_file():
                text = path.read_text()
                assert KEY not in text and KEY[-12:] not in text, f"the key leaked into {path}"
        assert KEY not in recorded.stdout + recorded.stderr
        scan = run([cli, "scan-secrets", "cassettes"], work, env)
        assert scan.returncode == 0 and "0 secret(s) found" in scan.stdout, shown(scan)
        (tmp_path / "leak.yaml").write_text(f"authorization: {KEY}\n")  # the lint does see this key when it is there
        assert run([cli, "scan-secrets", tmp_path / "leak.yaml"], work, env).returncode == 1

        drafted = run([*conformance, "--draft-expected"], work, env)
        assert drafted.returncode == 0, shown(drafted)
        fixtures = work / "fixtures" / "conformance"
        for scenario in RECORDED + GENERATED:
            assert f"acme/{scenario}: drafted " in drafted.stdout, shown(drafted)
            assert (fixtures / "acme" / f"{scenario}.json").is_file()
        unreviewed = run(conformance, work, env)
        assert unreviewed.returncode == 1, shown(unreviewed)
        for scenario in RECORDED + GENERATED:
            assert re.search(rf"^FAIL acme/{scenario}: .* is a draft", unreviewed.stdout, re.MULTILINE), shown(unreviewed)
        lap("draft")

        review(fixtures)
        passed = run(conformance, work, env)
        assert passed.returncode == 0, shown(passed)
        report = json.loads((work / "report" / "conformance-report.json").read_text())
        outcomes = {result["scenario"]: result["outcome"] for result in report["results"]}
        assert outcomes == dict.fromkeys(RECORDED + GENERATED, "pass"), shown(passed)
        lap("review and pass")

    # A server that refuses the key: nothing is written, and the run says so. It runs from `work`,
    # whose own llmclient.toml declares acme at the first (now stopped) server: --config decides.
    with fake_provider(OTHER_KEY) as port:
        refusing = write_config(tmp_path / "refusing", port)
        elsewhere = tmp_path / "refused-cassettes"
        refused = run([cli, "conformance", "--config", refusing, "--cassettes", elsewhere, "--provider", "acme",
                       "--scenario", "text", "--scenario", "error_rate_limit", "--record", "--report", "report"],
                      work, env)
        assert refused.returncode == 1, shown(refused)
        assert recording_lines(refused.stdout) == {"text": "refused", "error_rate_limit": "failed"}, shown(refused)
        assert "text needs 2xx, the provider answered 401" in refused.stdout
        assert not [path for path in elsewhere.rglob("*") if path.is_file()], list(elsewhere.rglob("*"))
        assert KEY not in refused.stdout + refused.stderr
    lap("refused key")

    # Bad input is a typed error (exit 2) that names what is wrong.
    missing = run([*conformance, "--cassettes", "/nonexistent/cassettes"], work, env)
    assert missing.returncode == 2 and "/nonexistent/cassettes" in missing.stderr, shown(missing)
    assert "llmclient: ConfigurationError:" in missing.stderr
    unknown = run([cli, "conformance", "--config", "llmclient.toml", "--provider", "acme", "--scenario", "nosuch"], work, env)
    assert unknown.returncode == 2 and "unknown scenario 'nosuch'" in unknown.stderr, shown(unknown)
    typo = write_config(tmp_path / "typo", 1, typo=True)
    mistyped = run([cli, "conformance", "--config", typo, "--provider", "acme", "--scenario", "text"], work, env)
    assert mistyped.returncode == 2, shown(mistyped)
    assert str(typo) in mistyped.stderr and "providers.acme.base_ulr" in mistyped.stderr, shown(mistyped)
    lap("bad input")

    timings["total"] = round(time.perf_counter() - started, 2)
    print(f"test_wheel timings (s): {timings}")
    assert timings["total"] < 90, timings
