"""`Client`: the public entry points. Validates a call into a `Request`, runs it through the
policies (rate limit, retry, fallback, re-ask) around the model's `Pipeline`, and hands back a
`Response`, a `Stream` or a typed error."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llmclient import cassettes, files, ratelimit
from llmclient import retry as retry_module
from llmclient import schema as schema_module
from llmclient.assemble import Assembler
from llmclient.errors import ConfigurationError, InvalidRequestError
from llmclient.providers import REGISTRY, ProviderSpec, resolve_model
from llmclient.request import Prompt, Request
from llmclient.resilience import athrough_chain, through_chain
from llmclient.retry import RetryPolicy
from llmclient.schema import Strategy, StructuredResult
from llmclient.streaming import AsyncStream, Delivery, Stream
from llmclient.structured_stream import Accumulator, AsyncStructuredStream, StructuredStream
from llmclient.types import Response, RetryRecord
from llmclient.validators import Validator, ValidatorLoop, checked

if TYPE_CHECKING:
    import httpx

    from llmclient.config_schema import Config, Resolved
    from llmclient.pipeline import Pipeline


T = TypeVar("T")


class Client:
    """A client for one model, e.g. `Client("openai/gpt-4o-mini")`, or for a profile or alias
    from the configuration (`Client("fast")`; see `llmclient.config`). With no model, the
    configured default, else the first provider whose key is set.

    Every call takes a prompt (a string, or a list of messages) and the keywords of
    `Request.build`: `system=`, `tools=`, `tool_choice=`, `files=`, `max_tokens=`, `temperature=`; any other
    keyword is a provider option passed through unchanged. A ready `Request` is accepted too.

    Each call is retried by `retry` (default: the configuration's policy), waits for the rate
    limits configured for its provider, and moves down the profile's fallbacks when the errors
    it falls back on persist (`response.retries` records every failed attempt).
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
    ) -> None:
        from llmclient.config import get_config

        if model is not None and not isinstance(model, str):
            raise ConfigurationError(f"model must be a string like 'openai/gpt-4o-mini', got {type(model).__name__}")
        config = get_config()
        self._setup(config, config.resolve(model) if model is not None else config.resolve_default(),
                    api_key, base_url, timeout, retry)

    def _setup(self, config: Config, resolved: Resolved, api_key: str | None, base_url: str | None,
               timeout: float | None, retry: RetryPolicy | None) -> None:
        self.profile = resolved
        self.spec, self.model_id = _spec_and_model(config, resolved.model)
        if base_url is not None and not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = (base_url or self.spec.base_url).rstrip("/")
        self.timeout = timeout if timeout is not None else resolved.timeout
        self.retry_policy = retry if retry is not None else RetryPolicy.from_settings(resolved.retry)
        for model, limit in config.limits(self.spec.name, self.model_id):
            ratelimit.configure(self.spec.name, ratelimit.RateLimit(rpm=limit.rpm, tpm=limit.tpm), model)
        self._config = config
        self._api_key = api_key
        self._assembler = Assembler(self.spec, self.model_id)
        self._pipeline_lock = threading.Lock()
        self._pipeline_instance: Pipeline | None = None
        self._fallbacks: list[Client] | None = None

    @property
    def model(self) -> str:
        return f"{self.spec.name}/{self.model_id}"

    def __repr__(self) -> str:
        return f"Client({self.model!r})"

    def complete(self, prompt: Prompt | Request, /, *, validators: Sequence[Validator] | None = None,
                 max_retries: int | None = None, **options: Any) -> Response:
        """The model's answer. With `validators=`, an answer a validator refuses is sent back with
        the refusal and asked again, up to `max_retries` (default 2) more times; the accepted
        `Response` lists the refused ones in `.rejected` (`.total_usage`/`.total_cost` sum them)."""
        if validators is not None or max_retries is not None:
            loop, retries = self._validator_loop(prompt, validators, max_retries, options)
            return schema_module.ask_until_valid(self, loop, retries)
        request = self._request(prompt, options)
        response, history = through_chain(self._chain(), lambda client, h: client._complete_here(request, h),
                                          self.profile.falls_back_on)
        return _with_retries(response, history)

    async def acomplete(self, prompt: Prompt | Request, /, *, validators: Sequence[Validator] | None = None,
                        max_retries: int | None = None, **options: Any) -> Response:
        if validators is not None or max_retries is not None:
            loop, retries = self._validator_loop(prompt, validators, max_retries, options)
            return await schema_module.aask_until_valid(self, loop, retries)
        request = self._request(prompt, options)
        response, history = await athrough_chain(self._chain(), lambda client, h: client._acomplete_here(request, h),
                                                 self.profile.falls_back_on)
        return _with_retries(response, history)

    def stream(self, prompt: Prompt | Request, /, **options: Any) -> Stream:
        """A stream of events; the request is sent when iteration starts. Retries and fallbacks
        happen only before the first byte reaches the caller."""
        request = self._request(prompt, options, stream=True)
        self._check(request)

        def send() -> Delivery:
            delivery, history = through_chain(self._chain(), lambda client, h: client._open_here(request, h),
                                              self.profile.falls_back_on)
            return delivery.with_retries(history)

        return Stream(send, self._assembler)

    def astream(self, prompt: Prompt | Request, /, **options: Any) -> AsyncStream:
        """An async stream of events; the request is sent when iteration starts."""
        request = self._request(prompt, options, stream=True)
        self._check(request)

        async def send() -> Delivery:
            delivery, history = await athrough_chain(self._chain(), lambda client, h: client._aopen_here(request, h),
                                                     self.profile.falls_back_on)
            return delivery.with_retries(history)

        return AsyncStream(send, self._assembler)

    def structured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                   strategy: Strategy | None = None, max_retries: int = 2, **options: Any) -> T:
        """A validated value of `schema` (pydantic model, TypedDict, dataclass, or JSON-schema
        dict -> dict); see `structured_result` for the attempts, usage and cost."""
        return self.structured_result(prompt, schema=schema, strategy=strategy, max_retries=max_retries, **options).value

    async def astructured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                          strategy: Strategy | None = None, max_retries: int = 2, **options: Any) -> T:
        result = await self.astructured_result(prompt, schema=schema, strategy=strategy, max_retries=max_retries, **options)
        return result.value

    def structured_result(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                          strategy: Strategy | None = None, max_retries: int = 2, **options: Any) -> StructuredResult[T]:
        """Like `structured`, with every attempt and the usage and cost summed over them."""
        request, target, chosen = self._structured_call(prompt, schema, strategy, max_retries, options)
        return schema_module.run(self, request, target, chosen, max_retries)

    async def astructured_result(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                                 strategy: Strategy | None = None, max_retries: int = 2,
                                 **options: Any) -> StructuredResult[T]:
        request, target, chosen = self._structured_call(prompt, schema, strategy, max_retries, options)
        return await schema_module.arun(self, request, target, chosen, max_retries)

    def stream_structured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                          strategy: Strategy | None = None, **options: Any) -> StructuredStream[T]:
        """Partial objects (dicts) as the fields arrive, then the validated value; native or tool
        strategy. An invalid final answer raises `SchemaValidationError` (it is not asked again)."""
        request, target, chosen = self._structured_call(prompt, schema, strategy, 0, options)
        accumulator = Accumulator(self, target, chosen)
        return StructuredStream(self.stream(schema_module.first_request(request, target, chosen)), accumulator)

    def astream_structured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                           strategy: Strategy | None = None, **options: Any) -> AsyncStructuredStream[T]:
        request, target, chosen = self._structured_call(prompt, schema, strategy, 0, options)
        accumulator = Accumulator(self, target, chosen)
        return AsyncStructuredStream(self.astream(schema_module.first_request(request, target, chosen)), accumulator)

    def _structured_call(self, prompt: Prompt | Request, schema: Any, strategy: Strategy | None, max_retries: int,
                         options: dict[str, Any]) -> tuple[Request, schema_module.Target[Any], Strategy]:
        _check_max_retries(max_retries)
        return self._request(prompt, options), schema_module.Target(schema), schema_module.choose_strategy(self.spec, strategy)

    def _validator_loop(self, prompt: Prompt | Request, validators: Sequence[Validator] | None, max_retries: int | None,
                        options: dict[str, Any]) -> tuple[ValidatorLoop, int]:
        if validators is None:
            raise InvalidRequestError("max_retries= on complete() counts re-asks after a validator refuses: pass validators= too")
        retries = 2 if max_retries is None else _check_max_retries(max_retries)
        return ValidatorLoop(self._request(prompt, options), checked(validators)), retries

    def close(self) -> None:
        if self._pipeline_instance is not None:
            self._pipeline_instance.close()

    async def aclose(self) -> None:
        if self._pipeline_instance is not None:
            await self._pipeline_instance.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- one model of the chain -------------------------------------------------------------

    def _check(self, request: Request) -> None:
        """What can be refused before any request, for this model: files, capabilities, the key.
        (A stream checks its primary model when it is made, not when iteration sends it.)"""
        files.check(request.messages, self.spec, self.model_id)
        self._key()

    def _prepared(self, request: Request, stream: bool) -> tuple[Pipeline, httpx.Request]:
        self._check(request)
        pipeline = self._pipeline()
        return pipeline, pipeline.prepare(request, self._key(), stream=stream)

    def _complete_here(self, request: Request, history: list[RetryRecord]) -> Response:
        pipeline, prepared = self._prepared(request, stream=False)

        def attempt() -> Response:
            permit = ratelimit.acquire(self.spec.name, self.model_id, _estimate(request))
            started = time.perf_counter()
            response = pipeline.response(pipeline.send(prepared, stream=False), started)
            permit.settle(_tokens_used(response, permit.estimated_tokens))
            return response

        return retry_module.call(attempt, self.retry_policy, self.model, history)

    async def _acomplete_here(self, request: Request, history: list[RetryRecord]) -> Response:
        pipeline, prepared = self._prepared(request, stream=False)

        async def attempt() -> Response:
            permit = await ratelimit.aacquire(self.spec.name, self.model_id, _estimate(request))
            started = time.perf_counter()
            response = pipeline.response(await pipeline.asend(prepared, stream=False), started)
            permit.settle(_tokens_used(response, permit.estimated_tokens))
            return response

        return await retry_module.acall(attempt, self.retry_policy, self.model, history)

    def _open_here(self, request: Request, history: list[RetryRecord]) -> Delivery:
        """A stream's HTTP response, open and 2xx (an error status is raised, so it is retried)."""
        pipeline, prepared = self._prepared(request, stream=True)

        def attempt() -> Delivery:
            permit = ratelimit.acquire(self.spec.name, self.model_id, _estimate(request))
            answer = pipeline.send(prepared, stream=True)
            if answer.status_code >= 400:
                raise pipeline.http_error(answer)
            return Delivery(answer, self._assembler, permit)

        return retry_module.call(attempt, self.retry_policy, self.model, history)

    async def _aopen_here(self, request: Request, history: list[RetryRecord]) -> Delivery:
        pipeline, prepared = self._prepared(request, stream=True)

        async def attempt() -> Delivery:
            permit = await ratelimit.aacquire(self.spec.name, self.model_id, _estimate(request))
            answer = await pipeline.asend(prepared, stream=True)
            if answer.status_code >= 400:
                raise pipeline.http_error(answer)
            return Delivery(answer, self._assembler, permit)

        return await retry_module.acall(attempt, self.retry_policy, self.model, history)

    def _chain(self) -> list[Client]:
        """This model, then the profile's fallbacks (theirs after them), each model once."""
        if self._fallbacks is None:
            chain: list[Client] = []
            seen = {self.model}
            pending = list(self.profile.fallbacks)
            while pending:
                resolved = pending.pop(0)
                if resolved.model not in seen:
                    seen.add(resolved.model)
                    fallback = Client.__new__(Client)
                    fallback._setup(self._config, resolved, None, None, None, None)
                    chain.append(fallback)
                pending = list(resolved.fallbacks) + pending
            self._fallbacks = chain
        return [self, *self._fallbacks]

    def _request(self, prompt: Prompt | Request, options: dict[str, Any], *, stream: bool = False) -> Request:
        if stream and "validators" in options:
            raise InvalidRequestError("validators= works with complete()/acomplete(): a stream's text is already delivered "
                                      "when it could be checked, so it cannot be asked again")
        if self.profile.options and not isinstance(prompt, Request):
            options = {**self.profile.options, **options}  # the call's own keywords win
        return _request(prompt, options)

    def _key(self) -> str:
        try:
            return self.spec.api_key(self._api_key)
        except ConfigurationError:
            if cassettes.replaying():
                return cassettes.REPLAY_API_KEY  # nothing is sent in replay, so no real key is needed
            raise

    def _pipeline(self) -> Pipeline:
        with self._pipeline_lock:
            if self._pipeline_instance is None:
                from llmclient.pipeline import Pipeline  # imports httpx: not before the first call

                kind = Pipeline
                if self.spec.wire == "litellm":
                    from llmclient.litellm_route import LitellmPipeline as kind

                self._pipeline_instance = kind(self.spec, self.model_id, self.base_url, self.timeout, self._assembler)
            return self._pipeline_instance


def _spec_and_model(config: Config, model: str) -> tuple[ProviderSpec, str]:
    """The provider spec (with the configuration's overrides) and model id of "<provider>/<id>"."""
    provider, _, model_id = model.partition("/")
    configured = config.provider_spec(provider)
    if configured is not None and provider not in REGISTRY:  # a provider the configuration defines
        if not model_id.strip("/ ") or model_id != model_id.strip("/ "):
            raise ConfigurationError(f"model {model!r} needs a model id after '{provider}/'")
        return configured, model_id
    spec, model_id = resolve_model(model)
    return configured or spec, model_id


def _estimate(request: Request) -> int:
    """Tokens the call may use, for a tokens-per-minute limit (settled with the real usage)."""
    chars = sum(len(m.text) for m in request.messages)
    return ratelimit.estimate_tokens(chars, request.max_tokens)


def _tokens_used(response: Response, estimate: int) -> int:
    usage = response.usage
    return estimate if usage is None else usage.input_tokens + usage.output_tokens


def _with_retries(response: Response, history: list[RetryRecord]) -> Response:
    return response.model_copy(update={"retries": tuple(history)}) if history else response


def _check_max_retries(max_retries: int) -> int:
    if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
        raise InvalidRequestError(f"max_retries must be an integer >= 0, got {max_retries!r}")
    return max_retries


def _request(prompt: Prompt | Request, options: dict[str, Any]) -> Request:
    """The call's Request: the one given, or built from the prompt and keywords (not both)."""
    if isinstance(prompt, Request):
        if options:
            raise TypeError(f"pass either a Request or keywords, not both (got {sorted(options)})")
        return prompt
    return Request.build(prompt, **options)
