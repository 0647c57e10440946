"""Which providers and models the suite runs, and where their cassettes and expected values are.

The matrix is configuration: the `[conformance]` table of an `llmclient.toml` (or
`[tool.llmclient]`) names the provider of each column and the model its cells run; a provider
that is not built in is declared in the same file's `[providers.<name>]` table, the one `Client`,
`llmclient replay` and the proxy read::

    [providers.cerebras]
    base_url = "https://api.cerebras.ai/v1"
    api_key_env = "CEREBRAS_API_KEY"
    capabilities = ["tools", "streaming"]

    [conformance.models]
    cerebras = "llama-3.3-70b"
    [conformance.capability_models.cerebras]
    vision = "llama-4-scout"           # scenarios needing vision run this model

Cassettes and expected values sit beside that file (`cassettes/<provider>/<scenario>.yaml`,
`fixtures/conformance/<provider>/<scenario>.json`) unless given elsewhere.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from llmclient import REGISTRY, ConfigurationError, ProviderSpec, register_provider, unregister_provider
from llmclient.config import load_config
from llmclient.config_schema import Config


@dataclass(frozen=True)
class Target:
    provider: str
    model: str
    added: ProviderSpec | None = None  # the spec the configuration gives (a new provider, or overrides)
    capability_models: Mapping[str, str] = field(default_factory=dict)

    def model_for(self, needs: frozenset[str], named: str | None = None) -> str:
        """The model a scenario runs: the one it names (behind the target's route prefix, e.g.
        litellm's "openai/"), else the one with the capabilities it needs, else the target's."""
        if named is not None:
            return self.model.rpartition("/")[0] + "/" + named if self.spec.wire == "litellm" else named
        return next((self.capability_models[c] for c in sorted(needs) if c in self.capability_models), self.model)

    @property
    def spec(self) -> ProviderSpec:
        if self.added is not None:
            return self.added
        if self.provider not in REGISTRY:
            raise ConfigurationError(f"{self.provider!r} is not a provider: declare it under [providers.{self.provider}]")
        return REGISTRY[self.provider]


@dataclass(frozen=True)
class Suite:
    """A matrix to run: its targets, and the folders holding its cassettes and expected values."""

    targets: tuple[Target, ...]
    cassettes: Path
    fixtures: Path
    config: Path | None = None  # the file the matrix came from

    def cassette(self, provider: str, scenario: str) -> Path:
        return self.cassettes / provider / f"{scenario}.yaml"

    def fixture(self, provider: str, scenario: str) -> Path:
        return self.fixtures / provider / f"{scenario}.json"

    def target(self, provider: str) -> Target:
        for target in self.targets:
            if target.provider == provider:
                return target
        raise ConfigurationError(f"{provider!r} is not in the matrix of {self.config or 'the configuration'}; "
                                 f"its providers: {', '.join(t.provider for t in self.targets)}")


def load_suite(config: str | Path | None = None, *, cassettes: str | Path | None = None,
               fixtures: str | Path | None = None, cwd: Path | None = None) -> Suite:
    """The matrix of `config` (else of the configuration found from `cwd`), with its folders:
    given ones, else `cassettes/` and `fixtures/conformance/` beside the configuration file."""
    loaded = load_config(config, cwd=cwd)
    source = loaded.source
    if loaded.conformance is None:
        where = source or "no llmclient.toml, pyproject.toml [tool.llmclient] or LLMCLIENT_CONFIG was found"
        raise ConfigurationError(f"no [conformance] table in {where}: name the matrix with [conformance.models] "
                                 f"(provider = \"model\") or pass --config FILE")
    base = source.parent if source is not None else (cwd or Path.cwd())
    return Suite(targets_of(loaded), Path(cassettes) if cassettes else base / "cassettes",
                 Path(fixtures) if fixtures else base / "fixtures" / "conformance", source)


def targets_of(config: Config) -> tuple[Target, ...]:
    assert config.conformance is not None
    found = []
    for provider, model in config.conformance.models.items():
        spec = config.provider_spec(provider)
        assert spec is not None  # the configuration's validation checked every name
        models = config.conformance.capability_models.get(provider, {})
        found.append(Target(provider, model, spec, {str(capability): name for capability, name in models.items()}))
    return tuple(found)


@contextmanager
def registered(chosen: Iterable[Target]) -> Iterator[None]:
    """The specs of `chosen` in the registry for the block (and only for it): a declared provider
    added, a built-in one's overrides (e.g. its base_url) in place of the built-in spec."""
    previous: dict[str, ProviderSpec | None] = {}
    for target in chosen:
        if target.added is not None and REGISTRY.get(target.provider) != target.added:
            previous[target.provider] = REGISTRY.get(target.provider)
            register_provider(target.added, replace=True)
    try:
        yield
    finally:
        for name, spec in previous.items():
            if spec is None:
                unregister_provider(name)
            else:
                register_provider(spec, replace=True)
