"""How one call goes through the response cache (`llmclient.cache`): which cache (the call's
`cache=` keyword, else the client's), whether the call is cached at all (a sample only when
asked), a call's sends looked up and its accepted answer stored, a stored stream read again."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmclient.assemble import Assembler
from llmclient.cache import HIT_COST, ResponseCache, StoredStream, request_key
from llmclient.errors import InvalidRequestError
from llmclient.request import Request
from llmclient.streaming import Delivery
from llmclient.types import Response

_OPENED: dict[Path, ResponseCache] = {}
_OPENED_LOCK = threading.Lock()


def opened(value: object, *, where: str) -> ResponseCache:
    """`value` as a cache: a `ResponseCache` as it is, a directory as the one cache of that
    directory in this process (so its warning is given once and its connections are shared)."""
    if isinstance(value, ResponseCache):
        return value
    if isinstance(value, bool) or not isinstance(value, (str, os.PathLike)):
        raise InvalidRequestError(f"{where} takes a directory or a ResponseCache, got {value!r}")
    path = Path(value).expanduser().absolute()
    with _OPENED_LOCK:
        cache = _OPENED.get(path)
        if cache is None:
            cache = _OPENED[path] = ResponseCache(path)
        return cache


@dataclass(frozen=True)
class CacheUse:
    """The cache one call goes through; `asked`: the call named it itself (`cache=` on the call),
    which is what lets a sampled call (`temperature > 0`) be cached."""

    cache: ResponseCache
    asked: bool

    def key(self, kind: str, model: str, base_url: str, request: Request) -> str | None:
        """The call's key; None when this call is not to be cached (a sample nobody asked to keep)."""
        temperature = request.temperature
        if temperature is not None and temperature > 0 and not (self.asked or self.cache.sampled):
            return None
        return request_key(kind, model, base_url, request)


def use_for(client_cache: ResponseCache | None, options: dict[str, Any]) -> CacheUse | None:
    """The cache of one call: its own `cache=` keyword (taken out of `options`: False for none,
    True for the client's, or a directory or cache of its own), else the client's."""
    if "cache" not in options:
        return None if client_cache is None else CacheUse(client_cache, False)
    given = options.pop("cache")
    if given is None:
        return None if client_cache is None else CacheUse(client_cache, False)
    if given is False:
        return None
    if given is True:
        if client_cache is None:
            raise InvalidRequestError("cache=True asks for the client's response cache, and this client has none: "
                                      "make it with Client(..., cache=DIRECTORY), or pass cache=DIRECTORY on the call")
        return CacheUse(client_cache, True)
    return CacheUse(opened(given, where="cache="), True)


def as_hit(response: Response, started: float) -> Response:
    """A stored answer as this call's: marked cached, costing nothing, timed now."""
    return response.model_copy(update={"cached": True, "cost": HIT_COST,
                                       "latency_ms": (time.perf_counter() - started) * 1000})


class Sends:
    """One call's sends through a cache: each looked up first; only the answer the call accepts in
    the end is stored (`accepted()`), never one a validator refused and asked again about."""

    def __init__(self, use: CacheUse, model: str, base_url: str) -> None:
        self._use, self._model, self._base_url = use, model, base_url
        self._pending: tuple[str, Response] | None = None

    def send(self, request: Request, send: Callable[[Request], Response]) -> Response:
        self._pending = None
        key = self._use.key("complete", self._model, self._base_url, request)
        if key is None:
            return send(request)
        started = time.perf_counter()
        stored = self._use.cache.get_response(key)
        if stored is not None:
            return as_hit(stored, started)
        response = send(request)
        self._pending = (key, response)
        return response

    async def asend(self, request: Request, send: Callable[[Request], Awaitable[Response]]) -> Response:
        import asyncio  # not at import time: sync users never pay for it

        self._pending = None
        key = self._use.key("complete", self._model, self._base_url, request)
        if key is None:
            return await send(request)
        started = time.perf_counter()
        stored = await asyncio.to_thread(self._use.cache.get_response, key)  # SQLite may wait for a writer
        if stored is not None:
            return as_hit(stored, started)
        response = await send(request)
        self._pending = (key, response)
        return response

    def accepted(self) -> None:
        """The call returned its last answer: store it (when it came from the provider)."""
        if self._pending is not None:
            key, response = self._pending
            self._use.cache.put_response(key, f"{response.provider}/{response.model}", response)

    async def aaccepted(self) -> None:
        import asyncio

        if self._pending is not None:
            key, response = self._pending
            await asyncio.to_thread(self._use.cache.put_response, key, f"{response.provider}/{response.model}", response)


def replayed(stored: StoredStream, assembler: Assembler) -> Delivery:
    """A stored stream as an answer to read again, through the assembler of the model that gave it."""
    import httpx

    headers = {name: value for name, value in (("content-type", stored.content_type), ("date", stored.date)) if value}
    answer = httpx.Response(200, headers=headers, content=stored.body,
                            request=httpx.Request("POST", assembler.base_url or "http://cache.invalid"))
    return Delivery(answer, assembler, cached=True)


def keeper(use: CacheUse, key: str) -> Callable[[str, bytes, str | None, str | None], None]:
    """What stores a stream that ended cleanly: (answering model, bytes, content type, Date)."""
    def keep(model: str, body: bytes, content_type: str | None, date: str | None) -> None:
        use.cache.put_stream(key, StoredStream(model, content_type, date, body))

    return keep
