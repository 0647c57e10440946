"""Provider rows, model-string resolution, registration, and API-key resolution in Client."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from pydantic import ValidationError

import llmclient.pipeline
from llmclient import REGISTRY, Client, ConfigurationError, ProviderSpec, register_provider, unregister_provider
from llmclient.providers import BUILTIN_PROVIDERS, resolve_model

# name, base URL, key variable, wire: from each provider's public API documentation.
BUILTINS = [
    ("openai", "https://api.openai.com/v1", "OPENAI_API_KEY", "openai"),
    ("anthropic", "https://api.anthropic.com", "ANTHROPIC_API_KEY", "anthropic"),
    ("gemini", "https://generativelanguage.googleapis.com/v1beta", "GEMINI_API_KEY", "gemini"),
    ("groq", "https://api.groq.com/openai/v1", "GROQ_API_KEY", "openai"),
    ("openrouter", "https://openrouter.ai/api/v1", "OPENROUTER_API_KEY", "openai"),
    ("deepseek", "https://api.deepseek.com", "DEEPSEEK_API_KEY", "openai"),
    ("mistral", "https://api.mistral.ai/v1", "MISTRAL_API_KEY", "openai"),
    ("cohere", "https://api.cohere.com", "COHERE_API_KEY", "cohere"),
]
KNOWN = "Known providers: anthropic, claude-cli, cohere, deepseek, gemini, groq, litellm, mistral, openai, openrouter"


@pytest.fixture(autouse=True)
def _real_providers_only() -> Iterator[None]:
    """`mock` is registered once any test imports llmclient.testing; these tests list real ones."""
    mock = REGISTRY.get("mock")
    if mock is not None:
        unregister_provider("mock")
    yield
    if mock is not None:
        register_provider(mock, replace=True)


CEREBRAS = ProviderSpec(
    name="cerebras", base_url="https://api.cerebras.ai/v1/", api_key_env="CEREBRAS_API_KEY", wire="openai"
)


@pytest.fixture(autouse=True)
def _restore_registry() -> Iterator[None]:
    """Every test leaves the global registry exactly as it found it."""
    before = dict(REGISTRY)
    yield
    for name in set(REGISTRY) - set(before):
        unregister_provider(name)
    for spec in before.values():
        register_provider(spec, replace=True)
    assert dict(REGISTRY) == before


class SendAttempted(Exception):
    def __init__(self, api_key: str) -> None:
        super().__init__(api_key)
        self.api_key = api_key


@pytest.fixture
def sends(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Record every attempt to send (and stop it there)."""
    attempts: list[str] = []

    def send(self: Any, request: Any, *, stream: bool) -> None:
        key = request.headers.get(self.spec.key_header, "").removeprefix(self.spec.key_prefix or "")
        attempts.append(key)
        raise SendAttempted(key)

    monkeypatch.setattr(llmclient.pipeline.Pipeline, "send", send)
    return attempts


def test_exactly_the_eight_builtin_providers() -> None:
    assert [spec.name for spec in BUILTIN_PROVIDERS] == [row[0] for row in BUILTINS]
    # and the long-tail route, and the Claude CLI run as a subprocess
    assert sorted(REGISTRY) == sorted([row[0] for row in BUILTINS] + ["litellm", "claude-cli"])


@pytest.mark.parametrize(("name", "base_url", "env", "wire"), BUILTINS)
def test_builtin_provider_row(name: str, base_url: str, env: str, wire: str) -> None:
    spec = REGISTRY[name]
    assert (spec.base_url, spec.api_key_env, spec.wire) == (base_url, env, wire)


def test_registry_is_read_only() -> None:
    with pytest.raises(TypeError):
        REGISTRY["x"] = CEREBRAS  # type: ignore[index]


@pytest.mark.parametrize(
    ("model", "provider", "model_id"),
    [
        ("openai/gpt-4o-mini", "openai", "gpt-4o-mini"),
        ("anthropic/claude-sonnet-4-5", "anthropic", "claude-sonnet-4-5"),
        ("gemini/gemini-2.5-flash", "gemini", "gemini-2.5-flash"),
        ("groq/llama-3.1-8b-instant", "groq", "llama-3.1-8b-instant"),
        ("openrouter/anthropic/claude-3.5-sonnet", "openrouter", "anthropic/claude-3.5-sonnet"),
        ("deepseek/deepseek-chat", "deepseek", "deepseek-chat"),
        ("mistral/mistral-small-latest", "mistral", "mistral-small-latest"),
    ],
)
def test_resolve_model(model: str, provider: str, model_id: str) -> None:
    spec, resolved_id = resolve_model(model)
    assert (spec.name, resolved_id) == (provider, model_id)
    client = Client(model)
    assert (client.spec.name, client.model_id, client.model) == (provider, model_id, model)


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("gpt-4o", "model 'gpt-4o' does not name a provider: write '<provider>/<model id>'"),
        ("openai/", "model 'openai/' does not name a provider"),
        ("/gpt-4o", "model '/gpt-4o' does not name a provider"),
        ("azure/gpt-4o", "unknown provider 'azure' in model 'azure/gpt-4o'"),
        ("OpenAI/gpt-4o", "unknown provider 'OpenAI'"),
    ],
)
def test_bad_model_strings_list_the_known_providers(model: str, expected: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        Client(model)
    assert expected in str(caught.value)
    assert KNOWN in str(caught.value)


def test_non_string_model_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="model must be a string like 'openai/gpt-4o-mini', got int"):
        resolve_model(42)  # type: ignore[arg-type]


def test_register_an_openai_compatible_provider() -> None:
    assert register_provider(CEREBRAS) is CEREBRAS
    client = Client("cerebras/llama-3.3-70b")
    assert (client.spec, client.model_id, client.base_url) == (CEREBRAS, "llama-3.3-70b", "https://api.cerebras.ai/v1")
    assert "cerebras" in str(pytest.raises(ConfigurationError, Client, "nope/x").value)


def test_reregistering_the_same_spec_is_harmless_but_different_settings_need_replace() -> None:
    register_provider(CEREBRAS)
    register_provider(CEREBRAS)
    other = CEREBRAS.model_copy(update={"base_url": "https://eu.cerebras.example/v1"})
    with pytest.raises(ConfigurationError, match="provider 'cerebras' is already registered .* pass replace=True"):
        register_provider(other)
    assert REGISTRY["cerebras"] is CEREBRAS
    register_provider(other, replace=True)
    assert REGISTRY["cerebras"].base_url == "https://eu.cerebras.example/v1"


def test_overriding_a_builtin_needs_replace() -> None:
    with pytest.raises(ConfigurationError, match="pass replace=True"):
        register_provider(ProviderSpec(name="openai", base_url="http://localhost:8080/v1", api_key_env="OPENAI_API_KEY"))
    assert REGISTRY["openai"].base_url == "https://api.openai.com/v1"


def test_unregister() -> None:
    register_provider(CEREBRAS)
    unregister_provider("cerebras")
    assert "cerebras" not in REGISTRY
    with pytest.raises(ConfigurationError, match="unknown provider 'cerebras'"):
        Client("cerebras/llama-3.3-70b")
    unregister_provider("cerebras")  # forgetting an unknown name is not an error


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("name", "Cerebras"),
        ("name", "my provider"),
        ("name", "my/provider"),
        ("name", "-cerebras"),
        ("name", ""),
        ("base_url", "api.cerebras.ai/v1"),
        ("base_url", "/v1"),
        ("base_url", "ftp://api.cerebras.ai"),
        ("api_key_env", "CEREBRAS-API-KEY"),
        ("api_key_env", "1KEY"),
        ("api_key_env", ""),
        ("wire", "soap"),
        ("capabilities", frozenset({"telepathy"})),
    ],
)
def test_provider_spec_validation(field: str, value: Any) -> None:
    fields: dict[str, Any] = {"name": "cerebras", "base_url": "https://api.cerebras.ai/v1", "api_key_env": "CEREBRAS_API_KEY"}
    fields[field] = value
    with pytest.raises(ValidationError) as caught:
        ProviderSpec(**fields)
    assert [error["loc"][0] for error in caught.value.errors()] == [field]


def test_key_placement_defaults_to_the_wire_and_can_be_overridden() -> None:
    # Each API's documented key header: Bearer auth, Anthropic's x-api-key, Google's x-goog-api-key.
    assert (REGISTRY["openai"].key_header, REGISTRY["openai"].key_prefix) == ("authorization", "Bearer ")
    assert (REGISTRY["anthropic"].key_header, REGISTRY["anthropic"].key_prefix) == ("x-api-key", "")
    assert (REGISTRY["gemini"].key_header, REGISTRY["gemini"].key_prefix) == ("x-goog-api-key", "")
    azure = ProviderSpec(name="az", base_url="https://x.example/openai", api_key_env="AZ_KEY", key_header="api-key", key_prefix="")
    assert (azure.key_header, azure.key_prefix, azure.key_query) == ("api-key", "", None)


def test_provider_spec_is_frozen() -> None:
    with pytest.raises(ValidationError):
        CEREBRAS.base_url = "https://other.example"  # type: ignore[misc]


def test_client_base_url_must_be_absolute() -> None:
    with pytest.raises(ConfigurationError, match="base_url must be an absolute http"):
        Client("openai/gpt-4o-mini", base_url="localhost:8080/v1")
    assert Client("openai/gpt-4o-mini", base_url="http://localhost:8080/v1/").base_url == "http://localhost:8080/v1"


# --- API keys -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "base_url", "env", "wire"), BUILTINS + [("cerebras", "", "CEREBRAS_API_KEY", "")])
def test_missing_key_names_the_variable_before_any_request(
    name: str, base_url: str, env: str, wire: str, monkeypatch: pytest.MonkeyPatch, sends: list[str]
) -> None:
    register_provider(CEREBRAS)
    monkeypatch.delenv(env, raising=False)
    with pytest.raises(ConfigurationError) as caught:
        Client(f"{name}/some-model").complete("hi")
    assert f"set the {env} environment variable or pass api_key= to Client" in str(caught.value)
    assert caught.value.provider == name
    assert sends == []


def test_missing_openai_key(monkeypatch: pytest.MonkeyPatch, sends: list[str]) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        Client("openai/gpt-4o-mini").complete("hi")
    assert sends == []


def test_empty_key_variable_counts_as_missing(monkeypatch: pytest.MonkeyPatch, sends: list[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "")
    with pytest.raises(ConfigurationError, match="OPENAI_API_KEY"):
        Client("openai/gpt-4o-mini").complete("hi")
    assert sends == []


def test_gemini_does_not_fall_back_to_google_api_key(monkeypatch: pytest.MonkeyPatch, sends: list[str]) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "AIza-google")
    with pytest.raises(ConfigurationError, match="set the GEMINI_API_KEY environment variable"):
        Client("gemini/gemini-2.5-flash").complete("hi")
    assert sends == []


@pytest.mark.parametrize(
    ("env_value", "api_key", "sent"),
    [
        ("sk-from-env", None, "sk-from-env"),
        ("sk-from-env", "sk-explicit", "sk-explicit"),
        (None, "sk-explicit", "sk-explicit"),
    ],
)
def test_key_resolution(
    env_value: str | None, api_key: str | None, sent: str, monkeypatch: pytest.MonkeyPatch, sends: list[str]
) -> None:
    if env_value is None:
        monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    else:
        monkeypatch.setenv("OPENAI_API_KEY", env_value)
    with pytest.raises(SendAttempted):
        Client("openai/gpt-4o-mini", api_key=api_key).complete("hi")
    assert sends == [sent]


def test_invalid_request_is_refused_before_the_key_or_the_network(monkeypatch: pytest.MonkeyPatch, sends: list[str]) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-from-env")
    with pytest.raises(ValueError, match="the prompt is empty"):
        Client("openai/gpt-4o-mini").complete(" ")
    assert sends == []


@pytest.mark.parametrize("model", ["openai/gpt-4o/", "openai/ gpt-4o", "openai/gpt-4o "])
def test_stray_slash_or_space_in_the_model_id_is_refused(model: str) -> None:
    with pytest.raises(ConfigurationError, match="stray '/' or space"):
        resolve_model(model)
