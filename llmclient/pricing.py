"""Cost of a response: `cost(...) -> Cost | None`, which never raises.

The prices come from the dated table (`llmclient.price_table`: rows per model with effective
dates, tiers, service tiers, time-of-day windows and tool fees; `set_price`, `resolve`, `row_for`
and the rest are re-exported here). A call is priced at the moment it was answered: the row in
force that day, and the time-of-day prices of that hour (UTC).

The formula, on the normalised `Usage`: uncached input x input + cache reads x cache_read +
cache writes x cache_write (1-hour writes at cache_write_1h) + output x output (reasoning at
`reasoning` where the table prices it apart) + each built-in tool use x its fee (`Cost.tools`),
at the tier the request's input size falls in and the service tier the provider reports. A
bucket the table gives no separate price (cache reads of a provider without a cache discount) is
billed at the input price. An unknown model, or a tool use whose fee is unknown, gives None and
one warning naming it — never 0. When the provider reports the charge (OpenRouter `usage.cost`;
with BYOK plus `cost_details.upstream_inference_cost`), that figure is the total and ours is kept
in `computed_total`.
"""

from __future__ import annotations

import logging
from datetime import date, datetime, time, timezone
from decimal import Decimal
from typing import Any

from llmclient.price_table import (
    Row,
    close_names,
    first_day,
    keys,
    resolve,
    row_for,
    set_price,
    sold_as,
    table_version,
    warn_once,
)
from llmclient.types import Cost, Prices, Usage

__all__ = ["Row", "close_names", "cost", "first_day", "keys", "resolve", "row_for", "set_price", "sold_as", "table_version"]
_log = logging.getLogger(__name__)
# Counters that measure one tool in two units: Gemini's grounding is billed per grounded prompt
# (Gemini 2.x) or per search query (Gemini 3); a row prices one of them, the other is not a charge.
_UNITS_OF_ONE_TOOL = ({"grounded_prompt", "web_search"},)


def cost(provider: str, model: str, usage: Usage | None, raw_usage: dict[str, Any] | None = None, *,
         on: date | datetime | None = None, service_tier: str | None = None, base_url: str | None = None) -> Cost | None:
    """The USD cost of one response; None when it cannot be known exactly. Never raises.

    `on` is when the call was answered (a `datetime`, UTC when naive, for time-of-day prices; a
    `date` prices on that day's row, without time-of-day prices); None is now."""
    if usage is None:
        return None
    try:
        at = _moment(on)
        reported = _reported(raw_usage)
        computed = _computed(provider, model, usage, raw_usage or {}, at, service_tier, base_url, warn=reported is None)
        if reported is None:
            return computed
        zero = Decimal(0)
        return Cost(
            input=computed.input if computed else zero, cache_read=computed.cache_read if computed else zero,
            cache_write=computed.cache_write if computed else zero, output=computed.output if computed else zero,
            tools=computed.tools if computed else zero, total=reported, source="provider",
            prices=computed.prices if computed else None, computed_total=computed.total if computed else None,
        )
    except Exception:  # pricing must never fail a call
        _log.exception("pricing %s/%s failed", provider, model)
        return None


def _moment(on: date | datetime | None) -> tuple[date, time | None]:
    """(the day, the UTC time of day or None) a call is priced at."""
    if isinstance(on, datetime):
        utc = on.astimezone(timezone.utc) if on.tzinfo else on
        return utc.date(), utc.time()
    if on is not None:
        return on, None
    now = datetime.now(timezone.utc)
    return now.date(), now.time()


def _reported(raw_usage: dict[str, Any] | None) -> Decimal | None:
    """The charge the provider reported (OpenRouter `usage.cost`). With BYOK (`is_byok`) that is
    OpenRouter's own fee only and the upstream provider bills the key's owner
    `cost_details.upstream_inference_cost`: the spend is both."""
    raw_usage = raw_usage or {}
    value = _amount(raw_usage.get("cost"))
    if value is None or raw_usage.get("is_byok") is not True:
        return value
    details = raw_usage.get("cost_details")
    upstream = _amount(details.get("upstream_inference_cost")) if isinstance(details, dict) else None
    return None if upstream is None else value + upstream  # a BYOK charge without its upstream part is not the spend


def _amount(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        amount = Decimal(str(value))
    except ArithmeticError:
        return None
    return amount if amount.is_finite() else None


def _computed(provider: str, model: str, usage: Usage, raw: dict[str, Any], at: tuple[date, time | None],
              service_tier: str | None, base_url: str | None, *, warn: bool = True) -> Cost | None:
    """Our own figure; a missing price is warned about only when the provider reported no charge
    either (the Claude CLI reports its own cost for models the table may not list)."""
    if usage.iterations and any(step.model and step.model != model for step in usage.iterations):
        return _by_iteration(provider, model, usage, at, service_tier, base_url)
    key = resolve(provider, model, base_url)
    row = row_for(key, at[0]) if key else None
    if row is None:
        if warn:
            warn_once(f"{provider}/{model}")
        return None
    return _priced(row, usage, _one_hour_writes(raw), service_tier, at[1])


def _by_iteration(provider: str, model: str, usage: Usage, at: tuple[date, time | None], service_tier: str | None,
                  base_url: str | None) -> Cost | None:
    """Iterations run on other models (Anthropic advisor calls, Groq Compound's models): each is
    billed at its own model's price; the built-in tools at the called model's fees."""
    steps = usage.iterations
    if (sum(s.input_tokens for s in steps), sum(s.output_tokens for s in steps)) != (usage.input_tokens, usage.output_tokens):
        return None  # the per-model counts do not add up to what was billed: no exact figure exists
    parts: list[Cost] = []
    for step in steps:
        step_model = step.model or model
        key = resolve(provider, step_model, base_url)
        row = row_for(key, at[0]) if key else None
        if row is None:
            warn_once(f"{provider}/{step_model}")
            return None
        step_usage = Usage(input_tokens=step.input_tokens, output_tokens=step.output_tokens,
                           cache_read_tokens=step.cache_read_tokens, cache_write_tokens=step.cache_write_tokens)
        priced = _priced(row, step_usage, 0, service_tier, at[1])
        if priced is None:
            return None
        parts.append(priced)
    own_key = resolve(provider, model, base_url)
    own = row_for(own_key, at[0]) if own_key else None
    tools = _tool_fees(own.tool_fees if own else {}, usage, f"{provider}/{model}")
    if tools is None:
        return None
    fields = ("input", "cache_read", "cache_write", "output")
    sums = {name: sum((getattr(p, name) for p in parts), Decimal(0)) for name in fields}
    prices = parts[0].prices
    if prices is not None and tools[1]:
        prices = prices.model_copy(update={"tool_fees": tools[1]})
    return Cost(**sums, tools=tools[0], total=sum(sums.values(), tools[0]), source="price-table", prices=prices)


def _one_hour_writes(raw: dict[str, Any]) -> int:
    creation = raw.get("cache_creation")
    value = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _in_window(moment: time, start: str, end: str) -> bool:
    """`moment` (UTC) within [start, end); a window may wrap midnight (16:30-00:30)."""
    clock = moment.strftime("%H:%M")
    return start <= clock < end if start < end else (clock >= start or clock < end)


def _tool_fees(fees: dict[str, Decimal], usage: Usage, model: str) -> tuple[Decimal, dict[str, Decimal]] | None:
    """The built-in tools' fees (total, and the per-use fee of each kind used); None when a tool ran
    whose fee the table does not know (the charge is then unknown, never taken as 0)."""
    used = {kind: count for kind, count in usage.tool_uses.items() if count}
    billed = {kind: fees[kind] for kind in used if kind in fees}
    unknown = [kind for kind in used if kind not in billed
               and not any(kind in units and units & billed.keys() for units in _UNITS_OF_ONE_TOOL)]
    if unknown:
        warn_once(f"{model} (the fee of its built-in tools: {', '.join(sorted(unknown))})")
        return None
    return sum((fee * used[kind] for kind, fee in billed.items()), Decimal(0)), billed


def _unpriced_in_tier(standard: dict[str, Decimal], tier: dict[str, Decimal], usage: Usage, one_hour_writes: int) -> bool:
    """Whether the call used a bucket the table prices apart at the standard rate but not in this
    service tier (e.g. cache reads of a batch, when the batch row gives only input and output)."""
    hour = min(one_hour_writes, usage.cache_write_tokens)
    used = {"cache_read": usage.cache_read_tokens, "cache_write": usage.cache_write_tokens - hour,
            "cache_write_1h": hour, "reasoning": usage.reasoning_tokens}
    return any(count and name in standard and name not in tier for name, count in used.items())


def _priced(row: Row, usage: Usage, one_hour_writes: int, service_tier: str | None, moment: time | None = None) -> Cost | None:
    prices = dict(row.prices)
    threshold = None
    for above, tier_prices in row.tiers:
        if usage.input_tokens > above:  # the request's input size picks the tier
            prices.update(tier_prices)
            threshold = above
    tier_name = {"batch": "batch", "priority": "priority", "flex": "flex"}.get(service_tier or "")
    if tier_name and tier_name in row.service_tiers and threshold is None:
        tier = row.service_tiers[tier_name]
        if _unpriced_in_tier(prices, tier, usage, one_hour_writes):
            warn_once(f"{row.key} (a bucket of its {tier_name} prices)")
            return None  # never a standard price passed off as the tier's
        prices.update(tier)
    else:
        tier_name = None
    window = None
    if moment is not None:
        for start, end, window_prices in row.time_of_day:
            if _in_window(moment, start, end):  # an off-peak discount: its prices for calls answered then
                prices.update(window_prices)
                window = f"{start}-{end} UTC"
                break
    fees = _tool_fees(row.tool_fees, usage, row.key)
    if fees is None:
        return None
    input_price = prices["input"]
    read_price = prices.get("cache_read", input_price)
    write_price = prices.get("cache_write", input_price)
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    if uncached < 0:
        if "cache_read" in prices or "cache_write" in prices:
            return None  # the provider's buckets overlap (see Usage): no exact figure exists
        uncached, read_price, write_price = usage.input_tokens, Decimal(0), Decimal(0)  # all billed as input
    hour = min(one_hour_writes, usage.cache_write_tokens)
    reasoning_price = prices.get("reasoning", prices["output"])
    parts = {
        "input": input_price * uncached,
        "cache_read": read_price * usage.cache_read_tokens,
        "cache_write": write_price * (usage.cache_write_tokens - hour) + prices.get("cache_write_1h", write_price) * hour,
        "output": prices["output"] * (usage.output_tokens - usage.reasoning_tokens) + reasoning_price * usage.reasoning_tokens,
        "tools": fees[0],
    }
    used = Prices(input=input_price, output=prices["output"], cache_read=prices.get("cache_read"),
                  cache_write=prices.get("cache_write"), cache_write_1h=prices.get("cache_write_1h"),
                  reasoning=prices.get("reasoning"), above_input_tokens=threshold, service_tier=tier_name,
                  time_of_day=window, tool_fees=fees[1] or None,
                  model=row.key, source=row.source, as_of=row.as_of, table_version=table_version())
    return Cost(**parts, total=sum(parts.values(), Decimal(0)), source="price-table", prices=used)
