"""`llmclient serve` in front of the claude-cli provider, with the fake `claude`
(tests/fake_claude/claude) as the CLI, driven by the real `openai` SDK over loopback."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from llmclient.serve import create_app
from tests.serve_helpers import Running, running
from tests.test_claude_cli import FAKE, _group_gone

USER: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say hello"}]
MODEL = "claude-cli/default"
ANSWERED_BY = "claude-cli/claude-sonnet-4-5-20250929"  # the fake's model, as it reports it
COST = "0.0123456"  # the fake's total_cost_usd


@pytest.fixture
def server(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Running]:
    workdir = tmp_path / "work"
    workdir.mkdir()
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI", str(FAKE))
    monkeypatch.setenv("LLMCLIENT_CLAUDE_CLI_CWD", str(workdir))
    for name in ("FAKE_CLAUDE_MODE", "ANTHROPIC_API_KEY", "LLMCLIENT_SERVER_KEY", "LLMCLIENT_CLAUDE_CLI_MAX_TURNS"):
        monkeypatch.delenv(name, raising=False)
    with running(create_app()) as srv:
        yield srv


def test_a_completion_with_usage_and_the_clis_cost(server: Running) -> None:
    raw = server.sdk().chat.completions.with_raw_response.create(model=MODEL, messages=USER)
    completion = raw.parse()
    assert completion.choices[0].message.content == "Hello from the fake CLI."
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (3 + 15000 + 1200, 12, 16215)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 15000
    assert raw.headers["x-llmclient-cost-usd"] == COST  # the CLI's total_cost_usd, exactly
    assert raw.headers["x-llmclient-model"] == ANSWERED_BY


def test_a_stream_with_its_usage_chunk(server: Running) -> None:
    with server.sdk().chat.completions.with_streaming_response.create(
            model=MODEL, messages=USER, stream=True, stream_options={"include_usage": True}) as raw:
        assert raw.headers["x-llmclient-model"] == MODEL
        chunks = list(raw.parse())
    assert [c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content] == [
        "Hello from ", "the fake CLI."]
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens) == (16203, 12)
    assert Decimal(str(last.usage.model_extra["cost"])) == Decimal(COST)  # type: ignore[index]


def test_async_sdk_stream(server: Running) -> None:
    async def main() -> str:
        sdk = server.async_sdk()
        try:
            stream = await sdk.chat.completions.create(model=MODEL, messages=USER, stream=True)
            return "".join([chunk.choices[0].delta.content or "" async for chunk in stream if chunk.choices])
        finally:
            await sdk.close()

    assert asyncio.run(main()) == "Hello from the fake CLI."


@pytest.mark.parametrize("stream", [False, True])
def test_the_clis_rate_limit_is_a_429(server: Running, monkeypatch: pytest.MonkeyPatch, stream: bool) -> None:
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "rate")
    with pytest.raises(openai.RateLimitError) as caught:
        if stream:
            list(server.sdk().chat.completions.create(model=MODEL, messages=USER, stream=True))
        else:
            server.sdk().chat.completions.create(model=MODEL, messages=USER)
    assert caught.value.status_code == 429 and "rate limited" in caught.value.message


def test_a_client_leaving_a_stream_leaves_no_cli_running(server: Running, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """The server cancels the request's task when its client goes; the CLI (which ignores SIGTERM)
    and what it started are killed at once, not after the stream's timeout."""
    pidfile = tmp_path / "pids"
    monkeypatch.setenv("FAKE_CLAUDE_MODE", "stall")
    monkeypatch.setenv("FAKE_CLAUDE_PIDFILE", str(pidfile))
    body = {"model": MODEL, "messages": USER, "stream": True}
    leader = None
    try:
        with httpx.stream("POST", f"{server.base_url}/chat/completions", json=body, timeout=30) as answer:
            assert answer.status_code == 200
            assert any("Hello" in line for line in answer.iter_lines())  # the first text delta
            leader = int(pidfile.read_text().split()[0])
        assert _group_gone(leader, within=0.8)  # less than the SIGTERM grace: SIGKILL went at once
    finally:
        if leader is not None:
            with contextlib.suppress(OSError):
                os.killpg(leader, signal.SIGKILL)
