"""What a provider's batch API has to say, and the registry of those there are.

A `BatchAPI` turns one encoded request into an entry of its batch, submits a part, reads a part's
status, and decodes one line of its result files into a `Response` (priced at the provider's batch
prices) or a typed error. Providers without a row in `BATCH_APIS` run a batch as concurrent calls
(`llmclient.batches.concurrent`).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import time
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, ClassVar
from urllib.parse import quote

from llmclient.assemble import SHAPE_ERRORS, dumped
from llmclient.errors import BatchError, LLMError, MalformedResponseError
from llmclient.types import Response
from llmclient.wire import StreamErrorEvent

if TYPE_CHECKING:
    from llmclient.assemble import Assembler
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.jobstore import Part
    from llmclient.providers import ProviderSpec

log = logging.getLogger("llmclient")
_warned: set[str] = set()
LIST_PAGES = 10  # pages of 100 read when looking for a batch whose creation was cut off (the newest 1,000)


class BatchAPI:
    """One provider's batch API; every method is needed (a subclass that lacks one fails loudly)."""

    provider: ClassVar[str]
    label: ClassVar[str]  # "OpenAI Batch"
    own_headers: ClassVar[frozenset[str]] = frozenset()  # wire headers the batch requests carry themselves

    def limits(self) -> tuple[int, int]:
        """(requests, bytes) one provider batch may hold, read when a job is split (module
        constants, so a test can lower them)."""
        raise NotImplementedError(f"limits() is not implemented by {type(self).__name__}")

    def entry(self, custom_id: str, path: str, body: bytes) -> bytes:
        """One request as its batch carries it (`path`: the wire's path; `body`: its JSON)."""
        raise NotImplementedError(f"entry() is not implemented by {type(self).__name__}")

    def size(self, entries: int, entry_bytes: int) -> int:
        """The bytes a part of `entries` entries totalling `entry_bytes` is counted at."""
        raise NotImplementedError(f"size() is not implemented by {type(self).__name__}")

    def http(self, route: Any) -> BatchHTTP:
        from llmclient.batches.batch_http import BatchHTTP

        return BatchHTTP(route)

    def stage(self, http: BatchHTTP, entries: list[bytes], part: Part) -> bytes:
        """What the create request sends for `entries` (OpenAI: after uploading them as a file,
        whose id goes in `part.input_file_id`). Nothing billed exists yet when it returns."""
        raise NotImplementedError(f"stage() is not implemented by {type(self).__name__}")

    def create(self, http: BatchHTTP, staged: bytes, part: Part, labels: dict[str, str]) -> None:
        """Send the create request (the part is saved as "submitting" first); set `part.batch_id`
        and its status. `labels` name our job and part (`llmclient_job`, `llmclient_part`)."""
        raise NotImplementedError(f"create() is not implemented by {type(self).__name__}")

    def find(self, http: BatchHTTP, part: Part, labels: dict[str, str], taken: set[str]) -> str | None:
        """Look for the batch a create request cut off may have made (`taken`: ids of the job's
        other batches). Found once: adopt it (`part.batch_id` and its status) and return None.
        Else: what was searched and why nothing was taken (none, or several: no guess)."""
        raise NotImplementedError(f"find() is not implemented by {type(self).__name__}")

    def where(self, part: Part, labels: dict[str, str]) -> str:
        """Where a person looks for a batch that may exist (the console, the list endpoint)."""
        raise NotImplementedError(f"where() is not implemented by {type(self).__name__}")

    def poll(self, http: BatchHTTP, part: Part) -> None:
        """Read the batch's status into `part`: status, state, counts, result files, batch error."""
        raise NotImplementedError(f"poll() is not implemented by {type(self).__name__}")

    def decode(self, line: dict[str, Any], assembler: Assembler, batch_id: str | None) -> tuple[str | None, Response | LLMError]:
        """(custom id, answer or typed error) of one line of a result file."""
        raise NotImplementedError(f"decode() is not implemented by {type(self).__name__}")

    def missing(self, part: Part, custom_id: str, model: str) -> LLMError:
        """The error of an item of an ended batch that no result line answers."""
        ended_as = {"expired": "expired", "cancelled": "canceled", "canceled": "canceled"}.get(part.status)
        if ended_as:
            return BatchError(f"item {custom_id} got no answer: batch {part.batch_id} {part.status} before it ran",
                              reason=ended_as, batch_id=part.batch_id, provider=self.provider, model=model)
        return MalformedResponseError(f"batch {part.batch_id} ended ({part.status}) without a result for item {custom_id}",
                                      provider=self.provider, model=model)


def listed(http: BatchHTTP, path: str, cursor: str, what: str) -> Iterator[list[dict[str, Any]]]:
    """The pages of a list endpoint (`{"data": [...], "has_more", "last_id"}`, 100 a page; the
    next page asked with `cursor`=last_id), at most `LIST_PAGES` of them."""
    after: str | None = None
    for _ in range(LIST_PAGES):
        page = http.call("GET", f"{path}?limit=100" + (f"&{cursor}={quote(after)}" if after else ""), what)
        data = page.get("data")
        if not isinstance(data, list):
            raise MalformedResponseError(f"{what}: the list has no data: {dumped(page)[:200]}", provider=http.spec.name)
        yield [batch for batch in data if isinstance(batch, dict)]
        last = page.get("last_id")
        if page.get("has_more") is not True or not isinstance(last, str) or not last:
            return
        after = last


def adopted(candidates: list[dict[str, Any]], looked: str) -> tuple[dict[str, Any] | None, str | None]:
    """The one candidate, or None and why not (none found, or several: no guess)."""
    if len(candidates) == 1:
        return candidates[0], None
    if not candidates:
        return None, f"no such batch was found among {looked}"
    ids = ", ".join(str(batch.get("id")) for batch in candidates)
    return None, f"{len(candidates)} batches could be it ({ids}): none was taken, as it cannot be told which"


def api_for(spec: ProviderSpec) -> BatchAPI | None:
    """The batch API of this provider, or None (its batches run as concurrent calls)."""
    from llmclient.batches.anthropic_batch import AnthropicBatches
    from llmclient.batches.openai_batch import OpenAIBatches

    apis: dict[tuple[str, str], type[BatchAPI]] = {("openai", "openai"): OpenAIBatches,
                                                   ("anthropic", "anthropic"): AnthropicBatches}
    kind = apis.get((spec.name, spec.wire))
    return kind() if kind is not None else None


def answer(assembler: Assembler, body: Any) -> Response | LLMError:
    """A result body (the provider's JSON answer to one request) as the library reads a call's,
    priced at the provider's batch prices: the service tier is "batch" whatever the body says.
    A model without batch prices in the table gets cost None (unknown), not its standard price."""
    started = time.perf_counter()
    try:
        decoded = assembler.codec.decode(body)
    except StreamErrorEvent as event:
        return assembler.stream_error(event)
    except SHAPE_ERRORS as problem:
        return assembler.malformed(problem, dumped(body))
    decoded = dataclasses.replace(decoded, service_tier="batch")
    try:
        response = assembler.build(decoded, body if isinstance(body, dict) else {"body": body}, started, status=None)
    except LLMError as error:
        return error
    cost = response.cost
    if cost is not None and cost.source != "provider" and (cost.prices is None or cost.prices.service_tier != "batch"):
        model = f"{response.provider}/{response.model}"
        if model not in _warned:
            _warned.add(model)
            log.warning("%s: the price table has no batch price for this request; its cost is unknown (None)", model)
        response = response.model_copy(update={"cost": None})
    return response


def classified(assembler: Assembler, payload: Any, status: int | None = None) -> LLMError:
    """The typed error of an error object from a result line (`status`: the HTTP status it carries)."""
    if status is not None:
        return assembler.http_error(status, {}, json.dumps(payload).encode())
    from llmclient.errors import classify

    return classify(None, payload, provider=assembler.spec.name, model=assembler.model_id, body_text=dumped(payload))
