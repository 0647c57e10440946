"""Hostile and broken input: attachments that are not regular files (symlinks to elsewhere, FIFOs,
devices, sockets, directories, /proc and /sys), call arguments JSON cannot carry or of the wrong
shape, and downloads that redirect without end, fail, or lie about their encoding. Each is
refused with a typed error naming what was wrong and where, before any request is sent, and
nothing blocks (a FIFO is never opened for a blocking read)."""

from __future__ import annotations

import base64
import concurrent.futures
import gzip
import math
import os
import socket
import tempfile
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar

import pytest

from llmclient import BadRequestError, Client, InvalidRequestError, Message, TextPart, UnsupportedCapabilityError
from llmclient.files import MAX_REDIRECTS, attachment, inline_remote_files
from llmclient.providers import REGISTRY
from llmclient.request import Request, Tool
from llmclient.types import FilePart, ToolCall
from tests.fault_server import FaultServer, fault_server  # noqa: F401 - fixture

PNG = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
T = TypeVar("T")


def within(seconds: float, call: Callable[[], T]) -> T:
    """`call()`, failing the test (instead of hanging the suite) if it blocks for `seconds`."""
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1)
    try:
        return pool.submit(call).result(timeout=seconds)
    except concurrent.futures.TimeoutError:
        pytest.fail(f"blocked for more than {seconds} s")
    finally:
        pool.shutdown(wait=False)


def refused(item: Any) -> str:
    """The message of the InvalidRequestError attaching `item` raises (within 5 s)."""
    def attach() -> str:
        with pytest.raises(InvalidRequestError) as caught:
            attachment(item)
        return str(caught.value)
    return within(5, attach)


def unblock(fifo: Path) -> None:
    """Open a FIFO's writing end without blocking, so a reader stuck in open() (a bug) is released."""
    try:
        os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
    except OSError:
        pass  # no reader: nothing to release


# --- attachments ---------------------------------------------------------------------------------


def test_a_symlink_is_followed_to_a_regular_file_and_the_part_records_the_target(tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "secret.txt").write_text("not what the name says\n")
    (elsewhere / "real.png").write_bytes(PNG)
    (tmp_path / "notes.txt").symlink_to(elsewhere / "secret.txt")
    (tmp_path / "chart.png").symlink_to(elsewhere / "real.png")

    text = attachment(tmp_path / "notes.txt")
    assert (text.name, text.resolved, text.text) == ("notes.txt", str(elsewhere / "secret.txt"), "not what the name says\n")
    assert text.label == f"notes.txt (read from {elsewhere / 'secret.txt'})"  # what errors show

    image = attachment(str(tmp_path / "chart.png"))
    assert (image.name, image.path, image.resolved, image.size) == \
        ("chart.png", str(elsewhere / "real.png"), str(elsewhere / "real.png"), len(PNG))
    assert attachment(elsewhere / "real.png").label == "real.png"  # no symlink: the name alone

    (elsewhere / "blob.bin").write_bytes(b"\x00\x01binary")
    (tmp_path / "data.txt").symlink_to(elsewhere / "blob.bin")
    with pytest.raises(UnsupportedCapabilityError, match=rf"^data\.txt \(read from {elsewhere / 'blob.bin'}\): not a supported"):
        attachment(tmp_path / "data.txt")


def test_a_symlinked_file_over_the_limit_is_named_with_what_it_leads_to(tmp_path: Path) -> None:
    (tmp_path / "huge.png").write_bytes(PNG + bytes(6 * 1024 * 1024))
    (tmp_path / "small.png").symlink_to(tmp_path / "huge.png")
    request = Request.build("Look", files=[tmp_path / "small.png"])
    from llmclient.files import check

    with pytest.raises(BadRequestError, match=rf"small\.png \(read from {tmp_path / 'huge.png'}\) is 6\.0 MB"):
        check(request.messages, REGISTRY["anthropic"], "claude-sonnet-4-5")


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    try:
        assert refused(fifo) == f"cannot attach {fifo}: it is a FIFO (named pipe), not a regular file; nothing was read"
        (tmp_path / "link.txt").symlink_to(fifo)
        message = refused(tmp_path / "link.txt")
        assert message.startswith(f"cannot attach {tmp_path / 'link.txt'} (which leads to {fifo}): it is a FIFO")
        with pytest.raises(InvalidRequestError, match=r"files\[1\]: cannot attach .*pipe\.png: it is a FIFO"):
            within(5, lambda: Request.build("Look", files=[PNG, fifo]))
    finally:
        unblock(fifo)


@pytest.mark.parametrize(("path", "found"), [
    ("/dev/zero", "it is a character device, not a regular file"),
    ("/dev/null", "it is a character device, not a regular file"),
    ("/proc/self/status", "it is a /proc file, made up by the kernel as it is read"),
    ("/proc/self/environ", "it is a /proc file"),
])
def test_devices_and_proc_files_are_refused_naming_the_path(path: str, found: str) -> None:
    if not os.path.exists(path):
        pytest.skip(f"{path} does not exist here")
    message = refused(path)
    assert message.startswith(f"cannot attach {path}") and found in message and "nothing was read" in message


def test_a_symlink_into_proc_or_to_a_device_is_refused(tmp_path: Path) -> None:
    (tmp_path / "status.txt").symlink_to("/proc/self/status")
    (tmp_path / "zeros.png").symlink_to("/dev/zero")
    message = refused(tmp_path / "status.txt")
    assert message.startswith(f"cannot attach {tmp_path / 'status.txt'} (which leads to /proc/") and "a /proc file" in message
    assert refused(tmp_path / "zeros.png") == (f"cannot attach {tmp_path / 'zeros.png'} (which leads to /dev/zero): "
                                               f"it is a character device, not a regular file; nothing was read")


def test_a_sys_file_is_refused() -> None:
    candidates = ["/sys/kernel/uevent_seqnum", "/sys/kernel/mm/transparent_hugepage/enabled", "/sys/power/state",
                  "/sys/fs/cgroup/cgroup.controllers"]
    regular = next((p for p in map(Path, candidates) if p.is_file() and os.access(p, os.R_OK)), None)
    if regular is None:
        pytest.skip("no readable /sys file here")
    assert "it is a /sys file" in refused(regular)


def test_a_directory_a_socket_a_loop_and_a_dangling_symlink_are_refused(tmp_path: Path) -> None:
    assert refused(tmp_path) == f"cannot attach {tmp_path}: it is a directory, not a regular file; nothing was read"
    with tempfile.TemporaryDirectory(dir="/tmp") as short:  # a socket path must fit in 108 bytes
        path = os.path.join(short, "s.png")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as server:
            server.bind(path)
            assert refused(path) == f"cannot attach {path}: it is a socket, not a regular file; nothing was read"
    (tmp_path / "a.png").symlink_to(tmp_path / "b.png")
    (tmp_path / "b.png").symlink_to(tmp_path / "a.png")
    assert refused(tmp_path / "a.png").startswith(f"cannot attach {tmp_path / 'a.png'}: Too many levels of symbolic links")
    (tmp_path / "gone.png").symlink_to(tmp_path / "missing.png")
    assert refused(tmp_path / "gone.png") == \
        f"no file at {tmp_path / 'gone.png'} (a symlink to {tmp_path / 'missing.png'}, which does not exist)"
    assert refused("a\0b.png") == "cannot attach 'a\\x00b.png': a path cannot hold a NUL character"
    assert "File name too long" in refused("x" * 5000)


def test_a_hand_built_part_naming_a_fifo_is_refused_before_the_request(tmp_path: Path, fault_server: FaultServer) -> None:
    fifo = tmp_path / "pipe.pdf"
    os.mkfifo(fifo)
    try:
        part = FilePart(media_type="application/pdf", name="pipe.pdf", path=str(fifo), size=0)
        message = Message(role="user", content=[TextPart(text="Read"), part])
        with pytest.raises(InvalidRequestError, match=r"pipe\.pdf: cannot send the attached file .*: it is a FIFO"):
            within(5, lambda: Client("openai/gpt-4o-mini", base_url=f"{fault_server.url}/v1",
                                     api_key="sk-test").complete([message]))
        assert fault_server.count == 0
    finally:
        unblock(fifo)


def test_a_file_replaced_by_a_fifo_after_it_was_attached_is_not_sent(tmp_path: Path, fault_server: FaultServer) -> None:
    path = tmp_path / "chart.png"
    path.write_bytes(PNG)
    message = Message(role="user", content=[TextPart(text="Look"), attachment(path)])
    path.unlink()
    os.mkfifo(path)
    client = Client("openai/gpt-4o-mini", base_url=f"{fault_server.url}/v1", api_key="sk-test")
    try:
        with pytest.raises(InvalidRequestError, match=r"chart\.png: cannot send the attached file .*: it is a FIFO"):
            within(5, lambda: client.complete([message]))
        assert fault_server.count == 0
    finally:
        unblock(path)


def test_what_is_sent_is_the_file_the_symlink_led_to_when_attached(tmp_path: Path, fault_server: FaultServer) -> None:
    (tmp_path / "first.png").write_bytes(PNG)
    (tmp_path / "second.png").write_bytes(PNG[:8] + bytes(len(PNG) - 8))  # another file of the same size
    (tmp_path / "chart.png").symlink_to(tmp_path / "first.png")
    message = Message(role="user", content=[TextPart(text="Look"), attachment(tmp_path / "chart.png")])
    (tmp_path / "chart.png").unlink()
    (tmp_path / "chart.png").symlink_to(tmp_path / "second.png")  # re-pointed after attaching
    Client("openai/gpt-4o-mini", base_url=f"{fault_server.url}/v1", api_key="sk-test").complete([message])
    block = fault_server.requests[0].body["messages"][-1]["content"][-1]
    assert block["image_url"]["url"] == "data:image/png;base64," + base64.b64encode(PNG).decode()

    (tmp_path / "first.png").write_bytes(PNG + b"grown")  # the target itself changed: the size check holds
    with pytest.raises(InvalidRequestError, match=r"chart\.png: the attached file .*first\.png changed after it was attached"):
        Client("openai/gpt-4o-mini", base_url=f"{fault_server.url}/v1", api_key="sk-test").complete([message])
    assert fault_server.count == 1


@pytest.mark.parametrize(("item", "expected"), [
    (5, "files[0]: files= takes paths, bytes, binary file objects or URLs, got int"),
    (None, "files[0]: files= takes paths, bytes, binary file objects or URLs, got NoneType"),
    (3.5, "files[0]: files= takes paths, bytes, binary file objects or URLs, got float"),
    ({"path": "a.png"}, "files[0]: files= takes paths, bytes, binary file objects or URLs, got dict"),
])
def test_files_of_unsupported_types_are_refused_naming_the_index(item: Any, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build("Look", files=[item])
    assert str(caught.value) == expected


# --- request validation --------------------------------------------------------------------------


def lookup(city: str) -> str:
    """Look a city up."""
    return city


@pytest.mark.parametrize(("tools", "expected"), [
    (5, "tools= takes a list of tools (functions, Tool objects or JSON-schema dicts), got int"),
    ("lookup", "tools= takes a list of tools (functions, Tool objects or JSON-schema dicts), got str"),
    ({"name": "lookup", "parameters": {"type": "object"}}, "got dict: wrap the one you mean in a list"),
    (lookup, "got function: wrap the one you mean in a list"),
    (Tool(name="t", parameters={"type": "object"}), "got Tool: wrap the one you mean in a list"),
    ([lookup, 5], "tools[1]: a tool must be a function, a Tool or a JSON-schema dict, got int"),
    ([int], "tools[0]: function 'int' cannot be a tool: its signature cannot be read"),
    ([{"type": "function", "function": 5}], 'tools[0]: a tool dict of type "function" needs "function": {"name": ...'),
    ([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"enum": {1, 2}}}}}],
     "tools[0]: tool 'f': parameters['properties']['x']['enum'] is of type set ({1, 2}), which is not a JSON value"),
    ([{"name": "f", "parameters": {"type": "object", "properties": {"x": {"maximum": math.inf}}}}],
     "tools[0]: tool 'f': parameters['properties']['x']['maximum'] is inf, which JSON has no number for"),
    ([Tool(name="g", parameters={"type": "object", "properties": {"y": object}})],
     "tools[0]: tool 'g': parameters['properties']['y'] is of type type"),
])
def test_tools_of_the_wrong_shape_are_refused_saying_where(tools: Any, expected: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build("Weather?", tools=tools)
    assert expected in str(caught.value)


def test_a_response_format_schema_json_cannot_carry_is_refused() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "number", "maximum": math.nan}}}
    with pytest.raises(InvalidRequestError, match=r"^response_format json_schema\.schema\['properties'\]\['n'\]\['maximum'\] is nan"):
        Request.build("Count", response_format={"type": "json_schema", "json_schema": {"name": "c", "schema": schema}})


def history(arguments: dict[str, Any]) -> list[Message]:
    call = ToolCall(id="call_1", name="lookup", arguments=arguments)
    return [Message.user("Weather?"), Message.assistant("", [call]), Message.tool_result(call, "sunny")]


@pytest.mark.parametrize(("arguments", "where", "what"), [
    ({"x": object()}, "['x']", "is of type object (<object object at"),
    ({"x": {1, 2}}, "['x']", "is of type set ({1, 2})"),
    ({"x": math.nan}, "['x']", "is nan, which JSON has no number for"),
    ({"x": [1, {"y": -math.inf}]}, "['x'][1]['y']", "is -inf, which JSON has no number for"),
    ({"x": {2: "two"}}, "['x']", "is the key 2 (int); JSON object keys are strings"),
    ({"x": b"bytes"}, "['x']", "is of type bytes (b'bytes')"),
    ({"x": "\ud800"}, "['x']", "is a lone UTF-16 surrogate '\\ud800'"),
])
def test_tool_call_arguments_json_cannot_carry_are_refused_naming_the_message(arguments: dict[str, Any], where: str,
                                                                               what: str) -> None:
    with pytest.raises(InvalidRequestError) as caught:
        Request.build(history(arguments))
    assert str(caught.value).startswith(f"messages[1].tool_calls[0] (lookup) arguments{where} {what}")


def test_a_tool_call_argument_that_contains_itself_is_refused() -> None:
    loop: dict[str, Any] = {}
    loop["self"] = loop
    with pytest.raises(InvalidRequestError, match=r"messages\[1\]\.tool_calls\[0\] \(lookup\) arguments\['x'\](\['self'\])+ "
                                                  r"is nesting deeper than 128 levels"):
        Request.build(history({"x": loop}))


def test_tool_calls_in_dict_messages_are_checked_too() -> None:
    user = {"role": "user", "content": "Weather?"}
    with pytest.raises(InvalidRequestError, match=r"^messages\[1\]\.tool_calls must be a list of tool calls, got int$"):
        Request.build([user, {"role": "assistant", "tool_calls": 5}])
    call = {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": {"when": {1.5, 2.5}}}}
    with pytest.raises(InvalidRequestError, match=r"^messages\[1\]\.tool_calls\[0\] \(lookup\) arguments\['when'\] is of type set"):
        Request.build([user, {"role": "assistant", "tool_calls": [call]}])
    with pytest.raises(InvalidRequestError, match=r"^messages\[1\]: the result of tool 'lookup' is a object"):
        Request.build([user, {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": object()}])


@pytest.mark.parametrize("prompt", [5, None, b"hi", 3.5, {"role": "user", "content": "hi"}, (m for m in [Message.user("x")])])
def test_a_prompt_of_another_type_is_refused(prompt: Any) -> None:
    with pytest.raises(InvalidRequestError, match=rf"^the prompt must be a string or a list of messages, got {type(prompt).__name__} "):
        Request.build(prompt)


def test_a_client_call_with_broken_arguments_sends_nothing(fault_server: FaultServer) -> None:
    client = Client("openai/gpt-4o-mini", base_url=f"{fault_server.url}/v1", api_key="sk-test")
    cases: list[tuple[Any, dict[str, Any]]] = [("Hi", {"tools": 5}), (history({"x": {1}}), {}), (object(), {}),
                                               ("Hi", {"files": [object()]})]
    for prompt, options in cases:
        with pytest.raises(InvalidRequestError):
            client.complete(prompt, **options)
    assert fault_server.count == 0


# --- downloads -----------------------------------------------------------------------------------


class Files(BaseHTTPRequestHandler):
    """/img.png, /hop/<n>.png (n redirects to the image), /loop.png, and broken answers."""

    def do_GET(self) -> None:
        path = self.path
        if path == "/img.png":
            self.answer(200, PNG)
        elif path == "/gz.png":
            self.answer(200, gzip.compress(PNG), {"content-encoding": "gzip"})
        elif path == "/not-gz.png":
            self.answer(200, PNG, {"content-encoding": "gzip"})
        elif path.startswith("/hop/"):
            left = int(path.removeprefix("/hop/").removesuffix(".png"))
            self.answer(302, b"", {"location": "/img.png" if left <= 1 else f"/hop/{left - 1}.png"})
        elif path == "/loop.png":
            self.answer(302, b"", {"location": "/loop.png"})
        elif path == "/to-404.png":
            self.answer(302, b"", {"location": "/404.png"})
        elif path == "/no-location.png":
            self.answer(302, b"")
        elif path == "/said-big.png":  # says 64 MB up front, sends a little, then waits for the client to give up
            self.send_response(200)
            self.send_header("content-length", str(64 * 1024 * 1024))
            self.end_headers()
            self.wfile.write(PNG)
        elif path == "/big.png":
            self.send_response(200)
            self.end_headers()  # no length: read until the server closes, or the client stops
            try:
                self.wfile.write(PNG)
                for _ in range(4096):
                    self.wfile.write(bytes(64 * 1024))
            except OSError:
                pass  # the client stopped reading: as it should
        else:
            self.answer(int(path.strip("/").removesuffix(".png")), b"nope")

    def answer(self, status: int, body: bytes, headers: dict[str, str] | None = None) -> None:
        self.send_response(status)
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def files_server() -> Iterator[str]:
    server = ThreadingHTTPServer(("127.0.0.1", 0), Files)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


GEMINI = REGISTRY["gemini"]  # downloads no URL itself: the client fetches and inlines it


def download(url: str, limit: int | None = None) -> FilePart:
    spec = GEMINI if limit is None else GEMINI.model_copy(update={"max_image_bytes": limit})
    message = Message(role="user", content=[TextPart(text="Look"), FilePart(media_type="image/png", name=url, url=url)])
    [fetched] = inline_remote_files([message], spec, "gemini-2.5-flash", 5.0)[0].files
    return fetched


def test_a_download_follows_a_few_redirects_and_decodes_gzip(files_server: str) -> None:
    for path in ("/img.png", f"/hop/{MAX_REDIRECTS}.png", "/gz.png"):
        fetched = download(files_server + path)
        assert (fetched.media_type, base64.b64decode(fetched.data or "")) == ("image/png", PNG)


@pytest.mark.parametrize(("path", "expected"), [
    (f"/hop/{MAX_REDIRECTS + 1}.png", f"more than {MAX_REDIRECTS} redirects (a redirect loop?), the last to {{url}}/img.png"),
    ("/loop.png", f"more than {MAX_REDIRECTS} redirects (a redirect loop?), the last to {{url}}/loop.png"),
    ("/no-location.png", "HTTP 302 Found without a Location header to follow"),
    ("/404.png", "HTTP 404 Not Found"),
    ("/503.png", "HTTP 503 Service Unavailable"),
    ("/not-gz.png", "its body is not valid gzip data, though the server said Content-Encoding: gzip"),
])
def test_a_download_that_fails_names_the_url_and_why(files_server: str, path: str, expected: str) -> None:
    with pytest.raises(BadRequestError) as caught:
        download(files_server + path)
    message = str(caught.value)
    assert f"could not download {files_server}{path} to send it inline (gemini does not fetch URLs itself): " in message
    assert expected.format(url=files_server) in message and message.endswith("no request was sent")


def test_a_redirected_download_that_fails_names_where_it_ended(files_server: str) -> None:
    with pytest.raises(BadRequestError, match=r"HTTP 404 Not Found at http://127\.0\.0\.1:\d+/404\.png \(redirected\)"):
        download(files_server + "/to-404.png")


def test_an_over_limit_download_is_cut_while_streaming(files_server: str) -> None:
    with pytest.raises(BadRequestError, match=r"/big\.png is over 1 MB, gemini's limit for image/png"):
        within(10, lambda: download(files_server + "/big.png", limit=1024 * 1024))
    with pytest.raises(BadRequestError, match=r"/said-big\.png is over 1 MB"):  # refused from its Content-Length
        within(10, lambda: download(files_server + "/said-big.png", limit=1024 * 1024))
