"""The caller's items as requests, checked and encoded, and split into provider batches.

An item is a prompt (a string, a `Message`, a list of messages), a `Request`, or a mapping of
`Request.build` keywords with `prompt` or `messages` (`{"prompt": "Hi", "max_tokens": 10}`). The
batch's own keywords apply to every item (an item's own win); a client profile's options are merged
as in `Client.complete`, and JSON mode adds its instruction the same way. Each item gets the checks
a call gets before it is sent (`Route.check`: files, the model catalogue's limits) and is encoded by
the provider's own wire. An item refused at any step becomes that item's typed error and is not
sent; the others go.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from llmclient import json_mode
from llmclient.errors import InvalidRequestError, LLMError
from llmclient.request import Request
from llmclient.telemetry.context import KEYWORDS
from llmclient.types import Message

if TYPE_CHECKING:
    from llmclient.batches.provider_api import BatchAPI
    from llmclient.client import Client
    from llmclient.policies.route import Route

log = logging.getLogger("llmclient")


def custom_ids(count: int) -> list[str]:
    """Our ids of the items, in order: item-000000, item-000001, ... (letters, digits and '-', as
    both providers accept)."""
    width = max(6, len(str(max(0, count - 1))))
    return [f"item-{index:0{width}d}" for index in range(count)]


def build_requests(client: Client, items: Sequence[Any], options: Mapping[str, Any]) -> tuple[dict[int, Request], dict[int, LLMError]]:
    """Each item's Request, or its error, by index."""
    if isinstance(items, (str, bytes, Mapping)) or not isinstance(items, Sequence):
        raise InvalidRequestError(f"a batch takes a list of requests (prompts, message lists, Requests or dicts of "
                                  f"Request.build keywords), got {type(items).__name__}")
    if not items:
        raise InvalidRequestError("a batch needs at least one request")
    requests: dict[int, Request] = {}
    refused: dict[int, LLMError] = {}
    for index, item in enumerate(items):
        try:
            requests[index] = _request(client, item, options)
        except LLMError as error:
            refused[index] = error
        except (TypeError, ValueError) as error:
            refused[index] = InvalidRequestError(f"batch item {index}: {error}")
            refused[index].__cause__ = error
    return requests, refused


def _request(client: Client, item: Any, options: Mapping[str, Any]) -> Request:
    if isinstance(item, Request):
        if options:
            raise InvalidRequestError(f"a Request item takes none of the batch's keywords ({', '.join(sorted(options))}): "
                                      f"build them into the Request, or give the item as a dict")
        return client._request(item, {})
    if isinstance(item, Mapping):
        given = dict(item)
        labels = sorted(set(given) & set(KEYWORDS))
        if labels:
            raise InvalidRequestError(f"{', '.join(labels)} label the whole batch: pass them to the batch call, "
                                      f"not inside an item")
        if ("prompt" in given) == ("messages" in given):
            raise InvalidRequestError('a dict item needs exactly one of "prompt" or "messages", got keys '
                                      f"{sorted(given)}")
        prompt = given.pop("prompt") if "prompt" in given else given.pop("messages")
        return client._request(prompt, {**options, **given})
    if isinstance(item, (str, Message, list, tuple)):
        return client._request(item, dict(options))
    raise InvalidRequestError(f"a batch item is a prompt, a message list, a Request or a dict, not a {type(item).__name__}")


def encode(route: Route, api: BatchAPI, requests: dict[int, Request], ids: list[str]) -> tuple[dict[int, bytes], dict[int, LLMError]]:
    """Each checked request as its provider batch carries it (the wire's own encoding), or its error."""
    pipeline = route.pipeline()
    entries: dict[int, bytes] = {}
    refused: dict[int, LLMError] = {}
    for index, request in requests.items():
        try:
            entries[index] = _entry(route, api, pipeline, request, ids[index])
        except LLMError as error:
            refused[index] = error
    return entries, refused


def _entry(route: Route, api: BatchAPI, pipeline: Any, request: Request, custom_id: str) -> bytes:
    from llmclient import transport  # httpx: loaded with the first batch, not by the import

    route.check(request)
    if request.extra_headers:
        raise InvalidRequestError(f"extra_headers ({', '.join(sorted(request.extra_headers))}) cannot be sent per "
                                  f"request in a batch")
    placed = pipeline.placed(json_mode.for_wire(request, route.spec))
    wire = route.assembler.codec.encode(placed, route.spec, route.model_id, stream=False)
    needed = sorted(name for name in wire.headers if name.lower() not in api.own_headers)
    if needed:
        raise InvalidRequestError(f"this request needs the header(s) {', '.join(needed)}, which {api.label} cannot "
                                  f"send per request")
    body = {key: value for key, value in wire.body.items() if key != "stream"}  # a batch is never streamed
    data = transport.json_body(body)
    return api.entry(custom_id, urlsplit(wire.path).path, data if isinstance(data, bytes) else b"".join(data))


def split(api: BatchAPI, entries: dict[int, bytes]) -> tuple[list[list[int]], dict[int, LLMError], str | None]:
    """The entries in provider batches within the provider's limits, in order; an entry that alone
    is over the byte limit is refused (its error names the limit). Also: why the job was split."""
    max_requests, max_bytes = api.limits()
    parts: list[list[int]] = []
    refused: dict[int, LLMError] = {}
    current: list[int] = []
    current_bytes = 0
    reasons: set[str] = set()
    for index in sorted(entries):
        size = len(entries[index])
        if api.size(1, size) > max_bytes:
            refused[index] = InvalidRequestError(
                f"batch item {index} is {api.size(1, size):,} bytes as {api.label} carries it, over its limit of "
                f"{max_bytes:,} bytes per batch: it was not sent (send it as a call of its own, or make it smaller)")
            continue
        if current and len(current) >= max_requests:
            reasons.add(f"at most {max_requests:,} requests per batch")
        elif current and api.size(len(current) + 1, current_bytes + size) > max_bytes:
            reasons.add(f"at most {max_bytes:,} bytes per batch")
        else:
            current.append(index)
            current_bytes += size
            continue
        parts.append(current)
        current, current_bytes = [index], size
    if current:
        parts.append(current)
    note = None
    if len(parts) > 1:
        note = f"split into {len(parts)} provider batches: {api.label} takes {' and '.join(sorted(reasons))}"
        log.info("%s: %d requests %s", api.provider, len(entries) - len(refused), note)
    return parts, refused, note
