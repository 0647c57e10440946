"""Batches on the providers' batch APIs (OpenAI Batch, Anthropic Message Batches), replayed from the
authored cassettes in cassettes/batches/ (see its README for where each shape comes from).

Expected values are independent of llmclient: answers and token counts follow the rules the
cassettes' README states (item i is answered str(2 * i); OpenAI usage 20 + i % 3 in, 1 + i % 2 out;
Anthropic 15 + i % 4 in, 2 + i % 3 out), checked here against the recorded bodies themselves, and
dollars are computed by hand from the providers' published batch prices, cited below.
"""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from contextlib import contextmanager
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmclient import BadRequestError, BatchError, Client, InvalidRequestError, RetryPolicy, transport
from llmclient.batches import BatchJob, batch_results, batch_status, run_batch, submit_batch
from llmclient.batches import anthropic_batch, openai_batch, run
from llmclient.cassettes import use_cassette
from llmclient.errors import ModelLimitError
from llmclient.types import Response

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "batches"
PROMPTS = [f"What is {i} + {i}? Answer with the number only." for i in range(100)]
FAST = RetryPolicy(initial_backoff=0, jitter=False)

# gpt-4o-mini, Batch API: $0.075 per 1M input tokens, $0.30 per 1M output tokens
# (https://platform.openai.com/docs/pricing, "Batch" prices; half of $0.15 / $0.60).
OPENAI_IN, OPENAI_OUT = Decimal("0.075") / 10**6, Decimal("0.30") / 10**6
# Claude Haiku 4.5, Message Batches: $0.50 per MTok input, $2.50 per MTok output
# (https://platform.claude.com/docs/en/about-claude/pricing, "Batch processing"; half of $1 / $5).
ANTHROPIC_IN, ANTHROPIC_OUT = Decimal("0.50") / 10**6, Decimal("2.50") / 10**6

PROVIDERS = {
    "openai": {"model": "openai/gpt-4o-mini", "key_env": "OPENAI_API_KEY", "file_path": "/content",
               "usage": lambda i: (20 + i % 3, 1 + i % 2), "prices": (OPENAI_IN, OPENAI_OUT),
               # 2,099 input and 150 output tokens: 2099 x 0.075/1M + 150 x 0.30/1M
               "total": Decimal("0.000157425") + Decimal("0.000045")},
    "anthropic": {"model": "anthropic/claude-haiku-4-5", "key_env": "ANTHROPIC_API_KEY", "file_path": "/results",
                  "usage": lambda i: (15 + i % 4, 2 + i % 3), "prices": (ANTHROPIC_IN, ANTHROPIC_OUT),
                  # 1,650 input and 299 output tokens: 1650 x 0.50/1M + 299 x 2.50/1M
                  "total": Decimal("0.000825") + Decimal("0.0007475")},
}


def pin_job_ids(monkeypatch: pytest.MonkeyPatch, root: Path) -> None:
    """Job ids job-0000000000000001, ...02, ... in a job directory of the test's own: the cassettes'
    OpenAI create requests name the job in their metadata (llmclient's own ids are random)."""
    numbers = itertools.count(1)
    monkeypatch.setattr(run, "new_job_id", lambda: f"job-{next(numbers):016x}")
    monkeypatch.setenv("LLMCLIENT_BATCH_DIR", str(root))


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY"):
        monkeypatch.delenv(name, raising=False)
    pin_job_ids(monkeypatch, tmp_path / "jobs")


def recorded_file(name: str) -> bytes:
    """The result file a cassette's last interaction answers (the whole file in the *_100 ones)."""
    interactions = yaml.safe_load((CASSETTES / name).read_text())["interactions"]
    return str(interactions[-1]["response"]["body"]["string"]).encode()


def recorded_usage(provider: str) -> list[tuple[int, int]]:
    """Per item, the (input, output) tokens the recorded result lines report, read as plain JSON."""
    found: dict[str, tuple[int, int]] = {}
    for line in recorded_file(f"{provider}_100.yaml").splitlines():
        row = json.loads(line)
        if provider == "openai":
            usage = row["response"]["body"]["usage"]
            found[row["custom_id"]] = (usage["prompt_tokens"], usage["completion_tokens"])
        else:
            usage = row["result"]["message"]["usage"]
            found[row["custom_id"]] = (usage["input_tokens"], usage["output_tokens"])
    return [found[f"item-{i:06d}"] for i in range(100)]


class Breaking(httpx.SyncByteStream):
    """A body that delivers `data` in small chunks, then fails with `failure`."""

    def __init__(self, data: bytes, failure: BaseException) -> None:
        self.data, self.failure = data, failure

    def __iter__(self) -> Iterator[bytes]:
        for start in range(0, len(self.data), 1000):
            yield self.data[start:start + 1000]
        raise self.failure


@contextmanager
def first_fetch_breaks(monkeypatch: pytest.MonkeyPatch, path_end: str, content: bytes, keep: int,
                       failure: BaseException) -> Iterator[list[str]]:
    """The first GET of a path ending in `path_end` gets `content` cut after `keep` bytes, then
    `failure`; every other request goes on (to the cassette). Yields the ranges asked of that path."""
    previous = transport.interceptor
    asked: list[str] = []

    def hook(request: httpx.Request, spec: Any) -> httpx.Response | None:
        if request.method == "GET" and request.url.path.endswith(path_end):
            asked.append(request.headers.get("range", "none"))
            if len(asked) == 1:
                return httpx.Response(200, stream=Breaking(content[:keep], failure), request=request)
        return previous(request, spec) if previous is not None else None

    monkeypatch.setattr(transport, "interceptor", hook)
    yield asked


# --- the done-when: 100 requests, in order, at batch prices -----------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_100_requests_come_back_in_order_at_batch_prices(provider: str) -> None:
    spec = PROVIDERS[provider]
    usage = [spec["usage"](i) for i in range(100)]  # type: ignore[operator]
    assert recorded_usage(provider) == usage  # the rule the expectations use is what the cassette holds
    with use_cassette(CASSETTES / f"{provider}_100.yaml", strict=True):
        result = run_batch(Client(spec["model"]), PROMPTS, max_tokens=10, poll_interval=0, progress=False)
    assert len(result) == 100 and result.ok
    assert [response.text for response in result.responses] == [str(2 * i) for i in range(100)]
    price_in, price_out = spec["prices"]  # type: ignore[misc]
    for i, response in enumerate(result.responses):
        assert response.usage is not None and (response.usage.input_tokens, response.usage.output_tokens) == usage[i]
        assert response.cost is not None and response.cost.prices is not None
        assert response.cost.prices.service_tier == "batch"
        assert response.cost.total == usage[i][0] * price_in + usage[i][1] * price_out
    assert (result.usage.input_tokens, result.usage.output_tokens) == tuple(map(sum, zip(*usage)))
    assert result.cost is not None and result.cost.total == spec["total"]
    assert result.job_id.startswith("job-")


def test_openai_batch_polls_through_its_states_and_shows_them(capsys: pytest.CaptureFixture[str]) -> None:
    with use_cassette(CASSETTES / "openai_100.yaml", strict=True) as cassette:
        result = run_batch(Client("openai/gpt-4o-mini"), PROMPTS, max_tokens=10, poll_interval=0, progress=True)
    assert result.ok
    gets = [r.uri for r in cassette.sent if r.method == "GET"]
    assert len(gets) == 5 and all("/batches/batch_" in uri for uri in gets[:4]) and gets[4].endswith("/content")
    shown = capsys.readouterr().err
    for state in ("validating", "in_progress succeeded=37 errored=0 processing=63", "finalizing", "completed"):
        assert state in shown
    assert "100/100" in shown


def test_what_was_sent_is_the_providers_batch_format() -> None:
    with use_cassette(CASSETTES / "anthropic_100.yaml", strict=True) as cassette:
        run_batch(Client("anthropic/claude-haiku-4-5"), PROMPTS, max_tokens=10, poll_interval=0, progress=False)
    create = cassette.sent[0]
    body = json.loads(create.body)
    assert create.method == "POST" and create.uri == "https://api.anthropic.com/v1/messages/batches"
    assert create.headers["anthropic-version"] == "2023-06-01"
    assert body["requests"][7] == {"custom_id": "item-000007", "params": {
        "model": "claude-haiku-4-5", "max_tokens": 10,
        "messages": [{"role": "user", "content": [{"type": "text", "text": PROMPTS[7]}]}]}}  # no "stream"
    results = cassette.sent[-1]
    assert results.uri.endswith("/results") and results.headers["x-api-key"] == "REDACTED"


# --- the done-when: an interrupted results fetch resumes ----------------------------------------------

def _cut(content: bytes) -> tuple[int, int]:
    """(bytes of the first 40 whole lines, a cut 25 bytes into the 41st)."""
    whole = sum(len(line) + 1 for line in content.split(b"\n")[:40])
    return whole, whole + 25


@pytest.mark.parametrize("provider", PROVIDERS)
def test_a_broken_download_resumes_with_a_range_request(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = PROVIDERS[provider]
    content = recorded_file(f"{provider}_100.yaml")
    whole, cut = _cut(content)
    failure = httpx.RemoteProtocolError("peer closed connection without sending complete message body")
    with first_fetch_breaks(monkeypatch, spec["file_path"], content, cut, failure) as asked, \
            use_cassette(CASSETTES / f"{provider}_100_resume.yaml", strict=True) as cassette:
        result = run_batch(Client(spec["model"], retry=FAST), PROMPTS, max_tokens=10, poll_interval=0, progress=False)
    assert asked == ["none", f"bytes={whole}-"]  # the retry asks for the rest only
    assert cassette.sent[-1].headers["range"] == f"bytes={whole}-"
    assert [response.text for response in result.responses] == [str(2 * i) for i in range(100)]
    assert result.cost is not None and result.cost.total == spec["total"]


@pytest.mark.parametrize("provider", PROVIDERS)
def test_an_interrupted_fetch_is_picked_up_by_its_job_id(provider: str, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = PROVIDERS[provider]
    content = recorded_file(f"{provider}_100.yaml")
    whole, cut = _cut(content)
    with first_fetch_breaks(monkeypatch, spec["file_path"], content, cut, KeyboardInterrupt()) as asked, \
            use_cassette(CASSETTES / f"{provider}_100_resume.yaml", strict=True) as cassette:
        job = submit_batch(Client(spec["model"]), PROMPTS, max_tokens=10)
        with pytest.raises(KeyboardInterrupt):
            job.results(poll_interval=0, progress=False)
        on_disk = next(job.path.glob("part-0-*.jsonl")).read_bytes()
        assert on_disk == content[:whole]  # whole lines only, as they arrived
        assert job.status(refresh=False).ended  # known: not asked again
        before = len(cassette.sent)
        result = batch_results(job.job_id, poll_interval=0, progress=False)
    assert asked == ["none", f"bytes={whole}-"]
    assert [(r.method, r.headers.get("range")) for r in cassette.sent[before:]] == [("GET", f"bytes={whole}-")]
    assert [response.text for response in result.responses] == [str(2 * i) for i in range(100)]
    assert next(job.path.glob("part-0-*.jsonl")).read_bytes() == content


def test_a_server_that_ignores_the_range_is_read_from_where_it_stopped(monkeypatch: pytest.MonkeyPatch) -> None:
    content = recorded_file("openai_100.yaml")
    whole, cut = _cut(content)
    previous = transport.interceptor
    answers: list[str] = []

    def hook(request: httpx.Request, spec: Any) -> httpx.Response | None:
        if request.url.path.endswith("/content"):
            answers.append(request.headers.get("range", "none"))
            if len(answers) == 1:
                return httpx.Response(200, stream=Breaking(content[:cut], httpx.ReadError("reset")), request=request)
            return httpx.Response(200, content=content, request=request)  # the whole file again, not a 206
        return previous(request, spec) if previous is not None else None

    monkeypatch.setattr(transport, "interceptor", hook)
    with use_cassette(CASSETTES / "openai_100_resume.yaml") as cassette:
        result = run_batch(Client("openai/gpt-4o-mini", retry=FAST), PROMPTS, max_tokens=10, poll_interval=0,
                           progress=False)
    assert answers == ["none", f"bytes={whole}-"]
    assert [response.text for response in result.responses] == [str(2 * i) for i in range(100)]
    assert not any(r.uri.endswith("/content") for r in cassette.sent)
    assert (BatchJob.open(result.job_id).path / "part-0-output.jsonl").read_bytes() == content  # no line twice


# --- the done-when: one failing item does not fail the others ----------------------------------------

def test_openai_one_failing_item_is_typed_at_its_index() -> None:
    items: list[Any] = [PROMPTS[0], PROMPTS[1], {"prompt": PROMPTS[2], "logprobs": True, "top_logprobs": 30},
                        {"prompt": PROMPTS[3], "max_tokens": 1_000_000}, PROMPTS[4]]
    with use_cassette(CASSETTES / "openai_errors.yaml", strict=True) as cassette:
        result = run_batch(Client("openai/gpt-4o-mini"), items, max_tokens=10, poll_interval=0, progress=False)
    assert [item.text if isinstance(item, Response) else type(item) for item in result] == [
        "0", "2", BadRequestError, ModelLimitError, "8"]
    error = result.errors[2]
    assert error.status_code == 400 and error.error_type == "invalid_request_error"
    assert "top_logprobs" in error.message
    assert "output limit of 16,384 tokens" in result.errors[3].message
    uploaded = cassette.sent[0].body
    assert b'"custom_id":"item-000003"' not in uploaded and b'"custom_id":"item-000004"' in uploaded  # 3 never sent
    with pytest.raises(BadRequestError):
        result.responses  # noqa: B018 - all or the first error
    assert sorted(result.answered) == [0, 1, 4]
    assert result.cost is not None and result.cost.total == sum(
        (20 + i % 3) * OPENAI_IN + (1 + i % 2) * OPENAI_OUT for i in (0, 1, 4))


def test_anthropic_errored_and_expired_items_are_typed_at_their_index() -> None:
    items: list[Any] = [PROMPTS[0], {"prompt": PROMPTS[1], "top_k": -1}, *PROMPTS[2:5]]
    with use_cassette(CASSETTES / "anthropic_errors.yaml", strict=True):
        result = run_batch(Client("anthropic/claude-haiku-4-5"), items, max_tokens=10, poll_interval=0, progress=False)
    assert isinstance(result[1], BadRequestError) and result[1].error_type == "invalid_request_error"
    assert "top_k" in result[1].message
    assert isinstance(result[2], BatchError) and result[2].reason == "expired"
    assert result[2].batch_id is not None and result[2].batch_id.startswith("msgbatch_")
    assert [result[i].text for i in (0, 3, 4)] == ["0", "6", "8"]  # type: ignore[union-attr]


def test_an_expired_openai_batch_types_the_requests_it_never_ran() -> None:
    with use_cassette(CASSETTES / "openai_expired.yaml", strict=True):
        result = run_batch(Client("openai/gpt-4o-mini"), PROMPTS[:4], max_tokens=10, poll_interval=0, progress=False)
    assert [r.text for r in result.answered.values()] == ["0", "2"]
    for index in (2, 3):
        error = result.errors[index]
        assert isinstance(error, BatchError) and error.reason == "expired" and error.error_type == "batch_expired"
        assert error.batch_id is not None and error.batch_id in str(error)


def test_a_failed_openai_batch_is_a_typed_error_naming_it() -> None:
    with use_cassette(CASSETTES / "openai_failed.yaml", strict=True):
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS[:2], max_tokens=10)
        result = job.results(poll_interval=0, progress=False)
        status = job.status(refresh=False)
    assert status.ended and status.parts[0].status == "failed"
    for error in result.errors.values():
        assert isinstance(error, BatchError) and error.reason == "failed"
        assert status.parts[0].batch_id in error.message and "token_limit_exceeded" in error.message
    assert len(result.errors) == 2 and result.cost is None


# --- the done-when: over the size limit, split or refused with the limit named --------------------------

def test_openai_job_over_the_request_limit_is_split(monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    monkeypatch.setattr(openai_batch, "MAX_REQUESTS", 2)
    with caplog.at_level("INFO", logger="llmclient"), use_cassette(CASSETTES / "openai_split.yaml", strict=True) as cassette:
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS[:5], max_tokens=10)
        result = job.results(poll_interval=0, progress=False)
    assert [r.text for r in result.responses] == ["0", "2", "4", "6", "8"]
    status = batch_status(job.job_id)
    assert [part.requests for part in status.parts] == [2, 2, 1]
    assert len({part.batch_id for part in status.parts}) == 3
    assert status.split is not None and "at most 2 requests per batch" in status.split
    assert "split into 3 provider batches" in caplog.text
    assert sum(r.uri.endswith("/files") for r in cassette.sent) == 3


def test_anthropic_job_over_the_byte_limit_is_split_and_an_item_over_it_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(anthropic_batch, "MAX_BYTES", 450)  # what cassettes/batches/anthropic_split.yaml was cut at
    long_prompt = "Summarise this: " + "lighthouse " * 60
    with use_cassette(CASSETTES / "anthropic_split.yaml", strict=True) as cassette:
        result = run_batch(Client("anthropic/claude-haiku-4-5"), [*PROMPTS[:5], long_prompt], max_tokens=10,
                           poll_interval=0, progress=False)
    assert [r.text for r in result.answered.values()] == ["0", "2", "4", "6", "8"]
    refused = result.errors[5]
    assert isinstance(refused, InvalidRequestError) and "limit of 450 bytes per batch" in refused.message
    creates = [json.loads(r.body) for r in cassette.sent if r.method == "POST"]
    assert [[entry["custom_id"] for entry in body["requests"]] for body in creates] == [
        ["item-000000", "item-000001"], ["item-000002", "item-000003"], ["item-000004"]]
    assert all(len(r.body) <= 450 for r in cassette.sent if r.method == "POST")


# --- jobs, keys, waits ----------------------------------------------------------------------------

@pytest.mark.parametrize("provider", PROVIDERS)
def test_the_key_is_never_written_to_the_job_directory(provider: str, monkeypatch: pytest.MonkeyPatch,
                                                        tmp_path: Path) -> None:
    spec = PROVIDERS[provider]
    key = "sk-proj-BatchKeyQmWnEbRvTcYxUzIaOsPdLfKgJhMn" if provider == "openai" else "sk-ant-api03-BatchKeyQmWnEbRvTcYx"
    monkeypatch.setenv(spec["key_env"], key)  # type: ignore[arg-type]
    with use_cassette(CASSETTES / f"{provider}_100.yaml", strict=True) as cassette:
        result = run_batch(Client(spec["model"]), PROMPTS, max_tokens=10, poll_interval=0, progress=False, job_dir=tmp_path)
    files = [path for path in tmp_path.rglob("*") if path.is_file()]
    assert len(files) >= 2 and result.ok
    for path in files:
        assert key.encode() not in path.read_bytes() and key[-12:].encode() not in path.read_bytes(), path
    assert all(key not in json.dumps(r.headers) for r in cassette.sent)


def test_results_without_waiting_say_the_job_has_not_ended() -> None:
    with use_cassette(CASSETTES / "openai_100.yaml") as cassette:
        job = submit_batch(Client("openai/gpt-4o-mini"), PROMPTS, max_tokens=10)
        with pytest.raises(BatchError) as raised:
            job.results(wait=False, progress=False)
        assert raised.value.reason == "unfinished" and job.job_id in str(raised.value)
        status = batch_status(job.job_id)  # the next poll: in_progress, 37 done
        assert not status.ended and (status.succeeded, status.processing) == (37, 63)
        result = BatchJob.open(job.job_id).results(poll_interval=0, progress=False)
        assert cassette.all_played
    assert result.ok and len(result) == 100


def test_an_unknown_job_id_is_refused() -> None:
    from llmclient import ConfigurationError

    with pytest.raises(ConfigurationError, match="no batch job job-0000000000000000"):
        batch_results("job-0000000000000000")
    with pytest.raises(ConfigurationError, match="not a batch job id"):
        batch_status("../etc")


def test_a_results_url_on_another_host_is_not_fetched(monkeypatch: pytest.MonkeyPatch) -> None:
    previous = transport.interceptor

    def hook(request: httpx.Request, spec: Any) -> httpx.Response | None:
        if request.url.path.endswith("/results"):
            raise AssertionError("the results URL was fetched")
        if request.method == "GET":
            batch = json.loads(yaml.safe_load((CASSETTES / "anthropic_errors.yaml").read_text())
                               ["interactions"][1]["response"]["body"]["string"])
            batch["results_url"] = "https://attacker.example/v1/messages/batches/x/results"
            return httpx.Response(200, json=batch, request=request)
        return previous(request, spec) if previous is not None else None

    monkeypatch.setattr(transport, "interceptor", hook)
    with use_cassette(CASSETTES / "anthropic_errors.yaml"):
        from llmclient import APIError

        with pytest.raises(APIError, match="results URL on another host"):
            run_batch(Client("anthropic/claude-haiku-4-5"), [PROMPTS[0], {"prompt": PROMPTS[1], "top_k": -1},
                                                             *PROMPTS[2:5]], max_tokens=10, poll_interval=0, progress=False)
