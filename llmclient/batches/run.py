"""The entry points: `run_batch` / `arun_batch` (submit and wait: `Client.batch` / `abatch`) and
`submit_batch` (submit and return the job: `Client.submit_batch`); `batch_status` / `batch_results`
for a job id, from any process, live with `BatchJob` (`job.py`) and are re-exported here."""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient import json_mode
from llmclient.batches import concurrent, prepare
from llmclient.batches.job import DEFAULT_POLL_INTERVAL, BatchJob, batch_results, batch_status, labels
from llmclient.batches.jobstore import JobStore, Manifest, Part, error_record, new_job_id
from llmclient.batches.provider_api import api_for
from llmclient.batches.result import BatchResult
from llmclient.errors import APIConnectionError, LLMError, MalformedResponseError, RequestTimeoutError, ServerError
from llmclient.telemetry.context import pop_call_context

if TYPE_CHECKING:
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.provider_api import BatchAPI
    from llmclient.client import Client
    from llmclient.request import Request
    from llmclient.telemetry.context import CallContext

__all__ = ["arun_batch", "batch_results", "batch_status", "run_batch", "submit_batch"]
log = logging.getLogger("llmclient")
# A create request that failed this way may have been carried out (no answer came, or one that
# could not be read, or the server failed after it): its batch may exist.
UNCERTAIN = (APIConnectionError, RequestTimeoutError, ServerError, MalformedResponseError)


def run_batch(client: Client, requests: Sequence[Any], /, *, progress: bool | None = None,
              poll_interval: float = DEFAULT_POLL_INTERVAL, max_wait: float | None = None,
              max_concurrency: int = concurrent.DEFAULT_CONCURRENCY, job_dir: Path | str | None = None,
              **options: Any) -> BatchResult:
    """Every request answered, in the order given (`BatchResult`): on the provider's batch API
    (OpenAI, Anthropic: half price, answered within 24 hours), polled every `poll_interval`
    seconds; elsewhere as concurrent calls (at most `max_concurrency` at once). `options` are
    `Request.build` keywords for every item (`max_tokens=`, `temperature=`, ...; an item's own
    win) and the telemetry labels of the batch (`agent=`, `operation=`, ...). A progress bar is
    shown on stderr when it is a terminal (`progress=True`/`False` to choose). The job is kept
    under `job_dir` (default `LLMCLIENT_BATCH_DIR`): an interrupted wait or download is picked up
    by `batch_results(result.job_id)`, in this process or another."""
    job = submit_batch(client, requests, progress=progress, max_concurrency=max_concurrency, job_dir=job_dir, **options)
    try:
        return job.results(wait=True, poll_interval=poll_interval, max_wait=max_wait, progress=progress)
    finally:
        job.close()


async def arun_batch(client: Client, requests: Sequence[Any], /, *, progress: bool | None = None,
                     poll_interval: float = DEFAULT_POLL_INTERVAL, max_wait: float | None = None,
                     max_concurrency: int = concurrent.DEFAULT_CONCURRENCY, job_dir: Path | str | None = None,
                     **options: Any) -> BatchResult:
    """`run_batch` for asyncio: concurrent calls are `acomplete`s on the loop; a batch API's few
    requests and its polling run in a worker thread (cancelling the task ends the wait; the job
    goes on and its results can be fetched later by id)."""
    import asyncio  # not at import time: `import llmclient` stays without it

    if api_for(client.spec) is None:
        concurrency = concurrent.checked_concurrency(max_concurrency)
        context = pop_call_context(options)
        # the job directory is made (mkdir, fsync'd job.json) in a worker thread, not on the loop
        store, manifest, requests_by_index, refused = await asyncio.to_thread(_concurrent_job, client, requests, options,
                                                                              job_dir)
        return await concurrent.arun(client, store, manifest, requests_by_index, refused, context, concurrency, progress)
    job = await asyncio.to_thread(submit_batch, client, requests, progress=progress, job_dir=job_dir, **options)
    try:
        return await asyncio.to_thread(job.results, wait=True, poll_interval=poll_interval, max_wait=max_wait,
                                       progress=progress)
    except asyncio.CancelledError:
        job.stop.set()
        raise
    finally:
        job.close()


def submit_batch(client: Client, requests: Sequence[Any], /, *, progress: bool | None = None,
                 max_concurrency: int = concurrent.DEFAULT_CONCURRENCY, job_dir: Path | str | None = None,
                 **options: Any) -> BatchJob:
    """Submit the batch and return its job at once (`job.job_id`, `job.status()`, `job.results()`).
    A job over the provider's limits (OpenAI: 50,000 requests or 200 MB per batch; Anthropic:
    100,000 requests or 256 MB) is split into several provider batches; a single item over the byte
    limit is refused with an error naming it. On a provider without a batch API the requests are
    run here, concurrently, and the job returned has ended."""
    context = pop_call_context(options)
    api = api_for(client.spec)
    if api is None:
        concurrency = concurrent.checked_concurrency(max_concurrency)
        store, manifest, requests_by_index, refused = _concurrent_job(client, requests, options, job_dir)
        result = concurrent.run(client, store, manifest, requests_by_index, refused, context, concurrency, progress)
        return BatchJob(client, store, manifest, context=context, result=result)
    return _submit(client, api, requests, options, job_dir, context)


def _submit(client: Client, api: BatchAPI, items: Sequence[Any], options: dict[str, Any],
            job_dir: Path | str | None, context: CallContext | None) -> BatchJob:
    route = client._route
    requests, refused = prepare.build_requests(client, items, options)
    route.key()  # no key: refused here, before anything is written or sent
    ids = prepare.custom_ids(len(items))
    entries, not_encoded = prepare.encode(route, api, requests, ids)
    parts, too_big, note = prepare.split(api, entries)
    refused = {**refused, **not_encoded, **too_big}
    store = JobStore(new_job_id(), job_dir)
    manifest = Manifest(store.job_id, "batch-api", route.spec.name, route.model_id, route.base_url, ids,
                        refused={index: error_record(error) for index, error in refused.items()},
                        parts=[Part(indices=indices) for indices in parts], split=note,
                        json_items=sorted(index for index, request in requests.items() if json_mode.wanted(request)))
    store.create(manifest)
    if parts:
        http = api.http(route)
        try:
            with store.locked():  # another process opening the job waits for the submission to end
                for number, part in enumerate(manifest.parts):
                    _submit_part(api, http, store, manifest, number, [entries[index] for index in part.indices])
        finally:
            http.close()
    return BatchJob(client, store, manifest, requests=requests, errors=refused, context=context)


def _submit_part(api: BatchAPI, http: BatchHTTP, store: JobStore, manifest: Manifest, number: int,
                 entries: list[bytes]) -> None:
    """Create one provider batch. The part is saved as "submitting" before the create request
    goes: if this process dies, or the request's answer never comes, after the provider made the
    batch, the job knows it may exist and looks for it (`BatchJob`) instead of calling it unsent."""
    part = manifest.parts[number]
    try:
        staged = api.stage(http, entries, part)
        part.state, part.status, part.submitted_at = "submitting", "submitting", time.time()
        store.save(manifest)
        api.create(http, staged, part, labels(manifest.job_id, number))
    except UNCERTAIN as error:
        if part.state != "submitting":
            part.state, part.status, part.error = "refused", "refused", error_record(error)
        elif part.batch_id is not None:  # made, its answer not readable past its id: polled like any other
            part.state = "in_progress"
        else:  # sent, never answered: the provider may have made it; looked for when the job is next read
            part.error = error_record(error)
    except LLMError as error:  # refused: this provider batch is not made; the others go
        part.state, part.status, part.error = "refused", "refused", error_record(error)
    except BaseException:
        if part.state == "submitting":
            log.warning("batch job %s: interrupted while creating its provider batch %d, which the provider may have "
                        "made: `llmclient batch status %s` looks for it", manifest.job_id, number, manifest.job_id)
        raise
    finally:
        store.save(manifest)


def _concurrent_job(client: Client, items: Sequence[Any], options: dict[str, Any], job_dir: Path | str | None,
                    ) -> tuple[JobStore, Manifest, dict[int, Request], dict[int, LLMError]]:
    route = client._route
    requests, refused = prepare.build_requests(client, items, options)
    ids = prepare.custom_ids(len(items))
    store = JobStore(new_job_id(), job_dir)
    manifest = Manifest(store.job_id, "concurrent", route.spec.name, route.model_id, route.base_url, ids,
                        refused={index: error_record(error) for index, error in refused.items()},
                        parts=[Part(indices=sorted(requests), status="running", state="in_progress")])
    store.create(manifest)
    return store, manifest, requests, refused
