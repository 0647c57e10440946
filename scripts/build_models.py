"""Build llmclient/data/models.json, the model catalogue shipped in the package: per `<provider>/<model>`
key its context window, output limit, input modalities, capabilities and retirement.

    python scripts/build_models.py            # rewrite models.json
    python scripts/build_models.py --check    # exit 1 if the committed models.json is stale
    python scripts/build_models.py --report   # coverage and where every false flag came from

Keys are the price table's (`llmclient/data/prices.json`), named from litellm's map the same way
(scripts/prices_litellm.py), and the runtime resolves a name to a key by the price table's rules
(aliases, dated snapshots, OpenRouter upstreams): so a dated snapshot whose record equals its undated
name's is left out, and so is a name no source knows a fact about. Prices are not repeated here; the runtime joins the two tables by key.

Sources, in rising precedence (scripts/models_sources.py, scripts/models_overrides.py):
1. litellm's bundled model map, read without importing litellm: `max_input_tokens` is the context
   window, `max_output_tokens` the output limit, `supports_*` the flags, `supported_modalities` an
   explicit list of input modalities. Its `deprecation_date` is the day a model stops serving requests
   (BerriAI/litellm#15976 and #36152 transcribe the providers' shutdown dates into it), so it becomes
   `retires`.
2. genai-prices' `context_window`, where litellm has none (its figures are often rounded: 1,000,000
   for Gemini's 1,048,576, so it never overrides litellm).
3. The overrides file: per provider, which absent litellm flags mean "no" and what holds for all its
   models; per model, cited corrections and the models neither source has.
A field no source gives is null (unknown): the runtime refuses a call only on an explicit false.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import sys
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from models_overrides import OverrideError, check
from models_sources import (
    CAPABILITIES,
    FIELDS,
    LIMITS,
    MODALITIES,
    genai_context_windows,
    litellm_records,
    maintained,
)
from prices_litellm import load

from llmclient.model_names import (
    undated,  # the runtime's own rule for snapshot suffixes
)

ROOT = Path(__file__).resolve().parent.parent
CATALOGUE = ROOT / "llmclient" / "data" / "models.json"
OVERRIDES = ROOT / "llmclient" / "data" / "model_overrides.json"
AS_OF = "2026-12-05"  # the day these source versions were adopted
# Fine-tuned names: litellm lists them for their prices, with the base model's flags only in part
# (ft:gpt-4o-2024-11-20 has no supports_vision, yet fine-tuned gpt-4o takes images).
NO_ABSENCE_RULE = ("ft:",)
ROUTERS = ("openrouter", "huggingface")  # providers serving other providers' models (prices.json aliases.upstreams)


def assemble(model_map: dict[str, Any], genai_providers: list[Any], overrides: dict[str, Any],
             versions: dict[str, str]) -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    """(catalogue, origin of every field: key -> field -> "litellm" | "litellm-absent" | "genai" |
    "provider-rule" | "override") from the three sources, already read."""
    # The runtime matches names case-insensitively, so one record per name whatever its spelling:
    # litellm's first spelling, else the override's, else genai-prices' (`zai/GLM-5.2` there is
    # litellm's `zai/glm-5.2`).
    spelling: dict[str, str] = {}
    lite: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    for key, found in litellm_records(model_map).items():
        lite.setdefault(spelling.setdefault(key.lower(), key), found)
    fixes = {spelling.setdefault(key.lower(), key): fix for key, fix in overrides["models"].items()}
    windows: dict[str, int] = {}
    for key, window in genai_context_windows(genai_providers).items():
        windows.setdefault(spelling.setdefault(key.lower(), key), window)
    records: dict[str, dict[str, Any]] = {}
    origins: dict[str, dict[str, str]] = {}
    for key in sorted(set(lite) | set(windows) | set(fixes)):
        rule = overrides["providers"].get(key.split("/", 1)[0])
        record, origins[key], used = _merge(key, lite.get(key), windows.get(key), rule, fixes.get(key), versions)
        if any(value is not None for value in record.values()):  # a name with no fact known is left out
            records[key] = shaped(record, "; ".join(used), origins[key].get("retires"))
    _check_replacements(records)
    models = {key: record for key, record in records.items() if not _same_as_undated(key, records)}
    catalogue = {
        "version": f"{AS_OF}+litellm.{versions['litellm']}+genai-prices.{versions['genai']}+overrides.{overrides['version']}",
        "sources": {"litellm": f"litellm {versions['litellm']} model_prices_and_context_window_backup.json",
                    "genai-prices": f"genai-prices {versions['genai']} genai_prices/data.py (pydantic/genai-prices)",
                    "overrides": "llmclient/data/model_overrides.json"},
        # What a router changes about every model it serves, over the upstream's own entry (the runtime
        # resolves openrouter/<vendor>/<model> to the vendor's key): applied to calls through it.
        "routers": {name: {"fill": rule["fill"], "source": rule["source"]}
                    for name, rule in overrides["providers"].items() if name in ROUTERS},
        "models": models,
    }
    return catalogue, {key: origins[key] for key in models}


def _merge(key: str, lite: tuple[dict[str, Any], dict[str, Any]] | None, window: int | None,
           rule: dict[str, Any] | None, fix: tuple[dict[str, Any], str] | None,
           versions: dict[str, str]) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """One model's (record, field origins, sources used), sources in rising precedence."""
    provider, name = key.split("/", 1)
    record: dict[str, Any] = {}
    origin: dict[str, str] = {}
    used: list[str] = []

    def take(fields: dict[str, Any], where: str, label: str) -> None:
        if fields:
            record.update(fields)
            origin.update(dict.fromkeys(fields, where))
            used.append(label)

    if lite:
        fields, entry = lite
        take(fields, "litellm", f"litellm {versions['litellm']}")
        if rule and maintained(entry) and not name.startswith(NO_ABSENCE_RULE):
            absent = {field: False for field in rule["absent_means_false"] if field not in record}
            take(absent, "litellm-absent", f"absent litellm flags false by model_overrides.json providers.{provider}")
    if "context_window" not in record and window:
        take({"context_window": window}, "genai", f"genai-prices {versions['genai']} (context_window)")
    if rule:
        filled = {field: value for field, value in rule["fill"].items() if record.get(field) is None}
        take(filled, "provider-rule", f"model_overrides.json providers.{provider}")
    if fix:
        take(fix[0], "override", f"override: {fix[1]}")
    return record, origin, used


def shaped(record: dict[str, Any], source: str, retires_from: str | None = None) -> dict[str, Any]:
    """A flat record in the catalogue's shape and field order, every field present (null = unknown).

    `retires_source` says whose retirement date it is: "provider" (an override citing the provider's
    deprecation page) or "litellm" (its map's `deprecation_date` alone). The runtime refuses calls
    only after a provider's date; after litellm's it warns and sends, since the provider decides."""
    out: dict[str, Any] = {field: record.get(field) for field in LIMITS}
    out["input"] = {field: record.get(field) for field in MODALITIES}
    out.update({field: record.get(field) for field in FIELDS if field not in LIMITS and field not in MODALITIES})
    out["retires_source"] = None if record.get("retires") is None else "provider" if retires_from == "override" else "litellm"
    out["source"] = source
    return out


def _same_as_undated(key: str, records: dict[str, dict[str, Any]]) -> bool:
    """A dated snapshot that says nothing its undated name does not (the runtime falls back to it)."""
    plain = undated(key)
    if plain == key or plain not in records:
        return False
    return _facts(records[key]) == _facts(records[plain])


def _facts(record: dict[str, Any]) -> dict[str, Any]:
    return {field: value for field, value in record.items() if field != "source"}


def _check_replacements(records: dict[str, dict[str, Any]]) -> None:
    for key, record in records.items():
        if record["replacement"] is not None and record["replacement"] not in records:
            raise OverrideError(f"model_overrides.json: models[{key!r}]: replacement {record['replacement']!r} "
                                "is not a key of the catalogue")


def build() -> tuple[dict[str, Any], dict[str, dict[str, str]]]:
    from genai_prices.data import providers

    version, model_map = load()
    versions = {"litellm": version, "genai": importlib.metadata.version("genai-prices")}
    overrides = check(json.loads(OVERRIDES.read_text(encoding="utf-8")))
    return assemble(model_map, list(providers), overrides, versions)


def render(catalogue: dict[str, Any]) -> str:
    """The file's text: one model per line, so a change to a model is a one-line diff."""
    head = {k: v for k, v in catalogue.items() if k != "models"}
    lines = [json.dumps(head, indent=1)[:-2] + ",", ' "models": {']
    rows = [f"  {json.dumps(key)}: {json.dumps(record)}" for key, record in catalogue["models"].items()]
    return "\n".join(lines + [",\n".join(rows), " }", "}"]) + "\n"


def report(catalogue: dict[str, Any], origins: dict[str, dict[str, str]]) -> str:
    models = catalogue["models"]
    lines = [f"{len(models)} models, version {catalogue['version']}", "",
             "provider        models  context  output  all-4-modalities"]
    by_provider: dict[str, list[dict[str, Any]]] = {}
    for key, record in models.items():
        by_provider.setdefault(key.split("/", 1)[0], []).append(record)
    for provider, records in sorted(by_provider.items()):
        full = sum(all(v is not None for v in r["input"].values()) for r in records)
        lines.append(f"{provider:<15} {len(records):>6} {sum(r['context_window'] is not None for r in records):>8} "
                     f"{sum(r['max_output_tokens'] is not None for r in records):>7} {full:>17}")
    falses: Counter[tuple[str, str]] = Counter()
    for key, record in models.items():
        flags = {**record["input"], **{field: record[field] for field in CAPABILITIES}}
        for field, value in flags.items():
            if value is False:
                falses[field, origins[key].get(field, "?")] += 1
    lines += ["", f"false flags: {sum(falses.values())}  (field, origin: count)"]
    lines += [f"  {field:<18} {origin:<15} {count}" for (field, origin), count in sorted(falses.items())]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--check", action="store_true", help="exit 1 if the committed models.json is stale")
    parser.add_argument("--report", action="store_true", help="print coverage and the origin of false flags")
    args = parser.parse_args()
    try:
        catalogue, origins = build()
    except OverrideError as exc:
        print(exc, file=sys.stderr)
        return 2
    text = render(catalogue)
    if args.report:
        print(report(catalogue, origins))
    if args.check:
        stale = not CATALOGUE.is_file() or CATALOGUE.read_text(encoding="utf-8") != text
        print("stale: models.json: run python scripts/build_models.py" if stale else "models.json is current")
        return 1 if stale else 0
    if not args.report:
        CATALOGUE.write_text(text, encoding="utf-8")
        print(f"wrote {CATALOGUE} ({len(catalogue['models'])} models, {len(text) // 1024} KB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
