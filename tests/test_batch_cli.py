"""`llmclient batch submit|status|results`, in-process and as a real subprocess, and a job picked up
by another process; batch items in telemetry."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import pytest

import llmclient
from llmclient import Client, transport
from llmclient.batches import submit_batch
from llmclient.cassettes import use_cassette
from llmclient.cli import main
from llmclient.testing import MockProvider
from tests.test_batch_apis import pin_job_ids

REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes" / "batches"
PROMPTS = [f"What is {i} + {i}? Answer with the number only." for i in range(100)]


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    pin_job_ids(monkeypatch, tmp_path / "jobs")


@pytest.fixture
def requests_file(tmp_path: Path) -> Path:
    path = tmp_path / "requests.jsonl"
    path.write_text("".join(json.dumps({"prompt": prompt, "max_tokens": 10}) + "\n" for prompt in PROMPTS))
    return path


def run_cli(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "llmclient", *args], cwd=REPO, capture_output=True, text=True,
                          timeout=120, check=False, env={**os.environ, "PYTHONPATH": str(REPO)})


def test_submit_status_and_results_on_the_openai_batch_api(requests_file: Path, tmp_path: Path,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "results.jsonl"
    with use_cassette(CASSETTES / "openai_100.yaml", strict=True):
        assert main(["batch", "submit", str(requests_file), "--model", "openai/gpt-4o-mini", "--json"]) == 0
        submitted = json.loads(capsys.readouterr().out)
        job_id = submitted["job_id"]
        assert (submitted["model"], submitted["total"], submitted["ended"]) == ("openai/gpt-4o-mini", 100, False)
        assert main(["batch", "status", job_id]) == 0  # the first poll: validating
        said = capsys.readouterr().out
        assert f"{job_id}  openai/gpt-4o-mini  in progress" in said and "validating" in said
        assert main(["batch", "results", job_id]) == 1  # the next poll: in_progress, 37 done
        assert "has not ended: in progress: 37 succeeded, 0 errored, 63 processing" in capsys.readouterr().out
        assert main(["batch", "results", job_id, "--wait", "--poll-interval", "0", "--out", str(out), "--json"]) == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["ended"] is True and shown["cost"] == "0.000202425"  # 2,099 x $0.075/M + 150 x $0.30/M (batch)
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["index"] for line in lines] == list(range(100))
    assert [line["response"]["text"] for line in lines] == [str(2 * i) for i in range(100)]
    assert {line["response"]["cost"]["prices"]["service_tier"] for line in lines} == {"batch"}


def test_the_cli_on_a_provider_without_a_batch_api(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "three.jsonl"
    path.write_text('"first"\n{"prompt": "second"}\n\n{"messages": [{"role": "user", "content": "third"}]}\n')
    with MockProvider() as mock:
        mock.reply("one").fail(400, message="no").reply("three")
        assert main(["batch", "submit", str(path), "--model", "mock/m", "--max-concurrency", "1",
                     "--dir", str(tmp_path / "jobs")]) == 0
    job_id = capsys.readouterr().out.split()[0]
    assert main(["batch", "results", job_id, "--dir", str(tmp_path / "jobs")]) == 1  # an item failed
    table = capsys.readouterr().out.splitlines()
    assert [line.split()[:3] for line in table[1:4]] == [["0", "ok", "one"], ["1", "BadRequestError", "no"],
                                                          ["2", "ok", "three"]]
    assert table[-1].startswith("2 answered, 1 failed;")


def test_a_file_that_is_not_json_lines_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('"fine"\nnot json\n')
    assert main(["batch", "submit", str(path), "--model", "mock/m"]) == 2
    assert f"{path}:2: not JSON" in capsys.readouterr().err


def test_status_and_results_as_a_real_subprocess(requests_file: Path) -> None:
    with use_cassette(CASSETTES / "openai_100.yaml", strict=True):
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS, max_tokens=10)
        job.results(poll_interval=0, progress=False)  # ended and fetched: the subprocess needs no network
    status = run_cli("batch", "status", job.job_id, "--json")
    assert status.returncode == 0, status.stderr
    assert json.loads(status.stdout)["batches"][0]["status"] == "completed"
    results = run_cli("batch", "results", job.job_id, "--json")
    assert results.returncode == 0, results.stderr
    shown = json.loads(results.stdout)
    assert [item["response"]["text"] for item in shown["items"]] == [str(2 * i) for i in range(100)]
    assert results.stderr == ""  # no progress bar when stderr is no terminal


def test_another_process_resumes_an_interrupted_fetch(monkeypatch: pytest.MonkeyPatch) -> None:
    content = str(__import__("yaml").safe_load((CASSETTES / "openai_100.yaml").read_text())
                  ["interactions"][-1]["response"]["body"]["string"]).encode()
    whole = sum(len(line) + 1 for line in content.split(b"\n")[:40])
    previous = transport.interceptor

    class Breaking(httpx.SyncByteStream):
        def __iter__(self) -> Iterator[bytes]:
            yield content[: whole + 10]
            raise KeyboardInterrupt

    def hook(request: httpx.Request, spec: object) -> httpx.Response | None:
        if request.url.path.endswith("/content"):
            return httpx.Response(200, stream=Breaking(), request=request)
        return previous(request, spec) if previous is not None else None  # type: ignore[arg-type]

    monkeypatch.setattr(transport, "interceptor", hook)
    with use_cassette(CASSETTES / "openai_100_resume.yaml"):
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS, max_tokens=10)
        with pytest.raises(KeyboardInterrupt):
            job.results(poll_interval=0, progress=False)
    script = (
        "import json, sys\n"
        "from llmclient.batches import batch_results\n"
        "from llmclient.cassettes import use_cassette\n"
        f"with use_cassette({str(CASSETTES / 'openai_100_resume.yaml')!r}) as cassette:\n"
        f"    result = batch_results({job.job_id!r}, poll_interval=0)\n"
        "print(json.dumps({'texts': [r.text for r in result.responses], 'cost': str(result.cost.total),\n"
        "                  'sent': [[r.method, r.uri, r.headers.get('range')] for r in cassette.sent]}))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=120,
                          check=False, env={**os.environ, "PYTHONPATH": str(REPO)})
    assert done.returncode == 0, done.stderr
    shown = json.loads(done.stdout)
    assert shown["texts"] == [str(2 * i) for i in range(100)]
    assert shown["cost"] == "0.000202425"
    [(method, uri, asked)] = shown["sent"]  # no upload, no create, no status read: only the rest of the file
    assert method == "GET" and uri.endswith("/content") and asked == f"bytes={whole}-"


def test_batch_items_are_calls_of_kind_batch_in_telemetry() -> None:
    events: list[llmclient.HookEvent] = []
    llmclient.add_hook("on_response", events.append)
    try:
        with llmclient.track() as totals, use_cassette(CASSETTES / "anthropic_100.yaml", strict=True):
            client = Client("anthropic/claude-haiku-4-5")
            result = client_batch(client)
    finally:
        llmclient.remove_hook("on_response", events.append)
    assert len(events) == 100 and {event.kind for event in events} == {"batch"}
    assert {event.context.operation for event in events} == {"batch"}
    assert events[3].request is not None and events[3].request.messages[-1].text == PROMPTS[3]
    assert totals.cost == Decimal("0.0015725") and result.cost is not None and result.cost.total == totals.cost
    again = llmclient.batch_results(result.job_id)  # recorded once per job: a second read records nothing
    assert len(events) == 100 and again.cost == result.cost


def client_batch(client: Client) -> llmclient.BatchResult:
    from llmclient.batches import run_batch

    return run_batch(client, PROMPTS, max_tokens=10, poll_interval=0, progress=False)


# --- bad files and directories: a typed message and exit 2, never a traceback --------------------------

def test_a_requests_file_that_is_not_utf8_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "latin1.jsonl"
    path.write_bytes('"fine"\n"caf\u00e9"\n'.encode("latin-1"))
    assert main(["batch", "submit", str(path), "--model", "mock/m"]) == 2
    said = capsys.readouterr().err
    assert said.startswith("llmclient: ConfigurationError:") and f"{path}:2: not UTF-8" in said


def test_a_job_directory_that_cannot_be_made_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "one.jsonl"
    path.write_text('"hello"\n')
    with MockProvider() as mock:
        assert main(["batch", "submit", str(path), "--model", "mock/m", "--dir", "/dev/null/jobs"]) == 2
        assert mock.requests == []  # refused before anything was sent
    said = capsys.readouterr().err
    assert "ConfigurationError: cannot create the batch job directory /dev/null/jobs/job-" in said
    assert main(["batch", "status", "job-0000000000000001", "--dir", "/dev/null/jobs"]) == 2
    assert "ConfigurationError" in capsys.readouterr().err


def test_an_out_file_that_cannot_be_written_is_refused_before_fetching(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                                      capsys: pytest.CaptureFixture[str]) -> None:
    with use_cassette(CASSETTES / "openai_100.yaml"):
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS, max_tokens=10)
    asked: list[str] = []

    def hook(request: httpx.Request, spec: object) -> httpx.Response | None:
        asked.append(str(request.url))
        raise AssertionError("nothing is fetched for an --out that cannot be written")

    monkeypatch.setattr(transport, "interceptor", hook)
    for out in (tmp_path / "no-such-dir" / "out.jsonl", tmp_path):
        assert main(["batch", "results", job.job_id, "--wait", "--out", str(out)]) == 2
        said = capsys.readouterr().err
        assert said.startswith("llmclient: ConfigurationError: --out") and "Traceback" not in said
    assert asked == []
    monkeypatch.setattr(transport, "interceptor", lambda request, spec: httpx.Response(
        401, json={"error": {"message": "no", "type": "invalid_request_error"}}, request=request))
    out = tmp_path / "out.jsonl"
    assert main(["batch", "results", job.job_id, "--wait", "--out", str(out)]) == 2  # the fetch itself failed
    assert not out.exists()  # made to check it, removed unwritten
