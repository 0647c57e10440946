"""The parts under a batch: the job directory, errors kept as records, `BatchResult`'s totals, the
batch APIs' HTTP (redirects, retries, ranges), and the async entry point on a batch API."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmclient import APIConnectionError, APIError, BadRequestError, BatchError, Client, RetryPolicy, transport
from llmclient.batches import BatchResult, arun_batch, submit_batch
from llmclient.batches.jobstore import JobStore, error_from_record, error_record
from llmclient.batches.prepare import custom_ids
from llmclient.cassettes import use_cassette
from llmclient.errors import MalformedResponseError, ModelRetiredError
from llmclient.types import Cost, Response, Usage

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "batches"
PROMPTS = [f"What is {i} + {i}? Answer with the number only." for i in range(100)]
FAST = RetryPolicy(initial_backoff=0, jitter=False)
KEY = "sk-proj-JobsTestKeyQmWnEbRvTcYxUzIaOsPdLfKg"


@pytest.fixture
def intercept(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Install `answer(request) -> Response | None` in front of everything; it records the requests."""
    seen: list[httpx.Request] = []

    def install(answer: Any) -> list[httpx.Request]:
        def hook(request: httpx.Request, spec: Any) -> httpx.Response | None:
            seen.append(request)
            return answer(request)  # type: ignore[no-any-return]

        monkeypatch.setattr(transport, "interceptor", hook)
        return seen

    return install


def response(text: str, cost: str | None) -> Response:
    priced = None if cost is None else Cost(input=Decimal(cost), cache_read=Decimal(0), cache_write=Decimal(0),
                                            output=Decimal(0), total=Decimal(cost), source="price-table")
    return Response(text=text, finish_reason="stop", usage=Usage(input_tokens=3, output_tokens=1), cost=priced,
                    model="m", provider="p", latency_ms=0, raw={})


def test_batch_result_totals_and_its_all_or_raise_responses() -> None:
    error = BadRequestError("refused", status_code=400)
    result = BatchResult("job-0123456789abcdef", (response("a", "0.5"), error, response("c", "0.25")))
    assert result[1] is error and len(result) == 3 and not result.ok
    with pytest.raises(BadRequestError):
        result.responses  # noqa: B018
    assert sorted(result.answered) == [0, 2] and list(result.errors) == [1]
    assert result.usage.input_tokens == 6 and result.cost is not None and result.cost.total == Decimal("0.75")
    unknown = BatchResult("job-0123456789abcdef", (response("a", "0.5"), response("b", None)))
    assert unknown.cost is None  # never a partial sum
    assert BatchResult("job-0123456789abcdef", (error,)).cost is None


def test_a_line_cut_by_a_crash_is_dropped_before_resuming(tmp_path: Path) -> None:
    store = JobStore("job-0123456789abcdef", tmp_path)
    store.path.mkdir()
    store.lines_file("part-0-output").write_bytes(b'{"a":1}\n{"b":2}\n{"c":')
    assert store.received("part-0-output") == len(b'{"a":1}\n{"b":2}\n')
    assert store.lines_file("part-0-output").read_bytes() == b'{"a":1}\n{"b":2}\n'
    assert [line for line in store.read_lines("part-0-output")] == [{"a": 1}, {"b": 2}]


def test_errors_come_back_from_their_records_with_their_type() -> None:
    batch = BatchError("gone", reason="expired", batch_id="batch_1", provider="openai", model="gpt-4o-mini")
    again = error_from_record(error_record(batch))
    assert isinstance(again, BatchError) and (again.reason, again.batch_id, str(again)) == ("expired", "batch_1", str(batch))
    retired = error_from_record(error_record(ModelRetiredError("retired", retired_on=date(2026, 1, 2))))
    assert isinstance(retired, ModelRetiredError) and retired.retired_on == date(2026, 1, 2)
    assert type(error_from_record({"type": "NoSuchError", "message": "m"})).__name__ == "LLMError"


def test_custom_ids_are_ordered_and_fit_both_providers() -> None:
    assert custom_ids(3) == ["item-000000", "item-000001", "item-000002"]
    assert custom_ids(2_000_000)[-1] == "item-1999999"


async def test_the_async_batch_on_a_batch_api() -> None:
    with use_cassette(CASSETTES / "openai_100.yaml", strict=True):
        result = await arun_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS, max_tokens=10, poll_interval=0,
                                  progress=False)
    assert [r.text for r in result.responses] == [str(2 * i) for i in range(100)]


def test_a_redirect_is_refused_and_the_key_goes_nowhere(intercept: Any) -> None:
    seen = intercept(lambda request: httpx.Response(307, headers={"location": "https://elsewhere.example/v1/files"},
                                                    request=request))
    job = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:2], max_tokens=10)
    errors = job.results(poll_interval=0, progress=False).errors
    assert len(seen) == 1 and len(errors) == 2  # the redirect is the items' error; nothing followed it
    assert type(errors[0]) is APIError and "redirects are not followed" in str(errors[0]) and KEY not in str(errors[0])
    assert seen[0].headers["authorization"] == f"Bearer {KEY}"


def test_a_refused_provider_batch_types_its_items(intercept: Any) -> None:
    intercept(lambda request: httpx.Response(400, json={"error": {"message": f"bad file (key {KEY})",
                                                                  "type": "invalid_request_error"}}, request=request))
    job = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:2], max_tokens=10)
    result = job.results(poll_interval=0, progress=False)
    assert all(isinstance(error, BadRequestError) for error in result.errors.values()) and len(result.errors) == 2
    assert "uploading the batch input file" in result.errors[0].message and KEY not in result.errors[0].message
    assert KEY.encode() not in (job.path / "job.json").read_bytes()


def test_a_post_whose_connection_broke_is_not_sent_again(intercept: Any) -> None:
    def broken(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("connection reset", request=request)

    seen = intercept(broken)
    job = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:2], max_tokens=10)
    assert len(seen) == 1  # the upload may have arrived: not repeated
    assert isinstance(job.results(poll_interval=0, progress=False)[0], APIConnectionError)


def test_a_status_read_is_retried(intercept: Any) -> None:
    with use_cassette(CASSETTES / "openai_failed.yaml"):
        job = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:2], max_tokens=10)
    failures = [1]

    def flaky(request: httpx.Request) -> httpx.Response | None:
        if failures and request.method == "GET":
            failures.pop()
            return httpx.Response(503, json={"error": {"message": "busy", "type": "server_error"}}, request=request)
        return None

    seen = intercept(flaky)
    with use_cassette(CASSETTES / "openai_failed.yaml"):
        result = job.results(poll_interval=0, progress=False)
    assert len(seen) == 2 and all(isinstance(error, BatchError) for error in result.errors.values())


def _ended_openai_job(intercept: Any, content: bytes, *, ranges: list[httpx.Response]) -> tuple[Any, list[httpx.Request]]:
    """A one-item OpenAI job whose batch has ended; its output file is answered by `ranges`, in turn."""
    upload = {"id": "file-in", "object": "file"}
    batch = {"id": "batch_x", "object": "batch", "status": "completed", "output_file_id": "file-out",
             "request_counts": {"total": 1, "completed": 1, "failed": 0}}
    answers = iter(ranges)

    def answer(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/files"):
            return httpx.Response(200, json=upload, request=request)
        if request.url.path.endswith("/content"):
            return next(answers)
        return httpx.Response(200, json=batch, request=request)

    seen = intercept(answer)
    return submit_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:1], max_tokens=10), seen


LINE = (b'{"custom_id":"item-000000","response":{"status_code":200,"body":{"id":"c","object":"chat.completion",'
        b'"created":1772400000,"model":"gpt-4o-mini-2024-07-18","choices":[{"index":0,"message":{"role":"assistant",'
        b'"content":"0"},"finish_reason":"stop"}],"usage":{"prompt_tokens":20,"completion_tokens":1,'
        b'"total_tokens":21}}},"error":null}\n')


def test_a_416_after_everything_arrived_ends_the_download(intercept: Any) -> None:
    job, seen = _ended_openai_job(intercept, LINE, ranges=[httpx.Response(416)])
    job.path.joinpath("part-0-output.jsonl").write_bytes(LINE)  # as if the crash came after the last byte
    result = job.results(poll_interval=0, progress=False)
    assert [r.text for r in result.responses] == ["0"]
    assert seen[-1].headers["range"] == f"bytes={len(LINE)}-"


def test_a_206_from_elsewhere_in_the_file_is_refused(intercept: Any) -> None:
    job, _ = _ended_openai_job(intercept, LINE, ranges=[httpx.Response(206, headers={"content-range": "bytes 0-9/400"},
                                                                       content=LINE[:10])])
    job.path.joinpath("part-0-output.jsonl").write_bytes(b'{"x":1}\n')
    with pytest.raises(MalformedResponseError, match="asked for the bytes from 8"):
        job.results(poll_interval=0, progress=False)


def test_the_committed_cassettes_are_what_the_script_writes() -> None:
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "scripts/author_batch_cassettes.py", "--check"], cwd=CASSETTES.parent.parent,
                          capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
