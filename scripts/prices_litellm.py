"""Rows of the price table from the price map bundled with the pinned litellm (a build-time source).

One undated row per model: per-token USD prices (input, output, cache_read, cache_write, cache_write_1h,
reasoning), `tiers` (prices above an input-size threshold), `service_tiers` (batch / priority / flex) and
`tool_fees` (a web search fee given the same for every search context size).
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import json
from decimal import Decimal
from pathlib import Path
from typing import Any

from prices_genai import plain, tool_fee_name

# litellm provider -> llmclient provider name. Routers' upstreams (together_ai, novita, nebius)
# are here because Hugging Face's router bills at the upstream provider's price.
PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "groq": "groq",
    "openrouter": "openrouter", "deepseek": "deepseek", "mistral": "mistral", "cerebras": "cerebras",
    "cohere_chat": "cohere", "cohere": "cohere", "zai": "zai", "xai": "xai", "together_ai": "together_ai",
    "novita": "novita", "nebius": "nebius", "snowflake": "snowflake", "crusoe": "crusoe", "azure": "azure",
}
# Where an entry has no `source`, the provider's pricing page.
PRICING_PAGES = {
    "openai": "https://platform.openai.com/docs/pricing",
    "anthropic": "https://docs.anthropic.com/en/docs/about-claude/pricing",
    "gemini": "https://ai.google.dev/gemini-api/docs/pricing",
    "groq": "https://groq.com/pricing",
    "openrouter": "https://openrouter.ai/models",
    "deepseek": "https://api-docs.deepseek.com/quick_start/pricing",
    "mistral": "https://mistral.ai/pricing",
    "cerebras": "https://www.cerebras.ai/pricing",
    "cohere": "https://cohere.com/pricing",
    "zai": "https://docs.z.ai/guides/overview/pricing",
    "xai": "https://docs.x.ai/docs/models",
    "together_ai": "https://www.together.ai/pricing",
    "novita": "https://novita.ai/pricing",
    "nebius": "https://nebius.com/prices-ai-studio",
    "snowflake": "https://www.snowflake.com/legal-files/CreditConsumptionTable.pdf",
    "crusoe": "https://crusoe.ai/cloud/pricing",
    "azure": "https://azure.microsoft.com/pricing/details/cognitive-services/openai-service/",
}
BASE_FIELDS = {
    "input": "input_cost_per_token", "output": "output_cost_per_token", "cache_read": "cache_read_input_token_cost",
    "cache_write": "cache_creation_input_token_cost", "cache_write_1h": "cache_creation_input_token_cost_above_1hr",
    "reasoning": "output_cost_per_reasoning_token",
}
TIER_THRESHOLDS = (100_000, 128_000, 200_000, 272_000)
SERVICE_TIERS = ("batches", "priority", "flex")


def load() -> tuple[str, dict[str, Any]]:
    """(version, price map) of the installed litellm, read without importing it."""
    spec = importlib.util.find_spec("litellm")
    assert spec and spec.submodule_search_locations, "litellm is not installed"
    path = Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json"
    return importlib.metadata.version("litellm"), json.loads(path.read_text())


def _price(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return plain(Decimal(repr(value)))  # repr: the shortest decimal form of the float


def _prices(entry: dict[str, Any], suffix: str = "") -> dict[str, str]:
    out = {}
    for name, field in BASE_FIELDS.items():
        value = _price(entry.get(field + suffix))
        if value is not None:
            out[name] = value
    return out


def _search_fee(entry: dict[str, Any]) -> str | None:
    """The web search fee per use, when litellm gives one figure for every search context size."""
    fees = entry.get("search_context_cost_per_query")
    if not isinstance(fees, dict) or not fees:
        return None
    values = {_price(v) for v in fees.values()}
    if len(values) != 1 or None in values:
        return None
    value = values.pop()
    return value if value and Decimal(value) > 0 else None


def from_litellm(key: str, entry: dict[str, Any], version: str, as_of: str) -> tuple[str, dict[str, Any]] | None:
    """(llmclient key, row) of one litellm map entry; None for a provider or mode llmclient does not price."""
    provider = PROVIDERS.get(str(entry.get("litellm_provider")))
    if provider is None or entry.get("mode") not in ("chat", "responses", None):
        return None
    base = _prices(entry)
    if "input" not in base or "output" not in base:
        return None
    prefix = f"{entry['litellm_provider']}/"
    model = key[len(prefix):] if key.startswith(prefix) else key
    row: dict[str, Any] = {"from": None, "to": None, **base}
    tiers = []
    for threshold in TIER_THRESHOLDS:
        tier = _prices(entry, f"_above_{threshold // 1000}k_tokens")
        if tier:
            tiers.append({"above_input_tokens": threshold, **tier})
    if tiers:
        row["tiers"] = tiers
    service = {}
    for name in SERVICE_TIERS:
        prices = _prices(entry, f"_{name}")
        if prices:
            service["batch" if name == "batches" else name] = prices
    if service:
        row["service_tiers"] = service
    fee = _search_fee(entry)
    if fee is not None:
        row["tool_fees"] = {tool_fee_name(provider, model): fee}
    row["source"] = f"{entry.get('source') or PRICING_PAGES[provider]} (via litellm {version} price map)"
    row["as_of"] = as_of
    return f"{provider}/{model}", row


def litellm_rows(price_map: dict[str, Any], version: str, as_of: str) -> dict[str, dict[str, Any]]:
    """llmclient key -> litellm's row, first entry wins (the map lists a bare and a prefixed name)."""
    rows: dict[str, dict[str, Any]] = {}
    for key, entry in sorted(price_map.items()):
        if isinstance(entry, dict):
            built = from_litellm(key, entry, version, as_of)
            if built is not None and built[0] not in rows:
                rows[built[0]] = built[1]
    return rows
