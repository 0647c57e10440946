"""`Client`: the one orchestrator. Validates a call into a `Request`, hands it to the litellm
backend, and turns the provider's reply into a `Response`, a `Stream` or a typed error."""

from __future__ import annotations

import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, TypeVar

from llmclient import cassettes, files
from llmclient import schema as schema_module
from llmclient.assemble import Assembler, call_date
from llmclient.errors import ConfigurationError, InvalidRequestError
from llmclient.providers import resolve_model
from llmclient.request import Prompt, Request
from llmclient.schema import Strategy, StructuredResult
from llmclient.streaming import AsyncStream, Stream
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.backend import Backend, Prepared, Reply


T = TypeVar("T")


class Client:
    """A client for one model, e.g. `Client("openai/gpt-4o-mini")`.

    Every call takes a prompt (a string, or a list of messages) and the keywords of
    `Request.build`: `system=`, `tools=`, `tool_choice=`, `files=`, `max_tokens=`, `temperature=`; any other
    keyword is a provider option passed through unchanged. A ready `Request` is accepted too.
    """

    def __init__(
        self,
        model: str,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        timeout: float | None = None,
    ) -> None:
        self.spec, self.model_id = resolve_model(model)
        if base_url is not None and not base_url.startswith(("https://", "http://")):
            raise ConfigurationError(f"base_url must be an absolute http(s) URL, got {base_url!r}")
        self.base_url = (base_url or self.spec.base_url).rstrip("/")
        self.timeout = timeout
        self._api_key = api_key
        self._assembler = Assembler(self.spec, self.model_id)
        self._backend_lock = threading.Lock()
        self._backend_instance: Backend | None = None

    @property
    def model(self) -> str:
        return f"{self.spec.name}/{self.model_id}"

    def __repr__(self) -> str:
        return f"Client({self.model!r})"

    def complete(self, prompt: Prompt | Request, /, **options: Any) -> Response:
        call, key = self._prepare(prompt, options, stream=False)
        started = time.perf_counter()
        reply = self._backend().send(call, key)
        return self._finish(reply, reply.body(), started)

    async def acomplete(self, prompt: Prompt | Request, /, **options: Any) -> Response:
        call, key = self._prepare(prompt, options, stream=False)
        started = time.perf_counter()
        reply = await self._backend().asend(call, key)
        return self._finish(reply, await reply.abody(), started)

    def stream(self, prompt: Prompt | Request, /, **options: Any) -> Stream:
        """A stream of events; the request is sent when iteration starts."""
        call, key = self._prepare(prompt, options, stream=True)
        return Stream(lambda: self._backend().send(call, key), self._assembler)

    def astream(self, prompt: Prompt | Request, /, **options: Any) -> AsyncStream:
        """An async stream of events; the request is sent when iteration starts."""
        call, key = self._prepare(prompt, options, stream=True)
        return AsyncStream(lambda: self._backend().asend(call, key), self._assembler)

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

    def _structured_call(self, prompt: Prompt | Request, schema: Any, strategy: Strategy | None, max_retries: int,
                         options: dict[str, Any]) -> tuple[Request, schema_module.Target[Any], Strategy]:
        if isinstance(max_retries, bool) or not isinstance(max_retries, int) or max_retries < 0:
            raise InvalidRequestError(f"max_retries must be an integer >= 0, got {max_retries!r}")
        return _request(prompt, options), schema_module.Target(schema), schema_module.choose_strategy(self.spec, strategy)

    def close(self) -> None:
        if self._backend_instance is not None:
            self._backend_instance.close()

    async def aclose(self) -> None:
        if self._backend_instance is not None:
            await self._backend_instance.aclose()

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    async def __aenter__(self) -> Client:
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.aclose()

    def _prepare(self, prompt: Prompt | Request, options: dict[str, Any], *, stream: bool) -> tuple[Prepared, str]:
        """Validate everything and resolve the key before any request is made."""
        request = _request(prompt, options)
        files.check(request.messages, self.spec, self.model_id)  # capability and size, before any request
        return self._backend().prepare(request, stream=stream), self._key()

    def _key(self) -> str:
        try:
            return self.spec.api_key(self._api_key)
        except ConfigurationError:
            if cassettes.replaying():
                return cassettes.REPLAY_API_KEY  # nothing is sent in replay, so no real key is needed
            raise

    def _backend(self) -> Backend:
        with self._backend_lock:
            if self._backend_instance is None:
                from llmclient.backend import Backend

                self._backend_instance = Backend(self.spec, self.model_id, self.base_url, self.timeout)
            return self._backend_instance

    def _finish(self, reply: Reply, body: bytes, started: float) -> Response:
        if reply.status >= 400:
            raise self._assembler.http_error(reply.status, reply.response.headers, body) from reply.litellm_error
        return self._assembler.response(body, started, call_date(reply.response.headers))


def _request(prompt: Prompt | Request, options: dict[str, Any]) -> Request:
    """The call's Request: the one given, or built from the prompt and keywords (not both)."""
    if isinstance(prompt, Request):
        if options:
            raise TypeError(f"pass either a Request or keywords, not both (got {sorted(options)})")
        return prompt
    return Request.build(prompt, **options)
