"""Raw provider usage -> the normalised `Usage`: the one place that knows each wire format's numbers.

| wire      | input_tokens (all billed prompt)              | output_tokens (incl. reasoning)      |
|-----------|-----------------------------------------------|--------------------------------------|
| openai    | prompt_tokens (already includes cached)       | completion_tokens                    |
| anthropic | input_tokens + cache_read + cache_creation    | output_tokens                        |
| gemini    | promptTokenCount + toolUsePromptTokenCount    | candidatesTokenCount + thoughts      |
| cohere    | billed_units.input_tokens                     | billed_units.output_tokens           |

Cache reads: OpenAI `prompt_tokens_details.cached_tokens`, else DeepSeek `prompt_cache_hit_tokens`,
Mistral `num_cached_tokens`, Hugging Face `cached_tokens`; Anthropic `cache_read_input_tokens`;
Gemini `cachedContentTokenCount`; Cohere `cached_tokens`. Cache writes: OpenAI-compatible
`prompt_tokens_details.cache_write_tokens` (OpenRouter); Anthropic `cache_creation_input_tokens`.
Reasoning: `completion_tokens_details.reasoning_tokens`; Anthropic
`output_tokens_details.thinking_tokens` (absent means 0: never estimated from thinking text);
Gemini `thoughtsTokenCount`. Anthropic responses with `usage.iterations` (compaction, advisor)
are billed for every iteration, so the totals are summed over all of them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from llmclient.types import Usage, UsageIteration


def normalise(wire: str, raw: dict[str, Any] | None) -> Usage | None:
    """None when the provider reported no usage at all."""
    if not raw:
        return None
    return _BY_WIRE[wire](raw)


def _int(container: Any, *path: str) -> int | None:
    """The integer at `path`, or None when any step is missing or null."""
    value = container
    for key in path:
        if not isinstance(value, dict):
            return None
        value = value.get(key)
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value if isinstance(value, int) else None


def _first(*values: int | None) -> int:
    return next((value for value in values if value is not None), 0)


def _openai(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_first(_int(raw, "prompt_tokens")),
        output_tokens=_first(_int(raw, "completion_tokens")),
        cache_read_tokens=_first(
            _int(raw, "prompt_tokens_details", "cached_tokens"),
            _int(raw, "prompt_cache_hit_tokens"),
            _int(raw, "num_cached_tokens"),
            _int(raw, "cached_tokens"),
        ),
        cache_write_tokens=_first(_int(raw, "prompt_tokens_details", "cache_write_tokens")),
        reasoning_tokens=_first(_int(raw, "completion_tokens_details", "reasoning_tokens")),
    )


def _anthropic_prompt(raw: dict[str, Any]) -> tuple[int, int, int]:
    """(all prompt tokens, cache reads, cache writes) of one Anthropic usage object."""
    read = _first(_int(raw, "cache_read_input_tokens"))
    write = _first(_int(raw, "cache_creation_input_tokens"))
    return _first(_int(raw, "input_tokens")) + read + write, read, write


def _anthropic(raw: dict[str, Any]) -> Usage:
    reasoning = _first(_int(raw, "output_tokens_details", "thinking_tokens"))
    iterations = raw.get("iterations")
    if not isinstance(iterations, list) or not iterations:
        prompt, read, write = _anthropic_prompt(raw)
        return Usage(
            input_tokens=prompt,
            output_tokens=_first(_int(raw, "output_tokens")),
            cache_read_tokens=read,
            cache_write_tokens=write,
            reasoning_tokens=reasoning,
        )
    parts = []
    for item in iterations:
        prompt, read, write = _anthropic_prompt(item)
        parts.append(
            UsageIteration(
                kind=str(item.get("type") or "message"),
                model=item.get("model"),
                input_tokens=prompt,
                output_tokens=_first(_int(item, "output_tokens")),
                cache_read_tokens=read,
                cache_write_tokens=write,
            )
        )
    return Usage(
        input_tokens=sum(p.input_tokens for p in parts),
        output_tokens=sum(p.output_tokens for p in parts),
        cache_read_tokens=sum(p.cache_read_tokens for p in parts),
        cache_write_tokens=sum(p.cache_write_tokens for p in parts),
        reasoning_tokens=reasoning,
        iterations=tuple(parts),
    )


def _gemini(raw: dict[str, Any]) -> Usage:
    thoughts = _first(_int(raw, "thoughtsTokenCount"))
    return Usage(
        input_tokens=_first(_int(raw, "promptTokenCount")) + _first(_int(raw, "toolUsePromptTokenCount")),
        output_tokens=_first(_int(raw, "candidatesTokenCount")) + thoughts,
        cache_read_tokens=_first(_int(raw, "cachedContentTokenCount")),
        reasoning_tokens=thoughts,
    )


def _cohere(raw: dict[str, Any]) -> Usage:
    return Usage(
        input_tokens=_first(_int(raw, "billed_units", "input_tokens")),
        output_tokens=_first(_int(raw, "billed_units", "output_tokens")),
        cache_read_tokens=_first(_int(raw, "cached_tokens")),
    )


_BY_WIRE: dict[str, Callable[[dict[str, Any]], Usage]] = {
    "openai": _openai,
    "anthropic": _anthropic,
    "gemini": _gemini,
    "cohere": _cohere,
    "litellm": _openai,  # litellm reports usage in the OpenAI format
}
