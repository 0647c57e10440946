"""Which model of each provider the conformance suite runs, and providers added by configuration.

Built-in providers use the models below. Any other provider is one table in
`conformance/providers.toml` (its `ProviderSpec` fields plus the `model` to run); it is
registered with `register_provider` and then runs the same scenarios from its own cassettes.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from pydantic import ValidationError

from llmclient import REGISTRY, ConfigurationError, ProviderSpec, register_provider, unregister_provider

ROOT = Path(__file__).resolve().parent.parent
PROVIDERS_FILE = Path(__file__).with_name("providers.toml")

BUILTIN_MODELS = {
    "openai": "gpt-4o-mini",
    "anthropic": "claude-sonnet-4-5",
    "gemini": "gemini-2.5-flash",
    "groq": "llama-3.3-70b-versatile",
    "openrouter": "openai/gpt-4o-mini",
    "deepseek": "deepseek-chat",
    "mistral": "mistral-small-latest",
    # The long-tail route: litellm builds, sends and parses the same OpenAI calls (its own column).
    "litellm": "openai/gpt-4o-mini",
}


# Where the conformance model lacks a capability its provider offers, the model that has it.
CAPABILITY_MODELS = {
    ("groq", "vision"): "meta-llama/llama-4-scout-17b-16e-instruct",
    ("openai", "reasoning"): "o4-mini",
    ("openrouter", "reasoning"): "openai/o4-mini",
    ("litellm", "reasoning"): "openai/o4-mini",
    ("groq", "reasoning"): "openai/gpt-oss-20b",
    ("groq", "prompt_cache"): "openai/gpt-oss-20b",
    ("groq", "structured_output"): "openai/gpt-oss-20b",  # Groq's json_schema mode is not on llama-3.3  # Groq caches prompts on gpt-oss, not on llama-3.3
    ("deepseek", "reasoning"): "deepseek-reasoner",
    ("gemini", "tiered_pricing"): "gemini-2.5-pro",
}


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    added: ProviderSpec | None = None  # the spec of a provider the configuration file adds

    def model_for(self, needs: frozenset[str], named: str | None = None) -> str:
        """The model a scenario runs: the one it names (behind the target's route prefix, e.g.
        litellm's "openai/"), else the one with the capabilities it needs, else the target's."""
        if named is not None:
            return self.model.rpartition("/")[0] + "/" + named if self.provider == "litellm" else named
        return next((CAPABILITY_MODELS[(self.provider, c)] for c in sorted(needs) if (self.provider, c) in CAPABILITY_MODELS),
                    self.model)

    @property
    def spec(self) -> ProviderSpec:
        return self.added or REGISTRY[self.provider]


@contextmanager
def registered(chosen: Iterable[Target]) -> Iterator[None]:
    """The added providers among `chosen` registered for the block (and only for it)."""
    new = [t.added for t in chosen if t.added is not None and t.provider not in REGISTRY]
    for spec in new:
        register_provider(spec)
    try:
        yield
    finally:
        for spec in new:
            unregister_provider(spec.name)


def targets(providers_file: Path = PROVIDERS_FILE) -> list[Target]:
    """The built-in targets, then every provider the configuration file adds (not registered:
    see `registered`)."""
    found = [Target(name, model) for name, model in BUILTIN_MODELS.items()]
    if not providers_file.is_file():
        return found
    try:
        tables = tomllib.loads(providers_file.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{providers_file}: not valid TOML: {exc}") from exc
    for name, table in tables.items():
        if not isinstance(table, dict) or not isinstance(table.get("model"), str):
            raise ConfigurationError(f"{providers_file}: [{name}] needs a `model = \"...\"` to run")
        fields = {key: value for key, value in table.items() if key != "model"}
        try:
            spec = ProviderSpec(name=name, **fields)
        except ValidationError as exc:
            raise ConfigurationError(f"{providers_file}: [{name}] is not a valid provider: {exc}") from exc
        found.append(Target(name, table["model"], spec))
    return found
