"""Build llmclient/data/prices.json, the dated price table shipped in the package, and
llmclient/data/price_conflicts.md, every disagreement between its sources and how it was decided.

    python scripts/build_prices.py            # rewrite both files, print the conflicts
    python scripts/build_prices.py --check    # exit 1 if either committed file is stale

Source 1: the price map bundled with the pinned litellm (scripts/prices_litellm.py). Source 2: pydantic's
genai-prices, pinned in the dev extra, with dated price history, off-peak windows, batch prices and web
search fees (scripts/prices_genai.py). Both are read at build time only; llmclient never imports them.
Each model key llmclient prices (`<provider>/<model>`: litellm's names, the overrides' keys, and the
names genai-prices lists for the providers llmclient prices) is resolved against genai-prices' match
clauses by genai-prices' own lookup, and the two are merged (scripts/prices_merge.py). Source 3:
llmclient/data/price_overrides.json, written by hand, each entry with the provider's page and as-of
date: it replaces the merged rows of its model, and so decides that model's conflicts; it also
prices what neither source has right (retired models as they were offered, moved aliases).

Every row: per-token USD prices as decimal strings (input, output, cache_read, cache_write,
cache_write_1h, reasoning), `tiers` (prices above an input-size threshold), `service_tiers` (batch /
priority / flex), `time_of_day` (UTC windows with other prices), `tool_fees` (USD per use of a built-in
tool: `web_search`, `grounded_prompt`), an effective date range (`from`, `to`, inclusive), `source`, `as_of`.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from prices_genai import GENAI_PROVIDERS, equals_names, find_model, genai_rows  # noqa: E402
from prices_litellm import litellm_rows, load  # noqa: E402
from prices_merge import Conflict, merge  # noqa: E402
from prices_report import ORDER, conflicts_markdown, print_conflicts  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
TABLE = ROOT / "llmclient" / "data" / "prices.json"
CONFLICTS = ROOT / "llmclient" / "data" / "price_conflicts.md"
OVERRIDES = ROOT / "llmclient" / "data" / "price_overrides.json"
LITELLM_AS_OF = "2026-11-24"  # the day the litellm snapshot was adopted and checked: conflicts compare on it
GENAI_AS_OF = "2026-12-05"  # the day the genai-prices release was adopted
# Names genai-prices lists that get no key of their own: OpenRouter calls are priced at the upstream
# vendor's key (aliases.upstreams in price_overrides.json); genai-prices' Google provider covers Vertex AI
# too, whose Claude models the Gemini API does not serve.
UPSTREAM_PRICED = ("openrouter",)
NOT_SERVED = {"gemini": ("claude",)}


def _genai_source(provider: Any, model: Any, version: str) -> str:
    urls = [w.strip("().,;") for w in (model.price_comments or "").split() if w.startswith("http")]
    url = urls[0] if urls else (provider.pricing_urls or ["https://github.com/pydantic/genai-prices"])[0]
    return f"{url} (via genai-prices {version})"


def genai_models(providers: list[Any], keys: list[str], version: str) -> dict[str, tuple[list[dict[str, Any]], bool]]:
    """llmclient key -> (genai-prices' rows, whether they are its own listing of that very name), for the
    given keys and for every name genai-prices lists exactly (its `equals` clauses) under a provider
    llmclient prices. Not its own listing of the name: a match by pattern (`starts_with`, `contains`,
    `regex`: `azure/eu/o4-mini` found by "contains o4-mini", which knows no data-zone price), a model
    reached through a fallback provider (Azure -> OpenAI's list), or a Hugging Face router listing
    standing in for the upstream provider."""
    out: dict[str, tuple[list[dict[str, Any]], bool]] = {}
    seen = {key.lower() for key in keys}
    wanted = list(keys)
    for ours, ids in GENAI_PROVIDERS.items():
        if ours in UPSTREAM_PRICED:
            continue
        for provider in (p for p in providers if p.id in ids):
            for model in provider.models:
                if any(word in model.id for word in NOT_SERVED.get(ours, ())):
                    continue
                for name in equals_names(model.match):
                    if f"{ours}/{name}".lower() not in seen:
                        seen.add(f"{ours}/{name}".lower())
                        wanted.append(f"{ours}/{name}")
    for key in wanted:
        ours, name = key.split("/", 1)
        found = find_model(providers, GENAI_PROVIDERS.get(ours, ()), name, providers)
        if found is None:
            continue
        provider, model = found
        own = any(model is m for m in provider.models)  # not reached through a fallback provider
        rows = genai_rows(model, ours, _genai_source(provider, model, version), GENAI_AS_OF, variants=own)
        exact = name.lower() in {n.lower() for n in (model.id, *equals_names(model.match))}
        if rows:
            out[key] = rows, own and exact and not provider.id.startswith("huggingface_")
    return out


GROUNDING = ("; grounding with Google Search: $35 per 1,000 grounded prompts beyond the free daily allowance (1,500 "
             "grounded prompts per day on the paid tier), https://ai.google.dev/gemini-api/docs/pricing")


# Built-in tools a provider documents as free (only their tokens are billed): every row of that
# provider says so, so a call that used one is still priced (a tool with no known fee is not).
FREE_TOOLS = {"anthropic": {"web_fetch": "0"}}  # docs.anthropic.com/en/docs/agents-and-tools/tool-use/web-fetch-tool:
# "Web fetch usage has no additional charges beyond standard token costs"


def canonical(key: str, row: dict[str, Any]) -> dict[str, Any]:
    """The row's fields in the table's order; a per-grounded-prompt fee names its free daily allowance."""
    if "grounded_prompt" in (row.get("tool_fees") or {}) and "grounded prompts" not in row["source"]:
        row = {**row, "source": row["source"] + GROUNDING}
    free = FREE_TOOLS.get(key.split("/", 1)[0])
    if free:
        row = {**row, "tool_fees": {**free, **(row.get("tool_fees") or {})}}
    return {name: row[name] for name in ORDER if name in row}


def build() -> tuple[dict[str, Any], list[Conflict]]:
    from genai_prices.data import providers

    versions = {"litellm": load()[0], "genai": importlib.metadata.version("genai-prices")}
    lite = litellm_rows(load()[1], versions["litellm"], LITELLM_AS_OF)
    overrides = json.loads(OVERRIDES.read_text())
    keys = sorted(set(lite) | set(overrides["models"]))
    genai = genai_models(providers, keys, versions["genai"])
    models: dict[str, list[dict[str, Any]]] = {}
    conflicts: list[Conflict] = []
    for key in sorted(set(keys) | set(genai)):
        genai_rows_, own = genai.get(key, (None, False))
        rows, found = merge(key, lite.get(key), genai_rows_, own, overrides["models"].get(key), LITELLM_AS_OF, versions)
        conflicts += found
        if rows:
            models[key] = [canonical(key, r) for r in rows]
    table = {
        "version": f"{GENAI_AS_OF}+litellm.{versions['litellm']}+genai-prices.{versions['genai']}+overrides.{overrides['version']}",
        "sources": {"litellm": f"litellm {versions['litellm']} model_prices_and_context_window_backup.json",
                    "genai-prices": f"genai-prices {versions['genai']} genai_prices/data.py (pydantic/genai-prices)",
                    "overrides": "llmclient/data/price_overrides.json",
                    "conflicts": "llmclient/data/price_conflicts.md"},
        "aliases": overrides.get("aliases", {}),
        "models": models,
    }
    return table, conflicts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args()
    table, conflicts = build()
    outputs = {TABLE: json.dumps(table, indent=1) + "\n", CONFLICTS: conflicts_markdown(table, conflicts)}
    if args.check:
        stale = [path.name for path, text in outputs.items() if not path.is_file() or path.read_text() != text]
        print(f"stale: {', '.join(stale)}: run python scripts/build_prices.py" if stale else "prices.json is current")
        return 1 if stale else 0
    print_conflicts(conflicts)
    for path, text in outputs.items():
        path.write_text(text)
        print(f"wrote {path} ({len(text) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
