"""`BatchJob`: one job, in this process or opened by its id from any other. It polls its provider
batches, downloads their result files into the job directory (resuming where a download stopped)
and assembles the `BatchResult` in the caller's order."""

from __future__ import annotations

import logging
import threading
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from llmclient import json_mode
from llmclient.batches.result import BatchResult, BatchStatus, Item, PartStatus
from llmclient.errors import BatchError, InvalidRequestError, LLMError, MalformedResponseError
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.batches.jobstore import JobStore, Manifest, Part
    from llmclient.batches.progress import Progress
    from llmclient.batches.batch_http import BatchHTTP
    from llmclient.batches.provider_api import BatchAPI
    from llmclient.client import Client
    from llmclient.request import Request
    from llmclient.telemetry.context import CallContext

DEFAULT_POLL_INTERVAL = 30.0  # seconds between two status reads of a provider batch
_LOGGED = 10  # lines answering no item, logged one by one per provider batch
log = logging.getLogger("llmclient")


class BatchJob:
    """A submitted batch job. `status()` reads where it stands; `results()` waits for its end (by
    default), fetches what it has not fetched yet and returns the `BatchResult`. Open one from its
    id with `BatchJob.open(job_id)` (in any process: it reads the job directory, and the key from
    the provider's environment variable unless `api_key=` is given)."""

    def __init__(self, client: Client, store: JobStore, manifest: Manifest, *, requests: dict[int, Request] | None = None,
                 errors: dict[int, LLMError] | None = None, context: CallContext | None = None,
                 result: BatchResult | None = None) -> None:
        self._client = client
        self._store = store
        self._manifest = manifest
        self._requests = requests
        self._errors = dict(errors or {})  # the refused items' own errors (this process only)
        self._context = context
        self._result = result  # a concurrent run finished in this process
        from llmclient.batches.provider_api import api_for  # the batch machinery loads when a job is made

        self._api: BatchAPI | None = api_for(client.spec) if manifest.kind == "batch-api" else None
        self._http: BatchHTTP | None = None
        self.stop = threading.Event()  # set to end a wait early (arun_batch's cancellation)
        self._looked: set[int] = set()  # parts whose cut-off creation was looked for by this object

    @classmethod
    def open(cls, job_id: str, *, job_dir: Path | str | None = None, api_key: str | None = None) -> BatchJob:
        from llmclient.batches.jobstore import JobStore
        from llmclient.client import Client

        store = JobStore(job_id, job_dir)
        manifest = store.load()
        client = Client(f"{manifest.provider}/{manifest.model}", api_key=api_key, base_url=manifest.base_url)
        return cls(client, store, manifest)

    @property
    def job_id(self) -> str:
        return self._manifest.job_id

    @property
    def model(self) -> str:
        return f"{self._manifest.provider}/{self._manifest.model}"

    @property
    def path(self) -> Path:
        """The job's directory."""
        return self._store.path

    def __repr__(self) -> str:
        return f"BatchJob({self.job_id!r}, model={self.model!r})"

    def status(self, *, refresh: bool = True) -> BatchStatus:
        """Where the job stands; with `refresh`, the provider batches that had not ended are read again."""
        with self._store.locked():
            self._manifest = self._store.load()
            if refresh:
                self._poll()
            return self._status()

    def results(self, *, wait: bool = True, poll_interval: float = DEFAULT_POLL_INTERVAL, max_wait: float | None = None,
                progress: bool | None = None) -> BatchResult:
        """Every item, in the order given. Without `wait`, a job not ended yet raises BatchError
        (reason "unfinished"); with it, its batches are read every `poll_interval` seconds until
        they end (at most `max_wait` seconds, then the same BatchError: the job goes on, and
        `results()` later picks it up). Result files already downloaded are not fetched again; one
        that was cut off continues where it stopped."""
        from llmclient.batches.observed import record_items
        from llmclient.batches.progress import Progress

        if self._result is not None:
            return self._result
        _check_seconds(poll_interval, "poll_interval")
        # The job directory is locked for each read-and-update, never across a wait: another
        # process may read the status meanwhile.
        with self._store.locked():
            self._manifest = self._store.load()
            if self._manifest.kind == "concurrent":
                return self._concurrent_result()
        total = len(self._manifest.custom_ids)
        with Progress(total, progress, f"batch {self.job_id}") as bar:
            self._wait(wait, poll_interval, max_wait, bar)
            with self._store.locked():
                self._manifest = self._store.load()
                self._fetch(bar)
                bar.done(total)
                result = BatchResult(self.job_id, tuple(self._assembled()))
                first = not self._manifest.recorded  # the items go to telemetry once per job, from one process
                if first:
                    self._manifest.recorded = True
                    self._store.save(self._manifest)
        if first:  # outside the lock: a hook may read the job
            record_items(result, self._client.model, self._client._profile_name, self._context, self._client._hooks,
                         self._requests)
        return result

    def close(self) -> None:
        if self._http is not None:
            self._http.close()
            self._http = None

    # --- polling and fetching --------------------------------------------------------------------

    def _wait(self, wait: bool, poll_interval: float, max_wait: float | None, bar: Progress) -> None:
        started = time.monotonic()
        while True:
            with self._store.locked():
                self._manifest = self._store.load()
                self._poll()
                status = self._status()
            bar.counts(status.succeeded, status.errored, status.processing,
                       ",".join(sorted({part.status for part in status.parts})))
            bar.done(status.succeeded + status.errored)
            if status.ended:
                return
            waited = time.monotonic() - started
            if not wait or (max_wait is not None and waited >= max_wait):
                why = "results were asked for without waiting" if not wait else f"max_wait={max_wait:g} s passed"
                raise BatchError(f"batch job {self.job_id} has not ended ({status.summary()}); {why}: ask for its "
                                 f"results again later (batch_results({self.job_id!r}))", reason="unfinished",
                                 provider=self._manifest.provider, model=self._manifest.model)
            if self.stop.wait(poll_interval if max_wait is None else min(poll_interval, max(0.0, max_wait - waited))):
                raise BatchError(f"batch job {self.job_id}: stopped while waiting", reason="unfinished",
                                 provider=self._manifest.provider, model=self._manifest.model)

    def _poll(self) -> None:
        if self._api is None:
            return
        for number, part in enumerate(self._manifest.parts):
            if part.state == "submitting" and part.batch_id is None and number not in self._looked:
                self._looked.add(number)  # once per BatchJob: opening the job again looks again
                self._look_for(number, part)
                self._store.save(self._manifest)
            if part.batch_id is not None and part.state == "in_progress":
                self._api.poll(self._connection(), part)
                self._store.save(self._manifest)

    def _look_for(self, number: int, part: Part) -> None:
        """A part whose create request got no usable answer: find the batch the provider may have
        made, and adopt it; else say, in `part.note`, what was searched."""
        assert self._api is not None
        taken = {other.batch_id for other in self._manifest.parts if other.batch_id is not None}
        try:
            part.note = self._api.find(self._connection(), part, labels(self.job_id, number), taken)
        except LLMError as error:
            part.note = f"looking for it failed ({type(error).__name__}: {error.message})"
        if part.batch_id is not None:
            log.info("batch job %s: found provider batch %s, whose creation had been cut off", self.job_id, part.batch_id)

    def _fetch(self, bar: Progress) -> None:
        assert self._api is not None
        fetched = [0]

        def arrived(lines: int) -> None:
            fetched[0] += lines
            bar.note(f"fetching results: {fetched[0]} lines")

        for number, part in enumerate(self._manifest.parts):
            for name, entry in part.files.items():
                if part.state == "ended" and not entry.get("complete"):
                    self._connection().download(str(entry["url"]), f"downloading the results of batch {part.batch_id}",
                                                self._store, _file(number, name), arrived)
                    entry["complete"] = True
                    self._store.save(self._manifest)

    def _connection(self) -> BatchHTTP:
        if self._http is None:
            assert self._api is not None
            self._http = self._api.http(self._client._route)
        return self._http

    # --- what is known ---------------------------------------------------------------------------

    def _status(self) -> BatchStatus:
        manifest = self._manifest
        parts = []
        for number, part in enumerate(manifest.parts):
            state: Any = part.state
            if manifest.kind == "batch-api" and part.batch_id is None:  # no batch known: its items get errors
                state = "unconfirmed" if part.state == "submitting" else "refused"
            counts = part.counts if state not in ("refused", "unconfirmed") else {"errored": len(part.indices)}
            parts.append(PartStatus(number, part.batch_id, part.status, state, len(part.indices),
                                    counts.get("succeeded", 0), counts.get("errored", 0), counts.get("processing", 0),
                                    part.fetched))
        return BatchStatus(manifest.job_id, f"{manifest.provider}/{manifest.model}", "batch-api" if manifest.kind ==
                           "batch-api" else "concurrent", len(manifest.custom_ids), len(manifest.refused), tuple(parts),
                           manifest.split)

    def _assembled(self) -> list[Item]:
        from llmclient.batches.jobstore import error_from_record

        manifest = self._manifest
        read = [self._read_part(number, part) for number, part in enumerate(manifest.parts)]
        owner = {index: number for number, part in enumerate(manifest.parts) for index in part.indices}
        items: list[Item] = []
        for index, custom_id in enumerate(manifest.custom_ids):
            number = owner.get(index)
            if index in self._errors:
                items.append(self._errors[index])
            elif index in manifest.refused:
                items.append(error_from_record(manifest.refused[index]))
            elif number is not None and custom_id in read[number][0]:
                items.append(self._judged(index, read[number][0][custom_id]))
            else:
                items.append(self._missing(number, custom_id, read[number][1] if number is not None else []))
        return items

    def _judged(self, index: int, item: Item) -> Item:
        """A JSON-mode item's answer, checked as a call's is (`llmclient.json_mode`); it cannot be
        asked again inside the batch, so an answer that is not JSON is the item's error, with the
        answer (and its cost) in the error's attempts."""
        if not isinstance(item, Response) or index not in self._manifest.json_items:
            return item
        return json_mode.not_json(item, self._manifest.provider, self._manifest.model,
                                  "the answer is not JSON (an item of a provider batch cannot be asked again)") or item

    def _read_part(self, number: int, part: Part) -> tuple[dict[str, Item], list[str]]:
        """The outcome of each item of this part, from its own result files only; and what in them
        answers no item of it (a line that is not JSON, a custom_id not in this batch), logged."""
        assert self._api is not None
        assembler, provider, model = self._client._route.assembler, self._manifest.provider, self._manifest.model
        expected = {self._manifest.custom_ids[index] for index in part.indices}
        found: dict[str, tuple[dict[str, Any], Item]] = {}
        unmatched: list[str] = []
        conflicted: set[str] = set()
        for name in part.files:
            where = f"the {name} file of batch {part.batch_id}"
            for line in self._store.read_lines(_file(number, name)):
                if "llmclient_unreadable_line" in line:
                    unmatched.append(f"line {line['llmclient_unreadable_line']} of {where} is not a JSON object "
                                     f"({str(line.get('text'))[:60]!r})")
                    continue
                custom_id, item = self._api.decode(line, assembler, part.batch_id)
                if custom_id is None or custom_id not in expected:
                    unmatched.append(f"a line of {where} has no custom_id" if custom_id is None else
                                     f"a line of {where} answers {custom_id!r}, no item of this batch")
                elif custom_id not in found or found[custom_id][0] == line:  # the same line twice is one outcome
                    found[custom_id] = (line, item)
                elif custom_id not in conflicted:
                    conflicted.add(custom_id)
                    found[custom_id] = (line, MalformedResponseError(
                        f"item {custom_id}: the result files of batch {part.batch_id} hold two different results for "
                        f"it ({_said(found[custom_id][1])}; {_said(item)}): neither is taken", provider=provider,
                        model=model))
        for note in unmatched[:_LOGGED]:
            log.warning("batch job %s: %s", self.job_id, note)
        if len(unmatched) > _LOGGED:
            log.warning("batch job %s: %d more lines of batch %s answer no item of it", self.job_id,
                        len(unmatched) - _LOGGED, part.batch_id)
        return {custom_id: item for custom_id, (_, item) in found.items()}, unmatched

    def _missing(self, number: int | None, custom_id: str, unmatched: list[str]) -> LLMError:
        from llmclient.batches.jobstore import error_from_record

        provider, model = self._manifest.provider, self._manifest.model
        if number is None:
            return MalformedResponseError(f"item {custom_id} is in no provider batch of job {self.job_id}",
                                          provider=provider, model=model)
        part = self._manifest.parts[number]
        assert self._api is not None
        if part.state == "submitting" and part.batch_id is None:
            cause = error_from_record(part.error).message if part.error else "the process ended before it came"
            error: LLMError = BatchError(
                f"item {custom_id}: its provider batch (part {number} of job {self.job_id}) may exist, and be billed: "
                f"the request that creates it got no usable answer ({cause}); {part.note or 'not looked for yet'}. "
                f"Look for it before sending these requests again: {self._api.where(part, labels(self.job_id, number))}",
                reason="unconfirmed", provider=provider, model=model)
        elif part.error is not None:
            error = error_from_record(part.error)
        elif part.batch_id is None:
            error = BatchError(f"item {custom_id} was never submitted: the submission of its batch did not complete",
                               reason="unsubmitted", provider=provider, model=model)
        else:
            error = self._api.missing(part, custom_id, self._manifest.model)
        if unmatched:
            more = f" and {len(unmatched) - 3} more" if len(unmatched) > 3 else ""
            error.message += f"; lines of its batch's result files answer no item of it: {'; '.join(unmatched[:3])}{more}"
            error.args = (error.message,)
        return error

    def _concurrent_result(self) -> BatchResult:
        from llmclient.batches.jobstore import error_from_record

        manifest = self._manifest
        found: dict[str, Item] = {}
        for line in self._store.read_lines("results"):
            custom_id = line.get("custom_id")
            if isinstance(custom_id, str) and isinstance(line.get("response"), dict):
                found[custom_id] = Response.model_validate(line["response"])
            elif isinstance(custom_id, str) and isinstance(line.get("error"), dict):
                found[custom_id] = error_from_record(line["error"])
        items: list[Item] = []
        for index, custom_id in enumerate(manifest.custom_ids):
            if index in manifest.refused:
                items.append(error_from_record(manifest.refused[index]))
            elif custom_id in found:
                items.append(found[custom_id])
            else:
                items.append(BatchError(f"item {custom_id} has no answer: the concurrent run of job {self.job_id} "
                                        f"stopped before it (a concurrent run is not resumed: run the batch again)",
                                        reason="unfinished", provider=manifest.provider, model=manifest.model))
        return BatchResult(self.job_id, tuple(items))


def _file(number: int, name: str) -> str:
    return f"part-{number}-{name}"


def labels(job_id: str, number: int) -> dict[str, str]:
    """What names a provider batch as part `number` of our job (OpenAI batch metadata: strings)."""
    return {"llmclient_job": job_id, "llmclient_part": str(number)}


def _said(item: Item) -> str:
    if isinstance(item, Response):
        return f"an answer {item.text[:40]!r}"
    return f"{type(item).__name__}: {item.message[:80]}"


def _check_seconds(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
        raise InvalidRequestError(f"{name} must be a number of seconds >= 0, got {value!r}")


def batch_status(job_id: str, *, job_dir: Path | str | None = None, api_key: str | None = None) -> BatchStatus:
    """Where the job stands now (its unfinished provider batches are read again)."""
    job = BatchJob.open(job_id, job_dir=job_dir, api_key=api_key)
    try:
        return job.status()
    finally:
        job.close()


def batch_results(job_id: str, *, wait: bool = True, poll_interval: float = DEFAULT_POLL_INTERVAL,
                  max_wait: float | None = None, progress: bool | None = None, job_dir: Path | str | None = None,
                  api_key: str | None = None) -> BatchResult:
    """The job's results (see `BatchJob.results`), from any process: what was already downloaded
    is read from the job directory, the rest is fetched (a cut-off file continues where it stopped)."""
    job = BatchJob.open(job_id, job_dir=job_dir, api_key=api_key)
    try:
        return job.results(wait=wait, poll_interval=poll_interval, max_wait=max_wait, progress=progress)
    finally:
        job.close()
