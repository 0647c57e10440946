"""Token counts and truncation for a model: exact where the model's tokenizer or its provider's
count endpoint is at hand, otherwise an estimate that says it is one.

    count_tokens("some text", "openai/gpt-4o-mini")           # the text alone
    count_tokens([{"role": "user", "content": "Hi"}], "openai/gpt-4o")
    # -> TokenCount(tokens=8, exact=True, method='tiktoken o200k_base', framing=7): what the
    #    provider bills as prompt tokens, chat framing included
    truncate_to_tokens(text, 1000, "openai/gpt-4o")           # the longest prefix of <= 1000 tokens
    estimate_tokens(text)                                     # no tokenizer, no I/O

How a model is counted:
- OpenAI models (`openai/...`, `azure/...`, `openrouter/openai/...`, `litellm/openai|azure/...`):
  tiktoken, exactly, on encoding files already on disk, never downloaded (see `_search_dirs`).
  Messages add the chat framing (see `_framing`), verified against real recorded calls.
- Providers on the Anthropic or Gemini wire: their count endpoint (`POST /v1/messages/count_tokens`,
  `POST .../models/<id>:countTokens`, see `llmclient.token_counting_api`) when a key is set
  (`api_key=` or the provider's variable); no key, no request. These APIs count messages only: a
  text is counted as one user turn, its framing included (`framing=None`: not broken out).
- Everything else, and whatever lacks its tokenizer: `estimate_tokens`, labelled in `method`.
Nothing here raises because a tokenizer, a file or a key is missing; an API that refuses the
count raises the library's typed error (401 -> AuthenticationError, ...).
"""

from __future__ import annotations

import base64
import functools
import hashlib
import importlib.util
import json
import os
import re
import tempfile
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict

from llmclient import envfile
from llmclient.errors import ConfigurationError, InvalidRequestError
from llmclient.files import text_bytes
from llmclient.request import Prompt, Request, ToolLike
from llmclient.types import Message

if TYPE_CHECKING:
    import tiktoken

    from llmclient.providers import ProviderSpec

BYTES_PER_TOKEN = 4
"""`estimate_tokens`: one token per 4 UTF-8 bytes (4 characters of English, about one CJK character)."""


class TokenCount(BaseModel):
    """How many tokens an input is for a model, and how that was found.

    - `tokens`: the count. For messages, what the provider bills as prompt tokens: the text plus
      the chat framing; for a text, the text alone (but see `framing`).
    - `exact`: True when the model's own tokenizer (tiktoken) or the provider's count endpoint
      gave it; False for an estimate (then `method` starts with "estimate").
    - `method`: how, e.g. "tiktoken o200k_base", "anthropic count_tokens API",
      "estimate: 4 UTF-8 bytes per token (no offline tokenizer for groq/llama-3.3-70b)".
    - `framing`: the part of `tokens` that is chat framing (each message's wrapper and role, the
      priming of the reply): 0 for a text counted alone; None when a count endpoint included
      framing without breaking it out (Anthropic and Gemini count a text as one user turn).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    tokens: int
    exact: bool
    method: str
    framing: int | None = 0


def estimate_tokens(text: str) -> int:
    """A cheap estimate of the tokens in `text` (no tokenizer, no I/O): its UTF-8 bytes / 4, rounded up."""
    size = len(text) if text.isascii() else len(text.encode("utf-8", "replace"))
    return -(-size // BYTES_PER_TOKEN)


def count_tokens(text_or_messages: str | Prompt | Request, model: str, *, api_key: str | None = None,
                 system: str | None = None, tools: Sequence[ToolLike] | None = None,
                 offline: bool = False) -> TokenCount:
    """The tokens of a text, or of a prompt as `model` ("<provider>/<model id>") bills it.

    A `str` alone is a text; messages (strings, dicts with role/content, `Message`s, as
    `Client.complete` takes them), a `Request`, or a text with `system=`/`tools=` is a prompt,
    counted with its chat framing (and its tool definitions). `api_key` is for the providers
    counted by their API (default: the provider's environment variable); `offline=True` sends
    no request (those providers are then estimated)."""
    route = _route(model)
    if isinstance(text_or_messages, Request) and (system is not None or tools):
        raise InvalidRequestError("pass either a Request or system=/tools=, not both: the Request holds them")
    if isinstance(text_or_messages, str) and system is None and not tools:
        return _count_text(text_or_messages, route, api_key, offline)
    request = text_or_messages if isinstance(text_or_messages, Request) else Request.build(
        text_or_messages, system=system, tools=tools)
    if route.openai_id is not None:
        loaded = _openai_encoding(route.openai_id)
        if isinstance(loaded, str):
            return _estimated_request(request, loaded)
        return _count_openai(request, route.openai_id, loaded)
    if route.spec is not None and route.spec.wire in ("anthropic", "gemini"):
        key = None if offline else _key(route.spec, api_key)
        if key is None:
            return _estimated_request(request, _no_key(route, offline))
        from llmclient.token_counting_api import count_with_api

        return TokenCount(tokens=count_with_api(route.spec, route.model_id, request, key), exact=True,
                          method=f"{route.spec.wire} {_API_NAME[route.spec.wire]}", framing=None)
    return _estimated_request(request, f"no offline tokenizer for {route.model}")


def truncate_to_tokens(text: str, max_tokens: int, model: str) -> str:
    """The longest prefix of `text` within `max_tokens` tokens of `model`: exact with tiktoken
    (the first `max_tokens` tokens, never half a character); otherwise estimated by
    `estimate_tokens`, cut between characters, at a space when one is near."""
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 0:
        raise InvalidRequestError(f"max_tokens must be an integer >= 0, got {max_tokens!r}")
    if not isinstance(text, str):
        raise InvalidRequestError(f"text must be a str, got {type(text).__name__}")
    route = _route(model)
    loaded = _openai_encoding(route.openai_id) if route.openai_id is not None else None
    if loaded is None or isinstance(loaded, str):
        return _truncate_estimated(text, max_tokens)
    tokens = loaded.encode(text, disallowed_special=())
    keep = max_tokens
    while len(tokens) > max_tokens and keep > 0:
        # The first `keep` tokens' bytes are a prefix of the text's UTF-8: only the last
        # character can be cut in two, and "ignore" drops it whole.
        prefix = text[:len(loaded.decode_bytes(tokens[:keep]).decode("utf-8", "ignore"))]
        count = len(loaded.encode(prefix, disallowed_special=()))
        if count <= max_tokens:  # the prefix alone may tokenize otherwise: checked, not assumed
            return prefix
        keep -= count - max_tokens
    return text if len(tokens) <= max_tokens else ""


# --- which model, counted how ---------------------------------------------------------------------

_API_NAME = {"anthropic": "count_tokens API", "gemini": "countTokens API"}


@dataclass(frozen=True)
class _Route:
    model: str  # as given
    model_id: str  # the id at the provider
    spec: ProviderSpec | None  # None for azure/..., which needs none here
    openai_id: str | None  # the OpenAI model name, when tiktoken counts it


def _route(model: str) -> _Route:
    """`model` resolved as a Client resolves it (the configuration's providers included)."""
    from llmclient.config import get_config
    from llmclient.providers import resolve_model

    if not isinstance(model, str):
        raise ConfigurationError(f"model must be a string like 'openai/gpt-4o-mini', got {type(model).__name__}")
    provider, _, model_id = model.partition("/")
    if provider == "azure":  # Azure OpenAI (through litellm or a configured endpoint): an OpenAI model
        if not model_id or model_id != model_id.strip("/ "):
            raise ConfigurationError(f"model {model!r} needs a model id after 'azure/', e.g. 'azure/gpt-4o'")
        return _Route(model, model_id, None, model_id.rsplit("/", 1)[-1])
    configured = get_config().provider_spec(provider)
    spec, model_id = resolve_model(model) if configured is None else (configured, model_id)
    if not model_id or model_id != model_id.strip("/ "):
        raise ConfigurationError(f"model {model!r} needs a model id after '{provider}/'")
    vendor, _, name = model_id.partition("/")
    openai_id = (model_id if provider == "openai"
                 else name if provider == "openrouter" and vendor == "openai"
                 else model_id.rsplit("/", 1)[-1] if provider == "litellm" and vendor in ("openai", "azure")
                 else None)
    return _Route(model, model_id, spec, openai_id)


def _key(spec: ProviderSpec, explicit: str | None) -> str | None:
    """The key to count with, None when none is set (a malformed key still raises; a keyless
    provider, such as a local proxy, gets its placeholder)."""
    if not (explicit or envfile.getenv(spec.api_key_env) or spec.keyless):
        return None
    return spec.api_key(explicit)


def _no_key(route: _Route, offline: bool) -> str:
    assert route.spec is not None
    if offline:
        return (f"no offline tokenizer for {route.model}; offline=True sends no request to its "
                f"{_API_NAME[route.spec.wire]}")
    return (f"no offline tokenizer for {route.model}; set {route.spec.api_key_env} or pass api_key= "
            f"to use the {_API_NAME[route.spec.wire]}")


def _count_text(text: str, route: _Route, api_key: str | None, offline: bool) -> TokenCount:
    if route.openai_id is not None:
        loaded = _openai_encoding(route.openai_id)
        if not isinstance(loaded, str):
            return TokenCount(tokens=len(loaded.encode(text, disallowed_special=())), exact=True,
                              method=f"tiktoken {loaded.name}")
        return _estimated(estimate_tokens(text), 0, loaded)
    if route.spec is not None and route.spec.wire in ("anthropic", "gemini"):
        key = None if offline else _key(route.spec, api_key)
        if key is None:
            return _estimated(estimate_tokens(text), 0, _no_key(route, offline))
        if not text:
            return TokenCount(tokens=0, exact=True, method="an empty text has no tokens")
        from llmclient.token_counting_api import count_with_api

        count = count_with_api(route.spec, route.model_id, Request(messages=[Message.user(text)]), key)
        return TokenCount(tokens=count, exact=True, framing=None,
                          method=f"{route.spec.wire} {_API_NAME[route.spec.wire]} (the text as one user turn)")
    return _estimated(estimate_tokens(text), 0, f"no offline tokenizer for {route.model}")


def estimated_count(text: str, why: str) -> TokenCount:
    """`estimate_tokens(text)` as a TokenCount labelled an estimate, saying `why` it is one."""
    return _estimated(estimate_tokens(text), 0, why)


def _estimated(tokens: int, framing: int, why: str) -> TokenCount:
    return TokenCount(tokens=tokens, exact=False, framing=framing,
                      method=f"estimate: {BYTES_PER_TOKEN} UTF-8 bytes per token ({why})")


def _estimated_request(request: Request, why: str) -> TokenCount:
    """Text by `estimate_tokens`, framing as OpenAI's classic chat format frames it."""
    text = sum(estimate_tokens(m.text) + sum(estimate_tokens(c.name + json.dumps(c.arguments)) for c in m.tool_calls)
               for m in request.messages)
    text += sum(estimate_tokens(t.name + t.description + json.dumps(t.parameters)) for t in request.tools)
    text += sum(-(-text_bytes(part) // BYTES_PER_TOKEN) for m in request.messages for part in m.files if part.is_text)
    framing = (_PER_MESSAGE + 1) * len(request.messages) + _REPLY_PRIMING  # a role is about one token
    return _estimated(text + framing, framing, why)


# --- OpenAI: tiktoken and the chat framing -------------------------------------------------------
# The framing, checked against every text-only recorded call to an OpenAI model in
# ../shared/reference-traffic (tests/test_tokens_traffic.py):
# - gpt-3.5/gpt-4/gpt-4o/gpt-4.1/gpt-4.5: each message is `<|start|>{role}<|message|>{content}<|end|>`,
#   3 tokens + the role's, and the reply is primed with `<|start|>assistant<|message|>`, 3 tokens
#   (OpenAI cookbook "How to count tokens with tiktoken"): 30 of 30 recorded gpt-4o/4o-mini/4.1-mini/
#   4.5-preview calls, one and two messages.
# - reasoning models (o1/o3/o4/gpt-5) take the harmony format (openai/harmony; the gpt-oss model
#   card): the reply is primed with `<|start|>assistant` only (2 tokens: the model writes the channel
#   itself), and an assistant turn of the history carries its channel, `<|channel|>final`, 2 tokens
#   more: o3-mini, gpt-5, gpt-5-mini and gpt-5.6-sol report 1 token under the classic rule for one user
#   message (8 of 8 calls), and gpt-5-mini 13 framing tokens for user/assistant/user (3x3 + 2 + 2).
#   o1-mini does not fit (2 user messages, 8 tokens over): see the test's table.
# - A system message is counted as sent ("system"; the API renders it as a developer message for
#   reasoning models: unverified, no recording has one).
_PER_MESSAGE = 3
_REPLY_PRIMING = 3
_REASONING_PRIMING = 2
_REASONING_ASSISTANT_CHANNEL = 2
_REASONING_MODELS = ("o1", "o3", "o4", "gpt-5")
# Encodings of models older tiktoken releases do not know (0.14 maps all of these itself).
_O200K_MODELS = ("gpt-5", "gpt-4.5", "gpt-4.1", "gpt-4o", "chatgpt-4o", "o1", "o3", "o4")


def _count_openai(request: Request, model_id: str, encoding: tiktoken.Encoding) -> TokenCount:
    from llmclient.wire import function_tool
    from llmclient.wire.openai import encode_message

    def tokens(text: str) -> int:
        return len(encoding.encode(text, disallowed_special=()))

    reasoning = model_id.startswith(_REASONING_MODELS)
    text = framing = 0
    unverified: list[str] = []
    for message in (encode_message(m) for m in request.messages):
        framing += _PER_MESSAGE + tokens(message["role"])
        if reasoning and message["role"] == "assistant":
            framing += _REASONING_ASSISTANT_CHANNEL
        content = message.get("content") or ""
        blocks = [{"type": "text", "text": content}] if isinstance(content, str) else content
        # The text parts of a message are one text to the tokenizer: joined, as the recorded
        # gpt-5-mini call with 2 parts shows (counted apart, its parts make one token more).
        text += tokens("".join(block["text"] for block in blocks if block.get("type") == "text"))
        if any(block.get("type") != "text" for block in blocks):
            unverified.append("images and PDFs not counted")
        for call in message.get("tool_calls", []):
            text += tokens(call["function"]["name"]) + tokens(call["function"]["arguments"])
            unverified.append("tool calls estimated")
        if message["role"] == "tool":
            unverified.append("tool results' framing estimated")
    if request.tools:
        text += tokens(json.dumps([function_tool(tool) for tool in request.tools]))
        unverified.append("tool definitions estimated")
    framing += _REASONING_PRIMING if reasoning else _REPLY_PRIMING
    method = f"tiktoken {encoding.name}"
    if unverified:
        method += f" ({', '.join(dict.fromkeys(unverified))})"
    return TokenCount(tokens=text + framing, exact=not unverified, method=method, framing=framing)


_OFFLINE_ENCODINGS = ("o200k_base", "cl100k_base", "p50k_base", "r50k_base")  # one .tiktoken file each
_lock = threading.Lock()
_encodings: dict[tuple[str, tuple[str, ...]], tiktoken.Encoding | str] = {}


def _openai_encoding(model_id: str) -> tiktoken.Encoding | str:
    """tiktoken's encoding of an OpenAI model, or why there is none (tiktoken not installed, a
    model it does not know, no verified encoding file on disk). Loaded once per directory list."""
    try:
        import tiktoken
        import tiktoken.model
        from tiktoken_ext import openai_public  # type: ignore[import-untyped]
    except ImportError:
        return "tiktoken is not installed: pip install 'llmclient[tokens]'"
    try:
        name = tiktoken.model.encoding_name_for_model(model_id)  # a table lookup, no I/O
    except KeyError:
        name = "o200k_base" if model_id.startswith(_O200K_MODELS) else ""
    if name not in _OFFLINE_ENCODINGS:
        return f"no offline tiktoken encoding for {model_id}" + (f" ({name})" if name else "")
    dirs = _search_dirs()
    with _lock:
        if (name, dirs) not in _encodings:
            _encodings[name, dirs] = _load(name, dirs, tiktoken, openai_public)
        return _encodings[name, dirs]


def _search_dirs() -> tuple[str, ...]:
    """Where encoding files are looked for, in order, under tiktoken's cache names (the SHA-1 of
    the file's URL): $TIKTOKEN_CACHE_DIR and $DATA_GYM_CACHE_DIR (tiktoken's own cache, when
    set), the copies litellm ships in its package, tiktoken's default cache directory."""
    dirs = [os.environ[var] for var in ("TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR") if os.environ.get(var)]
    dirs += [*_litellm_tokenizers(), os.path.join(tempfile.gettempdir(), "data-gym-cache")]
    return tuple(dict.fromkeys(dirs))


@functools.cache
def _litellm_tokenizers() -> tuple[str, ...]:
    """litellm's `litellm_core_utils/tokenizers/` directories, found without importing litellm."""
    try:
        spec = importlib.util.find_spec("litellm")
    except (ImportError, ValueError):
        return ()
    locations = spec.submodule_search_locations if spec is not None else None
    return tuple(os.path.join(where, "litellm_core_utils", "tokenizers") for where in locations or ())


class _NotOnDisk(Exception):
    pass


def _load(name: str, dirs: tuple[str, ...], tiktoken_module: Any, openai_public: types.ModuleType,
          ) -> tiktoken.Encoding | str:
    """The encoding built as tiktoken_ext.openai_public builds it (its pattern, special tokens
    and the file's expected SHA-256), but with its loader swapped for one that reads only the
    files in `dirs`: the constructor runs with that loader in its globals, so nothing can fetch."""

    def from_disk(url: str, expected_hash: str | None = None) -> dict[bytes, int]:
        cache_name = hashlib.sha1(url.encode()).hexdigest()
        for directory in dirs:
            try:
                with open(os.path.join(directory, cache_name), "rb") as file:
                    data = file.read()
            except OSError:
                continue
            if expected_hash is None or hashlib.sha256(data).hexdigest() == expected_hash:
                lines = (line.split() for line in data.splitlines() if line)
                return {base64.b64decode(token): int(rank) for token, rank in lines}
        raise _NotOnDisk(f"no {name} encoding file ({cache_name}, SHA-256 {expected_hash}) in {', '.join(dirs)}")

    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise _NotOnDisk(f"the {name} encoding is not read from a .tiktoken file")

    constructor = openai_public.ENCODING_CONSTRUCTORS[name]
    offline = types.FunctionType(constructor.__code__, {**vars(openai_public), "load_tiktoken_bpe": from_disk,
                                                        "data_gym_to_mergeable_bpe_ranks": refuse},
                                 constructor.__name__, constructor.__defaults__, constructor.__closure__)
    try:
        params = offline()
    except (_NotOnDisk, ValueError) as missing:  # ValueError: a line that is not "<base64> <rank>"
        return str(missing)
    return tiktoken_module.Encoding(**params)  # type: ignore[no-any-return]


# --- estimated truncation ------------------------------------------------------------------------

_WORD_BACKTRACK = 32  # characters given up, at most, to end the prefix between words
_LAST_WORD = re.compile(r"\s+\S*\Z")


def _truncate_estimated(text: str, max_tokens: int) -> str:
    limit = max_tokens * BYTES_PER_TOKEN
    data = text.encode("utf-8", "replace")  # one byte per character UTF-8 cannot carry, as estimate_tokens
    if len(data) <= limit:
        return text
    cut = len(data[:limit].decode("utf-8", "ignore"))  # a character cut in two is left out whole
    if text[cut].isspace():
        return text[:cut].rstrip()
    word = _LAST_WORD.search(text, max(0, cut - _WORD_BACKTRACK), cut)
    return text[:word.start()] if word is not None and word.start() > 0 else text[:cut]
