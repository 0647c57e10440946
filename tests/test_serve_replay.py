"""`llmclient serve --replay DIR`: the repository's own cassettes answer the OpenAI SDK through the
server, with no network and no keys; in-process (uvicorn in a thread) and as a real subprocess."""

from __future__ import annotations

import json
import signal
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from llmclient import Client
from llmclient.cassettes import use_cassette
from llmclient.cli_text import decimal_text
from llmclient.config import reset_config
from llmclient.serve import create_app
from tests.serve_helpers import ROOT, Running, running, subprocess_server

CASSETTES = ROOT / "cassettes"
TEXT = [{"role": "user", "content": "What is the capital of France? Answer in one word."}]


@pytest.fixture(scope="module")
def server() -> Iterator[Running]:
    with running(create_app(replay=CASSETTES)) as srv:
        yield srv


@pytest.fixture(autouse=True)
def _no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)


def _recorded(name: str, index: int = 0) -> dict[str, Any]:
    data = yaml.safe_load((CASSETTES / "openai" / name).read_text())
    body = data["interactions"][index]["request"]["body"]
    parsed: dict[str, Any] = json.loads(body if isinstance(body, str) else body["string"])
    return parsed


def test_text_scenario_matches_a_direct_replay(server: Running) -> None:
    raw = server.sdk().chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=TEXT)  # type: ignore[arg-type]
    answer = raw.parse()
    assert answer.choices[0].message.content == "Paris."
    assert answer.usage is not None and (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (21, 2)
    with use_cassette(CASSETTES / "openai" / "text.yaml"), Client("openai/gpt-4o-mini") as client:
        direct = client.complete(TEXT)  # type: ignore[arg-type]
    assert direct.cost is not None
    assert raw.headers["x-llmclient-cost-usd"] == decimal_text(direct.cost.total)
    assert raw.headers["x-llmclient-model"] == "openai/gpt-4o-mini-2024-07-18"  # as the provider reported it


async def test_an_async_client_and_a_recorded_error(server: Running) -> None:
    import openai

    answer = await server.async_sdk().chat.completions.create(model="openai/gpt-4o-mini", messages=TEXT)  # type: ignore[arg-type]
    assert answer.choices[0].message.content == "Paris."  # cassettes/openai/text.yaml's answer
    # cassettes/openai/error_not_found.yaml: the recorded 404 for a model that does not exist
    recorded = yaml.safe_load((CASSETTES / "openai" / "error_not_found.yaml").read_text())["interactions"][0]
    assert recorded["response"]["status"]["code"] == 404
    model = "openai/" + json.loads(recorded["request"]["body"])["model"]
    with pytest.raises(openai.NotFoundError):
        await server.async_sdk().chat.completions.create(model=model, messages=TEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize(("cassette", "index"), [
    ("system_prompt.yaml", 0), ("multi_turn.yaml", 0), ("max_tokens.yaml", 0), ("tool_call.yaml", 0),
    ("parallel_tool_calls.yaml", 0), ("tool_round_trip.yaml", 1), ("image_input.yaml", 0),
    ("structured_native.yaml", 0), ("billing_reasoning.yaml", 0),
])
def test_recorded_requests_sent_through_the_sdk_get_their_recorded_answers(server: Running, cassette: str, index: int) -> None:
    body = _recorded(cassette, index)
    model = "openai/" + body.pop("model")
    raw = server.sdk().chat.completions.with_raw_response.create(model=model, **body)
    answer = raw.parse()
    recorded = yaml.safe_load((CASSETTES / "openai" / cassette).read_text())["interactions"][index]["response"]
    usage = json.loads(recorded["body"]["string"])["usage"]
    assert answer.usage is not None
    assert (answer.usage.prompt_tokens, answer.usage.completion_tokens) == (usage["prompt_tokens"], usage["completion_tokens"])
    assert raw.headers["x-llmclient-model"].startswith(model)


def test_an_image_url_is_refused_in_replay_mode(server: Running) -> None:
    body = _recorded("image_url.yaml")  # recorded with an https image URL: replay fetches nothing
    answer = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
    assert answer.status_code == 400 and answer.json()["error"]["code"] == "image_url_not_allowed"
    assert "data: URL" in answer.json()["error"]["message"]


def test_a_streamed_tool_call_after_text_is_indexed_from_zero(server: Running) -> None:
    """Anthropic's tool_use block is content block 1, after the text block: OpenAI clients index
    tool_calls 0..n-1, and the SDK's stream helper fails on any other index."""
    weather = {"type": "function", "function": {"name": "get_weather", "description": "Get the current weather for a city.",
                                                "parameters": {"properties": {"city": {"type": "string"}},
                                                               "required": ["city"], "type": "object"}}}
    with server.sdk().chat.completions.stream(model="anthropic/claude-sonnet-4-5", tools=[weather],  # type: ignore[list-item]
                                              messages=[{"role": "user", "content": "What is the weather in Paris?"}]) as stream:
        completion = stream.get_final_completion()
    message = completion.choices[0].message
    assert completion.choices[0].finish_reason == "tool_calls" and message.content
    assert message.tool_calls is not None and len(message.tool_calls) == 1
    call = message.tool_calls[0]
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}  # type: ignore[union-attr]


def test_stream_replay_deltas_and_usage(server: Running) -> None:
    body = _recorded("stream_text.yaml")
    body.pop("model")
    chunks = list(server.sdk().chat.completions.create(model="openai/gpt-4o-mini", **body))
    with use_cassette(CASSETTES / "openai" / "stream_text.yaml"), Client("openai/gpt-4o-mini") as client:
        stream = client.stream(body["messages"])
        direct = "".join(event.text for event in stream if event.kind == "text")
        response = stream.response
    assert "".join(c.choices[0].delta.content or "" for c in chunks if c.choices) == direct
    usage = chunks[-1].usage
    assert usage is not None and response.usage is not None and usage.total_tokens == response.usage.total_tokens
    assert response.cost is not None
    assert Decimal(str(usage.model_extra["cost"])) == response.cost.total  # type: ignore[index]


def test_a_pinned_cassette_plays_in_recorded_order(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, server: Running) -> None:
    config = tmp_path / "llmclient.toml"
    config.write_text("[retry]\nmax_attempts = 1\n")
    monkeypatch.setenv("LLMCLIENT_CONFIG", str(config))
    reset_config()
    with running(create_app(replay=CASSETTES)) as srv:  # a fresh app: its clients read this configuration
        url = f"{srv.base_url}/chat/completions"
        pinned = {"x-llmclient-cassette": "retry_rate_limit"}
        first = httpx.post(url, json={"model": "openai/gpt-4o-mini", "messages": TEXT}, headers=pinned, timeout=30)
        assert first.status_code == 429 and first.headers["retry-after"] == "1"
        second = httpx.post(url, json={"model": "openai/gpt-4o-mini", "messages": TEXT}, headers=pinned, timeout=30)
        assert second.status_code == 200 and second.json()["choices"][0]["message"]["content"] == "Paris."
        failed = httpx.post(url, json={"model": "openai/gpt-4o-mini", "messages": TEXT},
                            headers={"x-llmclient-cassette": "error_server"}, timeout=30)
        assert failed.status_code == 502


def test_no_recorded_interaction_names_the_closest_request(server: Running) -> None:
    body = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "What is the capital of Spain? Answer in one word."}]}
    answer = httpx.post(f"{server.base_url}/chat/completions", json=body, timeout=30)
    assert answer.status_code == 404
    error = answer.json()["error"]
    assert error["code"] == "no_recorded_interaction"
    assert "cassettes/openai/" in error["message"] and ".yaml (interaction 0)" in error["message"]
    assert "messages[0].content: recorded 'What is the capital of France?" in error["message"]
    assert "capital of Spain" in error["message"]
    good = httpx.post(f"{server.base_url}/chat/completions", json={"model": "openai/gpt-4o-mini", "messages": TEXT}, timeout=30)
    assert good.status_code == 200


def test_models_include_the_recorded_models(server: Running) -> None:
    ids = {model.id for model in server.sdk().models.list()}
    assert "openai/gpt-4o-mini" in ids and any(name.startswith("anthropic/") for name in ids)


def test_the_serve_command_replays_in_a_subprocess() -> None:
    with subprocess_server("--replay", "cassettes", "--log-level", "warning",
                           env={"OPENAI_API_KEY": ""}) as (srv, process):
        raw = srv.sdk().chat.completions.with_raw_response.create(model="openai/gpt-4o-mini", messages=TEXT)  # type: ignore[arg-type]
        assert raw.parse().choices[0].message.content == "Paris."
        assert raw.headers["x-llmclient-model"].startswith("openai/gpt-4o-mini")
        assert Decimal(raw.headers["x-llmclient-cost-usd"]) > 0
        chunks = list(srv.sdk().chat.completions.create(model="openai/gpt-4o-mini", stream=True,
                                                        **{k: v for k, v in _recorded("stream_text.yaml").items() if k not in ("model", "stream")}))
        assert chunks[-1].usage is not None
        process.terminate()  # uvicorn shuts down gracefully, then re-raises SIGTERM (its exit status says so)
        assert process.wait(20) in (0, -signal.SIGTERM)
        assert process.stderr is not None and "Traceback" not in process.stderr.read()
