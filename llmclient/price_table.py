"""The dated price table: loading it (lazily, once), the rows of a model, and which key prices a
`provider/model` (exact, through aliases, dated snapshots, routers billing at an upstream's price).

`llmclient/data/prices.json` is built by `scripts/build_prices.py` from litellm's price map and
pydantic's genai-prices plus hand-checked overrides. Each row: per-token USD prices, an effective
date range (`from`, `to`, inclusive), prices above an input-size threshold (`tiers`), batch /
priority / flex prices (`service_tiers`), time-of-day prices (`time_of_day`: UTC windows such as
DeepSeek's off-peak discount), per-use fees of built-in tools (`tool_fees`), its source and as-of
date. Users add or replace rows with `set_price(...)` or a JSON file named by `LLMCLIENT_PRICES`.
The computation is `llmclient.pricing`'s.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from functools import cache
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError
from llmclient.model_names import Names, undated, user_table

TABLE = Path(__file__).with_name("data") / "prices.json"
PRICE_FIELDS = ("input", "output", "cache_read", "cache_write", "cache_write_1h", "reasoning")
_log = logging.getLogger("llmclient.pricing")  # where the missing-price warning has always come from
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
    time_of_day: tuple[tuple[str, str, dict[str, Decimal]], ...] = ()  # (start, end "HH:MM" UTC, prices) windows
    tool_fees: dict[str, Decimal] = field(default_factory=dict)  # USD per use of a built-in tool, by kind


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
    windows = tuple((_clock(w.get("start"), key), _clock(w.get("end"), key), _decimals(w, key))
                    for w in raw.get("time_of_day") or [])
    fees = {}
    for kind, fee in (raw.get("tool_fees") or {}).items():
        try:
            fees[str(kind)] = Decimal(str(fee))
        except ArithmeticError as exc:
            raise ConfigurationError(f"{key}: tool fee {kind} = {fee!r} is not a number") from exc
    return Row(key, raw.get("from"), raw.get("to"), prices, tiers, service, str(raw.get("source", "")),
               str(raw.get("as_of", "")), windows, fees)


def _clock(value: Any, key: str) -> str:
    """A time of day "HH:MM" (UTC) of a time_of_day window."""
    if not isinstance(value, str) or not re.fullmatch(r"([01]\d|2[0-3]):[0-5]\d", value):
        raise ConfigurationError(f"{key}: a time_of_day window needs start and end as \"HH:MM\" (UTC), got {value!r}")
    return value


@dataclass(frozen=True)
class _Table:
    version: str
    raw: dict[str, list[dict[str, Any]]]  # parsed into Rows on first use: most keys never are
    names: Names
    aliases: dict[str, Any]  # the table's `aliases` object, which the model catalogue resolves with too
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
    models.update(user_table("LLMCLIENT_PRICES", '{"models": {"<provider>/<model>": [{"input": ..., "output": ...}]}}',
                             _checked_rows))
    models.update(_user_rows)
    aliases = dict(data.get("aliases", {}))
    return _Table(str(data["version"]), models, Names.of(models, aliases), aliases)


def _checked_rows(key: str, rows: Any) -> None:
    for raw in rows:
        _row(key, raw)


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


def sold_as(model: str) -> list[str]:
    """Every provider's key for exactly the bare model name `model` ("gpt-4o-mini"; a dated
    snapshot counts as its name unless asked for), the model's own vendor first."""
    table = _table()
    wanted = model.lower()
    exact = [key for key in table.raw if undated(key.split("/", 1)[1].lower()) == undated(wanted)]
    plain = {key.lower() for key in exact if undated(key) == key}
    # gpt-4o-mini: openai/gpt-4o-mini, not also each of its dated snapshots
    exact = [key for key in exact if key.split("/", 1)[1].lower() == wanted or undated(key.lower()) not in plain]
    return sorted(exact, key=lambda key: (key.count("/"), _VENDOR_ORDER.get(key.split("/", 1)[0], 99), key))


def close_names(name: str) -> list[str]:
    """The keys spelled closest to `name` ("provider/model", or a bare model name), best first."""
    import difflib

    table = _table()
    pool = dict(table.names.lowered) if "/" in name else {key.split("/", 1)[1].lower(): key for key in table.raw}
    return [pool[match] for match in difflib.get_close_matches(name.lower(), list(pool), n=5, cutoff=0.8)]


# Whose model a bare name most likely is: the labs before the clouds and routers reselling it.
_VENDOR_ORDER = {name: rank for rank, name in enumerate(
    ("openai", "anthropic", "gemini", "mistral", "deepseek", "cohere", "xai", "zai", "groq", "cerebras"))}


def resolve(provider: str, model: str, base_url: str | None = None) -> str | None:
    """The table key that prices `provider/model`: exact, then through provider aliases, dated
    snapshots (either way), and routers billing at an upstream's price (`model_names`' rules)."""
    return _table().names.resolve(provider, model, base_url)


def aliases() -> dict[str, Any]:
    """The table's provider, model and router-upstream aliases (the model catalogue's too)."""
    return _table().aliases


def row_for(key: str, on: date | None = None) -> Row | None:
    """The row of `key` in force on `on` (today by default); a retired model's last price after it."""
    rows = _table().rows(key)
    return rows[in_force(_table().raw[key], (on or date.today()).isoformat())] if rows else None


def in_force(rows: Sequence[Mapping[str, Any]], day: str) -> int:
    """Which of a model's rows (`from`/`to` inclusive ISO days, null open) is in force on `day`: the
    last one covering it; after a model's last row ended, that row; before its first, the first."""
    current = [i for i, row in enumerate(rows) if (row.get("from") or "") <= day and (row.get("to") is None or day <= row["to"])]
    if current:
        return current[-1]
    started = [i for i, row in enumerate(rows) if (row.get("from") or "") <= day]
    return started[-1] if started else 0


def first_day(key: str) -> str | None:
    """The first day `key` has a price for (None: priced from the start of the table's record)."""
    rows = _table().rows(key)
    return min((r.start or "" for r in rows), default=None) or None


def warn_once(model: str) -> None:
    with _lock:
        if model in _warned:
            return
        _warned.add(model)
    _log.warning("no price known for %s: its responses have cost=None", model)
