"""Build llmclient/data/prices.json: the dated price table shipped in the package.

    python scripts/build_prices.py            # rewrite the table
    python scripts/build_prices.py --check    # exit 1 if the committed table is stale

Input 1: the price map bundled with the pinned litellm (model_prices_and_context_window_backup.json),
for the providers llmclient prices. Input 2: llmclient/data/price_overrides.json, written by hand,
for what litellm lacks or gets wrong — retired models priced as they were offered, dated price
changes — each entry with its source URL and as-of date. Overrides replace litellm's entry for
the same model.

Every entry: per-token USD prices as decimal strings (input, output, cache_read, cache_write,
cache_write_1h, reasoning), `tiers` (prices above an input-size threshold), `service_tiers`
(batch / priority / flex), an effective date range (`from`, `to`), `source` and `as_of`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import sys
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "llmclient" / "data" / "prices.json"
OVERRIDES = ROOT / "llmclient" / "data" / "price_overrides.json"
AS_OF = "2026-11-24"  # the day this litellm snapshot was adopted and checked

# litellm provider -> llmclient provider name. Routers' upstreams (together_ai, novita, nebius)
# are here because Hugging Face's router bills at the upstream provider's price.
PROVIDERS = {
    "openai": "openai", "anthropic": "anthropic", "gemini": "gemini", "groq": "groq",
    "openrouter": "openrouter", "deepseek": "deepseek", "mistral": "mistral", "cerebras": "cerebras",
    "cohere_chat": "cohere", "cohere": "cohere", "zai": "zai", "xai": "xai", "together_ai": "together_ai",
    "novita": "novita", "nebius": "nebius", "snowflake": "snowflake", "crusoe": "crusoe", "azure": "azure",
}
# Where litellm's entry has no `source`, the provider's pricing page.
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


def _price(value: Any) -> str | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    return format(Decimal(repr(value)), "f")  # repr: the shortest exact decimal form of the float


def _prices(entry: dict[str, Any], suffix: str = "") -> dict[str, str]:
    out = {}
    for name, field in BASE_FIELDS.items():
        value = _price(entry.get(field + suffix))
        if value is not None:
            out[name] = value
    return out


def from_litellm(key: str, entry: dict[str, Any], version: str) -> tuple[str, dict[str, Any]] | None:
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
    row["source"] = f"{entry.get('source') or PRICING_PAGES[provider]} (via litellm {version} price map)"
    row["as_of"] = AS_OF
    return f"{provider}/{model}", row


def build() -> dict[str, Any]:
    spec = importlib.util.find_spec("litellm")
    assert spec and spec.submodule_search_locations, "litellm is not installed"
    version = importlib.metadata.version("litellm")
    litellm_map = json.loads((Path(next(iter(spec.submodule_search_locations))) / "model_prices_and_context_window_backup.json").read_text())
    models: dict[str, list[dict[str, Any]]] = {}
    for key, entry in sorted(litellm_map.items()):
        if isinstance(entry, dict):
            built = from_litellm(key, entry, version)
            if built is not None and built[0] not in models:
                models[built[0]] = [built[1]]
    overrides = json.loads(OVERRIDES.read_text())
    for name, rows in overrides["models"].items():
        models[name] = rows  # a hand-checked entry replaces litellm's
    return {
        "version": f"{AS_OF}+litellm.{version}+overrides.{overrides['version']}",
        "sources": {"litellm": f"litellm {version} model_prices_and_context_window_backup.json",
                    "overrides": "llmclient/data/price_overrides.json"},
        "aliases": overrides.get("aliases", {}),
        "models": dict(sorted(models.items())),
    }


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    text = json.dumps(build(), indent=1, sort_keys=False) + "\n"
    if args.check:
        stale = not TABLE.is_file() or TABLE.read_text() != text
        print("prices.json is stale: run python scripts/build_prices.py" if stale else "prices.json is current")
        return 1 if stale else 0
    TABLE.parent.mkdir(parents=True, exist_ok=True)
    TABLE.write_text(text)
    print(f"wrote {TABLE} ({len(text) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
