"""Attachments: paths, bytes, file objects and URLs become `FilePart`s, typed by their content.

The media type is sniffed from the first bytes (magic numbers), never from the name: a PNG
called `report.pdf` is sent as a PNG. Before any request, `check` verifies that the provider
declares the capability (vision for images, pdf for PDFs) and that each file is within the
provider's limits; a violation names the file, the model and the limit.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import IO

from llmclient.errors import BadRequestError, InvalidRequestError, UnsupportedCapabilityError
from llmclient.providers import ProviderSpec
from llmclient.types import FilePart, Message, TextPart

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
# Per-file inline size limits from the providers' documentation (bytes before base64).
IMAGE_LIMITS = {"anthropic": 5 * MB, "openai": 20 * MB, "gemini": 20 * MB, "groq": 4 * MB, "mistral": 10 * MB}
PDF_LIMITS = {"anthropic": 32 * MB, "openai": 32 * MB, "gemini": 20 * MB, "openrouter": 32 * MB}
DEFAULT_LIMIT = 20 * MB


def sniff(head: bytes) -> str | None:
    """The media type of a file from its first bytes; None when it is not a supported type."""
    for prefix, offset, marker, media_type in _SIGNATURES:
        if head.startswith(prefix) and (not marker or head[offset : offset + len(marker)] == marker):
            return media_type
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
    if isinstance(item, (str, Path)):
        path = Path(item)
        if not path.is_file():
            raise InvalidRequestError(f"no file at {path}")
        return _inline(path.read_bytes(), path.name)
    if isinstance(item, (bytes, bytearray)):
        return _inline(bytes(item), "bytes")
    if hasattr(item, "read"):
        data = item.read()
        if not isinstance(data, bytes):
            raise InvalidRequestError(f"file object {getattr(item, 'name', item)!r} must be opened in binary mode ('rb')")
        return _inline(data, Path(str(getattr(item, "name", "file"))).name)
    raise InvalidRequestError(f"files= takes paths, bytes, binary file objects or URLs, got {type(item).__name__}")


def _inline(data: bytes, name: str) -> FilePart:
    media_type = sniff(data[:16])
    if media_type is None:
        raise UnsupportedCapabilityError(
            f"{name}: not a supported file type (PNG, JPEG, GIF, WebP or PDF, told by content, not name); "
            f"it begins {data[:8]!r}"
        )
    return FilePart(media_type=media_type, name=name, data=base64.b64encode(data).decode("ascii"), size=len(data))


def with_files(messages: list[Message], files: Sequence[FileLike]) -> list[Message]:
    """`messages` with the files attached to the last user turn."""
    parts = [attachment(item) for item in files]
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
            needed = "vision" if part.is_image else "pdf"
            if needed not in spec.capabilities:
                raise UnsupportedCapabilityError(
                    f"{part.name} is {part.media_type}, but {spec.name} does not declare {needed!r} input; "
                    f"no request was sent",
                    provider=spec.name, model=model,
                )
            limits = IMAGE_LIMITS if part.is_image else PDF_LIMITS
            limit = limits.get(spec.name, DEFAULT_LIMIT)
            if part.size is not None and part.size > limit:
                raise BadRequestError(
                    f"{part.name} is {part.size / MB:.1f} MB; {spec.name} accepts {part.media_type} up to "
                    f"{limit / MB:.0f} MB inline; no request was sent",
                    provider=spec.name, model=model,
                )

