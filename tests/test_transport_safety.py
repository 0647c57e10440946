"""What the transport must never do, over real loopback sockets, sync and async: follow a
redirect (the key would go with it), echo a key in an error, turn our own refusal into a
connection error, leave a session per event loop behind; and the headers it always sends."""

from __future__ import annotations

import asyncio
import os
from pathlib import Path
from typing import Any

import pytest

from llmclient import APIError, Client, ConfigurationError, InvalidRequestError, RetryPolicy
from llmclient.files import attachment
from llmclient.providers import ProviderSpec
from llmclient.transport import async_send, async_session, build_request, json_body, sync_client
from llmclient.wire import FileData
from tests.fault_server import FaultServer, fault_server, status  # noqa: F401 - fixture

ONCE = RetryPolicy(max_attempts=1)


def anthropic_client(url: str, **options: Any) -> Client:
    return Client("anthropic/claude-sonnet-4-5", base_url=url, api_key="sk-ant-secret-key", **{"retry": ONCE, **options})


@pytest.mark.parametrize("mode", ["sync", "async"])
@pytest.mark.parametrize("code", [301, 307])
def test_a_redirect_is_an_error_and_the_key_goes_nowhere_else(fault_server: FaultServer, mode: str, code: int) -> None:
    with FaultServer() as elsewhere:
        fault_server.script(status(code, headers={"location": f"{elsewhere.url}/v1/messages"}, body={}))
        client = anthropic_client(fault_server.url)
        with pytest.raises(APIError) as caught:
            client.complete("Hi") if mode == "sync" else asyncio.run(client.acomplete("Hi"))
        assert caught.value.status_code == code
        assert elsewhere.count == 0  # nothing, and so no x-api-key, reached the other host


@pytest.mark.parametrize("key", ["sk-ant-secret-key\n", "sk-ant-secret key", "sk-ant-sécret"])
def test_a_key_that_cannot_be_sent_is_refused_without_echoing_it(key: str) -> None:
    with pytest.raises(ConfigurationError, match="holds whitespace, a control character or a non-ASCII") as caught:
        Client("anthropic/claude-sonnet-4-5", api_key=key).complete("Hi")
    assert "secret" not in str(caught.value)


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_a_file_that_changes_while_it_is_sent_is_our_refusal_not_a_connection_error(
        fault_server: FaultServer, tmp_path: Path, mode: str) -> None:
    path = tmp_path / "report.pdf"
    path.write_bytes(b"%PDF-1.7\n" + os.urandom(3 * 1024 * 1024))
    request = build_request("POST", f"{fault_server.url}/v1/messages", {"content-type": "application/json"},
                            json_body({"file": FileData(attachment(path))}))  # Content-Length from the size attached
    path.write_bytes(b"%PDF-1.7\n")  # then the file shrinks before its bytes go out

    async def send_async() -> None:
        session = async_session(5.0)
        try:
            await async_send(session, request, stream=False)
        finally:
            await session.close()

    with pytest.raises(InvalidRequestError, match="changed after it was attached"):
        if mode == "sync":
            with sync_client(5.0) as http:
                http.send(request)
        else:
            asyncio.run(send_async())


def test_each_event_loop_leaves_no_session_behind(fault_server: FaultServer) -> None:
    client = anthropic_client(fault_server.url)
    for _ in range(5):
        asyncio.run(client.acomplete("Hi"))
    pipeline = client._route.pipeline()
    assert pipeline._async == {}  # each loop's session was closed and forgotten at its shutdown
    loop = asyncio.new_event_loop()
    loop.run_until_complete(client.acomplete("Hi"))
    loop.close()  # closed without shutting its async generators down
    asyncio.run(client.acomplete("Hi"))
    assert pipeline._async == {}  # the closed loop's entry went when the next session was made
    assert fault_server.count == 7


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_both_paths_name_llmclient_and_accept_compression(fault_server: FaultServer, mode: str) -> None:
    client = anthropic_client(fault_server.url)
    client.complete("Hi") if mode == "sync" else asyncio.run(client.acomplete("Hi"))
    headers = fault_server.requests[0].headers
    assert headers["user-agent"].startswith("llmclient/")
    assert headers["accept-encoding"] == "gzip, deflate"
    assert (headers["x-api-key"], headers["anthropic-version"]) == ("sk-ant-secret-key", "2023-06-01")


def test_a_lone_surrogate_in_the_prompt_is_a_typed_error(tmp_path: Path) -> None:
    bad = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    with pytest.raises(InvalidRequestError, match="lone UTF-16 surrogate"):
        anthropic_client("http://127.0.0.1:9").complete(bad)
    (tmp_path / "a.pdf").write_bytes(b"%PDF-1.7\n")
    with pytest.raises(InvalidRequestError, match="lone UTF-16 surrogate"):  # the streamed-file body too
        anthropic_client("http://127.0.0.1:9").complete(bad, files=[tmp_path / "a.pdf"])


def test_a_provider_on_the_anthropic_wire_gets_its_required_max_tokens() -> None:
    spec = ProviderSpec(name="claude-proxy", base_url="https://proxy.example", api_key_env="PROXY_KEY", wire="anthropic")
    assert spec.default_max_tokens == 4096
