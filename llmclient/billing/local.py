"""Our side of a reconciliation: what llmclient recorded of each call, per UTC day.

Two sources:
- the telemetry store (`llmclient/telemetry/record.py`): the day folders `<dir>/<YYYY-MM-DD>/`
  and their `telemetry.jsonl` and rotated `telemetry.N.jsonl` files, read as JSON with numbers as
  exact Decimals. Calls replayed from a cassette (`replay: true`) are left out (no one was billed
  for them), as are calls without tokens or a cost (they failed before an answer) and lines that
  are not a schema-1 record (counted, and said);
- a file of dumped `Response`s (`Response.model_dump_json()`, one a line). A Response carries no
  time: its day is the provider's `raw.created` (OpenAI, unix seconds; a stream's first chunk's), else `default_day`; one
  with neither is left out and counted.

A record's model is the provider's name for it, without our `<provider>/` prefix
("openai/gpt-4o-mini" -> "gpt-4o-mini"); its cost and cost source are the call's own (`cost_usd`,
`cost_source`: "price-table", or "provider" when the provider reported the charge).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, NonNegativeInt, ValidationError

from llmclient.errors import ConfigurationError


class LocalRecord(BaseModel):
    """One call as we recorded it."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    day: date
    """The UTC day the call began."""
    provider: str
    model: str
    """The provider's name of the model (no `<provider>/` prefix)."""
    input_tokens: NonNegativeInt = 0
    output_tokens: NonNegativeInt = 0
    cost_usd: Decimal | None = None
    """Exact dollars; None when no price was known (never 0 for unknown)."""
    cost_source: str | None = None
    """"price-table" or "provider"; None when the cost is unknown."""


@dataclass
class LocalRecords:
    """The records read, where from, and what was left out (said in the reconciliation's notes)."""

    records: list[LocalRecord]
    source: str
    notes: list[str] = field(default_factory=list)


def from_telemetry(directory: Path, first: date, last: date, provider: str | None = None) -> LocalRecords:
    """The calls of the UTC days `first`..`last` in the telemetry store at `directory`."""
    from llmclient.telemetry.query import FILE
    from llmclient.telemetry.upkeep import days

    if not directory.is_dir():
        why = "not a directory" if directory.exists() else "no such directory"
        raise ConfigurationError(f"no telemetry store at {directory} ({why}); pass --dir or set LLM_TELEMETRY_DIR, "
                                 f"or give the calls with --records FILE.jsonl")
    low, high = first.isoformat(), last.isoformat()
    records: list[LocalRecord] = []
    unreadable = replayed = unanswered = 0
    try:
        folders = [folder for folder in days(directory) if low <= folder.name <= high]
        files = [path for folder in folders for path in sorted(folder.iterdir())
                 if FILE.match(path.name) and path.is_file()]
    except OSError as exc:
        raise ConfigurationError(f"cannot read the telemetry store at {directory}: {exc}") from exc
    for path in files:
        for line in _lines(path):
            kind, who, record = _telemetry(line)
            if kind == "unreadable":
                unreadable += 1
            elif provider is not None and who != provider:
                continue
            elif kind == "replay":
                replayed += 1
            elif kind == "unanswered":
                unanswered += 1
            elif record is not None and first <= record.day <= last:
                records.append(record)
    notes = []
    if unreadable:
        notes.append(f"skipped {unreadable:,} unreadable line(s) of the telemetry store")
    if replayed:
        notes.append(f"left out {replayed:,} call(s) replayed from cassettes (no one was billed for them)")
    if unanswered:
        notes.append(f"left out {unanswered:,} call(s) without tokens or cost (they failed before an answer)")
    return LocalRecords(records, f"telemetry store {directory}", notes)


def from_responses(path: Path, default_day: date | None = None, provider: str | None = None) -> LocalRecords:
    """The calls in a file of `Response.model_dump_json()` lines."""
    from llmclient.types import Response

    if not path.is_file():
        raise ConfigurationError(f"--records {path}: {'not a file' if path.exists() else 'no such file'}")
    records: list[LocalRecord] = []
    unreadable = undated = 0
    for line in _lines(path):
        try:
            response = Response.model_validate_json(line)
        except ValidationError:
            unreadable += 1
            continue
        day = _created_day(response.raw) or default_day
        if day is None:
            undated += 1
            continue
        usage, cost = response.usage, response.cost
        if usage is None and cost is None:
            continue
        record = LocalRecord(day=day, provider=response.provider, model=response.model,
                             input_tokens=usage.input_tokens if usage else 0,
                             output_tokens=usage.output_tokens if usage else 0,
                             cost_usd=cost.total if cost else None, cost_source=cost.source if cost else None)
        if provider is None or record.provider == provider:
            records.append(record)
    notes = []
    if unreadable:
        notes.append(f"skipped {unreadable:,} line(s) of {path} that are not a dumped Response")
    if undated:
        notes.append(f"left out {undated:,} response(s) of {path} without a date (no raw.created); give their "
                     f"day with --records-day")
    return LocalRecords(records, f"responses in {path}", notes)


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(encoding="utf-8", errors="replace")
    except OSError as exc:
        raise ConfigurationError(f"cannot read {path}: {exc}") from exc
    # Lines end at "\n" alone: str.splitlines would also cut a record at a U+2028 inside one of its strings.
    return [line for line in text.split("\n") if line.strip()]


def _telemetry(line: str) -> tuple[Literal["ok", "replay", "unanswered", "unreadable"], str | None,
                                   LocalRecord | None]:
    """(what the line is, its provider, its record): a call to count, one left out (replayed, or
    without tokens or cost), or a line that is not a schema-1 record."""
    try:
        raw = json.loads(line, parse_float=Decimal)
    except ValueError:
        return "unreadable", None, None
    if not isinstance(raw, dict) or raw.get("schema") != 1:
        return "unreadable", None, None
    day = _day(raw.get("timestamp"))
    model = raw.get("model")
    if day is None or not isinstance(model, str) or not model:
        return "unreadable", None, None
    provider = raw["provider"] if isinstance(raw.get("provider"), str) else model.partition("/")[0]
    if raw.get("replay") is True:
        return "replay", provider, None
    tokens, cost, source = raw.get("tokens"), raw.get("cost_usd"), raw.get("cost_source")
    if tokens is None and cost is None:
        return "unanswered", provider, None
    try:
        return "ok", provider, LocalRecord(
            day=day, provider=provider, model=model.removeprefix(f"{provider}/"), input_tokens=_tokens(tokens, "input"),
            output_tokens=_tokens(tokens, "output"), cost_usd=_decimal(cost),
            cost_source=source if isinstance(source, str) else None)
    except (ValidationError, TypeError, ValueError, KeyError):
        return "unreadable", provider, None


def _tokens(tokens: Any, name: str) -> int:
    if tokens is None:
        return 0
    value = tokens[name] if isinstance(tokens, dict) else None
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"tokens.{name} is not a count")
    return value


def _decimal(value: Any) -> Decimal | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, Decimal)):
        raise TypeError("cost_usd is not a number")
    return Decimal(value)


def _day(timestamp: Any) -> date | None:
    if not isinstance(timestamp, str):
        return None
    try:
        parsed = datetime.fromisoformat(timestamp.replace("Z", "+00:00"))
    except ValueError:
        return None
    return (parsed if parsed.tzinfo is None else parsed.astimezone(timezone.utc)).date()


def _created_day(raw: dict[str, Any]) -> date | None:
    """OpenAI's `created` (unix seconds) of a body, or of a stream's first chunk."""
    from llmclient.wire import timestamp_at

    chunks = raw.get("chunks")
    first = chunks[0] if isinstance(chunks, list) and chunks and isinstance(chunks[0], dict) else {}
    created = timestamp_at(raw, "created") or timestamp_at(first, "created")
    try:
        return None if created is None else datetime.fromtimestamp(created, timezone.utc).date()
    except (OverflowError, OSError, ValueError):
        return None
