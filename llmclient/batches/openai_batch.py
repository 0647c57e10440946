"""OpenAI's Batch API (https://platform.openai.com/docs/guides/batch; shapes from the OpenAPI spec,
github:openai/openai-openapi `openapi.yaml`: `/files`, `/batches`, `/batches/{batch_id}`,
`/files/{file_id}/content`, schemas `Batch`, `BatchRequestCounts`, `BatchError`).

A part is a JSONL file of `{"custom_id", "method": "POST", "url": "/v1/chat/completions", "body"}`
lines, uploaded to `POST /v1/files` (multipart, `purpose=batch`), then `POST /v1/batches` with
`completion_window: "24h"` and `metadata` naming our job and part (`{"llmclient_job": job id,
"llmclient_part": "0"}`: metadata values are strings). `GET /v1/batches/{id}` is polled through
`validating`, `in_progress`, `finalizing` (and `cancelling`) to `completed`, `failed`, `expired` or
`cancelled`; the answers are then in the output file, the failed requests in the error file
(`GET /v1/files/{id}/content`). Each line: `{"id", "custom_id", "response": {"status_code",
"request_id", "body"}, "error"}`; `error.code` `batch_expired` / `batch_cancelled` for requests the
batch never ran.

The input file is left in place once the batch has ended: OpenAI deletes `purpose=batch` files
after 30 days unless told otherwise (the Files API's `expires_after`: "By default, files with
`purpose=batch` expire after 30 days"), and until then the dashboard's batch still shows what was
asked.

A batch whose create request got no usable answer is looked for by its metadata in
`GET /v1/batches?limit=100` (a list page: `{"object": "list", "data": [Batch], "first_id",
"last_id", "has_more"}`; the next page `after=last_id`).
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING, Any, ClassVar

from llmclient.batches.batch_http import multipart
from llmclient.batches.jobstore import error_record
from llmclient.batches.provider_api import BatchAPI, adopted, answer, classified, listed
from llmclient.errors import BatchError, LLMError, MalformedResponseError, RequestTimeoutError
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.assemble import Assembler
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.jobstore import Part

# "The file can contain up to 50,000 requests, and can be up to 200 MB in size" (CreateBatchRequest.
# input_file_id in the OpenAPI spec; the Files API: "The Batch API only supports .jsonl files up to
# 200 MB in size"). Counted in decimal megabytes: the smaller reading.
MAX_REQUESTS = 50_000
MAX_BYTES = 200_000_000
ENDPOINT = "/v1/chat/completions"

_RUNNING = {"validating": "in_progress", "in_progress": "in_progress", "finalizing": "in_progress",
            "cancelling": "in_progress"}
_ENDED = frozenset({"completed", "failed", "expired", "cancelled"})


class OpenAIBatches(BatchAPI):
    provider = "openai"
    label = "OpenAI Batch"
    own_headers: ClassVar[frozenset[str]] = frozenset()

    def limits(self) -> tuple[int, int]:
        return MAX_REQUESTS, MAX_BYTES

    def entry(self, custom_id: str, path: str, body: bytes) -> bytes:
        head = {"custom_id": custom_id, "method": "POST", "url": "/v1" + path}
        return json.dumps(head, separators=(",", ":"))[:-1].encode() + b',"body":' + body + b"}"

    def size(self, entries: int, entry_bytes: int) -> int:
        return entry_bytes + entries  # a newline after each line

    def stage(self, http: BatchHTTP, entries: list[bytes], part: Part) -> bytes:
        data = b"\n".join(entries) + b"\n"
        digest = hashlib.sha256(data).hexdigest()
        body, content_type = multipart({"purpose": "batch"}, "file", f"batch-{digest[:16]}.jsonl", data,
                                       "application/jsonl", f"llmclient-{digest[:32]}")
        uploaded = http.call("POST", "/files", "uploading the batch input file", content=body, content_type=content_type)
        part.input_file_id = _text(uploaded, "id", "the uploaded file")
        return part.input_file_id.encode()

    def create(self, http: BatchHTTP, staged: bytes, part: Part, labels: dict[str, str]) -> None:
        created = http.call("POST", "/batches", "creating the batch", creates=True,
                            json_body={"input_file_id": staged.decode(), "endpoint": ENDPOINT, "completion_window": "24h",
                                       "metadata": labels})
        part.batch_id = _text(created, "id", "the created batch")
        _read_status(created, part)

    def find(self, http: BatchHTTP, part: Part, labels: dict[str, str], taken: set[str]) -> str | None:
        found: list[dict[str, Any]] = []
        seen = 0
        for page in listed(http, "/batches", "after", "listing the batches (GET /v1/batches) to find one whose creation "
                           "was cut off"):
            seen += len(page)
            found += [batch for batch in page if batch.get("id") not in taken and _labelled(batch, labels)]
            if found:
                break
        same_file = [batch for batch in found if batch.get("input_file_id") == part.input_file_id]
        batch, why = adopted(same_file if len(found) > 1 and same_file else found,
                             f"the {seen} batches listed (GET /v1/batches)")
        if batch is None:
            return why
        part.batch_id = _text(batch, "id", "a listed batch")
        part.error = None
        _read_status(batch, part)
        return None

    def where(self, part: Part, labels: dict[str, str]) -> str:
        given = f", input file {part.input_file_id}" if part.input_file_id else ""
        return (f"the OpenAI dashboard (https://platform.openai.com/batches) or GET /v1/batches: a batch with metadata "
                f"llmclient_job={labels['llmclient_job']}, llmclient_part={labels['llmclient_part']}{given}")

    def poll(self, http: BatchHTTP, part: Part) -> None:
        batch = http.call("GET", f"/batches/{part.batch_id}", f"reading batch {part.batch_id}")
        _read_status(batch, part)

    def decode(self, line: dict[str, Any], assembler: Assembler, batch_id: str | None) -> tuple[str | None, Response | LLMError]:
        custom_id = line.get("custom_id")
        custom_id = custom_id if isinstance(custom_id, str) else None
        response, error = line.get("response"), line.get("error")
        if isinstance(error, dict):
            return custom_id, _item_error(error, assembler, batch_id)
        if not isinstance(response, dict) or not isinstance(response.get("status_code"), int):
            return custom_id, MalformedResponseError(f"a batch result line with neither a response nor an error: "
                                                     f"{json.dumps(line)[:200]}", provider=self.provider,
                                                     model=assembler.model_id)
        status, body = response["status_code"], response.get("body")
        if status >= 300:
            return custom_id, classified(assembler, body, status)
        return custom_id, answer(assembler, body)


def _item_error(error: dict[str, Any], assembler: Assembler, batch_id: str | None) -> LLMError:
    """`error` of a line: a request the batch never ran (BatchError), or a failure without an HTTP status."""
    code, message = error.get("code"), str(error.get("message") or "")
    provider, model = assembler.spec.name, assembler.model_id
    if code == "batch_expired":
        return BatchError(f"batch {batch_id}: {message or 'expired before this request ran'}", reason="expired",
                          batch_id=batch_id, error_type=code, provider=provider, model=model)
    if code == "batch_cancelled":
        return BatchError(f"batch {batch_id}: {message or 'cancelled before this request ran'}", reason="canceled",
                          batch_id=batch_id, error_type=code, provider=provider, model=model)
    if code == "request_timeout":
        return RequestTimeoutError(message or "the request to the model timed out", error_type=code, provider=provider,
                                   model=model)
    return classified(assembler, {"error": error})


def _read_status(batch: dict[str, Any], part: Part) -> None:
    status = batch.get("status")
    if not isinstance(status, str) or (status not in _ENDED and status not in _RUNNING):
        raise MalformedResponseError(f"batch {part.batch_id}: unknown status {status!r}", provider="openai")
    part.status = status
    part.state = "ended" if status in _ENDED else "in_progress"
    found_counts = batch.get("request_counts")
    counts: dict[str, Any] = found_counts if isinstance(found_counts, dict) else {}
    total = _count(counts, "total") or len(part.indices)
    done, failed = _count(counts, "completed"), _count(counts, "failed")
    part.counts = {"succeeded": done, "errored": failed, "processing": 0 if part.state == "ended" else max(0, total - done - failed)}
    for name, field in (("output", "output_file_id"), ("errors", "error_file_id")):
        file_id = batch.get(field)
        if isinstance(file_id, str) and file_id and name not in part.files:
            part.files[name] = {"url": f"/files/{file_id}/content", "complete": False}
    if status == "failed" and part.error is None:
        found = (batch.get("errors") or {}).get("data") if isinstance(batch.get("errors"), dict) else None
        said = "; ".join(f"{e.get('code')}: {e.get('message')}" + (f" (line {e['line']})" if e.get("line") else "")
                         for e in (found or []) if isinstance(e, dict)) or "no reason given"
        part.error = error_record(BatchError(f"batch {part.batch_id} failed: {said}", reason="failed",
                                             batch_id=part.batch_id, provider="openai"))


def _labelled(batch: dict[str, Any], labels: dict[str, str]) -> bool:
    metadata = batch.get("metadata")
    return isinstance(metadata, dict) and all(metadata.get(name) == value for name, value in labels.items())


def _count(counts: dict[str, Any], name: str) -> int:
    value = counts.get(name)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else 0


def _text(body: dict[str, Any], name: str, what: str) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not value:
        raise MalformedResponseError(f"{what} has no {name!r}: {json.dumps(body)[:200]}", provider="openai")
    return value
