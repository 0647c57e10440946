"""A batch on a provider without a batch API (the mock provider): concurrent calls through
`Client.complete`/`acomplete`, so the configured rate limits and retries apply, with the same
result shape, in the caller's order."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator

import pytest

from llmclient import BadRequestError, BatchError, Client, RetryPolicy, ServerError
from llmclient.batches import arun_batch, batch_results, batch_status, run_batch, submit_batch
from llmclient.policies import ratelimit
from llmclient.policies.ratelimit import RateLimit, RateLimiter
from llmclient.testing import MockProvider
from llmclient.types import Response

FAST = RetryPolicy(initial_backoff=0, jitter=False)
PROMPTS = [f"prompt number {i}" for i in range(12)]


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as double:
        yield double


def answers_by_prompt(mock: MockProvider, replies: list[str]) -> dict[str, str]:
    """Which reply each prompt got: the mock answers requests in the order they reach it."""
    return {body["messages"][-1]["content"]: reply for body, reply in zip(mock.requests, replies, strict=True)}


def test_items_come_back_in_the_callers_order_under_concurrency(mock: MockProvider) -> None:
    replies = [f"answer {n}" for n in range(12)]
    for n, reply in enumerate(replies):
        mock.reply(reply, input_tokens=10 + n, output_tokens=2)
    result = run_batch(Client("mock/m"), PROMPTS, max_concurrency=4, progress=False)
    given = answers_by_prompt(mock, replies)
    assert [response.text for response in result.responses] == [given[prompt] for prompt in PROMPTS]
    assert result.usage.input_tokens == sum(10 + n for n in range(12))
    status = batch_status(result.job_id)
    assert status.kind == "concurrent" and status.ended and status.succeeded == 12


def test_one_failing_item_is_typed_at_its_index_and_the_others_answer(mock: MockProvider) -> None:
    for n in range(5):
        if n == 3:
            mock.fail(400, message="this one is refused")
        else:
            mock.reply(f"answer {n}")
    result = run_batch(Client("mock/m", retry=FAST), PROMPTS[:5], max_concurrency=2, progress=False)
    order = [body["messages"][-1]["content"] for body in mock.requests]
    failed = PROMPTS.index(order[3])  # the 4th request to arrive got the 400
    assert list(result.errors) == [failed]
    assert isinstance(result.errors[failed], BadRequestError) and result.errors[failed].status_code == 400
    assert len(result.answered) == 4


def test_retries_still_apply_to_each_item(mock: MockProvider) -> None:
    mock.fail(503).fail(503).reply("after two retries").reply("second")
    result = run_batch(Client("mock/m", retry=FAST), PROMPTS[:2], max_concurrency=1, progress=False)
    first = result[0]
    assert isinstance(first, Response) and first.text == "after two retries"
    assert [record.status_code for record in first.retries] == [503, 503]


def test_an_item_out_of_retries_is_its_typed_error(mock: MockProvider) -> None:
    mock.fail(503).reply("second")
    result = run_batch(Client("mock/m", retry=RetryPolicy(max_attempts=1)), PROMPTS[:2], max_concurrency=1,
                       progress=False)
    assert isinstance(result[0], ServerError) and isinstance(result[1], Response)


class Clock:
    def __init__(self) -> None:
        self.now, self.sleeps, self.lock = 0.0, [], threading.Lock()

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        with self.lock:
            self.sleeps.append(seconds)
            self.now += seconds


def test_the_configured_rate_limit_applies(mock: MockProvider) -> None:
    clock = Clock()
    ratelimit.configure("mock", RateLimiter(RateLimit(rpm=60), clock=clock, sleep=clock.sleep))
    try:
        for n in range(4):
            mock.reply(f"answer {n}")
        result = run_batch(Client("mock/m"), PROMPTS[:4], max_concurrency=1, progress=False)
    finally:
        ratelimit.configure("mock", None)
    assert result.ok
    assert clock.sleeps == [1.0, 1.0, 1.0]  # 60 a minute: one a second after the first


async def test_the_async_batch_keeps_the_order_too(mock: MockProvider) -> None:
    replies = [f"answer {n}" for n in range(8)]
    for reply in replies:
        mock.reply(reply)
    result = await arun_batch(Client("mock/m"), PROMPTS[:8], max_concurrency=3, progress=False)
    given = answers_by_prompt(mock, replies)
    assert [response.text for response in result.responses] == [given[prompt] for prompt in PROMPTS[:8]]


def test_items_take_the_batch_keywords_and_their_own(mock: MockProvider) -> None:
    mock.reply("a").reply("b").reply("c")
    items = ["plain", {"prompt": "own", "max_tokens": 7}, {"messages": [{"role": "user", "content": "as messages"}]}]
    run_batch(Client("mock/m"), items, max_tokens=3, temperature=0.5, max_concurrency=1, progress=False)
    sent = {body["messages"][-1]["content"]: body for body in mock.requests}
    assert sent["plain"]["max_tokens"] == 3 and sent["own"]["max_tokens"] == 7
    assert sent["as messages"]["temperature"] == 0.5


def test_a_bad_item_is_refused_alone(mock: MockProvider) -> None:
    mock.reply("fine")
    result = run_batch(Client("mock/m"), ["fine", {"max_tokens": 3}, 42], max_concurrency=1, progress=False)  # type: ignore[list-item]
    assert isinstance(result[0], Response)
    assert 'exactly one of "prompt" or "messages"' in str(result[1])
    assert "not a int" in str(result[2])
    assert len(mock.requests) == 1


def test_a_finished_run_is_served_by_its_job_id(mock: MockProvider) -> None:
    mock.reply("one", input_tokens=3).reply("two", input_tokens=4)
    job = submit_batch(Client("mock/m"), ["a", "b"], max_concurrency=1, progress=False)
    assert job.status(refresh=False).ended
    again = batch_results(job.job_id)
    assert [r.text for r in again.responses] == ["one", "two"]
    assert again.usage.input_tokens == 7
    lines = [json.loads(line) for line in (job.path / "results.jsonl").read_text().splitlines()]
    assert sorted(line["custom_id"] for line in lines) == ["item-000000", "item-000001"]


def test_an_interrupted_run_says_which_items_have_no_answer(mock: MockProvider) -> None:
    mock.reply("only one")
    job = submit_batch(Client("mock/m"), ["a"], max_concurrency=1, progress=False)
    manifest = json.loads((job.path / "job.json").read_text())
    manifest["custom_ids"].append("item-000001")  # as if a second item had been cut off
    manifest["parts"][0]["indices"].append(1)
    (job.path / "job.json").write_text(json.dumps(manifest))
    result = batch_results(job.job_id)
    assert isinstance(result[1], BatchError) and result[1].reason == "unfinished"


def test_progress_is_shown_when_asked(mock: MockProvider, capsys: pytest.CaptureFixture[str]) -> None:
    mock.reply("x").fail(400).reply("z")
    run_batch(Client("mock/m", retry=FAST), ["a", "b", "c"], max_concurrency=1, progress=True)
    shown = capsys.readouterr().err
    assert "3/3" in shown and "succeeded=2 errored=1 processing=0" in shown


def test_no_progress_when_turned_off(mock: MockProvider, capsys: pytest.CaptureFixture[str]) -> None:
    mock.reply("x")
    run_batch(Client("mock/m"), ["a"], progress=False)
    assert capsys.readouterr().err == ""


def test_arguments_are_checked(mock: MockProvider) -> None:
    from llmclient import InvalidRequestError

    with pytest.raises(InvalidRequestError, match="at least one request"):
        run_batch(Client("mock/m"), [], progress=False)
    with pytest.raises(InvalidRequestError, match="takes a list of requests"):
        run_batch(Client("mock/m"), "one prompt", progress=False)
    with pytest.raises(InvalidRequestError, match="max_concurrency"):
        run_batch(Client("mock/m"), ["a"], max_concurrency=0, progress=False)


def test_the_client_methods_run_and_submit_a_batch(mock: MockProvider) -> None:
    replies = [f"answer {n}" for n in range(3)]
    for reply in replies:
        mock.reply(reply)
    client = Client("mock/m")
    result = client.batch(PROMPTS[:3], max_concurrency=1, progress=False, max_tokens=7)
    assert [response.text for response in result.responses] == replies  # one at a time: the queue's order
    assert [body.get("max_tokens") or body.get("max_completion_tokens") for body in mock.requests] == [7, 7, 7]
    mock.reply("later")
    job = client.submit_batch(PROMPTS[:1], progress=False)
    assert [response.text for response in batch_results(job.job_id).responses] == ["later"]


async def test_the_async_client_method_runs_a_batch(mock: MockProvider) -> None:
    mock.reply("one").reply("two")
    result = await Client("mock/m").abatch(PROMPTS[:2], max_concurrency=1, progress=False)
    assert [response.text for response in result.responses] == ["one", "two"]


async def test_the_async_batch_does_its_file_work_off_the_event_loop(mock: MockProvider,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    import os

    from llmclient.batches import jobstore

    loop_thread = threading.get_ident()
    synced: list[bool] = []  # per fsync: was it on the event loop's thread?
    real_fsync = os.fsync

    def fsync(descriptor: int) -> None:
        synced.append(threading.get_ident() == loop_thread)
        real_fsync(descriptor)

    monkeypatch.setattr(jobstore.os, "fsync", fsync)
    mock.reply("one").reply("two")
    result = await arun_batch(Client("mock/m"), PROMPTS[:2], max_concurrency=2, progress=False)
    assert sorted(r.text for r in result.responses) == ["one", "two"]
    assert len(synced) >= 4 and not any(synced)  # job.json made, two lines, job.json at the end: none on the loop
