"""`llmclient costs reconcile ...`: our per-call records beside the provider's own report.

    llmclient costs reconcile --provider openai|anthropic [--days 7] [--end YYYY-MM-DD]
                              [--dir TELEMETRY_DIR | --records FILE.jsonl [--records-day YYYY-MM-DD]]
                              [--threshold 5] [--json]

Per UTC day x model: input and output tokens and dollars, ours and the provider's, and the
difference in percent; a row is flagged when a difference is above --threshold percent, or when
only one side knows the model. Ours come from the telemetry store (--dir, else LLM_TELEMETRY_DIR,
else .llm-telemetry) or from a file of dumped Responses (--records); theirs from the provider's
admin API (OPENAI_ADMIN_KEY / ANTHROPIC_ADMIN_KEY). Our dollars are each call's own (its
cost_source: price-table, or provider); theirs are what was billed. --days N is the N UTC days
ending on --end (default today, UTC), both included; the provider's report of today is usually
incomplete. Exit 0 when nothing is flagged, 1 when a row is flagged, 2 on an error (no admin key,
a key the provider refuses, no store).
"""

from __future__ import annotations

import argparse
import json
from datetime import date, datetime, timezone
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

from llmclient.cli_text import decimal_text, jsonable, table

if TYPE_CHECKING:
    from llmclient.billing.reconcile import Reconciliation, Row


def add_parser(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    costs = commands.add_parser("costs", help="the providers' own usage and cost reports, beside ours (admin keys)",
                                description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    actions = costs.add_subparsers(required=True, metavar="ACTION")
    reconcile = actions.add_parser("reconcile", help="our records beside the provider's report, per day x model",
                                   description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    reconcile.add_argument("--provider", required=True, choices=("openai", "anthropic"))
    reconcile.add_argument("--days", type=_days, default=7, help="the last N UTC days, --end included (default 7)")
    reconcile.add_argument("--end", type=_date, default=None, metavar="YYYY-MM-DD",
                           help="the last UTC day (default: today, UTC)")
    source = reconcile.add_mutually_exclusive_group()
    source.add_argument("--dir", type=Path, default=None,
                        help="the telemetry store (default: LLM_TELEMETRY_DIR, else .llm-telemetry)")
    source.add_argument("--records", type=Path, default=None, metavar="FILE.jsonl",
                        help="our calls as Response.model_dump_json() lines, instead of the telemetry store")
    reconcile.add_argument("--records-day", type=_date, default=None, metavar="YYYY-MM-DD",
                           help="with --records: the UTC day of responses that carry no date (no raw.created)")
    reconcile.add_argument("--threshold", type=_threshold, default=Decimal(5), metavar="PERCENT",
                           help="flag a difference above this many percent (default 5)")
    reconcile.add_argument("--json", action="store_true", help="machine-readable output; dollars as decimal strings")
    reconcile.set_defaults(run=_reconcile)


def _days(text: str) -> int:
    try:
        number = int(text)
    except ValueError:
        number = 0
    if number < 1:
        raise argparse.ArgumentTypeError(f"the range is empty: expected a whole number of days of 1 or more, "
                                         f"got {text!r}")
    return number


def _date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _threshold(text: str) -> Decimal:
    try:
        value = Decimal(text)
    except InvalidOperation:
        value = Decimal(-1)
    if not value.is_finite() or value < 0:
        raise argparse.ArgumentTypeError(f"expected a percentage of 0 or more, got {text!r}")
    return value


def _reconcile(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.billing.local import from_responses
    from llmclient.billing.reconcile import days_ending, reconcile
    from llmclient.errors import ConfigurationError

    if args.records_day is not None and args.records is None:
        raise ConfigurationError("--records-day is for --records (the day of responses without a date)")
    first, last = days_ending(args.days, args.end or datetime.now(timezone.utc).date())
    local = from_responses(args.records, args.records_day, args.provider) if args.records is not None else None
    result = reconcile(args.provider, first, last, local=local, directory=args.dir, threshold=args.threshold)
    if args.json:
        document = {"command": "costs reconcile", **result.model_dump(), "flagged_rows": len(result.flagged),
                    "empty": not result.rows}
        out.write(json.dumps(document, indent=2, default=jsonable) + "\n")
    else:
        out.write("".join(line + "\n" for line in render(result)))
    return 1 if result.flagged else 0


def render(result: Reconciliation) -> list[str]:
    """The reconciliation as terminal lines: a header, the table, totals, sources and notes."""
    span = f"{result.first_day}" if result.first_day == result.last_day else f"{result.first_day} .. {result.last_day}"
    lines = [f"{result.provider}: ours ({result.local_source}) beside the provider's report, {span} (UTC days); "
             f"flagged above {decimal_text(result.threshold_pct)}%"]
    if not result.rows:
        return lines + [f"nothing to reconcile: no {result.provider} calls in our records and nothing in the "
                        f"provider's report for {span}", *(f"note: {note}" for note in result.notes)]
    headers = ["day", "model", "ours as", "in ours", "in theirs", "diff", "out ours", "out theirs", "diff",
               "$ ours", "$ theirs", "diff", ""]
    rows = [[str(row.day), row.model, _ours_as(row),
             _count(row.ours.input_tokens if row.ours else None), _count(row.theirs.input_tokens if row.theirs else None),
             _pct(row.input_diff_pct),
             _count(row.ours.output_tokens if row.ours else None),
             _count(row.theirs.output_tokens if row.theirs else None), _pct(row.output_diff_pct),
             _money(row.ours.cost_usd if row.ours else None), _money(row.theirs.cost_usd if row.theirs else None),
             _pct(row.cost_diff_pct), "FLAG" if row.flagged else ""] for row in result.rows]
    lines += ["", *table(headers, rows, "lll" + "r" * 9 + "l"), ""]
    totals = result.totals
    lines.append(f"total: ours {_money(totals.cost_ours)}, theirs {_money(totals.cost_theirs)} "
                 f"({_pct(totals.cost_diff_pct)}); tokens in {totals.input_ours:,} / {totals.input_theirs:,}, "
                 f"out {totals.output_ours:,} / {totals.output_theirs:,}")
    sources = sorted({row.ours.cost_source for row in result.rows if row.ours and row.ours.cost_source})
    lines.append(f"where from: ours = each call's own cost ({', '.join(sources) or 'none priced'}) and tokens; "
                 f"theirs = billed (the provider's cost report), tokens from its usage report")
    noted = [row for row in result.rows if row.notes]
    if noted:
        lines += ["", *(f"{row.day} {row.model}: {'; '.join(row.notes)}" for row in noted)]
    if result.notes:
        lines += ["", *(f"note: {note}" for note in result.notes)]
    flagged = len(result.flagged)
    lines += ["", f"{flagged} of {len(result.rows)} row(s) flagged" if flagged else
              f"all {len(result.rows)} row(s) within {decimal_text(result.threshold_pct)}%"]
    return lines


def _ours_as(row: Row) -> str:
    """Our names for the row's model when they are not the provider's."""
    return ", ".join(row.local_models) if row.match == "date suffix" else ""


def _count(value: int | None) -> str:
    return "-" if value is None else f"{value:,}"


def _pct(value: Decimal | None) -> str:
    return "-" if value is None else f"{value:+.2f}%"


def _money(value: Decimal | None) -> str:
    return "-" if value is None else f"${decimal_text(value)}"
