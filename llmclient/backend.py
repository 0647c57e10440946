"""The seam to litellm: litellm builds and sends each request, we keep the raw HTTP exchange.

Every litellm route we use accepts a per-call `client=`; ours sends through `_Tap`, an httpx
transport that records each request/response of the call in progress (a context variable, so
threads and asyncio tasks each see their own). The response body is then read and decoded by
`llmclient.wire`, never taken from litellm's parsed object, so litellm's parsing defects and
estimates never reach a `Response`. A stream's bytes are read by us directly from the response.
Wires whose litellm route ignores `client=` (Cohere) are encoded by `llmclient.wire` and sent
through the same tapped client.

Imported lazily (on the first call): it imports httpx, and litellm only when a call is made.
"""

from __future__ import annotations

import asyncio
import logging
import os
import ssl
import threading
import weakref
from collections.abc import Callable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any

import httpx

from llmclient.errors import InvalidRequestError, LLMError, ReplayMismatchError, excerpt, transport_error
from llmclient.files import inline_remote_files, place_tool_result_files, tool_results_take_files
from llmclient.providers import ProviderSpec
from llmclient.litellm_args import litellm_arguments
from llmclient.request import Request
from llmclient.types import FilePart
from llmclient.upload import splice, stand_ins
from llmclient.wire import cohere as cohere_wire

_litellm: ModuleType | None = None
_import_lock = threading.Lock()

# Wires llmclient encodes itself, because litellm's route for them would bypass our HTTP client.
NATIVE_ENCODERS: dict[str, Callable[..., dict[str, Any]]] = {"cohere": cohere_wire.encode}


def load_litellm() -> ModuleType:
    """litellm, imported once with the settings replays and our retry layer need."""
    global _litellm
    with _import_lock:
        if _litellm is None:
            # Before the import: the bundled price map instead of a network fetch, and litellm's
            # pure-Python HTTP path (its native one bypasses httpx, hence cassettes and our tap).
            # Likewise its other remote tables (the Anthropic beta-header table is fetched from
            # GitHub on the first call sending an anthropic-beta header: a stray recording).
            for table in ("MODEL_COST_MAP", "ANTHROPIC_BETA_HEADERS", "AUTOROUTER_PRESETS", "BLOG_POSTS", "POLICY_TEMPLATES"):
                os.environ[f"LITELLM_LOCAL_{table}"] = "True"
            os.environ["LITELLM_RUST"] = "false"
            import litellm

            litellm.suppress_debug_info = True
            # Otherwise llama-3 model names trigger a Hugging Face tokenizer download per stream.
            litellm.disable_hf_tokenizer_download = True
            # litellm logs about its own parse of the response (which we do not use); keep it quiet.
            logging.getLogger("LiteLLM").setLevel(logging.ERROR)
            _litellm = litellm
    return _litellm


_tls_context: ssl.SSLContext | None = None
_tls_lock = threading.Lock()


def shared_tls_context() -> ssl.SSLContext:
    """One TLS context for the process. Building one loads the CA bundle (~20 ms, paid by every
    new Client otherwise); a context is safe to share across connections, clients and threads."""
    global _tls_context
    with _tls_lock:
        if _tls_context is None:
            _tls_context = httpx.create_ssl_context()
        return _tls_context


@dataclass
class Exchange:
    request: httpx.Request
    response: httpx.Response | None = None
    error: BaseException | None = None


@dataclass
class _Capture:
    splices: Mapping[bytes, FilePart]
    exchanges: list[Exchange] = field(default_factory=list)


_capture: ContextVar[_Capture | None] = ContextVar("llmclient_capture", default=None)

Interceptor = Callable[[httpx.Request, ProviderSpec], httpx.Response | None]
interceptor: Interceptor | None = None
"""Set by llmclient.testing (mock provider, simulated faults): asked before the inner transport,
hence before a cassette replay too (vcrpy patches the transport below the tap). It answers with a
response, raises an httpx error, or returns None to let the request through. Unset, a call pays
one None check."""


class _Tap(httpx.BaseTransport):
    def __init__(self, inner: httpx.BaseTransport, spec: ProviderSpec) -> None:
        self._inner = inner
        self._spec = spec  # an interceptor answers in this provider's wire format

    def handle_request(self, request: httpx.Request) -> httpx.Response:
        capture = _capture.get()
        try:
            if capture is not None:
                request = splice(request, capture.splices)
            answer = interceptor(request, self._spec) if interceptor is not None else None
            response = answer if answer is not None else self._inner.handle_request(request)
        except BaseException as exc:
            if capture is not None:
                capture.exchanges.append(Exchange(request, error=exc))
            raise
        if capture is not None:
            capture.exchanges.append(Exchange(request, response))
        return response

    def close(self) -> None:
        self._inner.close()


class _AsyncTap(httpx.AsyncBaseTransport):
    def __init__(self, inner: httpx.AsyncBaseTransport, spec: ProviderSpec) -> None:
        self._inner = inner
        self._spec = spec

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        capture = _capture.get()
        try:
            if capture is not None:
                request = splice(request, capture.splices)
            answer = interceptor(request, self._spec) if interceptor is not None else None
            response = answer if answer is not None else await self._inner.handle_async_request(request)
        except BaseException as exc:
            if capture is not None:
                capture.exchanges.append(Exchange(request, error=exc))
            raise
        if capture is not None:
            capture.exchanges.append(Exchange(request, response))
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


@dataclass
class Reply:
    """The provider's HTTP answer. For a 2xx stream the body is still unread."""

    response: httpx.Response
    litellm_error: Exception | None
    """What litellm raised, if anything (kept as the cause of the error we raise)."""

    @property
    def status(self) -> int:
        return self.response.status_code

    def body(self) -> bytes:
        try:
            return self.response.read()
        except httpx.StreamError:  # litellm consumed or closed it without keeping the bytes
            return b""

    async def abody(self) -> bytes:
        try:
            return await self.response.aread()
        except httpx.StreamError:
            return b""


@dataclass(frozen=True)
class Prepared:
    """One call, ready to send: litellm's keywords, or (native wires) the JSON body itself. Its
    inline files are stand-ins there; `splices` maps each to its file (see `llmclient.upload`)."""

    stream: bool
    litellm: dict[str, Any] | None = None
    native: dict[str, Any] | None = None
    splices: Mapping[bytes, FilePart] = field(default_factory=dict)


class Backend:
    """The HTTP clients of one `llmclient.Client`: pooled connections, one SDK client per key."""

    def __init__(self, spec: ProviderSpec, model_id: str, base_url: str, timeout: float | None) -> None:
        self._spec = spec
        self._model_id = model_id
        self._base_url = base_url
        self._timeout = timeout
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self._sdk: dict[str, Any] = {}
        self._async: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, tuple[httpx.AsyncClient, dict[str, Any]]]
        self._async = weakref.WeakKeyDictionary()

    def prepare(self, request: Request, *, stream: bool) -> Prepared:
        """Everything that can be checked before a request is made, is checked here."""
        if any(m.role == "tool" and m.files for m in request.messages) and not tool_results_take_files(self._spec, self._model_id):
            request = request.model_copy(update={"messages": place_tool_result_files(request.messages)})
        inlined = inline_remote_files(request.messages, self._spec, self._model_id, self._timeout)
        messages, splices = stand_ins(inlined)
        if messages is not request.messages:
            request = request.model_copy(update={"messages": messages})
        encode = NATIVE_ENCODERS.get(self._spec.wire) if self._spec.litellm_prefix is None else None
        if encode is not None:
            return Prepared(stream, native=encode(request, self._model_id, stream=stream), splices=splices)
        if self._spec.litellm_prefix is None:
            raise InvalidRequestError(f"provider {self._spec.name!r} has no litellm route and llmclient cannot encode the {self._spec.wire!r} wire itself")
        arguments = litellm_arguments(request, self._spec, self._model_id, self._base_url, self._timeout, stream=stream)
        return Prepared(stream, litellm=arguments, splices=splices)

    def send(self, call: Prepared, api_key: str) -> Reply:
        capture = _Capture(call.splices)
        token = _capture.set(capture)
        failure: Exception | None = None
        try:
            if call.native is not None:
                http = self._sync_http()
                response = http.send(self._native_request(http, call, api_key), stream=True)
                if not call.stream:
                    response.read()
            else:
                result = load_litellm().completion(**call.litellm or {}, api_key=api_key, client=self._sync_sdk(api_key))
                if call.stream and getattr(result, "completion_stream", 1) is None:
                    result.fetch_sync_stream()  # litellm's Gemini route connects lazily
        except Exception as exc:
            failure = exc
        finally:
            _capture.reset(token)
        return _reply(capture, failure, self._spec.name, self._model_id)

    async def asend(self, call: Prepared, api_key: str) -> Reply:
        capture = _Capture(call.splices)
        token = _capture.set(capture)
        failure: Exception | None = None
        try:
            if call.native is not None:
                http = self._async_clients()[0]
                response = await http.send(self._native_request(http, call, api_key), stream=True)
                if not call.stream:
                    await response.aread()
            else:
                litellm = load_litellm()
                result = await litellm.acompletion(**call.litellm or {}, api_key=api_key, client=self._async_sdk(api_key))
                if call.stream and getattr(result, "completion_stream", 1) is None:
                    await result.fetch_stream()
        except Exception as exc:
            failure = exc
        finally:
            _capture.reset(token)
        return _reply(capture, failure, self._spec.name, self._model_id)

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._http, self._sdk = None, {}

    async def aclose(self) -> None:
        entry = self._async.pop(asyncio.get_running_loop(), None)
        if entry is not None:
            await entry[0].aclose()

    def _native_request(self, http: httpx.Client | httpx.AsyncClient, call: Prepared, api_key: str) -> httpx.Request:
        headers = {"Authorization": f"Bearer {api_key}", "Accept": "text/event-stream" if call.stream else "application/json"}
        return http.build_request("POST", self._base_url, json=call.native, headers=headers, params=dict(self._spec.default_query))

    def _sync_http(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                transport = _Tap(httpx.HTTPTransport(verify=shared_tls_context()), self._spec)
                self._http = httpx.Client(transport=transport, timeout=self._timeout)
            return self._http

    def _sync_sdk(self, api_key: str) -> Any:
        http = self._sync_http()
        with self._lock:
            if api_key not in self._sdk:
                self._sdk[api_key] = self._make_sdk(http, api_key)
            return self._sdk[api_key]

    def _async_clients(self) -> tuple[httpx.AsyncClient, dict[str, Any]]:
        # An httpx.AsyncClient belongs to the event loop it was first used on.
        loop = asyncio.get_running_loop()
        entry = self._async.get(loop)
        if entry is None:
            transport = _AsyncTap(httpx.AsyncHTTPTransport(verify=shared_tls_context()), self._spec)
            http = httpx.AsyncClient(transport=transport, timeout=self._timeout)
            entry = self._async[loop] = (http, {})
        return entry

    def _async_sdk(self, api_key: str) -> Any:
        http, clients = self._async_clients()
        if api_key not in clients:
            clients[api_key] = self._make_sdk(http, api_key)
        return clients[api_key]

    def _make_sdk(self, http: httpx.Client | httpx.AsyncClient, api_key: str) -> Any:
        load_litellm()
        if self._spec.litellm_prefix == "openai":
            # litellm's OpenAI(-compatible) route takes an OpenAI SDK client; the others its HTTPHandler.
            import openai

            cls = openai.AsyncOpenAI if isinstance(http, httpx.AsyncClient) else openai.OpenAI
            return cls(
                api_key=api_key,
                base_url=self._base_url,
                http_client=http,  # type: ignore[arg-type]
                max_retries=0,  # our retry layer is the only one
                default_query=dict(self._spec.default_query) or None,
            )
        from litellm.llms.custom_httpx.http_handler import AsyncHTTPHandler, HTTPHandler

        if isinstance(http, httpx.AsyncClient):
            handler = _no_resend_handler(AsyncHTTPHandler)(timeout=self._timeout)
            handler.client = http  # AsyncHTTPHandler takes no client= argument
            return handler
        return HTTPHandler(client=http, timeout=self._timeout)


_NO_RESEND: dict[type, type] = {}


def _no_resend_handler(base: type) -> type:
    """litellm's AsyncHTTPHandler, minus its own resend of a request whose connection broke:
    it resends through a fresh client, outside our tap and retry layer (a second, unseen request).
    Re-raising the connection error leaves the decision to `llmclient.retry`."""
    if base not in _NO_RESEND:

        class NoResend(base):  # type: ignore[misc]
            async def single_connection_post_request(self, *args: Any, **kwargs: Any) -> Any:
                raise  # noqa: PLE0704 - called inside litellm's `except` for the connection error: re-raise it

        _NO_RESEND[base] = NoResend
    return _NO_RESEND[base]


def _reply(capture: _Capture, failure: Exception | None, provider: str, model: str) -> Reply:
    exchange = capture.exchanges[-1] if capture.exchanges else None
    if exchange is None:
        if isinstance(failure, LLMError):
            raise failure
        if failure is None:
            raise InvalidRequestError(
                f"litellm answered without sending a request through llmclient's HTTP client; "
                f"provider {provider!r} needs a litellm route that accepts client=",
                provider=provider,
                model=model,
            )
        first_line = (str(failure).strip().splitlines() or [type(failure).__name__])[0]
        raise InvalidRequestError(
            f"the request was rejected before sending: {excerpt(first_line, 300)}", provider=provider, model=model
        ) from failure
    if isinstance(exchange.error, LLMError):  # an interceptor's own error (a mock with nothing queued)
        raise exchange.error
    if exchange.error is not None:
        raise _exchange_error(exchange, provider, model) from exchange.error
    assert exchange.response is not None
    broken = _transport_failure(failure)
    if broken is not None:
        try:
            exchange.response.content  # noqa: B018 - read in full: litellm's failure was not the body's
        except httpx.ResponseNotRead:  # the body broke off while litellm read it: a transport failure
            where = f"reading the body of {exchange.request.method} {exchange.request.url.copy_with(query=None)}"
            raise transport_error(broken, where, provider=provider, model=model) from failure
    return Reply(exchange.response, failure)


def _transport_failure(exc: BaseException | None) -> httpx.TransportError | None:
    """The httpx transport error at the root of what litellm raised, if any."""
    seen: set[int] = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, httpx.TransportError):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def _exchange_error(exchange: Exchange, provider: str, model: str) -> LLMError:
    from vcr.errors import CannotOverwriteExistingCassetteException

    error = exchange.error
    assert error is not None
    where = f"{exchange.request.method} {exchange.request.url.copy_with(query=None)}"
    if isinstance(error, CannotOverwriteExistingCassetteException):
        cassette = getattr(getattr(error, "cassette", None), "_path", "the cassette")
        return ReplayMismatchError(
            f"no recorded interaction for {where} in {cassette} (replay mode sends nothing to the network; "
            f"record it with mode='record' or fix the request)",
            provider=provider,
            model=model,
        )
    return transport_error(error, where, provider=provider, model=model)
