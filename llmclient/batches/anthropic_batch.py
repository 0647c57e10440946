"""Anthropic's Message Batches API (https://platform.claude.com/docs/en/build-with-claude/batch-processing;
shapes from github:anthropics/anthropic-sdk-python `src/anthropic/types/messages/`: `MessageBatch`,
`MessageBatchRequestCounts`, `MessageBatchIndividualResponse`, the four `MessageBatch*Result`s).

A part is one `POST /v1/messages/batches` of `{"requests": [{"custom_id", "params"}]}` (params: the
Messages API body, without `stream`). `GET /v1/messages/batches/{id}` is polled until
`processing_status` is `ended` (from `in_progress`, or `canceling`); its `results_url` is then a
JSONL file of `{"custom_id", "result": {"type": "succeeded", "message"} | {"type": "errored",
"error": {"type": "error", "error": {type, message}}} | {"type": "canceled"} | {"type": "expired"}}`.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from llmclient.batches.provider_api import BatchAPI, answer, classified
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

    def submit(self, http: BatchHTTP, entries: list[bytes], part: Part) -> None:
        body = b'{"requests":[' + b",".join(entries) + b"]}"
        created = http.call("POST", "/v1/messages/batches", "creating the message batch", content=body,
                            content_type="application/json")
        batch_id = created.get("id")
        if not isinstance(batch_id, str) or not batch_id:
            raise MalformedResponseError(f"the created message batch has no id: {json.dumps(created)[:200]}",
                                         provider=self.provider)
        part.batch_id = batch_id
        _read_status(created, part)

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
    number = {name: _count(counts, name) for name in ("processing", "succeeded", "errored", "canceled", "expired")}
    part.counts = {"succeeded": number["succeeded"], "errored": number["errored"] + number["canceled"] + number["expired"],
                   "processing": number["processing"]}
    url = batch.get("results_url")
    if status == "ended" and isinstance(url, str) and url and "results" not in part.files:
        part.files["results"] = {"url": url, "complete": False}


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0
