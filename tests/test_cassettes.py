"""Recording through the scrubbing pipeline against a real loopback server, replaying what was
recorded, and the secret lint over every committed cassette and fixture."""

from __future__ import annotations

import hashlib
import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from llmclient import (
    AuthenticationError,
    Client,
    ConfigurationError,
    ProviderSpec,
    ReplayMismatchError,
    register_provider,
    scan_secrets,
    unregister_provider,
    use_cassette,
)
from llmclient.cassettes import mask_secrets

REPO = Path(__file__).resolve().parent.parent
# Realistic-looking but invented keys: each must be scrubbed from everything written to disk.
SECRET_KEY = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z"
ORG_ID = "org-Zq8Wv2Lm5Nx7Rb1Tc4Yh"
ANSWER = {
    "id": "chatcmpl-loopback",
    "object": "chat.completion",
    "created": 1763942400,
    "model": "local-model",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "pong"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 5, "completion_tokens": 1, "total_tokens": 6},
}


class _Provider(BaseHTTPRequestHandler):
    """An OpenAI-compatible endpoint: answers "pong", or a 401 echoing the key like OpenAI does."""

    requests: list[dict[str, str]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = self.rfile.read(int(self.headers["content-length"]))
        type(self).requests.append({"path": self.path, "authorization": self.headers["authorization"], "body": body.decode()})
        if b"wrong key" in body:
            status, payload = 401, {"error": {"message": f"Incorrect API key provided: {SECRET_KEY}.", "type": "invalid_request_error", "code": "invalid_api_key"}}
        else:
            status, payload = 200, ANSWER
        data = json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.send_header("openai-organization", ORG_ID)
        self.send_header("set-cookie", "__cf_bm=Secr3tCookieValue123; path=/")
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def provider() -> Iterator[str]:
    """A live loopback provider registered as "loopback"; yields its model string."""
    _Provider.requests = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Provider)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    register_provider(ProviderSpec(name="loopback", base_url=f"http://127.0.0.1:{server.server_port}/v1",
                                   api_key_env="LOOPBACK_API_KEY"))
    try:
        yield "loopback/local-model"
    finally:
        unregister_provider("loopback")
        server.shutdown()
        server.server_close()


def test_record_scrubs_secrets_then_replays_without_the_server(provider: str, tmp_path: Path) -> None:
    path = tmp_path / "loopback" / "ping.yaml"
    with use_cassette(path, mode="record"):
        recorded = Client(provider, api_key=SECRET_KEY).complete("ping")
        with pytest.raises(AuthenticationError):
            Client(provider, api_key=SECRET_KEY).complete("wrong key")
    assert recorded.text == "pong"
    assert [r["authorization"] for r in _Provider.requests] == [f"Bearer {SECRET_KEY}"] * 2  # it really went out

    text = path.read_text()
    for secret in (SECRET_KEY, ORG_ID, "Secr3tCookieValue123", SECRET_KEY[-8:] + "."):
        assert secret not in text
    assert "Incorrect API key provided: REDACTED." in text
    assert scan_secrets(path) == []

    _Provider.requests = []
    with use_cassette(path, mode="replay", strict=True) as session:
        replayed = Client(provider).complete("ping")  # no key needed in replay
        with pytest.raises(AuthenticationError, match="REDACTED"):
            Client(provider).complete("wrong key")
    assert (replayed.text, replayed.usage and replayed.usage.total_tokens) == ("pong", 6)
    assert session.play_count == 2
    assert _Provider.requests == []  # replay sent nothing


def test_auto_mode_replays_what_it_has_and_records_what_it_lacks(provider: str, tmp_path: Path) -> None:
    path = tmp_path / "auto.yaml"
    with use_cassette(path, mode="auto"):
        Client(provider, api_key=SECRET_KEY).complete("first")
    with use_cassette(path, mode="auto"):
        Client(provider, api_key=SECRET_KEY).complete("first")
        Client(provider, api_key=SECRET_KEY).complete("second")
    assert [json.loads(r["body"])["messages"][0]["content"] for r in _Provider.requests] == ["first", "second"]
    with use_cassette(path, mode="replay", strict=True) as session:
        Client(provider).complete("second")
        Client(provider).complete("first")  # two calls to one endpoint: matched by body, not order
    assert session.play_count == 2


def test_replay_mismatch_and_unplayed_detection(provider: str, tmp_path: Path) -> None:
    path = tmp_path / "one.yaml"
    with use_cassette(path, mode="record"):
        Client(provider, api_key=SECRET_KEY).complete("ping")
    with use_cassette(path, mode="replay") as session:
        assert session.unplayed == [f"POST {Client(provider).base_url}/chat/completions"]
        assert not session.all_played
        with pytest.raises(ReplayMismatchError, match=r"no recorded interaction for POST https://api\.openai\.com/v1/chat/completions"):
            Client("openai/gpt-4o-mini").complete("ping")
        with pytest.raises(ReplayMismatchError, match="never requested"):
            session.assert_all_played()


def test_bad_mode_and_missing_cassette_are_configuration_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="'replay', 'record' or 'auto'"):
        with use_cassette(tmp_path / "x.yaml", mode="playback"):  # type: ignore[arg-type]
            pass
    with pytest.raises(ConfigurationError, match="no cassette at .*missing.yaml.*mode='record'"):
        with use_cassette(tmp_path / "missing.yaml"):
            pass


@pytest.mark.parametrize("folder", ["cassettes", "fixtures", "tests/cassettes"])
def test_committed_files_hold_no_secrets(folder: str) -> None:
    findings = scan_secrets(REPO / folder)
    assert findings == [], "\n".join(map(str, findings))


@pytest.mark.parametrize(
    ("line", "kind"),
    [
        ("      - Bearer sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z", "openai key"),
        ('"x-api-key": "sk-ant-api03-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk"', "anthropic key"),
        ("uri: https://generativelanguage.googleapis.com/v1beta/models/x?key=AIzaSyA1b2C3d4E5f6G7h8I9j0KlMnOpQrStUvW", "google key"),
        ("Incorrect API key provided: sk-proj-****************************WXYZ", "echoed key"),
        ("uri: https://example.com/v1/chat?token=abc123def", "token= query parameter"),
    ],
)
def test_scan_finds_planted_secrets(tmp_path: Path, line: str, kind: str) -> None:
    planted = tmp_path / "cassette.yaml"
    planted.write_text(f"interactions:\n{line}\n")
    assert kind in [finding.kind for finding in scan_secrets(planted)]


def test_scan_flags_an_unredacted_secret_header(tmp_path: Path) -> None:
    planted = tmp_path / "cassette.yaml"
    planted.write_text("    headers:\n      x-goog-api-key:\n      - some-real-looking-value\n")
    assert [(f.line, f.kind) for f in scan_secrets(planted)] == [(2, "x-goog-api-key header")]


def test_mask_keeps_placeholders_and_masks_keys() -> None:
    assert mask_secrets(f"key {SECRET_KEY} and sk-test-placeholder-value") == "key REDACTED and sk-test-placeholder-value"


def test_a_long_request_body_is_stored_as_its_digest_and_matched_on_it(provider: str, tmp_path: Path) -> None:
    path = tmp_path / "long.yaml"
    long_prompt = "zqxjv " * 50_000  # 300 KB: over the 256 KB limit
    with use_cassette(path, mode="record"):
        Client(provider, api_key=SECRET_KEY).complete(long_prompt)
    sent = _Provider.requests[0]["body"].encode()
    text = path.read_text()
    assert len(text) < 10_000 and "zqxjv zqxjv" not in text
    assert hashlib.sha256(sent).hexdigest() in text and f"bytes: {len(sent)}" in text.replace('"', "").replace("\\", "")
    with use_cassette(path, mode="replay", strict=True):
        assert Client(provider).complete(long_prompt).text == "pong"
    with use_cassette(path, mode="replay"):
        with pytest.raises(ReplayMismatchError):
            Client(provider).complete(long_prompt + "!")
