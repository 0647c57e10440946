"""Configuration: profiles, aliases, per-provider settings, retry policy and fallbacks.

Where it comes from (`load_config`), first match wins:
  1. an explicit path; 2. the file named by `LLMCLIENT_CONFIG`; 3. walking up from the working
  directory: in each directory `llmclient.toml` wins, else `pyproject.toml` with a `[tool.llmclient]`
  table. The walk stops at the project root (the first directory holding a pyproject.toml or a .git).
No file is an empty configuration, not an error. `LLMCLIENT_MODEL` overrides `default`.

Precedence, highest first: arguments (`Client(model, api_key=...)`) > the environment > the `.env`
file (the working directory's, or the one named by `LLMCLIENT_ENV_FILE`; format and rules in
`llmclient.envfile`) > `llmclient.toml`. `.env` is an overlay read with the configuration, never
copied into `os.environ`: `LLMCLIENT_MODEL`, `LLMCLIENT_CONFIG` and provider keys may live there.

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
    wire = "openai"                     # optional; also `capabilities = ["tools", ...]` and any other
                                        # ProviderSpec field (max_image_bytes, stream_usage, ...)

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

    [conformance.models]                # the matrix `llmclient conformance` runs: provider -> model
    openai = "gpt-4o-mini"
    cerebras = "llama-3.3-70b"
    [conformance.capability_models.openai]
    reasoning = "o4-mini"               # the model for scenarios needing a capability the main one lacks

Profile and alias names never contain "/", so a name with "/" is always a model string.
Errors name the file, the dotted key (`profiles.fast.retry.max_attempts`) and what is wrong.
The tables themselves and name resolution are in `llmclient.config_schema`.
"""

from __future__ import annotations

import os
import threading
import tomllib
from collections import ChainMap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from llmclient import envfile
from llmclient.config_schema import Config, ResolutionCycle, describe, dotted, merged_retry, spec_from
from llmclient.errors import ConfigurationError
from llmclient.providers import REGISTRY


def load_config(
    path: str | Path | None = None,
    *,
    cwd: Path | None = None,
    environ: Mapping[str, str] | None = None,
) -> Config:
    """Find, read and validate the configuration (see the module docstring for the search order).

    With neither `cwd` nor `environ` given, the process's `.env` is used (`envfile.process_env`,
    read once until `reset_config`); otherwise the `.env` they point at is read afresh."""
    real = os.environ if environ is None else environ
    start = Path.cwd() if cwd is None else Path(cwd)
    dotenv_file, dotenv = envfile.process_env() if cwd is None and environ is None else envfile.load(start, real)
    env: Mapping[str, str] = ChainMap(dict(real), dict(dotenv))  # the real environment wins
    found = _find(path, start, env)
    source, table, prefix = found if found is not None else (None, {}, ())
    model = env.get("LLMCLIENT_MODEL") or None
    model_from = ("LLMCLIENT_MODEL (environment variable)" if real.get("LLMCLIENT_MODEL")
                  else f"LLMCLIENT_MODEL (in {dotenv_file})")
    return _build(table, source, prefix, model, model_from).with_dotenv(dotenv)


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
    """Forget the cached configuration and `.env`; the next `get_config()` loads them again."""
    global _cached
    with _lock:
        _cached = None
        envfile.forget()


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


def _build(table: Mapping[str, Any], source: Path | None, prefix: tuple[str, ...], env_default: str | None,
           env_default_from: str = "LLMCLIENT_MODEL (environment variable)") -> Config:
    """Validate `table`; `env_default` (LLMCLIENT_MODEL, from `env_default_from`) replaces its `default`."""
    where = str(source) if source is not None else "<no configuration file>"
    try:
        config = Config.model_validate(table)
    except ValidationError as exc:
        raise _invalid(where, describe(exc, prefix)) from exc
    default_key = dotted((*prefix, "default"))
    if env_default is not None:
        config = config.model_copy(update={"default": env_default})
        default_key = env_default_from
    config = config.read_from(source)
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
        return dotted((*prefix, *parts))

    for name, settings in config.providers.items():
        try:
            spec_from(name, settings)
        except ValidationError as exc:
            problems += describe(exc, (*prefix, "providers", name))
        except ValueError as exc:
            problems.append(f"{key('providers', name)}: {exc}")
    providers = set(REGISTRY) | set(config.providers)

    if config.conformance is not None:
        matrix = config.conformance
        for name in [*matrix.models, *(n for n in matrix.capability_models if n not in matrix.models)]:
            if name not in providers:
                where = "models" if name in matrix.models else "capability_models"
                problems.append(f"{key('conformance', where, name)}: {name!r} is not a provider (known: "
                                f"{', '.join(sorted(providers))}); declare it under [providers.{name}] with base_url and api_key_env")

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
            merged_retry(config.retry, profile.retry)
        except ValidationError as exc:
            problems += describe(exc, (*prefix, "profiles", name, "retry"))
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
        except ResolutionCycle as cycle:
            if frozenset(cycle.cycle) not in seen:
                seen.add(frozenset(cycle.cycle))
                first = cycle.cycle[0]
                at = key("aliases", first) if first in config.aliases else key("profiles", first, "fallbacks")
                problems.append(f"{at}: {cycle.message}")
    return problems


def _target_problem(config: Config, target: str, providers: set[str]) -> str | None:
    if "/" not in target:
        known = target in config.aliases or target in config.profiles
        return None if known else f"{target!r} is {config.not_a_name(target)}"
    provider, _, model_id = target.partition("/")
    if not provider or not model_id or model_id != model_id.strip("/ ") or provider != provider.strip():
        return f"{target!r} is not a '<provider>/<model id>' string (e.g. 'openai/gpt-4o-mini')"
    if provider not in providers:
        return (
            f"{target!r} names the unknown provider {provider!r} (known: {', '.join(sorted(providers))}); "
            f"define it under [providers.{provider}] with base_url and api_key_env"
        )
    return None
