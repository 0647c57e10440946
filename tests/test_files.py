"""Attachments: typed by content, checked against the provider before any request, encoded as
the chat-completions blocks litellm translates."""

from __future__ import annotations

import base64
import io
import json
import tracemalloc
from pathlib import Path

import pytest

from llmclient import BadRequestError, Client, InvalidRequestError, Request, UnsupportedCapabilityError
from llmclient.files import attachment, base64_text, sniff
from llmclient.transport import json_body
from llmclient.wire.openai import encode_message

FIXTURES = Path(__file__).resolve().parent.parent / "llmclient" / "conformance" / "inputs"
PNG = (FIXTURES / "tiny.png").read_bytes()
PDF = (FIXTURES / "tiny.pdf").read_bytes()


@pytest.mark.parametrize(("head", "media_type"), [
    (b"\x89PNG\r\n\x1a\n\x00\x00", "image/png"),
    (b"\xff\xd8\xff\xe0\x00\x10JFIF", "image/jpeg"),
    (b"GIF89a\x01\x00", "image/gif"),
    (b"RIFF\x24\x00\x00\x00WEBPVP8 ", "image/webp"),
    (b"RIFF\x24\x00\x00\x00WAVEfmt ", None),  # a RIFF that is not WebP
    (b"%PDF-1.7\n", "application/pdf"),
    (b"# heading\n", None),
])
def test_sniff_by_magic_bytes(head: bytes, media_type: str | None) -> None:
    assert sniff(head) == media_type


def test_type_comes_from_content_not_name(tmp_path: Path) -> None:
    disguised = tmp_path / "report.pdf"
    disguised.write_bytes(PNG)
    part = attachment(disguised)
    assert (part.media_type, part.name, part.size) == ("image/png", "report.pdf", 74)
    assert (part.path, part.data) == (str(disguised.resolve()), None)  # read from disk as the body is sent


def test_bytes_file_objects_and_urls() -> None:
    assert attachment(PDF).media_type == "application/pdf"
    assert attachment(io.BytesIO(PNG)).media_type == "image/png"
    part = attachment("https://example.com/scans/page-1.PNG?sig=abc")
    assert (part.media_type, part.url, part.data) == ("image/png", "https://example.com/scans/page-1.PNG?sig=abc", None)
    with pytest.raises(InvalidRequestError, match="binary mode"):
        attachment(io.StringIO("text"))  # type: ignore[arg-type]
    with pytest.raises(InvalidRequestError, match="a URL must end in one of"):
        attachment("https://example.com/download?id=7")
    with pytest.raises(InvalidRequestError, match="no file at"):
        attachment("does/not/exist.png")


def test_unsupported_content_is_refused_naming_the_file(tmp_path: Path) -> None:
    blob = tmp_path / "notes.png"
    blob.write_bytes(b"\x00\x01\x02 binary, not an image")
    with pytest.raises(UnsupportedCapabilityError, match=r"notes\.png: not a supported file type"):
        Request.build("look", files=[blob])
    latin1 = tmp_path / "menu.txt"
    latin1.write_bytes("café crème".encode("latin-1"))  # not UTF-8: the encoding cannot be told, so refused
    with pytest.raises(UnsupportedCapabilityError, match=r"menu\.txt: not a supported file type"):
        Request.build("look", files=[latin1])


@pytest.mark.parametrize("raw", [
    "Ligne 1: café\r\n\tindentée\n".encode(),
    b"\xef\xbb\xbf" + "Ligne 1: café\r\n\tindentée\n".encode(),  # UTF-8 with a BOM
    "Ligne 1: café\r\n\tindentée\n".encode("utf-16"),  # BOM-marked UTF-16
])
def test_plain_text_is_told_by_content_and_sent_as_utf8_text(tmp_path: Path, raw: bytes) -> None:
    path = tmp_path / "notes.png"  # the name says image; the content says text
    path.write_bytes(raw)
    part = attachment(path)
    assert (part.media_type, part.text, part.size) == ("text/plain", "Ligne 1: café\r\n\tindentée\n", 27)  # UTF-8 bytes: é is 2
    block = encode_message(Request.build("Summarise", files=[path]).messages[0])["content"][1]
    assert block == {"type": "text", "text": '<file name="notes.png">\nLigne 1: café\r\n\tindentée\n\n</file>'}


def test_files_join_the_last_user_turn_and_encode_as_blocks() -> None:
    png, pdf = io.BytesIO(PNG), io.BytesIO(PDF)  # in memory: inline data
    png.name, pdf.name = "tiny.png", "tiny.pdf"  # type: ignore[attr-defined]
    request = Request.build("What colour?", files=[png, pdf])
    sent = json_body(encode_message(request.messages[-1]))  # inline files stream into the body
    encoded = json.loads(sent if isinstance(sent, bytes) else b"".join(sent))
    assert encoded["content"] == [
        {"type": "text", "text": "What colour?"},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64," + base64.b64encode(PNG).decode()}},
        {"type": "file", "file": {"filename": "tiny.pdf", "file_data": "data:application/pdf;base64," + base64.b64encode(PDF).decode()}},
    ]
    assert request.messages[-1].text == "What colour?"


def test_a_provider_without_vision_refuses_before_any_request(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DEEPSEEK_API_KEY", raising=False)  # the capability check comes before even the key
    with pytest.raises(UnsupportedCapabilityError, match=r"tiny\.png is image/png, but deepseek does not declare 'vision'"):
        Client("deepseek/deepseek-chat").complete("What colour?", files=[FIXTURES / "tiny.png"])


def test_an_oversized_image_names_the_file_and_the_limit(tmp_path: Path) -> None:
    big = tmp_path / "big.png"
    big.write_bytes(PNG[:16] + bytes(6 * 1024 * 1024))  # 6 MB: over Anthropic's 5 MB per image
    with pytest.raises(BadRequestError, match=r"big\.png is 6\.0 MB; anthropic accepts image/png up to 5 MB"):
        Client("anthropic/claude-sonnet-4-5", api_key="unused").complete("What colour?", files=[big])


def test_files_must_be_a_list() -> None:
    with pytest.raises(InvalidRequestError, match="files= takes a list"):
        Request.build("hi", files="fixtures/tiny.png")  # type: ignore[arg-type]


@pytest.mark.parametrize("size", [0, 1, 2, 3, 4, 5, 6, 7, 11, 12, 13, 3 * 64 * 1024 - 1, 3 * 64 * 1024, 3 * 64 * 1024 + 2])
def test_base64_built_in_chunks_is_base64(size: int) -> None:
    data = bytes((i * 7 + 3) % 256 for i in range(size))
    assert base64_text(data) == base64.b64encode(data).decode()
    assert base64_text(data, chunk=6) == base64.b64encode(data).decode()  # many chunks, padding only at the end


def test_a_large_binary_file_is_refused_from_its_first_bytes(tmp_path: Path) -> None:
    video = tmp_path / "clip.png"
    with video.open("wb") as out:
        out.write(b"\x00\x00\x00\x18ftypmp42")  # an MP4 header: binary, and no type we send
        out.truncate(200 * 1024 * 1024)  # sparse: 200 MB that reading would have to allocate
    tracemalloc.start()
    try:
        with pytest.raises(UnsupportedCapabilityError, match=r"clip\.png: not a supported file type"):
            attachment(video)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes allocated to refuse it"


def test_chunked_base64_needs_whole_groups_of_three_bytes() -> None:
    with pytest.raises(ValueError, match="multiple of 3"):
        base64_text(b"abcdef", chunk=4)


def test_a_file_object_on_a_whole_file_streams_from_disk_like_its_path(tmp_path: Path) -> None:
    path = tmp_path / "scan.pdf"
    path.write_bytes(PDF)
    with path.open("rb") as opened:
        part = attachment(opened)
    assert (part.path, part.size, part.data) == (str(path.resolve()), len(PDF), None)
    with path.open("rb") as opened:
        path.rename(tmp_path / "moved.pdf")
        path.write_bytes(PNG)  # the name now means another file: read the object itself
        part = attachment(opened)
    assert (part.media_type, part.path, base64.b64decode(part.data or "")) == ("application/pdf", None, PDF)
    with path.open("rb") as opened:  # the PNG now
        opened.read(1)  # read part-way: what is left is what the caller meant, and it is no PNG
        with pytest.raises(UnsupportedCapabilityError, match="not a supported file type"):
            attachment(opened)


def test_a_file_the_provider_holds_is_sent_by_its_uri_not_downloaded() -> None:
    # Gemini downloads no URLs, so an image URL is fetched by the client; a Files API URI names a
    # file Gemini holds (ai.google.dev/gemini-api/docs/files): it goes as fileData, untouched.
    from llmclient.pipeline import Pipeline
    from llmclient.providers import REGISTRY
    from llmclient.types import FilePart, Message, TextPart

    uri = "https://generativelanguage.googleapis.com/v1beta/files/abc-123"
    spec = REGISTRY["gemini"]
    message = Message(role="user", content=[TextPart(text="Summarise"), FilePart(media_type="application/pdf", name="f", url=uri)])
    assert not spec.fetches("https://example.com/a.pdf", "application/pdf") and spec.fetches(uri, "application/pdf")
    request = Pipeline(spec, "gemini-2.5-flash", spec.base_url, 5.0).prepare(Request.build([message]), "key", stream=False)
    parts = json.loads(request.content)["contents"][0]["parts"]
    assert parts[1] == {"fileData": {"mimeType": "application/pdf", "fileUri": uri}}
