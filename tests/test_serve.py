"""`llmclient serve` against the mock provider, driven by the real OpenAI SDK over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from llmclient import pricing
from llmclient.config import reset_config
from llmclient.serve import create_app
from llmclient.testing import MockProvider
from tests.serve_helpers import Running, running

USER = [{"role": "user", "content": "Capital of France?"}]
WEATHER = {"type": "function", "function": {"name": "get_weather", "description": "The weather in a city",
                                            "parameters": {"type": "object", "properties": {"city": {"type": "string"}},
                                                           "required": ["city"]}}}


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as double:
        yield double


@pytest.fixture
def server(mock: MockProvider) -> Iterator[Running]:
    with running(create_app()) as srv:
        yield srv


def _config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, text: str) -> None:
    path = tmp_path / "llmclient.toml"
    path.write_text(text)
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(path))
    reset_config()


def test_sync_completion_usage_and_headers(mock: MockProvider, server: Running) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=3, cache_read_tokens=4, reasoning_tokens=1)
    raw = server.sdk().chat.completions.with_raw_response.create(model="mock/m", messages=USER, temperature=0.2,
                                                                  max_tokens=20, stop=["\n"])
    completion = raw.parse()
    assert completion.choices[0].message.content == "Paris."
    assert completion.choices[0].finish_reason == "stop"
    usage = completion.usage
    assert usage is not None
    assert (usage.prompt_tokens, usage.completion_tokens, usage.total_tokens) == (12, 3, 15)
    assert usage.prompt_tokens_details is not None and usage.prompt_tokens_details.cached_tokens == 4
    assert usage.completion_tokens_details is not None and usage.completion_tokens_details.reasoning_tokens == 1
    assert raw.headers["x-llmclient-model"] == "mock/m"
    assert "x-llmclient-cost-usd" not in raw.headers  # no price for mock/m: unknown, not $0
    sent = mock.requests[0]
    assert sent["messages"] == USER and sent["temperature"] == 0.2 and sent["stop"] == ["\n"]


def test_cost_header_is_the_exact_price_table_cost(mock: MockProvider, server: Running) -> None:
    pricing.set_price("mock/priced", input="0.0000025", output="0.00001")
    mock.reply("Paris.", input_tokens=1000, output_tokens=7)
    raw = server.sdk().chat.completions.with_raw_response.create(model="mock/priced", messages=USER)
    expected = Decimal(1000) * Decimal("0.0000025") + Decimal(7) * Decimal("0.00001")  # 0.00257
    assert Decimal(raw.headers["x-llmclient-cost-usd"]) == expected
    assert raw.headers["x-llmclient-cost-usd"] == "0.00257"
    assert json.loads(raw.text)["usage"]["cost"] == pytest.approx(0.00257)


def test_async_completion(mock: MockProvider, server: Running) -> None:
    mock.reply("Paris.")
    mock.reply("Rome.")

    async def main() -> list[str | None]:
        sdk = server.async_sdk()
        answers = [await sdk.chat.completions.create(model="mock/m", messages=USER) for _ in range(2)]
        await sdk.close()
        return [answer.choices[0].message.content for answer in answers]

    assert asyncio.run(main()) == ["Paris.", "Rome."]


def test_stream_text_deltas_then_usage_with_cost(mock: MockProvider, server: Running) -> None:
    pricing.set_price("mock/priced", input="0.000001", output="0.000002")
    mock.reply_stream(["Pa", "ri", "s."], input_tokens=10, output_tokens=3)
    with server.sdk().chat.completions.with_streaming_response.create(
            model="mock/priced", messages=USER, stream=True, stream_options={"include_usage": True}) as raw:
        assert raw.headers["x-llmclient-model"] == "mock/priced"
        assert "x-llmclient-cost-usd" not in raw.headers  # known only at the end: in the usage chunk
        chunks = list(raw.parse())
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "Paris."
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "stop"
    last = chunks[-1]
    assert last.choices == [] and last.usage is not None
    assert (last.usage.prompt_tokens, last.usage.completion_tokens, last.usage.total_tokens) == (10, 3, 13)
    assert Decimal(str(last.usage.model_extra["cost"])) == Decimal("0.000016")  # type: ignore[index]


def test_stream_without_include_usage_has_no_usage_chunk(mock: MockProvider, server: Running) -> None:
    mock.reply_stream(["a", "b"])
    chunks = list(server.sdk().chat.completions.create(model="mock/m", messages=USER, stream=True))
    assert all(chunk.choices for chunk in chunks) and all(chunk.usage is None for chunk in chunks)
    assert "".join(c.choices[0].delta.content or "" for c in chunks) == "ab"


def test_tool_call_out_and_result_in(mock: MockProvider, server: Running) -> None:
    mock.reply_tool_call("get_weather", {"city": "Paris"}, id="call_1")
    first = server.sdk().chat.completions.create(model="mock/m", messages=[{"role": "user", "content": "Weather?"}],
                                                 tools=[WEATHER], tool_choice="auto")  # type: ignore[list-item]
    call = first.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert first.choices[0].finish_reason == "tool_calls"
    assert (call.id, call.function.name, json.loads(call.function.arguments)) == ("call_1", "get_weather", {"city": "Paris"})  # type: ignore[union-attr]
    mock.reply("Sunny in Paris.")
    messages = [{"role": "user", "content": "Weather?"}, first.choices[0].message.model_dump(exclude_none=True),
                {"role": "tool", "tool_call_id": "call_1", "content": '{"sky": "sunny"}'}]
    second = server.sdk().chat.completions.create(model="mock/m", messages=messages, tools=[WEATHER])  # type: ignore[arg-type,list-item]
    assert second.choices[0].message.content == "Sunny in Paris."
    sent = mock.requests[1]["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city": "Paris"}'}
    assert sent[2] == {"role": "tool", "content": '{"sky": "sunny"}', "tool_call_id": "call_1"}
    assert mock.requests[0]["tool_choice"] == "auto"


def test_streamed_tool_call(mock: MockProvider, server: Running) -> None:
    mock.reply_tool_call("get_weather", {"city": "Paris"}, id="call_9")
    chunks = list(server.sdk().chat.completions.create(model="mock/m", messages=USER, tools=[WEATHER], stream=True))  # type: ignore[list-item]
    calls = [call for c in chunks if c.choices for call in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_9" and calls[0].function.name == "get_weather"  # type: ignore[union-attr]
    assert json.loads("".join(call.function.arguments or "" for call in calls)) == {"city": "Paris"}  # type: ignore[union-attr]


def test_image_part_reaches_the_provider(mock: MockProvider, server: Running) -> None:
    png = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\x00" * 32).decode()
    mock.reply("Red.")
    content = [{"type": "text", "text": "Colour?"}, {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}]
    answer = server.sdk().chat.completions.create(model="mock/m", messages=[{"role": "user", "content": content}])  # type: ignore[misc,list-item]
    assert answer.choices[0].message.content == "Red."
    assert mock.requests[0]["messages"][0]["content"][1] == {"type": "image_url", "image_url": {"url": f"data:image/png;base64,{png}"}}


def test_response_format_json_schema(mock: MockProvider, server: Running) -> None:
    schema = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
    mock.reply('{"city": "Paris"}')
    answer = server.sdk().chat.completions.create(
        model="mock/m", messages=USER, response_format={"type": "json_schema", "json_schema": {"name": "City", "schema": schema}})
    assert json.loads(answer.choices[0].message.content or "") == {"city": "Paris"}
    assert mock.requests[0]["response_format"] == {"type": "json_schema", "json_schema": {"name": "City", "schema": schema}}


@pytest.mark.parametrize(("status", "error_type", "want", "code"), [
    (400, None, 400, None), (401, None, 401, "invalid_api_key"), (404, None, 404, "model_not_found"),
    (400, "context_length_exceeded", 400, "context_length_exceeded"), (500, None, 502, "server_error"),
])
def test_provider_errors_map_to_openai_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock: MockProvider,
                                              status: int, error_type: str | None, want: int, code: str | None) -> None:
    _config(tmp_path, monkeypatch, "[retry]\nmax_attempts = 1\n")
    mock.fail(status, error_type=error_type, message="upstream said no")
    with running(create_app()) as srv:
        with pytest.raises(openai.APIStatusError) as caught:
            srv.sdk().chat.completions.create(model="mock/m", messages=USER)
        assert caught.value.status_code == want
        error = caught.value.body
        assert isinstance(error, dict) and "upstream said no" in error["message"]
        assert set(error) == {"message", "type", "param", "code"}
        if code is not None:
            assert error["code"] == code


def test_rate_limit_is_429_with_retry_after_and_timeout_is_504(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               mock: MockProvider) -> None:
    _config(tmp_path, monkeypatch, "[retry]\nmax_attempts = 1\n")
    mock.fail(429, retry_after=7)
    mock.timeout()
    with running(create_app()) as srv:
        raw = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "mock/m", "messages": USER}, timeout=30)
        assert raw.status_code == 429 and raw.headers["retry-after"] == "7"
        assert raw.json()["error"]["code"] == "rate_limit_exceeded"
        raw = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "mock/m", "messages": USER}, timeout=30)
        assert raw.status_code == 504 and raw.json()["error"]["type"] == "timeout"


def test_model_header_names_the_fallback_that_answered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                       mock: MockProvider) -> None:
    _config(tmp_path, monkeypatch, '[profiles.main]\nmodel = "mock/primary"\nfallbacks = ["mock/backup"]\n'
                                   'retry = { max_attempts = 1 }\n')
    mock.fail(503)
    mock.reply("From the backup.")
    mock.fail(503)
    mock.reply_stream(["From ", "the backup."])
    with running(create_app()) as srv:
        raw = srv.sdk().chat.completions.with_raw_response.create(model="main", messages=USER)
        assert raw.headers["x-llmclient-model"] == "mock/backup"
        assert raw.parse().choices[0].message.content == "From the backup."
        with srv.sdk().chat.completions.with_streaming_response.create(model="main", messages=USER, stream=True) as streamed:
            assert streamed.headers["x-llmclient-model"] == "mock/backup"
            assert "".join(c.choices[0].delta.content or "" for c in streamed.parse() if c.choices) == "From the backup."
    assert [body["model"] for body in mock.requests] == ["primary", "backup", "primary", "backup"]


def test_models_lists_profiles_aliases_and_models(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    _config(tmp_path, monkeypatch, '[profiles.fast]\nmodel = "mock/a"\nfallbacks = ["mock/b"]\n'
                                   '[aliases]\nquick = "fast"\n')
    with running(create_app()) as srv:
        listed = {model.id: model for model in srv.sdk().models.list()}
    assert {"fast", "quick", "mock/a", "mock/b"} <= set(listed)
    assert listed["quick"].model_extra["llmclient"] == {"kind": "alias", "resolves_to": "mock/a"}  # type: ignore[index]
    assert listed["fast"].owned_by == "mock"


def _good(srv: Running, mock: MockProvider, headers: dict[str, str] | None = None) -> None:
    mock.reply("still serving")
    answer = httpx.post(f"{srv.base_url}/chat/completions", json={"model": "mock/m", "messages": USER},
                        headers=headers or {}, timeout=30)
    assert answer.status_code == 200 and answer.json()["choices"][0]["message"]["content"] == "still serving"


def _error(answer: httpx.Response, status: int) -> dict[str, object]:
    assert answer.status_code == status, answer.text
    error = answer.json()["error"]
    assert set(error) == {"message", "type", "param", "code"}
    return error  # type: ignore[no-any-return]


def test_bad_input_gets_openai_errors_and_the_server_keeps_serving(mock: MockProvider) -> None:
    with running(create_app(max_body_bytes=10_000)) as srv:
        url = f"{srv.base_url}/chat/completions"
        assert _error(httpx.post(url, content=b'{"model": "mock/m", "messages": [', timeout=30), 400)["code"] == "invalid_json"
        _good(srv, mock)
        assert _error(httpx.post(url, json={"model": "mock/m"}, timeout=30), 400)["param"] == "messages"
        _good(srv, mock)
        for model in ("nope/x", "no-such-profile"):
            assert _error(httpx.post(url, json={"model": model, "messages": USER}, timeout=30), 404)["code"] == "model_not_found"
        _good(srv, mock)
        big = json.dumps({"model": "mock/m", "messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
        assert _error(httpx.post(url, content=big, timeout=30), 413)["code"] == "request_too_large"
        _good(srv, mock)

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
            for start in range(0, len(big), 1000):
                yield big[start:start + 1000]

        assert _error(httpx.post(url, content=chunked(), timeout=30), 413)["code"] == "request_too_large"
        _good(srv, mock)
        unsupported = {"model": "mock/m", "messages": USER, "functions": [{"name": "f"}]}
        assert _error(httpx.post(url, json=unsupported, timeout=30), 400)["param"] == "functions"
        detail = {"model": "mock/m", "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA", "detail": "high"}}]}]}
        assert _error(httpx.post(url, json=detail, timeout=30), 400)["param"] == "messages[0].content[0].image_url.detail"
        assert _error(httpx.post(url, json={"model": "mock/m", "messages": USER, "temperature": -1}, timeout=30), 400)
        assert _error(httpx.get(f"{srv.base_url}/nothing-here", timeout=30), 404)["code"] == "not_found"
        _good(srv, mock)


def test_server_key_is_required_and_not_forwarded(monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    monkeypatch.setenv("LLMCLIENT_SERVER_KEY", "sk-server-0123456789")
    with running(create_app()) as srv:
        url = f"{srv.base_url}/chat/completions"
        body = {"model": "mock/m", "messages": USER}
        assert _error(httpx.post(url, json=body, timeout=30), 401)["code"] == "invalid_api_key"
        _error(httpx.post(url, json=body, headers={"authorization": "Bearer wrong"}, timeout=30), 401)
        _error(httpx.get(f"{srv.base_url}/models", timeout=30), 401)
        with pytest.raises(openai.AuthenticationError):
            srv.sdk(api_key="sk-wrong").chat.completions.create(model="mock/m", messages=USER)  # type: ignore[arg-type]
        _good(srv, mock, {"authorization": "Bearer sk-server-0123456789"})
        mock.reply("ok")
        answer = srv.sdk(api_key="sk-server-0123456789").chat.completions.create(model="mock/m", messages=USER)  # type: ignore[arg-type]
        assert answer.choices[0].message.content == "ok"
    assert "sk-server-0123456789" not in json.dumps(mock.requests)


def test_two_hundred_concurrent_streams(mock: MockProvider, server: Running) -> None:
    for index in range(200):
        mock.reply_stream([f"answer {index}", " done"], input_tokens=5, output_tokens=2)

    async def one(sdk: openai.AsyncOpenAI) -> tuple[str, int]:
        stream = await sdk.chat.completions.create(model="mock/m", messages=USER, stream=True,  # type: ignore[arg-type]
                                                   stream_options={"include_usage": True})
        text, total = "", 0
        async for chunk in stream:
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""
            if chunk.usage is not None:
                total = chunk.usage.total_tokens
        return text, total

    async def main() -> list[tuple[str, int] | BaseException]:
        sdk = server.async_sdk(http_client=openai.DefaultAsyncHttpxClient(
            limits=httpx.Limits(max_connections=200, max_keepalive_connections=200)))
        try:
            return await asyncio.gather(*(one(sdk) for _ in range(200)), return_exceptions=True)
        finally:
            await sdk.close()

    results = asyncio.run(main())
    errors = [result for result in results if isinstance(result, BaseException)]
    assert errors == []
    texts = sorted(result[0] for result in results if not isinstance(result, BaseException))
    assert texts == sorted(f"answer {index} done" for index in range(200))
    assert all(result[1] == 7 for result in results if not isinstance(result, BaseException))
