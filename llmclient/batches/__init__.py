"""Batches: many requests to one model, answered in the order given.

    result = run_batch(client, ["Capital of France?", {"prompt": "Capital of Peru?", "max_tokens": 5}])
    result.responses           # [Response, Response] (raises the first item's error, if any failed)
    result.errors, result.cost # {index: LLMError}; the total at the provider's batch prices

    job = submit_batch(client, prompts)             # returns at once; job.job_id names it
    batch_status(job.job_id); batch_results(job.job_id, wait=True)   # from any process

On OpenAI (the Batch API) and Anthropic (Message Batches) the items go to the provider's batch API
at its batch prices (half the standard price; answered within 24 hours); a job over the provider's
limits is split into several provider batches. Every other provider runs the items as concurrent
calls under the configured rate limits and retries, with the same progress bar and result shape.

Modules: `run` (the entry points), `prepare` (items -> checked, encoded requests; the split),
`job` (`BatchJob`: polling, fetching, assembling; `batch_status` and `batch_results` by job id), `jobstore` (the job directory), `batch_http`
(the batch APIs' HTTP), `provider_api` / `openai_batch` / `anthropic_batch` (each API's shapes),
`concurrent` (providers without one), `result` (`BatchResult`, `BatchStatus`), `progress`,
`observed` (telemetry), `cli` (`llmclient batch ...`).
"""

from typing import TYPE_CHECKING, Any

from llmclient.batches.job import BatchJob, batch_results, batch_status
from llmclient.batches.result import BatchResult, BatchStatus, PartStatus

if TYPE_CHECKING:
    from llmclient.batches.run import arun_batch, run_batch, submit_batch

_ENTRY_POINTS = ("arun_batch", "run_batch", "submit_batch")


def __getattr__(name: str) -> Any:
    """The entry points that submit (`run`, with the encoders, splitting and provider APIs behind
    it) load when first asked for: `import llmclient` does not pay for the batch machinery."""
    if name in _ENTRY_POINTS:
        from llmclient.batches import run

        return getattr(run, name)
    raise AttributeError(f"module 'llmclient.batches' has no attribute {name!r}")

__all__ = ["BatchJob", "BatchResult", "BatchStatus", "PartStatus", "arun_batch", "batch_results", "batch_status",
           "run_batch", "submit_batch"]
