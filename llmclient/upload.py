"""Request bodies that carry attached files without holding them in memory.

litellm and the provider SDKs build a request body as one JSON document in memory, so a 10 MB
PDF would sit there as base64 text several times over: the encoded file, litellm's data URL, the
JSON text and its bytes. Instead, each inline image or PDF goes through litellm as a short
stand-in (`stand_ins`): a token in the base64 alphabet, which every route passes through as it
would the real data. Our HTTP transport (`backend._Tap`) then `splice`s the file's base64 into
the body in its place as the body is sent, read from disk (or sliced from the in-memory base64)
in chunks. The bytes on the wire are exactly those the whole-document body would have had, so
recorded cassettes match either way; only the peak memory differs.
"""

from __future__ import annotations

import base64
import os
import re
import uuid
from collections.abc import AsyncIterator, Iterator, Mapping

import httpx

from llmclient.errors import InvalidRequestError
from llmclient.types import FilePart, Message, Part

# Base64 characters only, a multiple of 4 long: a route that checks the data is base64 accepts it.
_STAND_IN = re.compile(rb"(LLMCLIENTFILE[0-9a-f]{32}QQQ)")
# A multiple of 3, so each chunk encodes without padding and the chunks' base64 concatenates.
_RAW_CHUNK = 3 * 64 * 1024
_BASE64_CHUNK = 256 * 1024

Splices = Mapping[bytes, FilePart]


def stand_ins(messages: list[Message]) -> tuple[list[Message], dict[bytes, FilePart]]:
    """`messages` with every inline image/PDF replaced by a stand-in, and what each stands for.
    Text files (sent as text) and URLs (sent as URLs) are left as they are."""
    splices: dict[bytes, FilePart] = {}

    def stand_in(part: Part) -> Part:
        if not isinstance(part, FilePart) or part.is_text or part.url is not None:
            return part
        token = f"LLMCLIENTFILE{uuid.uuid4().hex}QQQ"
        splices[token.encode("ascii")] = part
        return part.model_copy(update={"data": token, "path": None})

    swapped = [message if isinstance(message.content, str) or not message.files else
               message.model_copy(update={"content": [stand_in(part) for part in message.content]})
               for message in messages]
    return (swapped, splices) if splices else (messages, splices)


def splice(request: httpx.Request, splices: Splices) -> httpx.Request:
    """`request` with each stand-in in its body replaced, as it is sent, by the file's base64."""
    if not splices:
        return request
    try:
        body = request.content
    except httpx.RequestNotRead:
        raise InvalidRequestError(f"the body of {request.method} {request.url.copy_with(query=None)} is a stream; "
                                  f"llmclient cannot insert the attached files into it") from None
    pieces: list[bytes | FilePart] = []
    for index, piece in enumerate(_STAND_IN.split(body)):
        if index % 2 == 0:
            pieces.append(piece)
        elif piece in splices:
            pieces.append(splices[piece])
        else:
            raise InvalidRequestError(f"the request body holds a file stand-in {piece.decode()} from another call")
    missing = [part.name for token, part in splices.items() if token not in body]
    if missing:  # a route that decoded or re-encoded the data: sending it would send the stand-in
        raise InvalidRequestError(f"litellm's request to {request.url.copy_with(query=None)} does not carry "
                                  f"{', '.join(missing)} as given; the file cannot be sent on this route")
    stream = _SplicedBody(pieces)
    headers = request.headers.copy()
    headers["Content-Length"] = str(stream.length)
    return httpx.Request(request.method, request.url, headers=headers, stream=stream, extensions=request.extensions)


class _SplicedBody(httpx.SyncByteStream, httpx.AsyncByteStream):
    """The body's own bytes with each file's base64 between them; iterable again (a resend)."""

    def __init__(self, pieces: list[bytes | FilePart]) -> None:
        self._pieces = pieces
        self.length = sum(len(piece) if isinstance(piece, bytes) else _encoded_length(piece) for piece in pieces)

    def __iter__(self) -> Iterator[bytes]:
        for piece in self._pieces:
            if isinstance(piece, bytes):
                yield piece
            elif piece.path is not None:
                yield from _from_disk(piece)
            else:
                assert piece.data is not None
                for start in range(0, len(piece.data), _BASE64_CHUNK):
                    yield piece.data[start : start + _BASE64_CHUNK].encode("ascii")

    async def __aiter__(self) -> AsyncIterator[bytes]:
        # Disk reads of 192 KiB block the event loop for well under a millisecond from the page
        # cache; a thread hop per chunk would cost more than it saves.
        for chunk in self:
            yield chunk


def _encoded_length(part: FilePart) -> int:
    if part.path is None:
        assert part.data is not None
        return len(part.data)
    try:
        size = os.stat(part.path).st_size
    except OSError as exc:
        raise InvalidRequestError(f"{part.name}: the attached file {part.path} can no longer be read ({exc.strerror}); "
                                  f"nothing was sent") from exc
    if size != part.size:
        raise _changed(part, size)
    return 4 * ((size + 2) // 3)


def _from_disk(part: FilePart) -> Iterator[bytes]:
    assert part.path is not None and part.size is not None
    left = part.size
    with open(part.path, "rb") as source:
        while left > 0 and (chunk := source.read(min(_RAW_CHUNK, left))):  # a buffered read fills the chunk
            left -= len(chunk)
            yield base64.b64encode(chunk)
        if left or source.read(1):  # the Content-Length sent promised the size attached
            raise _changed(part, part.size - left if left else None)


def _changed(part: FilePart, size: int | None) -> InvalidRequestError:
    now = f"{size} bytes now" if size is not None else "it has grown since"
    return InvalidRequestError(f"{part.name}: the attached file {part.path} changed after it was attached "
                               f"({part.size} bytes then, {now}); attach it again")
