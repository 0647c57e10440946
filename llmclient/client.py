"""`Client`: the public entry points. Validates a call into a `Request` and runs it through the
policies (re-ask, and down its `Chain` of models: fallback, and per model rate limits and retries,
`llmclient.policies`) around each model's `Pipeline`; hands back a `Response`, a `Stream` or a
typed error."""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, TypeVar

from llmclient import cache_use, cassettes, json_mode, schema as schema_module
from llmclient.chain import Chain
from llmclient.cache import ResponseCache
from llmclient.errors import ConfigurationError, InvalidRequestError, LLMError
from llmclient.policies.reask import aask_until_valid, ask_until_valid
from llmclient.policies.retry import RetryPolicy
from llmclient.policies.route import route_for
from llmclient.providers import ProviderSpec
from llmclient.request import Prompt, Request
from llmclient.schema import Strategy, StructuredResult
from llmclient.streaming import AsyncStream, Stream
from llmclient.telemetry import observe
from llmclient.telemetry.context import pop_call_context
from llmclient.telemetry.hooks import Hook, HookName, HookSet
from llmclient.telemetry.observe import Observation
from llmclient.structured_stream import Accumulator, AsyncStructuredStream, StructuredStream
from llmclient.types import Cost, Response, Usage
from llmclient.validators import Validator, ValidatorLoop, checked

if TYPE_CHECKING:
    from llmclient.batches import BatchJob, BatchResult


T = TypeVar("T")


class Client:
    """A client for one model, e.g. `Client("openai/gpt-4o-mini")`, or for a profile or alias
    from the configuration (`Client("fast")`; see `llmclient.config`). With no model, the
    configured default, else the first provider whose key is set.

    Every call takes a prompt (a string, or a list of messages) and the keywords of
    `Request.build`: `system=`, `tools=`, `tool_choice=`, `files=`, `max_tokens=`, `temperature=`,
    `top_p=`, `stop=`, `response_format=`; any other keyword is a provider option put into the
    request body as it is. A ready `Request` is accepted too.

    Each call is retried by `retry` (default: the configuration's policy), waits for the rate
    limits configured for its provider, and moves down the profile's fallbacks when the errors
    it falls back on persist (`response.retries` records every failed attempt).

    Every call is observed (`llmclient.telemetry`): `agent=`, `operation=`, `session=`, `user=`
    label it (they are not sent to the provider), it is logged on the `llmclient` logger, runs the
    hooks (`add_hook`), counts in open `llmclient.track()` blocks, becomes an OpenTelemetry span
    when opentelemetry is installed, and a record in the local telemetry store.

    `cache=` (a directory or a `ResponseCache`) answers repeated calls from disk (`llmclient.cache`);
    one call's `cache=False` skips it, `cache=True` (or a cache of its own) also keeps a sampled call.
    """

    def __init__(
        self,
        model: str | None = None,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
        retry: RetryPolicy | None = None,
        cache: str | os.PathLike[str] | ResponseCache | None = None,
    ) -> None:
        from llmclient.config import get_config

        if model is not None and not isinstance(model, str):
            raise ConfigurationError(f"model must be a string like 'openai/gpt-4o-mini', got {type(model).__name__}")
        config = get_config()
        self.profile = config.resolve(model) if model is not None else config.resolve_default()
        self._route = route_for(config, self.profile, api_key, base_url, timeout, retry)
        self._chain = Chain(config, self.profile, self._route, timeout=timeout, retry=retry)
        self._hooks: HookSet | None = None
        self._profile_name = self.profile.profile or (self.profile.chain[0] if self.profile.chain else None)
        self.cache = None if cache is None else cache_use.opened(cache, where="Client(cache=)")

    @property
    def spec(self) -> ProviderSpec:
        return self._route.spec

    @property
    def model_id(self) -> str:
        return self._route.model_id

    @property
    def model(self) -> str:
        return self._route.model

    @property
    def base_url(self) -> str:
        return self._route.base_url

    @property
    def timeout(self) -> float | None:
        return self._route.timeout

    @property
    def retry_policy(self) -> RetryPolicy:
        return self._route.retry_policy

    def __repr__(self) -> str:
        return f"Client({self.model!r})"

    def add_hook(self, name: HookName, hook: Hook) -> None:
        """Call `hook(event)` at `name` ("on_request", "on_response", "on_error", "on_retry") of
        this client's calls (after the global hooks of `llmclient.add_hook`)."""
        if self._hooks is None:
            self._hooks = HookSet()
        self._hooks.add(name, hook)

    def remove_hook(self, name: HookName, hook: Hook) -> None:
        if self._hooks is not None:
            self._hooks.remove(name, hook)

    def complete(self, prompt: Prompt | Request, /, *, validators: Sequence[Validator] | None = None,
                 max_retries: int | None = None, **options: Any) -> Response:
        """The model's answer. With `validators=`, an answer a validator refuses is sent back with
        the refusal and asked again, up to `max_retries` (default 2) more times; the accepted
        `Response` lists the refused ones in `.rejected` (`.total_usage`/`.total_cost` sum them).
        `response_format={"type": "json_object"}` is JSON mode (`llmclient.json_mode`): a JSON
        instruction is added, and an answer that is not JSON is refused and asked again the same way."""
        watch = self._observe("complete", "sync", options)
        token = observe.activate(watch)
        try:
            send, sends = self._sender(options)
            request, loop, retries = self._validator_loop(prompt, validators, max_retries, options)
            if loop is not None:
                watch.sent(loop.current)
                response = ask_until_valid(send, loop, retries, self.spec.name, self.model_id)
            else:
                watch.sent(request)
                response = send(request)
            if sends is not None:
                sends.accepted()
        except BaseException as error:
            watch.failed(error)
            raise
        finally:
            observe.deactivate(token)
        watch.succeeded(response, *_over_attempts(response))
        return response

    async def acomplete(self, prompt: Prompt | Request, /, *, validators: Sequence[Validator] | None = None,
                        max_retries: int | None = None, **options: Any) -> Response:
        watch = self._observe("complete", "async", options)
        token = observe.activate(watch)
        try:
            asend, sends = self._asender(options)
            request, loop, retries = self._validator_loop(prompt, validators, max_retries, options)
            if loop is not None:
                await watch.asent(loop.current)
                response = await aask_until_valid(asend, loop, retries, self.spec.name, self.model_id)
            else:
                await watch.asent(request)
                response = await asend(request)
            if sends is not None:
                await sends.aaccepted()
        except BaseException as error:
            await watch.afailed(error)
            raise
        finally:
            observe.deactivate(token)
        await watch.asucceeded(response, *_over_attempts(response))
        return response

    def stream(self, prompt: Prompt | Request, /, **options: Any) -> Stream:
        """A stream of events; the request is sent when iteration starts. Retries and fallbacks
        happen only before the first byte reaches the caller. In JSON mode (`llmclient.json_mode`)
        an answer that is not JSON raises `SchemaValidationError` after its last event."""
        watch = self._observe("stream", "sync", options)
        use = self._refused_or(watch, lambda: cache_use.use_for(self.cache, options))
        return self._stream(self._refused_or(watch, lambda: self._request(prompt, options, stream=True)), watch, use)

    def astream(self, prompt: Prompt | Request, /, **options: Any) -> AsyncStream:
        """An async stream of events; the request is sent when iteration starts."""
        watch = self._observe("stream", "async", options)
        use = self._refused_or(watch, lambda: cache_use.use_for(self.cache, options))
        return self._astream(self._refused_or(watch, lambda: self._request(prompt, options, stream=True)), watch, use)

    def _stream(self, request: Request, watch: Observation, use: cache_use.CacheUse | None) -> Stream:
        self._refused_or(watch, lambda: self._check_now(request))
        cached = None if use is None else self._refused_or(watch, lambda: cache_use.StreamCache(use, self._chain.routes()))
        return self._chain.stream(request, watch, cached)

    def _astream(self, request: Request, watch: Observation, use: cache_use.CacheUse | None) -> AsyncStream:
        self._refused_or(watch, lambda: self._check_now(request))
        cached = None if use is None else self._refused_or(watch, lambda: cache_use.StreamCache(use, self._chain.routes()))
        return self._chain.astream(request, watch, cached)

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
        watch = self._observe("structured", "sync", options)
        token = observe.activate(watch)
        try:
            send, sends = self._sender(options)
            request, target, chosen = self._structured_call(prompt, schema, strategy, max_retries, options)
            loop = schema_module.structured_loop(request, target, chosen)
            watch.sent(loop.current)
            result = ask_until_valid(send, loop, max_retries, self.spec.name, self.model_id)
            if sends is not None:
                sends.accepted()
        except BaseException as error:
            watch.failed(error)
            raise
        finally:
            observe.deactivate(token)
        watch.succeeded(result.attempts[-1].response, result.usage, result.cost, len(result.attempts) - 1)
        return result

    async def astructured_result(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                                 strategy: Strategy | None = None, max_retries: int = 2,
                                 **options: Any) -> StructuredResult[T]:
        watch = self._observe("structured", "async", options)
        token = observe.activate(watch)
        try:
            asend, sends = self._asender(options)
            request, target, chosen = self._structured_call(prompt, schema, strategy, max_retries, options)
            loop = schema_module.structured_loop(request, target, chosen)
            await watch.asent(loop.current)
            result = await aask_until_valid(asend, loop, max_retries, self.spec.name, self.model_id)
            if sends is not None:
                await sends.aaccepted()
        except BaseException as error:
            await watch.afailed(error)
            raise
        finally:
            observe.deactivate(token)
        await watch.asucceeded(result.attempts[-1].response, result.usage, result.cost, len(result.attempts) - 1)
        return result

    def stream_structured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                          strategy: Strategy | None = None, **options: Any) -> StructuredStream[T]:
        """Partial objects (dicts) as the fields arrive, then the validated value; native or tool
        strategy. An invalid final answer raises `SchemaValidationError` (it is not asked again)."""
        watch = self._observe("stream_structured", "sync", options)
        use = self._refused_or(watch, lambda: cache_use.use_for(self.cache, options))
        request, target, chosen = self._refused_or(watch, lambda: self._structured_call(prompt, schema, strategy, 0, options))
        accumulator = Accumulator(self.spec.name, self.model_id, target, chosen)
        stream = self._stream(schema_module.first_request(request, target, chosen), watch, use)
        return StructuredStream(stream, accumulator)

    def astream_structured(self, prompt: Prompt | Request, /, *, schema: type[T] | Mapping[str, Any],
                           strategy: Strategy | None = None, **options: Any) -> AsyncStructuredStream[T]:
        watch = self._observe("stream_structured", "async", options)
        use = self._refused_or(watch, lambda: cache_use.use_for(self.cache, options))
        request, target, chosen = self._refused_or(watch, lambda: self._structured_call(prompt, schema, strategy, 0, options))
        accumulator = Accumulator(self.spec.name, self.model_id, target, chosen)
        stream = self._astream(schema_module.first_request(request, target, chosen), watch, use)
        return AsyncStructuredStream(stream, accumulator)

    def batch(self, requests: Sequence[Any], /, **options: Any) -> BatchResult:
        """Every request (a prompt, messages, a `Request`, or a mapping of call keywords) answered, in
        the order given: on the provider's batch API at its batch prices (OpenAI, Anthropic), else as
        concurrent calls. Keywords: `progress=`, `poll_interval=`, `max_wait=`, `max_concurrency=`,
        `job_dir=`, and call keywords for every item (`llmclient.batches.run_batch`)."""
        from llmclient.batches.run import run_batch  # batches build on Client (imports go one way): imported when used

        return run_batch(self, requests, **options)

    async def abatch(self, requests: Sequence[Any], /, **options: Any) -> BatchResult:
        from llmclient.batches.run import arun_batch

        return await arun_batch(self, requests, **options)

    def submit_batch(self, requests: Sequence[Any], /, **options: Any) -> BatchJob:
        """Submit a batch and return its job at once: `job.job_id` resumes it from any process
        (`llmclient.batch_results(job_id)`, `llmclient batch results JOB`)."""
        from llmclient.batches.run import submit_batch

        return submit_batch(self, requests, **options)

    def close(self) -> None:
        self._chain.close()

    async def aclose(self) -> None:
        await self._chain.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    # --- the policies' sends ---------------------------------------------------------------------

    def _sender(self, options: dict[str, Any]) -> tuple[Callable[[Request], Response], cache_use.Sends | None]:
        """The call's send: through its response cache when it has one (`cache=` taken out of `options`)."""
        use = cache_use.use_for(self.cache, options)
        if use is None:
            return self._chain.send, None
        sends = cache_use.Sends(use, self._chain.routes())
        return (lambda request: sends.send(request, self._chain.send)), sends

    def _asender(self, options: dict[str, Any]) -> tuple[Callable[[Request], Awaitable[Response]], cache_use.Sends | None]:
        use = cache_use.use_for(self.cache, options)
        if use is None:
            return self._chain.asend, None
        sends = cache_use.Sends(use, self._chain.routes())
        return (lambda request: sends.asend(request, self._chain.asend)), sends

    def _check_now(self, request: Request) -> None:
        """A stream's refusals by its primary model, raised at stream() rather than at the first
        event — except one the profile falls back on (an input over the primary's context window),
        which the chain handles when iteration starts."""
        try:
            self._route.check(request)
        except LLMError as error:
            if not (self.profile.fallbacks and self.profile.falls_back_on(error)):
                raise

    @staticmethod
    def _refused_or(watch: Observation, step: Callable[[], T]) -> T:
        """`step()`; a stream refused before it is sent (a bad argument, a capability the model
        lacks, no key) is recorded as a failed call, as complete() records it."""
        try:
            return step()
        except BaseException as error:
            watch.failed(error)
            raise

    def _observe(self, kind: str, mode: str, options: dict[str, Any]) -> Observation:
        """The call's observation; its context keywords are taken out of `options`."""
        return Observation(kind, mode, self.model, self._profile_name, pop_call_context(options), self._hooks,
                           cassettes.replaying())

    def _structured_call(self, prompt: Prompt | Request, schema: Any, strategy: Strategy | None, max_retries: int,
                         options: dict[str, Any]) -> tuple[Request, schema_module.Target[Any], Strategy]:
        _check_max_retries(max_retries)
        chosen = schema_module.choose_strategy(self.spec, strategy, self.model_id)
        return self._request(prompt, options), schema_module.Target(schema), chosen

    def _validator_loop(self, prompt: Prompt | Request, validators: Sequence[Validator] | None, max_retries: int | None,
                        options: dict[str, Any]) -> tuple[Request, ValidatorLoop | None, int]:
        """The call's request, and its re-ask loop when there are validators (JSON mode's included)."""
        given = () if validators is None else checked(validators)
        request = self._request(prompt, options)
        if validators is None and not json_mode.wanted(request):
            if max_retries is not None:
                raise InvalidRequestError("max_retries= on complete() counts re-asks after a validator refuses: pass "
                                          'validators= too (or response_format={"type": "json_object"})')
            return request, None, 0
        retries = 2 if max_retries is None else _check_max_retries(max_retries)
        return request, ValidatorLoop(request, given, json_answer=json_mode.wanted(request)), retries

    def _request(self, prompt: Prompt | Request, options: dict[str, Any], *, stream: bool = False) -> Request:
        if stream and "validators" in options:
            raise InvalidRequestError("validators= works with complete()/acomplete(): a stream's text is already delivered "
                                      "when it could be checked, so it cannot be asked again")
        if self.profile.options and not isinstance(prompt, Request):
            options = {**self.profile.options, **options}  # the call's own keywords win
        return json_mode.with_instruction(_request(prompt, options))


def _over_attempts(response: Response) -> tuple[Usage | None, Cost | None]:
    """Usage and cost over the refused answers too, when there were any (else the response's own)."""
    return (response.total_usage, response.total_cost) if response.rejected else (None, None)


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
