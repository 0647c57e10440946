"""The parts under a batch: the job directory, errors kept as records, `BatchResult`'s totals, the
batch APIs' HTTP (redirects, retries, ranges, upload deadlines), the async entry point on a batch
API, a create request cut off (the batch looked for and adopted), and result lines that do not fit."""

from __future__ import annotations

import json
import os
import time
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from llmclient import APIConnectionError, APIError, BadRequestError, BatchError, Client, RetryPolicy, transport
from llmclient.batches import BatchResult, arun_batch, batch_results, batch_status, run_batch, submit_batch
from llmclient.batches.batch_http import BatchHTTP, body_deadline
from llmclient.batches.jobstore import JobStore, error_from_record, error_record
from llmclient.batches.prepare import custom_ids
from llmclient.cassettes import use_cassette
from llmclient.errors import MalformedResponseError, ModelRetiredError
from llmclient.types import Cost, Response, Usage
from tests.test_batch_apis import pin_job_ids

CASSETTES = Path(__file__).resolve().parent.parent / "cassettes" / "batches"
PROMPTS = [f"What is {i} + {i}? Answer with the number only." for i in range(100)]
FAST = RetryPolicy(initial_backoff=0, jitter=False)
KEY = "sk-proj-JobsTestKeyQmWnEbRvTcYxUzIaOsPdLfKg"


@pytest.fixture(autouse=True)
def _pinned(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    pin_job_ids(monkeypatch, tmp_path / "jobs")


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
    job, seen = _ended_openai_job(intercept, LINE, ranges=[httpx.Response(416, headers={"content-range": f"bytes */{len(LINE)}"})])
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


# --- a create request cut off: the batch may exist (saved as "submitting", looked for, adopted) ------

JOB_ID = "job-0000000000000001"  # the first id pin_job_ids gives


def output_line(i: int, text: str) -> bytes:
    """One line of an OpenAI batch output file (the shape of LINE) answering item i with `text`."""
    row = json.loads(LINE)
    row["custom_id"] = f"item-{i:06d}"
    row["response"]["body"]["choices"][0]["message"]["content"] = text
    return json.dumps(row, separators=(",", ":")).encode() + b"\n"


class FakeOpenAI:
    """OpenAI's Batch API shaped as its reference has it (File, Batch, the list page of GET
    /v1/batches: object, data, first_id, last_id, has_more); every batch is `completed` at once and
    batch n's output file is `outputs[n]`. `cut`, when set, is raised after the provider made the
    batch, in place of its answer (a process killed, a timeout)."""

    def __init__(self, outputs: list[bytes], cut: BaseException | None = None, status: int = 200) -> None:
        self.outputs, self.cut, self.status = outputs, cut, status
        self.batches: list[dict[str, Any]] = []  # newest first, as listed
        self.others: list[dict[str, Any]] = [{"id": "batch_someone_else", "object": "batch", "status": "completed",
                                              "input_file_id": "file-other", "created_at": 1772400000,
                                              "metadata": {"llmclient_job": "job-00000000000000ff", "llmclient_part": "0"},
                                              "request_counts": {"total": 1, "completed": 1, "failed": 0}}]
        self.uploads = 0
        self.on_create: list[dict[str, Any]] = []  # job.json as it was on disk when each create request came

    def __call__(self, request: httpx.Request) -> httpx.Response:
        path = request.url.path
        if request.method == "POST" and path == "/v1/files":
            self.uploads += 1
            return httpx.Response(200, json={"id": f"file-in-{self.uploads}", "object": "file", "purpose": "batch",
                                             "bytes": len(request.content), "created_at": 1772400000}, request=request)
        if request.method == "POST" and path == "/v1/batches":
            body = json.loads(request.content)
            self.on_create.append(json.loads((Path(os.environ["LLMCLIENT_BATCH_DIR"]) / body["metadata"]["llmclient_job"]
                                              / "job.json").read_text()))
            n = len(self.batches)
            batch = {"id": f"batch_{n}", "object": "batch", "endpoint": body["endpoint"], "errors": None,
                     "input_file_id": body["input_file_id"], "completion_window": "24h", "status": "completed",
                     "output_file_id": f"file-out-{n}", "error_file_id": None, "created_at": int(time.time()),
                     "request_counts": {"total": 1, "completed": 1, "failed": 0}, "metadata": body.get("metadata")}
            if self.status >= 500:
                return httpx.Response(self.status, json={"error": {"message": "oops", "type": "server_error"}},
                                      request=request)
            self.batches.insert(0, batch)
            if self.cut is not None:
                raise self.cut
            return httpx.Response(200, json=batch, request=request)
        if request.method == "GET" and path == "/v1/batches":
            assert request.url.params["limit"] == "100"
            data = [*self.batches, *self.others]
            return httpx.Response(200, json={"object": "list", "data": data, "first_id": data[0]["id"],
                                             "last_id": data[-1]["id"], "has_more": False}, request=request)
        if request.method == "GET" and path.startswith("/v1/batches/"):
            return httpx.Response(200, json=next(b for b in self.batches if path.endswith("/" + b["id"])), request=request)
        if request.method == "GET" and path.endswith("/content"):
            return httpx.Response(200, content=self.outputs[int(path.split("/")[-2].rsplit("-", 1)[1])], request=request)
        raise AssertionError(f"unexpected {request.method} {request.url}")


def posts(seen: list[httpx.Request], path: str) -> int:
    return sum(request.method == "POST" and request.url.path == path for request in seen)


def test_a_process_killed_during_the_create_request_finds_and_adopts_its_batch(intercept: Any) -> None:
    fake = FakeOpenAI([output_line(0, "0")], cut=KeyboardInterrupt())
    seen = intercept(fake)
    with pytest.raises(KeyboardInterrupt):
        submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:1], max_tokens=10)
    [on_disk] = fake.on_create  # saved before the create request went
    assert on_disk["parts"][0]["state"] == "submitting" and on_disk["parts"][0]["input_file_id"] == "file-in-1"
    assert fake.batches[0]["metadata"] == {"llmclient_job": JOB_ID, "llmclient_part": "0"}
    fake.cut = None
    result = batch_results(JOB_ID, poll_interval=0, progress=False, api_key=KEY)  # "another process"
    assert [r.text for r in result.responses] == ["0"]
    assert posts(seen, "/v1/batches") == 1 and posts(seen, "/v1/files") == 1  # nothing sent twice
    assert batch_status(JOB_ID, api_key=KEY).parts[0].batch_id == "batch_0"


def test_a_create_request_that_timed_out_is_found_in_the_same_run(intercept: Any) -> None:
    fake = FakeOpenAI([output_line(0, "0")], cut=httpx.ReadTimeout("timed out"))
    seen = intercept(fake)
    result = run_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:1], max_tokens=10,
                       poll_interval=0, progress=False)
    assert [r.text for r in result.responses] == ["0"] and posts(seen, "/v1/batches") == 1


@pytest.mark.parametrize("cut", [httpx.ReadTimeout("timed out"), None])
def test_a_batch_not_found_may_exist_and_its_error_says_where_to_look(intercept: Any, cut: Any) -> None:
    fake = FakeOpenAI([], cut=cut, status=200 if cut else 500)  # timed out, or answered 500 (not sent again)
    seen = intercept(fake)
    job = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY, retry=FAST), PROMPTS[:2], max_tokens=10)
    fake.batches.clear()  # the provider's list does not show it (yet)
    result = job.results(poll_interval=0, progress=False)
    assert posts(seen, "/v1/batches") == 1
    for error in result.errors.values():
        assert isinstance(error, BatchError) and error.reason == "unconfirmed"
        assert "may exist" in error.message and "never submitted" not in error.message
        assert "https://platform.openai.com/batches" in error.message and "GET /v1/batches" in error.message
        assert f"llmclient_job={JOB_ID}, llmclient_part=0" in error.message
        assert "no such batch was found among the 1 batches listed" in error.message
    status = job.status(refresh=False)
    assert status.ended and status.parts[0].state == "unconfirmed"


def test_a_create_answer_readable_only_as_far_as_its_id_is_polled(intercept: Any) -> None:
    fake = FakeOpenAI([output_line(0, "0")])

    def answer(request: httpx.Request) -> httpx.Response:
        given = fake(request)
        if request.method == "POST" and request.url.path == "/v1/batches":
            return httpx.Response(200, json={**given.json(), "status": "some_new_status"}, request=request)
        return given

    seen = intercept(answer)
    result = run_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:1], max_tokens=10, poll_interval=0,
                       max_wait=5, progress=False)
    assert [r.text for r in result.responses] == ["0"] and posts(seen, "/v1/batches") == 1


def anthropic_batch(batch_id: str, created: float, requests: int, status: str = "ended") -> dict[str, Any]:
    """A MessageBatch as the reference shapes it."""
    stamp = datetime.fromtimestamp(created, timezone.utc).isoformat(timespec="microseconds").replace("+00:00", "Z")
    return {"id": batch_id, "type": "message_batch", "processing_status": status,
            "request_counts": {"processing": 0, "succeeded": requests, "errored": 0, "canceled": 0, "expired": 0},
            "created_at": stamp, "ended_at": stamp, "expires_at": stamp, "archived_at": None, "cancel_initiated_at": None,
            "results_url": f"https://api.anthropic.com/v1/messages/batches/{batch_id}/results"}


@pytest.mark.parametrize("twins", [False, True])
def test_anthropic_adopts_the_one_batch_of_its_size_and_time_and_never_guesses(intercept: Any, twins: bool) -> None:
    now = time.time()
    listed = [anthropic_batch("msgbatch_ours", now + 2, 2), anthropic_batch("msgbatch_three", now + 1, 3),
              anthropic_batch("msgbatch_old", now - 3600, 2)]
    if twins:
        listed.insert(1, anthropic_batch("msgbatch_twin", now + 1, 2))
    message = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-haiku-4-5",
               "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn", "stop_sequence": None,
               "usage": {"input_tokens": 5, "output_tokens": 1, "service_tier": "batch"}}
    results = b"".join(json.dumps({"custom_id": f"item-00000{i}", "result": {"type": "succeeded", "message": message}}
                                  ).encode() + b"\n" for i in range(2))

    def answer(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            raise KeyboardInterrupt  # the process dies while the create request is out
        if request.url.path == "/v1/messages/batches":
            return httpx.Response(200, json={"data": listed, "has_more": False, "first_id": listed[0]["id"],
                                             "last_id": listed[-1]["id"]}, request=request)
        assert request.url.path == "/v1/messages/batches/msgbatch_ours/results", request.url
        return httpx.Response(200, content=results, request=request)

    seen = intercept(answer)
    with pytest.raises(KeyboardInterrupt):
        submit_batch(Client("anthropic/claude-haiku-4-5", api_key=KEY), PROMPTS[:2], max_tokens=10)
    result = batch_results(JOB_ID, poll_interval=0, progress=False, api_key=KEY)
    assert sum(request.method == "POST" for request in seen) == 1
    if not twins:
        assert [r.text for r in result.responses] == ["ok", "ok"]
        return
    for error in result.errors.values():  # two fit: neither taken
        assert isinstance(error, BatchError) and error.reason == "unconfirmed"
        assert "msgbatch_ours, msgbatch_twin" in error.message and "none was taken" in error.message
        assert "GET /v1/messages/batches" in error.message and "a message batch of 2 requests" in error.message


# --- result lines: duplicates, unknown ids, unreadable lines; each part reads its own files ------------

def test_two_different_results_for_one_item_are_a_malformed_response_naming_both(intercept: Any) -> None:
    intercept(FakeOpenAI([output_line(0, "0") + output_line(0, "zero") + output_line(1, "2") + output_line(1, "2")]))
    result = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:2], max_tokens=10).results(
        poll_interval=0, progress=False)
    error = result[0]
    assert isinstance(error, MalformedResponseError) and type(error) is MalformedResponseError
    assert "two different results" in error.message and "'0'" in error.message and "'zero'" in error.message
    assert isinstance(result[1], Response) and result[1].text == "2"  # the same line twice is one result


def test_unknown_and_unreadable_lines_are_logged_and_named_by_the_items_left_without_a_result(
        intercept: Any, caplog: pytest.LogCaptureFixture) -> None:
    intercept(FakeOpenAI([output_line(0, "0") + output_line(7, "14") + b"{not json\n"]))
    with caplog.at_level("WARNING", logger="llmclient"):
        result = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:2], max_tokens=10).results(
            poll_interval=0, progress=False)
    assert isinstance(result[0], Response)
    warned = [record.getMessage() for record in caplog.records if record.levelname == "WARNING"]
    assert any("'item-000007', no item of this batch" in said for said in warned)
    assert any("line 3 of the output file of batch batch_0 is not a JSON object" in said for said in warned)
    missing = result[1]
    assert isinstance(missing, MalformedResponseError) and "without a result for item item-000001" in missing.message
    assert "'item-000007'" in missing.message and "line 3" in missing.message


def test_a_line_in_another_batchs_file_does_not_answer_an_item(intercept: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.batches import openai_batch

    monkeypatch.setattr(openai_batch, "MAX_REQUESTS", 1)
    intercept(FakeOpenAI([output_line(0, "0") + output_line(1, "from batch 0"), b""]))  # batch 1's file is empty
    result = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:2], max_tokens=10).results(
        poll_interval=0, progress=False)
    assert isinstance(result[0], Response) and result[0].text == "0"
    assert isinstance(result[1], MalformedResponseError) and "batch batch_1 ended" in result[1].message


# --- uploads get a deadline sized from their body --------------------------------------------------

def test_an_upload_has_a_deadline_sized_from_its_body_not_the_chat_timeout(intercept: Any) -> None:
    left: list[float | None] = []

    def answer(request: httpx.Request) -> httpx.Response:
        left.append(transport.left(None))
        return httpx.Response(200, json={"id": "file-in"}, request=request)

    intercept(answer)
    http = BatchHTTP(Client("openai/gpt-4o-mini", api_key=KEY, timeout=5)._route)
    http.call("POST", "/files", "uploading", content=b"x" * 30_000_000, content_type="application/jsonl")
    http.call("GET", "/batches/b", "reading")
    assert left[0] is not None and left[0] > 400  # 120 s + 10 s per MB for 30 MB: 420 s
    assert left[1] is not None and left[1] <= 5  # a small call keeps the client's timeout
    assert body_deadline(5, 200_000_000) == 2120 and body_deadline(5, 10**10) == 3600 and body_deadline(5000, 10) == 5000


# --- downloads: a 416, a 206, a 200 must agree with what is on disk ---------------------------------

@pytest.mark.parametrize("answer", [httpx.Response(416), httpx.Response(416, headers={"content-range": "bytes */400"}),
                                    httpx.Response(206, content=LINE[8:]),
                                    httpx.Response(200, content=b'{"x":')])
def test_a_download_answer_that_does_not_fit_the_file_on_disk_is_refused(intercept: Any, answer: httpx.Response) -> None:
    job, _ = _ended_openai_job(intercept, LINE, ranges=[answer])
    job.path.joinpath("part-0-output.jsonl").write_bytes(b'{"x":1}\n')
    with pytest.raises(MalformedResponseError, match="asked for the bytes from 8|fewer than the 8 already received"):
        job.results(poll_interval=0, progress=False)
    assert job.path.joinpath("part-0-output.jsonl").read_bytes() == b'{"x":1}\n'
    assert not job.status(refresh=False).parts[0].fetched


# --- JSON mode: an item cannot be asked again inside a provider batch -------------------------------

def test_a_json_mode_item_whose_answer_is_not_json_is_its_error_and_is_still_billed(intercept: Any) -> None:
    from llmclient import SchemaValidationError

    fake = FakeOpenAI([output_line(0, '{"sum": 0}') + output_line(1, "The sum is 2.")])
    seen = intercept(fake)
    result = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:2], max_tokens=10,
                          response_format={"type": "json_object"}).results(poll_interval=0, progress=False)
    upload = next(request for request in seen if request.url.path == "/v1/files")
    assert upload.content.count(b'"response_format":{"type":"json_object"}') == 2  # sent in the provider's JSON mode
    assert isinstance(result[0], Response) and result[0].text == '{"sum": 0}'
    error = result[1]
    assert isinstance(error, SchemaValidationError) and "not JSON" in error.message
    assert "cannot be asked again" in error.message
    assert [attempt.response.text for attempt in error.attempts] == ["The sum is 2."]
    # Both answers were billed (LINE: 20 prompt + 1 completion tokens each): the totals count both.
    assert (result.usage.input_tokens, result.usage.output_tokens) == (40, 2)
    refused_cost = error.attempts[0].response.cost
    assert result.cost is not None and refused_cost is not None and result[0].cost is not None
    assert result.cost.total == result[0].cost.total + refused_cost.total > 0
    # Another process reading the job (no requests in memory) judges it the same way.
    again = batch_results(JOB_ID, poll_interval=0, progress=False, api_key=KEY)
    assert isinstance(again[1], SchemaValidationError) and isinstance(again[0], Response)


def test_an_item_not_in_json_mode_is_not_judged(intercept: Any) -> None:
    intercept(FakeOpenAI([output_line(0, "The sum is 0.")]))
    result = submit_batch(Client("openai/gpt-4o-mini", api_key=KEY), PROMPTS[:1], max_tokens=10).results(
        poll_interval=0, progress=False)
    assert isinstance(result[0], Response) and result[0].text == "The sum is 0."
