"""count_tokens, truncate_to_tokens and estimate_tokens (llmclient.tokens).

Expected numbers come from outside the code: the OpenAI cookbook "How to count tokens with tiktoken"
(cookbook.openai.com/examples/how_to_count_tokens_with_tiktoken: "tiktoken is great!" is 6 tokens in
cl100k_base, [83, 1609, 5963, 374, 2294, 0]; "お誕生日おめでとう" is 14 tokens in p50k_base, 9 in
cl100k_base, 8 in o200k_base; a message is framed by 3 tokens plus its role, a reply primed by 3),
the framing of reasoning models measured on real recorded calls (tests/test_tokens_traffic.py),
the providers' documented count examples replayed from cassettes/tokens/ (see its README), and
hand arithmetic on UTF-8 byte lengths for the estimates.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest

from llmclient import tokens
from llmclient.cassettes import CassetteSession, use_cassette
from llmclient.errors import (
    AuthenticationError,
    ConfigurationError,
    InvalidRequestError,
)
from llmclient.tokens import (
    TokenCount,
    count_tokens,
    estimate_tokens,
    truncate_to_tokens,
)
from llmclient.types import Message

REPO = Path(__file__).resolve().parent.parent
CASSETTES = REPO / "cassettes" / "tokens"
ANTHROPIC_KEY = "sk-ant-tokens-test-placeholder-0000"
GEMINI_KEY = "gemini-tokens-test-placeholder-0000"
JAPANESE = "お誕生日おめでとう"
GREAT = "tiktoken is great!"
O200K_FILE = "fb374d419588a4632f3f557e76b4b70aebbca790"  # tiktoken's cache name: sha1 of the blob URL


@pytest.fixture(autouse=True)
def no_keys(monkeypatch: pytest.MonkeyPatch) -> None:
    for variable in ("ANTHROPIC_API_KEY", "GEMINI_API_KEY", "TIKTOKEN_CACHE_DIR", "DATA_GYM_CACHE_DIR"):
        monkeypatch.delenv(variable, raising=False)


@pytest.fixture
def keys(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
    monkeypatch.setenv("GEMINI_API_KEY", GEMINI_KEY)


@pytest.fixture
def fresh_encodings(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Encodings loaded again in this test (not the ones earlier tests loaded)."""
    monkeypatch.setattr(tokens, "_encodings", {})
    yield


def cassette(name: str) -> AbstractContextManager[CassetteSession]:
    return use_cassette(CASSETTES / name, mode="replay", strict=True)


def no_request(*args: object, **kwargs: object) -> None:
    raise AssertionError("a request was sent")


# --- OpenAI models: tiktoken, offline ------------------------------------------------------------

def test_a_text_is_counted_alone_with_the_models_encoding() -> None:
    assert count_tokens(GREAT, "openai/gpt-4") == TokenCount(tokens=6, exact=True, method="tiktoken cl100k_base",
                                                             framing=0)
    assert count_tokens(JAPANESE, "openai/gpt-4o-mini").tokens == 8  # o200k_base
    assert count_tokens(JAPANESE, "openai/gpt-3.5-turbo").tokens == 9  # cl100k_base
    assert count_tokens(JAPANESE, "openai/text-davinci-003") == TokenCount(tokens=14, exact=True,
                                                                            method="tiktoken p50k_base")
    assert count_tokens("", "openai/gpt-4o").tokens == 0


def test_every_openai_route_uses_tiktoken() -> None:
    for model in ("azure/gpt-4o", "azure/eu/gpt-4o", "openrouter/openai/gpt-4o-mini", "litellm/openai/gpt-4o",
                  "litellm/azure/gpt-4o"):
        assert count_tokens(JAPANESE, model) == TokenCount(tokens=8, exact=True, method="tiktoken o200k_base"), model


def test_messages_add_the_chat_framing() -> None:
    # cookbook rule: 3 tokens a message + its role ("user" is 1 token) + 3 priming the reply
    counted = count_tokens([{"role": "user", "content": GREAT}], "openai/gpt-4o")
    assert counted == TokenCount(tokens=6 + 1 + 3 + 3, exact=True, method="tiktoken o200k_base", framing=7)
    conversation = [Message.user(GREAT), Message.assistant(GREAT), {"role": "user", "content": GREAT}]
    assert count_tokens(conversation, "openai/gpt-4.1-mini") == TokenCount(
        tokens=3 * 6 + 3 * (3 + 1) + 3, exact=True, method="tiktoken o200k_base", framing=15)
    # system= is one more message ("system" is 1 token); a text with system= is a prompt
    assert count_tokens(GREAT, "openai/gpt-4o", system=GREAT).tokens == 2 * 6 + 2 * (3 + 1) + 3


def test_reasoning_models_prime_the_reply_with_2_and_frame_an_assistant_turn_with_2_more() -> None:
    # measured: o3-mini/gpt-5/gpt-5-mini report one token less than the cookbook rule for one user
    # message, gpt-5-mini 13 framing tokens for user/assistant/user (tests/test_tokens_traffic.py)
    assert count_tokens([{"role": "user", "content": GREAT}], "openai/o3-mini") == TokenCount(
        tokens=6 + 1 + 3 + 2, exact=True, method="tiktoken o200k_base", framing=6)
    conversation = [Message.user(GREAT), Message.assistant(GREAT), Message.user(GREAT)]
    counted = count_tokens(conversation, "openrouter/openai/gpt-5-mini")
    assert (counted.tokens, counted.framing) == (3 * 6 + 3 * (3 + 1) + 2 + 2, 3 * (3 + 1) + 2 + 2)


def test_parts_of_a_message_are_one_text() -> None:
    parts = [{"type": "text", "text": "tiktoken is"}, {"type": "text", "text": " great!"}]
    assert count_tokens([{"role": "user", "content": parts}], "openai/gpt-4").tokens == 6 + 1 + 3 + 3


def test_what_the_framing_rule_does_not_cover_is_flagged_as_not_exact() -> None:
    def weather(city: str) -> str:
        """The weather in a city."""
        return "sunny"

    counted = count_tokens("What is the weather in Paris?", "openai/gpt-4o", tools=[weather])
    assert not counted.exact and counted.method == "tiktoken o200k_base (tool definitions estimated)"
    with_image = [{"role": "user", "content": "Describe it."}]
    counted = count_tokens(Message(role="user", content=[
        {"type": "text", "text": "Describe it."},
        {"type": "file", "media_type": "image/png", "name": "x.png", "url": "https://example.com/x.png"}]),
        "openai/gpt-4o")
    assert not counted.exact and "images and PDFs not counted" in counted.method
    assert counted.tokens == count_tokens(with_image, "openai/gpt-4o").tokens


def test_older_tiktoken_without_the_model_falls_back_to_o200k(monkeypatch: pytest.MonkeyPatch) -> None:
    import tiktoken.model

    def unknown(model: str) -> str:
        raise KeyError(model)

    monkeypatch.setattr(tiktoken.model, "encoding_name_for_model", unknown)
    for model in ("gpt-5-mini", "gpt-4.1", "o3-mini", "o4-mini", "chatgpt-4o-latest"):
        assert count_tokens(JAPANESE, f"openai/{model}").tokens == 8, model
    counted = count_tokens(JAPANESE, "openai/my-deployment")
    assert not counted.exact and counted.method.startswith("estimate:") and "my-deployment" in counted.method


def test_encoding_files_are_read_from_disk_and_never_fetched(monkeypatch: pytest.MonkeyPatch,
                                                             fresh_encodings: None) -> None:
    import tiktoken.load

    monkeypatch.setattr(tiktoken.load, "read_file", no_request)
    monkeypatch.setattr(tiktoken.load, "read_file_cached", no_request)
    assert count_tokens(GREAT, "openai/gpt-4").tokens == 6


def test_a_file_that_fails_its_sha256_is_not_used(monkeypatch: pytest.MonkeyPatch, tmp_path: Path,
                                                  fresh_encodings: None) -> None:
    (tmp_path / O200K_FILE).write_bytes(b"SGVsbG8= 0\n")  # a valid line, but not o200k_base
    monkeypatch.setenv("TIKTOKEN_CACHE_DIR", str(tmp_path))
    assert count_tokens(JAPANESE, "openai/gpt-4o").tokens == 8  # the next directory's (litellm's) copy
    monkeypatch.setattr(tokens, "_search_dirs", lambda: (str(tmp_path),))
    counted = count_tokens(JAPANESE, "openai/gpt-4o")
    assert not counted.exact and O200K_FILE in counted.method and str(tmp_path) in counted.method


def test_without_tiktoken_openai_models_are_estimated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "tiktoken", None)
    counted = count_tokens("abcdefgh", "openai/gpt-4o")
    assert counted == TokenCount(tokens=2, exact=False, framing=0, method=(
        "estimate: 4 UTF-8 bytes per token (tiktoken is not installed: pip install 'llmclient[tokens]')"))
    assert truncate_to_tokens("abcd efgh", 1, "openai/gpt-4o") == "abcd"


def test_litellm_is_located_not_imported() -> None:
    code = ("import sys; from llmclient.tokens import count_tokens; "
            "assert count_tokens('x', 'openai/gpt-4o').exact; print('litellm' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], check=False, cwd=REPO, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# --- Anthropic and Gemini: their count endpoints -----------------------------------------------

def test_anthropic_counts_with_its_api(keys: None) -> None:
    with cassette("anthropic_count.yaml") as session:
        counted = count_tokens([{"role": "user", "content": "Hello, Claude"}], "anthropic/claude-sonnet-4-5-20250929",
                               system="You are a scientist")
    assert counted == TokenCount(tokens=14, exact=True, method="anthropic count_tokens API", framing=None)
    sent = session.sent[0]
    assert sent.uri == "https://api.anthropic.com/v1/messages/count_tokens"
    assert sent.headers["anthropic-version"] == "2023-06-01" and sent.headers["x-api-key"] == "REDACTED"


def test_an_explicit_key_is_used(monkeypatch: pytest.MonkeyPatch) -> None:
    with cassette("anthropic_count.yaml"):
        counted = count_tokens([Message.system("You are a scientist"), Message.user("Hello, Claude")],
                               "anthropic/claude-sonnet-4-5-20250929", api_key=ANTHROPIC_KEY)
    assert counted.tokens == 14


def test_anthropic_refusing_the_key_is_an_authentication_error(keys: None) -> None:
    with cassette("anthropic_401.yaml"), pytest.raises(AuthenticationError) as raised:
        count_tokens("Hello, Claude", "anthropic/claude-sonnet-4-5-20250929", system="You are a scientist")
    assert raised.value.status_code == 401 and raised.value.provider == "anthropic"
    assert "invalid x-api-key" in raised.value.message


def test_gemini_counts_with_its_api(keys: None) -> None:
    with cassette("gemini_count.yaml") as session:
        counted = count_tokens("The quick brown fox jumps over the lazy dog.", "gemini/gemini-1.5-flash")
    assert counted == TokenCount(tokens=10, exact=True, framing=None,
                                 method="gemini countTokens API (the text as one user turn)")
    assert session.sent[0].uri.endswith("/v1beta/models/gemini-1.5-flash:countTokens")
    assert session.sent[0].headers["x-goog-api-key"] == "REDACTED"


def test_gemini_counts_the_system_instruction_in_a_generate_content_request(keys: None) -> None:
    conversation = [{"role": "user", "content": "What is the capital of France?"},
                    {"role": "assistant", "content": "Paris."}, {"role": "user", "content": "And of Italy?"}]
    with cassette("gemini_count_system.yaml"):  # matched on the body: systemInstruction inside the request
        counted = count_tokens(conversation, "gemini/gemini-2.5-flash", system="You are a helpful chatbot.")
    assert (counted.tokens, counted.exact, counted.method) == (23, True, "gemini countTokens API")


def test_gemini_refusing_the_key_is_an_authentication_error(keys: None) -> None:
    with cassette("gemini_bad_key.yaml"), pytest.raises(AuthenticationError) as raised:
        count_tokens("The quick brown fox jumps over the lazy dog.", "gemini/gemini-1.5-flash")
    assert raised.value.status_code == 400 and "API key not valid" in raised.value.message


def test_no_key_is_an_estimate_without_a_request(monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.pipeline import Pipeline

    monkeypatch.setattr(Pipeline, "send", no_request)
    counted = count_tokens("abcdefgh", "anthropic/claude-sonnet-4-5")  # 8 bytes: 2 tokens
    assert counted == TokenCount(tokens=2, exact=False, framing=0, method=(
        "estimate: 4 UTF-8 bytes per token (no offline tokenizer for anthropic/claude-sonnet-4-5; set "
        "ANTHROPIC_API_KEY or pass api_key= to use the count_tokens API)"))
    counted = count_tokens([{"role": "user", "content": "abcdefgh"}], "gemini/gemini-2.5-flash")
    # 2 estimated + (3 + 1 role) + 3 priming
    assert (counted.tokens, counted.exact, counted.framing) == (9, False, 7)
    assert "GEMINI_API_KEY" in counted.method


def test_offline_sends_no_request_even_with_a_key(keys: None, monkeypatch: pytest.MonkeyPatch) -> None:
    from llmclient.pipeline import Pipeline

    monkeypatch.setattr(Pipeline, "send", no_request)
    counted = count_tokens([{"role": "user", "content": "abcdefgh"}], "anthropic/claude-sonnet-4-5", offline=True)
    assert not counted.exact and "offline=True" in counted.method


def test_other_providers_are_estimated() -> None:
    counted = count_tokens("日本", "groq/llama-3.3-70b-versatile")  # 6 UTF-8 bytes
    assert counted == TokenCount(tokens=2, exact=False, framing=0, method=(
        "estimate: 4 UTF-8 bytes per token (no offline tokenizer for groq/llama-3.3-70b-versatile)"))


def test_a_model_without_a_provider_is_refused() -> None:
    for model in ("gpt-4o", "nosuch/model", "azure/", "openai/"):
        with pytest.raises(ConfigurationError):
            count_tokens("x", model)


# --- estimate_tokens ------------------------------------------------------------------------------

def test_estimate_is_utf8_bytes_over_4_rounded_up() -> None:
    assert [estimate_tokens(text) for text in ("", "abc", "abcd", "abcde", "abcd" * 10, "日本", "\ud800")] == \
        [0, 1, 1, 2, 10, 2, 1]  # "日本" is 6 bytes; a lone surrogate is one replaced byte


# --- truncate_to_tokens ---------------------------------------------------------------------------

def test_truncation_with_tiktoken_keeps_whole_tokens() -> None:
    assert truncate_to_tokens("tiktoken is great!", 3, "openai/gpt-4") == "tiktoken"  # t|ik|token
    assert truncate_to_tokens("tiktoken is great!", 5, "openai/gpt-4") == "tiktoken is great"
    assert truncate_to_tokens("tiktoken is great!", 6, "openai/gpt-4") == "tiktoken is great!"
    assert truncate_to_tokens("tiktoken is great!", 0, "openai/gpt-4") == ""


def test_truncation_never_splits_a_character() -> None:
    text = "🦜🦜 日本語 " + JAPANESE
    total = count_tokens(text, "openai/gpt-4o").tokens
    previous = ""
    for limit in range(total + 1):
        cut = truncate_to_tokens(text, limit, "openai/gpt-4o")
        assert text.startswith(cut) and "\ufffd" not in cut
        assert count_tokens(cut, "openai/gpt-4o").tokens <= limit
        assert len(cut) >= len(previous)
        previous = cut
    assert previous == text


def test_estimated_truncation_cuts_between_characters_at_a_space() -> None:
    model = "groq/llama-3.3-70b-versatile"
    assert truncate_to_tokens("hello world this is", 3, model) == "hello world"  # 12 bytes: "hello world t"
    assert truncate_to_tokens("hello world", 3, model) == "hello world"  # 11 bytes fit
    assert truncate_to_tokens("abcdefgh ijkl", 2, model) == "abcdefgh"  # 8 bytes, then a space
    assert truncate_to_tokens("éééé", 1, model) == "éé"  # 2 bytes each
    assert truncate_to_tokens("aéé", 1, model) == "aé"  # 4 bytes cut the second é: left out whole
    # 80 bytes: the space is 40 characters back, further than a word (32): cut where the bytes end
    assert truncate_to_tokens("x" * 40 + " " + "y" * 50, 20, model) == "x" * 40 + " " + "y" * 39
    assert truncate_to_tokens("x" * 40 + " " + "y" * 50, 15, model) == "x" * 40  # 60 bytes: 19 back


@pytest.mark.parametrize("bad", [-1, True, 1.5, "3", None])
def test_a_bad_max_tokens_is_refused_by_name(bad: object) -> None:
    with pytest.raises(InvalidRequestError, match="max_tokens"):
        truncate_to_tokens("text", bad, "openai/gpt-4o")  # type: ignore[arg-type]
