"""`.env`: the parser (each rule of the format, malformed lines named by line number) and where the
values count: below the real environment, above llmclient.toml, for keys and LLMCLIENT_MODEL.
Every file is written under tmp_path; the checkout's working directory is never read."""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from llmclient import Client, pipeline, transport
from llmclient.config import get_config, load_config, reset_config
from llmclient.envfile import getenv, parse
from llmclient.errors import ConfigurationError
from llmclient.providers import BUILTIN_PROVIDERS

KEY_VARS = sorted({spec.api_key_env for spec in BUILTIN_PROVIDERS if spec.api_key_env})


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """An empty working directory, no key and no llmclient setting in the real environment."""
    for name in [*KEY_VARS, "LLMCLIENT_MODEL", "LLMCLIENT_ENV_FILE", "LLMCLIENT_CONFIG"]:
        monkeypatch.delenv(name, raising=False)
    (tmp_path / ".git").mkdir()  # the configuration search stops here
    monkeypatch.chdir(tmp_path)
    reset_config()
    yield tmp_path
    reset_config()


# ---- the format -----------------------------------------------------------------------------------


def test_plain_export_spaces_and_equals_inside() -> None:
    text = "A=1\nexport B=two\n  C = three  \nURL=https://x.example/?a=b&c=d\nEMPTY=\nexport\tD=4\n"
    assert parse(text, environ={}) == {"A": "1", "B": "two", "C": "three", "URL": "https://x.example/?a=b&c=d",
                                       "EMPTY": "", "D": "4"}


def test_comments_and_blank_lines() -> None:
    text = "# a comment\n\n   \n  # indented comment\nA=1 # trailing\nB=x#not-a-comment\nC=#fff\nD= # only a comment\nE=a\t# tab\n"
    assert parse(text, environ={}) == {"A": "1", "B": "x#not-a-comment", "C": "#fff", "D": "", "E": "a"}


def test_single_quotes_are_literal() -> None:
    text = "A='a \\n b # c ${HOME}'  # comment\nB=''\n"
    assert parse(text, environ={"HOME": "/h"}) == {"A": "a \\n b # c ${HOME}", "B": ""}


def test_double_quote_escapes() -> None:
    text = 'A="line1\\nline2\\ttab \\"q\\" back\\\\slash \\$ dollar \\q"\nB="with # hash" # comment\n'
    assert parse(text, environ={}) == {"A": 'line1\nline2\ttab "q" back\\slash $ dollar \\q', "B": "with # hash"}


def test_quoted_values_span_lines() -> None:
    text = 'PEM="-----BEGIN-----\nabc\n-----END-----"\nNEXT=1\nS=\'a\nb\'\n'
    assert parse(text, environ={}) == {"PEM": "-----BEGIN-----\nabc\n-----END-----", "NEXT": "1", "S": "a\nb"}


def test_crlf_cr_and_bom() -> None:
    assert parse("\ufeffA=1\r\nB=\"x\"\r\nC=3\rD=4", environ={}) == {"A": "1", "B": "x", "C": "3", "D": "4"}


def test_expansion_environment_first_then_earlier_lines() -> None:
    text = ("ROOT=/srv\nHOME=/from-file\nA=${ROOT}/data\nB=\"${HOME}/x\"\nC='${ROOT}'\nD=${MISSING}\n"
            "E=${MISSING:-fallback}\nF=\"\\${ROOT}\"\nG=$ROOT\n")
    values = parse(text, environ={"HOME": "/real"})
    assert values["A"] == "/srv/data"
    assert values["B"] == "/real/x"  # the real environment wins here too
    assert values["C"] == "${ROOT}" and values["D"] == "" and values["E"] == "fallback"
    assert values["F"] == "${ROOT}" and values["G"] == "$ROOT"


def test_later_assignment_wins() -> None:
    assert parse("A=1\nA=2\n", environ={}) == {"A": "2"}


@pytest.mark.parametrize(("text", "line", "words"), [
    ("A=1\nsk-this-is-not-an-assignment\n", 2, "not an assignment"),
    ("A=1\n\n# c\nB 2\n", 4, "not an assignment"),
    ("1A=x\n", 1, "not a variable name"),
    ("A=1\nB=\"open\nC=2\n", 2, "never closed"),
    ("A='x' trailing\n", 1, "after the closing"),
    ("A=\"x\"y\n", 1, "after the closing"),
])
def test_malformed_line_names_file_and_line(text: str, line: int, words: str) -> None:
    with pytest.raises(ConfigurationError) as caught:
        parse(text, "/p/.env", environ={})
    message = str(caught.value)
    assert message.startswith(f"/p/.env, line {line}: ") and words in message
    assert "sk-this" not in message  # a malformed line may hold a key: never echoed


# ---- where the values count -----------------------------------------------------------------------


def _answer(seen: list[httpx.Request]) -> transport.Interceptor:
    def hook(request: httpx.Request, spec: object) -> httpx.Response:
        seen.append(request)
        body = {"id": "x", "object": "chat.completion", "model": "gpt-4o-mini", "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "hi"}, "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}}
        return httpx.Response(200, json=body, request=request)
    return hook


def _send(monkeypatch: pytest.MonkeyPatch, model: str | None = "openai/gpt-4o-mini") -> httpx.Request:
    seen: list[httpx.Request] = []
    monkeypatch.setattr(transport, "interceptor", _answer(seen))
    assert Client(model).complete("hello").text == "hi"
    assert len(seen) == 1
    return seen[0]


def test_a_key_only_in_dotenv_is_used(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\n")
    remembered: list[str] = []
    monkeypatch.setattr(pipeline, "remember_key", remembered.append)
    request = _send(monkeypatch)
    assert request.headers["authorization"] == "Bearer sk-from-dotenv"
    assert remembered == ["sk-from-dotenv"]  # the key in use: masked in a cassette like any other
    assert getenv("OPENAI_API_KEY") == "sk-from-dotenv"
    assert "OPENAI_API_KEY" not in os.environ  # an overlay: never copied into the environment


def test_the_real_environment_wins(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("OPENAI_API_KEY=sk-from-dotenv\nLLMCLIENT_MODEL=anthropic/claude-x\n")
    monkeypatch.setenv("OPENAI_API_KEY", "sk-real")
    monkeypatch.setenv("LLMCLIENT_MODEL", "openai/gpt-4o-mini")
    request = _send(monkeypatch, None)
    assert request.headers["authorization"] == "Bearer sk-real"
    assert json.loads(request.content)["model"] == "gpt-4o-mini"


def test_llmclient_model_from_dotenv_is_the_default(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The issue's case: no model given, the default and its key only in .env."""
    (project / ".env").write_text("export LLMCLIENT_MODEL=openai/gpt-4o-mini\nOPENAI_API_KEY='sk-d'\n")
    request = _send(monkeypatch, None)
    assert json.loads(request.content)["model"] == "gpt-4o-mini" and request.headers["authorization"] == "Bearer sk-d"


def test_a_key_in_dotenv_picks_the_default_provider(project: Path) -> None:
    (project / ".env").write_text("ANTHROPIC_API_KEY=sk-ant\n")
    assert get_config().default_model().startswith("anthropic/")


def test_dotenv_beats_llmclient_toml(project: Path) -> None:
    (project / "llmclient.toml").write_text('default = "anthropic/claude-x"\n')
    (project / ".env").write_text("LLMCLIENT_MODEL=openai/gpt-4o-mini\n")
    assert get_config().default_model() == "openai/gpt-4o-mini"
    assert load_config(cwd=project, environ={}).default == "openai/gpt-4o-mini"
    assert load_config(cwd=project, environ={"LLMCLIENT_MODEL": "groq/llama"}).default == "groq/llama"


def test_llmclient_config_may_be_set_in_dotenv(project: Path) -> None:
    (project / "elsewhere.toml").write_text('default = "openai/from-named-file"\n')
    (project / ".env").write_text("LLMCLIENT_CONFIG=elsewhere.toml\n")
    assert load_config(cwd=project, environ={}).default == "openai/from-named-file"


def test_bad_default_in_dotenv_names_the_file(project: Path) -> None:
    (project / ".env").write_text("LLMCLIENT_MODEL=nosuch\n")
    with pytest.raises(ConfigurationError, match=r"LLMCLIENT_MODEL \(in .*\.env\)"):
        get_config()


def test_llmclient_env_file_names_another_file(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("OPENAI_API_KEY=sk-ignored\n")
    (project / "secrets").mkdir()
    (project / "secrets" / "dev.env").write_text("OPENAI_API_KEY=sk-named\n")
    monkeypatch.setenv("LLMCLIENT_ENV_FILE", "secrets/dev.env")  # relative to the working directory
    assert _send(monkeypatch).headers["authorization"] == "Bearer sk-named"


def test_a_missing_named_file_is_an_error(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LLMCLIENT_ENV_FILE", str(project / "nope.env"))
    with pytest.raises(ConfigurationError, match=r"nope\.env \(named by LLMCLIENT_ENV_FILE\) does not exist"):
        get_config()
    with pytest.raises(ConfigurationError, match="LLMCLIENT_ENV_FILE"):
        load_config(cwd=project, environ={"LLMCLIENT_ENV_FILE": "nope.env"})


def test_no_dotenv_is_no_error(project: Path) -> None:
    with pytest.raises(ConfigurationError, match="no API key for provider 'openai'"):
        Client("openai/gpt-4o-mini").complete("hello")


def test_a_malformed_dotenv_fails_the_load(project: Path) -> None:
    (project / ".env").write_text("A=1\nOPENAI_API_KEY sk-oops\n")
    with pytest.raises(ConfigurationError) as caught:
        Client("openai/gpt-4o-mini")
    assert f"{project / '.env'}, line 2: " in str(caught.value) and "sk-oops" not in str(caught.value)


def test_not_utf8_is_an_error(project: Path) -> None:
    (project / ".env").write_bytes(b"A=\xff\n")
    with pytest.raises(ConfigurationError, match="must be UTF-8"):
        get_config()


def test_read_once_until_reset(project: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (project / ".env").write_text("OPENAI_API_KEY=sk-first\n")
    assert _send(monkeypatch).headers["authorization"] == "Bearer sk-first"
    (project / ".env").write_text("OPENAI_API_KEY=sk-second\n")
    assert _send(monkeypatch).headers["authorization"] == "Bearer sk-first"
    reset_config()
    assert _send(monkeypatch).headers["authorization"] == "Bearer sk-second"


def test_the_documented_example_parses_as_documented() -> None:
    import textwrap

    import llmclient.envfile as envfile

    example = (envfile.__doc__ or "").split("::\n", 1)[1].split("\n\n`${VAR}", 1)[0]
    assert parse(textwrap.dedent(example), environ={"HOME": "/h"}) == {
        "OPENAI_API_KEY": "sk-...", "LLMCLIENT_MODEL": "openai/gpt-4o-mini", "URL": "https://x.example/?a=b#frag",
        "GREETING": "hello\nworld", "PATTERN": "C:\\dir\\${literal}", "PEM": "-----BEGIN KEY-----\n...\n-----END KEY-----",
        "BASE": "/h/data"}
