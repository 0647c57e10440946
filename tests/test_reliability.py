"""Retries, fallbacks, profiles and the rate limiter end to end, against real loopback servers
(tests/fault_server.py) that answer as told: exact attempt counts, measured waits, which model
answered. Every expected value comes from the script given to the server."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from llmclient import AuthenticationError, Client, RateLimit, RetryPolicy, ServerError
from llmclient.policies import ratelimit
from llmclient.config import reset_config
from tests.fault_server import FaultServer, Hang, status, succeed

FAST = RetryPolicy(max_attempts=3, initial_backoff=0.05, max_backoff=0.05, jitter=False)


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture
def backup() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


@pytest.fixture(autouse=True)
def _clean_state() -> Iterator[None]:
    reset_config()
    ratelimit.reset()
    yield
    reset_config()
    ratelimit.reset()


def openai_client(server: FaultServer, **options: object) -> Client:
    return Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", **options)  # type: ignore[arg-type]


def test_429_with_retry_after_waits_as_told_then_answers(server: FaultServer) -> None:
    server.script(status(429, headers={"retry-after": "1"}), succeed("Paris."))
    response = openai_client(server).complete("Capital of France?")  # the default policy
    assert response.text == "Paris." and server.count == 2
    assert 0.95 <= server.gaps()[0] < 3.0  # measured between the two arrivals
    assert [(r.error, r.status_code, r.waited) for r in response.retries] == [("RateLimitError", 429, 1.0)]


def test_503_then_200_backs_off_then_answers(server: FaultServer) -> None:
    server.script(status(503), status(503), succeed("Paris."))
    response = openai_client(server, retry=FAST).complete("Capital of France?")
    assert response.text == "Paris." and server.count == 3
    assert [(r.error, r.status_code, r.waited) for r in response.retries] == [("ServerError", 503, 0.05)] * 2


def test_anthropic_529_is_retried_as_overloaded(server: FaultServer) -> None:
    server.script(status(529), succeed("Paris."))
    client = Client("anthropic/claude-sonnet-4-5", base_url=server.url, api_key="sk-ant-test", retry=FAST)
    response = client.complete("Capital of France?")
    assert response.text == "Paris." and [r.error for r in response.retries] == ["OverloadedError"]


def test_401_is_never_retried(server: FaultServer) -> None:
    server.script(status(401), succeed("never"))
    with pytest.raises(AuthenticationError) as caught:
        openai_client(server, retry=FAST).complete("hi")
    assert server.count == 1 and [r.error for r in caught.value.history] == ["AuthenticationError"]


def test_exhausted_retries_raise_the_last_error_with_the_history(server: FaultServer) -> None:
    server.script(status(500), status(502), status(503))
    with pytest.raises(ServerError) as caught:
        openai_client(server, retry=FAST).complete("hi")
    assert caught.value.status_code == 503 and server.count == 3
    assert [(r.status_code, r.waited) for r in caught.value.history] == [(500, 0.05), (502, 0.05), (503, 0.0)]


def test_a_timeout_is_retried_then_answers(server: FaultServer) -> None:
    server.script(Hang(seconds=5.0), succeed("Paris."))
    started = time.monotonic()
    response = openai_client(server, retry=FAST, timeout=0.5).complete("hi")
    assert response.text == "Paris." and [r.error for r in response.retries] == ["RequestTimeoutError"]
    assert time.monotonic() - started < 4.0  # did not wait for the hang to end


def test_a_stream_is_retried_before_its_first_byte(server: FaultServer) -> None:
    server.script(status(503), succeed("Paris is the capital."))
    stream = openai_client(server, retry=FAST).stream("Capital of France?")
    assert "".join(event.text for event in stream) == "Paris is the capital."
    assert [r.status_code for r in stream.response.retries] == [503] and server.count == 2


async def test_async_calls_retry_too(server: FaultServer) -> None:
    server.script(status(429, headers={"retry-after": "0.2"}), succeed("Paris."))
    response = await openai_client(server, retry=FAST).acomplete("hi")
    assert response.text == "Paris." and response.retries[0].waited == 0.2


def write_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, primary: FaultServer, backup: FaultServer,
                 profiles: str) -> None:
    """A config file pointing openai at `primary` and anthropic at `backup`, plus `profiles`."""
    path = tmp_path / "llmclient.toml"
    path.write_text(f"""
[providers.openai]
base_url = "{primary.url}/v1"
api_key_env = "PRIMARY_KEY"
[providers.anthropic]
base_url = "{backup.url}"
api_key_env = "BACKUP_KEY"
{profiles}""")
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(path))
    monkeypatch.setenv("PRIMARY_KEY", "sk-primary")
    monkeypatch.setenv("BACKUP_KEY", "sk-ant-backup")
    reset_config()


def test_a_profile_falls_back_when_its_model_keeps_failing(server: FaultServer, backup: FaultServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, server, backup, """
[profiles.fast]
model = "openai/gpt-4o-mini"
fallbacks = ["anthropic/claude-sonnet-4-5"]
retry = { max_attempts = 2, initial_backoff = 0.05, max_backoff = 0.05, jitter = false }
options = { max_tokens = 64 }
[aliases]
quick = "fast"
""")
    server.script(status(503), status(503))
    backup.script(succeed("Paris, from the backup."))
    response = Client("quick").complete("Capital of France?")
    assert (response.text, response.provider, server.count, backup.count) == ("Paris, from the backup.", "anthropic", 2, 1)
    assert [(r.model, r.status_code) for r in response.retries] == [("openai/gpt-4o-mini", 503)] * 2
    assert server.requests[0].body["max_completion_tokens"] == 64  # the profile's options were applied (OpenAI's key)


def test_errors_a_profile_does_not_fall_back_on_are_raised(server: FaultServer, backup: FaultServer, tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    write_config(tmp_path, monkeypatch, server, backup, """
[profiles.fast]
model = "openai/gpt-4o-mini"
fallbacks = ["anthropic/claude-sonnet-4-5"]
fallback_on = ["rate_limit"]
retry = { max_attempts = 1 }
""")
    server.script(status(503))
    with pytest.raises(ServerError):
        Client("fast").complete("hi")
    assert backup.count == 0


def test_the_rate_limiter_spaces_calls_as_configured(server: FaultServer) -> None:
    ratelimit.configure("openai", RateLimit(rpm=300, rpm_burst=1))  # one call per 0.2 s
    client = openai_client(server)
    for _ in range(6):
        client.complete("hi")
    gaps = server.gaps()  # permits are 0.2 s apart; arrivals also carry each call's own set-up time
    assert len(gaps) == 5 and all(gap >= 0.1 for gap in gaps), gaps
    assert 0.85 <= sum(gaps) < 3.0, gaps  # 1.0 s of permits, less the first call's longer set-up


async def test_the_rate_limiter_spaces_concurrent_async_calls(server: FaultServer) -> None:
    client = openai_client(server)
    await client.acomplete("warm up")  # builds this loop's HTTP client, so no call carries that set-up
    ratelimit.configure("openai", RateLimit(rpm=600, rpm_burst=1))  # one call per 0.1 s
    await asyncio.gather(*(client.acomplete("hi") for _ in range(8)))
    arrivals = sorted(request.arrived for request in server.requests[1:])
    assert arrivals[-1] - arrivals[0] >= 0.65  # 7 intervals of 0.1 s, minus scheduling slack


def test_the_clients_retry_policy_holds_for_its_fallbacks_too(server: FaultServer, backup: FaultServer, tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    # The profile's retry would try each model twice; the Client's own RetryPolicy(max_attempts=1)
    # turns retries off for the whole call, the fallback included.
    write_config(tmp_path, monkeypatch, server, backup, """
[profiles.fast]
model = "openai/gpt-4o-mini"
fallbacks = ["anthropic/claude-sonnet-4-5"]
retry = { max_attempts = 2, initial_backoff = 0.05, max_backoff = 0.05, jitter = false }
""")
    server.script(status(503))
    backup.script(status(503), succeed("second try"))
    with pytest.raises(ServerError):
        Client("fast", retry=RetryPolicy(max_attempts=1)).complete("hi")
    assert (server.count, backup.count) == (1, 1)


@pytest.mark.parametrize("code", [409, 425])
def test_409_conflict_and_425_too_early_are_retried(server: FaultServer, code: int) -> None:
    server.script(status(code), succeed("Paris."))
    assert openai_client(server).complete("hi").text == "Paris." and server.count == 2
