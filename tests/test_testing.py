"""llmclient.testing: the mock provider and simulated faults.

Expected values are the numbers and texts each test queues (the mock answers with them, and the
library's own decoding must give them back), the literals of the cassettes in cassettes/ (the
recorded answer "Paris."/"Paris"), and the error shapes of the providers' documentation and the
reference traffic (OpenAI `{"error": {...}}`, Anthropic `{"type": "error", ...}`, Gemini
`{"error": {"code", "message", "status", "details": [RetryInfo]}}`)."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import BaseModel

from llmclient import (
    APIConnectionError,
    Client,
    ConfigurationError,
    ContextWindowExceededError,
    MalformedResponseError,
    OverloadedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ToolCall,
    Usage,
    use_cassette,
)
from llmclient.errors import APIError
from llmclient.providers import KEYLESS_PLACEHOLDER, REGISTRY, ProviderSpec
from llmclient.policies.retry import RetryPolicy
from llmclient.testing import Fault, MockProvider, disconnect, malformed, simulate_errors, status, timeout

REPO = Path(__file__).resolve().parent.parent
QUESTION = "What is the capital of France? Answer in one word."
WEATHER_TOOL = {"name": "get_weather", "description": "Weather for a city.",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}


class City(BaseModel):
    name: str
    country: str


def one_shot(model: str, **options: Any) -> Client:
    """A client that makes exactly one request per call: each fault is seen as it was injected."""
    return Client(model, retry=RetryPolicy(max_attempts=1), **options)


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    """The fixture users write: the mock is active for the whole test and checked at its end."""
    with MockProvider() as provider:
        yield provider


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "GEMINI_API_KEY", "LLMCLIENT_MOCK_API_KEY"):
        monkeypatch.delenv(name, raising=False)


# --- the mock provider: replies ----------------------------------------------------------------


def test_reply_comes_back_through_the_real_decoding(mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=3)
    response = one_shot("mock/tiny-model").complete(QUESTION)
    assert (response.text, response.finish_reason, response.raw_finish_reason) == ("Paris.", "stop", "stop")
    assert response.usage == Usage(input_tokens=12, output_tokens=3)
    assert response.usage.total_tokens == 15
    assert (response.provider, response.model, response.tool_calls) == ("mock", "tiny-model", [])
    assert response.cost is None  # a mock model has no price, and an unknown price is None, never $0


def test_reply_reports_cache_reads_reasoning_and_a_cut_answer(mock: MockProvider) -> None:
    mock.reply("It is Par", input_tokens=100, output_tokens=40, cache_read_tokens=64, reasoning_tokens=30, finish="length")
    response = one_shot("mock/m").complete(QUESTION)
    assert response.usage == Usage(input_tokens=100, output_tokens=40, cache_read_tokens=64, reasoning_tokens=30)
    assert (response.finish_reason, response.text) == ("length", "It is Par")


def test_replies_are_used_first_in_first_out_and_requests_are_kept(mock: MockProvider) -> None:
    mock.reply("one").reply("two")
    client = one_shot("mock/m")
    assert [client.complete("first").text, client.complete("second", max_tokens=7).text] == ["one", "two"]
    assert [r["messages"] for r in mock.requests] == [[{"role": "user", "content": "first"}],
                                                      [{"role": "user", "content": "second"}]]
    assert [r["model"] for r in mock.requests] == ["m", "m"]
    assert mock.requests[1]["max_tokens"] == 7
    assert mock.pending == 0


async def test_acomplete(mock: MockProvider) -> None:
    mock.reply("async answer", input_tokens=4, output_tokens=2)
    async with one_shot("mock/m") as client:
        response = await client.acomplete(QUESTION)
    assert (response.text, response.usage) == ("async answer", Usage(input_tokens=4, output_tokens=2))


def test_reply_stream_arrives_in_the_queued_pieces_with_usage_once(mock: MockProvider) -> None:
    mock.reply_stream(["The", " capital", " is", " Paris."], input_tokens=22, output_tokens=7)
    stream = one_shot("mock/m").stream(QUESTION)
    assert [event.text for event in stream if event.kind == "text"] == ["The", " capital", " is", " Paris."]
    assert stream.response.text == "The capital is Paris."
    assert stream.response.usage == Usage(input_tokens=22, output_tokens=7)
    assert mock.requests[0]["stream"] is True


async def test_astream(mock: MockProvider) -> None:
    mock.reply_stream(["Pa", "ris"], input_tokens=3, output_tokens=2)
    stream = one_shot("mock/m").astream(QUESTION)
    assert [event.text async for event in stream if event.kind == "text"] == ["Pa", "ris"]
    assert (stream.response.text, stream.response.usage) == ("Paris", Usage(input_tokens=3, output_tokens=2))


def test_a_plain_reply_also_serves_a_stream(mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=5, output_tokens=1)
    stream = one_shot("mock/m").stream(QUESTION)
    assert [event.text for event in stream] == ["Paris."]
    assert stream.response.usage == Usage(input_tokens=5, output_tokens=1)


def test_a_stream_reply_refuses_a_call_that_is_not_streamed(mock: MockProvider) -> None:
    mock.reply_stream(["a", "b"])
    with pytest.raises(ConfigurationError, match=r"reply_stream\(\) reply was queued but the call was not streamed"):
        one_shot("mock/m").complete(QUESTION)


def test_reply_tool_call(mock: MockProvider) -> None:
    mock.reply_tool_call("get_weather", {"city": "Paris"}, id="call_42")
    response = one_shot("mock/m").complete("Weather in Paris?", tools=[WEATHER_TOOL])
    assert response.tool_calls == [ToolCall(id="call_42", name="get_weather", arguments={"city": "Paris"})]
    assert (response.finish_reason, response.text) == ("tool_calls", "")
    assert [tool["function"]["name"] for tool in mock.requests[0]["tools"]] == ["get_weather"]


def test_parallel_tool_calls_get_distinct_ids(mock: MockProvider) -> None:
    mock.reply_tool_calls([("get_weather", {"city": "Paris"}), ("get_weather", {"city": "Lyon"})])
    response = one_shot("mock/m").complete("Weather in Paris and Lyon?", tools=[WEATHER_TOOL])
    assert response.tool_calls == [ToolCall(id="call_mock_1", name="get_weather", arguments={"city": "Paris"}),
                                   ToolCall(id="call_mock_2", name="get_weather", arguments={"city": "Lyon"})]


def test_a_streamed_tool_call_arrives_in_fragments(mock: MockProvider) -> None:
    mock.reply_tool_call("get_weather", {"city": "Paris"}, id="call_7")
    stream = one_shot("mock/m").stream("Weather in Paris?", tools=[WEATHER_TOOL])
    fragments = [event.tool_call for event in stream if event.tool_call is not None]
    assert (fragments[0].id, fragments[0].name) == ("call_7", "get_weather")
    assert len([f for f in fragments if f.arguments]) == 2  # the arguments in two pieces, as OpenAI sends them
    assert json.loads("".join(f.arguments for f in fragments)) == {"city": "Paris"}
    assert stream.response.tool_calls == [ToolCall(id="call_7", name="get_weather", arguments={"city": "Paris"})]
    assert stream.response.finish_reason == "tool_calls"


def test_structured_from_a_json_reply_and_from_a_tool_call(mock: MockProvider) -> None:
    mock.reply('{"name": "Paris", "country": "France"}')
    mock.reply_tool_call("City", {"name": "Lyon", "country": "France"})
    client = one_shot("mock/m")
    assert client.structured("The capital?", schema=City) == City(name="Paris", country="France")
    assert client.structured("Second city?", schema=City, strategy="tool") == City(name="Lyon", country="France")
    assert mock.requests[0]["response_format"]["json_schema"]["name"] == "City"  # the native strategy
    assert mock.requests[1]["tool_choice"] == {"type": "function", "function": {"name": "City"}}


async def test_astructured_reasks_after_an_invalid_reply(mock: MockProvider) -> None:
    mock.reply('{"name": "Paris"}', input_tokens=10, output_tokens=5)  # no country: invalid
    mock.reply('{"name": "Paris", "country": "France"}', input_tokens=30, output_tokens=8)
    result = await one_shot("mock/m").astructured_result("The capital?", schema=City)
    assert result.value == City(name="Paris", country="France")
    assert len(result.attempts) == 2
    assert result.usage == Usage(input_tokens=40, output_tokens=13)
    assert len(mock.requests[1]["messages"]) > len(mock.requests[0]["messages"])  # the re-ask carries the error


def test_the_mock_needs_no_key_and_accepts_one(mock: MockProvider) -> None:
    mock.reply("a").reply("b")
    assert one_shot("mock/m").complete("q").text == "a"
    assert one_shot("mock/m", api_key="sk-anything").complete("q").text == "b"


def test_keyless_specs_send_a_placeholder_and_others_still_need_a_key() -> None:
    local = ProviderSpec(name="local", base_url="http://127.0.0.1:8000/v1", api_key_env="LOCAL_KEY", keyless=True)
    assert local.api_key() == KEYLESS_PLACEHOLDER
    assert local.api_key("given") == "given"
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        REGISTRY["openai"].api_key()


# --- the mock provider: failures ---------------------------------------------------------------


@pytest.mark.parametrize(("code", "error_type", "expected"), [
    (429, None, RateLimitError),
    (500, None, ServerError),
    (529, None, OverloadedError),
    (400, "context_length_exceeded", ContextWindowExceededError),
])
def test_fail_raises_the_typed_error(mock: MockProvider, code: int, error_type: str | None, expected: type[APIError]) -> None:
    mock.fail(code, error_type=error_type, message="told by the test")
    with pytest.raises(expected) as caught:
        one_shot("mock/m").complete(QUESTION)
    assert type(caught.value) is expected
    assert (caught.value.status_code, caught.value.message, caught.value.provider) == (code, "told by the test", "mock")


def test_fail_429_carries_retry_after(mock: MockProvider) -> None:
    mock.fail(429, retry_after=2.5)
    with pytest.raises(RateLimitError) as caught:
        one_shot("mock/m").complete(QUESTION)
    assert caught.value.retry_after == 2.5


@pytest.mark.parametrize("stream", [False, True])
def test_timeout_malformed_and_disconnect(mock: MockProvider, stream: bool) -> None:
    mock.timeout().malformed().disconnect().reply("still alive")
    client = one_shot("mock/m")

    def call() -> str:
        return client.stream(QUESTION).response.text if stream else client.complete(QUESTION).text

    for expected in (RequestTimeoutError, MalformedResponseError, APIConnectionError):
        with pytest.raises(expected):
            call()
    assert call() == "still alive"


async def test_async_failures(mock: MockProvider) -> None:
    mock.fail(503).timeout()
    client = one_shot("mock/m")
    with pytest.raises(ServerError):
        await client.acomplete(QUESTION)
    with pytest.raises(RequestTimeoutError):
        await client.acomplete(QUESTION)


def test_a_call_with_nothing_queued_says_to_queue_a_reply(mock: MockProvider) -> None:
    with pytest.raises(ConfigurationError, match=r"nothing queued .*mock\.reply\(") as caught:
        one_shot("mock/m").complete(QUESTION)
    assert not isinstance(caught.value, APIError)  # code that handles API errors must not swallow a test mistake
    assert len(mock.requests) == 1


def test_a_mock_call_outside_any_mock_provider_is_refused() -> None:
    with pytest.raises(ConfigurationError, match=r"no MockProvider active"):
        one_shot("mock/m").complete(QUESTION)


# --- the mock provider: lifetime, nesting, threads ---------------------------------------------


def test_unused_replies_fail_the_block() -> None:
    with pytest.raises(AssertionError, match=r"1 queued answer\(s\) were never requested: reply\('unused'\)"):
        with MockProvider() as mock:
            mock.reply("used").reply("unused")
            one_shot("mock/m").complete(QUESTION)


def test_unused_replies_are_allowed_when_asked_and_never_mask_an_error() -> None:
    with MockProvider(allow_unused=True) as mock:
        mock.reply("spare")
    assert mock.pending == 1
    with pytest.raises(ValueError, match="the test's own error"):
        with MockProvider() as mock:
            mock.reply("spare")
            raise ValueError("the test's own error")
    never_entered = MockProvider().fail(429).timeout()
    with pytest.raises(AssertionError, match=r"2 queued answer\(s\) were never requested: status\(429\), timeout\(\)"):
        never_entered.assert_all_used()


def test_the_innermost_mock_answers_and_the_outer_one_resumes(mock: MockProvider) -> None:
    mock.reply("outer")
    with MockProvider() as inner:
        inner.reply("inner")
        assert one_shot("mock/m").complete(QUESTION).text == "inner"
    assert one_shot("mock/m").complete(QUESTION).text == "outer"
    assert (len(inner.requests), len(mock.requests)) == (1, 1)


def test_threads_started_inside_the_block_are_served_each_reply_once(mock: MockProvider) -> None:
    answers = [f"answer {i}" for i in range(8)]
    for answer in answers:
        mock.reply(answer)
    client = one_shot("mock/m")
    results: list[str] = []
    threads = [threading.Thread(target=lambda: results.append(client.complete(QUESTION).text)) for _ in answers]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)
    assert sorted(results) == answers  # every thread got one, none got another's
    assert len(mock.requests) == 8


def test_bad_queue_arguments_are_refused_with_what_to_do(mock: MockProvider) -> None:
    with pytest.raises(ConfigurationError, match="list of text pieces"):
        mock.reply_stream("Paris")
    with pytest.raises(ConfigurationError, match="output_tokens must be an integer >= 0"):
        mock.reply("x", output_tokens=-1)
    with pytest.raises(ConfigurationError, match="at least one call"):
        mock.reply_tool_calls([])
    with pytest.raises(ConfigurationError, match=r"HTTP error code \(400-599\), got 200"):
        mock.fail(200)


# --- simulated faults in a real provider's replay ----------------------------------------------

REPLAYS = [  # (model, cassette, the recorded answer)
    ("openai/gpt-4o-mini", "cassettes/openai/text.yaml", "Paris."),
    ("anthropic/claude-sonnet-4-5", "cassettes/anthropic/text.yaml", "Paris"),
    ("gemini/gemini-2.5-flash", "cassettes/gemini/text.yaml", "Paris"),
]
FAULTS = [  # (fault, the error llmclient must raise, its status code)
    (status(429, retry_after=1), RateLimitError, 429),
    (status(503), ServerError, 503),
    (status(529), OverloadedError, 529),
    (timeout(), RequestTimeoutError, None),
    (malformed(), MalformedResponseError, None),
    (disconnect(), APIConnectionError, None),
]


@pytest.mark.parametrize(("fault", "expected", "code"), FAULTS, ids=[repr(f[0]) for f in FAULTS])
@pytest.mark.parametrize(("model", "cassette", "answer"), REPLAYS, ids=[r[0].split("/")[0] for r in REPLAYS])
def test_a_fault_replaces_one_call_then_the_replay_resumes(model: str, cassette: str, answer: str, fault: Fault,
                                                           expected: type[APIError], code: int | None) -> None:
    with use_cassette(REPO / cassette, mode="replay") as session, simulate_errors(fault) as simulator:
        client = one_shot(model)
        with pytest.raises(expected) as caught:
            client.complete(QUESTION)
        assert session.play_count == 0  # the fault was answered above the cassette
        assert client.complete(QUESTION).text == answer
    assert type(caught.value) is expected
    assert caught.value.status_code == code
    assert caught.value.retry_after == (1.0 if code == 429 else None)
    assert (session.play_count, session.all_played) == (1, True)
    assert simulator.pending == 0 and len(simulator.injected) == 1


def test_anthropic_529_is_overloaded_error_by_its_type_too() -> None:
    with use_cassette(REPO / "cassettes/anthropic/text.yaml", mode="replay"), simulate_errors(status(529)):
        client = one_shot("anthropic/claude-sonnet-4-5")
        with pytest.raises(OverloadedError) as caught:
            client.complete(QUESTION)
        client.complete(QUESTION)
    assert caught.value.error_type == "overloaded_error"


@pytest.mark.parametrize(("fault", "expected"), [(status(429, retry_after=3), RateLimitError),
                                                 (malformed(), MalformedResponseError),
                                                 (timeout(), RequestTimeoutError)])
def test_faults_in_a_streamed_replay(fault: Fault, expected: type[APIError]) -> None:
    with use_cassette(REPO / "tests/cassettes/openai/stream_text.yaml", mode="replay", strict=True) as session:
        with simulate_errors(fault):
            client = one_shot("openai/gpt-4o-mini")
            with pytest.raises(expected):
                client.stream("What is the capital of France? Answer in one sentence.").response
            stream = client.stream("What is the capital of France? Answer in one sentence.")
            assert stream.response.text == "The capital of France is Paris."
    assert session.play_count == 1


async def test_faults_in_an_async_replay() -> None:
    with use_cassette(REPO / "cassettes/openai/text.yaml", mode="replay") as session:
        with simulate_errors(status(429, retry_after=1), timeout()):
            async with one_shot("openai/gpt-4o-mini") as client:
                with pytest.raises(RateLimitError):
                    await client.acomplete(QUESTION)
                with pytest.raises(RequestTimeoutError):
                    await client.acomplete(QUESTION)
                assert (await client.acomplete(QUESTION)).text == "Paris."
    assert session.play_count == 1


def test_faults_for_one_provider_only_and_before_mock_replies(mock: MockProvider) -> None:
    mock.reply("mock answer")
    with use_cassette(REPO / "cassettes/openai/text.yaml", mode="replay") as session:
        with simulate_errors(status(503), provider="mock") as simulator:
            assert one_shot("openai/gpt-4o-mini").complete(QUESTION).text == "Paris."  # not the named provider
            with pytest.raises(ServerError):
                one_shot("mock/m").complete(QUESTION)  # the fault comes first: the reply stays queued
            assert one_shot("mock/m").complete(QUESTION).text == "mock answer"
    assert session.play_count == 1
    assert simulator.injected == ["mock POST http://mock.llmclient.invalid/v1/chat/completions"]


def test_each_retry_takes_the_next_fault_and_the_replay_answers_the_last() -> None:
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=3, sleep=waits.append)
    with use_cassette(REPO / "cassettes/openai/text.yaml", mode="replay", strict=True) as session:
        with simulate_errors(status(429, retry_after=1), status(503)):
            response = Client("openai/gpt-4o-mini", retry=policy).complete(QUESTION)
    assert response.text == "Paris."
    assert len(waits) == 2 and waits[0] == 1.0  # the simulated Retry-After is what the retry layer waited
    assert [(r.error, r.status_code) for r in response.retries] == [("RateLimitError", 429), ("ServerError", 503)]
    assert session.play_count == 1


def test_a_retrying_client_takes_one_queued_answer_per_attempt(mock: MockProvider) -> None:
    mock.fail(529).timeout().reply("third time lucky")
    policy = RetryPolicy(max_attempts=3, sleep=lambda seconds: None)
    assert Client("mock/m", retry=policy).complete(QUESTION).text == "third time lucky"
    assert len(mock.requests) == 3


def test_faults_come_before_mock_replies_whatever_the_nesting() -> None:
    with simulate_errors(status(503)), MockProvider() as inner_mock:
        inner_mock.reply("after the fault")
        with pytest.raises(ServerError):
            one_shot("mock/m").complete(QUESTION)
        assert one_shot("mock/m").complete(QUESTION).text == "after the fault"


def test_a_thread_started_inside_simulate_errors_gets_the_fault() -> None:
    caught: list[BaseException] = []

    def call() -> None:
        try:
            one_shot("openai/gpt-4o-mini").complete(QUESTION)
        except RateLimitError as exc:
            caught.append(exc)

    with use_cassette(REPO / "cassettes/openai/text.yaml", mode="replay"), simulate_errors(status(429)):
        thread = threading.Thread(target=call)
        thread.start()
        thread.join(timeout=60)
        assert one_shot("openai/gpt-4o-mini").complete(QUESTION).text == "Paris."
    assert [type(exc) for exc in caught] == [RateLimitError]


def test_unused_faults_fail_the_block_and_bad_arguments_are_refused() -> None:
    with pytest.raises(AssertionError, match=r"1 queued answer\(s\) were never requested: timeout\(\)"):
        with simulate_errors(timeout()):
            pass
    with simulate_errors(timeout(), allow_unused=True) as simulator:
        pass
    assert simulator.pending == 1
    with pytest.raises(ConfigurationError, match="at least one fault"):
        with simulate_errors():
            pass
    with pytest.raises(ConfigurationError, match="as separate arguments"):
        with simulate_errors([status(429)]):  # type: ignore[arg-type]
            pass
    with pytest.raises(ConfigurationError, match="no such provider; known: .*openai"):
        with simulate_errors(status(429), provider="open-ai"):
            pass


# --- the error bodies, in each provider's own format -------------------------------------------


def _fault_answer(fault: Fault, provider: str | ProviderSpec, *, stream: bool = False) -> httpx.Response:
    spec = provider if isinstance(provider, ProviderSpec) else REGISTRY[provider]
    request = httpx.Request("POST", f"{spec.base_url}/x", json={"model": "m", "stream": stream})
    return fault.respond(request, spec)


def test_error_bodies_follow_each_wire_format() -> None:
    rate_limited = status(429, retry_after=1, message="slow down")
    openai = _fault_answer(rate_limited, "openai")
    assert json.loads(openai.content) == {"error": {"message": "slow down", "type": "requests", "param": None,
                                                    "code": "rate_limit_exceeded"}}
    assert openai.headers["retry-after"] == "1"
    anthropic = _fault_answer(rate_limited, "anthropic")
    assert json.loads(anthropic.content)["type"] == "error"
    assert json.loads(anthropic.content)["error"] == {"type": "rate_limit_error", "message": "slow down"}
    assert anthropic.headers["retry-after"] == "1"
    gemini = _fault_answer(rate_limited, "gemini")
    assert json.loads(gemini.content) == {"error": {
        "code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED",
        "details": [{"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "1s"}]}}
    assert "retry-after" not in gemini.headers  # Gemini gives the wait in the body only
    cohere = ProviderSpec(name="co", base_url="https://api.cohere.com", api_key_env="CO_API_KEY",
                          wire="cohere")
    assert json.loads(_fault_answer(status(500, message="boom"), cohere).content)["message"] == "boom"


@pytest.mark.parametrize(("code", "anthropic_type", "gemini_status"), [
    (529, "overloaded_error", "UNAVAILABLE"),
    (503, "api_error", "UNAVAILABLE"),
    (500, "api_error", "INTERNAL"),
    (404, "not_found_error", "NOT_FOUND"),
])
def test_error_types_by_status(code: int, anthropic_type: str, gemini_status: str) -> None:
    assert json.loads(_fault_answer(status(code), "anthropic").content)["error"]["type"] == anthropic_type
    assert json.loads(_fault_answer(status(code), "gemini").content)["error"]["status"] == gemini_status
    assert _fault_answer(status(code), "openai").status_code == code


def test_malformed_breaks_the_json_of_a_body_or_of_a_stream_event() -> None:
    whole = _fault_answer(malformed(), "openai")
    assert (whole.status_code, whole.headers["content-type"]) == (200, "application/json")
    with pytest.raises(ValueError):
        json.loads(whole.content)
    streamed = _fault_answer(malformed(), "anthropic", stream=True)
    assert streamed.headers["content-type"] == "text/event-stream"
    assert streamed.content.startswith(b"data: {")


def test_importing_llmclient_installs_no_hook_and_testing_installs_it() -> None:
    code = ("import llmclient.transport as b; assert b.interceptor is None; import sys; "
            "assert 'llmclient.testing' not in sys.modules; import llmclient.testing; assert b.interceptor is not None")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=120)
