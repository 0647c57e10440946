"""Secrets in record mode: a loopback provider that echoes the key it receives in every way it can
(raw, JSON-escaped, base64, URL-encoded, HTML references, in headers of any name, in a cookie, in
a gzip body, in a latin-1 error body vcrpy stores as `!!binary`), recorded through `use_cassette`
with the key sent every way llmclient sends one (Bearer, a query parameter, a custom header, a
key without a known prefix): the written cassette holds the key in none of its forms, and replays
without it. Then each of those traces, planted by hand in a cassette, is caught by `scan_secrets`."""

from __future__ import annotations

import base64
import gzip
import html
import json
import logging
import re
import threading
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import parse_qsl, quote, quote_plus, unquote, urlsplit

import pytest
import yaml

from llmclient import (
    AuthenticationError,
    Client,
    ProviderSpec,
    register_provider,
    scan_secrets,
    unregister_provider,
    use_cassette,
)
from llmclient.cassettes import register_matchers, vcr_config
from llmclient.scrub import (
    REDACTED,
    add_key,
    mask_secret_bytes,
    scrub_response,
    scrubbed_headers,
    scrubbed_uri,
)

# Invented keys, one per shape: an OpenAI-style key, an Azure-SAS-style signature whose `/`, `+`
# and `=` make its URL-encoded and JSON-escaped forms differ from it, and a prefix-less key of 32
# letters and digits (Mistral, Together).
OPENAI_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
SIGNATURE = "q7Vb/Xn2+Lm9Rt4=Kp8/Wd3+Hs6Jf1Zc5Ye0Ga"
PREFIXLESS = "Xq7Lm2Vb9Rt4Kp8Wd3Hs6Jf1Zc5Ye0Ga"
OTHER_SECRET = "tenant-secret-Hn4Jk7Lp2Qr5St8Vw"


def url_lower(key: str) -> str:
    """URL-encoded with lower-case hex digits."""
    return re.sub(r"%[0-9A-F]{2}", lambda m: m.group(0).lower(), quote(key, safe=""))


def json_escaped(key: str) -> str:
    """Every character as a JSON \\uXXXX escape."""
    return "".join(f"\\u{ord(c):04x}" for c in key)


def forms(key: str) -> list[str]:
    """The forms of `key` that must not appear anywhere in a recording."""
    raw = key.encode()
    b64 = base64.b64encode(raw).decode()
    return sorted({
        key,
        b64, b64.rstrip("="), base64.urlsafe_b64encode(raw).decode().rstrip("="),
        base64.b64encode(b"user:" + raw).decode()[8:-4],  # inside HTTP Basic credentials (an unaligned part)
        quote(key, safe=""), url_lower(key), quote_plus(key),
        json_escaped(key), key.replace("/", "\\/"),
    })


def echo(key: str) -> str:
    """The key in every textual form (as JSON string content: escapes are left for the parser)."""
    raw = key.encode()
    return " | ".join([
        f"raw {key}",
        f"escaped {json_escaped(key)}",
        f"first-escaped {json_escaped(key[0])}{key[1:].replace('/', chr(92) + '/')}",
        f"base64 {base64.b64encode(raw).decode()}",
        f"base64url {base64.urlsafe_b64encode(raw).decode().rstrip('=')}",
        f"basic {base64.b64encode(b'user:' + raw).decode()}",
        f"url {quote(key, safe='')} lower {url_lower(key)} plus {quote_plus(key)}",
        f"html {''.join(f'&#{ord(c)};' for c in key)}",
    ])


# Compressed bodies (each readable by httpx): gzip, gzip cut short (its CRC and size trailer lost:
# vcrpy's own decoder gives up on it and would record it compressed), gzip twice, zlib deflate.
COMPRESSED = {
    "gzip": ("gzip", gzip.compress),
    "gzip-cut": ("gzip", lambda data: gzip.compress(data)[:-8]),
    "gzip-twice": ("gzip, gzip", lambda data: gzip.compress(gzip.compress(data))),
    "deflate": ("deflate", zlib.compress),
}


class _Echo(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint that echoes the key it received everywhere it can. The prompt
    picks the body: "json" (200), "latin1" (a 401 in latin-1) or, compressed, one of `COMPRESSED`."""

    received: ClassVar[list[str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["content-length"])))
        query = dict(parse_qsl(urlsplit(self.path).query))
        bearer = (self.headers.get("authorization") or "").removeprefix("Bearer ")
        key = (self.headers.get("x-custom-auth") or self.headers.get("x-tenant") or query.get("api-key")
               or query.get("access_token") or query.get("sig") or bearer)
        type(self).received.append(key)
        mode = body["messages"][-1]["content"]
        if mode == "latin1":
            status, data, content_type = 401, (
                f"Cl\xe9 refus\xe9e \xab{key}\xbb ({echo(key)}) \xff\xfe".encode("latin-1")), "text/plain; charset=iso-8859-1"
        else:
            answer = {"id": "chatcmpl-echo", "object": "chat.completion", "created": 1763942400, "model": "local-model",
                      "choices": [{"index": 0, "message": {"role": "assistant", "content": "ECHO"}, "finish_reason": "stop"}],
                      "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6}}
            status, data, content_type = 200, json.dumps(answer).replace("ECHO", echo(key)).encode(), "application/json"
        self.send_response(status)
        if mode in COMPRESSED:
            encoding, compress = COMPRESSED[mode]
            data = compress(data)
            self.send_header("content-encoding", encoding)
        self.send_header("content-type", content_type)
        self.send_header("content-length", str(len(data)))
        self.send_header("x-echo", key)
        self.send_header("x-echo-b64", base64.b64encode(key.encode()).decode())
        self.send_header("x-echo-url", quote(key, safe=""))
        self.send_header("x-debug", f"received={key}; ok")
        self.send_header("set-cookie", f"session={key}; Path=/; HttpOnly")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def echo_url() -> Iterator[str]:
    _Echo.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Echo)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}/v1"
    finally:
        server.shutdown()
        server.server_close()


@dataclass(frozen=True)
class Vector:
    name: str
    key: str  # what the server receives and echoes
    body: str = "json"  # "json", "latin1" or one of COMPRESSED
    spec: dict[str, Any] = field(default_factory=dict)  # ProviderSpec fields
    api_key: str | None = None  # Client(api_key=): `key` unless given
    headers: dict[str, str] = field(default_factory=dict)  # extra_headers= (a value "KEY" is the key)


VECTORS = [
    Vector("latin-1 error body (!!binary)", OPENAI_KEY, body="latin1"),
    Vector("gzip body", OPENAI_KEY, body="gzip"),
    Vector("gzip body cut short", OPENAI_KEY, body="gzip-cut"),
    Vector("gzip body gzipped twice", SIGNATURE, body="gzip-twice"),
    Vector("deflate body", PREFIXLESS, body="deflate"),
    Vector("JSON-escaped key", SIGNATURE),
    Vector("base64 of the key", OPENAI_KEY),
    Vector("URL-encoded key", SIGNATURE),
    Vector("headers of any name", OPENAI_KEY),
    Vector("set-cookie", PREFIXLESS),
    Vector("?api-key= query", SIGNATURE, spec={"key_query": "api-key"}),
    Vector("?access_token= query", OPENAI_KEY, spec={"key_query": "access_token"}),
    Vector("?sig= query", SIGNATURE, spec={"key_query": "sig"}, body="latin1"),
    Vector("prefix-less key", PREFIXLESS),
    Vector("prefix-less key, latin-1 body", PREFIXLESS, body="latin1"),
    Vector("prefix-less key, gzip body", PREFIXLESS, body="gzip"),
    Vector("custom header x-custom-auth", OPENAI_KEY, headers={"x-custom-auth": "KEY"}),
    Vector("key in a header of a neutral name", SIGNATURE, headers={"x-tenant": "KEY"}, body="gzip"),
    # Not the key llmclient sends: a credential a custom header carries is masked by its name,
    # and its value wherever it is echoed.
    Vector("keyless provider, credential in x-custom-auth", OTHER_SECRET, spec={"keyless": True}, api_key="",
           headers={"x-custom-auth": "KEY"}),
]


def _register(url: str, vector: Vector) -> str:
    register_provider(ProviderSpec(name="echo", base_url=url, api_key_env="ECHO_API_KEY", **vector.spec))
    return "echo/local-model"


def _call(model: str, vector: Vector, key: str | None, header_value: str) -> str:
    """The call's answer text, or the name of the error it raised."""
    client = Client(model, api_key=key or None)
    headers = {name: header_value if value == "KEY" else value for name, value in vector.headers.items()}
    try:
        return client.complete(vector.body, **({"extra_headers": headers} if headers else {})).text
    except AuthenticationError as exc:
        return f"AuthenticationError: {exc}"


def _strings(value: Any) -> Iterator[str]:
    """Every string in a loaded cassette, bytes decoded (latin-1: nothing lost) and gunzipped."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from _strings(key)
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)
    elif isinstance(value, bytes):
        yield value.decode("latin-1")
        if value[:2] == b"\x1f\x8b":  # a body left compressed: what it holds, as far as it goes
            yield zlib.decompressobj(47).decompress(value).decode("latin-1")
    elif isinstance(value, str):
        yield value


def _views(text: str) -> list[str]:
    return [text, unquote(text), html.unescape(text),
            re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), text.replace("\\/", "/"))]


def assert_no_trace(path: Path, key: str) -> None:
    text = path.read_text()
    for form in forms(key):
        assert form not in text, f"{form!r} in {path}"
    cassette = yaml.load(text, Loader=yaml.CSafeLoader)  # !!binary loaded as bytes
    for value in _strings(cassette):
        for view in _views(value):
            for form in forms(key):
                assert form not in view, f"{form!r} in a recorded value: {value[:200]!r}"


@pytest.mark.parametrize("vector", VECTORS, ids=[v.name for v in VECTORS])
def test_record_leaves_no_trace_of_the_key(echo_url: str, tmp_path: Path, vector: Vector) -> None:
    model = _register(echo_url, vector)
    path = tmp_path / "echo.yaml"
    key = vector.api_key if vector.api_key is not None else vector.key
    try:
        with use_cassette(path, mode="record"):
            live = _call(model, vector, key, vector.key)
        assert _Echo.received == [vector.key]  # it really went out, and was echoed
        if vector.body != "latin1":
            assert vector.key in live  # the caller saw the answer as sent, unmasked
        assert_no_trace(path, vector.key)
        assert scan_secrets(path) == []
        recorded = yaml.load(path.read_text(), Loader=yaml.CSafeLoader)["interactions"][0]["response"]
        assert isinstance(recorded["body"]["string"], bytes) == (vector.body == "latin1")  # written as !!binary
        assert "content-encoding" not in {name.lower() for name in recorded["headers"]}  # a gzip body: stored decoded

        _Echo.received = []
        with use_cassette(path, mode="replay", strict=True) as session:
            replayed = _call(model, vector, None, "placeholder")  # no key at all
        assert _Echo.received == [] and session.play_count == 1
        assert REDACTED in replayed and vector.key not in replayed
        assert replayed.startswith("AuthenticationError") == (vector.body == "latin1")
    finally:
        unregister_provider("echo")


def test_a_replayed_answer_is_the_live_one_masked(echo_url: str, tmp_path: Path) -> None:
    vector = Vector("base64", OPENAI_KEY)
    model = _register(echo_url, vector)
    try:
        with use_cassette(tmp_path / "echo.yaml", mode="record"):
            live = _call(model, vector, OPENAI_KEY, OPENAI_KEY)
        with use_cassette(tmp_path / "echo.yaml", mode="replay"):
            replayed = _call(model, vector, None, "")
    finally:
        unregister_provider("echo")
    assert live == json.loads(f'"{echo(OPENAI_KEY)}"')
    assert replayed == ("raw REDACTED | escaped REDACTED | first-escaped REDACTED | base64 REDACTED | base64url REDACTED"
                        " | basic dXNlcjpzREDACTED | url REDACTED lower REDACTED plus REDACTED | html REDACTED")


@pytest.mark.parametrize("spec", [{}, {"key_query": "api-key"}], ids=["bearer", "query"])
def test_vcrpy_with_llmclients_settings_learns_the_key_from_what_is_sent(echo_url: str, tmp_path: Path,
                                                                        spec: dict[str, Any]) -> None:
    """pytest-recording's path: vcrpy with `vcr_config()`, no `use_cassette` (so no `remember_key`):
    the key is learned from the credential header or query parameter it is sent in."""
    import vcr

    key = "Kq2Wn5Rt8Yp1Lm4Xv7Bz0Hc3Jd6Fg9Ts" + spec.get("key_query", "")[:2]  # never seen before
    model = _register(echo_url, Vector("vcr", key, spec=spec))
    recorder = vcr.VCR(**vcr_config("record"))
    register_matchers(recorder)
    try:
        with recorder.use_cassette(str(tmp_path / "vcr.yaml")):
            assert key in _call(model, Vector("vcr", key), key, key)
    finally:
        unregister_provider("echo")
    assert _Echo.received == [key]
    assert_no_trace(tmp_path / "vcr.yaml", key)


# --- the scrubber's pieces -------------------------------------------------------------------------


def test_binary_bodies_are_masked_byte_for_byte() -> None:
    add_key(PREFIXLESS)
    body = b"\xe9\xab" + PREFIXLESS.encode() + b"\xbb\x00" + PREFIXLESS.encode("utf-16-le") + b"\xff"
    assert mask_secret_bytes(body) == b"\xe9\xabREDACTED\xbb\x00REDACTED\xff"
    assert mask_secret_bytes(b"\xff sk-proj-Zz9Yy8Xx7Ww6Vv5Uu4Tt3 \xfe") == b"\xff REDACTED \xfe"  # a key format, not in use


def test_a_body_vcrpy_left_compressed_is_decoded_or_dropped() -> None:
    add_key(OPENAI_KEY)
    twice = gzip.compress(gzip.compress(f'{{"k": "{OPENAI_KEY}"}}'.encode()))
    response = {"headers": {"Content-Encoding": ["gzip, gzip"], "Content-Length": [str(len(twice))]},
                "body": {"string": twice}}
    scrubbed = scrub_response(response)
    assert scrubbed["body"]["string"] == b'{"k": "REDACTED"}'
    assert scrubbed["headers"] == {"Content-Length": ["17"]}
    unknown = scrub_response({"headers": {"content-encoding": ["zstd"]}, "body": {"string": b"(\xb5/\xfd..."}})
    assert unknown["body"]["string"].startswith(b"REDACTED: a zstd-encoded body llmclient could not decode")
    assert "content-encoding" not in unknown["headers"]
    corrupt = gzip.compress(OPENAI_KEY.encode() * 40)
    corrupt = corrupt[:12] + bytes(b ^ 0x55 for b in corrupt[12:])
    assert scrub_response({"headers": {"content-encoding": ["gzip"]}, "body": {"string": corrupt}})["body"]["string"].startswith(
        b"REDACTED: a gzip-encoded body")
    plain = scrub_response({"headers": {"content-encoding": ["gzip"]}, "body": {"string": f"plain {OPENAI_KEY}".encode()}})
    assert plain == {"headers": {}, "body": {"string": b"plain REDACTED"}}  # labelled gzip, sent plain


def test_headers_and_uris_are_masked_by_name_and_by_value() -> None:
    add_key(SIGNATURE)
    headers = scrubbed_headers({"x-custom-auth": "Token abc-unlisted-credential-1", "x-tenant": quote(SIGNATURE, safe=""),
                                "x-note": "see abc-unlisted-credential-1 here", "accept": "application/json"})
    assert headers == {"x-custom-auth": REDACTED, "x-tenant": REDACTED, "x-note": REDACTED, "accept": "application/json"}
    uri = scrubbed_uri(f"https://h.example/v1/{quote(SIGNATURE, safe='')}/chat?sig={quote(SIGNATURE)}&odd={SIGNATURE}&n=1")
    assert uri == "https://h.example/v1/REDACTED/chat?sig=REDACTED&odd=REDACTED&n=1"


# --- scan_secrets: each trace, planted by hand ------------------------------------------------------


def _binary(data: bytes) -> str:
    encoded = base64.encodebytes(data).decode()
    return "      string: !!binary |\n" + "".join(f"        {line}\n" for line in encoded.splitlines())


def _cassette(request_headers: str = "", response: str = "", uri: str = "https://api.example.com/v1/chat/completions",
              body: str = "      string: '{}'\n") -> str:
    return ("interactions:\n- request:\n    body: '{}'\n    headers:\n" + (request_headers or "      accept:\n      - '*/*'\n")
            + f"    method: POST\n    uri: {uri}\n  response:\n    body:\n{body}    headers:\n"
            + (response or "      content-type:\n      - application/json\n") + "    status:\n      code: 200\n      message: OK\n")


PLANTED = {
    "!!binary latin-1 body": _cassette(body=_binary(f"Cl\xe9 refus\xe9e \xab{OPENAI_KEY}\xbb".encode("latin-1"))),
    "!!binary gzip body": _cassette(body=_binary(gzip.compress(json.dumps({"error": OPENAI_KEY}).encode()))),
    "!!binary gzip body cut short": _cassette(body=_binary(gzip.compress(json.dumps({"error": OPENAI_KEY}).encode())[:-8])),
    "!!binary deflate body": _cassette(body=_binary(zlib.compress(f"invalid key {PREFIXLESS}".encode()))),
    "!!binary prefix-less key": _cassette(body=_binary(f"\xe9 invalid key {PREFIXLESS} \xff".encode("latin-1"))),
    "JSON-escaped key": _cassette(body=f"      string: '{{\"error\": \"{json_escaped(OPENAI_KEY[:2])}{OPENAI_KEY[2:]}\"}}'\n"),
    "escaped slash": _cassette(body='      string: \'{"echo": "Authorization: Bearer ' + SIGNATURE.replace("/", "\\/") + '"}\'\n'),
    "double-quoted YAML, split": _cassette(body=f'      string: "{{\\"error\\": \\"{OPENAI_KEY[:12]}\\\n        {OPENAI_KEY[12:]}\\"}}"\n'),
    "base64 of the key": _cassette(body=f"      string: '{{\"t\": \"{base64.b64encode(OPENAI_KEY.encode()).decode()}\"}}'\n"),
    "base64 Basic credentials": _cassette(body=f"      string: '{{\"b\": \"{base64.b64encode(b'u:' + PREFIXLESS.encode()).decode()}\"}}'\n"),
    "URL-encoded key": _cassette(body=f"      string: 'next=https%3A%2F%2Fx.example%2F%3Fk%3D{quote(OPENAI_KEY, safe='').replace('-', '%2D')}'\n"),
    "HTML character references": _cassette(body=f"      string: '<p>{''.join(f'&#{ord(c)};' for c in OPENAI_KEY)}</p>'\n"),
    "response header of any name": _cassette(response=f"      x-echo:\n      - {OPENAI_KEY}\n"),
    "prefix-less key in a header of any name": _cassette(response=f"      x-tenant:\n      - {PREFIXLESS}\n"),
    "Set-Cookie": _cassette(response="      Set-Cookie:\n      - session=abc123def456; Path=/\n"),
    "custom request header": _cassette(request_headers="      x-custom-auth:\n      - tenant-credential-77\n"),
    "prefix-less key in a body": _cassette(body=f"      string: '{{\"message\": \"Invalid key {PREFIXLESS}.\"}}'\n"),
    "Bearer prefix-less key": _cassette(request_headers=f"      authorization:\n      - Bearer {PREFIXLESS}\n"),
    **{f"?{name}= query": _cassette(uri=f"https://api.example.com/v1/chat?{name}={quote(SIGNATURE, safe='')}&x=1")
       for name in ("key", "api_key", "api-key", "access_token", "token", "sig")},
    # Credentials of other services that end up in the same repositories (invented values in each
    # documented shape: AWS access key ids, GitHub and Hugging Face tokens, a JSON web token).
    "AWS access key id": _cassette(body="      string: '{\"k\": \"AKIAQ3EGRTWXKZ7B4N2Y\"}'\n"),
    "GitHub token": _cassette(body="      string: 'token ghp_Zq7Lm2Vb9Rt4Kp8Wd3Hs6Jf1Zc5Ye0GaXw1Q'\n"),
    "Hugging Face token": _cassette(body="      string: 'hf_Zq7Lm2Vb9Rt4Kp8Wd3Hs6Jf1Zc5Ye0GaXw'\n"),
    "JSON web token": _cassette(body="      string: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U'\n"),
}


@pytest.mark.parametrize("planted", PLANTED.values(), ids=list(PLANTED))
def test_scan_catches_each_planted_trace(tmp_path: Path, planted: str) -> None:
    path = tmp_path / "planted.yaml"
    path.write_text(planted)
    yaml.load(planted, Loader=yaml.CSafeLoader)  # a well-formed cassette
    findings = scan_secrets(path)
    assert findings, planted
    assert all(OPENAI_KEY not in str(f) and PREFIXLESS not in str(f) and SIGNATURE[:8] not in str(f) for f in findings)


@pytest.mark.parametrize("line", [
    "      x-custom-auth:\n      - REDACTED\n", "uri: https://h.example/v1/chat?sig=REDACTED&api-key=REDACTED\n",
    "      string: 'chatcmpl-B9MBs8CjcvOU2jLn4n570S5qMJKcT req_011CR5tGx9nM2pQ7wZ8yV3kL msg_01XFDUDYJgAACzvnptvVoYEL'\n",
    "      thoughtSignature: c2tpcF90aG91Z2h0X3NpZ25hdHVyZV92YWxpZGF0b3I=\n",
    "      sha256: 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\n",
])
def test_scan_leaves_redacted_values_and_ids_alone(tmp_path: Path, line: str) -> None:
    path = tmp_path / "clean.yaml"
    path.write_text("interactions:\n" + line + _binary(b"\xe9 REDACTED \xff"))
    assert scan_secrets(path) == []


# --- what is not a key, and keys behind a provider's own scheme ---------------------------------------


@pytest.mark.parametrize("text", ["Write a task-management-application in Go", "disk-usage-monitor-service-v2",
                                  "mask-image-linear-gradient(to bottom)", "a risk-assessment-framework-draft"])
def test_hyphenated_words_are_not_masked_as_keys(text: str) -> None:
    from llmclient.scrub import mask_secrets

    assert mask_secrets(text) == text


def test_different_hyphenated_prompts_do_not_replay_each_others_answer(echo_url: str, tmp_path: Path) -> None:
    from llmclient import ReplayMismatchError

    cassette, model = tmp_path / "kebab.yaml", _register(echo_url, Vector("kebab", OPENAI_KEY))
    try:
        with use_cassette(cassette, mode="record"):
            Client(model, api_key=OPENAI_KEY).complete("Write a task-management-application")
        with use_cassette(cassette, mode="replay"), pytest.raises(ReplayMismatchError):
            Client(model).complete("Write a task-scheduling-service-in-go")
    finally:
        unregister_provider("echo")


def test_a_key_behind_a_providers_own_scheme_is_learned_bare() -> None:
    from llmclient.scrub import mask_secrets

    key = "3f2a9c8e1b7d4f6a0c5e9b2d8a1f7c3e"  # all lower case: no key format catches it, only learning
    assert scrubbed_headers({"authorization": f"sso-key {key}"}) == {"authorization": REDACTED}
    assert mask_secrets(f"request req-{key} refused: bad key {key}") == "request req-REDACTED refused: bad key REDACTED"


def test_an_error_message_is_masked_in_the_scrubbers_forms_and_where_a_cut_went_through_the_key() -> None:
    key = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
    basic = base64.b64encode(b"user:" + key.encode()).decode()
    error = AuthenticationError(f"bad creds {basic}").without([key])
    assert basic not in error.message and key not in str(error) and "REDACTED" in error.message
    from llmclient.errors import excerpt

    cut = excerpt("<html>" + "x" * 160 + f" invalid key {key} </html>")  # 200 characters: the key is cut
    assert cut.endswith("...") and key[:12] in cut
    masked = AuthenticationError(cut).without([key])
    assert masked.message.endswith("invalid key REDACTED...") and key[:8] not in masked.message


def test_a_key_sent_in_the_query_is_masked_in_httpx_and_httpcore_log_lines(echo_url: str,
                                                                           caplog: pytest.LogCaptureFixture) -> None:
    # httpx logs every request's URL at INFO (the key in its query with it); httpcore logs the raw
    # response headers at DEBUG, where a server may echo the key.
    key = "Zr5Tq8Wn2Yk6Hm9Jc3Vb7Xd1Lp4Fs0Ga"
    model = _register(echo_url, Vector("query", key, spec={"key_query": "api-key"}))
    try:
        with caplog.at_level("DEBUG", logger="httpx"), caplog.at_level("DEBUG", logger="httpcore"):
            _call(model, Vector("query", key), key, key)
            logging.getLogger("httpx").info("HTTP Request: POST %s", f"{echo_url}/chat/completions?api-key={key}")  # as httpx logs it
    finally:
        unregister_provider("echo")
    lines = [record.getMessage() for record in caplog.records if record.name.startswith(("httpx", "httpcore"))]
    assert lines and lines[-1].startswith(f"HTTP Request: POST {echo_url}/chat/completions?") and "REDACTED" in lines[-1]
    assert not any(key in line for line in lines)


def test_a_request_asked_more_often_than_recorded_is_named_as_such(echo_url: str, tmp_path: Path) -> None:
    from llmclient import ReplayMismatchError

    cassette, model = tmp_path / "once.yaml", _register(echo_url, Vector("once", OPENAI_KEY))
    try:
        with use_cassette(cassette, mode="record"):
            Client(model, api_key=OPENAI_KEY).complete("json")
        with use_cassette(cassette, mode="replay"):
            Client(model).complete("json")
            with pytest.raises(ReplayMismatchError, match="already played"):
                Client(model).complete("json")
    finally:
        unregister_provider("echo")
