"""Providers as data: one `ProviderSpec` row per provider, and model-string resolution.

A provider that speaks the OpenAI chat-completions dialect is one row (`register_provider`);
code exists only where a wire format differs (`llmclient.wire.<format>`).
"""

from __future__ import annotations

import re
import threading
from collections.abc import Mapping
from types import MappingProxyType
from typing import Any, Literal, get_args
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from llmclient import envfile
from llmclient.errors import ConfigurationError

Wire = Literal["openai", "anthropic", "gemini", "cohere", "litellm", "claude-cli"]

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


MB = 1024 * 1024

# How each wire format sends the key by default: (header, prefix before the key).
_WIRE_AUTH: Mapping[str, tuple[str, str]] = {
    "openai": ("authorization", "Bearer "),
    "cohere": ("authorization", "Bearer "),
    "anthropic": ("x-api-key", ""),
    "gemini": ("x-goog-api-key", ""),
}


class ProviderSpec(BaseModel):
    """How to reach one provider, and its quirks as data; the wire module (`wire`) does the rest.

    - `base_url`: the API root; the wire appends its path (`/chat/completions`, `/v1/messages`,
      `/models/<id>:generateContent`, `/v2/chat`). `default_query` is sent on every request
      (Azure's `api-version`, for instance).
    - The key goes in header `key_header` as `key_prefix + key` (defaults: the wire's own), or in
      query parameter `key_query` when that is set. A `keyless` provider (the mock, a local
      server) works without a key: `KEYLESS_PLACEHOLDER` is sent instead.
    - `max_image_bytes`, `max_pdf_bytes`: the largest inline file the provider takes.
    - `url_inputs`: the kinds of file ("image", "pdf") the provider downloads itself from an
      http(s) URL; a URL of another kind is downloaded by the client and sent inline (but never
      one on the provider's own API host: a file it holds, e.g. from Gemini's Files API).
    - `files_in_tool_results`: model ids starting with it take files inside a tool result
      ("" = every model); None = none do, and the files follow the results in a user turn.
    - `named_tool_choice`: False when the API cannot force one named tool; forcing one then
      offers only that tool and requires a tool call.
    - `cache_markers`: explicit cache breakpoints (`TextPart.cache`) are sent.
    - `native_schema_models`: model-id prefixes whose native JSON-schema output works, where only
      some models of a provider declaring `structured_output` have it (None: every model).
    - `tool_call_ids`: "alnum9" where the API takes only ids of 9 letters and digits (Mistral):
      other ids (from another provider, in a fallback or a replayed history) are mapped to such
      an id, the same one for a call and its result.
    - `text_as_string`: content of text parts only is sent as one string (OpenAI wire), for APIs
      that refuse a list of text parts (DeepSeek; Groq for system messages).
    - `stream_usage`: a stream asks for its usage with `stream_options.include_usage` (OpenAI
      wire). False where the API refuses the field and reports usage anyway (Mistral).
    - `pdf_block`: how the OpenAI wire sends a PDF: a `file` block (OpenAI's), or Mistral's
      `document_url` block (a URL or a data URL).
    - `max_tokens_field`: the body key of max_tokens on the OpenAI wire (`max_completion_tokens`
      for OpenAI itself, whose reasoning models refuse `max_tokens`).
    - `default_max_tokens`: sent when the call gives none, for APIs that require it (Anthropic).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str = Field(pattern=r"^[a-z0-9][a-z0-9_.-]*$")
    base_url: str
    api_key_env: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    wire: Wire = "openai"
    capabilities: frozenset[Capability] = _CHAT
    default_query: Mapping[str, str] = Field(default_factory=dict)
    keyless: bool = False
    key_header: str = ""
    key_prefix: str | None = None
    key_query: str | None = None
    max_image_bytes: int = Field(default=20 * MB, gt=0)
    max_pdf_bytes: int = Field(default=20 * MB, gt=0)
    url_inputs: frozenset[Literal["image", "pdf"]] = frozenset({"image"})
    files_in_tool_results: str | None = None
    named_tool_choice: bool = True
    cache_markers: bool = False
    native_schema_models: tuple[str, ...] | None = None
    tool_call_ids: Literal["any", "alnum9"] = "any"
    text_as_string: bool = False
    stream_usage: bool = True
    pdf_block: Literal["file", "document_url"] = "file"
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    default_max_tokens: int | None = Field(default=None, gt=0)

    @model_validator(mode="before")
    @classmethod
    def _wire_auth(cls, data: Any) -> Any:
        """The key header and prefix default to the wire's own."""
        if isinstance(data, dict) and data.get("wire", "openai") in _WIRE_AUTH:
            header, prefix = _WIRE_AUTH[data.get("wire", "openai")]
            data = {**data}
            if not data.get("key_header"):
                data["key_header"] = header
            if data.get("key_prefix") is None:
                data["key_prefix"] = prefix
            if data.get("wire") == "anthropic" and data.get("default_max_tokens") is None:
                data["default_max_tokens"] = 4096  # the API requires max_tokens; every Claude model can write this many
        return data

    @field_validator("base_url")
    @classmethod
    def _absolute_url(cls, value: str) -> str:
        if value and not value.startswith(("https://", "http://")):
            raise ValueError(f"base_url must be an absolute http(s) URL, got {value!r}")
        return value.rstrip("/")

    @model_validator(mode="after")
    def _reachable(self) -> ProviderSpec:
        if not self.base_url and self.wire not in ("litellm", "claude-cli"):  # litellm knows each provider's URL
            # itself; the claude-cli provider runs a local program
            raise ValueError("base_url is required: the API root, e.g. https://api.example.com/v1")
        return self

    def api_key(self, explicit: str | None = None) -> str:
        """The key to use: `explicit`, else the spec's environment variable (the real environment
        first, then the `.env` file: `llmclient.envfile`)."""
        key = explicit or envfile.getenv(self.api_key_env)
        if not key and self.keyless:
            return KEYLESS_PLACEHOLDER  # the SDKs refuse an empty key even where none is checked
        if not key:
            raise ConfigurationError(
                f"no API key for provider {self.name!r}: set the {self.api_key_env} environment variable "
                f"or pass api_key= to Client (a .env file in the working directory works too)",
                provider=self.name,
            )
        if not _HEADER_SAFE.fullmatch(key):  # the message must not echo the key
            where = "api_key=" if explicit else f"the {self.api_key_env} variable (environment or .env)"
            raise ConfigurationError(
                f"the API key for provider {self.name!r} from {where} holds whitespace, a control character or a "
                f"non-ASCII character (a trailing newline from a file?): set the key alone", provider=self.name)
        return key

    def max_file_bytes(self, media_type: str) -> int:
        return self.max_image_bytes if _kind(media_type) == "image" else self.max_pdf_bytes

    def fetches(self, url: str, media_type: str) -> bool:
        """Whether the provider reads this file from its URL itself: a kind it downloads, or a file
        it holds (a URL on its own API host, such as Gemini's Files API)."""
        if self.base_url and urlsplit(url).hostname == urlsplit(self.base_url).hostname:
            return True
        return _kind(media_type) in self.url_inputs

    def native_schema(self, model_id: str) -> bool:
        """Whether this model answers in a native JSON schema (`ResponseFormat`) itself."""
        if "structured_output" not in self.capabilities:
            return False
        return self.native_schema_models is None or model_id.startswith(self.native_schema_models)

    def takes_tool_result_files(self, model_id: str) -> bool:
        return self.files_in_tool_results is not None and model_id.startswith(self.files_in_tool_results)


def _kind(media_type: str) -> Literal["image", "pdf"]:
    """The kind of a file sent as binary (plain text goes as text): an image, else a PDF."""
    return "image" if media_type.startswith("image/") else "pdf"


KEYLESS_PLACEHOLDER = "no-key-needed"
_HEADER_SAFE = re.compile(r"[\x21-\x7e]+")  # printable ASCII without spaces: what a header or query can carry

BUILTIN_PROVIDERS: tuple[ProviderSpec, ...] = (
    ProviderSpec(
        name="openai",
        base_url="https://api.openai.com/v1",
        api_key_env="OPENAI_API_KEY",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache"},
        max_pdf_bytes=32 * MB,
        max_tokens_field="max_completion_tokens",
    ),
    ProviderSpec(
        name="anthropic",
        base_url="https://api.anthropic.com",
        api_key_env="ANTHROPIC_API_KEY",
        wire="anthropic",
        # Native JSON output is encoded (output_config.format) but not declared: structured() keeps
        # the forced-tool strategy its conformance cassettes were authored with.
        capabilities=_CHAT | {"vision", "pdf", "reasoning", "prompt_cache", "cache_write", "tiered_pricing"},
        max_image_bytes=5 * MB,
        max_pdf_bytes=32 * MB,
        url_inputs=frozenset({"image", "pdf"}),
        files_in_tool_results="",
        cache_markers=True,
    ),
    ProviderSpec(
        name="gemini",
        base_url="https://generativelanguage.googleapis.com/v1beta",
        api_key_env="GEMINI_API_KEY",
        wire="gemini",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache", "tiered_pricing"},
        url_inputs=frozenset(),  # AI Studio takes inline data or its own Files API URIs only
        files_in_tool_results="gemini-3",  # multimodal function responses
    ),
    ProviderSpec(
        name="groq",
        base_url="https://api.groq.com/openai/v1",
        api_key_env="GROQ_API_KEY",
        capabilities=_CHAT | {"vision", "structured_output", "reasoning", "prompt_cache"},
        max_image_bytes=4 * MB,
        text_as_string=True,  # 400 "'messages.0' : for 'role:system' ... must be a string"
        # console.groq.com/docs/structured-outputs: json_schema on these only ("does not support
        # response format `json_schema`" from llama-3.3 and the rest).
        native_schema_models=("openai/gpt-oss", "moonshotai/kimi-k2", "meta-llama/llama-4"),
    ),
    ProviderSpec(
        name="openrouter",
        base_url="https://openrouter.ai/api/v1",
        api_key_env="OPENROUTER_API_KEY",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache"},
        max_pdf_bytes=32 * MB,
        url_inputs=frozenset({"image", "pdf"}),  # file_data may be a URL
        cache_markers=True,  # forwarded to Anthropic models
    ),
    ProviderSpec(
        name="deepseek",
        base_url="https://api.deepseek.com",  # the stable API lives at the root
        api_key_env="DEEPSEEK_API_KEY",
        capabilities=frozenset({"tools", "streaming", "stream_tools", "reasoning", "prompt_cache"}),
        text_as_string=True,  # 422 "invalid type: sequence, expected a string"
    ),
    ProviderSpec(
        name="mistral",
        base_url="https://api.mistral.ai/v1",
        api_key_env="MISTRAL_API_KEY",
        capabilities=_CHAT | {"vision", "pdf", "structured_output", "prompt_cache"},
        max_image_bytes=10 * MB,
        max_pdf_bytes=50 * MB,
        url_inputs=frozenset({"image", "pdf"}),
        pdf_block="document_url",
        stream_usage=False,  # 422 extra_forbidden; the last chunk carries usage unasked
        tool_call_ids="alnum9",  # 400 "Tool call id was ... but must be a-z, A-Z, 0-9, with a length of 9"
        named_tool_choice=False,  # tool_choice is "auto" | "none" | "any" | "required"
    ),
    ProviderSpec(
        name="cohere",
        base_url="https://api.cohere.com",
        api_key_env="COHERE_API_KEY",
        wire="cohere",
        capabilities=_CHAT | {"structured_output", "reasoning", "prompt_cache"},
        named_tool_choice=False,  # tool_choice is REQUIRED | NONE only
    ),
)

LITELLM_PROVIDER = ProviderSpec(
    name="litellm",
    base_url="",  # litellm's own per provider; Client(base_url=...) becomes its api_base
    api_key_env="LITELLM_API_KEY",
    wire="litellm",
    # Declared so calls go through: what the provider behind litellm lacks, it refuses itself.
    capabilities=_CHAT | {"vision", "pdf", "structured_output", "reasoning", "prompt_cache"},
    keyless=True,  # without a key litellm reads the provider's own credentials (AWS, GCP, ...)
)
"""`Client("litellm/<litellm model>")`: every provider litellm reaches, through `llmclient.litellm_route`."""

CLAUDE_CLI_PROVIDER = ProviderSpec(
    name="claude-cli",
    base_url="",  # no HTTP: the `claude` program runs as a subprocess (LLMCLIENT_CLAUDE_CLI, LLMCLIENT_CLAUDE_CLI_CWD)
    # Optional: the CLI uses its own login without one; a key given is passed in its environment, never its argv.
    api_key_env="ANTHROPIC_API_KEY",
    wire="claude-cli",
    # Text and streaming only: the CLI's tools are its own (server-side), client tools cannot be
    # passed to it, and multimodal input is refused before it starts (no vision, no pdf).
    capabilities=frozenset({"streaming"}),
    keyless=True,
)
"""`Client("claude-cli/default")` (the CLI's default model) or `Client("claude-cli/<model>")`
(`--model`): Claude Code in print mode, through `llmclient.claude_cli`."""

MOCK_PROVIDER = ProviderSpec(
    name="mock",
    # .invalid never resolves (RFC 6761): unanswered by llmclient.testing, a call fails to connect.
    base_url="http://mock.llmclient.invalid/v1",
    api_key_env="LLMCLIENT_MOCK_API_KEY",
    capabilities=frozenset(get_args(Capability)),
    keyless=True,
)
"""`Client("mock/<any id>")`, answered by `llmclient.testing.MockProvider`. Registered when
`llmclient.testing` is imported, so lists of known providers name only real ones otherwise."""

_lock = threading.Lock()
_registry: dict[str, ProviderSpec] = {spec.name: spec for spec in (*BUILTIN_PROVIDERS, LITELLM_PROVIDER, CLAUDE_CLI_PROVIDER)}
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
