"""Telemetry around calls: the context keywords and blocks, hooks, running totals, logging, and the
record each kind of call leaves (complete, stream, structured; retries, fallbacks, re-asks).
Expected values are the ones queued on the mock provider and hand-computed prices."""

from __future__ import annotations

import asyncio
import contextvars
import json
import logging
import subprocess
import sys
import threading
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

import llmclient
from llmclient import (
    Client,
    HookEvent,
    InvalidRequestError,
    RetryPolicy,
    add_hook,
    configure_telemetry,
    context,
    flush_telemetry,
    price_table,
    pricing,
    remove_hook,
    track,
)
from llmclient.errors import AuthenticationError
from llmclient.testing import MockProvider

FAST = RetryPolicy(initial_backoff=0.001, max_backoff=0.001, jitter=False)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Path]:
    configure_telemetry(directory=tmp_path, enabled=True)
    yield tmp_path
    configure_telemetry()  # back to the environment's store (the session's temp dir)


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


@pytest.fixture
def priced(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(price_table, "_user_rows", {})
    price_table._table.cache_clear()
    pricing.set_price("mock/priced", input="0.000003", output="0.000015")  # $3 / $15 per million
    yield
    price_table._table.cache_clear()


def records(directory: Path) -> list[dict[str, Any]]:
    assert flush_telemetry(10)
    return [json.loads(line) for path in sorted(directory.glob("*/telemetry*.jsonl")) for line in path.read_text().splitlines()]


# --- context -------------------------------------------------------------------------------------

def test_context_keywords_label_the_record_and_never_reach_the_provider(store: Path, mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=2)
    Client("mock/m").complete("Capital?", agent="geo", operation="capital", session="s-1", user="u-9")
    sent = mock.requests[0]
    assert not {"agent", "operation", "session", "user"} & set(sent)
    [record] = records(store)
    assert (record["agent_name"], record["operation"], record["session_id"], record["user_id"]) == ("geo", "capital", "s-1", "u-9")


def test_a_block_labels_every_call_inside_and_the_call_keywords_win(store: Path, mock: MockProvider) -> None:
    mock.reply("a").reply("b").reply("c")
    client = Client("mock/m")
    with context(agent="outer", session="s"):
        client.complete("1")
        with context(agent="inner", tags={"team": "search"}):
            client.complete("2", operation="op")
    client.complete("3")
    first, second, third = records(store)
    assert (first["agent_name"], first["session_id"], first["operation"]) == ("outer", "s", None)
    assert (second["agent_name"], second["session_id"], second["operation"]) == ("inner", "s", "op")
    assert second["metadata"]["tags"] == {"team": "search"}
    assert (third["agent_name"], third["session_id"]) == (None, None)


async def test_tasks_started_in_a_block_inherit_its_context(store: Path, mock: MockProvider) -> None:
    mock.reply("a").reply("b")
    client = Client("mock/m")
    with context(agent="batch"):
        await asyncio.gather(client.acomplete("1"), client.acomplete("2"))
    assert [r["agent_name"] for r in records(store)] == ["batch", "batch"]
    assert {r["mode"] for r in records(store)} == {"async"}


@pytest.mark.parametrize("bad", ["", "   ", 7, "x" * 257])
def test_a_bad_context_value_is_refused_with_its_name_before_anything_is_sent(bad: Any) -> None:
    with pytest.raises(InvalidRequestError, match="agent= must be a non-empty string"):
        with context(agent=bad):
            pass
    with MockProvider(allow_unused=True) as mock:
        mock.reply("unused")
        with pytest.raises(InvalidRequestError, match="session= must be"):
            Client("mock/m").complete("hi", session=bad)
        assert mock.pending == 1 and mock.requests == []


# --- the records of each kind of call -------------------------------------------------------------

def test_a_priced_call_records_exact_tokens_and_cost(store: Path, mock: MockProvider, priced: None) -> None:
    mock.reply("Paris.", input_tokens=1200, output_tokens=345)
    response = Client("mock/priced").complete("Capital?")
    [record] = records(store)
    expected = Decimal(1200) * Decimal("0.000003") + Decimal(345) * Decimal("0.000015")  # 0.008775
    assert expected == Decimal("0.008775") == response.cost.total  # type: ignore[union-attr]
    line = next(store.glob("*/telemetry.jsonl")).read_text()
    assert '"cost_usd":0.008775,' in line  # the exact digits, as a JSON number
    assert record["tokens"] == {"input": 1200, "output": 345, "total": 1545, "cache_read": 0, "cache_write": 0, "reasoning": 0}
    assert (record["cost_source"], record["success"], record["outcome"], record["finish_reason"]) == ("price-table", True, "ok", "stop")
    assert record["prompt_hash"].startswith("sha256:") and len(record["prompt_hash"]) == 71
    assert record["kind"] == "complete" and record["model"] == "mock/priced" and record["provider"] == "mock"


def test_an_unknown_price_is_null_never_zero(store: Path, mock: MockProvider) -> None:
    mock.reply("x", input_tokens=5, output_tokens=5)
    with track() as totals:
        Client("mock/unpriced-model").complete("hi")
    [record] = records(store)
    assert record["cost_usd"] is None and record["cost_source"] is None
    assert totals.cost == 0 and totals.unpriced_calls == 1 and totals.calls == 1


def test_retries_are_part_of_their_call(store: Path, mock: MockProvider) -> None:
    mock.fail(503).fail(429, retry_after=0.002).reply("ok", input_tokens=4, output_tokens=1)
    Client("mock/m", retry=FAST).complete("hi")
    [record] = records(store)
    assert [(r["error"], r["status_code"]) for r in record["retries"]] == [("ServerError", 503), ("RateLimitError", 429)]
    assert record["retries"][1]["waited"] == 0.002 and record["attempts"] == 3 and record["success"] is True


def test_a_failed_call_records_its_error(store: Path, mock: MockProvider) -> None:
    mock.fail(401)
    with pytest.raises(AuthenticationError):
        Client("mock/m").complete("hi", operation="login")
    [record] = records(store)
    assert (record["success"], record["outcome"], record["tokens"], record["cost_usd"]) == (False, "error", None, None)
    assert record["metadata"]["error"]["type"] == "AuthenticationError"
    assert record["metadata"]["error"]["status_code"] == 401
    assert record["operation"] == "login" and record["response_hash"] is None


def test_a_stream_records_its_time_to_first_token_and_usage(store: Path, mock: MockProvider) -> None:
    mock.reply_stream(["Hel", "lo"], input_tokens=7, output_tokens=2)
    stream = Client("mock/m").stream("hi", agent="chat")
    assert [e.text for e in stream] == ["Hel", "lo"]
    [record] = records(store)
    assert record["kind"] == "stream" and record["agent_name"] == "chat"
    assert record["tokens"]["input"] == 7 and record["tokens"]["output"] == 2
    assert 0 <= record["ttft_ms"] <= record["duration_ms"]


def test_a_stream_closed_early_is_recorded_as_abandoned(store: Path, mock: MockProvider) -> None:
    mock.reply_stream(["a", "b", "c"])
    stream = Client("mock/m").stream("hi")
    next(iter(stream))
    stream.close()
    [record] = records(store)
    assert (record["outcome"], record["success"]) == ("abandoned", False)
    assert "closed the stream" in record["metadata"]["error"]["message"]


def test_a_stream_never_iterated_sends_nothing_and_records_nothing(store: Path, mock: MockProvider) -> None:
    Client("mock/m").stream("hi")
    assert records(store) == [] and mock.requests == []


class City(BaseModel):
    name: str


def test_a_structured_call_with_a_reask_records_usage_over_both_answers(store: Path, mock: MockProvider) -> None:
    mock.reply("not json", input_tokens=10, output_tokens=3).reply('{"name": "Paris"}', input_tokens=20, output_tokens=4)
    result = Client("mock/m").structured_result("City?", schema=City, strategy="prompted")
    assert result.value == City(name="Paris")
    [record] = records(store)
    assert record["kind"] == "structured" and record["success"] is True
    assert (record["reasks"], record["attempts"]) == (1, 2)
    assert record["tokens"]["input"] == 30 and record["tokens"]["output"] == 7  # both answers were billed


def test_a_fallback_answer_names_the_model_that_answered(store: Path, mock: MockProvider, tmp_path: Path,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.config import reset_config

    config = tmp_path / "llmclient.toml"
    config.write_text('[profiles.main]\nmodel = "mock/first"\nfallbacks = ["mock/second"]\nretry = { max_attempts = 1 }\n')
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(config))
    reset_config()
    mock.fail(503).reply("from the fallback")
    seen: list[HookEvent] = []
    client = Client("main")
    client.add_hook("on_retry", seen.append)
    assert client.complete("hi").text == "from the fallback"
    [record] = [r for r in records(store) if r["kind"] == "complete"]
    assert (record["model"], record["requested_model"], record["profile"]) == ("mock/second", "mock/first", "main")
    assert [(e.model, e.attempt, e.retry.error if e.retry else None) for e in seen] == [("mock/first", None, "ServerError")]


# --- hooks ----------------------------------------------------------------------------------------

def test_hooks_see_request_response_retry_and_error(mock: MockProvider) -> None:
    mock.fail(500).reply("ok").fail(400)
    events: list[tuple[str, Any]] = []
    client = Client("mock/m", retry=FAST)
    client.add_hook("on_request", lambda e: events.append((e.name, e.request.messages[-1].text if e.request else None)))
    client.add_hook("on_retry", lambda e: events.append((e.name, (e.attempt, e.retry.status_code if e.retry else None))))
    client.add_hook("on_response", lambda e: events.append((e.name, e.response.text if e.response else None)))
    client.add_hook("on_error", lambda e: events.append((e.name, type(e.error).__name__)))
    client.complete("first")
    with pytest.raises(llmclient.BadRequestError):
        client.complete("second")
    assert events == [("on_request", "first"), ("on_retry", (1, 500)), ("on_response", "ok"),
                      ("on_request", "second"), ("on_error", "BadRequestError")]


def test_global_hooks_run_before_the_clients_and_can_be_removed(mock: MockProvider) -> None:
    order: list[str] = []

    def first(event: HookEvent) -> None:
        order.append("global")

    add_hook("on_response", first)
    try:
        mock.reply("a").reply("b")
        client = Client("mock/m")
        client.add_hook("on_response", lambda e: order.append("client"))
        client.complete("1")
        remove_hook("on_response", first)
        client.complete("2")
    finally:
        remove_hook("on_response", first)
    assert order == ["global", "client", "client"]


def test_a_hook_that_raises_is_logged_and_the_call_goes_on(mock: MockProvider, caplog: pytest.LogCaptureFixture) -> None:
    def broken(event: HookEvent) -> None:
        raise ValueError("bug in the hook")

    mock.reply("fine")
    client = Client("mock/m")
    client.add_hook("on_response", broken)
    with caplog.at_level(logging.ERROR, logger="llmclient"):
        assert client.complete("hi").text == "fine"
    assert "on_response hook" in caplog.text and "bug in the hook" in caplog.text


async def test_async_hooks_are_awaited_in_async_calls_and_run_in_sync_ones(mock: MockProvider) -> None:
    done: list[str] = []

    async def hook(event: HookEvent) -> None:
        await asyncio.sleep(0)
        done.append(event.name + ":" + event.kind)

    mock.reply("a").reply("b")
    client = Client("mock/m")
    client.add_hook("on_response", hook)
    await client.acomplete("1")
    assert done == ["on_response:complete"]  # awaited before the call returned
    await asyncio.to_thread(client.complete, "2")  # a sync call in a thread with no loop: run to completion
    assert done == ["on_response:complete", "on_response:complete"]


def test_an_unknown_hook_name_is_refused() -> None:
    with pytest.raises(llmclient.ConfigurationError, match="unknown hook 'on_answer'"):
        add_hook("on_answer", print)  # type: ignore[arg-type]


# --- running totals -------------------------------------------------------------------------------

def test_track_sums_usage_and_cost_in_decimal(mock: MockProvider, priced: None) -> None:
    mock.reply("a", input_tokens=1000, output_tokens=100).reply("b", input_tokens=2000, output_tokens=200).fail(401)
    client = Client("mock/priced")
    with track() as outer:
        client.complete("1")
        with track() as inner:
            client.complete("2")
            with pytest.raises(AuthenticationError):
                client.complete("3")
    # 1000*3e-6 + 100*15e-6 = 0.0045; 2000*3e-6 + 200*15e-6 = 0.009
    assert outer.cost == Decimal("0.0135") and inner.cost == Decimal("0.009")
    assert (outer.calls, outer.failed_calls, outer.input_tokens, outer.output_tokens) == (3, 1, 3000, 300)
    assert (inner.calls, inner.failed_calls, inner.total_tokens) == (2, 1, 2200)
    assert outer.by_model == {"mock/priced": Decimal("0.0135")}


def test_track_follows_tasks_and_copied_threads_but_all_threads_sees_every_thread(mock: MockProvider) -> None:
    for _ in range(4):
        mock.reply("x", input_tokens=1, output_tokens=1)
    client = Client("mock/m")
    with track() as scoped, track(all_threads=True) as everything:
        ctx = contextvars.copy_context()
        copied = threading.Thread(target=ctx.run, args=(client.complete, "copied"))
        plain = threading.Thread(target=client.complete, args=("plain",))
        copied.start(), plain.start()
        copied.join(), plain.join()

        async def two() -> None:
            await asyncio.gather(client.acomplete("t1"), client.acomplete("t2"))

        asyncio.run(two())  # asyncio.run copies the context too
    assert scoped.calls == 3  # the plain thread's call is outside this context
    assert everything.calls == 4


# --- logging --------------------------------------------------------------------------------------

def test_logging_one_debug_line_per_call_and_info_per_retry(mock: MockProvider, caplog: pytest.LogCaptureFixture,
                                                            priced: None) -> None:
    mock.fail(503).reply("ok", input_tokens=1000, output_tokens=100)
    with caplog.at_level(logging.DEBUG, logger="llmclient"):
        Client("mock/priced", retry=FAST).complete("hi")
    ours = [r for r in caplog.records if r.name.startswith("llmclient")]
    infos = [r.getMessage() for r in ours if r.levelno == logging.INFO]
    debugs = [r.getMessage() for r in ours if r.levelno == logging.DEBUG]
    assert infos == ["mock/priced: ServerError (503) on attempt 1; retrying in 0.00 s"]
    assert len(debugs) == 1 and "1000 in + 100 out tokens" in debugs[0] and "$0.0045" in debugs[0]


def test_nothing_is_printed_unless_the_application_configures_logging(tmp_path: Path) -> None:
    script = (
        "from llmclient import Client, RetryPolicy\n"
        "from llmclient.testing import MockProvider\n"
        "with MockProvider() as mock:\n"
        "    mock.fail(503).reply('ok')\n"
        "    Client('mock/no-price', retry=RetryPolicy(initial_backoff=0.001, jitter=False)).complete('hi')\n"
        "print('done')\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**__import__("os").environ, "LLM_TELEMETRY_DIR": str(tmp_path / "t")})
    assert run.returncode == 0, run.stderr
    assert run.stdout == "done\n" and run.stderr == ""  # the unknown price's WARNING included


def test_a_lone_surrogate_in_an_error_message_still_leaves_a_valid_record(store: Path, mock: MockProvider) -> None:
    mock.fail(400, message="bad byte \udc80 in the prompt")
    with pytest.raises(llmclient.BadRequestError):
        Client("mock/m").complete("hi")
    [record] = records(store)  # json.loads of the line: valid JSON, the surrogate escaped
    assert record["metadata"]["error"]["message"].startswith("bad byte \udc80")


def test_a_lone_surrogate_in_the_prompt_still_leaves_the_failed_calls_record(store: Path) -> None:
    bad = b"caf\xe9".decode("utf-8", errors="surrogateescape")  # text read with errors="surrogateescape"
    with MockProvider(), pytest.raises(InvalidRequestError, match="lone UTF-16 surrogate"):
        Client("mock/m").complete(bad)
    [record] = records(store)
    assert record["success"] is False and record["metadata"]["error"]["type"] == "InvalidRequestError"
    assert record["prompt_hash"] is not None and len(record["prompt_hash"]) == len("sha256:") + 64


def test_labels_and_ids_with_quotes_backslashes_and_any_script_are_recorded_as_given(
        store: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The record is written as bytes with each value escaped in place: JSON's specials survive."""
    from llmclient import ProviderSpec, register_provider, transport

    answer_id = 'resp "7"\\x\n\u2028é'  # quotes, a backslash, a newline, a line separator, an accent

    def reply(request: httpx.Request, spec: ProviderSpec) -> httpx.Response:
        return httpx.Response(200, request=request, json={
            "id": answer_id, "object": "chat.completion", "created": 1764892800, "model": "m",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}})

    monkeypatch.setattr(transport, "interceptor", reply)
    register_provider(ProviderSpec(name="labels", base_url="https://labels.invalid/v1", api_key_env="LABELS_KEY"))
    labels = {"agent": 'say "hi" \\ there', "operation": "résumé\nnext line", "session": "会话-1", "user": "\u2028x"}
    with context(tags={"team": 'a"b', "ключ": "значение"}):
        Client("labels/m", api_key="sk-labels").complete("hi", **labels)
    [record] = records(store)
    assert (record["agent_name"], record["operation"], record["session_id"], record["user_id"]) == tuple(labels.values())
    assert record["request_id"] == answer_id and record["model"] == "labels/m"
    assert record["metadata"]["tags"] == {"team": 'a"b', "ключ": "значение"}


def test_the_store_stays_where_it_was_when_the_program_changes_directory(tmp_path: Path, mock: MockProvider,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    configure_telemetry(directory="relative-store", enabled=True)
    try:
        mock.reply("a").reply("b")
        Client("mock/m").complete("1")
        (tmp_path / "elsewhere").mkdir()
        monkeypatch.chdir(tmp_path / "elsewhere")
        Client("mock/m").complete("2")
        assert len(records(tmp_path / "relative-store")) == 2
        assert not (tmp_path / "elsewhere" / "relative-store").exists()
    finally:
        configure_telemetry()


def test_a_stream_refused_before_it_is_sent_is_recorded_like_a_refused_complete(store: Path) -> None:
    # A bad argument: refused at stream(), before anything is sent.
    with MockProvider(allow_unused=True):
        with pytest.raises(InvalidRequestError):
            Client("mock/m").stream("hi", temperature="hot")
    [record] = records(store)
    assert (record["kind"], record["success"], record["outcome"]) == ("stream", False, "error")
    assert record["metadata"]["error"]["type"] == "InvalidRequestError" and record["prompt_hash"] is None
