#!/usr/bin/env python3
"""Author the batch cassettes in cassettes/batches/ from the providers' API references (no key is
available to the project, so none of them is a recording). See cassettes/batches/README.md for
where each shape comes from.

    .venv/bin/python scripts/author_batch_cassettes.py           write the cassettes
    .venv/bin/python scripts/author_batch_cassettes.py --check   exit 1 if a committed one differs

The requests are written out here from the providers' formats, independently of llmclient's
encoders: a cassette that stops matching what llmclient sends is a change to look at, not to
regenerate blindly. Numbers the tests check (answers, usage) follow simple rules stated below, so
the tests can compute what they expect without reading this script:

- item i asks "What is i + i? Answer with the number only." and is answered str(2 * i);
- OpenAI (gpt-4o-mini): prompt_tokens 20 + i % 3, completion_tokens 1 + i % 2;
- Anthropic (claude-haiku-4-5): input_tokens 15 + i % 4, output_tokens 2 + i % 3.
Result files list the items in a shuffled order (the providers do not promise the input order).
"""

from __future__ import annotations

import argparse
import hashlib
import json
import random
import sys
from pathlib import Path
from typing import Any

import yaml

OUT = Path(__file__).resolve().parent.parent / "cassettes" / "batches"
OPENAI = "https://api.openai.com/v1"
ANTHROPIC = "https://api.anthropic.com"
CREATED = 1772400000  # 2026-03-01T21:20:00Z
JOB_ID = "job-0000000000000001"  # the job id the tests pin (llmclient's are random), named in OpenAI batch metadata
HEADER = ["Authored, not recorded (no provider key is available to the project), by scripts/author_batch_cassettes.py;",
          "see cassettes/batches/README.md for the sources of every shape."]


def prompt(i: int) -> str:
    return f"What is {i} + {i}? Answer with the number only."


def cid(i: int) -> str:
    return f"item-{i:06d}"


def hexid(label: str, length: int = 24) -> str:
    return hashlib.sha256(label.encode()).hexdigest()[:length]


def compact(value: Any) -> str:
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def interaction(method: str, uri: str, request_headers: dict[str, str], body: str | None, status: int,
                response_headers: dict[str, str], response: str) -> dict[str, Any]:
    messages = {200: "OK", 206: "Partial Content"}
    return {"request": {"body": body, "headers": {k: [v] for k, v in request_headers.items()}, "method": method, "uri": uri},
            "response": {"body": {"string": response}, "headers": {k: [v] for k, v in response_headers.items()},
                         "status": {"code": status, "message": messages[status]}}}


def document(notes: list[str], interactions: list[dict[str, Any]]) -> str:
    head = "".join(f"# {line}\n" for line in [*HEADER, *notes])
    return head + yaml.safe_dump({"interactions": interactions, "version": 1}, sort_keys=False, width=10**9,
                                 allow_unicode=True, default_flow_style=False)


def ranged(interactions: list[dict[str, Any]], content: bytes, offset: int) -> None:
    """Turn the last interaction (a whole file) into the answer to `Range: bytes=offset-`."""
    last = interactions[-1]
    last["request"]["headers"]["range"] = [f"bytes={offset}-"]
    rest = content[offset:]
    last["response"]["status"] = {"code": 206, "message": "Partial Content"}
    last["response"]["headers"]["content-range"] = [f"bytes {offset}-{len(content) - 1}/{len(content)}"]
    last["response"]["body"]["string"] = rest.decode()


# --- OpenAI --------------------------------------------------------------------------------------

OPENAI_AUTH = {"authorization": "REDACTED"}
OPENAI_JSON = {"content-type": "application/json"}


def openai_body(i: int, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": prompt(i)}], "max_completion_tokens": 10,
            **(extra or {})}


def openai_completion(i: int) -> dict[str, Any]:
    usage = {"prompt_tokens": 20 + i % 3, "completion_tokens": 1 + i % 2}
    usage["total_tokens"] = usage["prompt_tokens"] + usage["completion_tokens"]
    return {"id": f"chatcmpl-{hexid(f'openai completion {i}', 29)}", "object": "chat.completion", "created": CREATED + 60 + i,
            "model": "gpt-4o-mini-2024-07-18",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": str(2 * i), "refusal": None,
                                                 "annotations": []}, "logprobs": None, "finish_reason": "stop"}],
            "usage": {**usage, "prompt_tokens_details": {"cached_tokens": 0, "audio_tokens": 0},
                      "completion_tokens_details": {"reasoning_tokens": 0, "audio_tokens": 0,
                                                    "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0}},
            "service_tier": "default", "system_fingerprint": "fp_560af6e559"}


def openai_line(i: int, response: dict[str, Any] | None = None, error: dict[str, Any] | None = None) -> str:
    if response is None and error is None:
        response = {"status_code": 200, "request_id": hexid(f"openai request {i}", 32), "body": openai_completion(i)}
    return compact({"id": f"batch_req_{hexid(f'openai batch request {i}')}", "custom_id": cid(i),
                    "response": response, "error": error})


def openai_upload(lines: list[str], name: str) -> tuple[dict[str, Any], str]:
    data = ("\n".join(lines) + "\n").encode()
    digest = hashlib.sha256(data).hexdigest()
    boundary = f"llmclient-{digest[:32]}"
    body = (f'--{boundary}\r\nContent-Disposition: form-data; name="purpose"\r\n\r\nbatch\r\n'
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="batch-{digest[:16]}.jsonl"\r\n'
            f"Content-Type: application/jsonl\r\n\r\n").encode() + data + f"\r\n--{boundary}--\r\n".encode()
    file_id = f"file-{hexid(f'{name} input', 22)}"
    answer = {"object": "file", "id": file_id, "purpose": "batch", "filename": f"batch-{digest[:16]}.jsonl",
              "bytes": len(data), "created_at": CREATED, "expires_at": CREATED + 30 * 86400, "status": "processed",
              "status_details": None}
    return interaction("POST", f"{OPENAI}/files", {**OPENAI_AUTH, "content-type": f"multipart/form-data; boundary={boundary}"},
                       body.decode(), 200, OPENAI_JSON, compact(answer)), file_id


def openai_batch(batch_id: str, file_id: str, status: str, counts: tuple[int, int, int], *, output: str | None = None,
                 errors_file: str | None = None, errors: list[dict[str, Any]] | None = None,
                 metadata: dict[str, str] | None = None) -> str:
    total, completed, failed = counts
    at = {"validating": 0, "in_progress": 5, "finalizing": 3000, "completed": 3030, "failed": 9, "expired": 86400}
    times = {name: None for name in ("in_progress_at", "finalizing_at", "completed_at", "failed_at", "expired_at",
                                     "cancelling_at", "cancelled_at")}
    if status != "validating" and status != "failed":
        times["in_progress_at"] = CREATED + 5
    if status in ("finalizing", "completed", "expired"):
        times["finalizing_at"] = CREATED + at[status] - 30
    if status in ("completed", "failed", "expired"):
        times[f"{status}_at"] = CREATED + at[status]
    return compact({"id": batch_id, "object": "batch", "endpoint": "/v1/chat/completions", "model": "gpt-4o-mini-2024-07-18",
                    "errors": None if errors is None else {"object": "list", "data": errors}, "input_file_id": file_id,
                    "completion_window": "24h", "status": status, "output_file_id": output, "error_file_id": errors_file,
                    "created_at": CREATED, "expires_at": CREATED + 86400, **times,
                    "request_counts": {"total": total, "completed": completed, "failed": failed}, "metadata": metadata})


def openai_job(name: str, items: dict[int, dict[str, Any]], polls: list[tuple[str, tuple[int, int, int]]],
               files: dict[str, list[str]], errors: list[dict[str, Any]] | None = None, part: int = 0) -> list[dict[str, Any]]:
    """Upload, create (validating), each poll, then each result file's content. The create names
    the job and part in `metadata` (the tests pin the job id to JOB_ID)."""
    lines = [compact({"custom_id": cid(i), "method": "POST", "url": "/v1/chat/completions", "body": body})
             for i, body in items.items()]
    upload, file_id = openai_upload(lines, name)
    batch_id = f"batch_{hexid(name)}"
    ids = {kind: f"file-{hexid(f'{name} {kind}', 22)}" for kind in files}
    metadata = {"llmclient_job": JOB_ID, "llmclient_part": str(part)}
    create = interaction("POST", f"{OPENAI}/batches", {**OPENAI_AUTH, **OPENAI_JSON},
                         compact({"input_file_id": file_id, "endpoint": "/v1/chat/completions", "completion_window": "24h",
                                  "metadata": metadata}),
                         200, OPENAI_JSON, openai_batch(batch_id, file_id, "validating", (0, 0, 0), metadata=metadata))
    out = [upload, create]
    for number, (status, counts) in enumerate(polls):
        last = number == len(polls) - 1
        out.append(interaction("GET", f"{OPENAI}/batches/{batch_id}", OPENAI_AUTH, None, 200, OPENAI_JSON,
                               openai_batch(batch_id, file_id, status, counts, output=ids.get("output") if last else None,
                                            errors_file=ids.get("errors") if last else None, errors=errors if last else None,
                                            metadata=metadata)))
    for kind, content in files.items():
        out.append(interaction("GET", f"{OPENAI}/files/{ids[kind]}/content", OPENAI_AUTH, None, 200,
                               {"content-type": "application/octet-stream"}, "".join(line + "\n" for line in content)))
    return out


def openai_cassettes() -> dict[str, str]:
    hundred = {i: openai_body(i) for i in range(100)}
    order = list(range(100))
    random.Random(2026).shuffle(order)
    output = [openai_line(i) for i in order]
    polls = [("validating", (0, 0, 0)), ("in_progress", (100, 37, 0)), ("finalizing", (100, 100, 0)),
             ("completed", (100, 100, 0))]
    full = openai_job("openai_100", hundred, polls, {"output": output})
    content = "".join(line + "\n" for line in output).encode()
    resumed = openai_job("openai_100", hundred, [("completed", (100, 100, 0))], {"output": output})
    offset = len("".join(line + "\n" for line in output[:40]).encode())
    ranged(resumed, content, offset)

    bad = {"status_code": 400, "request_id": hexid("openai bad request", 32), "body": {"error": {
        "message": "Invalid 'top_logprobs': integer above maximum value. Expected a value <= 20, but got 30 instead.",
        "type": "invalid_request_error", "param": "top_logprobs", "code": "integer_above_max_value"}}}
    errors_items = {0: openai_body(0), 1: openai_body(1), 2: openai_body(2, {"logprobs": True, "top_logprobs": 30}),
                    4: openai_body(4)}  # item 3 asks max_tokens=1,000,000: refused before sending
    with_errors = openai_job("openai_errors", errors_items, [("completed", (4, 3, 1))],
                             {"output": [openai_line(4), openai_line(0), openai_line(1)],
                              "errors": [openai_line(2, response=bad)]})

    expired_error = {"code": "batch_expired", "message": "This request could not be executed before the completion window expired."}
    expired = openai_job("openai_expired", {i: openai_body(i) for i in range(4)},
                         [("in_progress", (4, 1, 0)), ("expired", (4, 2, 0))],
                         {"output": [openai_line(1), openai_line(0)],
                          "errors": [openai_line(2, error=expired_error), openai_line(3, error=expired_error)]})

    failed = openai_job("openai_failed", {i: openai_body(i) for i in range(2)}, [("failed", (0, 0, 0))], {},
                        errors=[{"code": "token_limit_exceeded", "message": "Enqueued token limit reached for gpt-4o-mini "
                                 "in organization org-REDACTED. Limit: 2,000,000 enqueued tokens. Please try submitting "
                                 "your requests again later.", "param": None, "line": None}])

    split: list[dict[str, Any]] = []
    for number, part in enumerate([[0, 1], [2, 3], [4]]):
        job = openai_job(f"openai_split_{number}", {i: openai_body(i) for i in part}, [("completed", (len(part), len(part), 0))],
                         {"output": [openai_line(i) for i in reversed(part)]}, part=number)
        split += job
    return {
        "openai_100.yaml": document(["OpenAI Batch: 100 chat completions of gpt-4o-mini, polled through validating, in_progress,",
                                     "finalizing and completed; the output file lists them shuffled."], full),
        "openai_100_resume.yaml": document(["The same batch, already completed when polled; its output file fetched from byte "
                                            f"{offset} (the first 40 lines", "arrived before the connection broke): a 206 "
                                            "Partial Content answer to Range: bytes=N-."], resumed),
        "openai_errors.yaml": document(["OpenAI Batch of 4 requests (item 3 of 5 was refused before sending): item 2 fails "
                                        "with HTTP 400", "(top_logprobs above 20) in the error file; the others answer."],
                                       with_errors),
        "openai_expired.yaml": document(["OpenAI Batch of 4 that expired with 2 requests done: the other two are in the error "
                                         "file as batch_expired."], expired),
        "openai_failed.yaml": document(["OpenAI Batch of 2 that failed as a whole (token_limit_exceeded); no result file."],
                                       failed),
        "openai_split.yaml": document(["5 requests split into 3 OpenAI batches of at most 2 (the test lowers MAX_REQUESTS)."],
                                      split),
    }


# --- Anthropic -----------------------------------------------------------------------------------

ANTHROPIC_HEADERS = {"anthropic-version": "2023-06-01", "x-api-key": "REDACTED"}
ANTHROPIC_JSON = {"content-type": "application/json"}


def anthropic_params(i: int, text: str | None = None, extra: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5", "max_tokens": 10,
            "messages": [{"role": "user", "content": [{"type": "text", "text": text or prompt(i)}]}], **(extra or {})}


def anthropic_message(i: int) -> dict[str, Any]:
    return {"model": "claude-haiku-4-5-20251001", "id": f"msg_01{hexid(f'anthropic message {i}', 22)}", "type": "message",
            "role": "assistant", "content": [{"type": "text", "text": str(2 * i)}], "stop_reason": "end_turn",
            "stop_sequence": None, "usage": {"input_tokens": 15 + i % 4, "cache_creation_input_tokens": 0,
                                             "cache_read_input_tokens": 0,
                                             "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": 0},
                                             "output_tokens": 2 + i % 3, "service_tier": "batch"}}


def anthropic_batch(batch_id: str, status: str, counts: dict[str, int]) -> str:
    ended = status == "ended"
    return compact({"id": batch_id, "type": "message_batch", "processing_status": status,
                    "request_counts": {name: counts.get(name, 0) for name in ("processing", "succeeded", "errored",
                                                                              "canceled", "expired")},
                    "ended_at": "2026-03-01T21:41:07.524181Z" if ended else None,
                    "created_at": "2026-03-01T21:20:00.318447Z", "expires_at": "2026-03-02T21:20:00.318447Z",
                    "archived_at": None, "cancel_initiated_at": None,
                    "results_url": f"{ANTHROPIC}/v1/messages/batches/{batch_id}/results" if ended else None})


def anthropic_job(name: str, items: dict[int, dict[str, Any]], polls: list[tuple[str, dict[str, int]]],
                  results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    batch_id = f"msgbatch_01{hexid(name, 22)}"
    body = compact({"requests": [{"custom_id": cid(i), "params": params} for i, params in items.items()]})
    out = [interaction("POST", f"{ANTHROPIC}/v1/messages/batches", {**ANTHROPIC_HEADERS, **ANTHROPIC_JSON}, body, 200,
                       ANTHROPIC_JSON, anthropic_batch(batch_id, "in_progress", {"processing": len(items)}))]
    for status, counts in polls:
        out.append(interaction("GET", f"{ANTHROPIC}/v1/messages/batches/{batch_id}", ANTHROPIC_HEADERS, None, 200,
                               ANTHROPIC_JSON, anthropic_batch(batch_id, status, counts)))
    out.append(interaction("GET", f"{ANTHROPIC}/v1/messages/batches/{batch_id}/results", ANTHROPIC_HEADERS, None, 200,
                           {"content-type": "application/binary"}, "".join(compact(line) + "\n" for line in results)))
    return out


def succeeded(i: int) -> dict[str, Any]:
    return {"custom_id": cid(i), "result": {"type": "succeeded", "message": anthropic_message(i)}}


SPLIT_LIMIT = 450  # the MAX_BYTES tests/test_batch_anthropic.py sets for the split


def anthropic_cassettes() -> dict[str, str]:
    hundred = {i: anthropic_params(i) for i in range(100)}
    order = list(range(100))
    random.Random(2027).shuffle(order)
    results = [succeeded(i) for i in order]
    full = anthropic_job("anthropic_100", hundred, [("in_progress", {"processing": 100}), ("in_progress", {"processing": 100}),
                                                    ("ended", {"succeeded": 100})], results)
    resumed = anthropic_job("anthropic_100", hundred, [("ended", {"succeeded": 100})], results)
    content = "".join(compact(line) + "\n" for line in results).encode()
    offset = len("".join(compact(line) + "\n" for line in results[:40]).encode())
    ranged(resumed, content, offset)

    errored = {"custom_id": cid(1), "result": {"type": "errored", "error": {"type": "error", "error": {
        "type": "invalid_request_error", "message": "top_k: Input should be greater than or equal to 0"},
        "request_id": "req_011CYbAtchErr0rExamp1e01"}}}
    with_errors = anthropic_job("anthropic_errors", {0: anthropic_params(0), 1: anthropic_params(1, extra={"top_k": -1}),
                                                     2: anthropic_params(2), 3: anthropic_params(3), 4: anthropic_params(4)},
                                [("ended", {"succeeded": 3, "errored": 1, "expired": 1})],
                                [succeeded(3), errored, {"custom_id": cid(2), "result": {"type": "expired"}}, succeeded(0),
                                 succeeded(4)])

    split: list[dict[str, Any]] = []
    for number, part in enumerate([[0, 1], [2, 3], [4]]):
        entries = [compact({"custom_id": cid(i), "params": anthropic_params(i)}).encode() for i in part]
        size = len(b'{"requests":[]}') + sum(map(len, entries)) + len(entries) - 1
        bigger = size + len(compact({"custom_id": cid(9), "params": anthropic_params(9)}).encode()) + 1
        assert size <= SPLIT_LIMIT and (len(part) < 2 or bigger > SPLIT_LIMIT), (part, size, bigger)  # the limit's split
        split += anthropic_job(f"anthropic_split_{number}", {i: anthropic_params(i) for i in part},
                               [("ended", {"succeeded": len(part)})], [succeeded(i) for i in reversed(part)])
    return {
        "anthropic_100.yaml": document(["Anthropic Message Batches: 100 requests to claude-haiku-4-5, polled while in_progress "
                                        "until ended;", "the results file lists them shuffled."], full),
        "anthropic_100_resume.yaml": document(["The same batch, already ended when polled; its results fetched from byte "
                                               f"{offset} (the first 40 lines", "arrived before the connection broke): a 206 "
                                               "Partial Content answer to Range: bytes=N-."], resumed),
        "anthropic_errors.yaml": document(["Anthropic Message Batch of 5: item 1 errored (invalid_request_error), item 2 "
                                           "expired, the others succeeded."], with_errors),
        "anthropic_split.yaml": document([f"5 requests split into 3 message batches of at most {SPLIT_LIMIT} bytes (the test "
                                          "lowers MAX_BYTES;", "a 6th item, alone over that limit, is refused and not "
                                          "sent)."], split),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="exit 1 if a committed cassette differs")
    args = parser.parse_args()
    wanted = {**openai_cassettes(), **anthropic_cassettes()}
    stale = []
    for name, text in sorted(wanted.items()):
        path = OUT / name
        if args.check:
            if not path.exists() or path.read_text() != text:
                stale.append(name)
            continue
        OUT.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        print(f"wrote {path.relative_to(OUT.parent.parent)}")
    if stale:
        print(f"out of date: {', '.join(stale)} (run scripts/author_batch_cassettes.py)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
