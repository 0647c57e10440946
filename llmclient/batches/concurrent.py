"""A batch on a provider without a batch API: the requests as concurrent calls (`Client.complete`
in a thread pool, or `acomplete` under a semaphore), so the configured rate limits, retries and
fallbacks apply to each, with the same progress bar and the same result shape. Each answer is
written to the job directory as it arrives (`results.jsonl`, a line fsync'd each time), so
`batch_results(job_id)` serves it later; an interrupted run is not resumed (its requests are not
stored): run the batch again. The async run does every fsync'd write (each line, job.json) in a
worker thread, never on the event loop."""

from __future__ import annotations

import contextvars
import json
import threading
from concurrent.futures import ThreadPoolExecutor, as_completed
from typing import TYPE_CHECKING, Any

from llmclient.batches.jobstore import JobStore, LineWriter, Manifest, error_record
from llmclient.batches.observed import labelled
from llmclient.batches.progress import Progress
from llmclient.batches.result import BatchResult, Item
from llmclient.errors import InvalidRequestError, LLMError
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.client import Client
    from llmclient.request import Request
    from llmclient.telemetry.context import CallContext

DEFAULT_CONCURRENCY = 8


def checked_concurrency(value: int) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidRequestError(f"max_concurrency must be a whole number of 1 or more, got {value!r}")
    return value


class _Run:
    """What the sync and async runs share: the items so far, the results file, the bar."""

    def __init__(self, client: Client, store: JobStore, manifest: Manifest, requests: dict[int, Request],
                 refused: dict[int, LLMError], context: CallContext | None, progress: bool | None) -> None:
        self.client = client
        self.store = store
        self.manifest = manifest
        self.requests = requests
        self.items: dict[int, Item] = dict(refused)
        self.labels = {name: value for name in ("agent", "operation", "session", "user")
                       if (value := getattr(labelled(context), name)) is not None}
        self.bar = Progress(len(manifest.custom_ids), progress, f"batch {manifest.job_id}")
        self.bar.done(len(refused))
        self.answered = 0
        self._lock = threading.Lock()

    def arrived(self, index: int, item: Item, out: LineWriter) -> None:
        line: dict[str, Any] = {"custom_id": self.manifest.custom_ids[index]}
        if isinstance(item, Response):
            line["response"] = item.model_dump(mode="json")
        else:
            line["error"] = error_record(item)
        data = (json.dumps(line, ensure_ascii=False, separators=(",", ":")) + "\n").encode()
        with self._lock:
            self.items[index] = item
            out.write(data)
            self.answered += isinstance(item, Response)
            self.bar.advance()
            self.bar.counts(self.answered, len(self.items) - self.answered, len(self.manifest.custom_ids) - len(self.items))

    def finished(self) -> BatchResult:
        self.bar.close()
        part = self.manifest.parts[0]
        part.state, part.status = "ended", "finished"
        part.counts = {"succeeded": sum(isinstance(item, Response) for index, item in self.items.items()
                                        if index not in self.manifest.refused),
                       "errored": sum(not isinstance(item, Response) for index, item in self.items.items()
                                      if index not in self.manifest.refused), "processing": 0}
        self.store.save(self.manifest)
        return BatchResult(self.manifest.job_id, tuple(self.items[index] for index in range(len(self.manifest.custom_ids))))


def run(client: Client, store: JobStore, manifest: Manifest, requests: dict[int, Request], refused: dict[int, LLMError],
        context: CallContext | None, max_concurrency: int, progress: bool | None) -> BatchResult:
    state = _Run(client, store, manifest, requests, refused, context, progress)

    def call(index: int) -> Item:
        try:
            return client.complete(requests[index], **state.labels)
        except LLMError as error:
            return error

    try:
        with store.appender("results") as out, ThreadPoolExecutor(max_workers=max_concurrency,
                                                                  thread_name_prefix="llmclient-batch") as pool:
            futures = {pool.submit(contextvars.copy_context().run, call, index): index for index in requests}
            try:
                for future in as_completed(futures):
                    state.arrived(futures[future], future.result(), out)
            except BaseException:
                for future in futures:
                    future.cancel()
                raise
    finally:
        state.bar.close()
    return state.finished()


async def arun(client: Client, store: JobStore, manifest: Manifest, requests: dict[int, Request],
               refused: dict[int, LLMError], context: CallContext | None, max_concurrency: int,
               progress: bool | None) -> BatchResult:
    import asyncio  # not at import time: `import llmclient` stays without it

    state = _Run(client, store, manifest, requests, refused, context, progress)
    gate = asyncio.Semaphore(max_concurrency)

    async def call(index: int, out: LineWriter) -> None:
        async with gate:
            try:
                item: Item = await client.acomplete(requests[index], **state.labels)
            except LLMError as error:
                item = error
        await asyncio.to_thread(state.arrived, index, item, out)  # an fsync'd line: off the loop

    try:
        with store.appender("results") as out:  # opening it (no fsync) stays on the loop
            await asyncio.gather(*(call(index, out) for index in requests))
    finally:
        state.bar.close()
    return await asyncio.to_thread(state.finished)
