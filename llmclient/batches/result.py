"""What a batch hands back: `BatchResult` (every item, in the caller's order, a `Response` or
its typed error) and `BatchStatus` (where a job stands, per provider batch)."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Literal, overload

from llmclient.errors import LLMError
from llmclient.types import Cost, Response, Usage, sum_cost, sum_usage

Item = Response | LLMError


@dataclass(frozen=True)
class BatchResult(Sequence[Item]):
    """The items of a batch in the order they were given: each a `Response`, or the typed error of
    that item alone (`LLMError`: a refusal before sending, the provider's error for it, or a
    `BatchError` when it expired, was canceled or its batch failed).

    - `result[i]`, `len(result)`, iteration: the items themselves.
    - `responses`: every item's Response, in order, when all of them answered; the first failed
      item's error is raised otherwise (a loop over it never skips an item silently).
    - `answered`: index -> Response of the items that answered; `errors`: index -> error of the others.
    - `usage`, `cost`: totals over every answer the provider gave (`billed`): the answered items',
      and those refused after they came, in an error's `attempts` (a JSON-mode answer that is not
      JSON). `cost` is None when one of them has no known cost, or when there is none; never a
      guessed 0. Batch-API items are priced at the provider's batch prices
      (`cost.prices.service_tier == "batch"`).
    """

    job_id: str
    items: tuple[Item, ...]

    @overload
    def __getitem__(self, index: int) -> Item: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[Item]: ...

    def __getitem__(self, index: int | slice) -> Item | Sequence[Item]:
        return self.items[index]

    def __len__(self) -> int:
        return len(self.items)

    def __iter__(self) -> Iterator[Item]:
        return iter(self.items)

    @property
    def ok(self) -> bool:
        """True when every item answered."""
        return not self.errors

    @property
    def responses(self) -> list[Response]:
        for item in self.items:
            if isinstance(item, LLMError):
                raise item
        return [item for item in self.items if isinstance(item, Response)]

    @property
    def answered(self) -> dict[int, Response]:
        return {index: item for index, item in enumerate(self.items) if isinstance(item, Response)}

    @property
    def errors(self) -> dict[int, LLMError]:
        return {index: item for index, item in enumerate(self.items) if isinstance(item, LLMError)}

    @property
    def billed(self) -> list[Response]:
        """Every answer the provider gave: the answered items', and those refused after they came
        (a JSON-mode item whose text is not JSON: its error's `attempts`)."""
        refused = [attempt.response for error in self.errors.values() for attempt in getattr(error, "attempts", ())]
        return [*self.answered.values(), *refused]

    @property
    def usage(self) -> Usage:
        return sum_usage([response.usage for response in self.billed])

    @property
    def cost(self) -> Cost | None:
        return sum_cost([response.cost for response in self.billed])

    def __repr__(self) -> str:
        return f"BatchResult(job_id={self.job_id!r}, {len(self.answered)} answered, {len(self.errors)} failed)"


# "unconfirmed": its create request got no usable answer and no batch was found: the provider may
# have made it (the items' BatchError, reason "unconfirmed", says where to look); it counts as ended.
PartState = Literal["pending", "in_progress", "ended", "refused", "unconfirmed"]


@dataclass(frozen=True)
class PartStatus:
    """One provider batch of a job. `status` is the provider's own word (OpenAI `validating`,
    `in_progress`, `finalizing`, `completed`, `failed`, `expired`, `cancelling`, `cancelled`;
    Anthropic `in_progress`, `canceling`, `ended`); `state` is ours. `fetched` says its results
    are all on disk."""

    index: int
    batch_id: str | None
    status: str
    state: PartState
    requests: int
    succeeded: int = 0
    errored: int = 0
    processing: int = 0
    fetched: bool = False


@dataclass(frozen=True)
class BatchStatus:
    """Where a job stands: its provider batches, and counts over them (`refused`: items refused
    before sending, never submitted). `ended` is True when every provider batch has ended (or the
    concurrent run finished). `split` says why the job was split into several provider batches."""

    job_id: str
    model: str
    kind: Literal["batch-api", "concurrent"]
    total: int
    refused: int
    parts: tuple[PartStatus, ...] = field(default_factory=tuple)
    split: str | None = None

    @property
    def ended(self) -> bool:
        return all(part.state in ("ended", "refused", "unconfirmed") for part in self.parts)

    @property
    def succeeded(self) -> int:
        return sum(part.succeeded for part in self.parts)

    @property
    def errored(self) -> int:
        return sum(part.errored for part in self.parts) + self.refused

    @property
    def processing(self) -> int:
        return sum(part.processing for part in self.parts)

    def summary(self) -> str:
        """One line: "ended: 98 succeeded, 2 errored, 0 processing (2 provider batches)"."""
        state = "ended" if self.ended else "in progress"
        batches = f" ({len(self.parts)} provider batches)" if len(self.parts) > 1 else ""
        return f"{state}: {self.succeeded} succeeded, {self.errored} errored, {self.processing} processing{batches}"
