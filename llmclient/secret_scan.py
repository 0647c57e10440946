"""Secrets in files about to be committed (`scan_secrets`, the `llmclient scan-secrets` lint).

Finding (`scan_secrets`): strings of the known key formats, key-like tokens (32 to 64 letters and
digits of mixed case, as Mistral's or Together's keys), unredacted secret headers and key query
parameters (`key`, `api_key`, `api-key`, `access_token`, `token`, `sig`, and every registered
provider's), each also looked for in the JSON-unescaped, URL-decoded, HTML-unescaped and
base64-decoded forms of a line, and, in YAML files, inside `!!binary` scalars (decoded, and
decompressed when gzip or zlib data) and multi-line or double-quoted ones.
"""

from __future__ import annotations

import base64
import binascii
import functools
import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from llmclient.cassette_match import secret_query
from llmclient.scrub import KEY_LIKE, PLACEHOLDER, SECRET_PATTERNS, compressed, credential_header, decompressed, secret_headers


@dataclass(frozen=True)
class SecretFinding:
    path: Path
    line: int
    kind: str
    excerpt: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.kind}: {self.excerpt}"


_HEADER_LINE = re.compile(r"^\s*-?\s*['\"]?([A-Za-z][A-Za-z0-9_-]*)['\"]?\s*:\s*(.*)$")
_BASE64_TOKEN = re.compile(r"(?<![A-Za-z0-9+/_-])[A-Za-z0-9+/_-]{16,512}={0,2}(?![A-Za-z0-9+/=_-])")
_JSON_ESCAPE = re.compile(r"\\+u([0-9a-fA-F]{4})")
_BINARY_TAG = "tag:yaml.org,2002:binary"


@functools.lru_cache(maxsize=4)
def _query_secret(names: frozenset[str]) -> re.Pattern[str]:
    return re.compile(r"[?&](" + "|".join(map(re.escape, sorted(names, key=len, reverse=True))) + r")=([^&\s'\"]+)",
                      re.IGNORECASE)


def scan_secrets(path: str | Path) -> list[SecretFinding]:
    """Key-like strings, unredacted secret headers and key query parameters in a file or a tree."""
    root = Path(path)
    files = sorted(p for p in root.rglob("*") if p.is_file()) if root.is_dir() else [root]
    names = secret_headers()
    query = _query_secret(secret_query())
    findings: list[SecretFinding] = []
    for file in files:
        try:
            text = file.read_bytes().decode("utf-8", errors="replace")
        except FileNotFoundError:  # gone since the tree was listed
            continue
        lines = text.splitlines()
        found: list[SecretFinding] = []
        for number, line in enumerate(lines, 1):
            found += _line_findings(file, number, line, lines[number] if number < len(lines) else "", names, query)
        seen = {(f.kind, f.excerpt) for f in found}
        found += [f for f in _yaml_findings(file, text, query) if (f.kind, f.excerpt) not in seen]
        findings += _unique(found)
    return findings


def _unique(findings: list[SecretFinding]) -> list[SecretFinding]:
    return list(dict.fromkeys(findings))


def _line_findings(file: Path, number: int, line: str, next_line: str, names: frozenset[str],
                   query: re.Pattern[str]) -> list[SecretFinding]:
    found = [SecretFinding(file, number, kind, excerpt) for kind, excerpt in _text_findings(line, query)]
    header = _HEADER_LINE.match(line)
    if header and (header.group(1).lower() in names or "-" in header.group(1) and credential_header(header.group(1), names)):
        # YAML puts a header's values either on the same line ([value]) or on the next ("- value").
        value = header.group(2).strip() or (next_line.strip().lstrip("-").strip() if next_line.lstrip().startswith("-") else "")
        value = value.strip("[]'\" ")
        if value and not PLACEHOLDER.search(value):
            found.append(SecretFinding(file, number, f"{header.group(1).lower()} header", _redacted_excerpt(value)))
    return found


def _text_findings(text: str, query: re.Pattern[str]) -> Iterator[tuple[str, str]]:
    """(kind, excerpt) of each secret in `text` or in a decoded form of it."""
    seen: set[str] = set()
    for form, decoded in _decoded_forms(text):
        for kind, secret in _secrets_in(decoded, query):
            if secret not in seen:
                seen.add(secret)
                yield kind + (f" ({form})" if form else ""), _redacted_excerpt(secret)


def _decoded_forms(text: str) -> Iterator[tuple[str, str]]:
    yield "", text
    if "\\" in text:
        yield "JSON-escaped", _JSON_ESCAPE.sub(lambda m: chr(int(m.group(1), 16)), re.sub(r"\\+/", "/", text))
    if "%" in text:
        yield "URL-encoded", unquote(text)
    if "&" in text:
        yield "HTML-escaped", html.unescape(text)
    for token in _BASE64_TOKEN.findall(text):
        decoded = _base64_text(token)
        if decoded is not None:
            yield "base64-encoded", decoded


def _base64_text(token: str) -> str | None:
    try:
        raw = base64.b64decode(token.translate(str.maketrans("-_", "+/")) + "=" * (-len(token) % 4), validate=True)
    except (binascii.Error, ValueError):
        return None
    printable = sum(32 <= byte < 127 for byte in raw)
    return raw.decode("ascii", errors="replace") if raw and printable >= 0.9 * len(raw) else None


def _secrets_in(text: str, query: re.Pattern[str]) -> Iterator[tuple[str, str]]:
    for kind, pattern in SECRET_PATTERNS.items():
        for match in pattern.finditer(text):
            if not PLACEHOLDER.search(match.group(0)):
                yield kind, match.group(0)
    for match in KEY_LIKE.finditer(text):
        yield "key-like token", match.group(0)
    for match in query.finditer(text):
        if not PLACEHOLDER.search(match.group(2)):
            yield f"{match.group(1).lower()}= query parameter", match.group(2)


def _yaml_findings(file: Path, text: str, query: re.Pattern[str]) -> list[SecretFinding]:
    """Secrets inside YAML scalars a line does not show whole: `!!binary` (decoded, gunzipped),
    double-quoted (escapes resolved) and multi-line ones."""
    if file.suffix not in (".yaml", ".yml") and "!!binary" not in text:
        return []
    import yaml

    try:
        root = yaml.compose(text, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    except yaml.YAMLError:
        return []
    found = []
    for node in _scalars(root):
        if node.tag == _BINARY_TAG:
            value, form = _binary_text(node.value)
        elif node.style == '"' or node.start_mark.line != node.end_mark.line:
            value, form = node.value, ""
        else:
            continue
        for kind, excerpt in _text_findings(value, query):
            found.append(SecretFinding(file, node.start_mark.line + 1, kind + form, excerpt))
    return found


def _scalars(node: Any) -> Iterator[Any]:
    stack = [node] if node is not None else []
    while stack:
        current = stack.pop()
        if isinstance(current.value, str):
            yield current
        else:
            for item in current.value:
                stack.extend(item if isinstance(item, tuple) else [item])


def _binary_text(value: str) -> tuple[str, str]:
    try:
        raw = base64.b64decode("".join(value.split()))
    except (binascii.Error, ValueError):
        return "", ""
    if compressed(raw):
        decoded = decompressed(raw)
        if decoded:
            return decoded.decode("utf-8", errors="replace"), " (in a compressed binary body)"
    return raw.decode("utf-8", errors="replace"), " (in a binary body)"


def _redacted_excerpt(secret: str) -> str:
    """Enough to find the secret, not enough to use it."""
    return secret[:6] + "..." if len(secret) > 6 else "..."
