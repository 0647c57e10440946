"""The local telemetry store (llmclient/telemetry/store.py, upkeep.py): whole lines from many threads
and processes, a killed process, a directory that cannot be written, a full disk, rotation and the
size cap, retention, the optional prompt/response files, the switch, the environment's settings,
the default directory, the exact cost and a failed call's record.

Every test writes to its own tmp_path: in-process through `configure_telemetry(directory=...)` (the
`store_at` fixture puts the session's store back afterwards), in subprocesses through
LLM_TELEMETRY_DIR or cwd=tmp_path. Calls go to `llmclient.testing.MockProvider`; nothing leaves
the machine.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import subprocess
import sys
import textwrap
import warnings
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from llmclient import (
    Client,
    RetryPolicy,
    TelemetryWarning,
    configure_telemetry,
    flush_telemetry,
    pricing,
)
from llmclient.errors import ServerError
from llmclient.telemetry import store
from llmclient.testing import MockProvider

PYTHON = sys.executable


# --- helpers ------------------------------------------------------------------------------------------

def utc_day(days_ago: int = 0) -> str:
    return (datetime.now(timezone.utc) - timedelta(days=days_ago)).strftime("%Y-%m-%d")


def read_lines(directory: Path, pattern: str = "*/telemetry*.jsonl") -> list[dict[str, Any]]:
    """Every record under `directory`; each file must end with a newline and each line be one JSON object."""
    found = []
    for path in sorted(directory.glob(pattern)):
        data = path.read_bytes()
        if not data:
            continue
        assert data.endswith(b"\n"), f"{path} ends mid-line: {data[-80:]!r}"
        for number, line in enumerate(data.split(b"\n")[:-1], 1):
            try:
                record = json.loads(line, parse_float=Decimal)
            except ValueError:
                pytest.fail(f"{path}:{number} is not one JSON object: {line[:200]!r}")
            assert isinstance(record, dict), f"{path}:{number}"
            found.append(record)
    return found


def summary_of(directory: Path) -> dict[str, Any]:
    summary = json.loads((directory / "summary.json").read_text(encoding="utf-8"))
    assert isinstance(summary, dict)
    return summary


def calls(count: int, model: str = "mock/any-model", *, input_tokens: int = 12, output_tokens: int = 2,
          every: Callable[[int], dict[str, Any]] | None = None) -> list[str]:
    """`count` calls through the mock provider, one queued reply each; their answers."""
    with MockProvider() as mock:
        for _ in range(count):
            mock.reply("Paris.", input_tokens=input_tokens, output_tokens=output_tokens)
        client = Client(model)
        return [client.complete("Capital of France?", **(every(n) if every else {})).text for n in range(count)]


def child_env(directory: Path | None, **more: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("LLM_")}  # no store settings but ours
    if directory is not None:
        env["LLM_TELEMETRY_DIR"] = str(directory)
    env.update(more)
    return env


def run_child(code: str, cwd: Path, env: dict[str, str], *args: str, timeout: float = 60) -> str:
    done = subprocess.run([PYTHON, "-c", textwrap.dedent(code), *args], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout, check=False)
    assert done.returncode == 0, f"child failed ({done.returncode}):\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.fixture
def store_at(tmp_path: Path) -> Iterator[Callable[..., Path]]:
    """configure_telemetry(directory=<tmp>/<name>, **settings) for the test; the previous settings after."""
    previous = store.current().settings

    def at(name: str = "telemetry", **settings: Any) -> Path:
        directory = tmp_path / name
        configure_telemetry(directory=directory, **settings)
        return directory

    yield at
    configure_telemetry(**dataclasses.asdict(previous))


@pytest.fixture
def caught() -> Iterator[list[warnings.WarningMessage]]:
    """Every warning given during the test (from any thread: the writer warns on its own)."""
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        yield seen


def telemetry_warnings(seen: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in seen if issubclass(w.category, TelemetryWarning)]


# --- many threads x many processes ---------------------------------------------------------------------

THREADS, PROCESSES, CALLS = 8, 4, 500

MANY = """
    import sys, threading
    from llmclient import Client
    from llmclient.testing import MockProvider

    threads, calls, input_tokens, output_tokens = map(int, sys.argv[1:5])
    with MockProvider() as mock:
        for _ in range(threads * calls):
            mock.reply("ok", input_tokens=input_tokens, output_tokens=output_tokens)

        def work():
            client = Client("mock/any-model")
            for _ in range(calls):
                client.complete("hi")

        workers = [threading.Thread(target=work) for _ in range(threads)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
    # no flush: the records still queued are written at exit
"""


def test_8_threads_x_4_processes_x_500_calls_make_exactly_16000_whole_records(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    tokens = {p: (7 + p, 3 + p) for p in range(PROCESSES)}  # each process its own usage, to tell them apart
    children = [subprocess.Popen([PYTHON, "-c", textwrap.dedent(MANY), str(THREADS), str(CALLS), *map(str, tokens[p])],
                                 cwd=tmp_path, env=child_env(directory), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                 text=True) for p in range(PROCESSES)]
    pid_of = {child.pid: p for p, child in enumerate(children)}
    for child in children:
        out, err = child.communicate(timeout=120)
        assert child.returncode == 0, f"child failed:\n{out}\n{err}"

    records = read_lines(directory)  # every line one JSON object: no two records interleaved
    assert len(records) == THREADS * PROCESSES * CALLS == 16_000
    assert len({record["call_id"] for record in records}) == 16_000
    assert Counter(record["pid"] for record in records) == {pid: THREADS * CALLS for pid in pid_of}
    for record in records:  # each record carries the usage its own process queued
        assert (record["tokens"]["input"], record["tokens"]["output"]) == tokens[pid_of[record["pid"]]]
        assert record["success"] is True and record["model"] == "mock/any-model"

    day = summary_of(directory)["days"][records[0]["timestamp"][:10]]
    per_process = THREADS * CALLS
    assert day["calls"] == 16_000 and day["failed_calls"] == 0
    assert day["input_tokens"] == sum(per_process * i for i, _ in tokens.values()) == 136_000
    assert day["output_tokens"] == sum(per_process * o for _, o in tokens.values()) == 72_000
    assert day["total_tokens"] == 208_000
    assert day["models"]["mock/any-model"]["calls"] == 16_000


# --- a process killed mid-work --------------------------------------------------------------------------

KILLED = """
    import sys, time
    from llmclient import Client, add_hook
    from llmclient.testing import MockProvider

    latency = float(sys.argv[1])
    add_hook("on_request", lambda event: time.sleep(latency))  # the provider's time to answer
    with MockProvider(allow_unused=True) as mock:
        for _ in range(10_000):
            mock.reply("ok", input_tokens=5, output_tokens=1)
        client = Client("mock/any-model")
        done = 0
        while True:
            client.complete("hi")
            done += 1
            print(done, flush=True)
"""


def test_a_process_killed_with_sigkill_loses_at_most_its_in_flight_record(tmp_path: Path) -> None:
    """Calls that take longer than the writer's linger (as a provider's do) find the previous
    record on disk; the one of the call that ended last may still be on the queue."""
    directory, killed_after = tmp_path / "store", 12
    child = subprocess.Popen([PYTHON, "-c", textwrap.dedent(KILLED), str(2 * store.LINGER)], cwd=tmp_path,
                             env=child_env(directory), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert child.stdout is not None
        seen = 0
        for line in child.stdout:
            seen = int(line)
            if seen >= killed_after:
                break
        child.send_signal(signal.SIGKILL)
    finally:
        child.kill()
        child.wait(timeout=10)
    assert seen == killed_after, child.stderr.read() if child.stderr else ""
    assert child.returncode == -signal.SIGKILL

    records = read_lines(directory)  # every line whole and valid
    assert killed_after - 1 <= len(records) <= killed_after + 1  # +1: a call may end between the read and the kill
    assert len({record["call_id"] for record in records}) == len(records)
    assert not (directory / "summary.json").exists() or summary_of(directory)["days"]  # never half a summary


FORKED = """
    import multiprocessing
    from llmclient import Client
    from llmclient.testing import MockProvider

    def work():
        with MockProvider() as mock:
            for _ in range(50):
                mock.reply("ok", input_tokens=2, output_tokens=1)
            client = Client("mock/any-model")
            for _ in range(50):
                client.complete("hi")
        # returns without a flush; multiprocessing then ends the child with os._exit (no atexit)

    if __name__ == "__main__":
        child = multiprocessing.get_context("fork").Process(target=work)
        child.start()
        child.join()
        print(child.exitcode)
"""


@pytest.mark.skipif(sys.platform == "win32", reason="fork")
def test_a_forked_multiprocessing_child_writes_its_records_and_summary_at_exit(tmp_path: Path) -> None:
    directory = tmp_path / "store"
    assert run_child(FORKED, tmp_path, child_env(directory)).strip() == "0"
    records = read_lines(directory)
    assert len(records) == 50
    assert summary_of(directory)["days"][records[0]["timestamp"][:10]]["calls"] == 50


def test_a_line_torn_by_a_killed_writer_does_not_swallow_the_next_record(store_at: Callable[..., Path]) -> None:
    directory = store_at()
    (directory / utc_day()).mkdir(parents=True)
    live = directory / utc_day() / "telemetry.jsonl"
    live.write_bytes(b'{"schema":1,"call_id":"0123')  # what a writer killed mid-write leaves
    calls(2)
    assert flush_telemetry(5)
    lines = live.read_bytes().split(b"\n")
    assert lines[0] == b'{"schema":1,"call_id":"0123' and lines[-1] == b""
    assert [json.loads(line)["success"] for line in lines[1:-1]] == [True, True]


# --- a directory that cannot be written -----------------------------------------------------------------

def _unwritable(tmp_path: Path, how: str) -> Path:
    if how == "under a file":
        (tmp_path / "a-file").write_text("not a folder")
        return tmp_path / "a-file" / "telemetry"
    if how == "blocked inside":  # what a read-only folder does, even as root: no day folder, no lock file
        folder = tmp_path / "blocked"
        folder.mkdir()
        (folder / utc_day()).write_text("a file where the day's folder would be")
        (folder / ".lock").mkdir()
        return folder
    folder = tmp_path / "read-only"
    folder.mkdir()
    folder.chmod(0o500)
    try:
        (folder / "probe").touch()
    except PermissionError:
        return folder
    folder.chmod(0o700)
    pytest.skip("running as root: chmod 0o500 does not stop writes (the 'under a file' case covers this)")


@pytest.mark.parametrize("how", ["under a file", "blocked inside", "read-only"])
def test_an_unwritable_directory_warns_once_and_the_calls_succeed(
        tmp_path: Path, how: str, caught: list[warnings.WarningMessage], store_at: Callable[..., Path]) -> None:
    directory = _unwritable(tmp_path, how)
    try:
        configure_telemetry(directory=directory)
        assert calls(3) == ["Paris."] * 3
        assert flush_telemetry(5)
        assert calls(2) == ["Paris."] * 2  # dropped while the directory fails: no second warning
        assert flush_telemetry(5)
        assert store.current().dropped == 5 and store.current().written == 0
    finally:
        if how == "read-only":
            directory.chmod(0o700)
    found = telemetry_warnings(caught)
    assert len(found) == 1, found
    assert str(directory) in found[0] and "calls go on" in found[0]


# --- a full disk ---------------------------------------------------------------------------------------

FULL = """
    import json, resource, signal, sys, warnings
    limit, count = int(sys.argv[1]), int(sys.argv[2])
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a write past the limit fails with EFBIG instead
    from llmclient import Client, TelemetryWarning, flush_telemetry
    from llmclient.testing import MockProvider
    from llmclient.telemetry import store

    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))  # no file of this process grows past it
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        answers = []
        with MockProvider() as mock:
            for _ in range(count):
                mock.reply("ok", input_tokens=4, output_tokens=1)
            client = Client("mock/any-model")
            for _ in range(count):
                answers.append(client.complete("hi").text)
                flush_telemetry(5)  # one record a batch: the one that crosses the limit is cut short
    print(json.dumps({"answers": answers, "written": store.current().written, "dropped": store.current().dropped,
                      "warnings": [str(w.message) for w in seen if issubclass(w.category, TelemetryWarning)]}))
"""


def test_a_full_disk_warns_once_the_calls_succeed_and_no_torn_line_is_left(tmp_path: Path) -> None:
    directory, limit, count = tmp_path / "store", 6000, 20  # a record is ~900 bytes: some fit, then the disk is full
    out = json.loads(run_child(FULL, tmp_path, child_env(directory), str(limit), str(count)))
    assert out["answers"] == ["ok"] * count
    assert len(out["warnings"]) == 1, out["warnings"]
    assert "EFBIG" in out["warnings"][0] or "File too large" in out["warnings"][0] or "bytes could be written" in out["warnings"][0]

    live = directory / utc_day() / "telemetry.jsonl"
    assert live.stat().st_size <= limit
    records = read_lines(directory)  # ends with a newline: the cut-short record was taken back
    assert 1 <= len(records) < count
    assert out["written"] == len(records) and out["dropped"] == count - len(records)
    assert summary_of(directory)["days"][utc_day()]["calls"] == len(records)  # the summary counts what was written


def test_writes_failing_with_enospc_warn_once(tmp_path: Path, caught: list[warnings.WarningMessage],
                                             store_at: Callable[..., Path]) -> None:
    if not Path("/dev/full").exists():
        pytest.skip("no /dev/full here")
    directory = store_at()
    (directory / utc_day()).mkdir(parents=True)
    (directory / utc_day() / "telemetry.jsonl").symlink_to("/dev/full")
    assert calls(4) == ["Paris."] * 4
    assert flush_telemetry(5)
    found = telemetry_warnings(caught)
    assert len(found) == 1 and "No space left" in found[0], found


# --- rotation, the size cap and retention ---------------------------------------------------------------

def test_rotation_keeps_the_store_under_its_cap_deleting_old_days_then_old_segments(
        store_at: Callable[..., Path]) -> None:
    directory = store_at(max_size_mb=0.5)  # cap 512 KiB; segments at max(cap / 10, 64 KiB) = 64 KiB
    cap, segment = 512 * 1024, 64 * 1024
    yesterday = directory / utc_day(1)
    yesterday.mkdir(parents=True)
    (yesterday / "telemetry.jsonl").write_bytes(b'{"old": true}\n' * 20_000)  # 280 KB of an older day
    total = 1510  # ~1.3 MB of records: well over the cap
    for start in range(0, 1500, 100):
        calls(100, every=lambda n, start=start: {"operation": f"n{start + n}"})
        assert flush_telemetry(10)
    calls(10, every=lambda n: {"operation": f"n{1500 + n}"})  # less than a segment: not rotated out
    assert flush_telemetry(10)

    today = directory / utc_day()
    segments = sorted(today.glob("telemetry.*.jsonl"))
    assert segments, "no segment was rotated out"
    assert all(path.stat().st_size >= segment for path in segments)
    live = [int(record["operation"][1:]) for record in read_lines(today.parent, f"{today.name}/telemetry.jsonl")]
    assert live == list(range(min(live), 1510)) and min(live) <= 1500  # today's live file, the newest, is kept
    on_disk = sum(path.stat().st_size for path in directory.rglob("*") if path.is_file())
    assert on_disk <= cap
    assert not yesterday.exists()  # the oldest day went first
    kept = [int(record["operation"][1:]) for record in read_lines(directory)]
    assert sorted(kept) == list(range(total - len(kept), total))  # the newest records, none lost in between
    assert 10 < len(kept) < total


def test_retention_deletes_old_day_folders_and_summary_days(store_at: Callable[..., Path]) -> None:
    directory = store_at(retention_days=7)
    old, recent = [utc_day(30), utc_day(8)], [utc_day(6), utc_day(1)]
    for day in old + recent:
        (directory / day).mkdir(parents=True)
        (directory / day / "telemetry.jsonl").write_text('{"kept": "until deleted"}\n')
    (directory / "notes").mkdir()  # not a day folder: left alone
    seeded = {day: {"calls": 5, "input_tokens": 50} for day in old + recent}
    (directory / "summary.json").write_text(json.dumps({"schema": 1, "days": seeded}))

    calls(2, input_tokens=3, output_tokens=1)
    assert flush_telemetry(5)

    assert [day for day in old if (directory / day).exists()] == []
    assert all((directory / day / "telemetry.jsonl").exists() for day in recent)
    assert (directory / "notes").is_dir()
    days = summary_of(directory)["days"]
    assert sorted(days) == sorted([*recent, utc_day()])
    assert all(days[day] == {"calls": 5, "input_tokens": 50} for day in recent)
    assert days[utc_day()]["calls"] == 2 and days[utc_day()]["input_tokens"] == 6


# --- what is written, and where -------------------------------------------------------------------------

@pytest.mark.parametrize(("prompts", "responses"), [(False, False), (True, False), (False, True), (True, True)])
def test_prompt_and_response_files_only_when_enabled(store_at: Callable[..., Path], prompts: bool,
                                                     responses: bool) -> None:
    directory = store_at(store_prompts=prompts, store_responses=responses)
    calls(2)
    assert flush_telemetry(5)
    today = directory / utc_day()
    assert sorted(path.name for path in today.iterdir()) == sorted(
        ["telemetry.jsonl"] + ["prompts.jsonl"] * prompts + ["responses.jsonl"] * responses)
    records = read_lines(directory)
    ids = [record["call_id"] for record in records]
    if prompts:
        lines = read_lines(directory, "*/prompts.jsonl")
        assert [line["call_id"] for line in lines] == ids
        assert [line["prompt_hash"] for line in lines] == [record["prompt_hash"] for record in records]
        assert lines[0]["request"]["messages"][-1]["content"] in ("Capital of France?", [{"type": "text", "text": "Capital of France?"}])
    if responses:
        lines = read_lines(directory, "*/responses.jsonl")
        assert [line["call_id"] for line in lines] == ids
        assert lines[0]["response"]["text"] == "Paris."


def test_prompts_and_responses_switched_on_by_the_environment(store_at: Callable[..., Path],
                                                             monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_STORE_PROMPTS", "true")
    monkeypatch.setenv("LLM_STORE_RESPONSES", "1")
    directory = store_at()
    calls(1)
    assert flush_telemetry(5)
    assert len(read_lines(directory, "*/prompts.jsonl")) == len(read_lines(directory, "*/responses.jsonl")) == 1


def test_storage_disabled_by_the_environment_writes_nothing(store_at: Callable[..., Path],
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLM_TELEMETRY_STORAGE_ENABLED", "false")
    directory = store_at()
    assert calls(3) == ["Paris."] * 3
    assert flush_telemetry(5)
    assert not directory.exists()


DEFAULT = """
    from llmclient import Client
    from llmclient.testing import MockProvider
    with MockProvider() as mock:
        mock.reply("Paris.", input_tokens=12, output_tokens=2)
        print(Client("mock/any-model").complete("Capital of France?").text)
"""


def test_the_default_directory_is_llm_telemetry_in_the_working_directory(tmp_path: Path) -> None:
    before = utc_day()
    assert run_child(DEFAULT, tmp_path, child_env(None)).strip() == "Paris."  # LLM_TELEMETRY_DIR unset
    default = tmp_path / ".llm-telemetry"
    days = [path.name for path in default.iterdir() if path.is_dir()]
    assert days in ([before], [utc_day()])
    records = read_lines(default)
    assert len(records) == 1 and records[0]["tokens"]["input"] == 12 and records[0]["tokens"]["output"] == 2
    assert records[0]["metadata"]["project"] == tmp_path.name
    assert summary_of(default)["days"][days[0]]["calls"] == 1  # written at exit


def test_the_switch_off_in_a_fresh_process_leaves_no_folder(tmp_path: Path) -> None:
    env = child_env(None, LLM_TELEMETRY_STORAGE_ENABLED="false")
    assert run_child(DEFAULT, tmp_path, env).strip() == "Paris."
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("name", "value", "field", "default"), [
    ("LLM_TELEMETRY_STORAGE_ENABLED", "maybe", "enabled", True),
    ("LLM_STORE_PROMPTS", "sometimes", "store_prompts", False),
    ("LLM_STORE_RESPONSES", "2", "store_responses", False),
    ("LLM_RETENTION_DAYS", "thirty", "retention_days", 30),
    ("LLM_RETENTION_DAYS", "0", "retention_days", 30),
    ("LLM_RETENTION_DAYS", "1.5", "retention_days", 30),
    ("LLM_STORAGE_MAX_SIZE_MB", "-1", "max_size_mb", 100.0),
    ("LLM_STORAGE_MAX_SIZE_MB", "inf", "max_size_mb", 100.0),
    ("LLM_STORAGE_MAX_SIZE_MB", "nan", "max_size_mb", 100.0),
    ("LLM_STORAGE_MAX_SIZE_MB", "lots", "max_size_mb", 100.0),
])
def test_a_bad_setting_falls_back_to_its_default_with_one_warning(
        name: str, value: str, field: str, default: object, monkeypatch: pytest.MonkeyPatch,
        caught: list[warnings.WarningMessage]) -> None:
    monkeypatch.setattr(store, "_warned", set())  # "once" is per process: start this test from none
    for _ in range(3):
        assert getattr(store.Settings.from_env({name: value}), field) == default
    with warnings.catch_warnings(record=True) as inner:  # nothing said twice
        warnings.simplefilter("always")
        store.Settings.from_env({name: value})
    assert telemetry_warnings(inner) == []
    found = telemetry_warnings(caught)
    assert len(found) == 1 and name in found[0] and repr(value) in found[0], found


def test_good_settings_from_the_environment() -> None:
    settings = store.Settings.from_env({"LLM_TELEMETRY_DIR": "/x/y", "LLM_TELEMETRY_STORAGE_ENABLED": "off",
                                        "LLM_STORE_PROMPTS": "YES", "LLM_RETENTION_DAYS": "7",
                                        "LLM_STORAGE_MAX_SIZE_MB": "2.5"})
    assert settings == store.Settings(directory=Path("/x/y"), enabled=False, store_prompts=True,
                                      store_responses=False, retention_days=7, max_size_mb=2.5)
    assert store.Settings.from_env({}) == store.Settings(directory=Path.cwd() / ".llm-telemetry", enabled=True,
                                                         store_prompts=False, store_responses=False,
                                                         retention_days=30, max_size_mb=100.0)


def test_a_retention_too_long_for_the_calendar_keeps_every_day(store_at: Callable[..., Path]) -> None:
    directory = store_at(retention_days=10**8)
    (directory / "0001-01-01").mkdir(parents=True)
    calls(1)
    assert flush_telemetry(5)
    assert (directory / "0001-01-01").is_dir() and len(read_lines(directory)) == 1


# --- the record's values -------------------------------------------------------------------------------

def test_cost_is_written_as_the_exact_decimal(store_at: Callable[..., Path]) -> None:
    pricing.set_price("mock/priced-telemetry-model", input="0.0000025", output="0.00001")
    directory = store_at()
    calls(2, "mock/priced-telemetry-model", input_tokens=1234, output_tokens=567)
    assert flush_telemetry(5)
    expected = 1234 * Decimal("0.0000025") + 567 * Decimal("0.00001")  # by hand: 0.003085 + 0.00567
    assert expected == Decimal("0.008755")
    text = (directory / utc_day() / "telemetry.jsonl").read_text()
    assert '"cost_usd":0.008755' in text  # a JSON number with the exact digits, no float rounding
    records = read_lines(directory)
    assert [record["cost_usd"] for record in records] == [expected, expected]
    assert [record["cost_source"] for record in records] == ["price-table"] * 2
    model = summary_of(directory)["days"][utc_day()]["models"]["mock/priced-telemetry-model"]
    assert Decimal(model["cost_usd"]) == 2 * expected and model["calls"] == 2


def test_a_failed_call_is_recorded_with_its_error(store_at: Callable[..., Path]) -> None:
    directory = store_at()
    with MockProvider() as mock:
        mock.fail(500, message="the server broke")
        with pytest.raises(ServerError) as raised:
            Client("mock/any-model", retry=RetryPolicy(max_attempts=1)).complete("hi")
    assert flush_telemetry(5)
    [record] = read_lines(directory)
    assert record["success"] is False and record["outcome"] == "error"
    assert record["metadata"]["error"]["type"] == type(raised.value).__name__ == "ServerError"
    assert record["metadata"]["error"]["status_code"] == 500
    assert "the server broke" in record["metadata"]["error"]["message"]
    assert record["finish_reason"] is None and record["cost_usd"] is None and record["response_hash"] is None
    assert record["attempts"] == 1 and [r["status_code"] for r in record["retries"]] == [500]
    day = summary_of(directory)["days"][utc_day()]
    assert day["calls"] == 1 and day["failed_calls"] == 1 and "unpriced_calls" not in day


def test_a_retried_call_records_each_failed_attempt(store_at: Callable[..., Path]) -> None:
    directory = store_at()
    with MockProvider() as mock:
        mock.fail(503).reply("Paris.", input_tokens=9, output_tokens=2)
        answer = Client("mock/any-model", retry=RetryPolicy(max_attempts=2, sleep=lambda _: None)).complete("hi")
    assert answer.text == "Paris." and flush_telemetry(5)
    [record] = read_lines(directory)
    assert record["success"] is True and record["attempts"] == 2
    assert [r["status_code"] for r in record["retries"]] == [503]
    assert record["tokens"]["input"] == 9 and record["metadata"]["error"] is None


def test_a_summary_that_cannot_be_written_leaves_no_temporary_file(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.telemetry import upkeep

    real_fdopen = os.fdopen

    class FullDisk:  # the temporary file opens, but no byte fits
        def __init__(self, fd: int, *args: Any, **kwargs: Any) -> None:
            self.file = real_fdopen(fd, *args, **kwargs)

        def __enter__(self) -> FullDisk:
            return self

        def __exit__(self, *exc: object) -> None:
            self.file.close()

        def write(self, text: str) -> int:
            raise OSError(28, "No space left on device")

    monkeypatch.setattr(upkeep.os, "fdopen", FullDisk)
    with pytest.raises(OSError, match="No space"):
        upkeep.merge_summary(tmp_path, {utc_day(): {"calls": 1}}, 30)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("found", [
    {"days": {"TODAY": 7}}, {"days": {"TODAY": {"models": []}}}, {"days": {"TODAY": {"calls": None}}},
    {"days": {"TODAY": {"cost_usd": "abc"}}}, {"days": {"TODAY": {"cost_usd": "NaN"}}},
    {"days": {"TODAY": {"calls": True}}}, {"days": {"TODAY": {"models": {"m": {"calls": "3"}}}}},
    {"days": {"TODAY": {"models": {"m": 3}}}}, {"days": {"TODAY": {"models": {"m": {"models": {}}}}}},
    {"days": []}, {"calls": None}, [1, 2], "text", "{not json",
])
def test_a_summary_of_the_wrong_shape_starts_over_with_one_warning(tmp_path: Path, caplog: pytest.LogCaptureFixture,
                                                                  found: Any) -> None:
    """A summary.json that parses but is not the summary's shape would make every merge raise, so that
    it is never written again: the wrongly shaped day (or the whole file) starts over, as invalid JSON does."""
    from llmclient.telemetry import upkeep

    today, yesterday = utc_day(), utc_day(1)
    text = found if isinstance(found, str) else json.dumps(found).replace("TODAY", today)
    whole_file = not (isinstance(found, dict) and isinstance(found.get("days"), dict))
    if not whole_file:  # a good day beside the bad one is kept as it was
        document = json.loads(text)
        document["days"][yesterday] = {"calls": 5, "cost_usd": "0.1"}
        text = json.dumps(document)
    (tmp_path / "summary.json").write_text(text, encoding="utf-8")
    increment = {"calls": 1, "cost_usd": Decimal("0.5"), "models": {"m": {"calls": 1, "cost_usd": Decimal("0.5")}}}
    fresh = {"calls": 1, "cost_usd": "0.5", "models": {"m": {"calls": 1, "cost_usd": "0.5"}}}

    with caplog.at_level("WARNING", logger="llmclient"):
        upkeep.merge_summary(tmp_path, {today: increment}, 30)
    warned = [r for r in caplog.records if r.levelname == "WARNING" and "summary.json" in r.getMessage()]
    assert len(warned) == 1, caplog.records
    days = summary_of(tmp_path)["days"]
    assert days == ({today: fresh} if whole_file else {today: fresh, yesterday: {"calls": 5, "cost_usd": "0.1"}})

    caplog.clear()
    with caplog.at_level("WARNING", logger="llmclient"):
        upkeep.merge_summary(tmp_path, {today: increment}, 30)  # written again, and added to
    assert summary_of(tmp_path)["days"][today] == {"calls": 2, "cost_usd": "1.0",
                                                   "models": {"m": {"calls": 2, "cost_usd": "1.0"}}}
    assert not [r for r in caplog.records if r.levelname == "WARNING"]
