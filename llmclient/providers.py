"""Providers as data: one `ProviderSpec` row per provider, and model-string resolution.

A provider that speaks the OpenAI chat-completions dialect is one row (`register_provider`);
code exists only where a wire format differs (`llmclient.wire.<format>`).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmclient.errors import ConfigurationError

Wire = Literal["openai", "anthropic", "gemini", "cohere"]

Capability = Literal[
    "tools",  # client function calling
    "parallel_tools",  # several tool calls in one turn
    "streaming",
    "stream_tools",  # tool-call arguments streamed as fragments
    "vision",  # image input
    "pdf",  # PDF input
    "structured_output",  # native JSON-schema response format
    "reasoning",  # reasoning/thinking tokens reported
    "prompt_cache",  # cache reads reported in usage
    "cache_write",  # cache writes reported (and priced) apart, with explicit cache breakpoints
    "tiered_pricing",  # prices change above an input-size threshold (long context)
]

_CHAT: frozenset[Capability] = frozenset({"tools", "parallel_tools", "streaming", "stream_tools"})


class ProviderSpec(BaseModel):
    """How to reach one provider. `litellm_prefix` is litellm's route for it ("openai" is the
    generic OpenAI-compatible route; None for a wire llmclient encodes itself, e.g. "cohere",
    with `base_url` the full endpoint URL); `default_query` is sent on every request (Azure's
    `api-version`, for instance). A `keyless` provider (the mock, a local server) works without a
    key: `KEYLESS_PLACEHOLDER` is sent instead."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    base_url: str
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    wire: Wire = "openai"
    litellm_prefix: str | None = "openai"
    capabilities: frozenset[Capability] = _CHAT
    default_query: Mapping[str, str] = Field(default_factory=dict)
    keyless: bool = False

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if not value.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _routable(self) -> ProviderSpec:
        if self.wire == "cohere" and self.litellm_prefix is not None:
            # litellm's Cohere route ignores the per-call HTTP client every response is read from.
            raise ValueError("the cohere wire is encoded by llmclient itself: set litellm_prefix=None")
        if self.litellm_prefix is None and self.wire != "cohere":
            raise ValueError(f"litellm_prefix=None is only possible for the cohere wire, not {self.wire!r}")
        return self

    def api_key(self, explicit: str | None = None) -> str:
        """The key to use: `explicit`, else the spec's environment variable."""
        key = explicit or os.environ.get(self.api_key_env)
        if not key and self.keyless:
            return KEYLESS_PLACEHOLDER  # the SDKs refuse an empty key even where none is checked
        if not key:
            raise ConfigurationError(
                f"no API key for provider {self.name!r}: set the {self.api_key_env} environment variable "
                f"or pass api_key= to Client",
                provider=self.name,
            )
        return key


KEYLESS_PLACEHOLDER = "no-key-needed"

BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        litellm_prefix="openai",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache"},
    ),
    ProviderSpec(
        name="anthropic",
        base_url="https://api.anthropic.com",
        api_key_env="ANTHROPIC_API_KEY",
        wire="anthropic",
        litellm_prefix="anthropic",
        capabilities=_CHAT | {"vision", "pdf", "reasoning", "prompt_cache", "cache_write", "tiered_pricing"},
    ),
    ProviderSpec(
        name="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        api_key_env="GEMINI_API_KEY",
        wire="gemini",
        litellm_prefix="gemini",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache", "tiered_pricing"},
    ),
    ProviderSpec(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        api_key_env="GROQ_API_KEY",
        litellm_prefix="groq",
        capabilities=_CHAT | {"vision", "structured_output", "reasoning", "prompt_cache"},
    ),
    ProviderSpec(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        api_key_env="OPENROUTER_API_KEY",
        litellm_prefix="openrouter",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache"},
    ),
    ProviderSpec(
        name="deepseek",
        # Not litellm's default (…/beta): the stable API lives at the root.
        base_url="https://api.deepseek.com",
        api_key_env="DEEPSEEK_API_KEY",
        litellm_prefix="deepseek",
        capabilities=frozenset({"tools", "streaming", "stream_tools", "reasoning", "prompt_cache"}),
    ),
    ProviderSpec(
        name="mistral",
        base_url="https://api.mistral.ai/v1",
        api_key_env="MISTRAL_API_KEY",
        litellm_prefix="mistral",
        capabilities=_CHAT | {"vision", "structured_output", "prompt_cache"},
    ),
)

MOCK_PROVIDER = ProviderSpec(
    name="mock",
    # .invalid never resolves (RFC 6761): unanswered by llmclient.testing, a call fails to connect.
    base_url="http://mock.llmclient.invalid/v1",
    api_key_env="LLMCLIENT_MOCK_API_KEY",
    litellm_prefix="openai",
    capabilities=frozenset(get_args(Capability)),
    keyless=True,
)
"""`Client("mock/<any id>")`, answered by `llmclient.testing.MockProvider`. Registered when
`llmclient.testing` is imported, so lists of known providers name only real ones otherwise."""

_lock = threading.Lock()
_registry: dict[str, ProviderSpec] = {spec.name: spec for spec in BUILTIN_PROVIDERS}
REGISTRY: Mapping[str, ProviderSpec] = MappingProxyType(_registry)
"""Every known provider by name (read-only view; use `register_provider` to add one)."""


def register_provider(spec: ProviderSpec, *, replace: bool = False) -> ProviderSpec:
    """Make `spec` usable as `Client("<spec.name>/<model id>")`."""
    with _lock:
        if spec.name in _registry and not replace and _registry[spec.name] != spec:
            raise ConfigurationError(
                f"provider {spec.name!r} is already registered with other settings; "
                f"pass replace=True to override it",
                provider=spec.name,
            )
        _registry[spec.name] = spec
    return spec


def unregister_provider(name: str) -> None:
    """Forget a registered provider (built-in ones come back only with `register_provider`)."""
    with _lock:
        _registry.pop(name, None)


def resolve_model(model: str) -> tuple[ProviderSpec, str]:
    """`"<provider>/<model id>"` -> (spec, model id). The model id may itself contain "/"
    (`openrouter/anthropic/claude-sonnet-4.5`)."""
    if not isinstance(model, str):
        raise ConfigurationError(f"model must be a string like 'openai/gpt-4o-mini', got {type(model).__name__}")
    provider, sep, model_id = model.partition("/")
    known = ", ".join(sorted(_registry))
    if not sep or not provider or not model_id.strip("/"):
        raise ConfigurationError(
            f"model {model!r} does not name a provider: write '<provider>/<model id>', "
            f"e.g. 'openai/gpt-4o-mini'. Known providers: {known}"
        )
    if model_id != model_id.strip("/ "):
        raise ConfigurationError(f"model {model!r} has a stray '/' or space around the model id {model_id!r}")
    spec = _registry.get(provider)
    if spec is None:
        raise ConfigurationError(
            f"unknown provider {provider!r} in model {model!r}. Known providers: {known}. "
            f"Add an OpenAI-compatible one with register_provider(ProviderSpec(...))",
            provider=provider,
        )
    return spec, model_id
