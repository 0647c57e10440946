"""The response cache (`llmclient.cache`): a repeated call sends no request, anything that changes
the answer misses, errors and refused answers are never kept, streams replay as streams, a hit
costs nothing in totals and telemetry, and a directory many threads and processes share stays a
valid cache. Requests are counted by the mock provider, which answers each from its own queue."""

from __future__ import annotations

import base64
import json
import os
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
import warnings
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from pydantic import BaseModel

from llmclient import (
    CacheWarning,
    Client,
    InvalidRequestError,
    ResponseCache,
    RetryPolicy,
    ServerError,
    Tool,
    configure_telemetry,
    flush_telemetry,
    track,
)
from llmclient import cache as cache_module
from llmclient import price_table, pricing
from llmclient.cache import request_key
from llmclient.errors import SchemaValidationError
from llmclient.config import reset_config
from llmclient.request import Request
from llmclient.testing import MockProvider
from llmclient.types import FilePart, Message, TextPart

ONCE = RetryPolicy(max_attempts=1)
ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as provider:
        yield provider


@pytest.fixture
def priced(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.setattr(price_table, "_user_rows", {})
    price_table._table.cache_clear()
    pricing.set_price("mock/priced", input="0.000003", output="0.000015")  # $3 / $15 per million
    yield
    price_table._table.cache_clear()


# --- hits and misses -----------------------------------------------------------------------------

def test_the_second_identical_call_sends_no_request(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=2)
    client = Client("mock/m", cache=tmp_path)
    first = client.complete("Capital of France?", max_tokens=20)
    second = client.complete("Capital of France?", max_tokens=20)
    assert len(mock.requests) == 1
    assert (first.cached, second.cached) == (False, True)
    assert second.text == "Paris." and second.finish_reason == "stop"
    assert (second.usage.input_tokens, second.usage.output_tokens) == (12, 2)  # the answer's own usage
    assert second.raw == first.raw


def test_a_new_client_on_the_same_directory_and_another_key_hits(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("Paris.")
    Client("mock/m", cache=tmp_path, api_key="sk-first-key-0000000000").complete("Capital?")
    again = Client("mock/m", cache=str(tmp_path), api_key="sk-other-key-1111111111").complete("Capital?")
    assert again.cached and len(mock.requests) == 1  # the key is not part of what a hit is keyed on
    stored = b"".join(path.read_bytes() for path in tmp_path.glob(cache_module.FILE_NAME + "*"))  # the WAL too
    assert b"Paris." in stored  # what is stored is readable here: the checks below can fail
    assert b"sk-first-key" not in stored and b"Capital?" not in stored  # no key, and the request only as a digest


@pytest.mark.parametrize("change", [
    {"max_tokens": 21}, {"temperature": 0}, {"top_p": 0.5}, {"stop": ["\n"]}, {"system": "Be brief."},
    {"tools": [Tool(name="lookup", parameters={"type": "object", "properties": {}})]},
    {"response_format": {"type": "json_object"}}, {"seed": 7}, {"extra_headers": {"x-beta": "1"}},
])
def test_a_different_parameter_misses(tmp_path: Path, mock: MockProvider, change: dict[str, Any]) -> None:
    mock.reply("{}").reply("{}")
    client = Client("mock/m", cache=tmp_path)
    client.complete("Capital of France?", max_tokens=20)
    options = {"max_tokens": 20, **change}
    assert not client.complete("Capital of France?", **options).cached
    assert len(mock.requests) == 2


def test_another_model_or_base_url_misses(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("a").reply("b").reply("c")
    Client("mock/m", cache=tmp_path).complete("Q")
    assert not Client("mock/other", cache=tmp_path).complete("Q").cached
    assert not Client("mock/m", cache=tmp_path, base_url="http://127.0.0.1:9/v1").complete("Q").cached
    assert len(mock.requests) == 3


def test_a_fallbacks_answer_is_kept_for_the_chain_not_for_a_lone_model(tmp_path: Path, mock: MockProvider,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text('[profiles.safe]\nmodel = "mock/primary"\nfallbacks = ["mock/backup"]\n'
                      'retry = { max_attempts = 1 }\n')
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(config))
    reset_config()
    try:
        mock.fail(503).reply_stream(["from ", "the backup"]).reply_stream(["from the primary"])
        with Client("safe", cache=tmp_path / "cache").stream("Q") as stream:
            assert "".join(event.text for event in stream) == "from the backup"
        assert stream.answered_by == "mock/backup"
        again = Client("safe", cache=tmp_path / "cache").stream("Q")
        assert "".join(event.text for event in again) == "from the backup" and again.response.cached
        # The primary alone is another target: the backup's answer is not its answer.
        alone = Client("mock/primary", cache=tmp_path / "cache").stream("Q")
        assert "".join(event.text for event in alone) == "from the primary" and not alone.response.cached
    finally:
        reset_config()
    assert len(mock.requests) == 3


def test_the_key_is_canonical_and_leaves_out_the_api_key_and_local_checks() -> None:
    one = Request.build("Q", max_tokens=5, top_p=0.5, seed=1, user="u")
    two = Request.build("Q", user="u", seed=1, top_p=0.5, max_tokens=5)  # the same call, keywords in another order
    assert request_key("complete", "mock/m", "http://x", one) == request_key("complete", "mock/m", "http://x", two)
    unchecked = one.model_copy(update={"check_context": False})
    assert request_key("complete", "mock/m", "http://x", one) == request_key("complete", "mock/m", "http://x", unchecked)
    assert request_key("complete", "mock/m", "http://x", one) != request_key("stream", "mock/m", "http://x", one)
    assert request_key("complete", "mock/m", "http://x", one) != request_key("complete", "mock/m", "http://y", one)


def test_a_file_is_keyed_on_its_bytes(tmp_path: Path, mock: MockProvider) -> None:
    note = tmp_path / "note.txt"
    note.write_text("the meeting is at noon")
    mock.reply("noon").reply("three")
    client = Client("mock/m", cache=tmp_path / "cache")
    client.complete("When?", files=[note])
    assert client.complete("When?", files=[note]).cached  # the same bytes again
    note.write_text("the meeting is at three")
    assert not client.complete("When?", files=[note]).cached  # edited since: another request
    assert len(mock.requests) == 2


def test_same_bytes_inline_or_on_disk_are_one_request(tmp_path: Path) -> None:
    (tmp_path / "a.txt").write_bytes(b"hello")
    inline = FilePart(media_type="text/plain", name="a.txt", data=base64.b64encode(b"hello").decode())
    on_disk = FilePart(media_type="text/plain", name="a.txt", path=str(tmp_path / "a.txt"), size=5)
    keys = [request_key("complete", "mock/m", "http://x", Request(messages=[Message(role="user", content=[part])]))
            for part in (inline, on_disk)]
    assert keys[0] == keys[1]
    digest = cache_module._file_digest(on_disk, on_disk.model_dump(mode="json"))
    assert digest["sha256"] == "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824"  # sha256(b"hello")
    assert "path" not in digest and "data" not in digest


def test_a_fifo_attached_by_hand_is_refused_not_read(tmp_path: Path, mock: MockProvider) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    part = FilePart(media_type="text/plain", name="pipe", path=str(fifo), size=5)
    request = Request(messages=[Message(role="user", content=[TextPart(text="Read this"), part])])
    outcome: list[BaseException] = []

    def call() -> None:
        try:
            Client("mock/m", cache=tmp_path / "cache").complete(request)
        except BaseException as error:  # noqa: BLE001 - what the call raised is the result
            outcome.append(error)

    worker = threading.Thread(target=call, daemon=True)
    worker.start()
    worker.join(10)
    assert not worker.is_alive(), "the cache key read from a FIFO and blocked the call"
    assert len(outcome) == 1 and isinstance(outcome[0], InvalidRequestError) and "FIFO" in str(outcome[0])
    assert mock.requests == []


def test_a_sampled_call_is_cached_only_when_asked(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("one").reply("two").reply("three")
    client = Client("mock/m", cache=tmp_path)
    client.complete("A poem", temperature=0.9)
    assert not client.complete("A poem", temperature=0.9).cached  # a sample: not kept unasked
    client.complete("A poem", temperature=0.9, cache=True)
    assert client.complete("A poem", temperature=0.9, cache=True).cached
    assert len(mock.requests) == 3


def test_a_cache_made_for_samples_keeps_them(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("one")
    client = Client("mock/m", cache=ResponseCache(tmp_path, sampled=True))
    client.complete("A poem", temperature=1.2)
    assert client.complete("A poem", temperature=1.2).cached and len(mock.requests) == 1


def test_cache_false_on_a_call_skips_it_and_a_call_can_bring_its_own(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("a").reply("b").reply("c")
    client = Client("mock/m", cache=tmp_path / "client")
    client.complete("Q")
    assert not client.complete("Q", cache=False).cached
    plain = Client("mock/m")
    plain.complete("Q", cache=tmp_path / "own")
    assert plain.complete("Q", cache=tmp_path / "own").cached
    assert len(mock.requests) == 3


def test_bad_cache_arguments_are_refused_before_any_request(tmp_path: Path, mock: MockProvider) -> None:
    with pytest.raises(InvalidRequestError, match="has none"):
        Client("mock/m").complete("Q", cache=True)
    with pytest.raises(InvalidRequestError, match="directory or a ResponseCache"):
        Client("mock/m", cache=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="ttl"):
        ResponseCache(tmp_path, ttl=0)
    with pytest.raises(InvalidRequestError, match="ttl"):
        ResponseCache(tmp_path, ttl="1h")  # type: ignore[arg-type]
    assert mock.requests == []


def test_an_entry_older_than_the_ttl_is_a_miss(tmp_path: Path, mock: MockProvider,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    mock.reply("old").reply("new")
    cache = ResponseCache(tmp_path, ttl=60)
    client = Client("mock/m", cache=cache)
    client.complete("Q")
    now = time.time()
    monkeypatch.setattr(cache_module.time, "time", lambda: now + 59)
    assert client.complete("Q").text == "old"
    monkeypatch.setattr(cache_module.time, "time", lambda: now + 61)
    assert client.complete("Q").text == "new"
    assert cache.purge() == 0 and len(cache) == 1  # the old one replaced by the new answer
    monkeypatch.setattr(cache_module.time, "time", lambda: now + 200)
    assert cache.purge() == 1 and len(cache) == 0


# --- what is never kept --------------------------------------------------------------------------

def test_an_error_is_never_cached(tmp_path: Path, mock: MockProvider) -> None:
    mock.fail(500).reply("recovered")
    client = Client("mock/m", cache=tmp_path, retry=ONCE)
    with pytest.raises(ServerError):
        client.complete("Q")
    assert not client.complete("Q").cached  # the error was not kept: this call went out
    assert client.complete("Q").cached
    assert len(mock.requests) == 2


def test_only_the_answer_a_validator_accepts_is_kept(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("not json").reply('{"city": "Paris"}')
    client = Client("mock/m", cache=tmp_path)
    first = client.complete("City as JSON", response_format={"type": "json_object"})
    assert json.loads(first.text) == {"city": "Paris"} and len(first.rejected) == 1
    assert len(ResponseCache(tmp_path)) == 1  # the refused answer was not stored


def test_a_content_filtered_answer_is_not_kept(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("", finish="content_filter").reply("an answer this time")
    client = Client("mock/m", cache=tmp_path)
    assert client.complete("Q").finish_reason == "content_filter"
    assert client.complete("Q").text == "an answer this time"  # the withheld answer was not kept
    assert len(mock.requests) == 2


def test_a_hit_refused_by_a_validator_and_asked_again_is_billed_for_the_new_answer(
        tmp_path: Path, mock: MockProvider, priced: None) -> None:
    mock.reply("short", input_tokens=100, output_tokens=10).reply("a longer answer", input_tokens=200, output_tokens=20)
    client = Client("mock/priced", cache=tmp_path)
    client.complete("Q")  # kept

    def long_enough(text: str) -> None:
        if len(text) < 10:
            raise ValueError("too short")

    with track() as totals:
        answer = client.complete("Q", validators=[long_enough])
    assert answer.text == "a longer answer" and answer.rejected[0].response.cached
    # Only the re-ask was billed: 200 x $3/M + 20 x $15/M = $0.0009.
    assert (totals.input_tokens, totals.output_tokens, totals.cost, totals.cache_hits) == (200, 20, Decimal("0.0009"), 0)


def test_structured_output_is_cached(tmp_path: Path, mock: MockProvider) -> None:
    class City(BaseModel):
        name: str

    mock.reply('{"name": "Paris"}')
    client = Client("mock/m", cache=tmp_path)
    assert client.structured("Capital?", schema=City, strategy="prompted").name == "Paris"
    assert client.structured("Capital?", schema=City, strategy="prompted").name == "Paris"
    assert len(mock.requests) == 1


# --- streams ---------------------------------------------------------------------------------------

def test_a_stream_is_kept_as_its_events_and_replayed_as_a_stream(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply_stream(["Pa", "ri", "s."], input_tokens=7, output_tokens=3)
    client = Client("mock/m", cache=tmp_path)
    first = client.stream("Capital?")
    first_texts = [event.text for event in first]
    second = client.stream("Capital?")
    assert [event.text for event in second] == first_texts == ["Pa", "ri", "s."]
    assert second.response.cached and not first.response.cached
    assert second.response.text == "Paris." and second.response.usage == first.response.usage
    assert second.response.cost is not None and second.response.cost.total == 0
    assert len(mock.requests) == 1


def _rewrite_stored(directory: Path, kind: str, **columns: Any) -> None:
    """Change the one stored entry of `kind` by hand, as an older or newer llmclient might have written it."""
    connection = sqlite3.connect(directory / cache_module.FILE_NAME)
    with connection:
        assignments = ", ".join(f"{name} = ?" for name in columns)
        changed = connection.execute(f"UPDATE responses SET {assignments} WHERE kind = ?", (*columns.values(), kind))
        assert changed.rowcount == 1
    connection.close()


@pytest.mark.parametrize("columns", [
    {"body": b'data: {"choices": [{"index": 0, "delta": {"content": "Pa"}}\n\n'},  # an event cut short
    {"body": b"data: [1, 2]\n\ndata: [DONE]\n\n"},  # events in a shape no codec reads
    {"meta": '{"content_type": "text/event-stream"}'},  # no model
    {"meta": "not json"},
], ids=["cut-event", "foreign-shape", "meta-without-model", "meta-not-json"])
def test_a_stored_stream_this_version_cannot_read_is_a_miss_and_is_replaced(
        tmp_path: Path, mock: MockProvider, columns: dict[str, Any]) -> None:
    mock.reply_stream(["Pa", "ri", "s."]).reply_stream(["Ro", "me."])
    client = Client("mock/m", cache=tmp_path)
    assert [e.text for e in client.stream("Capital?")] == ["Pa", "ri", "s."]
    _rewrite_stored(tmp_path, "stream", **columns)
    cache = client.cache
    assert cache is not None
    hits, misses = cache.hits, cache.misses
    fresh = client.stream("Capital?")
    assert [e.text for e in fresh] == ["Ro", "me."]  # asked again: no error in the caller's loop
    assert not fresh.response.cached and len(mock.requests) == 2
    assert (cache.hits - hits, cache.misses - misses) == (0, 1)
    again = client.stream("Capital?")
    assert [e.text for e in again] == ["Ro", "me."] and again.response.cached  # the fresh answer replaced it
    assert len(mock.requests) == 2


def test_a_stored_answer_this_version_cannot_read_is_counted_a_miss(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("Paris.").reply("Rome.")
    client = Client("mock/m", cache=tmp_path)
    client.complete("Capital?")
    _rewrite_stored(tmp_path, "complete", body=b'{"text": 3}')
    cache = client.cache
    assert cache is not None
    hits, misses = cache.hits, cache.misses
    assert client.complete("Capital?").text == "Rome."
    assert (cache.hits - hits, cache.misses - misses) == (0, 1)
    assert client.complete("Capital?").cached


def test_a_stream_and_a_call_are_kept_apart(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("call").reply("stream")
    client = Client("mock/m", cache=tmp_path)
    client.complete("Q")
    assert "".join(e.text for e in client.stream("Q")) == "stream"
    assert len(mock.requests) == 2


def test_a_stream_closed_early_or_failing_is_not_kept(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply_stream(["one ", "two ", "three"]).disconnect().reply_stream(["whole"])
    client = Client("mock/m", cache=tmp_path, retry=ONCE)
    with client.stream("Q") as stream:
        next(iter(stream))  # the caller leaves after the first event
    with pytest.raises(Exception):
        list(client.stream("Q"))
    assert [e.text for e in client.stream("Q")] == ["whole"]
    assert [e.text for e in client.stream("Q")] == ["whole"]  # the whole one was kept
    assert len(mock.requests) == 3


def test_a_json_mode_stream_that_is_not_json_is_not_kept(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply_stream(["no json here"]).reply_stream(['{"ok": true}'])
    client = Client("mock/m", cache=tmp_path)
    with pytest.raises(SchemaValidationError):
        list(client.stream("Q", response_format={"type": "json_object"}))
    assert "".join(e.text for e in client.stream("Q", response_format={"type": "json_object"})) == '{"ok": true}'
    assert len(mock.requests) == 2


def test_a_structured_stream_keeps_only_a_valid_answer(tmp_path: Path, mock: MockProvider) -> None:
    class City(BaseModel):
        name: str

    mock.reply_stream(['{"nom": "Paris"}']).reply_stream(['{"name": "Paris"}'])
    client = Client("mock/m", cache=tmp_path)
    with pytest.raises(SchemaValidationError):
        client.stream_structured("Q", schema=City, strategy="native").value
    assert client.stream_structured("Q", schema=City, strategy="native").value.name == "Paris"
    assert client.stream_structured("Q", schema=City, strategy="native").value.name == "Paris"
    assert len(mock.requests) == 2


async def test_async_calls_and_streams_hit(tmp_path: Path, mock: MockProvider) -> None:
    mock.reply("async answer").reply_stream(["a", "b"])
    client = Client("mock/m", cache=tmp_path)
    await client.acomplete("Q")
    assert (await client.acomplete("Q")).cached
    first = [event.text async for event in client.astream("S")]
    stream = client.astream("S")
    assert [event.text async for event in stream] == first == ["a", "b"]
    assert stream.response.cached
    assert len(mock.requests) == 2


# --- a hit costs nothing -------------------------------------------------------------------------

def test_a_hit_costs_nothing_in_the_running_totals(tmp_path: Path, mock: MockProvider, priced: None) -> None:
    mock.reply("Paris.", input_tokens=1000, output_tokens=100)
    client = Client("mock/priced", cache=tmp_path)
    with track() as totals:
        first = client.complete("Capital?")
        second = client.complete("Capital?")
    # 1000 x $3/M + 100 x $15/M = $0.0045, counted once.
    assert first.cost is not None and first.cost.total == Decimal("0.0045")
    assert second.cost is not None and (second.cost.total, second.cost.source) == (Decimal(0), "cache")
    assert (totals.calls, totals.cache_hits, totals.cost, totals.input_tokens, totals.unpriced_calls) == (
        2, 1, Decimal("0.0045"), 1000, 0)


def test_a_hit_is_recorded_as_one_in_telemetry(tmp_path: Path, mock: MockProvider, priced: None) -> None:
    configure_telemetry(directory=tmp_path / "telemetry", enabled=True)
    try:
        mock.reply("Paris.", input_tokens=1000, output_tokens=100)
        client = Client("mock/priced", cache=tmp_path / "cache")
        client.complete("Capital?")
        client.complete("Capital?")
        assert flush_telemetry(10)
        lines = [json.loads(line) for path in sorted((tmp_path / "telemetry").glob("*/telemetry*.jsonl"))
                 for line in path.read_text().splitlines()]
    finally:
        configure_telemetry()
    assert [(r["cache_hit"], r["cost_usd"], r["cost_source"]) for r in lines] == [
        (False, 0.0045, "price-table"), (True, 0, "cache")]
    assert lines[1]["tokens"] is None and lines[0]["tokens"]["total"] == 1100


# --- a directory that cannot be used ----------------------------------------------------------------

def test_a_directory_that_cannot_be_created_warns_once_and_calls_go_on(tmp_path: Path, mock: MockProvider) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("not a directory")
    mock.reply("one").reply("two")
    client = Client("mock/m", cache=blocker / "cache")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert client.complete("Q").text == "one"
        assert client.complete("Q").text == "two"  # uncached, and no second warning
    cache_warnings = [w for w in caught if issubclass(w.category, CacheWarning)]
    assert len(cache_warnings) == 1 and str(blocker / "cache") in str(cache_warnings[0].message)


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into a read-only directory anyway")
def test_a_read_only_directory_warns_once_and_calls_go_on(tmp_path: Path, mock: MockProvider) -> None:
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o555)
    mock.reply("one").reply("two")
    client = Client("mock/m", cache=locked)
    try:
        with pytest.warns(CacheWarning) as caught:
            assert [client.complete("Q").text for _ in range(2)] == ["one", "two"]
    finally:
        locked.chmod(0o755)
    assert len(caught) == 1


def _unwritable_directory() -> Path | None:
    """An existing directory nobody can write to, root included (sysfs, read-only); None if none."""
    for candidate in (Path("/sys/kernel"), Path("/sys")):
        try:
            (candidate / "llmclient-probe").open("wb").close()
        except OSError:
            if candidate.is_dir():
                return candidate
    return None


@pytest.mark.skipif(_unwritable_directory() is None, reason="no directory here that even root cannot write to")
def test_an_existing_directory_nobody_can_write_warns_once_and_calls_go_on(mock: MockProvider) -> None:
    directory = _unwritable_directory()
    assert directory is not None
    mock.reply("one").reply("two")
    client = Client("mock/m", cache=ResponseCache(directory))
    with pytest.warns(CacheWarning, match="calls go on") as caught:
        assert [client.complete("Q").text for _ in range(2)] == ["one", "two"]
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1
    assert not (directory / cache_module.FILE_NAME).exists()


def test_a_file_that_is_not_a_cache_warns_once_and_calls_go_on(tmp_path: Path, mock: MockProvider) -> None:
    (tmp_path / cache_module.FILE_NAME).write_bytes(b"this is no SQLite database, just some bytes" * 100)
    mock.reply("one").reply("two")
    client = Client("mock/m", cache=ResponseCache(tmp_path))
    with pytest.warns(CacheWarning, match="calls go on uncached") as caught:
        assert [client.complete("Q").text for _ in range(2)] == ["one", "two"]
    assert len([w for w in caught if issubclass(w.category, CacheWarning)]) == 1


# --- many threads and processes --------------------------------------------------------------------

_WORKER = textwrap.dedent('''
    import json, sys, threading
    import httpx
    from llmclient import Client, ResponseCache, transport
    import llmclient.testing  # registers the mock provider

    directory, tag = sys.argv[1], sys.argv[2]
    errors = []

    def answer(request, spec):  # the provider: answers each prompt with its own text, from any thread
        prompt = json.loads(request.content)["messages"][-1]["content"]
        body = {"id": "chatcmpl-1", "object": "chat.completion", "created": 1764892800, "model": "m",
                "choices": [{"index": 0, "message": {"role": "assistant", "content": "answer to " + prompt},
                             "finish_reason": "stop"}],
                "usage": {"prompt_tokens": 5, "completion_tokens": 3, "total_tokens": 8}}
        return httpx.Response(200, json=body, request=request)

    transport.interceptor = answer

    def work(thread):
        client = Client("mock/m", cache=ResponseCache(directory))
        for round_ in range(40):
            prompt = f"question {(thread * 7 + round_) % 25}"  # 25 prompts, shared by every thread and process
            try:
                response = client.complete(prompt)
                if response.text != "answer to " + prompt:
                    errors.append(f"{prompt!r} -> {response.text!r}")
            except Exception as exc:
                errors.append(repr(exc))

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print("ERRORS" if errors else "OK", tag, errors[:3])
''')


def test_eight_threads_in_two_processes_share_one_directory(tmp_path: Path) -> None:
    directory = tmp_path / "shared"
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    workers = [subprocess.Popen([sys.executable, "-c", _WORKER, str(directory), str(n)], env=env, cwd=tmp_path,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for n in range(2)]
    outputs = [worker.communicate(timeout=240) for worker in workers]
    for (out, err), worker in zip(outputs, workers):
        assert worker.returncode == 0 and out.startswith("OK"), (out, err[-2000:])
    connection = sqlite3.connect(directory / cache_module.FILE_NAME)
    assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    rows = connection.execute("SELECT key, body FROM responses").fetchall()
    connection.close()
    assert len(rows) == 25  # one entry per distinct request, whoever stored it first
    cache = ResponseCache(directory)
    for n in range(25):
        key = request_key("complete", "mock/m", Client("mock/m").base_url, Request.build(f"question {n}"))
        stored = cache.get_response(key)
        assert stored is not None and stored.text == f"answer to question {n}"


def test_threads_of_one_process_read_and_write_one_cache(tmp_path: Path) -> None:
    cache = ResponseCache(tmp_path)
    with MockProvider() as mock:
        mock.reply("seed")
        seed = Client("mock/m").complete("seed")
    problems: list[str] = []

    def work(thread: int) -> None:
        for n in range(50):
            key = f"{thread % 4}-{n}"  # two threads write each key, each its own answer
            cache.put_response(key, "mock/m", seed.model_copy(update={"text": f"{key} by {thread}",
                                                                      "raw": {"writer": thread}}))
            got = cache.get_response(key)
            writer = None if got is None else got.raw.get("writer")
            if got is None or writer not in (thread % 4, thread % 4 + 4) or got.text != f"{key} by {writer}":
                problems.append(f"{key}: {got and (got.text, got.raw)}")  # a torn or mixed entry

    threads = [threading.Thread(target=work, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert problems == [] and len(cache) == 200
