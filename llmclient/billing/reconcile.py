"""Our per-call records beside the provider's own report, per UTC day x model.

For each day and model: input and output tokens and dollars on both sides, and their difference
in percent, (ours - theirs) / theirs x 100, rounded to 0.01 for display (the flag compares the
exact value). A row is flagged when a difference is above the threshold (5% by default: exactly
5% is not flagged), when one side has a figure and the other has 0 of it, and when a model is only
on one side. Where each number comes from is in the row: ours `cost_source` ("price-table",
"provider", or both joined by "+": the calls' own `cost_source`), theirs "billed" (the provider's
cost report; tokens from its usage report).

Matching names: the provider reports dated snapshots ("gpt-4o-mini-2024-07-18",
"claude-sonnet-4-5-20250929"), we may hold an alias ("gpt-4o-mini"). On each day a name is matched
exactly first; what is left is matched with its date suffix (`-2024-07-18`, `-20250929`, or
`-latest`) stripped, every name of one base on either side sharing a row. A model only one side
knows is a row of its own with the other side empty and a note; provider charges that name no
model (OpenAI "web search tool calls", Anthropic web search) are the day's "(no model)" row.

Provider side: usage (`group_by=model`, daily) for tokens, costs (OpenAI by `line_item`, mapped
to the model the line item names; Anthropic by `description`, whose results name the model) for
dollars. Only USD amounts are summed; others are said in the notes.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import date, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal, InvalidOperation
from pathlib import Path
from typing import Literal, Protocol

from pydantic import BaseModel, ConfigDict

from llmclient.billing.local import LocalRecord, LocalRecords, from_telemetry
from llmclient.billing.types import BucketWidth, CostBucket, Provider, UsageBucket
from llmclient.errors import ConfigurationError

DEFAULT_THRESHOLD = Decimal(5)
NO_MODEL = "(no model)"
ONLY_PROVIDER = "only in the provider's report"
ONLY_LOCAL = "only in local records"
_CENT = Decimal("0.01")
Match = Literal["exact", "date suffix", "only provider", "only local"]


class Reports(Protocol):
    """A provider's usage and cost reports (`OpenAIAdmin`, `AnthropicAdmin`, or a stand-in)."""

    def usage(self, start: date | datetime, end: date | datetime, *, bucket_width: BucketWidth = "1d",
              group_by: Sequence[str] = ("model",), limit: int | None = None) -> list[UsageBucket]: ...

    def costs(self, start: date | datetime, end: date | datetime, *, group_by: Sequence[str] = ...,
              limit: int | None = None) -> list[CostBucket]: ...


class _Frozen(BaseModel):
    model_config = ConfigDict(frozen=True, extra="forbid")


class Ours(_Frozen):
    """What we recorded for a day x model."""

    calls: int
    input_tokens: int
    output_tokens: int
    cost_usd: Decimal | None
    """The sum over the priced calls; None when no call had a known price."""
    unpriced_calls: int = 0
    cost_source: str | None = None
    """"price-table", "provider" or "price-table+provider" (the calls' own); None when unpriced."""


class Theirs(_Frozen):
    """What the provider reported for a day x model."""

    input_tokens: int | None
    """None when the usage report has no row for it (only the cost report does)."""
    output_tokens: int | None
    requests: int | None
    cost_usd: Decimal | None
    """None when the cost report has no row for it."""
    cost_source: Literal["billed"] = "billed"
    line_items: tuple[str, ...] = ()


class Row(_Frozen):
    day: date
    model: str
    """The provider's name when it has one row for it, else ours."""
    match: Match
    local_models: tuple[str, ...]
    provider_models: tuple[str, ...]
    ours: Ours | None
    theirs: Theirs | None
    input_diff_pct: Decimal | None
    output_diff_pct: Decimal | None
    cost_diff_pct: Decimal | None
    flagged: bool
    notes: tuple[str, ...] = ()


class Totals(_Frozen):
    input_ours: int
    input_theirs: int
    output_ours: int
    output_theirs: int
    cost_ours: Decimal
    cost_theirs: Decimal
    cost_diff_pct: Decimal | None


class Reconciliation(_Frozen):
    provider: Provider
    first_day: date
    last_day: date
    threshold_pct: Decimal
    local_source: str
    rows: tuple[Row, ...]
    totals: Totals
    notes: tuple[str, ...] = ()

    @property
    def flagged(self) -> list[Row]:
        return [row for row in self.rows if row.flagged]


def days_ending(days: int, last: date) -> tuple[date, date]:
    """The `days` UTC days ending on `last` (included)."""
    if days < 1:
        raise ConfigurationError(f"the range is empty: --days must be 1 or more, got {days}")
    return last - timedelta(days=days - 1), last


def reconcile(provider: Provider, first: date, last: date, *, local: LocalRecords | Sequence[LocalRecord] | None = None,
              directory: Path | None = None, threshold: Decimal | int | str = DEFAULT_THRESHOLD,
              admin: Reports | None = None) -> Reconciliation:
    """Fetch the provider's usage and costs for the UTC days `first`..`last` and set them beside
    `local` (default: the telemetry store at `directory`, else the configured one)."""
    if last < first:
        raise ConfigurationError(f"the range is empty: it ends ({last}) before it starts ({first})")
    if provider not in ("openai", "anthropic"):
        raise ConfigurationError(f"reconciliation knows the providers openai and anthropic, not {provider!r}")
    if local is None:
        from llmclient.telemetry.query import default_directory

        local = from_telemetry(directory if directory is not None else default_directory(), first, last, provider)
    if admin is None:
        admin = _admin(provider)
    end = last + timedelta(days=1)
    days = (end - first).days
    usage = admin.usage(first, end, bucket_width="1d", group_by=["model"], limit=min(days, 31))
    costs = admin.costs(first, end, group_by=["line_item" if provider == "openai" else "description"],
                        limit=min(days, 31))
    return compare(provider, first, last, local, usage, costs, threshold)


def _admin(provider: Provider) -> Reports:
    if provider == "openai":
        from llmclient.billing.openai_admin import OpenAIAdmin

        return OpenAIAdmin()
    from llmclient.billing.anthropic_admin import AnthropicAdmin

    return AnthropicAdmin()


def compare(provider: Provider, first: date, last: date, local: LocalRecords | Sequence[LocalRecord],
            usage: Iterable[UsageBucket], costs: Iterable[CostBucket],
            threshold: Decimal | int | str = DEFAULT_THRESHOLD) -> Reconciliation:
    """The reconciliation of figures already in hand (no I/O)."""
    limit = _threshold(threshold)
    kept = local if isinstance(local, LocalRecords) else LocalRecords(list(local), "records given")
    notes = list(kept.notes)
    ours: dict[date, dict[str, list[LocalRecord]]] = defaultdict(lambda: defaultdict(list))
    for record in kept.records:
        if record.provider == provider and first <= record.day <= last:
            ours[record.day][record.model].append(record)
    used: dict[date, dict[str, list[UsageBucket]]] = defaultdict(lambda: defaultdict(list))
    for bucket in usage:
        if first <= bucket.day <= last:
            used[bucket.day][bucket.model or NO_MODEL].append(bucket)
    billed: dict[date, dict[str, list[CostBucket]]] = defaultdict(lambda: defaultdict(list))
    foreign: dict[str, Decimal] = defaultdict(Decimal)
    for cost in costs:
        if not first <= cost.day <= last:
            continue
        if cost.currency.upper() != "USD":
            foreign[cost.currency.upper()] += cost.amount_usd
            continue
        billed[cost.day][cost.model or NO_MODEL].append(cost)
    notes += [f"left out {amount} {currency} of charges not in USD" for currency, amount in sorted(foreign.items())]
    rows: list[Row] = []
    for day in sorted(set(ours) | set(used) | set(billed)):
        theirs_names = sorted(set(used[day]) | set(billed[day]))
        for match, local_names, provider_names in _pairs(sorted(ours[day]), theirs_names):
            rows.append(_row(day, match, local_names, provider_names, ours[day], used[day], billed[day], limit))
    rows.sort(key=lambda row: (row.day, row.model == NO_MODEL, row.model))
    return Reconciliation(provider=provider, first_day=first, last_day=last, threshold_pct=limit,
                          local_source=kept.source, rows=tuple(rows), totals=_totals(rows), notes=tuple(notes))


def base_name(model: str) -> str:
    """The model name without a date (or `-latest`) suffix."""
    from llmclient.model_names import undated

    return undated(model).removesuffix("-latest")


def _pairs(local: list[str], provider: list[str]) -> list[tuple[Match, tuple[str, ...], tuple[str, ...]]]:
    """The rows of one day: exact names, then names that share a base, then names on one side."""
    found: list[tuple[Match, tuple[str, ...], tuple[str, ...]]] = []
    exact = [name for name in local if name in provider and name != NO_MODEL]
    found += [("exact", (name,), (name,)) for name in exact]
    left_local = [name for name in local if name not in exact]
    left_provider = [name for name in provider if name not in exact]
    bases: dict[str, tuple[list[str], list[str]]] = defaultdict(lambda: ([], []))
    for name in left_local:
        bases[base_name(name)][0].append(name)
    for name in left_provider:
        bases[NO_MODEL if name == NO_MODEL else base_name(name)][1].append(name)
    for ours, theirs in bases.values():
        if ours and theirs:
            found.append(("date suffix", tuple(ours), tuple(theirs)))
        elif ours:
            found += [("only local", (name,), ()) for name in ours]
        else:
            found += [("only provider", (), (name,)) for name in theirs]
    return found


def _row(day: date, match: Match, local_names: tuple[str, ...], provider_names: tuple[str, ...],
         ours_by: dict[str, list[LocalRecord]], used_by: dict[str, list[UsageBucket]],
         billed_by: dict[str, list[CostBucket]], limit: Decimal) -> Row:
    records = [record for name in local_names for record in ours_by[name]]
    ours = _ours(records) if local_names else None
    usage = [bucket for name in provider_names for bucket in used_by.get(name, ())]
    costs = [cost for name in provider_names for cost in billed_by.get(name, ())]
    theirs = _theirs(usage, costs) if provider_names else None
    notes: list[str] = []
    if theirs is None:
        notes.append(ONLY_LOCAL)
    elif ours is None:
        notes.append(ONLY_PROVIDER + (f": charges that name no model ({', '.join(theirs.line_items)})"
                                      if provider_names == (NO_MODEL,) and theirs.line_items else ""))
    else:
        if theirs.input_tokens is None:
            notes.append("no usage for it in the provider's usage report")
        if theirs.cost_usd is None:
            notes.append("no charge for it in the provider's cost report")
    if ours is not None and ours.unpriced_calls:
        notes.append(f"{ours.unpriced_calls} of our call(s) without a known price: not in our cost")
    diffs: list[tuple[str, int | Decimal | None, int | Decimal | None]] = [
        ("input tokens", None if ours is None else ours.input_tokens, None if theirs is None else theirs.input_tokens),
        ("output tokens", None if ours is None else ours.output_tokens,
         None if theirs is None else theirs.output_tokens),
        ("cost", None if ours is None else ours.cost_usd, None if theirs is None else theirs.cost_usd)]
    flagged = ours is None or theirs is None
    percents: list[Decimal | None] = []
    for what, mine, billed in diffs:
        exact = _percent(mine, billed)
        percents.append(None if exact is None else exact.quantize(_CENT, ROUND_HALF_EVEN))
        if exact is not None and abs(exact) > limit:
            flagged = True
        elif exact is None and mine and billed is not None and billed == 0:
            flagged = True
            notes.append(f"{what}: ours {mine}, theirs 0")
    model = provider_names[0] if len(provider_names) == 1 else local_names[0] if len(local_names) == 1 else \
        base_name(provider_names[0])
    return Row(day=day, model=model, match=match, local_models=local_names, provider_models=provider_names,
               ours=ours, theirs=theirs, input_diff_pct=percents[0], output_diff_pct=percents[1],
               cost_diff_pct=percents[2], flagged=flagged, notes=tuple(notes))


def _ours(records: list[LocalRecord]) -> Ours:
    priced = [record for record in records if record.cost_usd is not None]
    sources = sorted({record.cost_source or "unknown" for record in priced})
    return Ours(calls=len(records), input_tokens=sum(r.input_tokens for r in records),
                output_tokens=sum(r.output_tokens for r in records),
                cost_usd=_plain(sum((r.cost_usd for r in priced if r.cost_usd is not None), Decimal(0)))
                if priced else None,
                unpriced_calls=len(records) - len(priced), cost_source="+".join(sources) or None)


def _theirs(usage: list[UsageBucket], costs: list[CostBucket]) -> Theirs:
    counted = [bucket.requests for bucket in usage if bucket.requests is not None]
    items = sorted({cost.line_item for cost in costs if cost.line_item})
    return Theirs(input_tokens=sum(b.input_tokens for b in usage) if usage else None,
                  output_tokens=sum(b.output_tokens for b in usage) if usage else None,
                  requests=sum(counted) if counted else None,
                  cost_usd=_plain(sum((c.amount_usd for c in costs), Decimal(0))) if costs else None,
                  line_items=tuple(items))


def _percent(ours: int | Decimal | None, theirs: int | Decimal | None) -> Decimal | None:
    """(ours - theirs) / theirs x 100, exact; 0 when both are 0; None when either is unknown or theirs is 0."""
    if ours is None or theirs is None:
        return None
    if theirs == 0:
        return Decimal(0) if ours == 0 else None
    return (Decimal(ours) - Decimal(theirs)) * 100 / Decimal(theirs)


def _totals(rows: list[Row]) -> Totals:
    cost_ours = sum((r.ours.cost_usd for r in rows if r.ours and r.ours.cost_usd is not None), Decimal(0))
    cost_theirs = sum((r.theirs.cost_usd for r in rows if r.theirs and r.theirs.cost_usd is not None), Decimal(0))
    percent = _percent(cost_ours, cost_theirs)
    return Totals(input_ours=sum(r.ours.input_tokens for r in rows if r.ours),
                  input_theirs=sum(r.theirs.input_tokens or 0 for r in rows if r.theirs),
                  output_ours=sum(r.ours.output_tokens for r in rows if r.ours),
                  output_theirs=sum(r.theirs.output_tokens or 0 for r in rows if r.theirs),
                  cost_ours=_plain(cost_ours), cost_theirs=_plain(cost_theirs),
                  cost_diff_pct=None if percent is None else percent.quantize(_CENT, ROUND_HALF_EVEN))


def _plain(value: Decimal) -> Decimal:
    """A sum without the trailing zeros its terms left (0.04690 -> 0.0469), never in exponent form."""
    if value == value.to_integral_value():
        return value.quantize(Decimal(1))
    return value.normalize()


def _threshold(value: Decimal | int | str) -> Decimal:
    try:
        limit = Decimal(value)
    except (InvalidOperation, TypeError, ValueError):
        limit = Decimal(-1)
    if not limit.is_finite() or limit < 0:
        raise ConfigurationError(f"the threshold must be a percentage of 0 or more, got {value!r}")
    return limit
