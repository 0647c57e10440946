"""Merge litellm's row and genai-prices' dated rows of one model, listing every conflict and its decision.

A field both sources price (a token price, a tier's price, a service tier's price, a tool fee) is compared
on the row genai-prices has in force on the day litellm's snapshot was checked. Equal: one value, citing
both. Different: a conflict; an override entry for the model (price_overrides.json, with the provider's
page and as-of date) decides it, else the default rule `decide_default` does. A field only one source
prices is taken from it. genai-prices' rows before and after that day stay as genai-prices dates them.
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from llmclient.price_table import PRICE_FIELDS, in_force

COMPARED = PRICE_FIELDS  # the per-token prices of a row
META = ("from", "to", "source", "as_of")


@dataclass(frozen=True)
class Conflict:
    key: str
    field: str  # "output", "tiers.>200000.input", "service_tiers.batch.cache_read", "tool_fees.web_search"
    litellm: str  # per-token USD (per use for tool_fees)
    genai: str
    decision: str  # "override", "litellm", "genai-prices"
    reason: str
    chosen: str | None  # the value the table holds (None: the override has no such field)


def flatten(row: dict[str, Any]) -> dict[str, str]:
    """The comparable prices of a row, by path."""
    out = {name: row[name] for name in COMPARED if name in row}
    for tier in row.get("tiers") or []:
        out.update({f"tiers.>{tier['above_input_tokens']}.{k}": v for k, v in tier.items() if k in COMPARED})
    for name, prices in (row.get("service_tiers") or {}).items():
        out.update({f"service_tiers.{name}.{k}": v for k, v in prices.items() if k in COMPARED})
    out.update({f"tool_fees.{k}": v for k, v in (row.get("tool_fees") or {}).items()})
    return out


def unflatten(flat: dict[str, str]) -> dict[str, Any]:
    out: dict[str, Any] = {name: flat[name] for name in COMPARED if name in flat}
    tiers: dict[int, dict[str, Any]] = {}
    service: dict[str, dict[str, str]] = {}
    fees: dict[str, str] = {}
    for path, value in flat.items():
        head, _, rest = path.partition(".")
        if head == "tiers":
            threshold, _, name = rest.partition(".")
            tiers.setdefault(int(threshold[1:]), {"above_input_tokens": int(threshold[1:])})[name] = value
        elif head == "service_tiers":
            tier, _, name = rest.partition(".")
            service.setdefault(tier, {})[name] = value
        elif head == "tool_fees":
            fees[rest] = value
    if tiers:
        out["tiers"] = [tiers[t] for t in sorted(tiers)]
    if service:
        out["service_tiers"] = {name: service[name] for name in ("batch", "priority", "flex") if name in service}
    if fees:
        out["tool_fees"] = dict(sorted(fees.items()))
    return out


def decide_default(own: bool) -> tuple[str, str]:
    """The rule for a conflict no override decides: (source, why). genai-prices where it lists the very
    name under that provider (kept per provider page, with dated history and dated corrections); litellm,
    which lists every name it prices by itself, where genai-prices only reaches the name by a pattern,
    a fallback provider or Hugging Face's router listing, none of which can know that name's own price."""
    if own:
        return "genai-prices", "default rule: genai-prices lists this name"
    return "litellm", "default rule: litellm lists this name, genai-prices only matches it by pattern or through another listing"


def merge(key: str, lite: dict[str, Any] | None, genai: list[dict[str, Any]] | None, own: bool,
          override: list[dict[str, Any]] | None, day: str, versions: dict[str, str]) -> tuple[list[dict[str, Any]], list[Conflict]]:
    """The rows of `key` and the conflicts between the sources, decided. `own`: genai's rows are its own
    listing of the provider's model (see decide_default)."""
    conflicts: list[Conflict] = []
    if lite is not None and genai:
        index = in_force(genai, day)
        mine, theirs = flatten(lite), flatten(genai[index])
        merged = {**mine, **theirs}
        for path in sorted(set(mine) & set(theirs)):
            if Decimal(mine[path]) == Decimal(theirs[path]):
                continue
            if override is not None:
                chosen = flatten(override[in_force(override, day)]).get(path)
                conflicts.append(Conflict(key, path, mine[path], theirs[path], "override", override_reason(override, day), chosen))
                continue
            winner, why = decide_default(own)
            merged[path] = mine[path] if winner == "litellm" else theirs[path]
            conflicts.append(Conflict(key, path, mine[path], theirs[path], winner, why, merged[path]))
        rows = [dict(r) for r in genai]
        current = rows[index]
        extra = {k: v for k, v in current.items() if k not in META and k not in ("tiers", "service_tiers", "tool_fees")
                 and k not in COMPARED}  # time_of_day: genai-prices' alone
        if any(c.decision == "litellm" and c.field in COMPARED for c in conflicts):
            extra.pop("time_of_day", None)  # windows go with genai-prices' prices for the rest of the day
        agreed = not [c for c in conflicts if c.key == key]
        note = (f"litellm {versions['litellm']} and genai-prices {versions['genai']} agree" if agreed else
                f"litellm {versions['litellm']} and genai-prices {versions['genai']} differ: see price_conflicts.md")
        rows[index] = {"from": current["from"], "to": current["to"], **unflatten(merged), **extra,
                       "source": f"{_url(lite['source']) or _url(current['source'])} ({note})", "as_of": current["as_of"]}
        result = rows
    elif genai:
        result = genai
    elif lite is not None:
        result = [lite]
    else:
        result = []
    return (override if override is not None else result), conflicts


def override_reason(override: list[dict[str, Any]], day: str) -> str:
    row = override[in_force(override, day)]
    return f"override: {_url(str(row.get('source', '')))} (as of {row.get('as_of', '')})"


def _url(source: str) -> str:
    return source.split(" ", 1)[0].rstrip(";")
