"""`llmclient serve` against the mock provider, driven by the real OpenAI SDK over loopback."""

from __future__ import annotations

import asyncio
import base64
import json
from collections.abc import AsyncIterator, Iterator
from decimal import Decimal
from pathlib import Path

import httpx
import openai
import pytest

from llmclient import pricing, transport
from llmclient.client import Client
from llmclient.config import reset_config
from llmclient.errors import ConfigurationError
from llmclient.providers import ProviderSpec
from llmclient.serve import create_app
from llmclient.testing import MockProvider
from tests.serve_helpers import Running, running

USER = [{"role": "user", "content": "Capital of France?"}]
JSON = {"content-type": "application/json"}
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
    assert json.loads(raw.text, parse_float=Decimal)["usage"]["cost"] == Decimal("0.00257")  # the exact digits


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
        assert _error(httpx.post(url, content=b'{"model": "mock/m", "messages": [', headers=JSON, timeout=30),
                      400)["code"] == "invalid_json"
        _good(srv, mock)
        assert _error(httpx.post(url, json={"model": "mock/m"}, timeout=30), 400)["param"] == "messages"
        _good(srv, mock)
        for model in ("nope/x", "no-such-profile"):
            assert _error(httpx.post(url, json={"model": model, "messages": USER}, timeout=30), 404)["code"] == "model_not_found"
        _good(srv, mock)
        big = json.dumps({"model": "mock/m", "messages": [{"role": "user", "content": "x" * 20_000}]}).encode()
        assert _error(httpx.post(url, content=big, headers=JSON, timeout=30), 413)["code"] == "request_too_large"
        _good(srv, mock)

        def chunked() -> Iterator[bytes]:  # no Content-Length: counted while read
            for start in range(0, len(big), 1000):
                yield big[start:start + 1000]

        assert _error(httpx.post(url, content=chunked(), headers=JSON, timeout=30), 413)["code"] == "request_too_large"
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
    sent_headers: list[dict[str, str]] = []
    answer_with = transport.interceptor

    def recording(request: httpx.Request, spec: ProviderSpec) -> httpx.Response | None:
        sent_headers.append(dict(request.headers))
        return answer_with(request, spec) if answer_with is not None else None

    monkeypatch.setattr(transport, "interceptor", recording)
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
    assert len(sent_headers) == 2  # the two calls that got through
    assert all("sk-server-0123456789" not in f"{name}: {value}" for headers in sent_headers for name, value in headers.items())


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


PNG = b"\x89PNG\r\n\x1a\n" + b"\x00" * 32


@pytest.fixture
def listener() -> Iterator[tuple[str, list[str]]]:
    """A loopback HTTP server standing for an internal address: (its URL, the paths it was asked for)."""
    import http.server
    import threading

    asked: list[str] = []

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            asked.append(self.path)
            self.send_response(200)
            self.send_header("content-type", "image/png")
            self.send_header("content-length", str(len(PNG)))
            self.end_headers()
            self.wfile.write(PNG)

        def log_message(self, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", asked
    finally:
        httpd.shutdown()
        httpd.server_close()


def _image_body(url: str) -> dict[str, object]:
    return {"model": "mock/m", "messages": [{"role": "user", "content": [
        {"type": "text", "text": "Colour?"}, {"type": "image_url", "image_url": {"url": url}}]}]}


def test_http_image_urls_are_refused_unless_the_server_fetches_urls(mock: MockProvider, listener: tuple[str, list[str]]) -> None:
    base, asked = listener
    with running(create_app()) as srv:
        answer = httpx.post(f"{srv.base_url}/chat/completions", json=_image_body(f"{base}/internal/secret.png"), timeout=30)
        error = _error(answer, 400)
        assert error["param"] == "messages[0].content[1].image_url.url" and "data: URL" in str(error["message"])
        _good(srv, mock)
    assert asked == [] and len(mock.requests) == 1  # nothing fetched, nothing sent but the good call
    with running(create_app(fetch_urls=True)) as srv:  # the opt-in (a provider that cannot fetch it: the server does)
        mock.reply("Black.")
        answer = httpx.post(f"{srv.base_url}/chat/completions", json=_image_body(f"{base}/public/cat.png"), timeout=30)
        assert answer.status_code == 200, answer.text
    assert mock.requests[-1]["messages"][0]["content"][1]["image_url"]["url"] == f"{base}/public/cat.png"  # the mock reads URLs
    with pytest.raises(ConfigurationError, match="--fetch-urls"):
        create_app(fetch_urls=True, replay=Path(__file__).resolve().parent.parent / "cassettes")


def test_cross_site_requests_and_foreign_hosts_are_refused(mock: MockProvider, server: Running) -> None:
    url = f"{server.base_url}/chat/completions"
    body = json.dumps({"model": "mock/m", "messages": USER})
    for content_type in ("text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", None):
        headers = {} if content_type is None else {"content-type": content_type}
        assert _error(httpx.post(url, content=body, headers=headers, timeout=30), 415)["code"] == "unsupported_media_type"
    assert mock.requests == []  # none of them reached a provider
    mock.reply("fine")
    ok = httpx.post(url, content=body, headers={"content-type": "Application/JSON; charset=utf-8"}, timeout=30)
    assert ok.status_code == 200
    preflight = httpx.options(url, headers={"origin": "https://evil.example", "access-control-request-method": "POST",
                                            "access-control-request-headers": "content-type"}, timeout=30)
    assert preflight.status_code >= 400 and "access-control-allow-origin" not in preflight.headers
    foreign = {"host": f"evil.example:{server.port}"}  # DNS rebinding: the page's own name, resolved to 127.0.0.1
    assert _error(httpx.post(url, json={"model": "mock/m", "messages": USER}, headers=foreign, timeout=30), 400)["code"] == "invalid_host"
    assert _error(httpx.get(f"{server.base_url}/models", headers=foreign, timeout=30), 400)["code"] == "invalid_host"
    for host in (f"localhost:{server.port}", f"[::1]:{server.port}", "127.0.0.1"):
        _good(server, mock, {"host": host})


def test_a_non_loopback_host_needs_a_server_key(monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    from llmclient.cli import main

    monkeypatch.delenv("LLMCLIENT_SERVER_KEY", raising=False)
    for host in ("0.0.0.0", "192.168.1.5", "::"):
        with pytest.raises(ConfigurationError, match="LLMCLIENT_SERVER_KEY"):
            create_app(host=host)
    assert main(["serve", "--host", "0.0.0.0", "--port", "0"]) == 2  # refused before anything is bound
    create_app(host="127.0.0.2")  # loopback: no key needed
    key = {"authorization": "Bearer sk-server-0123456789"}
    with running(create_app(host="192.168.1.5", server_key="sk-server-0123456789")) as srv:
        _good(srv, mock, {**key, "host": f"192.168.1.5:{srv.port}"})  # the address it was started on
        _good(srv, mock, key)
        foreign = httpx.get(f"{srv.base_url}/models", headers={**key, "host": "evil.example"}, timeout=30)
        assert _error(foreign, 400)["code"] == "invalid_host"


def test_other_finish_reason_is_stop_with_the_raw_reason(mock: MockProvider, server: Running) -> None:
    mock.reply("Cut.", finish="provider_specific_reason")
    choice = server.sdk().chat.completions.create(model="mock/m", messages=USER).choices[0]  # type: ignore[arg-type]
    assert choice.finish_reason == "stop"
    assert choice.model_extra == {"llmclient": {"finish_reason": "other", "raw_finish_reason": "provider_specific_reason"}}
    mock.reply_stream(["Cut", "."], finish="provider_specific_reason")
    chunks = list(server.sdk().chat.completions.create(model="mock/m", messages=USER, stream=True))  # type: ignore[arg-type]
    last = [c.choices[0] for c in chunks if c.choices][-1]
    assert last.finish_reason == "stop"
    assert last.model_extra == {"llmclient": {"finish_reason": "other", "raw_finish_reason": "provider_specific_reason"}}
    mock.reply("Done.")
    plain = server.sdk().chat.completions.create(model="mock/m", messages=USER).choices[0]  # type: ignore[arg-type]
    assert plain.finish_reason == "stop" and not plain.model_extra  # no extension when nothing was mapped


def test_the_client_cache_is_bounded_and_evicted_clients_are_closed(monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    closed: list[str] = []
    real_aclose = Client.aclose

    async def recording(self: Client) -> None:
        closed.append(self.model)
        await real_aclose(self)

    monkeypatch.setattr(Client, "aclose", recording)
    app = create_app(max_clients=2)
    with running(app) as srv:
        for name in ("a", "b", "a", "c"):  # "a" used again: "b" is the least recent
            mock.reply("hi")
            srv.sdk().chat.completions.create(model=f"mock/{name}", messages=USER)  # type: ignore[arg-type]
        assert len(app.state.llmclient.clients) == 2 and closed == ["mock/b"]
    assert sorted(closed) == ["mock/a", "mock/b", "mock/c"]  # the rest at shutdown

    from llmclient.serve.app import _Clients

    async def held_while_evicted() -> list[str]:
        clients = _Clients(1)
        first = await clients.acquire("mock/x")  # a request (a stream, say) still uses it ...
        second = await clients.acquire("mock/y")  # ... when it is evicted: not closed under it
        assert closed[3:] == []
        await clients.release(first)  # its last user is done: closed now
        await clients.release(second)
        return closed[3:]

    assert asyncio.run(held_while_evicted()) == ["mock/x"]


def test_stream_options_include_obfuscation_is_accepted(mock: MockProvider, server: Running) -> None:
    mock.reply_stream(["a", "b"])
    chunks = list(server.sdk().chat.completions.create(model="mock/m", messages=USER, stream=True,  # type: ignore[arg-type]
                                                       stream_options={"include_usage": True, "include_obfuscation": False}))
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "ab"
    assert chunks[-1].usage is not None


def test_an_answer_holding_any_text_leaves_the_cost_exact(mock: MockProvider, server: Running) -> None:
    pricing.set_price("mock/priced", input="0.0000025", output="0.00001")
    tricky = "\u0000llmclient-cost\u0000"  # the placeholder the cost used to be spliced in by
    mock.reply(tricky, input_tokens=1000, output_tokens=7)
    raw = server.sdk().chat.completions.with_raw_response.create(model="mock/priced", messages=USER)  # type: ignore[arg-type]
    document = json.loads(raw.text, parse_float=Decimal)
    assert document["choices"][0]["message"]["content"] == tricky
    assert document["usage"]["cost"] == Decimal("0.00257")
    mock.reply_stream([tricky], input_tokens=1000, output_tokens=7)
    with httpx.stream("POST", f"{server.base_url}/chat/completions", timeout=30, json={
            "model": "mock/priced", "messages": USER, "stream": True, "stream_options": {"include_usage": True}}) as answer:
        events = [json.loads(line[6:], parse_float=Decimal) for line in answer.iter_lines()
                  if line.startswith("data: {")]
    assert "".join(e["choices"][0]["delta"].get("content") or "" for e in events if e["choices"]) == tricky
    assert events[-1]["usage"]["cost"] == Decimal("0.00257")


class _CutStream(httpx.AsyncByteStream):
    """An SSE body that breaks off after its first event, as a dropped connection does."""

    async def __aiter__(self) -> AsyncIterator[bytes]:
        chunk = {"id": "cut", "object": "chat.completion.chunk", "created": 0, "model": "m",
                 "choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}, "finish_reason": None}]}
        yield f"data: {json.dumps(chunk)}\n\n".encode()
        raise httpx.RemoteProtocolError("peer closed connection without sending complete message body")


def test_an_error_after_the_stream_started_is_an_error_event_without_done(monkeypatch: pytest.MonkeyPatch,
                                                                         mock: MockProvider, server: Running) -> None:
    answer_with = transport.interceptor

    def cut(request: httpx.Request, spec: ProviderSpec) -> httpx.Response | None:
        if spec.name == "mock" and json.loads(request.read()).get("stream"):
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_CutStream(), request=request)
        return answer_with(request, spec) if answer_with is not None else None

    monkeypatch.setattr(transport, "interceptor", cut)
    with httpx.stream("POST", f"{server.base_url}/chat/completions", timeout=30,
                      json={"model": "mock/m", "messages": USER, "stream": True}) as answer:
        assert answer.status_code == 200  # the status line went out with the first event
        lines = [line for line in answer.iter_lines() if line.startswith("data: ")]
    assert json.loads(lines[-2][6:])["choices"][0]["delta"]["content"] == "Hel"
    error = json.loads(lines[-1][6:])["error"]
    assert set(error) == {"message", "type", "param", "code"} and error["type"] == "upstream_error"
    assert "data: [DONE]" not in lines
    received = ""
    with pytest.raises(openai.APIError) as caught:
        for chunk in server.sdk().chat.completions.create(model="mock/m", messages=USER, stream=True):  # type: ignore[arg-type]
            received += chunk.choices[0].delta.content or "" if chunk.choices else ""
    assert received == "Hel" and caught.value.body is not None
    _good(server, mock)


def test_a_client_closing_a_stream_early_leaves_the_server_serving(mock: MockProvider) -> None:
    import time

    app = create_app()
    with running(app) as server:
        mock.reply_stream([f"piece {i} " for i in range(500)])
        with httpx.stream("POST", f"{server.base_url}/chat/completions", timeout=30,
                          json={"model": "mock/m", "messages": USER, "stream": True}) as answer:
            first = next(answer.iter_lines())
            assert first.startswith("data: {")
        # closed after one event: the server's stream ends, and the Client it held is released
        deadline = time.monotonic() + 10
        while app.state.llmclient.clients.in_use() and time.monotonic() < deadline:
            time.sleep(0.02)
        assert app.state.llmclient.clients.in_use() == 0
        _good(server, mock)
        mock.reply_stream(["still ", "streaming"])
        chunks = list(server.sdk().chat.completions.create(model="mock/m", messages=USER, stream=True))  # type: ignore[arg-type]
        assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == "still streaming"
