"""Batch-API items in telemetry: each item is one call record of kind "batch" (operation "batch"
unless the batch was labelled otherwise), recorded once per job when its results are assembled,
with the hooks, `track()` totals and the store seeing it as they see every call. (Items of a
concurrent run are ordinary `complete` calls, recorded by `Client` as they happen.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from llmclient import cassettes
from llmclient.telemetry.context import CallContext
from llmclient.telemetry.observe import Observation
from llmclient.types import Response

if TYPE_CHECKING:
    from llmclient.batches.result import BatchResult
    from llmclient.request import Request
    from llmclient.telemetry.hooks import HookSet

BATCH_CONTEXT = CallContext(operation="batch")


def labelled(context: CallContext | None) -> CallContext:
    """The batch's context with operation "batch" where it names none."""
    return BATCH_CONTEXT.merged(context) if context is not None else BATCH_CONTEXT


def record_items(result: BatchResult, model: str, profile: str | None, context: CallContext | None,
                 hooks: HookSet | None, requests: dict[int, Request] | None) -> None:
    for index, item in enumerate(result.items):
        watch = Observation("batch", "sync", model, profile, labelled(context), hooks, cassettes.replaying())
        if requests is not None and index in requests:
            watch.sent(requests[index])
        if isinstance(item, Response):
            watch.succeeded(item)
        else:
            watch.failed(item)
