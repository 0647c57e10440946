"""The configuration's tables, and what a name in them resolves to.

`Config` is the validated file (see `llmclient.config` for the format and where it is read from);
`Config.resolve` follows aliases and profiles to a model and its settings. Validation messages are
built here too (`describe`), because resolving a profile re-validates its merged retry policy.
"""

from __future__ import annotations

import difflib
import os
import re
from collections import ChainMap
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import Annotated, Any, Literal, get_args

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, ValidationError, model_validator

from llmclient.errors import (
    APIConnectionError,
    ConfigurationError,
    ContextWindowExceededError,
    LLMError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)
from llmclient.providers import BUILTIN_PROVIDERS, REGISTRY, Capability, ProviderSpec, Wire

FallbackTrigger = Literal["rate_limit", "server", "timeout", "connection", "context_window"]
DEFAULT_FALLBACK_ON: frozenset[FallbackTrigger] = frozenset(get_args(FallbackTrigger))
_TRIGGER_ERRORS: Mapping[FallbackTrigger, type[LLMError]] = {
    "rate_limit": RateLimitError,
    "server": ServerError,  # OverloadedError (Anthropic 529) included
    "timeout": RequestTimeoutError,
    "connection": APIConnectionError,
    "context_window": ContextWindowExceededError,
}

# Provider -> model used when nothing names one, in the order their keys are looked for.
DEFAULT_MODELS: Mapping[str, str] = MappingProxyType(
    {
        "anthropic": "claude-sonnet-4-5",
        "openrouter": "openai/gpt-4o-mini",
        "openai": "gpt-4o-mini",
        "gemini": "gemini-2.5-flash",
        "groq": "llama-3.3-70b-versatile",
        "mistral": "mistral-small-latest",
        "deepseek": "deepseek-chat",
    }
)

_Name = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")]
_ProviderName = Annotated[str, Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")]
_EnvName = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")]
# Numbers and booleans are strict (per field: strict lists would refuse TOML arrays for tuples):
# TOML is typed, so "4" where 4 belongs is a mistake, not something to coerce.
_Seconds = Annotated[float, Field(gt=0, strict=True)]
_PerMinute = Annotated[int, Field(ge=1, strict=True)]


class _Table(BaseModel):
    # extra="forbid": a misspelt key fails at load time instead of being silently ignored.
    model_config = ConfigDict(extra="forbid", frozen=True)


class RetrySettings(_Table):
    max_attempts: int = Field(default=4, ge=1, strict=True)
    max_wait: float = Field(default=60.0, ge=0, strict=True)
    initial_backoff: float = Field(default=0.5, ge=0, strict=True)
    max_backoff: float = Field(default=30.0, ge=0, strict=True)
    jitter: bool = Field(default=True, strict=True)

    @model_validator(mode="after")
    def _backoff_in_order(self) -> RetrySettings:
        if self.initial_backoff > self.max_backoff:
            raise ValueError(f"initial_backoff ({self.initial_backoff}) is larger than max_backoff ({self.max_backoff})")
        return self


class RetryOverrides(_Table):
    """A profile's `retry`: only the fields it sets replace the process default."""

    max_attempts: int | None = Field(default=None, ge=1, strict=True)
    max_wait: float | None = Field(default=None, ge=0, strict=True)
    initial_backoff: float | None = Field(default=None, ge=0, strict=True)
    max_backoff: float | None = Field(default=None, ge=0, strict=True)
    jitter: bool | None = Field(default=None, strict=True)


class ModelLimits(_Table):
    rpm: _PerMinute | None = None
    tpm: _PerMinute | None = None


class ProviderSettings(_Table):
    api_key_env: _EnvName | None = None
    base_url: str | None = None
    wire: Wire | None = None
    capabilities: frozenset[Capability] | None = None
    timeout: _Seconds | None = None
    rpm: _PerMinute | None = None
    tpm: _PerMinute | None = None
    models: dict[str, ModelLimits] = Field(default_factory=dict)
    # The ProviderSpec quirks, for a provider declared here (see llmclient.providers.ProviderSpec).
    default_query: dict[str, str] | None = None
    keyless: bool | None = Field(default=None, strict=True)
    key_header: str | None = None
    key_prefix: str | None = None
    key_query: str | None = None
    max_image_bytes: int | None = Field(default=None, gt=0, strict=True)
    max_pdf_bytes: int | None = Field(default=None, gt=0, strict=True)
    url_inputs: frozenset[Literal["image", "pdf"]] | None = None
    files_in_tool_results: str | None = None
    named_tool_choice: bool | None = Field(default=None, strict=True)
    cache_markers: bool | None = Field(default=None, strict=True)
    native_schema_models: tuple[str, ...] | None = None
    tool_call_ids: Literal["any", "alnum9"] | None = None
    text_as_string: bool | None = Field(default=None, strict=True)
    stream_usage: bool | None = Field(default=None, strict=True)
    pdf_block: Literal["file", "document_url"] | None = None
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] | None = None
    default_max_tokens: int | None = Field(default=None, gt=0, strict=True)


class ConformanceSettings(_Table):
    """`[conformance]`: the provider x scenario matrix `llmclient conformance` runs."""

    models: dict[_ProviderName, str] = Field(min_length=1)  # provider -> the model its cells run
    # provider -> capability -> the model for scenarios needing it, where the main one lacks it
    capability_models: dict[_ProviderName, dict[Capability, str]] = Field(default_factory=dict)


class Profile(_Table):
    model: str
    fallbacks: tuple[str, ...] = ()
    fallback_on: frozenset[FallbackTrigger] = DEFAULT_FALLBACK_ON
    timeout: _Seconds | None = None
    retry: RetryOverrides = Field(default_factory=RetryOverrides)
    options: dict[str, Any] = Field(default_factory=dict)


@dataclass(frozen=True)
class Resolved:
    """What a name stands for: the model to call and the settings that go with it."""

    model: str  # "<provider>/<model id>"
    profile: str | None  # the profile it came through, if any
    chain: tuple[str, ...]  # aliases and profile followed, in order
    fallbacks: tuple[Resolved, ...]  # each resolved the same way (and may have its own fallbacks)
    fallback_on: frozenset[FallbackTrigger]
    retry: RetrySettings  # the process default with the profile's fields applied
    timeout: float | None
    options: Mapping[str, Any]  # call keywords applied unless the call sets them

    def falls_back_on(self, error: BaseException) -> bool:
        """Whether `error` (after retries) should move on to the next fallback."""
        return any(isinstance(error, _TRIGGER_ERRORS[trigger]) for trigger in self.fallback_on)


class ResolutionCycle(ConfigurationError):
    """Names that lead back to themselves through aliases, profiles or fallbacks."""

    def __init__(self, cycle: tuple[str, ...]) -> None:
        super().__init__(f"cycle {' -> '.join(cycle)}: break it by naming a '<provider>/<model id>' string instead")
        self.cycle = cycle


class Config(_Table):
    default: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)
    providers: dict[_ProviderName, ProviderSettings] = Field(default_factory=dict)
    profiles: dict[_Name, Profile] = Field(default_factory=dict)
    aliases: dict[_Name, str] = Field(default_factory=dict)
    conformance: ConformanceSettings | None = None
    _source: Path | None = PrivateAttr(default=None)
    _dotenv: Mapping[str, str] = PrivateAttr(default_factory=dict)

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from (None: no file)."""
        return self._source

    @property
    def dotenv(self) -> Mapping[str, str]:
        """The `.env` values loaded with this configuration (consulted after the environment)."""
        return MappingProxyType(dict(self._dotenv))

    def with_dotenv(self, values: Mapping[str, str]) -> Config:
        """This configuration, with the `.env` values it was loaded with."""
        located = self.model_copy()
        located._dotenv = dict(values)
        return located

    def read_from(self, source: Path | None) -> Config:
        """This configuration, marked as read from `source`."""
        located = self.model_copy()
        located._source = source
        return located

    def resolve(self, name: str) -> Resolved:
        """Follow aliases and profiles from `name` to a "<provider>/<model id>" string."""
        return self._resolve(name, ())

    def resolve_default(self, environ: Mapping[str, str] | None = None) -> Resolved:
        """`default` resolved, else the first provider with a key set in `environ` (default
        os.environ) or in the `.env` loaded with this configuration (see `default_model`)."""
        if self.default is not None:
            return self.resolve(self.default)
        env = ChainMap(dict(os.environ if environ is None else environ), dict(self._dotenv))
        checked = []
        for provider, model_id in DEFAULT_MODELS.items():
            key_env = self._key_env(provider)
            if env.get(key_env):
                return self.resolve(f"{provider}/{model_id}")
            checked.append(key_env)
        raise ConfigurationError(
            f"no model given and none configured: none of {', '.join(checked)} is set (environment or .env). Set one of them, "
            f"or name a default with LLMCLIENT_MODEL=provider/model or `default = \"...\"` in llmclient.toml"
        )

    def default_model(self, environ: Mapping[str, str] | None = None) -> str:
        """The "<provider>/<model id>" used when no model is given."""
        return self.resolve_default(environ).model

    def provider_spec(self, name: str) -> ProviderSpec | None:
        """The registered spec with this file's overrides, a spec this file defines, or None."""
        settings = self.providers.get(name)
        return REGISTRY.get(name) if settings is None else spec_from(name, settings)

    def limits(self, provider: str, model_id: str) -> list[tuple[str | None, ModelLimits]]:
        """The limits a call must fit in, as (model id, limits): the provider-wide one (model id
        None) first, then the model's own; both apply. Shaped for `ratelimit.configure`."""
        settings = self.providers.get(provider)
        if settings is None:
            return []
        levels = [(None, ModelLimits(rpm=settings.rpm, tpm=settings.tpm)), (model_id, settings.models.get(model_id))]
        return [(model, limit) for model, limit in levels if limit is not None and (limit.rpm or limit.tpm)]

    def _key_env(self, provider: str) -> str:
        settings = self.providers.get(provider)
        if settings is not None and settings.api_key_env:
            return settings.api_key_env
        return _BUILTIN_KEY_ENV[provider]

    def _resolve(self, name: str, outer: tuple[str, ...]) -> Resolved:
        # `outer` holds the names being resolved above this one (a fallback's parents): seeing one
        # again is a cycle, which would otherwise recurse forever.
        chain: list[str] = []
        while True:
            stack = outer + tuple(chain)
            if name in stack:
                raise ResolutionCycle(stack[stack.index(name) :] + (name,))
            if name in self.aliases:
                chain.append(name)
                name = self.aliases[name]
            elif name in self.profiles:
                chain.append(name)
                return self._resolve_profile(name, outer + tuple(chain), tuple(chain))
            elif "/" in name:
                return Resolved(
                    model=name,
                    profile=None,
                    chain=tuple(chain),
                    fallbacks=(),
                    fallback_on=DEFAULT_FALLBACK_ON,
                    retry=self.retry,
                    timeout=self._provider_timeout(name),
                    options=MappingProxyType({}),
                )
            else:
                raise ConfigurationError(
                    f"model {name!r} does not name a provider: write '<provider>/<model id>', e.g. 'openai/gpt-4o-mini'; "
                    f"{name!r} is {self.not_a_name(name)}. Known providers: {', '.join(sorted(REGISTRY))}")

    def _resolve_profile(self, name: str, stack: tuple[str, ...], chain: tuple[str, ...]) -> Resolved:
        profile = self.profiles[name]
        try:
            retry = merged_retry(self.retry, profile.retry)
        except ValidationError as exc:
            raise ConfigurationError(describe(exc, ("profiles", name, "retry"))[0]) from exc
        return Resolved(
            model=profile.model,
            profile=name,
            chain=chain,
            fallbacks=tuple(self._resolve(fallback, stack) for fallback in profile.fallbacks),
            fallback_on=profile.fallback_on,
            retry=retry,
            timeout=profile.timeout if profile.timeout is not None else self._provider_timeout(profile.model),
            options=MappingProxyType(dict(profile.options)),
        )

    def _provider_timeout(self, model: str) -> float | None:
        settings = self.providers.get(model.partition("/")[0])
        return settings.timeout if settings is not None else None

    def not_a_name(self, name: str) -> str:
        """Why `name` resolves to nothing, listing the names that would."""
        known = sorted(self.profiles) + sorted(self.aliases)
        listed = f"known: {', '.join(known)}" if known else "none are configured"
        return f"neither a profile nor an alias ({listed}) nor a '<provider>/<model id>' string"


_BUILTIN_KEY_ENV: Mapping[str, str] = {spec.name: spec.api_key_env for spec in BUILTIN_PROVIDERS}


def merged_retry(default: RetrySettings, overrides: RetryOverrides) -> RetrySettings:
    # Validated again as a whole: a profile's max_backoff may clash with the default initial_backoff.
    return RetrySettings.model_validate({**default.model_dump(), **overrides.model_dump(exclude_none=True)})


def spec_from(name: str, settings: ProviderSettings) -> ProviderSpec:
    """A registered spec with the overrides applied, or a new spec; raises ValueError/ValidationError."""
    overrides = settings.model_dump(exclude={"wire", "timeout", "rpm", "tpm", "models"}, exclude_none=True)
    base = REGISTRY.get(name)
    if base is None:
        missing = [key for key in ("base_url", "api_key_env") if key not in overrides]
        if missing:
            raise ValueError(
                f"{name!r} is not a known provider ({', '.join(sorted(REGISTRY))}), so it is a new one "
                f"and needs {' and '.join(missing)}"
            )
        return ProviderSpec.model_validate({"name": name, "wire": settings.wire or "openai", **overrides})
    if settings.wire is not None and settings.wire != base.wire:
        raise ValueError(
            f"provider {name!r} speaks the {base.wire!r} wire and it cannot be changed; "
            f"define a new provider under another name for an endpoint that speaks {settings.wire!r}"
        )
    return ProviderSpec.model_validate({**base.model_dump(), **overrides})


# ---- validation messages ----------------------------------------------------------------------


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def dotted(parts: tuple[str | int, ...]) -> str:
    """TOML's spelling of a key path: profiles.fast.fallbacks[1], providers.openai.models."gpt-4.1"."""
    out = ""
    for part in parts:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + (part if _BARE_KEY.match(part) else f'"{part}"')
    return out


_TABLES: dict[tuple[str, ...], type[BaseModel]] = {
    (): Config,
    ("retry",): RetrySettings,
    ("providers", "*"): ProviderSettings,
    ("providers", "*", "models", "*"): ModelLimits,
    ("conformance",): ConformanceSettings,
    ("profiles", "*"): Profile,
    ("profiles", "*", "retry"): RetryOverrides,
}
_LIST, _TABLE = 'should be a list, e.g. ["a", "b"]', "should be a table"
_FRIENDLIER = {"tuple_type": _LIST, "frozen_set_type": _LIST, "model_type": _TABLE, "dict_type": _TABLE}


def describe(exc: ValidationError, prefix: tuple[str, ...]) -> list[str]:
    """pydantic's errors as "<dotted key>: <what is wrong>" lines."""
    lines = []
    for error in exc.errors():
        loc: tuple[str | int, ...] = tuple(error["loc"])
        if loc and loc[-1] == "[key]":
            case = "lowercase " if loc[0] == "providers" else ""
            lines.append(f"{dotted((*prefix, *loc[:-1]))}: invalid name: use {case}letters, digits, '_', '.', '-'")
            continue
        what = _FRIENDLIER.get(error["type"], error["msg"].removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            what = _unknown_key(loc)
        elif error["type"] not in ("missing", "value_error") and not isinstance(error["input"], dict):
            what += f" (got {error['input']!r})"
        lines.append(f"{dotted((*prefix, *loc))}: {what}")
    return lines


def _unknown_key(loc: tuple[str | int, ...]) -> str:
    # Names of providers, profiles and models are free: match them as "*".
    parent = loc[:-1]
    free = ("providers", "profiles", "models")
    shape = tuple("*" if i % 2 and parent[i - 1] in free else str(part) for i, part in enumerate(parent))
    table = _TABLES.get(shape)
    if table is None:
        return "unknown key"
    allowed = sorted(name for name in table.model_fields)
    close = difflib.get_close_matches(str(loc[-1]), allowed, n=1)
    hint = f" (did you mean {close[0]!r}?)" if close else ""
    return f"unknown key{hint}; allowed keys: {', '.join(allowed)}"
