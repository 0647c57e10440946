"""Anthropic's Message Batches API (https://platform.claude.com/docs/en/build-with-claude/batch-processing;
shapes from github:anthropics/anthropic-sdk-python `src/anthropic/types/messages/`: `MessageBatch`,
`MessageBatchRequestCounts`, `MessageBatchIndividualResponse`, the four `MessageBatch*Result`s).

A part is one `POST /v1/messages/batches` of `{"requests": [{"custom_id", "params"}]}` (params: the
Messages API body, without `stream`). `GET /v1/messages/batches/{id}` is polled until
`processing_status` is `ended` (from `in_progress`, or `canceling`); its `results_url` is then a
JSONL file of `{"custom_id", "result": {"type": "succeeded", "message"} | {"type": "errored",
"error": {"type": "error", "error": {type, message}}} | {"type": "canceled"} | {"type": "expired"}}`.

A message batch takes no metadata: one whose create request was cut off before its answer came is
looked for in `GET /v1/messages/batches?limit=100` (`{"data": [MessageBatch], "has_more",
"first_id", "last_id"}`, most recently created first, next page `after_id=last_id`) by its size
and its `created_at`, and taken only when exactly one batch fits.
"""

from __future__ import annotations

import json
import re
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any, ClassVar

from llmclient.batches.batch_http import MAX_BODY_SECONDS
from llmclient.batches.provider_api import BatchAPI, adopted, answer, classified, listed
from llmclient.errors import BatchError, LLMError, MalformedResponseError
from llmclient.types import Response
from llmclient.wire.anthropic import API_VERSION

if TYPE_CHECKING:
    from llmclient.assemble import Assembler
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.jobstore import Part

# "A Message Batch is limited to either 100,000 Message requests or 256 MB in size, whichever is
# reached first" (the batch processing guide; `requests`: maxItems 100000 in the API reference).
MAX_REQUESTS = 100_000
MAX_BYTES = 256_000_000
_WRAPPER = len(b'{"requests":[]}')
_COUNTS = ("processing", "succeeded", "errored", "canceled", "expired")  # together: the batch's requests
_RFC3339 = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)")
CLOCK_SKEW = 300.0  # seconds our clock and the provider's may differ by, when a batch is told by its time


class AnthropicBatches(BatchAPI):
    provider = "anthropic"
    label = "Anthropic Message Batches"
    own_headers: ClassVar[frozenset[str]] = frozenset({"anthropic-version"})

    def limits(self) -> tuple[int, int]:
        return MAX_REQUESTS, MAX_BYTES

    def entry(self, custom_id: str, path: str, body: bytes) -> bytes:
        return b'{"custom_id":' + json.dumps(custom_id).encode() + b',"params":' + body + b"}"

    def size(self, entries: int, entry_bytes: int) -> int:
        return _WRAPPER + entry_bytes + max(0, entries - 1)  # the commas between them

    def http(self, route: Any) -> BatchHTTP:
        from llmclient.batches.batch_http import BatchHTTP

        return BatchHTTP(route, {"anthropic-version": API_VERSION})

    def stage(self, http: BatchHTTP, entries: list[bytes], part: Part) -> bytes:
        return b'{"requests":[' + b",".join(entries) + b"]}"

    def create(self, http: BatchHTTP, staged: bytes, part: Part, labels: dict[str, str]) -> None:
        created = http.call("POST", "/v1/messages/batches", "creating the message batch", content=staged,
                            content_type="application/json", creates=True)
        batch_id = created.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise MalformedResponseError(f"the created message batch has no id: {json.dumps(created)[:200]}",
                                         provider=self.provider)
        part.batch_id = batch_id
        _read_status(created, part)

    def find(self, http: BatchHTTP, part: Part, labels: dict[str, str], taken: set[str]) -> str | None:
        """A message batch carries no label of ours: the one of as many requests created within
        the create request's time (our clock, give or take `CLOCK_SKEW`), if there is exactly one."""
        if part.submitted_at is None:
            return "the time of its submission is unknown, so no message batch can be told to be it"
        low = part.submitted_at - CLOCK_SKEW
        high = part.submitted_at + MAX_BODY_SECONDS + CLOCK_SKEW
        candidates: list[dict[str, Any]] = []
        seen = 0
        for page in listed(http, "/v1/messages/batches", "after_id", "listing the message batches (GET "
                           "/v1/messages/batches) to find one whose creation was cut off"):
            seen += len(page)
            older = False
            for batch in page:
                at = _seconds(batch.get("created_at"))
                older = older or (at is not None and at < low)
                if (at is not None and low <= at <= high and batch.get("id") not in taken
                        and _total(batch) == len(part.indices)):
                    candidates.append(batch)
            if older:  # newest first: the pages after this one are older still
                break
        chosen, why = adopted(candidates, f"the {seen} newest message batches (GET /v1/messages/batches; "
                                               f"{len(part.indices)} requests, created from {_stamp(low)} to {_stamp(high)})")
        if chosen is None:
            return why
        part.batch_id = str(chosen.get("id"))
        part.error = None
        _read_status(chosen, part)
        return None

    def where(self, part: Part, labels: dict[str, str]) -> str:
        when = f" created at about {_stamp(part.submitted_at)}" if part.submitted_at is not None else ""
        return (f"the Claude Console (https://console.anthropic.com, Batches) or GET /v1/messages/batches: a message "
                f"batch of {len(part.indices)} requests{when}")

    def poll(self, http: BatchHTTP, part: Part) -> None:
        _read_status(http.call("GET", f"/v1/messages/batches/{part.batch_id}", f"reading message batch {part.batch_id}"), part)

    def decode(self, line: dict[str, Any], assembler: Assembler, batch_id: str | None) -> tuple[str | None, Response | LLMError]:
        custom_id = line.get("custom_id")
        custom_id = custom_id if isinstance(custom_id, str) else None
        result = line.get("result")
        kind = result.get("type") if isinstance(result, dict) else None
        provider, model = assembler.spec.name, assembler.model_id
        if kind == "succeeded" and isinstance(result, dict):
            return custom_id, answer(assembler, result.get("message"))
        if kind == "errored" and isinstance(result, dict):
            return custom_id, classified(assembler, result.get("error"))
        if kind in ("expired", "canceled"):
            said = "expired before it ran (the batch's 24 hours ended)" if kind == "expired" else "was canceled before it ran"
            return custom_id, BatchError(f"item {custom_id} of message batch {batch_id} {said}", reason=str(kind),
                                         batch_id=batch_id, provider=provider, model=model)
        return custom_id, MalformedResponseError(f"a message batch result of unknown type {kind!r}: "
                                                 f"{json.dumps(line)[:200]}", provider=provider, model=model)


def _read_status(batch: dict[str, Any], part: Part) -> None:
    status = batch.get("processing_status")
    if status not in ("in_progress", "canceling", "ended"):
        raise MalformedResponseError(f"message batch {part.batch_id}: unknown processing_status {status!r}",
                                     provider="anthropic")
    part.status = str(status)
    part.state = "ended" if status == "ended" else "in_progress"
    found_counts = batch.get("request_counts")
    counts: dict[str, Any] = found_counts if isinstance(found_counts, dict) else {}
    number = {name: _count(counts, name) for name in _COUNTS}
    part.counts = {"succeeded": number["succeeded"], "errored": number["errored"] + number["canceled"] + number["expired"],
                   "processing": number["processing"]}
    url = batch.get("results_url")
    if status == "ended" and isinstance(url, str) and url and "results" not in part.files:
        part.files["results"] = {"url": url, "complete": False}


def _total(batch: dict[str, Any]) -> int:
    counts = batch.get("request_counts")
    return sum(_count(counts, name) for name in _COUNTS) if isinstance(counts, dict) else -1


def _seconds(stamp: Any) -> float | None:
    """An RFC 3339 time ("2026-03-01T21:20:00.318447Z") as Unix seconds, or None."""
    if not isinstance(stamp, str):
        return None
    found = _RFC3339.fullmatch(stamp.strip())
    if found is None:
        return None
    try:
        return datetime.fromisoformat(found[1] + (found[2] or "")[:7] + (found[3].replace("Z", "+00:00"))).timestamp()
    except ValueError:
        return None


def _stamp(seconds: float) -> str:
    return datetime.fromtimestamp(seconds, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
