"""One call to one model: `wire.encode -> transport -> wire.decode`, written once.

`Pipeline` holds everything that does no I/O (checking and encoding a `Request` into the HTTP
request, turning the answer into a `Response` or a typed error) and two thin shells that send:
`send` (sync, pooled httpx) and `asend` (asyncio, one pool per event loop). The policies (retry,
rate limits, fallback, re-asks) wrap one send; nothing here knows them.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import AsyncGenerator, Mapping
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

import httpx

from llmclient import files, transport
from llmclient.assemble import Assembler, answered_at
from llmclient.cassette_match import replay_mismatch
from llmclient.cassettes import remember_key
from llmclient.errors import (
    APIError,
    InvalidRequestError,
    LLMError,
    RequestTimeoutError,
    transport_error,
)
from llmclient.request import Request
from llmclient.scrub import guard_http_logs
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.providers import ProviderSpec

DEFAULT_TIMEOUT = 600.0
"""Seconds for one attempt of a call when neither the Client nor the configuration sets one."""
USER_AGENT = "llmclient/0.1"


class Pipeline:
    """The calls of one model at one base URL. `timeout` bounds each attempt whole (connect, send,
    every read); for a stream it bounds the wait for the response head, then each wait between
    chunks. Retries (`policies.retry`) are attempts of their own."""

    def __init__(self, spec: ProviderSpec, model_id: str, base_url: str, timeout: float | None,
                 assembler: Assembler | None = None) -> None:
        self.spec = spec
        self.model_id = model_id
        self.base_url = base_url
        self.timeout = DEFAULT_TIMEOUT if timeout is None else timeout
        self.assembler = assembler or Assembler(spec, model_id, base_url)
        self._codec = self.assembler.codec
        self._query = dict(spec.default_query)
        self._lock = threading.Lock()
        self._http: httpx.Client | None = None
        self.keys: frozenset[str] = frozenset()  # the keys this pipeline sent
        # Keyed by the loop's id: the session refers to its loop, so a weak key would never die.
        # An entry leaves when its closer runs (aclose(), or the loop's shutdown), or, for a loop
        # closed without shutting its async generators down, when the next session is made.
        self._async: dict[int, tuple[asyncio.AbstractEventLoop, Any, AsyncGenerator[None, None]]] = {}

    # --- no I/O (but for files a provider cannot fetch, downloaded here) -------------------------

    def prepare(self, request: Request, api_key: str, *, stream: bool) -> httpx.Request:
        """The HTTP request for `request` (already checked with `files.check`): files placed where
        the provider takes them, then encoded by the provider's wire."""
        wire = self._codec.encode(self.placed(request), self.spec, self.model_id, stream=stream)
        remember_key(api_key)  # inside a cassette block, masked wherever it would be recorded
        if api_key not in self.keys and len(api_key) >= 8:  # masked in the errors of its answers (an echo)
            self.keys = self.keys | {api_key}
            guard_http_logs(api_key)  # and in httpx's and httpcore's log lines
        query = self._query
        if self.spec.key_query:
            query = {**query, self.spec.key_query: api_key}
        url = self.base_url + wire.path
        if query:
            url += ("&" if "?" in url else "?") + urlencode(query)
        headers = {"content-type": "application/json", "accept": "text/event-stream" if stream else "application/json",
                   "accept-encoding": "gzip, deflate", "user-agent": USER_AGENT, **wire.headers}
        if not self.spec.key_query:
            headers[self.spec.key_header] = f"{self.spec.key_prefix or ''}{api_key}"
        headers = with_extra_headers(headers, request.extra_headers, self.spec)
        return transport.build_request("POST", url, headers, transport.json_body(wire.body))

    def placed(self, request: Request) -> Request:
        """`request` with its files where this provider takes them: files in tool results moved to
        a user turn where results hold text only, URLs it cannot fetch downloaded and inlined."""
        messages = request.messages
        if any(m.role == "tool" and m.files for m in messages) and not self.spec.takes_tool_result_files(self.model_id):
            messages = files.place_tool_result_files(messages)
        messages = files.inline_remote_files(messages, self.spec, self.model_id, self.timeout)
        return request if messages is request.messages else request.model_copy(update={"messages": messages})

    def response(self, answer: httpx.Response, started: float) -> Response:
        """A read, non-streamed answer as a Response, or its typed error (redirects included:
        they are never followed, so the key goes nowhere else)."""
        if answer.status_code >= 300:
            raise self.http_error(answer)
        return self.assembler.response(answer.content, started, answered_at(answer.headers), status=answer.status_code,
                                       content_type=answer.headers.get("content-type"))

    def http_error(self, answer: httpx.Response) -> APIError:
        return self.assembler.http_error(answer.status_code, answer.headers, answer.content).without(self.keys)

    # --- the sync shell ----------------------------------------------------------------------------

    def send(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        """The answer, its body read unless `stream` and 2xx (then the caller reads and closes it)."""
        with transport.deadline(self.timeout):
            try:
                hook = transport.interceptor
                answer = hook(request, self.spec) if hook is not None else None
                if answer is None:
                    answer = self._sync_http().send(request, stream=True)
            except Exception as exc:
                raise self._send_failed(exc, request) from exc
            if not stream or answer.status_code >= 300:
                try:
                    answer.read()
                except httpx.HTTPError as exc:
                    raise self._read_failed(exc, request) from exc
                finally:
                    answer.close()
        return answer

    async def asend(self, request: httpx.Request, *, stream: bool) -> httpx.Response:
        try:
            async with asyncio.timeout(self.timeout):
                try:
                    hook = transport.interceptor
                    answer = hook(request, self.spec) if hook is not None else None
                    if answer is None:
                        answer = await transport.async_send(await self._async_session(), request, stream=stream)
                except Exception as exc:
                    raise self._send_failed(exc, request) from exc
                if not answer.is_stream_consumed and (not stream or answer.status_code >= 300):
                    try:
                        await answer.aread()
                    except httpx.HTTPError as exc:
                        raise self._read_failed(exc, request) from exc
                    finally:
                        await answer.aclose()
        except TimeoutError as exc:
            raise RequestTimeoutError(f"{_where(request)} took longer than the timeout of {self.timeout:g} s",
                                      provider=self.spec.name, model=self.model_id) from exc
        return answer

    def close(self) -> None:
        with self._lock:
            if self._http is not None:
                self._http.close()
            self._http = None

    async def aclose(self) -> None:
        entry = self._async.get(id(asyncio.get_running_loop()))
        if entry is not None:
            await entry[2].aclose()

    def _sync_http(self) -> httpx.Client:
        with self._lock:
            if self._http is None:
                self._http = transport.sync_client(self.timeout)
            return self._http

    async def _async_session(self) -> Any:
        # An aiohttp session belongs to the event loop it was made on, and is closed with it.
        loop = asyncio.get_running_loop()
        entry = self._async.get(id(loop))
        if entry is None or entry[0] is not loop or entry[1].closed:
            for key, (other, _, _) in list(self._async.items()):
                if other.is_closed():  # its sockets are freed with it; nothing can be awaited there
                    del self._async[key]
            session = transport.async_session(self.timeout)
            closer = _close_at_loop_shutdown(session, self._async, id(loop))
            await anext(closer)
            entry = self._async[id(loop)] = (loop, session, closer)
        return entry[1]

    def _send_failed(self, exc: Exception, request: httpx.Request) -> LLMError:
        if isinstance(exc, LLMError):  # a file that changed while its body streamed
            return exc
        mismatch = replay_mismatch(exc, _where(request), self.spec.name, self.model_id)
        if mismatch is not None:
            return mismatch
        if isinstance(exc, httpx.TransportError):
            return transport_error(exc, _where(request), provider=self.spec.name, model=self.model_id)
        raise exc

    def _read_failed(self, exc: httpx.HTTPError, request: httpx.Request) -> APIError:
        return transport_error(exc, f"reading the body of {_where(request)}", provider=self.spec.name, model=self.model_id)


async def _close_at_loop_shutdown(session: Any, sessions: dict[int, Any], key: int) -> AsyncGenerator[None, None]:
    """Suspended until closed: by `aclose()`, or by the loop's shutdown (`asyncio.run` closes every
    live async generator), so a Client nobody closed leaves no open session or socket behind."""
    try:
        yield
    finally:
        if sessions.get(key, (None, None))[1] is session:
            del sessions[key]
        await session.close()


def with_extra_headers(headers: dict[str, str], extra: Mapping[str, str], spec: ProviderSpec) -> dict[str, str]:
    """The call's `extra_headers` (checked by Request) added, unless one names the provider's own
    key header or a header the wire sets."""
    if not extra:
        return headers
    taken = sorted(name for name in extra if name == spec.key_header.lower() or name in headers)
    if taken:
        raise InvalidRequestError(f"extra_headers may not set {', '.join(taken)}: llmclient sets it for {spec.name}")
    return {**headers, **extra}


def _where(request: httpx.Request) -> str:
    return f"{request.method} {request.url.copy_with(query=None)}"

