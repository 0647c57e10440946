"""`.env` files: settings and keys for this project, below the real environment.

Which file: the one named by `LLMCLIENT_ENV_FILE` (it must exist), else `.env` in the working
directory (none there is no error). It is read once per configuration load (`get_config`;
`reset_config` forgets it) and never written into `os.environ`: a variable set in the real
environment, even to "", wins over the file; the others are an overlay that the key lookup
(`ProviderSpec.api_key`) and the configuration (`LLMCLIENT_MODEL`, `LLMCLIENT_CONFIG`, the default
model's key check) consult after the environment. Subprocesses therefore never inherit a key from
`.env`. Precedence: arguments > environment > `.env` > `llmclient.toml`.

The format::

    # a comment line; blank lines are skipped
    OPENAI_API_KEY=sk-...               # `export KEY=value` works too
    LLMCLIENT_MODEL = openai/gpt-4o-mini  # spaces around "=" are dropped; " #" starts a comment
    URL=https://x.example/?a=b#frag     # "=" and a "#" not after a space stay in the value
    GREETING="hello\\nworld"             # double quotes: \\n \\t \\r \\" \\\\ \\$ are escapes
    PATTERN='C:\\dir\\${literal}'         # single quotes: exactly what is written
    PEM="-----BEGIN KEY-----
    ...
    -----END KEY-----"                  # a quoted value may span lines
    BASE=${HOME}/data                   # ${VAR} and ${VAR:-default}, unquoted and in double quotes

`${VAR}` takes VAR from the real environment first, then from the lines above it in the file;
undefined, it is "" (or the default). `$VAR` without braces is not expanded. UTF-8 with or without
a BOM; LF, CRLF or CR line ends. Later assignments of a name replace earlier ones. A line that is
none of these is a `ConfigurationError` naming the file and line (never its value: it may hold a key).
"""

from __future__ import annotations

import os
import re
import threading
from collections.abc import Mapping
from pathlib import Path

from llmclient.errors import ConfigurationError

ENV_FILE_ENV = "LLMCLIENT_ENV_FILE"

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_ASSIGN = re.compile(r"[ \t]*(?:export[ \t]+)?([^=\s]+)[ \t]*=")
_TOKENS = re.compile(r"\\(.)|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}", re.DOTALL)  # an escape, or ${VAR[:-default]}
_ESCAPES = {"n": "\n", "t": "\t", "r": "\r", '"': '"', "\\": "\\", "$": "$"}
_TRAILER = re.compile(r"[ \t]*(?:#.*)?")


def parse(text: str, source: str = "<.env>", environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The assignments in `text`, in order; `${VAR}` looks in `environ` (default os.environ) first."""
    env = os.environ if environ is None else environ
    lines = text.removeprefix("\ufeff").replace("\r\n", "\n").replace("\r", "\n").split("\n")
    values: dict[str, str] = {}
    index = 0
    while index < len(lines):
        start = index + 1
        line = lines[index]
        index += 1
        if not line.strip() or line.lstrip().startswith("#"):
            continue

        def fail(problem: str) -> ConfigurationError:
            return ConfigurationError(f"{source}, line {start}: {problem}")

        match = _ASSIGN.match(line)
        if match is None:
            raise fail("not an assignment: expected NAME=value (or `export NAME=value`, or a # comment)")
        name, raw = match.group(1), line[match.end():]
        rest = raw.lstrip(" \t")
        if not _NAME.fullmatch(name):
            raise fail("the name before '=' is not a variable name (letters, digits and _, not starting with a digit)")
        if rest[:1] in ("'", '"'):
            quote, body = rest[0], rest[1:]
            while (end := _closing(body, quote)) < 0:
                if index >= len(lines):
                    raise fail(f"the {quote} quote opening {name}'s value is never closed")
                body += "\n" + lines[index]
                index += 1
            value, after = body[:end], body[end + 1:]
            if not _TRAILER.fullmatch(after):
                raise fail(f"unexpected text after the closing {quote} quote of {name}'s value (a comment needs '#')")
            if quote == '"':
                value = _decode(value, True, env, values)
        else:
            comment = re.search(r"[ \t]#", raw)  # `A= # c` is empty; `A=#fff` is not a comment
            value = _decode((raw[: comment.start()] if comment else raw).strip(" \t"), False, env, values)
        values[name] = value
    return values


def _closing(body: str, quote: str) -> int:
    """Where the closing quote is in `body` (-1: not on these lines); `\\"` does not close."""
    position = 0
    while (found := body.find(quote, position)) >= 0:
        if quote == '"':
            backslashes = len(body[:found]) - len(body[:found].rstrip("\\"))
            if backslashes % 2:
                position = found + 1
                continue
        return found
    return -1


def _decode(value: str, escapes: bool, env: Mapping[str, str], earlier: Mapping[str, str]) -> str:
    """`value` with `${VAR}` expanded and, when `escapes`, the backslash escapes decoded (one pass,
    so an escaped `\\$` never starts an expansion)."""

    def one(match: re.Match[str]) -> str:
        if match.group(1) is not None:
            return _ESCAPES.get(match.group(1), match.group(0)) if escapes else match.group(0)
        name, default = match.group(2), match.group(3)
        found = env[name] if name in env else earlier.get(name)
        return found if found else (default or "")

    return _TOKENS.sub(one, value)


def locate(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> Path | None:
    """The file to read: `LLMCLIENT_ENV_FILE` (relative to `cwd`), else `cwd/.env` if it exists."""
    env = os.environ if environ is None else environ
    start = Path.cwd() if cwd is None else Path(cwd)
    named = env.get(ENV_FILE_ENV)
    if named:
        file = start / Path(named).expanduser()
        if not file.is_file():
            raise ConfigurationError(f"the .env file {file} (named by {ENV_FILE_ENV}) does not exist")
        return file
    file = start / ".env"
    return file if file.is_file() else None


def read(file: Path, environ: Mapping[str, str] | None = None) -> dict[str, str]:
    """The assignments in `file` (see `parse`)."""
    try:
        text = file.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigurationError(f"{file}: a .env file must be UTF-8 ({exc.reason} at byte {exc.start})") from exc
    except OSError as exc:
        raise ConfigurationError(f"{file}: cannot read the .env file: {exc.strerror or exc}") from exc
    return parse(text, str(file), environ)


def load(cwd: Path | None = None, environ: Mapping[str, str] | None = None) -> tuple[Path | None, dict[str, str]]:
    """The file `locate` finds and its assignments ((None, {}) when there is none)."""
    file = locate(cwd, environ)
    return (file, read(file, environ)) if file is not None else (None, {})


_lock = threading.Lock()
_process: tuple[Path | None, Mapping[str, str]] | None = None


def process_env() -> tuple[Path | None, Mapping[str, str]]:
    """The process's `.env` (from the working directory and os.environ), read once; `forget` rereads."""
    global _process
    if _process is None:
        with _lock:
            if _process is None:
                _process = load()
    return _process


def forget() -> None:
    global _process
    with _lock:
        _process = None


def getenv(name: str) -> str | None:
    """`name` from the real environment, else from the process's `.env`, else None."""
    if name in os.environ:
        return os.environ[name]
    return process_env()[1].get(name)
