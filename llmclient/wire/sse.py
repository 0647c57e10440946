"""An incremental Server-Sent Events parser (the WHATWG event-stream format).

Bytes arrive in arbitrary pieces; events come out whole. Lines end in CRLF, LF or CR (Gemini
separates events with CRLF CRLF), `data:` lines of one event are joined with "\\n", comment lines
(":") are skipped.
"""

from __future__ import annotations

import codecs
import re
from typing import NamedTuple

# Only these end a line: str.splitlines() would also split on U+2028 and friends inside JSON text.
_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEEvent(NamedTuple):  # a tuple: one is made per event of every stream
    event: str
    data: str


class SSEParser:
    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._pending = ""
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._pending + self._decoder.decode(chunk)
        if not self._started and text:
            self._started = True
            text = text.removeprefix("\ufeff")  # the SSE spec skips one leading byte-order mark
        if not self._pending and not self._has_data and not self._event and text.endswith("\n\n"):
            single = _single_event(text[:-2])
            if single is not None:
                return [single]
        if "\r" in text:
            # A trailing CR may be the first half of a CRLF split across chunks: keep it for later.
            keep_cr = text.endswith("\r")
            lines = _LINE_END.split(text[:-1] if keep_cr else text)
            self._pending = lines.pop() + ("\r" if keep_cr else "")
        else:  # LF only (every provider but Gemini): str.split is several times faster than the regex
            lines = text.split("\n")
            self._pending = lines.pop()
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """Flush at end of stream: a last event without its blank line still counts."""
        events: list[SSEEvent] = []
        rest = self._pending + self._decoder.decode(b"", final=True)
        self._pending = ""
        for line in _LINE_END.split(rest):
            self._line(line, events)
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._has_data:
                events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data, self._has_data = "", [], False
            return
        if line.startswith(":"):
            return
        field, _, value = line.partition(":")
        value = value.removeprefix(" ")
        if field == "data":
            self._data.append(value)
            self._has_data = True
        elif field == "event":
            self._event = value


def _single_event(body: str) -> SSEEvent | None:
    """The one event a chunk holds when it is exactly `[event: X\n]data: Y` (how servers send
    nearly every chunk); None for anything else, which the line parser reads."""
    if "\r" in body:
        return None
    kind = "message"
    if body.startswith("event:"):
        head, _, body = body.partition("\n")
        kind = head[6:].removeprefix(" ") or "message"
    if not body.startswith("data:") or "\n" in body:
        return None
    return SSEEvent(kind, body[5:].removeprefix(" "))
