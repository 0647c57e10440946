"""How one call goes through the response cache (`llmclient.cache`): which cache (the call's
`cache=` keyword, else the client's), whether the call is cached at all (a sample only when
asked), a call's sends looked up and its accepted answer stored, a stored stream read again."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from llmclient.assemble import Assembler
from llmclient.cache import HIT_COST, ResponseCache, StoredStream, keepable, request_key
from llmclient.errors import InvalidRequestError
from llmclient.policies.route import Route
from llmclient.request import Request
from llmclient.delivery import Delivery
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


def _target(chain: Sequence[Route]) -> tuple[str, str]:
    """What a call may be answered by, for its key: every model of its chain (a fallback's answer
    is kept under the chain's key, never a lone model's) and their base URLs."""
    return ",".join(route.model for route in chain), ",".join(route.base_url for route in chain)


class Sends:
    """One call's sends through a cache: each looked up first; only the answer the call accepts in
    the end is stored (`accepted()`), never one a validator refused and asked again about."""

    def __init__(self, use: CacheUse, chain: Sequence[Route]) -> None:
        self._use = use
        self._model, self._base_url = _target(chain)
        self._pending: tuple[str, Response] | None = None

    def send(self, request: Request, send: Callable[[Request], Response]) -> Response:
        self._pending = None
        started = time.perf_counter()
        key, stored = self._lookup(request)
        if stored is not None:
            return as_hit(stored, started)
        response = send(request)
        if key is not None:
            self._pending = (key, response)
        return response

    async def asend(self, request: Request, send: Callable[[Request], Awaitable[Response]]) -> Response:
        import asyncio  # not at import time: sync users never pay for it

        self._pending = None
        started = time.perf_counter()
        key, stored = await asyncio.to_thread(self._lookup, request)  # files are read, SQLite may wait
        if stored is not None:
            return as_hit(stored, started)
        response = await send(request)
        if key is not None:
            self._pending = (key, response)
        return response

    def accepted(self) -> None:
        """The call returned its last answer: store it (when it came from the provider)."""
        if self._pending is not None and keepable(self._pending[1]):
            key, response = self._pending
            self._use.cache.put_response(key, f"{response.provider}/{response.model}", response)

    async def aaccepted(self) -> None:
        import asyncio

        if self._pending is not None and keepable(self._pending[1]):
            key, response = self._pending
            await asyncio.to_thread(self._use.cache.put_response, key, f"{response.provider}/{response.model}", response)

    def _lookup(self, request: Request) -> tuple[str | None, Response | None]:
        key = self._use.key("complete", self._model, self._base_url, request)
        return key, None if key is None else self._use.cache.get_response(key)


class StreamCache:
    """One stream's use of a cache: a stored answer to read again, else what keeps this one."""

    def __init__(self, use: CacheUse, chain: Sequence[Route]) -> None:
        self._use, self._chain = use, chain
        self._key: str | None = None

    def lookup(self, request: Request) -> Delivery | None:
        """The stored answer as a delivery; None on a miss (or a sample nobody asked to keep)."""
        model, base_url = _target(self._chain)
        self._key = self._use.key("stream", model, base_url, request)
        stored = None if self._key is None else self._use.cache.get_stream(self._key)
        if stored is None:
            return None
        assembler = next((route.assembler for route in self._chain if route.model == stored.model), None)
        if assembler is None:  # no decoder of its own: a miss
            return None
        if not readable(stored, assembler):  # stored by a version that wrote what this one cannot read
            self._use.cache.unreadable()
            return None
        return replayed(stored, assembler)

    def keep(self, delivery: Delivery) -> None:
        """Have `delivery` stored once it has ended cleanly (see `Stream.keep_answer`)."""
        key, cache = self._key, self._use.cache
        if key is not None:
            delivery.keep = lambda model, body, content_type, date: cache.put_stream(
                key, StoredStream(model, content_type, date, body))


def readable(stored: StoredStream, assembler: Assembler) -> bool:
    """Whether the stored stream decodes whole, as `streaming.Stream` will read it. Checked before
    it is replayed, so that an entry this version cannot read is a miss (and is replaced by the
    fresh answer), not an error in the middle of the caller's loop. A second decode of a cached
    answer costs microseconds; the request it spares costs a network round trip."""
    from llmclient.assemble import StreamAssembly
    from llmclient.errors import LLMError

    try:
        if (stored.content_type or "").strip().lower().startswith("application/json"):
            assembler.response(stored.body, 0.0, None, status=200, content_type=stored.content_type)
        else:
            assembly = StreamAssembly(assembler, 0.0, None, content_type=stored.content_type)
            assembly.feed(stored.body)
            assembly.close()
            assembly.finish()
    except (LLMError, ValueError, TypeError, KeyError):
        return False
    return True


def replayed(stored: StoredStream, assembler: Assembler) -> Delivery:
    """A stored stream as an answer to read again, through the assembler of the model that gave it."""
    import httpx

    headers = {name: value for name, value in (("content-type", stored.content_type), ("date", stored.date)) if value}
    answer = httpx.Response(200, headers=headers, content=stored.body,
                            request=httpx.Request("POST", assembler.base_url or "http://cache.invalid"))
    return Delivery(answer, assembler, cached=True)
