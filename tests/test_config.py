"""Configuration: discovery, validation messages, resolution of profiles/aliases/fallbacks, and the
default model. Expected values come from the file contents written here and the issue's rules,
never from the code under test."""

from __future__ import annotations

import textwrap
import threading
from pathlib import Path

import pytest

import llmclient.config as config_module
from llmclient.config import get_config, load_config, reset_config
from llmclient.config_schema import Config, ModelLimits, RetrySettings
from llmclient.errors import (
    APIConnectionError,
    AuthenticationError,
    ConfigurationError,
    ContextWindowExceededError,
    OverloadedError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
)

FULL = """
default = "fast"

[retry]
max_attempts = 5
max_wait = 10.0

[providers.openai]
api_key_env = "MY_OPENAI_KEY"
base_url = "https://proxy.example/v1/"
timeout = 30.0
rpm = 500
tpm = 200000
[providers.openai.models."gpt-4o-mini"]
rpm = 100
[providers.cerebras]
base_url = "https://api.cerebras.ai/v1"
api_key_env = "CEREBRAS_API_KEY"

[profiles.fast]
model = "groq/llama-3.3-70b-versatile"
fallbacks = ["openai/gpt-4o-mini", "big"]
timeout = 20.0
retry = { max_attempts = 2, jitter = false }
options = { temperature = 0.0, max_tokens = 512 }

[profiles.big]
model = "cerebras/llama-4-maverick"
fallback_on = ["context_window"]

[aliases]
quick = "fast"
cheap = "openai/gpt-4o-mini"
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A project root (has .git) so discovery never walks into the real filesystem above it."""
    root = tmp_path / "proj"
    (root / ".git").mkdir(parents=True)
    return root


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text))
    return path


def load(root: Path, text: str, name: str = "llmclient.toml", **environ: str) -> Config:
    write(root / name, text)
    return load_config(cwd=root, environ=environ)


def load_error(root: Path, text: str, name: str = "llmclient.toml", **environ: str) -> str:
    with pytest.raises(ConfigurationError) as caught:
        load(root, text, name, **environ)
    return str(caught.value)


# ---- discovery ------------------------------------------------------------------------------------


def test_no_file_is_an_empty_configuration(project: Path) -> None:
    config = load_config(cwd=project, environ={})
    assert config.source is None
    assert config.profiles == {} and config.aliases == {} and config.default is None
    assert config.retry == RetrySettings(max_attempts=4, max_wait=60.0, initial_backoff=0.5, max_backoff=30.0)


def test_pyproject_table_found_from_a_subdirectory(project: Path) -> None:
    pyproject = write(project / "pyproject.toml", '[project]\nname = "x"\n[tool.llmclient]\ndefault = "openai/gpt-4o"\n')
    deep = project / "src" / "pkg"
    deep.mkdir(parents=True)
    config = load_config(cwd=deep, environ={})
    assert config.source == pyproject
    assert config.default == "openai/gpt-4o"


def test_llmclient_toml_wins_over_pyproject_in_the_same_directory(project: Path) -> None:
    write(project / "pyproject.toml", '[tool.llmclient]\ndefault = "openai/from-pyproject"\n')
    toml = write(project / "llmclient.toml", 'default = "openai/from-llmclient-toml"\n')
    config = load_config(cwd=project, environ={})
    assert (config.source, config.default) == (toml, "openai/from-llmclient-toml")


def test_nearest_directory_wins(project: Path) -> None:
    write(project / "llmclient.toml", 'default = "openai/outer"\n')
    inner = write(project / "sub" / "llmclient.toml", 'default = "openai/inner"\n')
    assert load_config(cwd=project / "sub", environ={}).source == inner


def test_search_stops_at_a_pyproject_without_the_table(tmp_path: Path) -> None:
    write(tmp_path / "llmclient.toml", 'default = "openai/outside-the-project"\n')
    write(tmp_path / "proj" / "pyproject.toml", '[project]\nname = "x"\n')
    config = load_config(cwd=tmp_path / "proj", environ={})
    assert config.source is None and config.default is None


def test_search_stops_at_a_git_directory(tmp_path: Path) -> None:
    write(tmp_path / "llmclient.toml", 'default = "openai/outside-the-project"\n')
    (tmp_path / "proj" / ".git").mkdir(parents=True)
    (tmp_path / "proj" / "src").mkdir()
    config = load_config(cwd=tmp_path / "proj" / "src", environ={})
    assert config.source is None


def test_env_config_beats_discovery_and_explicit_path_beats_env(project: Path) -> None:
    write(project / "llmclient.toml", 'default = "openai/discovered"\n')
    named = write(project / "conf" / "named.toml", 'default = "openai/named"\n')
    explicit = write(project / "explicit.toml", 'default = "openai/explicit"\n')
    by_env = load_config(cwd=project, environ={"LLMCLIENT_CONFIG": "conf/named.toml"})  # relative to cwd
    assert (by_env.source, by_env.default) == (named, "openai/named")
    by_path = load_config(explicit, cwd=project, environ={"LLMCLIENT_CONFIG": str(named)})
    assert by_path.default == "openai/explicit"


def test_missing_named_files_are_errors(project: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load_config(cwd=project, environ={"LLMCLIENT_CONFIG": "nowhere.toml"})
    assert f"{project / 'nowhere.toml'} (named by LLMCLIENT_CONFIG) does not exist" in str(caught.value)
    with pytest.raises(ConfigurationError, match="missing.toml"):
        load_config(project / "missing.toml", environ={})
    write(project / "pyproject.toml", '[project]\nname = "x"\n')
    with pytest.raises(ConfigurationError, match=r"no \[tool.llmclient\] table"):
        load_config(project / "pyproject.toml", environ={})


def test_llmclient_model_overrides_default(project: Path) -> None:
    config = load(project, FULL, LLMCLIENT_MODEL="cheap")
    assert config.default == "cheap"
    assert config.default_model({}) == "openai/gpt-4o-mini"


def test_llmclient_model_naming_nothing_is_rejected_at_load(project: Path) -> None:
    message = load_error(project, FULL, LLMCLIENT_MODEL="fsat")
    assert "LLMCLIENT_MODEL" in message and "'fsat'" in message


# ---- resolution -----------------------------------------------------------------------------------


def test_alias_to_profile_to_model(project: Path) -> None:
    resolved = load(project, FULL).resolve("quick")
    assert resolved.model == "groq/llama-3.3-70b-versatile"
    assert resolved.profile == "fast"
    assert resolved.chain == ("quick", "fast")
    assert resolved.timeout == 20.0  # the profile's, not a provider's
    assert dict(resolved.options) == {"temperature": 0.0, "max_tokens": 512}
    assert resolved.fallback_on == {"rate_limit", "server", "timeout", "connection", "context_window"}


def test_retry_is_the_process_default_with_the_profiles_fields(project: Path) -> None:
    config = load(project, FULL)
    # [retry] sets max_attempts=5, max_wait=10; the profile sets max_attempts=2, jitter=false.
    expected = RetrySettings(max_attempts=2, max_wait=10.0, initial_backoff=0.5, max_backoff=30.0, jitter=False)
    assert config.resolve("fast").retry == expected
    plain = config.resolve("cheap").retry
    assert plain == RetrySettings(max_attempts=5, max_wait=10.0, initial_backoff=0.5, max_backoff=30.0, jitter=True)


def test_fallbacks_are_resolved_in_order(project: Path) -> None:
    first, second = load(project, FULL).resolve("fast").fallbacks
    assert (first.model, first.profile, first.chain) == ("openai/gpt-4o-mini", None, ())
    assert first.timeout == 30.0  # providers.openai.timeout
    assert first.retry.max_attempts == 5 and first.options == {}
    assert (second.model, second.profile, second.chain) == ("cerebras/llama-4-maverick", "big", ("big",))
    assert second.fallback_on == {"context_window"}
    assert second.timeout is None and second.fallbacks == ()


def test_model_strings_pass_through(project: Path) -> None:
    resolved = load(project, FULL).resolve("anthropic/claude-sonnet-4-5")
    assert (resolved.model, resolved.profile, resolved.chain, resolved.fallbacks) == (
        "anthropic/claude-sonnet-4-5",
        None,
        (),
        (),
    )


def test_unknown_bare_name_lists_the_known_ones(project: Path) -> None:
    with pytest.raises(ConfigurationError) as caught:
        load(project, FULL).resolve("fsat")
    message = str(caught.value)
    assert "'fsat'" in message
    for known in ("fast", "big", "quick", "cheap"):
        assert known in message


def test_fallback_triggers(project: Path) -> None:
    config = load(project, FULL)
    fast, big = config.resolve("fast"), config.resolve("big")
    assert fast.falls_back_on(RateLimitError("x"))
    assert fast.falls_back_on(OverloadedError("x"))  # a ServerError
    assert fast.falls_back_on(RequestTimeoutError("x")) and fast.falls_back_on(APIConnectionError("x"))
    assert fast.falls_back_on(ContextWindowExceededError("x"))
    assert not fast.falls_back_on(AuthenticationError("x"))
    assert big.falls_back_on(ContextWindowExceededError("x"))
    assert not big.falls_back_on(ServerError("x"))


# ---- providers and limits -------------------------------------------------------------------------


def test_builtin_provider_overrides(project: Path) -> None:
    spec = load(project, FULL).provider_spec("openai")
    assert spec is not None
    assert spec.base_url == "https://proxy.example/v1"  # trailing slash dropped by ProviderSpec
    assert spec.api_key_env == "MY_OPENAI_KEY"
    assert spec.wire == "openai" and "vision" in spec.capabilities  # the rest is the built-in row's


def test_new_provider_and_unknown_provider(project: Path) -> None:
    config = load(project, FULL)
    spec = config.provider_spec("cerebras")
    assert spec is not None
    assert (spec.name, spec.base_url, spec.api_key_env, spec.wire, spec.key_header) == (
        "cerebras",
        "https://api.cerebras.ai/v1",
        "CEREBRAS_API_KEY",
        "openai",
        "authorization",
    )
    untouched = config.provider_spec("groq")
    assert untouched is not None and untouched.base_url == "https://api.groq.com/openai/v1"
    assert config.provider_spec("nope") is None


def test_rate_limits(project: Path) -> None:
    config = load(project, FULL)
    assert config.limits("openai", "gpt-4o-mini") == [
        (None, ModelLimits(rpm=500, tpm=200000)),
        ("gpt-4o-mini", ModelLimits(rpm=100, tpm=None)),
    ]
    assert config.limits("openai", "gpt-4o") == [(None, ModelLimits(rpm=500, tpm=200000))]
    assert config.limits("groq", "llama-3.3-70b-versatile") == []
    assert config.limits("cerebras", "x") == []  # configured, but without limits


# ---- default model --------------------------------------------------------------------------------

ALL_KEYS = [
    "ANTHROPIC_API_KEY",
    "OPENROUTER_API_KEY",
    "OPENAI_API_KEY",
    "GEMINI_API_KEY",
    "GROQ_API_KEY",
    "MISTRAL_API_KEY",
    "DEEPSEEK_API_KEY",
]


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        (ALL_KEYS, "anthropic/claude-sonnet-4-5"),
        (["OPENAI_API_KEY", "OPENROUTER_API_KEY"], "openrouter/openai/gpt-4o-mini"),
        (["GROQ_API_KEY", "OPENAI_API_KEY"], "openai/gpt-4o-mini"),
        (["DEEPSEEK_API_KEY", "GEMINI_API_KEY"], "gemini/gemini-2.5-flash"),
        (["DEEPSEEK_API_KEY", "MISTRAL_API_KEY", "GROQ_API_KEY"], "groq/llama-3.3-70b-versatile"),
        (["DEEPSEEK_API_KEY", "MISTRAL_API_KEY"], "mistral/mistral-small-latest"),
        (["DEEPSEEK_API_KEY"], "deepseek/deepseek-chat"),
    ],
)
def test_default_model_from_the_first_key_set(project: Path, keys: list[str], expected: str) -> None:
    config = load_config(cwd=project, environ={})
    assert config.default_model({key: "k" for key in keys}) == expected


def test_no_key_names_every_variable_checked(project: Path) -> None:
    config = load_config(cwd=project, environ={})
    with pytest.raises(ConfigurationError) as caught:
        config.default_model({"ANTHROPIC_API_KEY": "", "UNRELATED": "x"})  # empty is not set
    message = str(caught.value)
    for key in ALL_KEYS:
        assert key in message
    assert "LLMCLIENT_MODEL" in message


def test_default_model_honours_a_key_env_override(project: Path) -> None:
    config = load(project, '[providers.openai]\napi_key_env = "MY_OPENAI_KEY"\n')
    with pytest.raises(ConfigurationError, match="MY_OPENAI_KEY"):
        config.default_model({"OPENAI_API_KEY": "k"})
    assert config.default_model({"MY_OPENAI_KEY": "k"}) == "openai/gpt-4o-mini"


def test_configured_default_wins_over_keys(project: Path) -> None:
    config = load(project, FULL)
    assert config.default_model({"ANTHROPIC_API_KEY": "k"}) == "groq/llama-3.3-70b-versatile"
    assert config.resolve_default({}).profile == "fast"


# ---- bad configuration ----------------------------------------------------------------------------

BAD = [
    (
        "[profiles.fast]\nmodel = 'openai/x'\nretry = { max_attempts = 0 }\n",
        "profiles.fast.retry.max_attempts",
        "greater than or equal to 1",
    ),
    (
        "[profiles.fast]\nmodel = 'openai/x'\nfallback_on = ['rate_limit', 'oops']\n",
        "profiles.fast.fallback_on[1]",
        "'context_window'",  # the allowed values are listed
    ),
    ("[retry]\nmax_attempt = 3\n", "retry.max_attempt", "did you mean 'max_attempts'"),
    ("[profile.fast]\nmodel = 'openai/x'\n", "profile", "allowed keys: aliases, conformance, default, profiles, providers, retry"),
    ("[providers.openai]\nrpm = '500'\n", "providers.openai.rpm", "integer"),
    ("[providers.openai]\ntimeout = -1.0\n", "providers.openai.timeout", "greater than 0"),
    ("[providers.openai]\nbase_url = 'ftp://proxy'\n", "providers.openai.base_url", "absolute http(s) URL"),
    ("[providers.openai]\nwire = 'anthropic'\n", "providers.openai", "cannot be changed"),
    (
        "[providers.openai.models.'gpt-4.1']\nrpm = 0\n",
        'providers.openai.models."gpt-4.1".rpm',  # a key that needs quotes is quoted
        "greater than or equal to 1",
    ),
    ("[providers.cerebras]\napi_key_env = 'CEREBRAS_API_KEY'\n", "providers.cerebras", "base_url"),
    ("[providers.cerebras]\nbase_url = 'https://c.example/v1'\n", "providers.cerebras", "api_key_env"),
    (
        "[providers.cerebras]\nbase_url = 'https://c.example/v1'\napi_key_env = 'K'\nwire = 'grpc'\n",
        "providers.cerebras.wire",
        "'openai', 'anthropic', 'gemini', 'cohere', 'litellm' or 'claude-cli'",
    ),
    ("[profiles.fast]\nmodel = 'nope/x'\n", "profiles.fast.model", "unknown provider 'nope'"),
    ("[profiles.fast]\nmodel = 'openai/'\n", "profiles.fast.model", "'<provider>/<model id>'"),
    ("[profiles.fast]\nmodel = 'big'\n", "profiles.fast.model", "'<provider>/<model id>'"),
    ("[profiles.fast]\nmodel = 'openai/x'\nfallbacks = ['bgi']\n", "profiles.fast.fallbacks[0]", "'bgi'"),
    ("[profiles.fast]\nmodel = 'openai/x'\nfallbacks = 'big'\n", "profiles.fast.fallbacks", "should be a list"),
    ("[aliases]\nquick = 'fsat'\n", "aliases.quick", "neither a profile nor an alias"),
    ("[profiles.fast]\nmodel = 'openai/x'\n[aliases]\nfast = 'openai/y'\n", "aliases.fast", "also a profile"),
    ("[profiles.'my fast']\nmodel = 'openai/x'\n", 'profiles."my fast"', "invalid name"),
    ("[aliases]\n'a/b' = 'openai/x'\n", 'aliases."a/b"', "invalid name"),
    ("default = 'fsat'\n", "default", "'fsat'"),
    ("[profiles.fast]\nmodel = 'openai/x'\nmodel_name = 'y'\n", "profiles.fast.model_name", "did you mean 'model'"),
    (
        "[retry]\ninitial_backoff = 5.0\n[profiles.fast]\nmodel = 'openai/x'\nretry = { max_backoff = 1.0 }\n",
        "profiles.fast.retry",
        "initial_backoff (5.0) is larger than max_backoff (1.0)",
    ),
]


@pytest.mark.parametrize(("text", "key", "what"), BAD, ids=[key for _, key, _ in BAD])
def test_bad_configuration_names_file_key_and_problem(project: Path, text: str, key: str, what: str) -> None:
    message = load_error(project, text)
    assert f"{project / 'llmclient.toml'}: {key}" in message
    assert what in message


def test_pyproject_keys_are_spelled_with_their_table(project: Path) -> None:
    message = load_error(project, "[tool.llmclient.retry]\nmax_attempts = 0\n", name="pyproject.toml")
    assert f"{project / 'pyproject.toml'}: tool.llmclient.retry.max_attempts" in message


def test_toml_syntax_error_names_file_and_line(project: Path) -> None:
    message = load_error(project, 'default = "fast"\n[retry]\nmax_attempts = = 3\n')
    assert str(project / "llmclient.toml") in message
    assert "line 3" in message


@pytest.mark.parametrize(
    ("text", "key", "cycle"),
    [
        ("[aliases]\na = 'a'\n", "aliases.a", "a -> a"),
        ("[aliases]\na = 'b'\nb = 'a'\n", "aliases.a", "a -> b -> a"),
        ("[profiles.fast]\nmodel = 'openai/x'\nfallbacks = ['fast']\n", "profiles.fast.fallbacks", "fast -> fast"),
        (
            "[profiles.fast]\nmodel = 'openai/x'\nfallbacks = ['quick']\n[aliases]\nquick = 'fast'\n",
            "aliases.quick",
            "quick -> fast -> quick",
        ),
        (
            "[profiles.a]\nmodel = 'openai/x'\nfallbacks = ['b']\n[profiles.b]\nmodel = 'openai/y'\nfallbacks = ['a']\n",
            "profiles.a.fallbacks",
            "a -> b -> a",
        ),
    ],
)
def test_cycles_are_rejected_naming_the_cycle(project: Path, text: str, key: str, cycle: str) -> None:
    message = load_error(project, text)
    assert f"{project / 'llmclient.toml'}: {key}: cycle {cycle}" in message
    assert message.count(": cycle ") == 1  # one cycle, reported once


def test_documented_example_loads(project: Path) -> None:
    """The format in the module docstring is valid (plus the `big` profile its fallbacks name)."""
    doc = config_module.__doc__ or ""
    example = textwrap.dedent(doc.split("::\n", 1)[1].split("\n\n    [aliases]", 1)[0])
    aliases = '[aliases]\nquick = "fast"\ncheap = "openai/gpt-4o-mini"\n'
    config = load(project, example + '\n[profiles.big]\nmodel = "openai/gpt-4.1"\n' + aliases)
    assert config.resolve("quick").model == "groq/llama-3.3-70b-versatile"
    assert [f.model for f in config.resolve("fast").fallbacks] == ["openai/gpt-4o-mini", "openai/gpt-4.1"]


# ---- the process-wide cache -----------------------------------------------------------------------


def test_get_config_is_cached_until_reset(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("LLMCLIENT_CONFIG", raising=False)
    monkeypatch.delenv("LLMCLIENT_MODEL", raising=False)
    monkeypatch.chdir(project)
    write(project / "llmclient.toml", 'default = "openai/first"\n')
    reset_config()
    try:
        seen: list[Config] = []
        threads = [threading.Thread(target=lambda: seen.append(get_config())) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert len({id(config) for config in seen}) == 1 and seen[0].default == "openai/first"
        write(project / "llmclient.toml", 'default = "openai/second"\n')
        assert get_config().default == "openai/first"
        reset_config()
        assert get_config().default == "openai/second"
    finally:
        reset_config()
