"""`llmclient serve` given what a careless or hostile client sends (wrong JSON types, deep nesting,
model ids no HTTP header can hold) and failing inside: every answer is the OpenAI-shaped one, the
Client and upstream stream are released, and the CLI server's log shows what went wrong."""

from __future__ import annotations

import json
import logging
import time
import urllib.parse
from typing import Any

import httpx
import pytest

from llmclient.serve import app as app_module
from llmclient.serve import create_app
from llmclient.streaming import AsyncStream
from llmclient.testing import MockProvider
from tests import test_serve
from tests.serve_helpers import Running, running
from tests.test_serve import JSON, USER, _error, _good

mock = test_serve.mock  # the serve tests' fixtures: the mock provider, and the app on a loopback port
server = test_serve.server


def _chat(srv: Running, body: dict[str, Any]) -> httpx.Response:
    return httpx.post(f"{srv.base_url}/chat/completions", json=body, timeout=30)


@pytest.mark.parametrize("role", [["user"], {"role": "user"}, 1, True, 1.5])
def test_a_role_that_is_not_a_string_is_400_naming_it(mock: MockProvider, server: Running, role: object) -> None:
    error = _error(_chat(server, {"model": "mock/m", "messages": [{"role": role, "content": "x"}]}), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", "messages[0].role")
    later = [USER[0], {"role": role, "content": "x"}]
    assert _error(_chat(server, {"model": "mock/m", "messages": later, "stream": True}), 400)["param"] == "messages[1].role"
    assert mock.requests == []
    _good(server, mock)


@pytest.mark.parametrize("nested", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 100_000 + b"1" + b"}" * 100_000])
def test_deeply_nested_json_is_400_invalid_json(mock: MockProvider, server: Running, nested: bytes) -> None:
    answer = httpx.post(f"{server.base_url}/chat/completions", content=nested, headers=JSON, timeout=30)
    error = _error(answer, 400)
    assert (error["type"], error["code"]) == ("invalid_request_error", "invalid_json")
    assert "nested" in str(error["message"])
    _good(server, mock)


def test_json_within_the_parser_but_nested_deeper_than_any_chat_body_is_400(mock: MockProvider,
                                                                              server: Running) -> None:
    def nested(depth: int) -> str:
        return "[" * depth + "1" + "]" * depth

    url = f"{server.base_url}/chat/completions"
    deep = f'{{"model": "mock/m", "messages": {json.dumps(USER)}, "metadata": {{"k": {nested(950)}}}}}'
    answer = httpx.post(url, content=deep.encode(), headers=JSON, timeout=30)  # `json` reads it; later walks recurse
    assert _error(answer, 400)["code"] == "invalid_json"
    for arguments in (nested(5000), f'{{"a": {nested(150)}}}'):
        call = {"id": "c1", "type": "function", "function": {"name": "f", "arguments": arguments}}
        body = {"model": "mock/m", "messages": [{"role": "assistant", "content": "", "tool_calls": [call]}]}
        assert _error(_chat(server, body), 400)["param"] == "messages[0].tool_calls[0].function.arguments"
    assert mock.requests == []
    mock.reply("fine")
    schema = {"type": "object", "properties": {"a": {"default": json.loads(nested(60))}}}  # as deep as a body may be
    tool = {"type": "function", "function": {"name": "f", "parameters": schema}}
    assert _chat(server, {"model": "mock/m", "messages": USER, "tools": [tool]}).status_code == 200


@pytest.mark.parametrize(("model", "header"), [
    ("mock/模型", "mock/%E6%A8%A1%E5%9E%8B"),  # UTF-8, percent-encoded (RFC 3986)
    ("mock/modèle", "mock/mod%C3%A8le"),  # Latin-1 would fit, but clients read header bytes as ASCII or UTF-8
    ("mock/a\nb", "mock/a%0Ab"),  # a line break would split the header
    ("mock/100%", "mock/100%25"),  # "%" itself, so that decoding is unambiguous
])
def test_a_model_id_no_header_can_hold_is_answered_with_it_percent_encoded(mock: MockProvider, model: str,
                                                                           header: str) -> None:
    app = create_app()
    with running(app) as srv:
        mock.reply("ok")
        answer = _chat(srv, {"model": model, "messages": USER})
        assert answer.status_code == 200, answer.text
        assert answer.headers["x-llmclient-model"] == header
        assert urllib.parse.unquote(answer.headers["x-llmclient-model"]) == model  # the id the upstream echoed
        assert answer.json()["model"] == model and answer.json()["choices"][0]["message"]["content"] == "ok"
        mock.reply_stream(["o", "k"])
        with httpx.stream("POST", f"{srv.base_url}/chat/completions", timeout=30,
                          json={"model": model, "messages": USER, "stream": True}) as streamed:
            assert streamed.status_code == 200
            assert streamed.headers["x-llmclient-model"] == header
            lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        _released(app)


def test_a_stream_that_fails_before_its_answer_is_built_releases_the_client_and_closes(
        monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    closed: list[str] = []
    real_aclose = AsyncStream.aclose

    async def recording(self: AsyncStream) -> None:
        closed.append(self.answered_by)
        await real_aclose(self)

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("building the streamed answer failed (forced by the test)")

    monkeypatch.setattr(AsyncStream, "aclose", recording)
    monkeypatch.setattr(app_module, "StreamingResponse", broken)
    app = create_app()
    with running(app) as srv:
        mock.reply_stream(["never ", "sent"])
        error = _error(_chat(srv, {"model": "mock/m", "messages": USER, "stream": True}), 500)
        assert error["code"] == "internal_error"
        _released(app)
        assert closed == ["mock/m"]  # the upstream stream, opened by the first event, is closed
        _good(srv, mock)


def _released(app: Any) -> None:
    """Every Client the app lent is back (a stream's is given back just after its last byte)."""
    deadline = time.monotonic() + 10
    while app.state.llmclient.clients.in_use() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert app.state.llmclient.clients.in_use() == 0


def test_response_format_text_is_the_default_and_sends_none(mock: MockProvider, server: Running) -> None:
    mock.reply("plain")
    answer = server.sdk().chat.completions.create(model="mock/m", messages=[{"role": "user", "content": "Hi"}],
                                                  response_format={"type": "text"})  # the SDK's ResponseFormatText
    assert answer.choices[0].message.content == "plain"
    assert "response_format" not in mock.requests[0]  # as if it were not given: text is every provider's default
    refused = _chat(server, {"model": "mock/m", "messages": USER, "response_format": {"type": "text", "schema": {}}})
    assert _error(refused, 400)["param"] == "response_format"
    for wrong in ("text", ["text"], {"type": ["text"]}):
        assert _error(_chat(server, {"model": "mock/m", "messages": USER, "response_format": wrong}), 400)


@pytest.mark.parametrize("n", [True, False, 1.0, "1", 2, 0, [1]])
def test_n_must_be_the_integer_one(mock: MockProvider, server: Running, n: object) -> None:
    error = _error(_chat(server, {"model": "mock/m", "messages": USER, "n": n}), 400)
    assert (error["type"], error["param"]) == ("invalid_request_error", "n")
    assert mock.requests == []
    mock.reply("one choice")
    assert _chat(server, {"model": "mock/m", "messages": USER, "n": 1}).json()["choices"][0]["message"]["content"] \
        == "one choice"


def test_the_cli_server_logs_an_internal_errors_traceback_to_stderr(monkeypatch: pytest.MonkeyPatch,
                                                                    capfd: pytest.CaptureFixture[str]) -> None:
    import uvicorn

    from llmclient.cli import main

    package_logger = logging.getLogger("llmclient")
    handlers_before, level_before = list(package_logger.handlers), package_logger.level
    answers: list[httpx.Response] = []

    def broken(*args: object, **kwargs: object) -> None:
        raise RuntimeError("the body reader broke (forced by the test)")

    def serve_in_a_thread(app: Any, *, host: str, port: int, log_level: str) -> None:
        """uvicorn.run as the CLI calls it, on a free port in this process, for one request."""
        assert log_level == "warning"
        with running(app) as srv:
            answers.append(_chat(srv, {"model": "mock/m", "messages": USER}))
        logging.getLogger("llmclient.pricing").warning("a warning from the library")
        logging.getLogger("llmclient.pricing").info("an info line, under --log-level warning")

    monkeypatch.setattr(app_module, "parse_chat", broken)
    monkeypatch.setattr(uvicorn, "run", serve_in_a_thread)
    capfd.readouterr()
    assert main(["serve", "--port", "0", "--log-level", "warning"]) == 0
    stderr = capfd.readouterr().err
    assert _error(answers[0], 500)["code"] == "internal_error"
    assert "llmclient serve: unexpected error" in stderr
    assert "Traceback (most recent call last)" in stderr
    assert "RuntimeError: the body reader broke (forced by the test)" in stderr
    assert "a warning from the library" in stderr and "an info line" not in stderr
    # The library default is back once the server has stopped: a NullHandler, nothing printed.
    assert (package_logger.handlers, package_logger.level) == (handlers_before, level_before)
    assert all(isinstance(handler, logging.NullHandler) for handler in package_logger.handlers)



def test_an_upstream_400_keeps_the_providers_own_code() -> None:
    from llmclient.errors import classify
    from llmclient.serve.errors import answer

    upstream = classify(400, {"error": {"message": "Invalid value for 'temperature'.", "type": "invalid_request_error",
                                        "param": "temperature", "code": "invalid_value"}}, provider="openai", model="m")
    status, body, _ = answer(upstream, [])
    assert (status, body["error"]["type"], body["error"]["code"]) == (400, "invalid_request_error", "invalid_value")
    typed_only = classify(400, {"error": {"message": "bad", "type": "invalid_request_error"}}, provider="openai")
    assert answer(typed_only, [])[1]["error"]["code"] == "invalid_request_error"  # no code given: the type, as before
