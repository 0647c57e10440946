"""Secrets in recorded traffic: masked before a cassette is written, found in files before they
are committed.

Masking. Every key llmclient sent inside a cassette block (`add_key`), and every value of a
request header whose name says it carries a credential (`x-custom-auth`, `x-api-token`...), is
replaced by REDACTED wherever it appears: as is, JSON-escaped (`\\u0073k-...`, `\\/`),
URL-encoded, as an HTML character reference, in base64 (alone, or inside a longer base64 string
such as HTTP Basic credentials; standard and URL-safe alphabets), and in UTF-16; in text and in
binary bodies alike (a body that is not UTF-8 has the key's bytes masked in place: nothing is
given up on). A header or query value that holds the key is replaced whole, whatever its name.
Strings of the known key formats (`SECRET_PATTERNS`) are masked whoever they belong to. A
compressed response body is decoded here, not by vcrpy (see `_undo_encoding`), and stored decoded;
one that cannot be decoded is not stored (a notice replaces it): a key inside could not be masked.

Finding secrets in committed files is `llmclient.secret_scan`.
"""

from __future__ import annotations

import base64
import binascii
import bisect
import functools
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, AnyStr, Generic
from urllib.parse import unquote_plus, urlsplit, urlunsplit

from llmclient.cassette_match import secret_query

REDACTED = "REDACTED"

SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "api-key",
        "x-goog-api-key",
        "x-goog-user-project",
        "cookie",
        "set-cookie",
        "openai-organization",
        "openai-project",
        "anthropic-organization-id",
    }
)
# A header whose name has one of these words (split on - and _) carries a credential.
_CREDENTIAL_NAME = re.compile(r"(?:^|[-_])(?:auth|authentication|authorization|apikey|api-?key|key|token|secret|"
                              r"password|passwd|credentials?|signature|sig|session|cookie)(?:$|[-_])", re.IGNORECASE)

# Key formats of the providers we talk to, and bearer tokens. A provider's error body may echo
# a key's ends ("Incorrect API key provided: sk-abc...WXYZ"): masked too.
# Each starts where no letter or digit comes before it: "task-management-application" holds no key.
SECRET_PATTERNS: dict[str, re.Pattern[str]] = {
    "anthropic key": re.compile(r"(?<![A-Za-z0-9])sk-ant-[A-Za-z0-9_-]{16,}"),
    "openrouter key": re.compile(r"(?<![A-Za-z0-9])sk-or-v1-[A-Za-z0-9]{16,}"),
    "openai key": re.compile(r"(?<![A-Za-z0-9])sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{16,}"),
    "echoed key": re.compile(r"\b(?:sk|gsk|xai)[-_][A-Za-z0-9_-]{0,12}\*{2,}[A-Za-z0-9]{2,8}|(?<![A-Za-z0-9])sk-[A-Za-z0-9_-]{1,12}\.{3}[A-Za-z0-9]{2,8}"),
    "google key": re.compile(r"(?<![A-Za-z0-9])AIza[0-9A-Za-z_-]{30,}"),
    "groq key": re.compile(r"(?<![A-Za-z0-9])gsk_[A-Za-z0-9]{16,}"),
    "xai key": re.compile(r"(?<![A-Za-z0-9])xai-[A-Za-z0-9]{16,}"),
    "hugging face token": re.compile(r"(?<![A-Za-z0-9])hf_[A-Za-z0-9]{30,}"),
    "github token": re.compile(r"(?<![A-Za-z0-9])(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{40,})"),
    "aws access key id": re.compile(r"(?<![A-Za-z0-9])(?:AKIA|ASIA)[A-Z0-9]{16}(?![A-Za-z0-9])"),
    "json web token": re.compile(r"(?<![A-Za-z0-9_-])eyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]{16,}"),
    "bearer token": re.compile(r"Bearer\s+(?!REDACTED)[A-Za-z0-9._~+/=-]{12,}"),
}
PLACEHOLDER = re.compile(r"REDACTED|PLACEHOLDER|placeholder|test-key|sk-test|dummy|fake", re.IGNORECASE)
# Found by scan_secrets only (masking needs the key itself): a lone run of 32-64 letters and
# digits with upper case, lower case and a digit, not part of a longer base64 or dotted string.
KEY_LIKE = re.compile(r"(?<![A-Za-z0-9+/_.%-])(?=[a-z0-9]*[A-Z])(?=[A-Z0-9]*[a-z])(?=[A-Za-z]*[0-9])"
                       r"[A-Za-z0-9]{32,64}(?![A-Za-z0-9+/=_-])(?!\.[A-Za-z0-9])")

_keys_lock = threading.Lock()
_keys_in_use: set[str] = set()
_NOT_KEYS = frozenset({"replay-placeholder-key", "no-key-needed", REDACTED})
_SCHEME = re.compile(r"^(?:Bearer|Basic|Token|Key|ApiKey|Api-Key)\s+", re.IGNORECASE)


def add_key(key: str) -> None:
    """Mask `key` from now on wherever it would be recorded (a placeholder or a short string is ignored)."""
    if len(key) >= 8 and key not in _NOT_KEYS and key not in _keys_in_use:
        with _keys_lock:
            _keys_in_use.add(key)


# The HTTP libraries' loggers: httpx logs each request's URL at INFO (with a key sent in its query),
# httpcore the raw headers at DEBUG (with a key a server echoes). A filter on a logger does not see
# its children's records, so each is named.
_HTTP_LOGGERS = ("httpx", "httpcore.connection", "httpcore.http11", "httpcore.http2", "httpcore.proxy", "httpcore.socks")
_log_filter_installed = False


class _MaskingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask_secrets(message)
        if masked != message:
            record.msg, record.args = masked, ()
        return True


def guard_http_logs(key: str) -> None:
    """Mask `key` in the HTTP libraries' log lines (and, as `add_key`, wherever a cassette would
    record it). Called once per key a pipeline sends; the filter costs nothing while those loggers
    are off."""
    global _log_filter_installed
    add_key(key)
    if not _log_filter_installed:
        with _keys_lock:
            if not _log_filter_installed:
                for name in _HTTP_LOGGERS:
                    logging.getLogger(name).addFilter(_MaskingFilter())
                _log_filter_installed = True


def keys_in_use() -> frozenset[str]:
    return frozenset(_keys_in_use)


def secret_headers() -> frozenset[str]:
    """The header names that carry a secret: the usual ones and every registered provider's key header."""
    from llmclient.providers import REGISTRY

    return SECRET_HEADERS | {spec.key_header.lower() for spec in REGISTRY.values() if spec.key_header}


def credential_header(name: str, names: frozenset[str] | None = None) -> bool:
    """Whether a header of this name carries a credential: a known one, or one its name says does."""
    return name.lower() in (names if names is not None else secret_headers()) or bool(_CREDENTIAL_NAME.search(name))


# --- masking -------------------------------------------------------------------------------------

_URLSAFE = str.maketrans("+/", "-_")


def _base64_forms(raw: bytes) -> list[str]:
    """Base64 of `raw` alone (padded or not), and the part of it that does not depend on what
    surrounds `raw` in a longer base64 string, at each of the three alignments."""
    forms: list[str] = []
    for shift in range(3):
        encoded = base64.b64encode(b"\0" * shift + raw).decode("ascii")
        if not shift:
            forms += [encoded, encoded.rstrip("=")]
        core = encoded[4 if shift else 0: (len(raw) + shift) // 3 * 4]
        if len(core) >= 8:
            forms.append(core)
    return forms + [form.translate(_URLSAFE) for form in forms]


# An escaped character: JSON (\\u0073, \\/, with any number of backslashes), URL (%73), HTML (&#115;).
_ESCAPE = r"\\+u[0-9a-fA-F]{4}|\\+/|%[0-9a-fA-F]{2}|&#[0-9]{1,7};|&#[xX][0-9a-fA-F]{1,6};"


def _escaped_code(escape: str) -> int:
    if escape.startswith("\\"):
        escape = escape.lstrip("\\")
        return ord("/") if escape == "/" else int(escape[1:], 16)
    if escape.startswith("%"):
        return int(escape[1:], 16)
    return int(escape[3:-1], 16) if escape[2] in "xX" else int(escape[2:-1])


@dataclass(frozen=True)
class _Masker(Generic[AnyStr]):
    """Masks the keys (`literals`: each key and its base64 forms), as they are and with any of
    their characters escaped, and the strings of the known key formats (`patterns`), in text or in
    bytes. Plain searches only, then one pass over the escapes: linear in the body's size."""

    literals: tuple[AnyStr, ...]
    escape: re.Pattern[AnyStr]
    char: Callable[[int], AnyStr]
    patterns: tuple[re.Pattern[AnyStr], ...]
    placeholder: re.Pattern[AnyStr]
    redacted: AnyStr

    def holds_key(self, value: AnyStr) -> bool:
        if any(literal in value for literal in self.literals):
            return True
        decoded = self._unescaped(value)
        return decoded is not None and any(literal in decoded[0] for literal in self.literals)

    def mask_keys(self, value: AnyStr) -> AnyStr:
        for literal in self.literals:
            value = value.replace(literal, self.redacted)
        decoded = self._unescaped(value)
        if decoded is None:
            return value
        text, segments = decoded
        spans = sorted(self._span(segments, found, found + len(literal)) for literal in self.literals
                       for found in _occurrences(text, literal))
        merged: list[list[int]] = []
        for start, end in spans:
            if merged and start <= merged[-1][1]:
                merged[-1][1] = max(merged[-1][1], end)
            else:
                merged.append([start, end])
        pieces: list[AnyStr] = []
        done = 0
        for start, end in merged:
            pieces += [value[done:start], self.redacted]
            done = end
        pieces.append(value[done:])
        return value[:0].join(pieces)

    def mask(self, value: AnyStr) -> AnyStr:
        value = self.mask_keys(value)
        for pattern in self.patterns:
            value = pattern.sub(lambda m: m.group(0) if self.placeholder.search(m.group(0)) else self.redacted, value)
        return value

    def _unescaped(self, value: AnyStr) -> tuple[AnyStr, list[tuple[int, int, int]]] | None:
        """`value` with its escaped ASCII characters decoded (None if it has none), and its segments:
        (start in the decoded text, start in `value`, length in `value`, or -1 for a verbatim run)."""
        pieces: list[AnyStr] = []
        segments: list[tuple[int, int, int]] = []
        done = at = 0
        for match in self.escape.finditer(value):
            escape = match.group(0)
            code = _escaped_code(escape if isinstance(escape, str) else escape.decode("ascii"))
            if code >= 0x80:
                continue
            if match.start() > done:
                segments.append((at, done, -1))
                pieces.append(value[done:match.start()])
                at += match.start() - done
            segments.append((at, match.start(), match.end() - match.start()))
            pieces.append(self.char(code))
            at, done = at + 1, match.end()
        if not segments:
            return None
        segments.append((at, done, -1))
        pieces.append(value[done:])
        return value[:0].join(pieces), segments

    @staticmethod
    def _span(segments: list[tuple[int, int, int]], start: int, end: int) -> tuple[int, int]:
        """The part of the original text that decoded to text[start:end]."""
        first = segments[bisect.bisect_right(segments, (start, 1 << 62)) - 1]
        last = segments[bisect.bisect_right(segments, (end - 1, 1 << 62)) - 1]
        begin = first[1] + (start - first[0] if first[2] < 0 else 0)
        return begin, last[1] + (end - last[0] if last[2] < 0 else last[2])


def _occurrences(text: AnyStr, literal: AnyStr) -> Iterator[int]:
    found = text.find(literal)
    while found >= 0:
        yield found
        found = text.find(literal, found + 1)


_BYTE_PATTERNS = tuple(re.compile(p.pattern.encode("ascii")) for p in SECRET_PATTERNS.values())
_BYTE_PLACEHOLDER = re.compile(PLACEHOLDER.pattern.encode("ascii"), re.IGNORECASE)
_TEXT_ESCAPE, _BYTE_ESCAPE = re.compile(_ESCAPE), re.compile(_ESCAPE.encode("ascii"))


@functools.lru_cache(maxsize=16)
def _maskers(keys: frozenset[str]) -> tuple[_Masker[str], _Masker[bytes]]:
    forms = sorted({form for key in keys for form in [key, *_base64_forms(key.encode("utf-8"))]}, key=len, reverse=True)
    wide = tuple(key.encode(encoding) for key in sorted(keys, key=len, reverse=True) for encoding in ("utf-16-le", "utf-16-be"))
    return (
        _Masker(tuple(forms), _TEXT_ESCAPE, chr, tuple(SECRET_PATTERNS.values()), PLACEHOLDER, REDACTED),
        _Masker(tuple(form.encode("utf-8") for form in forms) + wide, _BYTE_ESCAPE, lambda code: bytes((code,)),
                _BYTE_PATTERNS, _BYTE_PLACEHOLDER, REDACTED.encode()),
    )


def _text_masker() -> _Masker[str]:
    return _maskers(keys_in_use())[0]


def _bytes_masker() -> _Masker[bytes]:
    return _maskers(keys_in_use())[1]


def holds_key_in_use(text: str | bytes) -> bool:
    """Whether `text` holds a key llmclient sent inside a cassette block, in any form masked."""
    return _bytes_masker().holds_key(text) if isinstance(text, bytes) else _text_masker().holds_key(text)


def mask_secrets(text: str) -> str:
    """`text` with every key in use and every key-like string replaced by REDACTED."""
    return _text_masker().mask(text)


def mask_with(keys: frozenset[str], text: str) -> str:
    """`text` with `keys` (and every key-like string) masked, in every form `mask_secrets` masks."""
    return _maskers(keys)[0].mask(text) if keys else _text_masker().mask(text)


def mask_secret_bytes(body: bytes) -> bytes:
    """`mask_secrets` on bytes of any encoding: the secrets' bytes are masked in place."""
    return _bytes_masker().mask(body)


def scrubbed_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Request `headers` with every secret one's value (by name, or holding a key in use) replaced
    by REDACTED. The value of a credential header is masked from then on wherever it appears."""
    names = secret_headers()
    for name, value in headers.items():
        if credential_header(str(name), names):
            for credential in _credentials(str(value)):
                add_key(credential)
    masker = _text_masker()
    return {str(name): REDACTED if credential_header(str(name), names) or masker.holds_key(str(value))
            else masker.mask(str(value)) for name, value in headers.items()}


def _credentials(value: str) -> list[str]:
    """The secrets in a credential header's value: past its scheme, and a Basic one's password.
    A scheme of the provider's own (`ProviderSpec.key_prefix`, "sso-key <key>") is not in
    `_SCHEME`: the word after any leading word is taken too, so the bare key is masked where a
    server echoes it."""
    credential = _SCHEME.sub("", value).strip()
    found = [credential]
    scheme_and_token = re.fullmatch(r"\S+\s+(\S+)", credential)
    if scheme_and_token is not None:
        found.append(scheme_and_token.group(1))
    if value[:6].lower() == "basic ":
        try:
            found.append(base64.b64decode(credential, validate=True).decode("utf-8").partition(":")[2])
        except (binascii.Error, ValueError):
            pass
    return [secret for secret in found if not PLACEHOLDER.search(secret)]


def scrubbed_uri(uri: str) -> str:
    """`uri` with secret query values (by name, or holding a key in use) replaced by REDACTED, and
    every key masked elsewhere in it (its path)."""
    masker = _text_masker()
    parts = urlsplit(uri)
    if parts.query:
        names = {name.lower() for name in secret_query()}
        pieces = []
        for piece in parts.query.split("&"):  # each kept as encoded, unless masked
            name, equals, value = piece.partition("=")
            if unquote_plus(name).lower() in names and not PLACEHOLDER.search(unquote_plus(value)):
                add_key(unquote_plus(value))  # masked wherever else it appears
                masker = _text_masker()
            secret = unquote_plus(name).lower() in names or masker.holds_key(piece) or masker.holds_key(unquote_plus(value))
            pieces.append(f"{name}{equals or '='}{REDACTED}" if secret else masker.mask(piece))
        uri = urlunsplit(parts._replace(query="&".join(pieces)))
    return masker.mask(uri)


def scrub_response(response: dict[str, Any]) -> dict[str, Any]:
    """vcrpy's recorded response (after its decoding) with every secret masked, in place."""
    headers: dict[str, Any] = response.get("headers") or {}
    body = response.get("body") or {}
    raw = body.get("string")
    if isinstance(raw, bytes) and raw:
        raw = body["string"] = _undo_encoding(headers, raw)
    names = secret_headers()
    masker = _text_masker()
    for name, values in list(headers.items()):
        values = [str(value) for value in (values if isinstance(values, list) else [values])]
        if credential_header(name, names) or any(masker.holds_key(value) for value in values):
            headers[name] = [REDACTED]
        else:
            headers[name] = [masker.mask(value) for value in values]
    if isinstance(raw, bytes):
        body["string"] = mask_secret_bytes(raw)
    elif isinstance(raw, str):
        body["string"] = mask_secrets(raw)
    if body.get("string") != raw:
        _set_header(headers, "content-length", str(len(_as_bytes(body["string"]))))
    return response


def _as_bytes(value: str | bytes) -> bytes:
    return value if isinstance(value, bytes) else value.encode("utf-8")


def _set_header(headers: dict[str, Any], name: str, value: str | None) -> None:
    for existing in [key for key in headers if key.lower() == name]:
        del headers[existing]
        if value is not None:
            headers[existing] = [value]
            return


_FORMATS = {"gzip": (47,), "x-gzip": (47,), "deflate": (47, -15)}  # zlib wbits: 47 = gzip or zlib, -15 = raw deflate


def _undo_encoding(headers: dict[str, Any], body: bytes) -> bytes:
    """`body` with its content-encodings undone, and the header dropped. llmclient decodes, not
    vcrpy, which records a body it fails to decode (a gzip body cut short, that httpx reads) as it
    came, compressed, the key inside out of the scrubber's sight. Here gzip and deflate are decoded
    leniently (as far as a cut-short body goes; stacked encodings in order); a body not compressed
    after all is kept as it is; one corrupt, or in an encoding not decoded here, is not recorded."""
    encodings = [part.strip().lower() for name, values in headers.items() if name.lower() == "content-encoding"
                 for value in (values if isinstance(values, list) else [values]) for part in str(value).split(",")]
    encodings = [encoding for encoding in encodings if encoding not in ("", "identity")]
    if not encodings:
        return body
    for encoding in reversed(encodings):
        decoded = decompressed(body, _FORMATS[encoding]) if encoding in _FORMATS else None
        if decoded is None and encoding in _FORMATS and not compressed(body):
            decoded = body  # labelled compressed, sent plain
        if decoded is None:
            body = (f"{REDACTED}: a {encoding}-encoded body llmclient could not decode, so could not scrub "
                    f"of keys, was not recorded").encode()
            break
        body = decoded
    _set_header(headers, "content-encoding", None)
    _set_header(headers, "content-length", str(len(body)))
    return body


def decompressed(data: bytes, formats: tuple[int, ...] = (47, -15)) -> bytes | None:
    """gzip, zlib (`wbits` 47 detects either) or raw deflate (-15) data decompressed, or None: as
    much as there is if it is cut short, every member of a multi-member gzip body."""
    for wbits in formats:
        members: list[bytes] = []
        rest = data
        try:
            while rest:
                decoder = zlib.decompressobj(wbits)
                members.append(decoder.decompress(rest) + decoder.flush())
                rest = decoder.unused_data if decoder.eof else b""
        except zlib.error:
            if not members:
                continue  # not this format; junk after a whole member is dropped
        return b"".join(members)
    return None


def compressed(data: bytes) -> bool:
    """Whether `data` starts as gzip or zlib data does."""
    return data[:2] == b"\x1f\x8b" or len(data) > 1 and data[0] & 0x0F == 8 and (data[0] << 8 | data[1]) % 31 == 0


# --- finding -------------------------------------------------------------------------------------
