"""Which key of a model table names `provider/model`: exact, through provider and model aliases,
dated snapshots (either way), and routers serving an upstream's model. The price table and the model
catalogue hold the same key space and resolve a name with the same rules, so a model priced is a
model catalogued under the same key.
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from llmclient.errors import ConfigurationError

_DATE_SUFFIX = re.compile(r"-(\d{4}-\d{2}-\d{2}|20\d{6})$")  # -2024-07-18, -20250929: dated snapshots


def user_table(variable: str, example: str, check: Callable[[str, Any], object]) -> dict[str, Any]:
    """The `models` of the JSON file the environment variable `variable` names (empty when it is
    unset), each entry passed to `check` (which raises ConfigurationError for a malformed one), so a
    bad file fails when it is loaded, not at the first call to one of its models. Any problem is a
    ConfigurationError naming the variable, the file and the shape expected (`example`)."""
    path = os.environ.get(variable)
    if not path:
        return {}
    try:
        models = json.loads(Path(path).read_text(encoding="utf-8"))["models"]
        for key, entry in models.items():
            check(key, entry)
        return dict(models)
    except ConfigurationError as exc:
        raise ConfigurationError(f"{variable}={path}: {exc.message}") from exc
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigurationError(f"{variable}={path}: expected a JSON file {example}: {exc}") from exc


def undated(name: str) -> str:
    """A model name without its snapshot date: "gpt-4o-mini-2024-07-18" -> "gpt-4o-mini"."""
    return _DATE_SUFFIX.sub("", name)


@dataclass
class Names:
    """The keys of one table, indexed for `resolve` (built once per table load)."""

    lowered: dict[str, str]  # lower-case key -> key
    snapshots: dict[str, list[str]]  # undated lower-case key -> its dated snapshot keys
    provider_aliases: dict[str, str]
    model_aliases: dict[str, str]  # "<provider>/<alias>" (lower case) -> the key it names
    upstreams: dict[str, dict[str, str]]  # router -> its upstream segment -> the provider it bills as
    resolved: dict[tuple[str, str, str | None], str | None] = field(default_factory=dict)  # memo

    @classmethod
    def of(cls, keys: Iterable[str], aliases: Mapping[str, Any]) -> Names:
        """`aliases` is the price table's `aliases` object (providers, models, upstreams)."""
        keys = list(keys)
        snapshots: dict[str, list[str]] = {}
        for key in keys:
            plain = undated(key)
            if plain != key:
                snapshots.setdefault(plain.lower(), []).append(key)
        return cls({key.lower(): key for key in keys}, snapshots, dict(aliases.get("providers", {})),
                   {k.lower(): v for k, v in aliases.get("models", {}).items()}, dict(aliases.get("upstreams", {})))

    def resolve(self, provider: str, model: str, base_url: str | None = None) -> str | None:
        memo_key = (provider, model, base_url)
        if memo_key not in self.resolved:
            self.resolved[memo_key] = self._resolve(provider, model, base_url)
        return self.resolved[memo_key]

    def _resolve(self, provider: str, model: str, base_url: str | None) -> str | None:
        provider = self.provider_aliases.get(provider, provider)
        model = model.removeprefix("models/")
        candidates = [f"{provider}/{model}"]
        if provider in self.upstreams:
            candidates += _upstream_keys(provider, model, base_url, self.upstreams[provider])
        for candidate in candidates:
            found = self._lookup(candidate)
            if found:
                return found
        return None

    def _lookup(self, candidate: str) -> str | None:
        lowered = candidate.lower().removesuffix(":thinking")  # OpenRouter's thinking variant: the same model
        if lowered in self.model_aliases:
            return self.model_aliases[lowered]
        for option in (lowered, _DATE_SUFFIX.sub("", lowered)):
            if option in self.lowered:
                return self.lowered[option]
        dated = self.snapshots.get(lowered)
        return max(dated) if dated else None  # an undated name is its latest snapshot


def _upstream_keys(provider: str, model: str, base_url: str | None, upstreams: dict[str, str]) -> list[str]:
    if provider == "openrouter" and "/" in model:  # OpenRouter serves (and bills as) the vendor's model
        vendor, name = model.split("/", 1)
        upstream = upstreams.get(vendor)
        if upstream == "anthropic":  # claude-3.7-sonnet -> claude-3-7-sonnet; claude-4.5-sonnet and
            name = re.sub(r"^claude-(\d+)\.(\d+)-(sonnet|opus|haiku)", lambda m: (  # claude-sonnet-4.5 -> claude-sonnet-4-5
                f"claude-{m[1]}-{m[2]}-{m[3]}" if int(m[1]) < 4 else f"claude-{m[3]}-{m[1]}-{m[2]}"), name)
            name = re.sub(r"^claude-(sonnet|opus|haiku)-(\d+)\.(\d+)", r"claude-\1-\2-\3", name)
        return [f"{upstream}/{name}"] if upstream else []
    if provider == "huggingface" and base_url:  # router.huggingface.co/<upstream>/...: that provider's model
        segment = base_url.split("://", 1)[-1].split("/")[1:2]
        upstream = upstreams.get(segment[0]) if segment else None
        return [f"{upstream}/{model}"] if upstream else []
    return []
