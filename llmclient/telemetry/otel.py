"""Calls as OpenTelemetry spans, following the GenAI semantic conventions (inference client span).

On when `opentelemetry-api` is importable (`pip install 'llmclient[otel]'`) unless the environment
sets `LLMCLIENT_OTEL` to false/0/off/no; the answer is decided once per process. The API alone
records nothing: spans go wherever the application's SDK sends them (an OTLP collector, say),
through the global tracer provider. Nothing here is imported by `import llmclient`.

One span per public call (every attempt, wait, fallback and re-ask inside it), kind CLIENT, scope
"llmclient" with the package's version, named "chat <model id>":

    gen_ai.operation.name         "chat"
    gen_ai.provider.name          the convention's name where it has one (gemini -> gcp.gemini,
                                  mistral -> mistral_ai, a litellm/bedrock/... model -> aws.bedrock),
                                  else ours ("openrouter"); the answering model's provider after a fallback
    gen_ai.request.model          the model id asked for (without our "provider/" prefix)
    gen_ai.request.stream         true for streams; gen_ai.output.type "json" for structured calls
    gen_ai.response.model, gen_ai.response.id
    gen_ai.response.finish_reasons  [our finish_reason] (stop|length|tool_calls|content_filter|other),
                                  ["error"] when no answer came; llmclient.raw_finish_reason the provider's
    gen_ai.usage.input_tokens, .output_tokens, .cache_read.input_tokens, .cache_write.input_tokens,
    .reasoning.output_tokens      over every attempt that answered (cache and reasoning when > 0;
                                  input includes the cached tokens, as the conventions ask)
    gen_ai.response.time_to_first_chunk  seconds, streams only (also llmclient.ttft_ms)
    error.type                    the exception's class name, with status ERROR; http.response.status_code
    llmclient.call_id, .kind, .mode, .requested_model, .profile, .outcome, .retries, .replay,
    .agent, .operation, .session, .user, .tag.<name>, .cost_usd (a double; absent when unknown,
                                  never 0), .cost_source
    events "llmclient.retry" (each wait before another attempt) and "llmclient.fallback" (each move
                                  to a fallback model): error.type, http.response.status_code,
                                  llmclient.retry.attempt (the attempt that failed), .model, .wait_s

No prompt, answer, error message or key is ever put on a span: error messages can quote the
prompt or the model's answer, so exceptions are not recorded as span events either (the
conventions moved those to `gen_ai.client.operation.exception` log records anyway).

The span is made when the call finishes, with explicit start and end times, rather than started
when the call begins: a stream's `Observation` exists from `client.stream()`, but its request is
sent only when iteration starts (`Observation.restart()` resets the clocks), and a stream never
iterated must leave no span open. Until then `start()` keeps only the OpenTelemetry context that
was current where the call was made (its span becomes the parent) and `retry_event()` keeps the
events with their times. The span starts at `started_at` (the send) and lasts exactly the call's
measured duration. It is never made current: nothing runs inside it after the fact, and a stream
spans the caller's iteration across yields, where attaching a context would leak into the caller.
"""

from __future__ import annotations

import logging
import os
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.trace import Tracer, TracerProvider
    from opentelemetry.util.types import AttributeValue

    from llmclient.telemetry.observe import Observation
    from llmclient.types import RetryRecord

log = logging.getLogger("llmclient")

SCOPE = "llmclient"
_OFF = frozenset({"false", "0", "off", "no"})
_STREAMS = frozenset({"stream", "stream_structured"})
_STRUCTURED = frozenset({"structured", "stream_structured"})

# Our provider names (and litellm's model prefixes) -> the conventions' well-known values.
_PROVIDER_NAMES = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "gcp.gemini", "vertex_ai": "gcp.vertex_ai",
    "bedrock": "aws.bedrock", "azure": "azure.ai.openai", "azure_ai": "azure.ai.inference", "cohere": "cohere",
    "deepseek": "deepseek", "groq": "groq", "mistral": "mistral_ai", "perplexity": "perplexity", "xai": "x_ai",
    "watsonx": "ibm.watsonx.ai", "moonshot": "moonshot_ai",
}

_enabled: bool | None = None
_tracer_provider: TracerProvider | None = None  # None: the global one; tests hand theirs here
_tracer: tuple[TracerProvider | None, Tracer] | None = None


def enabled() -> bool:
    """Whether calls become spans: checked as each call begins, so decided once and cached."""
    global _enabled
    if _enabled is None:
        _enabled = _decide()
    return _enabled


def _decide() -> bool:
    if os.environ.get("LLMCLIENT_OTEL", "").strip().lower() in _OFF:
        return False
    from importlib.util import find_spec

    try:  # finds without importing opentelemetry.trace (only its namespace parent)
        return find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):
        return False


def _reset() -> None:
    """Forget the cached decision and tracer (tests; after changing LLMCLIENT_OTEL)."""
    global _enabled, _tracer
    _enabled = None
    _tracer = None


class _Pending:
    """A call's span until it finishes: where it was made, and its retry events so far."""

    __slots__ = ("done", "events", "parent")

    def __init__(self, parent: Context) -> None:
        self.parent = parent
        self.events: list[tuple[int, str, dict[str, AttributeValue]]] = []
        self.done = False


def start(observation: Observation) -> _Pending | None:
    """The call's pending span; None while no SDK is set up (the global provider is still the API's
    proxy): every span would be dropped, so the call skips building it."""
    from opentelemetry import context, trace

    if _tracer_provider is None and isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        return None
    return _Pending(context.get_current())


def retry_event(span: _Pending, record: RetryRecord, attempt: int | None) -> None:
    attributes: dict[str, AttributeValue] = {"error.type": record.error, "llmclient.retry.model": record.model,
                                             "llmclient.retry.wait_s": float(record.waited)}
    if record.status_code is not None:
        attributes["http.response.status_code"] = record.status_code
    if attempt is not None:
        attributes["llmclient.retry.attempt"] = attempt
    span.events.append((time.time_ns(), "llmclient.retry" if attempt is not None else "llmclient.fallback", attributes))


def end(span: _Pending, observation: Observation) -> None:
    if span.done:
        return
    span.done = True
    try:
        _record(span, observation)
    except Exception:  # telemetry must never fail a call that has its answer
        log.warning("llmclient: the OpenTelemetry span of call %s was not recorded", observation.call_id, exc_info=True)


def _record(pending: _Pending, obs: Observation) -> None:
    from opentelemetry.trace import SpanKind, Status, StatusCode

    response = obs.response
    provider, _, model_id = obs.requested_model.partition("/")
    if response is not None:
        provider, answered = response.provider, response.model
    else:
        answered = model_id
    attributes: dict[str, AttributeValue] = {  # given at creation: what samplers may look at
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": _provider_name(provider, answered),
        "gen_ai.request.model": model_id,
    }
    if obs.kind in _STREAMS:
        attributes["gen_ai.request.stream"] = True
    if obs.kind in _STRUCTURED:
        attributes["gen_ai.output.type"] = "json"
    start_ns = int(obs.started_at * 1e9)
    ended = obs.ended if obs.ended is not None else time.perf_counter()
    span = _get_tracer().start_span(f"chat {model_id}", context=pending.parent, kind=SpanKind.CLIENT,
                                    attributes=attributes, start_time=start_ns)
    if span.is_recording():  # a no-op tracer (no SDK configured) pays for nothing more
        span.set_attributes(_details(obs, len(pending.events)))
        for timestamp, name, event in pending.events:
            span.add_event(name, event, timestamp=timestamp)
        if obs.outcome == "error" and obs.error is not None:
            span.set_status(Status(StatusCode.ERROR, _error_text(obs.error)))
    span.end(end_time=start_ns + max(0, int((ended - obs.started) * 1e9)))


def _details(obs: Observation, retries: int) -> dict[str, AttributeValue]:
    from llmclient.telemetry.record import response_id

    response, usage, cost, error = obs.response, obs.usage, obs.cost, obs.error
    out: dict[str, AttributeValue] = {
        "llmclient.call_id": obs.call_id, "llmclient.kind": obs.kind, "llmclient.mode": obs.mode,
        "llmclient.requested_model": obs.requested_model, "llmclient.outcome": obs.outcome,
        "llmclient.retries": retries,
    }
    if obs.reasks:
        out["llmclient.reasks"] = obs.reasks
    context = obs.context
    for key, value in (("profile", obs.profile), ("agent", context.agent), ("operation", context.operation),
                       ("session", context.session), ("user", context.user)):
        if value is not None:
            out["llmclient." + key] = value
    for name, value in context.tags:
        out["llmclient.tag." + name] = value
    if obs.replay:
        out["llmclient.replay"] = True
    if response is not None:
        out["gen_ai.response.model"] = response.model
        out["gen_ai.response.finish_reasons"] = (response.finish_reason,)
        if response.raw_finish_reason is not None:
            out["llmclient.raw_finish_reason"] = response.raw_finish_reason
        answer_id = response_id(response.raw)
        if answer_id is not None:
            out["gen_ai.response.id"] = answer_id
    else:  # the conventions' "error" for a generation that ended without its finish reason
        out["gen_ai.response.finish_reasons"] = ("error",)
    if usage is not None:
        out["gen_ai.usage.input_tokens"] = usage.input_tokens
        out["gen_ai.usage.output_tokens"] = usage.output_tokens
        for key, count in (("gen_ai.usage.cache_read.input_tokens", usage.cache_read_tokens),
                           ("gen_ai.usage.cache_write.input_tokens", usage.cache_write_tokens),
                           ("gen_ai.usage.reasoning.output_tokens", usage.reasoning_tokens)):
            if count:  # 0 also means "not reported": leave the attribute out
                out[key] = count
    if cost is not None:  # unknown stays absent: a 0 would read as "free"
        out["llmclient.cost_usd"] = float(cost.total)
        out["llmclient.cost_source"] = cost.source
    if obs.cache_hit:
        out["llmclient.cache_hit"] = True
    if obs.first_token is not None:
        ttft = max(0.0, obs.first_token - obs.started)
        out["gen_ai.response.time_to_first_chunk"] = ttft
        out["llmclient.ttft_ms"] = round(ttft * 1000, 3)
    if obs.outcome == "error" and error is not None:
        out["error.type"] = type(error).__name__
        status = getattr(error, "status_code", None)
        if isinstance(status, int):
            out["http.response.status_code"] = status
    return out


def _provider_name(provider: str, model_id: str) -> str:
    if provider == "litellm":  # litellm reaches the provider its model string names: "bedrock/..."
        prefix, slash, _ = model_id.partition("/")
        return _PROVIDER_NAMES.get(prefix, "litellm") if slash else "litellm"
    return _PROVIDER_NAMES.get(provider, provider)


def _error_text(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    return type(error).__name__ + (f" ({status})" if status else "")


def _get_tracer() -> Tracer:
    global _tracer
    provider = _tracer_provider
    cached = _tracer
    if cached is None or cached[0] is not provider:
        from opentelemetry import trace

        from llmclient.telemetry.record import version

        # Without a provider: the global one, a proxy until the application sets its SDK's.
        cached = _tracer = (provider, trace.get_tracer(SCOPE, version(), tracer_provider=provider))
    return cached[1]
