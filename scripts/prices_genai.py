"""Rows of the price table from pydantic's genai-prices (a build-time source; llmclient never imports it).

genai-prices keeps a model's prices as `ModelInfo(id, match=<clauses>, prices=ModelPrice | [ConditionalPrice])`
in USD per million tokens (per thousand for `*_kcount`). A list of conditional prices is read the way
genai-prices reads it (`ModelInfo.get_prices`: the last active entry wins, the first when none is): each
`StartDateConstraint` date starts a dated row (`from`/`to` inclusive), and within a row a
`TimeOfDateConstraint` window whose prices differ from the rest of the day becomes a `time_of_day` entry
(UTC, start inclusive, end exclusive, may wrap midnight). Price variants selected by request context
(`processing: batch`, `service_tier: priority|flex`) become `service_tiers`: a row takes the variants in
force on its last day. genai-prices dates a variant by the day it verified it ("tier history before this
verification is not modeled"), so such a date does not start a row of its own. `web_searches_kcount`
becomes `tool_fees` (USD per single use).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal
from typing import Any

# llmclient provider -> genai-prices provider ids, tried in order. Hugging Face's router bills at the
# upstream provider's price (see aliases.upstreams.huggingface), so its per-upstream listings stand in
# for an upstream genai-prices has no provider of its own for, and fill in models the upstream lacks.
GENAI_PROVIDERS: dict[str, tuple[str, ...]] = {
    "openai": ("openai",), "anthropic": ("anthropic",), "gemini": ("google",), "groq": ("groq", "huggingface_groq"),
    "openrouter": ("openrouter",), "deepseek": ("deepseek",), "mistral": ("mistral",),
    "cerebras": ("cerebras", "huggingface_cerebras"), "cohere": ("cohere",), "zai": ("zai",), "xai": ("x-ai",),
    "together_ai": ("together", "huggingface_together"), "novita": ("novita", "huggingface_novita"),
    "nebius": ("huggingface_nebius",), "azure": ("azure",),
}
# genai-prices price key -> row field (per-token USD = the per-million price / 1,000,000)
TOKEN_FIELDS = {
    "input_mtok": "input", "output_mtok": "output", "cache_read_mtok": "cache_read", "cache_write_mtok": "cache_write",
    "cache_write_1h_mtok": "cache_write_1h", "output_reasoning_mtok": "reasoning",
}
VARIANTS = {"batch": {"processing": "batch"}, "priority": {"service_tier": "priority"}, "flex": {"service_tier": "flex"}}
EARLIEST = date(2000, 1, 1)  # stands for "before any dated price": genai-prices then uses its first entry
LATEST = date(9999, 1, 1)  # stands for "from now on", for the open-ended row


def per_token(mtok: Decimal) -> str:
    """USD per million tokens -> per token, exactly, as a plain decimal string."""
    return plain(mtok.scaleb(-6))


def plain(value: Decimal) -> str:
    """`value` as a plain decimal string without trailing zeros. A price carried through a binary float
    (0.18000000000000002, 1.6000000000000001e-06) is rounded to 12 significant digits: no list price has more."""
    if value.adjusted() - value.normalize().as_tuple().exponent >= 12:  # type: ignore[operator]
        value = round(value, 11 - value.adjusted())
    text = format(value.normalize(), "f")
    return "0" if Decimal(text) == 0 else text


def tool_fee_name(provider: str, model_id: str) -> str:
    """Gemini 2.x bills grounding with Google Search per grounded prompt; every other web search fee is
    per search performed (Gemini 3 search queries, Anthropic / OpenAI / xAI / OpenRouter searches)."""
    return "grounded_prompt" if provider == "gemini" and model_id.startswith(("gemini-2", "gemini-1.5")) else "web_search"


def _token_prices(price: Any) -> tuple[dict[str, str], list[tuple[int, str, str]]]:
    """(base per-token prices, [(threshold, field, price)]) of a genai-prices ModelPrice."""
    from genai_prices.types import TieredPrices

    base: dict[str, str] = {}
    tiers: list[tuple[int, str, str]] = []
    for key, field in TOKEN_FIELDS.items():
        value = getattr(price, key, None)
        if isinstance(value, TieredPrices):
            base[field] = per_token(value.base)
            tiers += [(tier.start, field, per_token(tier.price)) for tier in value.tiers]
        elif isinstance(value, Decimal):
            base[field] = per_token(value)
    return base, tiers


def price_fields(price: Any, provider: str, model_id: str) -> dict[str, Any] | None:
    """The row fields of one genai-prices ModelPrice; None when it gives no input and output token price."""
    base, tier_list = _token_prices(price)
    if "input" not in base or "output" not in base:
        if model_id.endswith(":free") and not any(v is not None for v in vars(price).values()):
            base = {"input": "0", "output": "0"}  # listed as free: a documented $0, not an unknown price
        else:
            return None
    out: dict[str, Any] = dict(base)
    if tier_list:
        grouped: dict[int, dict[str, Any]] = {}
        for threshold, field, value in tier_list:
            grouped.setdefault(threshold, {"above_input_tokens": threshold})[field] = value
        out["tiers"] = [grouped[t] for t in sorted(grouped)]
    searches = getattr(price, "web_searches_kcount", None)
    if isinstance(searches, Decimal):
        out["tool_fees"] = {tool_fee_name(provider, model_id): plain(searches.scaleb(-3))}
    return out


def _boundaries(model: Any) -> tuple[list[date], list[time]]:
    from genai_prices.types import StartDateConstraint, TimeOfDateConstraint

    constraints = [c.constraint for c in model.prices] if isinstance(model.prices, list) else []
    days = sorted({c.start_date for c in constraints if isinstance(c, StartDateConstraint)})
    times = {time(0, 0)}
    for c in constraints:
        if isinstance(c, TimeOfDateConstraint):
            times |= {_utc(c.start_time), _utc(c.end_time)}
    return days, sorted(times)


def _utc(value: time) -> time:
    if value.tzinfo is None:
        return value
    return datetime.combine(date(1970, 1, 1), value).astimezone(UTC).time().replace(tzinfo=None)


def _minutes(value: time) -> int:
    return value.hour * 60 + value.minute


def _hhmm(value: time) -> str:
    return f"{value.hour:02d}:{value.minute:02d}"


def _day_prices(model: Any, day: date, last: date, times: Sequence[time], provider: str,
                variants: bool) -> dict[str, Any] | None:
    """The fields of the row starting `day` and ending `last`: the price covering most of the day, other
    windows as time_of_day, and the batch / priority / flex prices in force on the row's last day."""
    segments = []  # (start, end, fields) around the clock
    for i, start in enumerate(times):
        end = times[(i + 1) % len(times)]
        fields = price_fields(model.get_prices(datetime.combine(day, start, UTC)), provider, model.id)
        length = (_minutes(end) - _minutes(start)) % 1440 or 1440
        segments.append((start, end, fields, length))
    durations: dict[str, int] = {}
    for _, _, fields, length in segments:
        durations[repr(fields)] = durations.get(repr(fields), 0) + length
    base_repr = max(durations, key=lambda r: (durations[r], -[repr(s[2]) for s in segments].index(r)))
    base = next(s[2] for s in segments if repr(s[2]) == base_repr)
    if base is None:
        return None
    windows: list[dict[str, Any]] = []
    for start, end, fields, _ in segments:
        if repr(fields) == base_repr:
            continue
        if fields is None:
            return None  # part of the day has no price: the row could not be exact
        window = {"start": _hhmm(start), "end": _hhmm(end)}
        window.update({k: v for k, v in fields.items() if isinstance(v, str)})
        if windows and windows[-1]["end"] == window["start"] and _same_prices(windows[-1], window):
            windows[-1]["end"] = window["end"]
        else:
            windows.append(window)
    if len(windows) > 1 and windows[-1]["end"] == windows[0]["start"] and _same_prices(windows[-1], windows[0]):
        windows[0]["start"] = windows.pop()["start"]  # the window wraps midnight
    out = dict(base)
    if windows:
        out["time_of_day"] = windows
    service = {}
    noon = datetime.combine(last, time(12, 0), UTC)
    standard = price_fields(model.get_prices(noon), provider, model.id) or {}
    for name, context in VARIANTS.items() if variants else ():
        varied = price_fields(model.get_prices(noon, context), provider, model.id) or {}
        diff = {k: v for k, v in varied.items() if k in TOKEN_FIELDS.values() and standard.get(k) != v}
        if diff:
            service[name] = diff
    if service:
        out["service_tiers"] = service
    return out


def _same_prices(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k not in ("start", "end")} == {k: v for k, v in b.items() if k not in ("start", "end")}


def genai_rows(model: Any, provider: str, source: str, as_of: str, variants: bool = True) -> list[dict[str, Any]]:
    """The dated rows of a genai-prices ModelInfo (empty when it has no token price). `variants=False` for a
    model found through a fallback provider: genai-prices applies no request-context variants to those."""
    days, times = _boundaries(model)
    starts: list[date | None] = [None, *days]
    rows: list[dict[str, Any]] = []
    for i, start in enumerate(starts):
        following = starts[i + 1] if i + 1 < len(starts) else None
        end = following - timedelta(days=1) if following else None
        fields = _day_prices(model, start or EARLIEST, end or LATEST, times, provider, variants)
        if fields is None:
            continue
        if rows and _same(rows[-1], fields) and start is not None and rows[-1]["to"] == (start - timedelta(days=1)).isoformat():
            rows[-1]["to"] = end.isoformat() if end else None  # the same prices go on: one row
            continue
        rows.append({"from": start.isoformat() if start else None, "to": end.isoformat() if end else None,
                     **fields, "source": source, "as_of": as_of})
    return rows


def _same(row: dict[str, Any], fields: dict[str, Any]) -> bool:
    return {k: v for k, v in row.items() if k not in ("from", "to", "source", "as_of")} == fields


def equals_names(clause: Any) -> list[str]:
    """The exact names a match clause lists (`equals`, directly or under `or`)."""
    from genai_prices.types import ClauseEquals, ClauseOr

    if isinstance(clause, ClauseEquals):
        return [clause.equals]
    if isinstance(clause, ClauseOr):
        return [name for part in clause.or_ for name in equals_names(part)]
    return []


def find_model(providers: Iterable[Any], genai_ids: Sequence[str], name: str, every: list[Any]) -> tuple[Any, Any] | None:
    """(genai provider, ModelInfo) pricing `name`, by genai-prices' own lookup (`Provider.find_model`:
    case-insensitive clauses, first match, compact dates retried dashed, one step of fallback providers)."""
    by_id = {p.id: p for p in providers}
    for genai_id in genai_ids:
        provider = by_id.get(genai_id)
        if provider is None:
            continue
        model = provider.find_model(name, all_providers=every)
        if model is not None:
            return provider, model
    return None
