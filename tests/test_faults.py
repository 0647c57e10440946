"""Fault handling over real sockets: a loopback server (tests/fault_server.py) answers each call
with a scripted fault, and every fault must surface as its typed error (or a success).

Expected values are written by hand from what the server was told to send: the scripted text cut
into words (the server's `split_deltas` rule), the scripted token counts, status and Retry-After.
Calls run for both wires and all four call modes, with retries off (`ONE_ATTEMPT`) unless a test
is about retries; a retry, fallback or rate-limit test passes `retry=` (or other Client options)
through `call()` and asserts `server.count` and `server.gaps()`.

Time bounds are wide (a 0.5 s timeout against a 10 s hang must return in under 5 s); waits that
are not the point of a test go through a recording `sleep` instead of the clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx
import pytest

from llmclient import (
    APIConnectionError,
    APIError,
    AuthenticationError,
    Client,
    LLMError,
    MalformedResponseError,
    OverloadedError,
    RateLimitError,
    RequestTimeoutError,
    Response,
    ServerError,
    Usage,
)
from llmclient.policies.retry import RetryPolicy
from tests.fault_server import (
    Action,
    FaultServer,
    close_mid_stream,
    empty_body,
    hang,
    malformed,
    malformed_event,
    status,
    succeed,
    truncated,
)

Wire = Literal["openai", "anthropic"]
Mode = Literal["complete", "acomplete", "stream", "astream"]
WIRES: tuple[Wire, ...] = ("openai", "anthropic")
MODES: tuple[Mode, ...] = ("complete", "acomplete", "stream", "astream")
STREAMED: tuple[Mode, ...] = ("stream", "astream")
PROMPT = "What is the capital of France?"
ONE_ATTEMPT = RetryPolicy(max_attempts=1)  # each fault seen as the single attempt it is


@pytest.fixture
def server() -> Iterator[FaultServer]:
    with FaultServer() as running:
        yield running


def client_for(server: FaultServer, wire: Wire, *, timeout: float = 5.0, **options: Any) -> Client:
    """A client pointed at the server the way a user points one at a proxy."""
    if wire == "openai":
        return Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", timeout=timeout, **options)
    return Client("anthropic/claude-sonnet-4-5", base_url=server.url, api_key="sk-ant-test", timeout=timeout, **options)


@dataclass
class Outcome:
    response: Response | None = None
    error: Exception | None = None
    deltas: list[str] = field(default_factory=list)  # text deltas delivered before the end or the error
    elapsed: float = 0.0


async def call(server: FaultServer, wire: Wire, mode: Mode, *, timeout: float = 5.0, retry: RetryPolicy = ONE_ATTEMPT,
               **client_options: Any) -> Outcome:
    """One call in `mode`; what it returns or raises is kept for the test to inspect.

    The sync modes block the test's event loop while they run, which is harmless: nothing else
    runs on that loop, and the server has threads of its own."""
    outcome = Outcome()
    started = time.monotonic()
    client = client_for(server, wire, timeout=timeout, retry=retry, **client_options)
    try:
        if mode == "complete":
            with client:
                outcome.response = client.complete(PROMPT)
        elif mode == "acomplete":
            async with client:
                outcome.response = await client.acomplete(PROMPT)
        elif mode == "stream":
            with client, client.stream(PROMPT) as stream:
                for event in stream:  # a loop, not a comprehension: deltas before an error are kept
                    outcome.deltas += [event.text] if event.kind == "text" else []
                outcome.response = stream.response
        else:
            async with client, client.astream(PROMPT) as astream:
                async for event in astream:
                    outcome.deltas += [event.text] if event.kind == "text" else []
                outcome.response = astream.response
    except Exception as exc:  # noqa: BLE001 - the outcome is what the tests inspect
        outcome.error = exc
    outcome.elapsed = time.monotonic() - started
    return outcome


def error_of(outcome: Outcome) -> Exception:
    assert outcome.error is not None, f"expected an error, got a response: {outcome.response!r}"
    return outcome.error


def every(wires: tuple[Wire, ...] = WIRES, modes: tuple[Mode, ...] = MODES) -> pytest.MarkDecorator:
    return pytest.mark.parametrize(("wire", "mode"), [(w, m) for w in wires for m in modes])


class RecordedSleeps:
    """A retry policy's sleep that records the waits instead of taking them."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    async def asleep(self, seconds: float) -> None:
        self.waits.append(seconds)

    def policy(self, attempts: int) -> RetryPolicy:
        return RetryPolicy(max_attempts=attempts, initial_backoff=0.25, jitter=False, sleep=self.sleep, asleep=self.asleep)


# --- the server itself --------------------------------------------------------------------------


@pytest.mark.parametrize(("wire", "path", "key_header", "key", "model"), [
    ("openai", "/v1/chat/completions", "authorization", "Bearer sk-test", "gpt-4o-mini"),
    ("anthropic", "/v1/messages", "x-api-key", "sk-ant-test", "claude-sonnet-4-5"),
])
async def test_requests_arrive_where_the_real_apis_live(server: FaultServer, wire: Wire, path: str, key_header: str,
                                                        key: str, model: str) -> None:
    assert (await call(server, wire, "complete")).error is None
    (request,) = server.requests
    assert (request.method, request.path) == ("POST", path)  # no query string, no doubled /v1
    assert request.headers[key_header] == key
    assert request.body["model"] == model


async def test_the_script_plays_in_order_then_answers_success(server: FaultServer) -> None:
    server.script(status(500), succeed("Second answer."))
    first, second, third = [await call(server, "openai", "complete") for _ in range(3)]
    assert type(first.error) is ServerError
    assert second.response is not None and second.response.text == "Second answer."
    assert third.response is not None and third.response.text == "Hello from the fault server."  # the default
    assert (server.count, server.pending, len(server.gaps())) == (3, 0, 2)
    assert all(gap >= 0 for gap in server.gaps())


def test_an_unknown_path_is_recorded_without_using_up_the_script(server: FaultServer) -> None:
    server.script(status(429))
    answer = httpx.post(f"{server.url}/v2/chat", json={"model": "m"})
    assert answer.status_code == 404 and "no route '/v2/chat'" in answer.json()["error"]["message"]
    assert [r.route for r in server.requests] == ["/v2/chat"] and server.pending == 1


def test_stream_events_follow_the_recorded_layout(server: FaultServer) -> None:
    """Event order and framing as in the reference recordings (openai/test_openai__test_run_stream_
    sync_streams_real_model__i1, anthropic/test_anthropic__test_request_stream_fallback_for_high_max_tokens)."""
    body = {"model": "m", "stream": True, "stream_options": {"include_usage": True}}
    events = httpx.post(f"{server.url}/v1/chat/completions", json=body).text.split("\n\n")
    assert events[-2:] == ["data: [DONE]", ""]
    assert '"choices":[]' in events[-3] and '"prompt_tokens":11' in events[-3]  # the usage chunk
    assert '"finish_reason":"stop"' in events[-4]
    text = httpx.post(f"{server.url}/v1/messages", json={"model": "m", "stream": True}).text
    names = [line.removeprefix("event: ") for line in text.splitlines() if line.startswith("event: ")]
    assert names == ["message_start", "content_block_start", "ping", *["content_block_delta"] * 5,
                     "content_block_stop", "message_delta", "message_stop"]


def test_close_is_prompt_with_a_hung_request_and_an_idle_connection() -> None:
    running = FaultServer().start()
    running.script(succeed(), hang(30))
    idle = httpx.Client()  # keeps its connection open after the first answer
    assert idle.post(f"{running.url}/v1/messages", json={"model": "m"}).status_code == 200
    hung: list[object] = []
    caller = threading.Thread(target=lambda: hung.append(_post_catching(f"{running.url}/v1/messages")))
    caller.start()
    deadline = time.monotonic() + 10
    while running.count < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    started = time.monotonic()
    running.close()
    took = time.monotonic() - started
    caller.join(timeout=10)
    idle.close()
    assert running.count == 2 and took < 3.0  # not the 30 s the hang asked for
    assert isinstance(hung[0], httpx.RemoteProtocolError)  # the hung request was dropped unanswered
    assert [t.name for t in threading.enumerate() if t.name.startswith("fault-server")] == []


def _post_catching(url: str) -> object:
    try:
        return httpx.post(url, json={"model": "m"}, timeout=60).status_code
    except httpx.HTTPError as exc:
        return exc


# --- every fault surfaces as its typed error ----------------------------------------------------

# name: (action, client timeout, error of a whole call, error of a stream). The hanging faults get
# a short timeout to keep the matrix fast.
FAULTS: dict[str, tuple[Action, float, type[LLMError] | None, type[LLMError] | None]] = {
    "success": (succeed(), 5.0, None, None),
    "429": (status(429, headers={"retry-after": "1"}), 5.0, RateLimitError, RateLimitError),
    "503": (status(503), 5.0, ServerError, ServerError),
    "529": (status(529), 5.0, OverloadedError, OverloadedError),
    "401": (status(401), 5.0, AuthenticationError, AuthenticationError),
    "502-html": (status(502, headers={"content-type": "text/html"}, body="<html>502 Bad Gateway</html>"), 5.0,
                 ServerError, ServerError),
    "hang": (hang(10), 0.1, RequestTimeoutError, RequestTimeoutError),
    "drop": (hang(0.05), 5.0, APIConnectionError, APIConnectionError),
    "close-mid-stream": (close_mid_stream(), 5.0, APIConnectionError, APIConnectionError),
    "stall-mid-stream": (close_mid_stream(stall=10), 0.1, RequestTimeoutError, RequestTimeoutError),
    "truncated": (truncated(), 5.0, MalformedResponseError, MalformedResponseError),
    "malformed": (malformed(), 5.0, MalformedResponseError, MalformedResponseError),
    "malformed-event": (malformed_event(), 5.0, MalformedResponseError, MalformedResponseError),
    "empty-body": (empty_body(), 5.0, MalformedResponseError, MalformedResponseError),
}


@pytest.mark.parametrize("fault", FAULTS)
@every()
async def test_every_fault_surfaces_as_its_typed_error(server: FaultServer, fault: str, wire: Wire, mode: Mode) -> None:
    action, timeout, whole_error, stream_error = FAULTS[fault]
    expected = stream_error if mode in STREAMED else whole_error
    server.script(action)
    outcome = await call(server, wire, mode, timeout=timeout)
    assert outcome.elapsed < 5.0  # nothing hung
    if expected is None:
        assert outcome.error is None and outcome.response is not None
        return
    error = error_of(outcome)
    assert isinstance(error, LLMError), f"{type(error).__module__}.{type(error).__name__} escaped untyped: {error}"
    assert type(error) not in (LLMError, APIError)  # classified, not a catch-all
    assert expected is LLMError or type(error) is expected
    assert error.provider == wire


# --- what each fault carries --------------------------------------------------------------------


@every()
async def test_success_returns_the_scripted_text_and_usage(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(succeed("Paris is the capital.", input_tokens=21, output_tokens=5))
    outcome = await call(server, wire, mode)
    assert outcome.error is None and outcome.response is not None
    assert (outcome.response.text, outcome.response.finish_reason) == ("Paris is the capital.", "stop")
    assert outcome.response.usage == Usage(input_tokens=21, output_tokens=5)
    assert outcome.response.usage.total_tokens == 26
    assert outcome.deltas == (["Paris", " is", " the", " capital."] if mode in STREAMED else [])
    assert server.count == 1


@every()
async def test_429_is_a_rate_limit_error_carrying_retry_after(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(status(429, headers={"retry-after": "1"}))
    error = error_of(await call(server, wire, mode))
    assert type(error) is RateLimitError
    assert (error.status_code, error.retry_after) == (429, 1.0)
    assert server.count == 1


@every(("anthropic",))
async def test_anthropic_529_is_an_overloaded_error(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(status(529))
    error = error_of(await call(server, wire, mode))
    assert type(error) is OverloadedError
    assert (error.status_code, error.message, error.error_type) == (529, "Overloaded", "overloaded_error")


@every()
async def test_a_hang_past_the_timeout_is_a_request_timeout(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(hang(10))
    outcome = await call(server, wire, mode, timeout=0.5)
    assert type(error_of(outcome)) is RequestTimeoutError
    assert 0.4 <= outcome.elapsed < 5.0  # the 0.5 s timeout, not the 10 s hang
    assert server.count == 1


@pytest.mark.parametrize(("wire", "mode"), [("openai", "complete"), ("anthropic", "astream")])
async def test_a_slow_answer_within_the_timeout_succeeds(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(hang(0.1, then=succeed("Late but fine.")))
    outcome = await call(server, wire, mode)
    assert outcome.response is not None and outcome.response.text == "Late but fine."


@every(modes=STREAMED)
async def test_a_connection_cut_mid_stream_is_a_connection_error_after_the_deltas(server: FaultServer, wire: Wire,
                                                                                  mode: Mode) -> None:
    server.script(close_mid_stream("Paris is"))
    outcome = await call(server, wire, mode)
    assert outcome.deltas == ["Paris", " is"]  # what arrived was delivered before the error
    assert type(error_of(outcome)) is APIConnectionError  # the HTTP body broke off: a transport failure
    assert server.count == 1


@every(modes=STREAMED)
async def test_a_stream_that_ends_early_is_malformed_after_the_deltas(server: FaultServer, wire: Wire,
                                                                      mode: Mode) -> None:
    server.script(truncated("Paris is"))
    outcome = await call(server, wire, mode)
    assert outcome.deltas == ["Paris", " is"]
    error = error_of(outcome)
    assert type(error) is MalformedResponseError  # a complete HTTP body, but no closing event
    assert ("[DONE]" if wire == "openai" else "message_stop") in error.message


@every(modes=STREAMED)
async def test_a_stream_that_stalls_past_the_timeout_is_a_timeout_after_the_deltas(server: FaultServer, wire: Wire,
                                                                                    mode: Mode) -> None:
    server.script(close_mid_stream("Paris is", stall=10))
    outcome = await call(server, wire, mode, timeout=0.25)
    assert outcome.deltas == ["Paris", " is"]
    assert type(error_of(outcome)) is RequestTimeoutError
    assert outcome.elapsed < 5.0  # the 0.25 s timeout, not the 10 s stall


@pytest.mark.parametrize(("wire", "mode"), [("openai", "acomplete"), ("anthropic", "complete")])
async def test_malformed_json_names_the_problem_and_quotes_the_body(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(malformed())
    error = error_of(await call(server, wire, mode))
    assert type(error) is MalformedResponseError
    assert "JSONDecodeError" in error.message and '{"id": "broken"' in error.message


# --- retries over the same faults (the retry layer is llmclient.policies.retry) --------------------------


@pytest.mark.parametrize(("wire", "mode"), [("openai", "complete"), ("anthropic", "astream")])
async def test_a_429_is_retried_after_its_retry_after(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(status(429, headers={"retry-after": "1"}), succeed("Paris."))
    outcome = await call(server, wire, mode, retry=RetryPolicy(max_attempts=2))
    assert outcome.response is not None and outcome.response.text == "Paris."
    assert server.count == 2
    assert 0.9 <= server.gaps()[0] < 3.0  # measured between the two arrivals: the 1 s the server asked for
    (retry,) = outcome.response.retries
    assert (retry.error, retry.status_code, retry.waited) == ("RateLimitError", 429, 1.0)


@pytest.mark.parametrize("fault", ["503", "529"])
@every()
async def test_a_server_error_then_success_is_retried_once(server: FaultServer, fault: str, wire: Wire,
                                                           mode: Mode) -> None:
    sleeps = RecordedSleeps()
    server.script(status(int(fault)), succeed("Recovered."))
    outcome = await call(server, wire, mode, retry=sleeps.policy(attempts=3))
    assert outcome.response is not None and outcome.response.text == "Recovered."
    assert (server.count, sleeps.waits) == (2, [0.25])  # no Retry-After: the first backoff step, unjittered


@every()
async def test_401_is_never_retried(server: FaultServer, wire: Wire, mode: Mode) -> None:
    sleeps = RecordedSleeps()
    server.script(status(401))
    error = error_of(await call(server, wire, mode, retry=sleeps.policy(attempts=3)))
    assert type(error) is AuthenticationError
    assert (server.count, sleeps.waits) == (1, [])


# --- library defects found with this server, now fixed (backend._transport_failure: a non-stream
# body that broke off while litellm read it was reported as an empty, malformed body) -----------


@every(modes=("complete", "acomplete"))
async def test_a_non_stream_body_cut_off_is_a_connection_error(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(close_mid_stream("Paris is"))
    outcome = await call(server, wire, mode)
    assert type(error_of(outcome)) is APIConnectionError and server.count == 1


@every(modes=("complete", "acomplete"))
async def test_a_non_stream_body_stalled_past_the_timeout_is_a_timeout(server: FaultServer, wire: Wire,
                                                                       mode: Mode) -> None:
    server.script(close_mid_stream("Paris is", stall=10))
    assert type(error_of(await call(server, wire, mode, timeout=0.25))) is RequestTimeoutError


# litellm's AsyncHTTPHandler re-sent such a request through a fresh client, outside llmclient's tap
# and retry layer; backend._no_resend_handler removes that resend.
@every()
async def test_a_connection_dropped_before_the_answer_is_sent_once(server: FaultServer, wire: Wire, mode: Mode) -> None:
    server.script(hang(0.05))  # read the request, then close without answering
    assert type(error_of(await call(server, wire, mode))) is APIConnectionError
    assert server.count == 1  # only llmclient's retry layer may send a request again
