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
from typing import TYPE_CHECKING, Any, ClassVar

from llmclient.errors import BatchError, LLMError, MalformedResponseError
from llmclient.types import Response
from llmclient.wire import StreamErrorEvent, WireFormatError

if TYPE_CHECKING:
    from llmclient.assemble import Assembler
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.jobstore import Part
    from llmclient.providers import ProviderSpec

log = logging.getLogger("llmclient")
# What a decoder may raise on a body of the wrong shape (as `llmclient.assemble` lists them).
SHAPE_ERRORS = (WireFormatError, LookupError, TypeError, AttributeError, ValueError, RecursionError, ArithmeticError)
_warned: set[str] = set()


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

    def submit(self, http: BatchHTTP, entries: list[bytes], part: Part) -> None:
        """Create the provider batch of `entries`; set `part.batch_id` (and what else it needs)."""
        raise NotImplementedError(f"submit() is not implemented by {type(self).__name__}")

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
        return assembler.malformed(problem, _dumped(body))
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

    return classify(None, payload, provider=assembler.spec.name, model=assembler.model_id, body_text=_dumped(payload))


def _dumped(value: Any) -> str:
    try:
        return json.dumps(value)[:400]
    except (TypeError, ValueError, RecursionError):
        return repr(value)[:400]
