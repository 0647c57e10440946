"""`llmclient models ...`: the catalogue, prices, selection and the advisor on the command line.

    llmclient models list [--provider P] [--supports vision,tools] [--min-context 100k]
                          [--max-input-price 1.0] [--json]      catalogued models, cheapest input first
    llmclient models info PROVIDER/MODEL [--json]                 one model's limits, capabilities, prices
    llmclient models prices [PROVIDER/MODEL | MODEL | PROVIDER] [--on DATE]
                                                                  prices per 1M tokens, source and date
    llmclient models select [--budget USD] [--min-context N] [--supports ...] [--prefer cost|speed|quality]
                            [--input-tokens N] [--output-tokens N] [--all] [--top N] [--json]
    llmclient models recommend "TASK" [--budget USD] [--response-time fast|normal|relaxed]
                               [--assessor PROVIDER/MODEL] [--all] [--json]
"""

from __future__ import annotations

import argparse
import json
import re
from decimal import Decimal
from typing import Any, TextIO

from llmclient.cli_text import decimal_text, jsonable, table
from llmclient.errors import ConfigurationError

_SIZE = re.compile(r"^(\d+(?:\.\d+)?)([km]?)$", re.I)
# Cheap models the advisor asks when no --assessor is given: the first whose provider has a key.
ASSESSORS = ("openai/gpt-4o-mini", "gemini/gemini-2.5-flash-lite", "anthropic/claude-haiku-4-5", "groq/llama-3.1-8b-instant",
             "mistral/mistral-small-latest", "deepseek/deepseek-chat")


def add_parser(commands: Any) -> None:
    models = commands.add_parser("models", help="the model catalogue, prices, selection, advice").add_subparsers(
        required=True, metavar="WHAT")
    listing = models.add_parser("list", help="catalogued models with their limits, capabilities and prices")
    listing.add_argument("--provider", help="only this provider's models")
    listing.add_argument("--supports", default="", help="comma-separated capabilities every model must have")
    listing.add_argument("--min-context", type=_tokens, help="at least this many input tokens (e.g. 100k, 1m)")
    listing.add_argument("--max-input-price", help="at most this many USD per 1M input tokens")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(run=_list)

    info = models.add_parser("info", help="one model's limits, capabilities, retirement and prices")
    info.add_argument("model", help="provider/model")
    info.add_argument("--json", action="store_true")
    info.set_defaults(run=_info)

    prices = models.add_parser("prices", help="a model's prices (per 1M tokens) with their source and date")
    prices.add_argument("model", nargs="?", default="", help="provider/model, or a provider to list its models")
    prices.add_argument("--on", help="the date to price at (YYYY-MM-DD; default today)")
    prices.set_defaults(run=_prices)

    select = models.add_parser("select", help="models meeting requirements, ranked, with the cost per call")
    _requirements(select)
    select.add_argument("--prefer", default="cost", help="cost, speed or quality")
    select.add_argument("--input-tokens", type=_tokens, default=1_000, help="expected input tokens per call")
    select.add_argument("--output-tokens", type=_tokens, default=500, help="expected output tokens per call")
    select.add_argument("--top", type=int, default=10, help="how many to show")
    select.set_defaults(run=_select)

    recommend = models.add_parser("recommend", help="the model for a task, assessed by a cheap model")
    recommend.add_argument("task", help='the task, e.g. "summarise 50-page PDFs"')
    recommend.add_argument("--budget", help="USD per request at most")
    recommend.add_argument("--response-time", default="normal", help="fast, normal or relaxed")
    recommend.add_argument("--assessor", help=f"provider/model that assesses the task (default: the first of "
                                              f"{', '.join(ASSESSORS)} with a key; none: rules of thumb)")
    recommend.add_argument("--all", action="store_true", help="consider models whose provider has no key set")
    recommend.add_argument("--json", action="store_true")
    recommend.set_defaults(run=_recommend)


def _requirements(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--budget", help="USD per call at most")
    parser.add_argument("--min-context", type=_tokens, help="at least this many input tokens (e.g. 100k)")
    parser.add_argument("--supports", default="", help="comma-separated capabilities every model must have")
    parser.add_argument("--all", action="store_true", help="consider models whose provider has no key set")
    parser.add_argument("--json", action="store_true")


def _tokens(text: str) -> int:
    """A token count: 128000, 128k, 1m, 1.5m."""
    found = _SIZE.match(text.strip().replace(",", "").replace("_", ""))
    if not found:
        raise argparse.ArgumentTypeError(f"{text!r} is not a token count (e.g. 128000, 100k, 1m)")
    scale = {"": 1, "k": 1_000, "m": 1_000_000}[found[2].lower()]
    return int(Decimal(found[1]) * scale)


def _cell(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, Decimal):
        return f"${decimal_text(value)}"
    return f"{value:,}" if isinstance(value, int) else str(value)


def _list(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient import models

    found = models.list_models(provider=args.provider, supports=args.supports, min_context=args.min_context,
                               max_input_price=args.max_input_price)
    if args.json:
        out.write(json.dumps([info.model_dump(mode="json") for info in found], indent=1) + "\n")
        return 0
    rows = [[info.key, _cell(info.context_window), _cell(info.max_output_tokens), _cell(info.input_price),
             _cell(info.output_price), ",".join(info.capabilities), _cell(info.retires) if info.retires else ""]
            for info in found]
    out.write("\n".join(table(["model", "context", "max out", "in $/1M", "out $/1M", "capabilities", "retires"],
                              rows, "lrrrrll")) + "\n")
    out.write(f"{len(found)} models (catalogue {models.version()})\n")
    return 0


def _info(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient import models

    found = models.info(args.model)
    if found is None:
        out.write(f"{args.model} is not in the model catalogue ({models.version()}); calls to it are sent unchecked\n")
        return 1
    if args.json:
        out.write(json.dumps(found.model_dump(mode="json"), indent=1) + "\n")
        return 0
    fields = found.model_dump()
    width = max(len(name) for name in fields)
    for name, value in fields.items():
        out.write(f"{name:<{width}}  {_cell(value)}\n")
    return 0


def _select(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.selection import select_model

    picked = select_model(budget_per_call=args.budget, min_context=args.min_context, capabilities=args.supports,
                          prefer=args.prefer, expected_input_tokens=args.input_tokens,
                          expected_output_tokens=args.output_tokens, include_unkeyed=args.all)
    shown = picked.ranked[:max(args.top, 0)]
    if args.json:
        rows = [{"model": c.model, "estimated_cost": c.estimated_cost, "why": list(c.why)} for c in shown]
        out.write(json.dumps({"requirements": picked.requirements, "ranked": rows,
                              "eligible": len(picked.ranked), "excluded": len(picked.excluded)},
                             indent=1, default=jsonable) + "\n")
        return 0 if picked.ranked else 1
    out.write(_ranked(shown, picked.ranked, picked.excluded))
    return 0 if picked.ranked else 1


def _ranked(shown: Any, ranked: Any, excluded: Any) -> str:
    rows = [[c.model, _cell(c.estimated_cost), c.why[0].split(": ", 1)[-1]] for c in shown]
    lines = table(["model", "$ per call", "why"], rows, "lrl") if rows else []
    from llmclient.selection import reason_kind

    reasons: dict[str, int] = {}
    for candidate in excluded:
        for kind in {reason_kind(reason) for reason in candidate.why}:
            reasons[kind] = reasons.get(kind, 0) + 1
    summary = "; ".join(f"{count} {kind}" for kind, count in sorted(reasons.items(), key=lambda kv: -kv[1])[:5])
    lines.append(f"{len(ranked)} eligible, {len(excluded)} excluded" + (f" (reasons: {summary})" if summary else ""))
    return "\n".join(lines) + "\n"


def _recommend(args: argparse.Namespace, out: TextIO) -> int:
    from llmclient.advisor import ModelAdvisor
    from llmclient.client import Client

    assessor = args.assessor or _keyed_assessor()
    client = Client(assessor) if assessor else None
    try:
        advice = ModelAdvisor(client, include_unkeyed=args.all).recommend_model_for_task(
            args.task, args.budget, args.response_time)
    finally:
        if client is not None:
            client.close()
    cost = advice.assessment_cost
    if args.json:
        out.write(json.dumps({
            "task": args.task, "assessment": advice.assessment.assessment.model_dump(),
            "assessed_by": advice.assessment.assessed_by, "assessment_cost": cost,
            "best": None if advice.best is None else {"model": advice.best.model, "estimated_cost": advice.best.estimated_cost},
            "baseline": None if advice.baseline is None else {"model": advice.baseline.model,
                                                               "estimated_cost": advice.baseline.estimated_cost},
            "saving_per_call": advice.saving, "why": list(advice.why),
            "ranked": [{"model": c.model, "estimated_cost": c.estimated_cost} for c in advice.selection.ranked[:10]],
        }, indent=1, default=jsonable) + "\n")
        return 0 if advice.best else 1
    for line in advice.why:
        out.write(f"- {line}\n")
    if advice.best is not None:
        out.write(f"recommended: {advice.best.model}  ({_cell(advice.best.estimated_cost)} per call, estimated)\n")
    if advice.baseline is not None and advice.saving is not None and advice.baseline.model != getattr(advice.best, "model", None):
        out.write(f"most capable eligible: {advice.baseline.model} ({_cell(advice.baseline.estimated_cost)} per call): "
                  f"the pick saves ${decimal_text(advice.saving)} per call\n")
    usage = advice.assessment.usage
    spent = "" if advice.assessment.assessed_by == "rules" else \
        f"; it cost {_cell(cost) if cost is not None else 'an unknown amount (no price)'}" + \
        (f" ({usage.input_tokens:,} in, {usage.output_tokens:,} out)" if usage else "")
    out.write(f"assessment by {advice.assessment.assessed_by}{spent}\n")
    out.write(_ranked(advice.selection.ranked[:5], advice.selection.ranked, advice.selection.excluded))
    return 0 if advice.best else 1


def _keyed_assessor() -> str | None:
    from llmclient.envfile import getenv
    from llmclient.providers import REGISTRY

    for model in (getenv("LLMCLIENT_ADVISOR_MODEL"), *ASSESSORS):
        if model and (spec := REGISTRY.get(model.split("/", 1)[0])) is not None and getenv(spec.api_key_env):
            return model
    return None


def _prices(args: argparse.Namespace, out: TextIO) -> int:
    from datetime import date

    from llmclient import pricing

    on = None
    if args.on:
        try:
            on = date.fromisoformat(args.on)
        except ValueError as exc:
            raise ConfigurationError(f"--on {args.on!r} is not a date (YYYY-MM-DD)") from exc
    name, version = args.model, pricing.table_version()
    if not name or pricing.keys(name.rstrip("/") + "/"):  # nothing, or a provider: its models
        keys = pricing.keys(name.rstrip("/") + "/" if name else "")
        out.write("\n".join(keys) + f"\n{len(keys)} priced models (table {version})\n")
        return 0
    sellers = [] if "/" in name else pricing.sold_as(name)
    key = pricing.resolve(*name.split("/", 1)) if "/" in name else sellers[0] if len(sellers) == 1 else None
    if key is None:
        found = sellers or pricing.close_names(name)
        also = f" ({'also priced' if sellers else 'or'}: {', '.join(found[1:])})" if len(found) > 1 else ""
        hint = f"; did you mean {found[0]}?{also}" if found else "; `llmclient models prices PROVIDER` lists a provider's models"
        out.write(f"no price known for {name}{' without its provider' if sellers else ''} (table {version}){hint}\n")
        return 1
    row = pricing.row_for(key, on)
    first = pricing.first_day(key)
    if row is None:
        out.write(f"no price known for {name} (table {version})\n")
        return 1
    if on is not None and first is not None and on.isoformat() < first:
        out.write(f"{key} has no price on {on.isoformat()}: its first price is from {first} (it was not offered "
                  f"before, as far as the table {version} records)\n")
        return 1
    out.write(f"{name} -> {key}  (in force {row.start or 'since listed'} .. {row.end or 'now'})\n")
    out.write(_per_million("", row.prices))
    for above, tier in row.tiers:
        out.write(_per_million(f"above {above:,} input tokens: ", tier))
    for tier_name, tier in sorted(row.service_tiers.items()):
        out.write(_per_million(f"{tier_name}: ", tier))
    for start, end, window in row.time_of_day:
        out.write(_per_million(f"{start}-{end} UTC: ", window))
    for kind, fee in sorted(row.tool_fees.items()):
        out.write(f"{kind}: ${decimal_text(fee * 1000)} per 1,000 uses\n")
    out.write(f"source   {row.source}\nas of    {row.as_of}\ntable    {version}\n")
    return 0


def _per_million(label: str, prices: dict[str, Decimal]) -> str:
    parts = [f"{name} ${decimal_text(price * 1_000_000)}" for name, price in prices.items()]
    return f"{label}{', '.join(parts)}  (USD per 1M tokens)\n"

