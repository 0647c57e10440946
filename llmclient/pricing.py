"""Cost of a response: `cost(provider, model, usage, raw_usage) -> Cost | None`, which never raises.

Prices come from the price map bundled with the pinned litellm (read as a JSON file, without
importing litellm). A model without a known input and output price, or usage in a bucket whose
price is unknown (cache reads without a cache-read price), has no cost: `None`, never 0. When the
provider reports the charge itself (OpenRouter `usage.cost`), that figure is the total and ours
is kept alongside for comparison.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
import logging
import threading
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from llmclient.types import Cost, Prices, Usage

_log = logging.getLogger(__name__)
_warned: set[str] = set()
_warn_lock = threading.Lock()


@cache
def _price_map() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    if spec is None or not spec.submodule_search_locations:
        return {}
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    with path.open(encoding="utf-8") as handle:
        data: dict[str, Any] = json.load(handle)
    return data


@cache
def _source() -> str:
    return f"litellm {importlib.metadata.version('litellm')} model_prices_and_context_window_backup.json"


def _decimal(value: Any) -> Decimal | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return Decimal(str(value))


def prices_for(provider: str, model: str) -> Prices | None:
    """Per-token prices for a model, or None when the table does not price it."""
    table = _price_map()
    entry = table.get(f"{provider}/{model}") or table.get(model)
    if not isinstance(entry, dict):
        return None
    input_price = _decimal(entry.get("input_cost_per_token"))
    output_price = _decimal(entry.get("output_cost_per_token"))
    if input_price is None or output_price is None:
        return None
    return Prices(
        input=input_price,
        output=output_price,
        cache_read=_decimal(entry.get("cache_read_input_token_cost")),
        cache_write=_decimal(entry.get("cache_creation_input_token_cost")),
        source=_source(),
        as_of=importlib.metadata.version("litellm"),
    )


def cost(provider: str, model: str, usage: Usage | None, raw_usage: dict[str, Any] | None = None) -> Cost | None:
    """The USD cost of one response; None when it cannot be known exactly."""
    if usage is None:
        return None
    try:
        computed = _computed(provider, model, usage)
        reported = _decimal((raw_usage or {}).get("cost"))
        if reported is not None:
            zero = Decimal(0)
            return Cost(
                input=computed.input if computed else zero,
                cache_read=computed.cache_read if computed else zero,
                cache_write=computed.cache_write if computed else zero,
                output=computed.output if computed else zero,
                total=reported,
                source="provider",
                prices=computed.prices if computed else None,
                computed_total=computed.total if computed else None,
            )
        return computed
    except Exception:  # pricing must never fail a call
        _log.exception("pricing %s/%s failed", provider, model)
        return None


def _computed(provider: str, model: str, usage: Usage) -> Cost | None:
    prices = prices_for(provider, model)
    if prices is None:
        _warn_once(f"{provider}/{model}")
        return None
    if (usage.cache_read_tokens and prices.cache_read is None) or (usage.cache_write_tokens and prices.cache_write is None):
        return None
    if any(step.model and step.model != model for step in usage.iterations):
        return None  # part of the response was billed at another model's prices
    uncached = usage.input_tokens - usage.cache_read_tokens - usage.cache_write_tokens
    if uncached < 0:  # the provider's buckets overlap (see Usage); no exact figure exists
        return None
    parts = {
        "input": prices.input * uncached,
        "cache_read": (prices.cache_read or Decimal(0)) * usage.cache_read_tokens,
        "cache_write": (prices.cache_write or Decimal(0)) * usage.cache_write_tokens,
        "output": prices.output * usage.output_tokens,
    }
    return Cost(**parts, total=sum(parts.values(), Decimal(0)), source="price-table", prices=prices)


def _warn_once(model: str) -> None:
    with _warn_lock:
        if model in _warned:
            return
        _warned.add(model)
    _log.warning("no price known for %s: its responses have cost=None", model)
