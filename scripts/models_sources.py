"""Model records from the two build-time sources of the catalogue: litellm's bundled model map (limits,
`supports_*` flags, `deprecation_date`) and pydantic's genai-prices (`context_window` only; it has no
output limit, no modalities, and its `deprecated` is a flag without a date).

A record is flat: `context_window`, `max_output_tokens`, the input modalities `image`, `pdf`, `audio`,
`video`, the capabilities `tools`, `parallel_tools`, `structured_output`, `reasoning`, `prompt_caching`,
and `deprecated`, `retires`, `replacement`; a field a source does not give is absent (unknown), never
False. Whether litellm's silence means "no" is decided per provider by the overrides file, not here:
`maintained(entry)` only says whether an entry carries enough flags for that question to make sense.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prices_genai import GENAI_PROVIDERS, equals_names
from prices_litellm import PROVIDERS

MODALITIES = ("image", "pdf", "audio", "video")
CAPABILITIES = ("tools", "parallel_tools", "structured_output", "reasoning", "prompt_caching")
LIMITS = ("context_window", "max_output_tokens")
LIFECYCLE = ("deprecated", "retires", "replacement")
FIELDS = LIMITS + MODALITIES + CAPABILITIES + LIFECYCLE
# litellm flag -> record field
FLAGS = {
    "supports_vision": "image", "supports_pdf_input": "pdf", "supports_audio_input": "audio",
    "supports_video_input": "video", "supports_function_calling": "tools",
    "supports_parallel_function_calling": "parallel_tools", "supports_response_schema": "structured_output",
    "supports_reasoning": "reasoning", "supports_prompt_caching": "prompt_caching",
}
# What an entry must carry before its missing flags can be read as "no": a context window and at least one
# of the flags litellm sets on every model it describes fully. `gpt-5.5-cyber` (only supports_reasoning,
# no limits) is a placeholder whose silence says nothing.
CORE_FLAGS = ("supports_function_calling", "supports_tool_choice", "supports_vision", "supports_response_schema")
# OpenRouter calls resolve to the upstream vendor's key at runtime (prices.json aliases.upstreams): an
# openrouter key of its own would shadow the upstream's fuller record, so genai-prices' OpenRouter
# listing is not read. genai-prices' Google provider also lists Vertex AI's Claude models, which the
# Gemini API does not serve.
SKIPPED_GENAI = ("openrouter",)
NOT_SERVED = {"gemini": ("claude",)}


def litellm_key(name: str, entry: dict[str, Any]) -> str | None:
    """Our `<provider>/<model>` key of one litellm map entry, as scripts/prices_litellm.py::from_litellm
    names it (without its requirement of a price): None for a provider or mode llmclient does not serve."""
    provider = PROVIDERS.get(str(entry.get("litellm_provider")))
    if provider is None or entry.get("mode") not in ("chat", "responses", None):
        return None
    return f"{provider}/{name.removeprefix(entry['litellm_provider'] + '/')}"


def _count(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else None


def from_litellm(entry: dict[str, Any]) -> dict[str, Any]:
    """The record fields one litellm entry states. `max_tokens` is not read: litellm calls it legacy and
    it holds the output limit for some entries and the context window for others."""
    record: dict[str, Any] = {}
    if _count(entry.get("max_input_tokens")):
        record["context_window"] = entry["max_input_tokens"]
    if _count(entry.get("max_output_tokens")):
        record["max_output_tokens"] = entry["max_output_tokens"]
    for flag, field in FLAGS.items():
        if isinstance(entry.get(flag), bool):
            record[field] = entry[flag]
    if entry.get("supports_tool_choice") is True and "tools" not in record:
        record["tools"] = True  # a model that takes tool_choice takes tools (gpt-3.5-turbo-16k)
    modalities = entry.get("supported_modalities")
    if isinstance(modalities, list) and modalities:  # an explicit list: what is not in it is not accepted
        for field in ("image", "audio", "video"):
            record.setdefault(field, field in modalities)
    retires = entry.get("deprecation_date")
    if isinstance(retires, str) and len(retires) == 10:
        record["retires"] = retires  # the day the model stops serving requests (see build_models.py)
    return record


def maintained(entry: dict[str, Any]) -> bool:
    """Whether litellm describes this entry fully enough that a flag it leaves out means "no"."""
    return bool(_count(entry.get("max_input_tokens"))) and any(flag in entry for flag in CORE_FLAGS)


def litellm_records(model_map: dict[str, Any]) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Our key -> (record, litellm entry). Where the map lists a model twice (a bare and a
    provider-prefixed name), the prefixed entry wins: it is the one litellm routes that provider's
    calls through."""
    out: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    prefixed: set[str] = set()
    for name, entry in sorted(model_map.items()):
        if not isinstance(entry, dict) or name == "sample_spec":
            continue
        key = litellm_key(name, entry)
        if key is None:
            continue
        is_prefixed = name.startswith(f"{entry['litellm_provider']}/")
        if key in out and (key in prefixed or not is_prefixed):
            continue
        out[key] = from_litellm(entry), entry
        if is_prefixed:
            prefixed.add(key)
    return out


def genai_context_windows(providers: Sequence[Any]) -> dict[str, int]:
    """Our key -> genai-prices' context window, for every name a genai-prices model lists exactly (its `equals`
    clauses; its `id` is a label, not always a name the API takes) under a provider llmclient serves; a provider's own listing before the Hugging
    Face router's listing of it. Names matched only by pattern are not read: a pattern also matches
    variants whose window differs."""
    out: dict[str, int] = {}
    by_id = {p.id: p for p in providers}
    for ours, ids in GENAI_PROVIDERS.items():
        if ours in SKIPPED_GENAI:
            continue
        for provider in (by_id[i] for i in ids if i in by_id):
            for model in provider.models:
                window = _count(model.context_window)
                if window is None or any(word in model.id for word in NOT_SERVED.get(ours, ())):
                    continue
                for name in equals_names(model.match):
                    out.setdefault(f"{ours}/{name}", window)
    return out
