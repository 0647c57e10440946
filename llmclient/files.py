"""Attachments: paths, bytes, file objects and URLs become `FilePart`s, typed by their content.

The media type is sniffed from the first bytes (magic numbers), never from the name: a PNG
called `report.pdf` is sent as a PNG. Before any request, `check` verifies that the provider
declares the capability (vision for images, pdf for PDFs) and that each file is within the
provider's limits; a violation names the file, the model and the limit.
"""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import IO, TYPE_CHECKING

from llmclient.cassette_match import replay_mismatch
from llmclient.errors import BadRequestError, InvalidRequestError, UnsupportedCapabilityError
from llmclient.providers import ProviderSpec
from llmclient.request_checks import each
from llmclient.types import FilePart, Message, TextPart

if TYPE_CHECKING:
    import httpx

FileLike = str | Path | bytes | bytearray | IO[bytes] | FilePart

# (magic prefix, offset of a second marker, that marker (b"" for none), media type)
_SIGNATURES: tuple[tuple[bytes, int, bytes, str], ...] = (
    (b"\x89PNG\r\n\x1a\n", 0, b"", "image/png"),
    (b"\xff\xd8\xff", 0, b"", "image/jpeg"),
    (b"GIF87a", 0, b"", "image/gif"),
    (b"GIF89a", 0, b"", "image/gif"),
    (b"RIFF", 8, b"WEBP", "image/webp"),
    (b"%PDF-", 0, b"", "application/pdf"),
)
_URL_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".gif": "image/gif",
              ".webp": "image/webp", ".pdf": "application/pdf"}
MB = 1024 * 1024


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes; None when it is not a supported type.
    Plain text has no magic number: see `is_plain_text`, which needs the whole content."""
    for prefix, offset, marker, media_type in _SIGNATURES:
        if head.startswith(prefix) and (not marker or head[offset : offset + len(marker)] == marker):
            return media_type
    return None


# Control characters that do not occur in text (tab, newlines, form feed and escape do).
_BINARY_CONTROLS = frozenset(range(32)) - {9, 10, 12, 13, 27}
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")


def plain_text(data: bytes) -> str | None:
    """`data` as text when it is UTF-8 (a BOM allowed) or BOM-marked UTF-16 with no binary
    control characters; None otherwise (binary, or a text encoding that cannot be told apart)."""
    for bom, codec in ((b"\xef\xbb\xbf", "utf-8-sig"), *((bom, "utf-16") for bom in _UTF16_BOMS), (b"", "utf-8")):
        if data.startswith(bom):
            try:
                text = data.decode(codec)
            except UnicodeDecodeError:
                return None
            return None if any(ord(char) in _BINARY_CONTROLS for char in text) else text
    return None


def attachment(item: FileLike) -> FilePart:
    """A `FilePart` from a path, bytes, a binary file object, an http(s) URL, or a FilePart."""
    if isinstance(item, FilePart):
        return item
    if isinstance(item, str) and item.startswith(("https://", "http://")):
        suffix = Path(item.split("?", 1)[0]).suffix.lower()
        if suffix not in _URL_TYPES:
            raise InvalidRequestError(f"cannot tell the type of {item}: a URL must end in one of {', '.join(sorted(_URL_TYPES))}")
        return FilePart(media_type=_URL_TYPES[suffix], name=item, url=item)
    if isinstance(item, (str, os.PathLike)):
        return _from_disk(Path(item))
    if isinstance(item, (bytes, bytearray)):
        return _inline(bytes(item), "bytes")
    if hasattr(item, "read"):
        on_disk = _whole_file_on_disk(item)
        if on_disk is not None:
            return _from_disk(on_disk)
        data = item.read()
        if not isinstance(data, bytes):
            raise InvalidRequestError(f"file object {getattr(item, 'name', item)!r} must be opened in binary mode ('rb')")
        return _inline(data, Path(str(getattr(item, "name", "file"))).name)
    raise InvalidRequestError(f"files= takes paths, bytes, binary file objects or URLs, got {type(item).__name__}")


def _whole_file_on_disk(item: IO[bytes]) -> Path | None:
    """The path of a binary file object opened on a regular file and not yet read from, when that
    path still names the same file (same inode): it can stream from disk like a path. Anything
    else (a stream, a socket, a file read part-way) is read from the object itself."""
    name = getattr(item, "name", None)
    try:
        if not isinstance(name, str) or "b" not in getattr(item, "mode", "") or item.tell() != 0:
            return None
        opened, named = os.fstat(item.fileno()), os.stat(name)
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is an OSError and a ValueError
        return None
    same = (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)
    return Path(name) if same and stat.S_ISREG(named.st_mode) else None


def _from_disk(path: Path) -> FilePart:
    """An image or PDF stays on disk (the request body streams it, see `llmclient.transport.FileBody`);
    text is read now, since it is sent as text rather than base64. Only a regular file is read:
    the path is resolved first (symlinks followed), and what it leads to is checked, then opened
    without blocking and checked again to be that same file."""
    with _open_regular(path) as (source, resolved):
        head = source.read(8192)
        media_type = sniff(head)
        if media_type is None:
            if _binary(head):  # refused before reading the rest of what may be a large file
                raise _unsupported(_shown(path.name, resolved), head)
            return _inline(head + source.read(), path.name, resolved)
        size = os.fstat(source.fileno()).st_size
    return FilePart(media_type=media_type, name=path.name, path=resolved, size=size, resolved=resolved)


# What a path may lead to besides a regular file; none of it is read (a FIFO would block the call,
# a device or a /proc file has no end or no fixed content).
_SPECIAL = ((stat.S_ISDIR, "a directory"), (stat.S_ISFIFO, "a FIFO (named pipe)"), (stat.S_ISCHR, "a character device"),
            (stat.S_ISBLK, "a block device"), (stat.S_ISSOCK, "a socket"))
_KERNEL_TREES = ("/proc", "/sys")  # files the kernel makes up as they are read: sizes lie, reads may not end


@contextmanager
def _open_regular(path: Path) -> Iterator[tuple[IO[bytes], str]]:
    """The regular file `path` leads to, open, and its resolved path; anything else is refused
    with an `InvalidRequestError` naming the path, where it led and what was found there."""
    where, resolved, found = _regular(path)
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0) | getattr(os, "O_NOFOLLOW", 0) \
        | getattr(os, "O_BINARY", 0)
    try:
        descriptor = os.open(resolved, flags)  # O_NONBLOCK: a FIFO swapped in since the check cannot block
    except OSError as exc:
        raise InvalidRequestError(f"cannot attach {where}: {exc.strerror or exc}") from exc
    opened = os.fstat(descriptor)
    if not stat.S_ISREG(opened.st_mode) or (opened.st_dev, opened.st_ino) != (found.st_dev, found.st_ino):
        os.close(descriptor)
        raise InvalidRequestError(f"cannot attach {where}: it was replaced while being attached; nothing was read")
    with os.fdopen(descriptor, "rb") as source:
        yield source, resolved


def check_on_disk(part: FilePart) -> None:
    """Refuse a part read from disk as the request is sent unless its path still leads to a regular
    file (not a FIFO that would block the send, a device or a /proc file): a hand-built FilePart,
    or a file replaced since it was attached. The transport then checks its size as it reads."""
    if part.path is None:
        return
    try:
        resolved, found = os.path.realpath(part.path, strict=True), os.stat(part.path)
    except (OSError, ValueError):
        return  # gone: the transport says so when it comes to read it
    _refuse_special(f"{part.name}: cannot send the attached file {part.path}", resolved, found)


def _regular(path: Path) -> tuple[str, str, os.stat_result]:
    """(the path for messages, the resolved path, its stat) of the regular file `path` leads to."""
    given = str(path) if len(str(path)) <= 240 else str(path)[:200] + "..."
    try:
        resolved = os.path.realpath(path, strict=True)
        found = os.stat(resolved)
    except FileNotFoundError as exc:
        dangling = os.path.islink(path) and f" (a symlink to {os.readlink(path)}, which does not exist)"
        raise InvalidRequestError(f"no file at {given}{dangling or ''}") from exc
    except OSError as exc:  # a symlink loop, a name too long, no permission
        raise InvalidRequestError(f"cannot attach {given}: {exc.strerror or exc}") from exc
    except ValueError as exc:  # a NUL in the path
        raise InvalidRequestError(f"cannot attach {given!r}: a path cannot hold a NUL character") from exc
    where = given if resolved == os.path.abspath(path) else f"{given} (which leads to {resolved})"
    _refuse_special(f"cannot attach {where}", resolved, found)
    return where, resolved, found


def _refuse_special(lead: str, resolved: str, found: os.stat_result) -> None:
    for test, kind in _SPECIAL:
        if test(found.st_mode):
            raise InvalidRequestError(f"{lead}: it is {kind}, not a regular file; nothing was read")
    if not stat.S_ISREG(found.st_mode):
        raise InvalidRequestError(f"{lead}: it is not a regular file (mode {found.st_mode:o}); nothing was read")
    for tree in _KERNEL_TREES:
        try:
            kernel = os.stat(tree).st_dev == found.st_dev
        except OSError:
            kernel = False
        if kernel or resolved == tree or resolved.startswith(tree + "/"):
            raise InvalidRequestError(f"{lead}: it is a {tree} file, made up by the kernel as it is "
                                      f"read, not a file on disk; nothing was read")


def _inline(data: bytes, name: str, resolved: str | None = None) -> FilePart:
    media_type = sniff(data[:16])
    if media_type is None:
        text = plain_text(data)
        if text is None:
            raise _unsupported(_shown(name, resolved), data)
        data, media_type = text.encode("utf-8"), "text/plain"  # one encoding on the wire, whatever came in
    return FilePart(media_type=media_type, name=name, data=base64_text(data), size=len(data), resolved=resolved)


def _shown(name: str, resolved: str | None) -> str:
    """A file's name for messages, with the file really read when a symlink led elsewhere (as `FilePart.label`)."""
    return name if resolved is None or os.path.basename(resolved) == name else f"{name} (read from {resolved})"


def _binary(head: bytes) -> bool:
    """Whether the first bytes already rule out text: a control character no text has (UTF-8
    encodes those as themselves; UTF-16, whose bytes include such values, starts with a BOM)."""
    return not head.startswith(_UTF16_BOMS) and any(byte in _BINARY_CONTROLS for byte in head)


def _unsupported(name: str, head: bytes) -> UnsupportedCapabilityError:
    return UnsupportedCapabilityError(
        f"{name}: not a supported file type (PNG, JPEG, GIF, WebP, PDF or UTF-8 text, told by content, "
        f"not name); it begins {head[:8]!r}"
    )


def text_bytes(part: FilePart) -> int:
    """The size of an attached text file (sent as text, so counted as tokens): its size on disk,
    or its inline base64's decoded length."""
    return part.size if part.size is not None else len(part.data or "") * 3 // 4


def base64_text(data: bytes, chunk: int = 3 * 64 * 1024) -> str:
    """`data` base64-encoded, built in place: `base64.b64encode(data).decode()` holds the encoded
    bytes and the text at once (2.7x the data); appending to the only reference to a str resizes
    it in place in CPython, so the peak is the text itself plus one chunk (1.35x)."""
    if chunk % 3:
        raise ValueError(f"chunk must be a multiple of 3 (so only the last piece is padded), got {chunk}")
    view, text = memoryview(data), ""
    for start in range(0, len(data), chunk):
        text += base64.b64encode(view[start : start + chunk]).decode("ascii")
    return text


def with_files(messages: list[Message], files: Sequence[FileLike]) -> list[Message]:
    """`messages` with the files attached to the last user turn."""
    parts = each(files, "files", attachment)
    if not parts:
        return messages
    last = max((i for i, m in enumerate(messages) if m.role == "user"), default=None)
    if last is None:
        raise InvalidRequestError("files= needs a user message to attach them to")
    message = messages[last]
    content: list[TextPart | FilePart] = [TextPart(text=message.content)] if isinstance(message.content, str) else list(message.content)
    return [*messages[:last], message.model_copy(update={"content": [*content, *parts]}), *messages[last + 1 :]]


def check(messages: Iterable[Message], spec: ProviderSpec, model: str) -> None:
    """Raise before any request if a file cannot go to this provider: capability, then size."""
    for message in messages:
        for part in message.files:
            if part.is_text:
                if part.url is not None:
                    raise InvalidRequestError(f"{part.label}: a text file is sent as text, so it must be inline, not a URL")
                continue  # text goes as a text block: every provider takes it, the context window is the limit
            needed = "vision" if part.is_image else "pdf"
            if needed not in spec.capabilities:
                raise UnsupportedCapabilityError(
                    f"{part.label} is {part.media_type}, but {spec.name} does not declare {needed!r} input; "
                    f"no request was sent",
                    provider=spec.name, model=model,
                )
            limit = spec.max_file_bytes(part.media_type)
            if part.size is not None and part.size > limit:
                raise BadRequestError(
                    f"{part.label} is {part.size / MB:.1f} MB; {spec.name} accepts {part.media_type} up to "
                    f"{limit / MB:.0f} MB inline; no request was sent",
                    provider=spec.name, model=model,
                )



def place_tool_result_files(messages: list[Message]) -> list[Message]:
    """For providers whose tool results are text only: each tool result keeps its text plus a
    "See file <name>." line per file, and the files follow the run of results in one user turn,
    each introduced by "This is file <name>:" (what real clients send to these providers)."""
    placed: list[Message] = []
    pending: list[TextPart | FilePart] = []
    for message in messages:
        if message.role != "tool" and pending:
            placed.append(Message(role="user", content=pending))
            pending = []
        if message.role == "tool" and message.files:
            lines = [message.text] if message.text else []
            lines += [f"See file {part.name}." for part in message.files]
            placed.append(message.model_copy(update={"content": "\n".join(lines)}))
            for part in message.files:
                pending += [TextPart(text=f"This is file {part.name}:"), part]
        else:
            placed.append(message)
    if pending:
        placed.append(Message(role="user", content=pending))
    return placed


def _downloaded(part: object, spec: ProviderSpec) -> bool:
    """Whether the client downloads this part for `spec`: a URL the provider does not read itself."""
    return isinstance(part, FilePart) and part.url is not None and not spec.fetches(part.url, part.media_type)


def downloads(messages: list[Message], spec: ProviderSpec) -> bool:
    """Whether sending `messages` to `spec` downloads a file first (see `inline_remote_files`)."""
    return any(_downloaded(part, spec) for m in messages for part in m.files)


def inline_remote_files(messages: list[Message], spec: ProviderSpec, model: str, timeout: float | None) -> list[Message]:
    """`messages` with each URL file the provider does not download itself downloaded and inlined
    (as real clients do, e.g. for Gemini, or PDFs to OpenAI)."""
    if not downloads(messages, spec):
        return messages
    return [m if not any(_downloaded(p, spec) for p in m.files) else
            m.model_copy(update={"content": [_fetched(p, spec, model, timeout) if isinstance(p, FilePart) and _downloaded(p, spec)
                                             else p for p in m.content]})
            for m in messages]


MAX_REDIRECTS = 5  # for a download; a provider's answer is never redirected (see llmclient.transport)


def _fetched(part: FilePart, spec: ProviderSpec, model: str, timeout: float | None) -> FilePart:
    import httpx

    from llmclient.transport import shared_tls_context  # the transport builds on this module

    assert part.url is not None
    limit = spec.max_file_bytes(part.media_type)

    def refused(why: str) -> BadRequestError:
        return BadRequestError(f"could not download {part.url} to send it inline ({spec.name} does not fetch URLs "
                               f"itself): {why}; no request was sent", provider=spec.name, model=model)

    def over() -> BadRequestError:
        return BadRequestError(f"{part.url} is over {limit / MB:.0f} MB, {spec.name}'s limit for "
                               f"{part.media_type}; no request was sent", provider=spec.name, model=model)

    try:
        with (httpx.Client(timeout=timeout or 30.0, follow_redirects=True, max_redirects=MAX_REDIRECTS,
                           verify=shared_tls_context()) as http,
              http.stream("GET", part.url) as reply):
            if not reply.is_success:
                raise refused(_status_problem(reply, part.url))
            declared = reply.headers.get("content-length", "")
            if declared.isdigit() and int(declared) > limit and "content-encoding" not in reply.headers:
                raise over()  # said up front: nothing to read
            data = bytearray()
            try:
                for chunk in reply.iter_bytes():  # decoded: a compressed body is limited by what it inflates to
                    data += chunk
                    if len(data) > limit:
                        raise over()
            except httpx.DecodingError as exc:
                encoding = reply.headers.get("content-encoding", "")
                raise refused(f"its body is not valid {encoding} data, though the server said Content-Encoding: "
                              f"{encoding} ({exc})") from exc
    except httpx.TooManyRedirects as exc:
        raise refused(f"more than {MAX_REDIRECTS} redirects (a redirect loop?), the last to {exc.request.url}") from exc
    except httpx.HTTPError as exc:
        raise refused(str(exc) or type(exc).__name__) from exc
    except Exception as exc:
        mismatch = replay_mismatch(exc, f"GET {part.url} (downloaded to send it inline to {spec.name})", spec.name, model)
        if mismatch is not None:
            raise mismatch from exc
        raise
    fetched = _inline(bytes(data), part.name)
    if fetched.media_type != part.media_type:
        raise BadRequestError(f"{part.url} is named like {part.media_type} but its content is {fetched.media_type}",
                              provider=spec.name, model=model)
    return fetched


def _status_problem(reply: httpx.Response, url: str) -> str:
    """Why a download's answer (not 2xx) is not the file."""
    status = f"HTTP {reply.status_code} {reply.reason_phrase}".rstrip()
    where = "" if str(reply.url) == url else f" at {reply.url} (redirected)"
    if 300 <= reply.status_code < 400:
        location = reply.headers.get("location")
        return f"{status}{where} " + ("without a Location header to follow" if location is None
                                      else f"to {location}, which is not followed")
    return f"{status}{where}"
