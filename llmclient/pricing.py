"""Cost of a response from the dated price table: `cost(...) -> Cost | None`, which never raises.

The table (`llmclient/data/prices.json`, built by `scripts/build_prices.py` from the pinned
litellm's price map plus hand-checked overrides) holds per-token USD prices per model, each row
with an effective date range, its source and as-of date, prices above an input-size threshold
(`tiers`) and batch / priority / flex prices (`service_tiers`). Users add or replace prices with
`set_price(...)` or a JSON file named by `LLMCLIENT_PRICES`.

The formula, on the normalised `Usage`: uncached input x input + cache reads x cache_read +
cache writes x cache_write (1-hour writes at cache_write_1h) + output x output (reasoning at
`reasoning` where the table prices it apart), at the tier the request's input size falls in and
the service tier the provider reports. A bucket the table gives no separate price (cache reads of
a provider without a cache discount) is billed at the input price. An unknown model gives None
and one warning naming it — never 0. When the provider reports the charge (OpenRouter
`usage.cost`), that figure is the total and ours is kept in `computed_total`.
"""

from __future__ import annotations

import json
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError
from llmclient.types import Cost, Prices, Usage

TABLE = Path(__file__).with_name("data") / "prices.json"
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|20\d{6})$")  # -2024-07-18, -20250929: dated snapshots
_log = logging.getLogger(__name__)
_lock = threading.Lock()
_warned: set[str] = set()
_user_rows: dict[str, list[dict[str, Any]]] = {}


@dataclass(frozen=True)
class Row:
    """One dated price row of a model (Decimals parsed once)."""

    key: str
    start: str | None
    end: str | None
    prices: dict[str, Decimal]
    tiers: tuple[tuple[int, dict[str, Decimal]], ...]
    service_tiers: dict[str, dict[str, Decimal]]
    source: str
    as_of: str


def _decimals(raw: dict[str, Any], where: str) -> dict[str, Decimal]:
    out = {}
    for name in PRICE_FIELDS:
        if raw.get(name) is not None:
            try:
                out[name] = Decimal(str(raw[name]))
            except ArithmeticError as exc:
                raise ConfigurationError(f"{where}: {name} = {raw[name]!r} is not a number") from exc
    return out


def _row(key: str, raw: dict[str, Any]) -> Row:
    prices = _decimals(raw, key)
    if "input" not in prices or "output" not in prices:
        raise ConfigurationError(f"price for {key} needs at least input and output per-token prices")
    tiers = tuple(sorted((int(t["above_input_tokens"]), _decimals(t, key)) for t in raw.get("tiers") or []))
    service = {name: _decimals(p, key) for name, p in (raw.get("service_tiers") or {}).items()}
    return Row(key, raw.get("from"), raw.get("to"), prices, tiers, service, str(raw.get("source", "")), str(raw.get("as_of", "")))


@dataclass(frozen=True)
class _Table:
    version: str
    raw: dict[str, list[dict[str, Any]]]  # parsed into Rows on first use: most keys never are
    lowered: dict[str, str]
    snapshots: dict[str, list[str]]  # undated key -> its dated snapshot keys
    provider_aliases: dict[str, str]
    model_aliases: dict[str, str]  # "<provider>/<alias>" -> the key it names
    upstreams: dict[str, dict[str, str]]
    resolved: dict[tuple[str, str, str | None], str | None] = field(default_factory=dict)  # memo of resolve()
    built: dict[str, tuple[Row, ...]] = field(default_factory=dict)

    def rows(self, key: str) -> tuple[Row, ...]:
        """The dated rows of `key` (none for an unknown key)."""
        if key not in self.built:
            self.built[key] = tuple(_row(key, raw) for raw in self.raw.get(key, ()))
        return self.built[key]


@cache
def _table() -> _Table:
    data = json.loads(TABLE.read_text(encoding="utf-8"))
    models: dict[str, list[dict[str, Any]]] = dict(data["models"])
    path = os.environ.get("LLMCLIENT_PRICES")
    if path:
        models.update(_load_user_file(Path(path)))
    models.update(_user_rows)
    snapshots: dict[str, list[str]] = {}
    for key in models:
        undated = _DATE_SUFFIX.sub("", key)
        if undated != key:
            snapshots.setdefault(undated.lower(), []).append(key)
    aliases = data.get("aliases", {})
    return _Table(str(data["version"]), models, {k.lower(): k for k in models}, snapshots,
                  aliases.get("providers", {}), {k.lower(): v for k, v in aliases.get("models", {}).items()},
                  aliases.get("upstreams", {}))


def _load_user_file(path: Path) -> dict[str, list[dict[str, Any]]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        models = data["models"]
        for key, entries in models.items():
            for raw in entries:
                _row(key, raw)
    except ConfigurationError as exc:
        raise ConfigurationError(f"LLMCLIENT_PRICES={path}: {exc.message}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(
            f"LLMCLIENT_PRICES={path}: expected a JSON file {{\"models\": {{\"<provider>/<model>\": [{{\"input\": ..., "
            f"\"output\": ...}}]}}}}: {exc}"
        ) from exc
    return dict(models)


def keys(prefix: str = "") -> list[str]:
    """Every priced model key, optionally only those starting with `prefix` (e.g. "anthropic")."""
    return sorted(key for key in _table().raw if key.startswith(prefix))


def table_version() -> str:
    return _table().version


def set_price(model: str, *, input: Decimal | str, output: Decimal | str, cache_read: Decimal | str | None = None,
              cache_write: Decimal | str | None = None, cache_write_1h: Decimal | str | None = None,
              reasoning: Decimal | str | None = None, source: str = "set_price", effective_from: str | None = None) -> None:
    """Add or replace the per-token USD prices of `"<provider>/<model>"` (this process only)."""
    if "/" not in model:
        raise ConfigurationError(f"set_price needs '<provider>/<model>', got {model!r}")
    given = {"input": input, "output": output, "cache_read": cache_read, "cache_write": cache_write,
             "cache_write_1h": cache_write_1h, "reasoning": reasoning}
    raw: dict[str, Any] = {name: str(value) for name, value in given.items() if value is not None}
    raw.update({"from": effective_from, "to": None, "source": source, "as_of": date.today().isoformat()})
    _row(model, raw)  # validate now, not at the first call
    with _lock:
        _user_rows[model] = [raw]
        _table.cache_clear()
        _warned.discard(model)


def resolve(provider: str, model: str, base_url: str | None = None) -> str | None:
    """The table key that prices `provider/model`: exact, then through provider aliases, dated
    snapshots (either way), and routers billing at an upstream's price."""
    table = _table()
    memo_key = (provider, model, base_url)
    if memo_key not in table.resolved:
        table.resolved[memo_key] = _resolve(table, provider, model, base_url)
    return table.resolved[memo_key]


def _resolve(table: _Table, provider: str, model: str, base_url: str | None) -> str | None:
    provider = table.provider_aliases.get(provider, provider)
    model = model.removeprefix("models/")
    candidates = [f"{provider}/{model}"]
    if provider in table.upstreams:
        candidates += _upstream_keys(provider, model, base_url, table.upstreams[provider])
    for candidate in candidates:
        found = _lookup(table, candidate)
        if found:
            return found
    return None


def _lookup(table: _Table, candidate: str) -> str | None:
    lowered = candidate.lower().removesuffix(":thinking")  # OpenRouter's thinking variant: same price
    if lowered in table.model_aliases:
        return table.model_aliases[lowered]
    for option in (lowered, _DATE_SUFFIX.sub("", lowered)):
        if option in table.lowered:
            return table.lowered[option]
    dated = table.snapshots.get(lowered)
    return max(dated) if dated else None  # an undated name prices as its latest snapshot


def _upstream_keys(provider: str, model: str, base_url: str | None, upstreams: dict[str, str]) -> list[str]:
    if provider == "openrouter" and "/" in model:  # OpenRouter passes the vendor's price through
        vendor, name = model.split("/", 1)
        upstream = upstreams.get(vendor)
        if upstream == "anthropic":  # claude-3.7-sonnet -> claude-3-7-sonnet; claude-4.5-sonnet -> claude-sonnet-4-5
            name = re.sub(r"^claude-(\d+)\.(\d+)-(sonnet|opus|haiku)", lambda m: (
                f"claude-{m[1]}-{m[2]}-{m[3]}" if int(m[1]) < 4 else f"claude-{m[3]}-{m[1]}-{m[2]}"), name)
        return [f"{upstream}/{name}"] if upstream else []
    if provider == "huggingface" and base_url:  # router.huggingface.co/<upstream>/...: its price
        segment = base_url.split("://", 1)[-1].split("/")[1:2]
        upstream = upstreams.get(segment[0]) if segment else None
        return [f"{upstream}/{model}"] if upstream else []
    return []


def row_for(key: str, on: date | None = None) -> Row | None:
    """The row of `key` in force on `on` (today by default); a retired model's last price after it."""
    rows = _table().rows(key)
    if not rows:
        return None
    day = (on or date.today()).isoformat()
    current = [r for r in rows if (r.start or "") <= day and (r.end is None or day <= r.end)]
    if current:
        return current[-1]
    started = [r for r in rows if (r.start or "") <= day]
    return started[-1] if started else rows[0]


def cost(provider: str, model: str, usage: Usage | None, raw_usage: dict[str, Any] | None = None, *,
         on: date | None = None, service_tier: str | None = None, base_url: str | None = None) -> Cost | None:
    """The USD cost of one response; None when it cannot be known exactly. Never raises."""
    if usage is None:
        return None
    try:
        computed = _computed(provider, model, usage, raw_usage or {}, on, service_tier, base_url)
        reported = _reported(raw_usage)
        if reported is None:
            return computed
        zero = Decimal(0)
        return Cost(
            input=computed.input if computed else zero, cache_read=computed.cache_read if computed else zero,
            cache_write=computed.cache_write if computed else zero, output=computed.output if computed else zero,
            total=reported, source="provider", prices=computed.prices if computed else None,
            computed_total=computed.total if computed else None,
        )
    except Exception:  # pricing must never fail a call
        _log.exception("pricing %s/%s failed", provider, model)
        return None


def _reported(raw_usage: dict[str, Any] | None) -> Decimal | None:
    value = (raw_usage or {}).get("cost")
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        return None
    try:
        return Decimal(str(value))
    except ArithmeticError:
        return None


def _computed(provider: str, model: str, usage: Usage, raw: dict[str, Any], on: date | None,
              service_tier: str | None, base_url: str | None) -> Cost | None:
    if usage.iterations and any(step.model and step.model != model for step in usage.iterations):
        return _by_iteration(provider, model, usage, on, service_tier, base_url)
    key = resolve(provider, model, base_url)
    row = row_for(key, on) if key else None
    if row is None:
        _warn_once(f"{provider}/{model}")
        return None
    return _priced(row, usage, _one_hour_writes(raw), service_tier)


def _by_iteration(provider: str, model: str, usage: Usage, on: date | None, service_tier: str | None,
                  base_url: str | None) -> Cost | None:
    """Anthropic advisor iterations run on another model: each is billed at its own model's price."""
    parts: list[Cost] = []
    for step in usage.iterations:
        step_model = step.model or model
        key = resolve(provider, step_model, base_url)
        row = row_for(key, on) if key else None
        if row is None:
            _warn_once(f"{provider}/{step_model}")
            return None
        step_usage = Usage(input_tokens=step.input_tokens, output_tokens=step.output_tokens,
                           cache_read_tokens=step.cache_read_tokens, cache_write_tokens=step.cache_write_tokens)
        priced = _priced(row, step_usage, 0, service_tier)
        if priced is None:
            return None
        parts.append(priced)
    fields = ("input", "cache_read", "cache_write", "output", "total")
    sums = {name: sum((getattr(p, name) for p in parts), Decimal(0)) for name in fields}
    return Cost(**sums, source="price-table", prices=parts[0].prices)


def _one_hour_writes(raw: dict[str, Any]) -> int:
    creation = raw.get("cache_creation")
    value = creation.get("ephemeral_1h_input_tokens") if isinstance(creation, dict) else None
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0


def _priced(row: Row, usage: Usage, one_hour_writes: int, service_tier: str | None) -> Cost | None:
    prices = dict(row.prices)
    threshold = None
    for above, tier_prices in row.tiers:
        if usage.input_tokens > above:  # the request's input size picks the tier
            prices.update(tier_prices)
            threshold = above
    tier_name = {"batch": "batch", "priority": "priority", "flex": "flex"}.get(service_tier or "")
    if tier_name and tier_name in row.service_tiers and threshold is None:
        prices.update(row.service_tiers[tier_name])
    else:
        tier_name = None
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
    }
    used = Prices(input=input_price, output=prices["output"], cache_read=prices.get("cache_read"),
                  cache_write=prices.get("cache_write"), cache_write_1h=prices.get("cache_write_1h"),
                  reasoning=prices.get("reasoning"), above_input_tokens=threshold, service_tier=tier_name,
                  model=row.key, source=row.source, as_of=row.as_of, table_version=_table().version)
    return Cost(**parts, total=sum(parts.values(), Decimal(0)), source="price-table", prices=used)


def _warn_once(model: str) -> None:
    with _lock:
        if model in _warned:
            return
        _warned.add(model)
    _log.warning("no price known for %s: its responses have cost=None", model)
