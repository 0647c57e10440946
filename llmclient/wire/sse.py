"""An incremental Server-Sent Events parser (the WHATWG event-stream format).

Bytes arrive in arbitrary pieces; events come out whole, as soon as the blank line that ends them
arrives. Lines end in CRLF, LF or CR (Gemini separates events with CRLF CRLF); `data:` lines of one
event are joined with "\\n"; comment lines (":") and the `id` and `retry` fields are skipped; one
leading byte-order mark is ignored.

Linear time: only the newly arrived text is searched for line ends, and an unfinished line is kept
as a list of pieces joined once when its end arrives, so a 20 MB event cut into 8 KiB chunks costs
what it costs in one chunk (benchmarks/sse_parse.py).

End of stream: `close` dispatches an event whose blank line never arrived (the last line is read
even without its line end). The spec discards it ("If the file ends in the middle of an event,
before the final empty line, the incomplete event is not dispatched"), and so do the openai and
anthropic SDKs' SSEDecoder (they dispatch only on an empty line); but that rule serves EventSource,
which reconnects and resumes from the last event id, and an LLM stream is never resumed: dropping
the event would only lose what arrived (Gemini's last chunk holds the finish reason and the usage).
A last event cut off mid-way is still caught: its JSON does not parse (MalformedResponseError). So
a caller must stream what `close` returns as well as what `feed` returns, or its events and its
Response differ; `close` only ever returns that one unfinished event: an event whose blank line
arrived (CR, LF or CRLF) comes out of the `feed` call that brought it.
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
        self._partial: list[str] = []  # the pieces of a line whose end has not arrived yet
        self._skip_lf = False  # the text so far ended in CR: an LF next is the rest of that CRLF
        self._event = ""
        self._data: list[str] = []
        self._has_data = False
        self._started = False

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        text = self._decoder.decode(chunk)
        if not text:  # nothing, or the first bytes of a character cut by the chunking
            return []
        if not self._started:
            self._started = True
            if text[0] == "\ufeff":  # the SSE spec skips one leading byte-order mark
                text = text[1:]
                if not text:
                    return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        if "\r" in text:
            lines = _LINE_END.split(text)
            # A CR ends its line at once; an LF at the start of the next chunk is the rest of it.
            self._skip_lf = text[-1] == "\r"
        elif not self._partial and not self._has_data and not self._event and text.endswith("\n\n"):
            single = _single_event(text[:-2])  # how servers send nearly every chunk: one whole event
            if single is not None:
                return [single]
            lines = text.split("\n")
        else:  # LF only (every provider but Gemini): str.split is several times faster than the regex
            lines = text.split("\n")
        rest = lines.pop()  # after the last line end: the start of a line still arriving
        if self._partial and lines:  # the first line ends one that began in earlier chunks
            partial = self._partial
            lines[0] = partial[0] + lines[0] if len(partial) == 1 else "".join([*partial, lines[0]])
            self._partial = []
        if rest:
            self._partial.append(rest)
        events: list[SSEEvent] = []
        for line in lines:
            self._line(line, events)
        return events

    def close(self) -> list[SSEEvent]:
        """End of stream: the last event if its blank line never came (see the module docstring),
        else nothing. Raises UnicodeDecodeError if the stream stopped inside a UTF-8 character."""
        self._decoder.decode(b"", final=True)
        events: list[SSEEvent] = []
        if self._partial:  # the last line, without its line end
            line = "".join(self._partial)
            self._partial = []
            self._line(line, events)
        self._line("", events)
        return events

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if not line:
            if self._has_data:
                events.append(SSEEvent(self._event or "message", "\n".join(self._data)))
            self._event, self._data, self._has_data = "", [], False
            return
        if line[0] == ":":
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
    kind = "message"
    if body.startswith("event:"):
        head, _, body = body.partition("\n")
        kind = head[6:].removeprefix(" ") or "message"
    if not body.startswith("data:") or "\n" in body:
        return None
    return SSEEvent(kind, body[5:].removeprefix(" "))
