"""One model a call can go to, and one send to it: the rate limits configured for the model and
its retry policy, around its `Pipeline`. `Client` builds one `Route` per model of a profile's
chain (`route_for`, which also registers the configuration's rate limits); `fallback` moves along them.
"""

from __future__ import annotations

import threading
import time
from typing import TYPE_CHECKING

from llmclient import cassettes, files, model_checks, models
from llmclient.assemble import Assembler
from llmclient.errors import ConfigurationError
from llmclient.models import ModelInfo
from llmclient.policies import ratelimit, retry
from llmclient.policies.retry import RetryPolicy
from llmclient.providers import KEYLESS_PLACEHOLDER, REGISTRY, ProviderSpec, resolve_model
from llmclient.request import Request
from llmclient.delivery import Delivery
from llmclient.types import Response, RetryRecord

if TYPE_CHECKING:
    from llmclient.config_schema import Config, Resolved
    import httpx

    from llmclient.pipeline import Pipeline


class Route:
    """`spec`'s model `model_id` at `base_url`: checks a request for it, and sends one with the
    rate limits and the retry policy around the pipeline (connections pooled per route)."""

    def __init__(self, spec: ProviderSpec, model_id: str, base_url: str, timeout: float | None,
                 retry_policy: RetryPolicy, api_key: str | None) -> None:
        self.spec = spec
        self.model_id = model_id
        self.base_url = base_url
        self.timeout = timeout
        self.retry_policy = retry_policy
        self.assembler = Assembler(spec, model_id, base_url)
        self._api_key = api_key
        self._lock = threading.Lock()
        self._pipeline: Pipeline | None = None
        self._info: tuple[ModelInfo | None] | None = None  # the catalogue's entry, looked up at the first call

    @property
    def model(self) -> str:
        return f"{self.spec.name}/{self.model_id}"

    def check(self, request: Request) -> None:
        """What is refused before any request: files this provider cannot take, what the model
        catalogue says this model cannot take or has retired, then a missing key."""
        files.check(request.messages, self.spec, self.model_id)
        info = self.info()
        if info is not None:
            model_checks.check(request, info)
        self.key()

    def info(self) -> ModelInfo | None:
        """The model catalogue's entry for this model (None: not catalogued, or a litellm route,
        whose model names are litellm's)."""
        if self._info is None:
            found = None if self.spec.wire == "litellm" else models.info(self.model, base_url=self.base_url)
            self._info = (found,)
        return self._info[0]

    def key(self) -> str:
        try:
            key = self.spec.api_key(self._api_key)
        except ConfigurationError:
            if cassettes.replaying():
                return cassettes.REPLAY_API_KEY  # nothing is sent in replay, so no real key is needed
            raise
        if key == KEYLESS_PLACEHOLDER and cassettes.replaying():
            return cassettes.REPLAY_API_KEY  # a route that finds its own credentials (litellm) finds none in replay
        return key

    def complete(self, request: Request, history: list[RetryRecord]) -> Response:
        pipeline, prepared = self._prepared(request, stream=False)

        def attempt() -> Response:
            permit = ratelimit.acquire(self.spec.name, self.model_id, _estimate(request))
            started = time.perf_counter()
            response = pipeline.response(pipeline.send(prepared, stream=False), started)
            permit.settle(_tokens_used(response, permit.estimated_tokens))
            return response

        return retry.call(attempt, self.retry_policy, self.model, history)

    async def acomplete(self, request: Request, history: list[RetryRecord]) -> Response:
        pipeline, prepared = await self._aprepared(request, stream=False)

        async def attempt() -> Response:
            permit = await ratelimit.aacquire(self.spec.name, self.model_id, _estimate(request))
            started = time.perf_counter()
            response = pipeline.response(await pipeline.asend(prepared, stream=False), started)
            permit.settle(_tokens_used(response, permit.estimated_tokens))
            return response

        return await retry.acall(attempt, self.retry_policy, self.model, history)

    def open(self, request: Request, history: list[RetryRecord], started: float | None = None) -> Delivery:
        """A stream's HTTP answer, open, 2xx and read up to its first events: any other status, and
        a body that fails before them (an error event, a cut), is raised, so it may be retried or
        fall back; after them the caller has events, and a failure is the caller's. `started`: when
        the call began (its Response's latency counts from then; default now)."""
        pipeline, prepared = self._prepared(request, stream=True)
        began = time.perf_counter() if started is None else started

        def attempt() -> Delivery:
            permit = ratelimit.acquire(self.spec.name, self.model_id, _estimate(request))
            answer = pipeline.send(prepared, stream=True)
            if answer.status_code >= 300:
                raise pipeline.http_error(answer)
            delivery = Delivery(answer, self.assembler, permit, idle_timeout=pipeline.timeout)
            delivery.prime(began)  # on a failure, its permit settled and its answer closed
            return delivery

        return retry.call(attempt, self.retry_policy, self.model, history)

    async def aopen(self, request: Request, history: list[RetryRecord], started: float | None = None) -> Delivery:
        pipeline, prepared = await self._aprepared(request, stream=True)
        began = time.perf_counter() if started is None else started

        async def attempt() -> Delivery:
            permit = await ratelimit.aacquire(self.spec.name, self.model_id, _estimate(request))
            answer = await pipeline.asend(prepared, stream=True)
            if answer.status_code >= 300:
                raise pipeline.http_error(answer)
            delivery = Delivery(answer, self.assembler, permit, idle_timeout=pipeline.timeout)
            await delivery.aprime(began)
            return delivery

        return await retry.acall(attempt, self.retry_policy, self.model, history)

    def close(self) -> None:
        if self._pipeline is not None:
            self._pipeline.close()

    async def aclose(self) -> None:
        if self._pipeline is not None:
            await self._pipeline.aclose()

    def _prepared(self, request: Request, *, stream: bool) -> tuple[Pipeline, httpx.Request]:
        self.check(request)
        pipeline = self.pipeline()
        return pipeline, pipeline.prepare(request, self.key(), stream=stream)

    async def _aprepared(self, request: Request, *, stream: bool) -> tuple[Pipeline, httpx.Request]:
        if files.downloads(request.messages, self.spec):  # a blocking download: not on the event loop
            import asyncio  # not at import time: sync users never pay for it

            return await asyncio.to_thread(self._prepared, request, stream=stream)
        return self._prepared(request, stream=stream)

    def pipeline(self) -> Pipeline:
        with self._lock:
            if self._pipeline is None:
                from llmclient.pipeline import Pipeline  # imports httpx: not before the first call

                kind = Pipeline
                if self.spec.wire == "litellm":
                    from llmclient.litellm_route import LitellmPipeline as kind
                elif self.spec.wire == "claude-cli":
                    from llmclient.claude_cli import ClaudeCliPipeline as kind

                self._pipeline = kind(self.spec, self.model_id, self.base_url, self.timeout, self.assembler)
            return self._pipeline


def _estimate(request: Request) -> int:
    """Tokens the call may use, for a tokens-per-minute limit (settled with the real usage)."""
    chars = sum(len(m.text) for m in request.messages)
    return ratelimit.estimate_tokens(chars, request.max_tokens)


def _tokens_used(response: Response, estimate: int) -> int:
    usage = response.usage
    return estimate if usage is None else usage.input_tokens + usage.output_tokens


def route_for(config: Config, resolved: Resolved, api_key: str | None, base_url: str | None, timeout: float | None,
           retry: RetryPolicy | None) -> Route:
    """The route to a resolved model, with the configuration's limits registered for it."""
    spec, model_id = spec_and_model(config, resolved.model)
    if base_url is not None and not base_url.startswith(("https://", "http://")):
        raise ConfigurationError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
    for model, limit in config.limits(spec.name, model_id):
        ratelimit.configure(spec.name, ratelimit.RateLimit(rpm=limit.rpm, tpm=limit.tpm), model)
    return Route(spec, model_id, (base_url or spec.base_url).rstrip("/"),
                 timeout if timeout is not None else resolved.timeout,
                 retry if retry is not None else RetryPolicy.from_settings(resolved.retry), api_key)


def spec_and_model(config: Config, model: str) -> tuple[ProviderSpec, str]:
    """The provider spec (with the configuration's overrides) and model id of "<provider>/<id>"."""
    provider, _, model_id = model.partition("/")
    configured = config.provider_spec(provider)
    if configured is not None and provider not in REGISTRY:  # a provider the configuration defines
        if not model_id.strip("/ ") or model_id != model_id.strip("/ "):
            raise ConfigurationError(f"model {model!r} needs a model id after '{provider}/'")
        return configured, model_id
    spec, model_id = resolve_model(model)
    return configured or spec, model_id
