"""Calls as OpenTelemetry spans (GenAI semantic conventions), read back from the SDK's in-memory
exporter. The global tracer provider can be set once per process, so each test hands its own
provider to `otel._tracer_provider` and clears the module's cached decision around it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from opentelemetry import context as otel_context
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import SpanKind, StatusCode
from pydantic import BaseModel

from llmclient import Client, RetryPolicy
from llmclient.errors import SchemaValidationError
from llmclient.telemetry import otel
from llmclient.testing import MockProvider
from llmclient.types import RetryRecord
from tests.loopback import Server, reply

FAST = RetryPolicy(initial_backoff=0.01, jitter=False)


class City(BaseModel):
    name: str


@pytest.fixture
def provider(monkeypatch: pytest.MonkeyPatch) -> Iterator[TracerProvider]:
    monkeypatch.delenv("LLMCLIENT_OTEL", raising=False)
    tracer_provider = TracerProvider()
    monkeypatch.setattr(otel, "_tracer_provider", tracer_provider)
    otel._reset()
    yield tracer_provider
    otel._reset()


@pytest.fixture
def exporter(provider: TracerProvider) -> InMemorySpanExporter:
    memory = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(memory))
    return memory


@pytest.fixture
def mock() -> Iterator[MockProvider]:
    with MockProvider() as queued:
        yield queued


def only_span(exporter: InMemorySpanExporter) -> ReadableSpan:
    spans = exporter.get_finished_spans()
    assert len(spans) == 1, [span.name for span in spans]
    return spans[0]


def attributes(span: ReadableSpan) -> dict[str, Any]:
    return dict(span.attributes or {})


def test_a_completed_call_is_a_client_span_with_the_genai_attributes(exporter: InMemorySpanExporter,
                                                                     mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=2, cache_read_tokens=4)
    response = Client("mock/any-model").complete("Capital of France?", agent="geo", session="s-1",
                                                 operation="quiz", user="u-9")

    span = only_span(exporter)
    assert span.name == "chat any-model"
    assert span.kind is SpanKind.CLIENT
    assert span.instrumentation_scope is not None and span.instrumentation_scope.name == "llmclient"
    assert span.status.status_code is StatusCode.UNSET
    attrs = attributes(span)
    assert attrs["gen_ai.operation.name"] == "chat"
    assert attrs["gen_ai.provider.name"] == "mock"
    assert attrs["gen_ai.request.model"] == "any-model"
    assert attrs["gen_ai.response.model"] == "any-model"
    assert attrs["gen_ai.response.id"] == "chatcmpl-mock"
    assert attrs["gen_ai.response.finish_reasons"] == ("stop",)
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (12, 2)
    assert attrs["gen_ai.usage.cache_read.input_tokens"] == 4
    assert "gen_ai.usage.cache_write.input_tokens" not in attrs  # not reported: absent, not 0
    assert "gen_ai.request.stream" not in attrs and "gen_ai.response.time_to_first_chunk" not in attrs
    assert (attrs["llmclient.agent"], attrs["llmclient.session"], attrs["llmclient.operation"],
            attrs["llmclient.user"]) == ("geo", "s-1", "quiz", "u-9")
    assert attrs["llmclient.kind"] == "complete" and attrs["llmclient.mode"] == "sync"
    assert attrs["llmclient.outcome"] == "ok" and attrs["llmclient.retries"] == 0
    assert len(str(attrs["llmclient.call_id"])) == 32
    assert "error.type" not in attrs and not span.events
    assert "llmclient.cost_usd" not in attrs  # mock models have no price: unknown, never 0
    # Neither the prompt nor the answer travels with the span.
    assert not any(text in str(value) for value in attrs.values() for text in ("Capital of France", response.text))


async def test_an_async_call_is_a_span_too(exporter: InMemorySpanExporter, mock: MockProvider) -> None:
    mock.reply("Paris.", input_tokens=7, output_tokens=3)
    await Client("mock/any-model").acomplete("Capital of France?")

    attrs = attributes(only_span(exporter))
    assert attrs["llmclient.mode"] == "async"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (7, 3)


def test_a_stream_span_starts_at_the_send_and_covers_the_iteration(exporter: InMemorySpanExporter,
                                                                   mock: MockProvider) -> None:
    mock.reply_stream(["Par", "is."], input_tokens=9, output_tokens=2)
    made = time.time_ns()
    stream = Client("mock/any-model").stream("Capital of France?")
    time.sleep(0.05)  # made, not yet sent
    before_send = time.time_ns()
    pieces = []
    for event in stream:
        if event.kind == "text":
            pieces.append(event.text)
            time.sleep(0.02)  # the caller's work between events is inside the span
    after_last = time.time_ns()

    span = only_span(exporter)
    assert span.start_time is not None and span.end_time is not None
    assert span.start_time - made >= 50_000_000
    assert before_send - 1_000 <= span.start_time  # 1 µs: the float seconds it is made from
    assert span.end_time - span.start_time >= 2 * 20_000_000
    assert span.end_time <= after_last + 5_000_000
    attrs = attributes(span)
    assert attrs["gen_ai.request.stream"] is True and attrs["llmclient.kind"] == "stream"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (9, 2)
    ttft = attrs["gen_ai.response.time_to_first_chunk"]
    assert isinstance(ttft, float) and 0 <= ttft * 1e9 <= span.end_time - span.start_time
    assert attrs["llmclient.ttft_ms"] == pytest.approx(ttft * 1000, abs=0.001)


def test_a_stream_never_iterated_leaves_no_span(exporter: InMemorySpanExporter) -> None:
    with MockProvider(allow_unused=True) as mock:
        mock.reply("unused")
        Client("mock/any-model").stream("Capital of France?")
    assert exporter.get_finished_spans() == ()


def test_a_stream_closed_early_is_abandoned_not_an_error(exporter: InMemorySpanExporter, mock: MockProvider) -> None:
    mock.reply_stream(["Par", "is", "."])
    stream = Client("mock/any-model").stream("Capital of France?")
    events = iter(stream)
    next(events)
    stream.close()

    span = only_span(exporter)
    attrs = attributes(span)
    assert attrs["llmclient.outcome"] == "abandoned"
    assert attrs["gen_ai.response.finish_reasons"] == ("error",)
    assert "error.type" not in attrs and span.status.status_code is StatusCode.UNSET


def test_each_retry_is_an_event_with_its_attempt_error_and_wait(exporter: InMemorySpanExporter,
                                                               mock: MockProvider) -> None:
    mock.fail(503).fail(429).reply("Paris.", input_tokens=12, output_tokens=2)
    Client("mock/any-model", retry=FAST).complete("Capital of France?")

    span = only_span(exporter)
    assert [event.name for event in span.events] == ["llmclient.retry", "llmclient.retry"]
    first, second = (dict[str, Any](event.attributes or {}) for event in span.events)
    assert (first["llmclient.retry.attempt"], first["http.response.status_code"]) == (1, 503)
    assert (second["llmclient.retry.attempt"], second["http.response.status_code"]) == (2, 429)
    assert first["error.type"] == "ServerError" and second["error.type"] == "RateLimitError"
    assert first["llmclient.retry.model"] == "mock/any-model"
    assert first["llmclient.retry.wait_s"] == pytest.approx(0.01)  # initial_backoff, no jitter
    assert second["llmclient.retry.wait_s"] > first["llmclient.retry.wait_s"]
    assert span.start_time is not None and span.end_time is not None
    assert all(span.start_time <= event.timestamp <= span.end_time for event in span.events)
    attrs = attributes(span)
    assert attrs["llmclient.retries"] == 2 and attrs["llmclient.outcome"] == "ok"
    assert "error.type" not in attrs


def test_a_failed_call_has_status_error_and_its_error_type(exporter: InMemorySpanExporter, mock: MockProvider) -> None:
    mock.fail(400, message="the prompt 'secret plan' is invalid")
    with pytest.raises(Exception) as raised:
        Client("mock/any-model", retry=FAST).complete("the secret plan")

    span = only_span(exporter)
    assert span.status.status_code is StatusCode.ERROR
    attrs = attributes(span)
    assert attrs["error.type"] == type(raised.value).__name__
    assert attrs["http.response.status_code"] == 400
    assert attrs["gen_ai.response.finish_reasons"] == ("error",)
    assert attrs["llmclient.outcome"] == "error"
    assert "gen_ai.response.model" not in attrs and "gen_ai.usage.input_tokens" not in attrs
    # The message can quote the prompt: it stays out of the span, its status and its events.
    assert "secret" not in json.dumps({**{k: str(v) for k, v in attrs.items()},
                                       "status": span.status.description or ""})
    assert not span.events


def test_a_structured_call_with_a_reask_counts_usage_over_its_attempts(exporter: InMemorySpanExporter,
                                                                       mock: MockProvider) -> None:
    mock.reply("not json at all", input_tokens=20, output_tokens=4)
    mock.reply('{"name": "Paris"}', input_tokens=30, output_tokens=6)
    result = Client("mock/any-model").structured_result("Capital of France?", schema=City)
    assert result.value == City(name="Paris")

    attrs = attributes(only_span(exporter))
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (20 + 30, 4 + 6)
    assert attrs["llmclient.kind"] == "structured" and attrs["llmclient.reasks"] == 1
    assert attrs["gen_ai.output.type"] == "json"


def test_a_structured_call_that_never_validates_keeps_the_usage_it_took(exporter: InMemorySpanExporter,
                                                                        mock: MockProvider) -> None:
    mock.reply("nope", input_tokens=5, output_tokens=1).reply("still nope", input_tokens=6, output_tokens=2)
    with pytest.raises(SchemaValidationError):
        Client("mock/any-model").structured("Capital of France?", schema=City, max_retries=1)

    span = only_span(exporter)
    attrs = attributes(span)
    assert span.status.status_code is StatusCode.ERROR and attrs["error.type"] == "SchemaValidationError"
    assert (attrs["gen_ai.usage.input_tokens"], attrs["gen_ai.usage.output_tokens"]) == (11, 3)


def test_a_call_inside_a_user_span_is_its_child(provider: TracerProvider, exporter: InMemorySpanExporter,
                                                mock: MockProvider) -> None:
    mock.reply("Paris.").reply_stream(["Par", "is."])
    client = Client("mock/any-model")
    with provider.get_tracer("app").start_as_current_span("handle request") as outer:
        client.complete("Capital of France?")
        stream = client.stream("Capital of France?")  # made here, iterated outside
    list(stream)

    spans = {span.name: span for span in exporter.get_finished_spans()}
    calls = [span for span in exporter.get_finished_spans() if span.name == "chat any-model"]
    assert len(calls) == 2
    for call in calls:
        assert call.parent is not None and call.parent.span_id == outer.get_span_context().span_id
        assert call.context is not None and call.context.trace_id == outer.get_span_context().trace_id
    assert spans["handle request"].parent is None


def test_a_call_outside_any_span_is_a_root(exporter: InMemorySpanExporter, mock: MockProvider) -> None:
    mock.reply("Paris.")
    Client("mock/any-model").complete("Capital of France?")
    assert only_span(exporter).parent is None


@pytest.mark.parametrize("value", ["false", "0", "OFF"])
def test_no_span_when_llmclient_otel_is_off(value: str, monkeypatch: pytest.MonkeyPatch,
                                            exporter: InMemorySpanExporter, mock: MockProvider) -> None:
    monkeypatch.setenv("LLMCLIENT_OTEL", value)
    otel._reset()
    mock.reply("Paris.")
    assert Client("mock/any-model").complete("Capital of France?").text == "Paris."
    assert not otel.enabled()
    assert exporter.get_finished_spans() == ()


def test_a_provider_reported_cost_is_on_the_span(exporter: InMemorySpanExporter, loopback: type[Server]) -> None:
    body = reply("Paris.", tokens=(10, 5))
    body["usage"]["cost"] = 0.0042  # OpenRouter-style: the provider's own charge
    loopback.queue.append(body)
    Client("txt/m", api_key="sk-test").complete("Capital of France?")

    attrs = attributes(only_span(exporter))
    assert attrs["llmclient.cost_usd"] == pytest.approx(0.0042)
    assert attrs["llmclient.cost_source"] == "provider"
    assert attrs["gen_ai.provider.name"] == "txt"


def test_an_unknown_cost_leaves_the_attribute_out(exporter: InMemorySpanExporter, loopback: type[Server]) -> None:
    loopback.queue.append(reply("Paris.", tokens=(10, 5)))
    Client("txt/m", api_key="sk-test").complete("Capital of France?")  # txt/m has no price

    attrs = attributes(only_span(exporter))
    assert "llmclient.cost_usd" not in attrs and "llmclient.cost_source" not in attrs
    assert attrs["gen_ai.usage.input_tokens"] == 10


def test_a_price_table_cost_is_on_the_span(exporter: InMemorySpanExporter, loopback: type[Server]) -> None:
    loopback.queue.append(reply("Paris.", tokens=(1000, 500)))
    Client("nat/m", api_key="sk-test").complete("Capital of France?")  # $1 / $2 per million tokens

    attrs = attributes(only_span(exporter))
    assert attrs["llmclient.cost_usd"] == pytest.approx(1000 * 0.000001 + 500 * 0.000002)
    assert attrs["llmclient.cost_source"] == "price-table"


@pytest.mark.parametrize(("provider_name", "model_id", "expected"), [
    ("openai", "gpt-4o-mini", "openai"), ("anthropic", "claude-x", "anthropic"), ("gemini", "g", "gcp.gemini"),
    ("mistral", "m", "mistral_ai"), ("groq", "m", "groq"), ("deepseek", "m", "deepseek"), ("cohere", "m", "cohere"),
    ("openrouter", "openai/gpt-4o", "openrouter"), ("litellm", "bedrock/anthropic.claude", "aws.bedrock"),
    ("litellm", "vertex_ai/gemini-pro", "gcp.vertex_ai"), ("litellm", "gpt-4o", "litellm"),
])
def test_provider_names_follow_the_conventions(provider_name: str, model_id: str, expected: str) -> None:
    assert otel._provider_name(provider_name, model_id) == expected


def test_spans_go_through_the_global_provider_when_none_is_handed_over(monkeypatch: pytest.MonkeyPatch,
                                                                       mock: MockProvider) -> None:
    # Without an SDK the API's global provider makes non-recording spans: the call is unaffected.
    monkeypatch.delenv("LLMCLIENT_OTEL", raising=False)
    monkeypatch.setattr(otel, "_tracer_provider", None)
    otel._reset()
    try:
        mock.reply("Paris.")
        assert otel.enabled()
        assert Client("mock/any-model").complete("Capital of France?").text == "Paris."
    finally:
        otel._reset()


def test_off_without_the_opentelemetry_api(monkeypatch: pytest.MonkeyPatch, mock: MockProvider) -> None:
    monkeypatch.delenv("LLMCLIENT_OTEL", raising=False)
    for name in ("opentelemetry", "opentelemetry.trace"):  # as if not installed: imports of them fail
        monkeypatch.setitem(sys.modules, name, None)
    otel._reset()
    try:
        assert not otel.enabled()
        mock.reply("Paris.")
        assert Client("mock/any-model").complete("Capital of France?").text == "Paris."
    finally:
        otel._reset()


def test_a_move_to_a_fallback_is_its_own_event() -> None:
    pending = otel._Pending(otel_context.get_current())
    otel.retry_event(pending, RetryRecord(model="openai/gpt-4o", error="ServerError", status_code=500), None)
    [(timestamp, name, event)] = pending.events
    assert name == "llmclient.fallback" and "llmclient.retry.attempt" not in event
    assert event == {"error.type": "ServerError", "llmclient.retry.model": "openai/gpt-4o",
                     "llmclient.retry.wait_s": 0.0, "http.response.status_code": 500}
    assert abs(timestamp - time.time_ns()) < 5_000_000_000


def test_a_global_sdk_set_up_by_the_application_gets_the_spans(tmp_path: Path) -> None:
    # The global provider can be set once per process: in a child of its own.
    script = (
        "from opentelemetry import trace\n"
        "from opentelemetry.sdk.trace import TracerProvider\n"
        "from opentelemetry.sdk.trace.export import SimpleSpanProcessor\n"
        "from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter\n"
        "from llmclient import Client\n"
        "from llmclient.testing import MockProvider\n"
        "with MockProvider() as mock:\n"
        "    mock.reply('before').reply('after', input_tokens=7, output_tokens=3)\n"
        "    Client('mock/m').complete('no SDK yet')\n"
        "    exporter = InMemorySpanExporter()\n"
        "    provider = TracerProvider()\n"
        "    provider.add_span_processor(SimpleSpanProcessor(exporter))\n"
        "    trace.set_tracer_provider(provider)\n"
        "    Client('mock/m').complete('with the SDK')\n"
        "spans = exporter.get_finished_spans()\n"
        "print(len(spans), spans[0].name, spans[0].attributes['gen_ai.usage.input_tokens'])\n")
    run = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, cwd=tmp_path,
                         env={**os.environ, "LLM_TELEMETRY_DIR": str(tmp_path / "store")})
    assert run.returncode == 0, run.stderr
    assert run.stdout.split() == ["1", "chat", "m", "7"]


def test_an_answer_from_the_response_cache_is_marked_on_its_span(exporter: InMemorySpanExporter, mock: MockProvider,
                                                                 tmp_path: Path) -> None:
    mock.reply("Paris.", input_tokens=12, output_tokens=2)
    client = Client("mock/m", cache=tmp_path)
    client.complete("Capital?")
    client.complete("Capital?")
    first, second = exporter.get_finished_spans()
    assert "llmclient.cache_hit" not in attributes(first)
    assert attributes(second)["llmclient.cache_hit"] is True
    assert (attributes(second)["llmclient.cost_usd"], attributes(second)["llmclient.cost_source"]) == (0.0, "cache")
    assert "gen_ai.usage.input_tokens" not in attributes(second)  # nothing was billed
