"""Files streamed into the request body from disk (llmclient.transport.FileBody), end to end
against a real loopback server (tests/fault_server.py): the bytes that arrive are checked against
the file's own base64 computed here, on the OpenAI and Anthropic wires, sync and async; a resend
carries the whole file again; a file that changed is refused unsent."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import os
import threading
import tracemalloc
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from llmclient import Client, InvalidRequestError, Message, RetryPolicy, TextPart
from llmclient.files import attachment
from llmclient.transport import FileBody, json_body
from llmclient.wire import FileData
from tests.fault_server import FaultServer, fault_server, status, succeed  # noqa: F401 - fixture
from tests.loopback import reply

MB = 1024 * 1024
# Not a multiple of 3, and many 192 KiB read chunks: the last chunk carries base64 padding.
PDF_SIZE = 3 * 3 * 256 * 1024 + 1000


def write_pdf(path: Path, size: int = PDF_SIZE) -> bytes:
    head, tail = b"%PDF-1.7\n1 0 obj\n<< /Length " + str(size).encode() + b" >>\nstream\n", b"\nendstream\nendobj\n%%EOF\n"
    content = head + os.urandom(size - len(head) - len(tail)) + tail
    assert len(content) == size
    path.write_bytes(content)
    return content


def client_for(wire: str, server: FaultServer, **options: Any) -> Client:
    if wire == "openai":
        return Client("openai/gpt-4o-mini", base_url=f"{server.url}/v1", api_key="sk-test", **options)
    return Client("anthropic/claude-sonnet-4-5", base_url=server.url, api_key="sk-ant-test", **options)


def sent_file(wire: str, body: dict[str, Any]) -> tuple[str, str]:
    """(media type, base64) of the one file in a recorded request body, where each wire puts it."""
    block = body["messages"][-1]["content"][-1]
    if wire == "openai":
        prefix, _, data = block["file"]["file_data"].partition(",")
        return prefix.removeprefix("data:").removesuffix(";base64"), data
    assert block["type"] == "document" and block["source"]["type"] == "base64", block
    return block["source"]["media_type"], block["source"]["data"]


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
@pytest.mark.parametrize("run", ["sync", "async"])
def test_a_pdf_on_disk_arrives_byte_for_byte(tmp_path: Path, fault_server: FaultServer, wire: str, run: str) -> None:
    content = write_pdf(tmp_path / "report.pdf")
    client = client_for(wire, fault_server)
    if run == "sync":
        client.complete("Summarise", files=[tmp_path / "report.pdf"])
    else:
        asyncio.run(client.acomplete("Summarise", files=[tmp_path / "report.pdf"]))
    [request] = fault_server.requests
    assert int(request.headers["content-length"]) == len(request.raw)
    assert sent_file(wire, request.body) == ("application/pdf", base64.b64encode(content).decode())


@pytest.mark.parametrize("wire", ["openai", "anthropic"])
def test_a_resend_carries_the_whole_file_again(tmp_path: Path, fault_server: FaultServer, wire: str) -> None:
    content = write_pdf(tmp_path / "report.pdf")
    fault_server.script(status(503), succeed("A report."))
    retry = RetryPolicy(max_attempts=2, initial_backoff=0.01, max_backoff=0.01, jitter=False)
    response = client_for(wire, fault_server, retry=retry).complete("Summarise", files=[tmp_path / "report.pdf"])
    assert response.text == "A report." and len(response.retries) == 1
    first, second = fault_server.requests
    assert first.raw == second.raw
    assert sent_file(wire, second.body)[1] == base64.b64encode(content).decode()


def test_bytes_and_images_are_spliced_the_same_way(tmp_path: Path, fault_server: FaultServer) -> None:
    png = (Path(__file__).resolve().parent.parent / "llmclient" / "conformance" / "inputs" / "tiny.png").read_bytes()
    pdf = write_pdf(tmp_path / "report.pdf")
    client_for("openai", fault_server).complete("Compare", files=[tmp_path / "report.pdf", png, pdf])
    content = fault_server.requests[0].body["messages"][-1]["content"]
    assert [block["type"] for block in content] == ["text", "file", "image_url", "file"]
    assert content[1]["file"]["file_data"] == content[3]["file"]["file_data"] == \
        "data:application/pdf;base64," + base64.b64encode(pdf).decode()
    assert content[2]["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(png).decode()


def test_a_file_changed_after_it_was_attached_is_not_sent(tmp_path: Path, fault_server: FaultServer) -> None:
    path = tmp_path / "report.pdf"
    write_pdf(path)
    message = Message(role="user", content=[TextPart(text="Summarise"), attachment(path)])
    with path.open("ab") as grown:
        grown.write(b"% appended\n")
    with pytest.raises(InvalidRequestError, match=rf"report\.pdf: the attached file .* changed after it was attached "
                                                  rf"\({PDF_SIZE} bytes then, {PDF_SIZE + 11} bytes now\)"):
        client_for("openai", fault_server).complete([message])
    path.unlink()
    with pytest.raises(InvalidRequestError, match=r"report\.pdf: the attached file .* can no longer be read"):
        client_for("anthropic", fault_server).complete([message])
    assert fault_server.count == 0


def test_a_file_that_shrinks_while_it_is_sent_breaks_the_body_off(tmp_path: Path) -> None:
    path = tmp_path / "report.pdf"
    write_pdf(path)
    body = json_body({"data": FileData(attachment(path))})
    assert isinstance(body, FileBody)
    assert body.length == len(b'{"data":""}') + 4 * ((PDF_SIZE + 2) // 3)  # the Content-Length sent
    path.write_bytes(path.read_bytes()[:1000])  # after the Content-Length went out
    with pytest.raises(InvalidRequestError, match=rf"\({PDF_SIZE} bytes then, 1000 bytes now\)"):
        b"".join(body)


def test_a_body_with_a_file_is_the_json_text_with_its_base64(tmp_path: Path) -> None:
    content = write_pdf(tmp_path / "report.pdf", 100_000)
    part = attachment(tmp_path / "report.pdf")
    body = json_body({"messages": [{"text": "Summarise \u00e9", "file": FileData(part, "data:application/pdf;base64,")}], "n": 1})
    assert isinstance(body, FileBody)
    sent = b"".join(body)
    assert len(sent) == body.length
    assert json.loads(sent) == {"messages": [{"text": "Summarise \u00e9", "file": "data:application/pdf;base64,"
                                              + base64.b64encode(content).decode()}], "n": 1}


def test_a_body_without_files_is_plain_compact_json() -> None:
    assert json_body({"a": [1, "\u00e9"], "b": None}) == '{"a":[1,"\u00e9"],"b":null}'.encode()
    with pytest.raises(InvalidRequestError, match="JSON cannot carry"):
        json_body({"temperature": float("nan")})


def test_the_mock_provider_sees_the_file_not_its_stand_in(tmp_path: Path) -> None:
    from llmclient.testing import MockProvider

    content = write_pdf(tmp_path / "report.pdf", 100_000)
    with MockProvider() as mock:
        mock.reply("A report.")
        Client("mock/m").complete("Summarise", files=[tmp_path / "report.pdf"])
    assert sent_file("openai", mock.requests[0]) == ("application/pdf", base64.b64encode(content).decode())


class _Sink(BaseHTTPRequestHandler):
    """Reads each body in 64 KiB pieces into a digest, so the server side holds no copy of it."""

    digests: list[tuple[str, int]] = []

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        digest, left = hashlib.sha256(), int(self.headers["content-length"])
        while left:
            piece = self.rfile.read(min(left, 64 * 1024))
            digest.update(piece)
            left -= len(piece)
        type(self).digests.append((digest.hexdigest(), int(self.headers["content-length"])))
        answer = json.dumps(reply("A report.")).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


def test_a_call_never_holds_the_file_in_memory(tmp_path: Path, fault_server: FaultServer) -> None:
    """Python allocations during a call with a 6 MB PDF, traced: the file's base64 alone would be
    8 MB; streamed in chunks, the call's peak stays a small fraction of the file. The server is a
    sink that keeps only a digest; the body it took is the one the fault server recorded whole."""
    size = 6 * MB
    write_pdf(tmp_path / "big.pdf", size)
    client_for("openai", fault_server).complete("Summarise", files=[tmp_path / "big.pdf"])
    sink = ThreadingHTTPServer(("127.0.0.1", 0), _Sink)
    threading.Thread(target=sink.serve_forever, daemon=True).start()
    try:
        client = Client("openai/gpt-4o-mini", base_url=f"http://127.0.0.1:{sink.server_port}/v1", api_key="sk-test")
        client.complete("warm up", files=[tmp_path / "big.pdf"])  # lazy imports and pools, outside the trace
        tracemalloc.start()
        try:
            client.complete("Summarise", files=[tmp_path / "big.pdf"])
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    finally:
        sink.shutdown()
        sink.server_close()
    assert peak < size / 4, f"peak {peak / MB:.1f} MB for a {size / MB:.0f} MB file"
    whole = fault_server.requests[0].raw
    assert _Sink.digests[-1] == (hashlib.sha256(whole).hexdigest(), len(whole))
