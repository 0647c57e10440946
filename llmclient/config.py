"""Configuration: profiles, aliases, per-provider settings, retry policy and fallbacks.

Where it comes from (`load_config`), first match wins:
  1. an explicit path; 2. the file named by `LLMCLIENT_CONFIG`; 3. walking up from the working
  directory: in each directory `llmclient.toml` wins, else `pyproject.toml` with a `[tool.llmclient]`
  table. The walk stops at the project root (the first directory holding a pyproject.toml or a .git).
No file is an empty configuration, not an error. `LLMCLIENT_MODEL` overrides `default`.

The format (every table rejects unknown keys, so a typo fails at load time)::

    default = "fast"                    # a profile, alias or "provider/model"

    [retry]                             # process default; a profile may override any field
    max_attempts = 4                    # total attempts including the first (>= 1)
    max_wait = 60.0                     # cap on a server's Retry-After, seconds
    initial_backoff = 0.5               # exponential backoff with jitter when no Retry-After
    max_backoff = 30.0
    jitter = true

    [providers.openai]                  # settings for a built-in provider...
    api_key_env = "MY_OPENAI_KEY"
    base_url = "https://proxy.example/v1"
    timeout = 30.0
    rpm = 500                           # provider-wide limits...
    tpm = 200000
    [providers.openai.models."gpt-4o-mini"]
    rpm = 100                           # ...and a narrower one for one model (both apply)
    [providers.cerebras]                # ...or a new one (needs base_url + api_key_env)
    base_url = "https://api.cerebras.ai/v1"
    api_key_env = "CEREBRAS_API_KEY"
    wire = "openai"                     # optional; also `capabilities = ["tools", ...]`

    [profiles.fast]
    model = "groq/llama-3.3-70b-versatile"        # always a "provider/model" string
    fallbacks = ["openai/gpt-4o-mini", "big"]     # models, profiles or aliases, tried in order
    fallback_on = ["rate_limit", "server", "timeout", "connection", "context_window"]  # the default
    timeout = 20.0                      # else the provider's timeout
    retry = { max_attempts = 2 }
    options = { temperature = 0.0, max_tokens = 512 }   # call keywords applied unless the call sets them

    [aliases]
    quick = "fast"                      # alias -> profile, alias, or model
    cheap = "openai/gpt-4o-mini"

Profile and alias names never contain "/", so a name with "/" is always a model string.
Errors name the file, the dotted key (`profiles.fast.retry.max_attempts`) and what is wrong.
"""

from __future__ import annotations

import difflib
import os
import re
import threading
import tomllib
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


class _Cycle(ConfigurationError):
    def __init__(self, cycle: tuple[str, ...]) -> None:
        super().__init__(f"cycle {' -> '.join(cycle)}: break it by naming a '<provider>/<model id>' string instead")
        self.cycle = cycle


class Config(_Table):
    default: str | None = None
    retry: RetrySettings = Field(default_factory=RetrySettings)
    providers: dict[_ProviderName, ProviderSettings] = Field(default_factory=dict)
    profiles: dict[_Name, Profile] = Field(default_factory=dict)
    aliases: dict[_Name, str] = Field(default_factory=dict)
    _source: Path | None = PrivateAttr(default=None)

    @property
    def source(self) -> Path | None:
        """The file this configuration was read from (None: no file)."""
        return self._source

    def resolve(self, name: str) -> Resolved:
        """Follow aliases and profiles from `name` to a "<provider>/<model id>" string."""
        return self._resolve(name, ())

    def resolve_default(self, environ: Mapping[str, str] | None = None) -> Resolved:
        """`default` resolved, else the first provider with a key set (see `default_model`)."""
        if self.default is not None:
            return self.resolve(self.default)
        env = os.environ if environ is None else environ
        checked = []
        for provider, model_id in DEFAULT_MODELS.items():
            key_env = self._key_env(provider)
            if env.get(key_env):
                return self.resolve(f"{provider}/{model_id}")
            checked.append(key_env)
        raise ConfigurationError(
            f"no model given and none configured: none of {', '.join(checked)} is set. Set one of them, "
            f"or name a default with LLMCLIENT_MODEL=provider/model or `default = \"...\"` in llmclient.toml"
        )

    def default_model(self, environ: Mapping[str, str] | None = None) -> str:
        """The "<provider>/<model id>" used when no model is given."""
        return self.resolve_default(environ).model

    def provider_spec(self, name: str) -> ProviderSpec | None:
        """The registered spec with this file's overrides, a spec this file defines, or None."""
        settings = self.providers.get(name)
        return REGISTRY.get(name) if settings is None else _spec_from(name, settings)

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
                raise _Cycle(stack[stack.index(name) :] + (name,))
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
                    f"{name!r} is {self._not_a_name(name)}. Known providers: {', '.join(sorted(REGISTRY))}")

    def _resolve_profile(self, name: str, stack: tuple[str, ...], chain: tuple[str, ...]) -> Resolved:
        profile = self.profiles[name]
        try:
            retry = _merged_retry(self.retry, profile.retry)
        except ValidationError as exc:
            raise ConfigurationError(_describe(exc, ("profiles", name, "retry"))[0]) from exc
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

    def _not_a_name(self, name: str) -> str:
        known = sorted(self.profiles) + sorted(self.aliases)
        listed = f"known: {', '.join(known)}" if known else "none are configured"
        return f"neither a profile nor an alias ({listed}) nor a '<provider>/<model id>' string"


_BUILTIN_KEY_ENV: Mapping[str, str] = {spec.name: spec.api_key_env for spec in BUILTIN_PROVIDERS}


def _merged_retry(default: RetrySettings, overrides: RetryOverrides) -> RetrySettings:
    # Validated again as a whole: a profile's max_backoff may clash with the default initial_backoff.
    return RetrySettings.model_validate({**default.model_dump(), **overrides.model_dump(exclude_none=True)})


def _spec_from(name: str, settings: ProviderSettings) -> ProviderSpec:
    """A registered spec with the overrides applied, or a new spec; raises ValueError/ValidationError."""
    overrides = settings.model_dump(include={"api_key_env", "base_url", "capabilities"}, exclude_none=True)
    base = REGISTRY.get(name)
    if base is None:
        missing = [key for key in ("base_url", "api_key_env") if key not in overrides]
        if missing:
            raise ValueError(
                f"{name!r} is not a known provider ({', '.join(sorted(REGISTRY))}), so it is a new one "
                f"and needs {' and '.join(missing)}"
            )
        wire = settings.wire or "openai"
        # litellm's route for a wire is named after it; the cohere wire is encoded by llmclient itself.
        prefix = None if wire == "cohere" else wire
        return ProviderSpec.model_validate({"name": name, "wire": wire, "litellm_prefix": prefix, **overrides})
    if settings.wire is not None and settings.wire != base.wire:
        raise ValueError(
            f"provider {name!r} speaks the {base.wire!r} wire and it cannot be changed; "
            f"define a new provider under another name for an endpoint that speaks {settings.wire!r}"
        )
    return ProviderSpec.model_validate({**base.model_dump(), **overrides})


# ---- loading ----------------------------------------------------------------------------------


def load_config(
    path: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Find, read and validate the configuration (see the module docstring for the search order)."""
    env = os.environ if environ is None else environ
    start = Path.cwd() if cwd is None else Path(cwd)
    found = _find(path, start, env)
    source, table, prefix = found if found is not None else (None, {}, ())
    return _build(table, source, prefix, env.get("LLMCLIENT_MODEL") or None)


_lock = threading.Lock()
_cached: Config | None = None


def get_config() -> Config:
    """The process configuration, loaded once (from os.environ and the working directory)."""
    global _cached
    if _cached is None:
        with _lock:
            if _cached is None:
                _cached = load_config()
    return _cached


def reset_config() -> None:
    """Forget the cached configuration; the next `get_config()` loads it again."""
    global _cached
    with _lock:
        _cached = None


_Found = tuple[Path, Mapping[str, Any], tuple[str, ...]]


def _find(path: str | Path | None, start: Path, env: Mapping[str, str]) -> _Found | None:
    named = [(path, "passed to load_config")] if path is not None else []
    if env.get("LLMCLIENT_CONFIG"):
        named.append((env["LLMCLIENT_CONFIG"], "named by LLMCLIENT_CONFIG"))
    if named:
        given, how = named[0]
        file = start / Path(given).expanduser()  # an absolute path stays itself
        if not file.is_file():
            raise ConfigurationError(f"configuration file {file} ({how}) does not exist")
        found = _read(file)
        if found is None:
            raise ConfigurationError(f"{file} ({how}) has no [tool.llmclient] table")
        return found
    for directory in (start, *start.parents):
        if (directory / "llmclient.toml").is_file():
            return _read(directory / "llmclient.toml")
        if (directory / "pyproject.toml").is_file():
            return _read(directory / "pyproject.toml")  # the project root: search no further
        if (directory / ".git").exists():
            return None
    return None


def _read(file: Path) -> _Found | None:
    """The configuration table in `file`; None for a pyproject.toml without [tool.llmclient]."""
    try:
        document = tomllib.loads(file.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:  # its message carries the line and column
        raise ConfigurationError(f"{file}: invalid TOML: {exc}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{file}: cannot read the configuration: {exc}") from exc
    if file.name != "pyproject.toml":
        return file, document, ()
    tool = document.get("tool")
    table = tool.get("llmclient") if isinstance(tool, dict) else None
    if table is None:
        return None
    if not isinstance(table, dict):
        raise ConfigurationError(f"{file}: tool.llmclient must be a table, not {type(table).__name__}")
    return file, table, ("tool", "llmclient")


def _build(table: Mapping[str, Any], source: Path | None, prefix: tuple[str, ...], env_default: str | None) -> Config:
    """Validate `table`; `env_default` (LLMCLIENT_MODEL) replaces its `default`."""
    where = str(source) if source is not None else "<no configuration file>"
    try:
        config = Config.model_validate(table)
    except ValidationError as exc:
        raise _invalid(where, _describe(exc, prefix)) from exc
    default_key = _dotted((*prefix, "default"))
    if env_default is not None:
        config = config.model_copy(update={"default": env_default})
        default_key = "LLMCLIENT_MODEL (environment variable)"
    config._source = source
    problems = _problems(config, prefix, default_key)
    if problems:
        raise _invalid(where, problems)
    return config


def _invalid(where: str, problems: list[str]) -> ConfigurationError:
    return ConfigurationError("\n".join(f"{where}: {problem}" for problem in problems))


# ---- validation beyond the schema ---------------------------------------------------------------


def _problems(config: Config, prefix: tuple[str, ...], default_key: str) -> list[str]:
    """Everything the schema alone cannot see, each as "<dotted key>: <what is wrong>"."""
    problems: list[str] = []

    def key(*parts: str | int) -> str:
        return _dotted((*prefix, *parts))

    for name, settings in config.providers.items():
        try:
            _spec_from(name, settings)
        except ValidationError as exc:
            problems += _describe(exc, (*prefix, "providers", name))
        except ValueError as exc:
            problems.append(f"{key('providers', name)}: {exc}")
    providers = set(REGISTRY) | set(config.providers)

    for name in sorted(set(config.aliases) & set(config.profiles)):
        problems.append(f"{key('aliases', name)}: {name!r} is also a profile; rename one of them")

    targets: list[tuple[str, str]] = [(key("aliases", name), to) for name, to in config.aliases.items()]
    for name, profile in config.profiles.items():
        if "/" not in profile.model:
            problems.append(
                f"{key('profiles', name, 'model')}: {profile.model!r} is not a '<provider>/<model id>' string "
                f"(to reuse another profile, list it in fallbacks or point an alias at it)"
            )
        else:
            targets.append((key("profiles", name, "model"), profile.model))
        targets += [(key("profiles", name, "fallbacks", i), to) for i, to in enumerate(profile.fallbacks)]
        try:
            _merged_retry(config.retry, profile.retry)
        except ValidationError as exc:
            problems += _describe(exc, (*prefix, "profiles", name, "retry"))
    if config.default is not None:
        targets.append((default_key, config.default))
    for where, target in targets:
        problem = _target_problem(config, target, providers)
        if problem:
            problems.append(f"{where}: {problem}")
    if problems:
        return problems  # cycles are only meaningful once every name is known

    seen: set[frozenset[str]] = set()
    for name in [*config.aliases, *config.profiles]:
        try:
            config.resolve(name)
        except _Cycle as cycle:
            if frozenset(cycle.cycle) not in seen:
                seen.add(frozenset(cycle.cycle))
                first = cycle.cycle[0]
                at = key("aliases", first) if first in config.aliases else key("profiles", first, "fallbacks")
                problems.append(f"{at}: {cycle.message}")
    return problems


def _target_problem(config: Config, target: str, providers: set[str]) -> str | None:
    if "/" not in target:
        known = target in config.aliases or target in config.profiles
        return None if known else f"{target!r} is {config._not_a_name(target)}"
    provider, _, model_id = target.partition("/")
    if not provider or not model_id or model_id != model_id.strip("/ ") or provider != provider.strip():
        return f"{target!r} is not a '<provider>/<model id>' string (e.g. 'openai/gpt-4o-mini')"
    if provider not in providers:
        return (
            f"{target!r} names the unknown provider {provider!r} (known: {', '.join(sorted(providers))}); "
            f"define it under [providers.{provider}] with base_url and api_key_env"
        )
    return None


_BARE_KEY = re.compile(r"^[A-Za-z0-9_-]+$")


def _dotted(parts: tuple[str | int, ...]) -> str:
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
    ("profiles", "*"): Profile,
    ("profiles", "*", "retry"): RetryOverrides,
}
_LIST, _TABLE = 'should be a list, e.g. ["a", "b"]', "should be a table"
_FRIENDLIER = {"tuple_type": _LIST, "frozen_set_type": _LIST, "model_type": _TABLE, "dict_type": _TABLE}


def _describe(exc: ValidationError, prefix: tuple[str, ...]) -> list[str]:
    """pydantic's errors as "<dotted key>: <what is wrong>" lines."""
    lines = []
    for error in exc.errors():
        loc: tuple[str | int, ...] = tuple(error["loc"])
        if loc and loc[-1] == "[key]":
            case = "lowercase " if loc[0] == "providers" else ""
            lines.append(f"{_dotted((*prefix, *loc[:-1]))}: invalid name: use {case}letters, digits, '_', '.', '-'")
            continue
        what = _FRIENDLIER.get(error["type"], error["msg"].removeprefix("Value error, "))
        if error["type"] == "extra_forbidden":
            what = _unknown_key(loc)
        elif error["type"] not in ("missing", "value_error") and not isinstance(error["input"], dict):
            what += f" (got {error['input']!r})"
        lines.append(f"{_dotted((*prefix, *loc))}: {what}")
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
