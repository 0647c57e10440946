"""llmclient.wire.sse.SSEParser: whole events out of bytes cut anywhere (WHATWG event-stream).

Hand-written streams per provider and per line ending (LF, CRLF, CR), each parsed whole, cut at
every byte position, cut at every pair of positions (a small stream holding every hazard: a BOM,
a comment, id and retry fields, multi-byte characters, CRLF, CR, no last blank line) and fed a byte
at a time; a property test (hypothesis, when installed) that any chunking of a generated stream
gives the same events; and, through the public API, that a stream's deltas are its Response.
Speed is measured by benchmarks/sse_parse.py, not here: no timed assertions."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import pytest

from llmclient import Client, transport
from llmclient.wire.sse import SSEEvent, SSEParser

try:
    from hypothesis import given, settings
    from hypothesis import strategies as st
except ImportError:  # a dev dependency: without it the exhaustive splits below still run
    HYPOTHESIS = False
else:
    HYPOTHESIS = True


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


def parse_split(chunks: list[bytes]) -> tuple[list[SSEEvent], list[SSEEvent]]:
    """(what the feed calls returned, what close returned)."""
    parser = SSEParser()
    fed = [event for chunk in chunks for event in parser.feed(chunk)]
    return fed, parser.close()


def with_line_end(body: bytes, end: bytes) -> bytes:
    return body.replace(b"\n", end)


# An OpenAI-style stream with an OpenRouter keep-alive comment and a non-ASCII delta.
OPENAI_STREAM = (
    b": OPENROUTER PROCESSING\n\n"
    b'data: {"choices":[{"index":0,"delta":{"content":"Caf\xc3\xa9 \xe2\x9c\x93"}}]}\n\n'
    b"data: [DONE]\n\n"
)
OPENAI_EVENTS = [
    SSEEvent("message", '{"choices":[{"index":0,"delta":{"content":"Caf\u00e9 \u2713"}}]}'),
    SSEEvent("message", "[DONE]"),
]
# Anthropic: typed events, a ping between them.
ANTHROPIC_STREAM = (
    b'event: message_start\ndata: {"type":"message_start"}\n\n'
    b'event: ping\ndata: {"type": "ping"}\n\n'
    b'event: content_block_delta\ndata: {"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}\n\n'
    b'event: message_stop\ndata: {"type":"message_stop"}\n\n'
)
ANTHROPIC_EVENTS = [
    SSEEvent("message_start", '{"type":"message_start"}'),
    SSEEvent("ping", '{"type": "ping"}'),
    SSEEvent("content_block_delta", '{"type":"content_block_delta","delta":{"type":"text_delta","text":"Hi"}}'),
    SSEEvent("message_stop", '{"type":"message_stop"}'),
]
# Gemini (alt=sse) separates events with CRLF CRLF.
GEMINI_STREAM = (
    b'data: {"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}\r\n\r\n'
    b'data: {"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]}\r\n\r\n'
)
GEMINI_EVENTS = [
    SSEEvent("message", '{"candidates": [{"content": {"parts": [{"text": "Hel"}]}}]}'),
    SSEEvent("message", '{"candidates": [{"content": {"parts": [{"text": "lo"}]}, "finishReason": "STOP"}]}'),
]
# Bare CR line ends are legal too.
CR_STREAM = b"data: a\r\rdata: b\rdata: c\r\r"
CR_EVENTS = [SSEEvent("message", "a"), SSEEvent("message", "b\nc")]
# Every field and hazard at once, small enough to cut at every pair of positions: a BOM, a comment,
# id and retry (ignored), an event type, multi-byte characters (2, 3 and 4 bytes), a data line with
# no space after the colon, U+2028 inside data, CRLF, LF and CR line ends, and a last event
# without its blank line (and without its line end).
SMALL_STREAM = (
    b"\xef\xbb\xbf: ping\r\nid: 1\r\nretry: 10\r\nevent: e\r\ndata: \xc3\xa9\xe2\x9c\x93\xf0\x9f\x98\x80\r\n\r\n"
    b"data:a\xe2\x80\xa8b\ndata: c\n\n"
    b"data: x\rdata: y\r\r"
    b"data: z"
)
SMALL_EVENTS = [
    SSEEvent("e", "\u00e9\u2713\U0001f600"),
    SSEEvent("message", "a\u2028b\nc"),
    SSEEvent("message", "x\ny"),
    SSEEvent("message", "z"),
]
STREAMS = {
    "openai": (OPENAI_STREAM, OPENAI_EVENTS),
    "openai-crlf": (with_line_end(OPENAI_STREAM, b"\r\n"), OPENAI_EVENTS),
    "openai-cr": (with_line_end(OPENAI_STREAM, b"\r"), OPENAI_EVENTS),
    "anthropic": (ANTHROPIC_STREAM, ANTHROPIC_EVENTS),
    "anthropic-crlf": (with_line_end(ANTHROPIC_STREAM, b"\r\n"), ANTHROPIC_EVENTS),
    "anthropic-cr": (with_line_end(ANTHROPIC_STREAM, b"\r"), ANTHROPIC_EVENTS),
    "gemini-crlf": (GEMINI_STREAM, GEMINI_EVENTS),
    "cr-only": (CR_STREAM, CR_EVENTS),
    "bom-openai": (b"\xef\xbb\xbf" + OPENAI_STREAM, OPENAI_EVENTS),
    # The last blank line missing (the last line still ended), and the last line end missing too.
    "openai-no-last-blank-line": (OPENAI_STREAM[:-1], OPENAI_EVENTS),
    "openai-no-last-line-end": (OPENAI_STREAM[:-2], OPENAI_EVENTS),
    "anthropic-crlf-no-last-blank-line": (with_line_end(ANTHROPIC_STREAM, b"\r\n")[:-2], ANTHROPIC_EVENTS),
    "gemini-no-last-blank-line": (GEMINI_STREAM[:-2], GEMINI_EVENTS),
    "gemini-no-last-line-end": (GEMINI_STREAM[:-4], GEMINI_EVENTS),
    "cr-no-last-blank-line": (CR_STREAM[:-1], CR_EVENTS),
    "small": (SMALL_STREAM, SMALL_EVENTS),
    # Values that look like fields: a chunk that starts inside such a line is not an event of its own.
    "fields-in-values": ((b"event: event: x\ndata: data: y\n\n: data: z\n\ndata: event: w\n\ndata: data: v\n\n"
                          b": event: e\ndata: u\n\n"),
                         [SSEEvent("event: x", "data: y"), SSEEvent("message", "event: w"), SSEEvent("message", "data: v"),
                          SSEEvent("message", "u")]),
}


@pytest.mark.parametrize("name", STREAMS)
def test_whole_stream_in_one_chunk(name: str) -> None:
    body, expected = STREAMS[name]
    assert parse(body) == expected


@pytest.mark.parametrize("name", STREAMS)
def test_split_at_every_byte_position(name: str) -> None:
    body, expected = STREAMS[name]
    for cut in range(len(body) + 1):
        assert parse(body[:cut], body[cut:]) == expected, f"cut at byte {cut}: {body[:cut]!r}"


@pytest.mark.parametrize("name", STREAMS)
def test_one_byte_at_a_time(name: str) -> None:
    body, expected = STREAMS[name]
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == expected


@pytest.mark.parametrize("name", ["small", "gemini-crlf", "cr-only", "fields-in-values"])
def test_split_at_every_pair_of_positions(name: str) -> None:
    # Three chunks, every way: a cut inside CRLF, inside a character, inside "data:" or the BOM,
    # next to another cut (an empty chunk), each in combination with every other.
    body, expected = STREAMS[name]
    for first in range(len(body) + 1):
        for second in range(first, len(body) + 1):
            chunks = [body[:first], body[first:second], body[second:]]
            assert parse(*chunks) == expected, f"cut at bytes {first} and {second}: {chunks!r}"


@pytest.mark.parametrize("name", [name for name in STREAMS if "no-last" not in name and name != "small"])
def test_a_stream_with_its_last_blank_line_leaves_nothing_for_close(name: str) -> None:
    # Every event came out of the feed call that brought its blank line, however the stream is cut:
    # a caller that streams only what feed returns misses nothing.
    body, expected = STREAMS[name]
    for cut in range(len(body) + 1):
        assert parse_split([body[:cut], body[cut:]]) == (expected, []), f"cut at byte {cut}"


@pytest.mark.parametrize("name", [name for name in STREAMS if "no-last" in name] + ["small"])
def test_close_gives_only_the_last_event_when_its_blank_line_never_came(name: str) -> None:
    body, expected = STREAMS[name]
    for cut in range(len(body) + 1):
        assert parse_split([body[:cut], body[cut:]]) == (expected[:-1], expected[-1:]), f"cut at byte {cut}"


def emerging(body: bytes) -> list[tuple[int, SSEEvent]]:
    """Fed a byte at a time: each event with the number of bytes fed when it came out."""
    parser = SSEParser()
    return [(end, event) for end in range(1, len(body) + 1) for event in parser.feed(body[end - 1 : end])]


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == [SSEEvent("message", "one")]
    assert parser.feed(b"o\n\n") == [SSEEvent("message", "two")]
    assert parser.close() == []


def test_a_cr_ends_its_line_at_once() -> None:
    # A CR ends the line it closes without waiting to see whether an LF follows: the event of
    # "data: a CR CR" is complete at the second CR, and of "data: b CRLF CRLF" at the second CR too.
    body = b"data: a\r\rdata: b\r\n\r\ndata: c\n\n"
    assert emerging(body) == [(9, SSEEvent("message", "a")), (19, SSEEvent("message", "b")), (29, SSEEvent("message", "c"))]


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("message", "a")]  # CRLF, then the CR of the blank line
    assert parser.feed(b"\ndata: b\r") == []  # that CR's LF, skipped: no second blank line
    assert parser.feed(b"\n") == []
    assert parser.feed(b"\r\n") == [SSEEvent("message", "b")]
    assert parser.close() == []


def test_lf_after_a_cr_is_skipped_only_once_and_only_right_after_it() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"") == []  # an empty chunk between the CR and its LF changes nothing
    assert parser.feed(b"\n") == []  # the CRLF's LF: not a blank line
    assert parser.feed(b"\n") == [SSEEvent("message", "a")]  # a second LF is one


def test_a_character_cut_after_a_cr_waits_for_its_other_bytes() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r\r\xe2") == [SSEEvent("message", "a")]
    assert parser.feed(b"\x9c") == []
    assert parser.feed(b"\x93") == []  # "✓" begins the next line: not an LF, so nothing is skipped
    assert parser.feed(b": comment\n\n") == []  # the line is "✓: comment", a field named "✓", not a comment


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"data: a\rdata: b\r\r", [SSEEvent("message", "a\nb")], id="cr-only-line-ends"),
        pytest.param(b"data: line one\ndata: line two\ndata:\ndata: end\n\n", [SSEEvent("message", "line one\nline two\n\nend")],
                     id="multi-line-data-joined-with-lf"),
        pytest.param(b"data: a\r\ndata: b\rdata: c\n\r\n", [SSEEvent("message", "a\nb\nc")], id="mixed-line-ends"),
        pytest.param(b"data:no-space\n\n", [SSEEvent("message", "no-space")], id="no-space-after-colon"),
        pytest.param(b"data:  two spaces\n\n", [SSEEvent("message", " two spaces")], id="only-one-leading-space-stripped"),
        pytest.param(b"data: a: b\n\n", [SSEEvent("message", "a: b")], id="colon-inside-value"),
        pytest.param(b"data\n\n", [SSEEvent("message", "")], id="field-without-colon"),
        pytest.param(b"data:\n\n", [SSEEvent("message", "")], id="empty-data-still-dispatches"),
        pytest.param(b": keep-alive\ndata: x\n: another comment\ndata: y\n\n", [SSEEvent("message", "x\ny")], id="comments-skipped"),
        pytest.param(b": ping\r\n\r\n: ping\r\r:\n\n", [], id="ping-comments-alone"),
        pytest.param(b": only a comment\n\n", [], id="comment-only-block"),
        pytest.param(b"event: ping\n\n", [], id="event-without-data-not-dispatched"),
        pytest.param(b"id: 7\nretry: 3000\ndata: z\n\n", [SSEEvent("message", "z")], id="id-and-retry-ignored"),
        pytest.param(b"id: 7\n\nretry: x\n\ndata: z\n\n", [SSEEvent("message", "z")], id="id-or-retry-alone-not-dispatched"),
        pytest.param(b"Data: x\ndata : y\nevent: e\n\n", [], id="field-names-exact-and-case-sensitive"),
        pytest.param(b"event: error\ndata: {}\n\ndata: {}\n\n", [SSEEvent("error", "{}"), SSEEvent("message", "{}")],
                     id="event-type-resets-after-dispatch"),
        pytest.param(b"event: a\nevent: b\ndata: x\n\n", [SSEEvent("b", "x")], id="last-event-type-wins"),
        pytest.param(b"event:\ndata: x\n\n", [SSEEvent("message", "x")], id="empty-event-type-is-message"),
        pytest.param(b"event: ping\n\ndata: x\n\n", [SSEEvent("message", "x")], id="event-type-reset-by-empty-block"),
        pytest.param(b"\n\n\ndata: x\n\n\n\n", [SSEEvent("message", "x")], id="extra-blank-lines"),
        pytest.param('data: {"t": "a\u2028b\u0085c"}\n\n'.encode(), [SSEEvent("message", '{"t": "a\u2028b\u0085c"}')],
                     id="unicode-line-separators-are-not-line-ends"),
        pytest.param(b"\xef\xbb\xbf\xef\xbb\xbfdata: x\n\n", [], id="only-one-bom-skipped"),
        pytest.param(b"data: x\n\n\xef\xbb\xbfdata: y\n\n", [SSEEvent("message", "x")], id="bom-mid-stream-not-skipped"),
        pytest.param(b"data: a\xef\xbb\xbf\n\n", [SSEEvent("message", "a\ufeff")], id="bom-inside-data-kept"),
        pytest.param(b"data: last event without blank line", [SSEEvent("message", "last event without blank line")],
                     id="close-flushes-unterminated-event"),
        pytest.param(b"data: last\n", [SSEEvent("message", "last")], id="close-flushes-event-without-blank-line"),
        pytest.param(b"data: last\r", [SSEEvent("message", "last")], id="close-flushes-trailing-cr"),
        pytest.param(b"data: last\r\n", [SSEEvent("message", "last")], id="close-flushes-trailing-crlf"),
        pytest.param(b"event: e\ndata: a\ndata: b", [SSEEvent("e", "a\nb")], id="close-flushes-multi-line-event"),
        pytest.param(b"data: x\n\nevent: e\n", [SSEEvent("message", "x")], id="close-does-not-invent-an-event-without-data"),
        pytest.param(b"data: x\n\n: trailing comment", [SSEEvent("message", "x")], id="close-after-a-comment"),
        pytest.param(b"\xef\xbb\xbf", [], id="only-a-bom"),
        pytest.param(b"", [], id="empty-stream"),
    ],
)
def test_framing(body: bytes, expected: list[SSEEvent]) -> None:
    assert parse(body) == expected
    assert parse(*(body[i : i + 1] for i in range(len(body)))) == expected


def test_multibyte_character_split_across_chunks() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: \xe2\x9c") == []  # first two bytes of U+2713
    assert parser.feed(b"\x93\n\n") == [SSEEvent("message", "\u2713")]


def test_bom_split_across_chunks_is_still_the_leading_bom() -> None:
    parser = SSEParser()
    assert parser.feed(b"\xef") == []
    assert parser.feed(b"\xbb") == []
    assert parser.feed(b"\xbfdata: x\n\n") == [SSEEvent("message", "x")]


def test_invalid_utf8_raises() -> None:
    with pytest.raises(UnicodeDecodeError):
        SSEParser().feed(b"data: \xff\xfe\n\n")


def test_truncated_multibyte_at_close_raises() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: \xe2\x9c") == []
    with pytest.raises(UnicodeDecodeError):
        parser.close()


def test_leading_byte_order_mark_is_ignored() -> None:
    assert parse(b"\xef\xbb\xbfdata: x\n\n") == [SSEEvent("message", "x")]


@pytest.mark.parametrize("line_end", [b"\n", b"\r\n", b"\r"], ids=["lf", "crlf", "cr"])
@pytest.mark.parametrize("piece", [1000, 8192, 65536])
def test_a_large_event_in_many_chunks_arrives_whole(line_end: bytes, piece: int) -> None:
    # The shape that was quadratic: one 2 MB line cut into many chunks (its speed is measured by
    # benchmarks/sse_parse.py). A cut can fall between the CR and LF of the line ends too.
    value = '{"x": "' + "\u00e9a" * 700_000 + '"}'
    body = b"event: big" + line_end + b"data: " + value.encode() + line_end + b"data: [tail]" + line_end * 2
    expected = [SSEEvent("big", value + "\n[tail]")]
    parser = SSEParser()
    events = [event for at in range(0, len(body), piece) for event in parser.feed(body[at : at + piece])]
    assert (events, parser.close()) == (expected, [])


def test_many_lines_of_one_event_in_many_chunks() -> None:
    lines = [f"line {i} \u2713" for i in range(20_000)]
    body = "".join(f"data: {line}\r\n" for line in lines).encode() + b"\r\n"
    assert parse(*(body[at : at + 777] for at in range(0, len(body), 777))) == [SSEEvent("message", "\n".join(lines))]


# --- any chunking, generated -----------------------------------------------------------------------

if HYPOTHESIS:
    LINE_ENDS = st.sampled_from(["\n", "\r\n", "\r"])
    # Anything but CR and LF (they end lines) and lone surrogates (not encodable): U+2028, U+0085,
    # U+FEFF, NUL, colons, spaces and astral characters included.
    VALUE = st.one_of(st.text(st.characters(blacklist_characters="\r\n", blacklist_categories=("Cs",)), max_size=12),
                      st.sampled_from(["", " ", "data: x", "event: e", ": c", "\ufeff", "\u2028", "\x85", "\U0001f600"]))

    @st.composite
    def generated_streams(draw: st.DrawFn) -> tuple[bytes, list[SSEEvent]]:
        """A stream and the events it holds: events of 1-3 data lines with or without a type,
        comments, id and retry fields and blocks without data between them, each line ended by
        its own LF, CRLF or CR; maybe a BOM, maybe no last blank line."""
        parts = ["\ufeff"] if draw(st.booleans()) else []  # lines and line ends, in turn after the BOM
        expected: list[SSEEvent] = []

        def line(text: str) -> None:
            end = draw(LINE_ENDS)
            if not text and end == "\n" and parts and parts[-1].endswith("\r"):
                end = "\r\n"  # an LF right after a CR would be the rest of that CRLF, not a blank line
            parts.extend((text, end))

        for _ in range(draw(st.integers(0, 4))):
            for _ in range(draw(st.integers(0, 2))):  # noise: dispatches nothing
                line(draw(st.sampled_from([": ping", ":", "id: 1", "retry: 1000", "retry: x", "unknown: y"])))
            kind = draw(st.one_of(st.none(), VALUE))
            if kind is not None:
                line("event: " + kind)
            values = draw(st.lists(VALUE, min_size=0, max_size=3))
            for value in values:  # "data:" then one space, which the parser strips (a value may begin with one)
                line("data: " + value)
            if values:
                expected.append(SSEEvent(kind or "message", "\n".join(values)))
            line("")  # the blank line that dispatches it
        if expected and draw(st.booleans()):  # the last blank line missing: close() dispatches the event
            del parts[-2:]
            if parts and draw(st.booleans()):  # and the last line's end too
                parts.pop()
        text = "".join(parts)
        return text.encode(), expected

    @settings(max_examples=400, deadline=None, derandomize=True, database=None)
    @given(stream=generated_streams(), data=st.data())
    def test_any_chunking_gives_the_same_events(stream: tuple[bytes, list[SSEEvent]], data: st.DataObject) -> None:
        body, expected = stream
        cuts = data.draw(st.lists(st.integers(0, len(body)), max_size=10), label="cuts")
        points = sorted({*cuts, 0, len(body)})
        chunks = [body[a:b] for a, b in itertools.pairwise(points)]
        assert parse(body) == expected
        assert parse(*chunks) == expected
        fed, closed = parse_split(chunks)
        assert len(closed) <= 1 and fed + closed == expected
else:

    def test_any_chunking_gives_the_same_events() -> None:
        pytest.skip("hypothesis is not installed: the exhaustive splits above cover the hand-written streams")


# --- through the public API: the deltas are the Response ---------------------------------------------


class _Pieces(httpx.SyncByteStream, httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    def __iter__(self) -> Iterator[bytes]:
        yield from self.pieces

    async def __aiter__(self) -> AsyncIterator[bytes]:
        for piece in self.pieces:
            yield piece


WIRE_STREAMS = {  # model, a stream whose last event carries text (so a lost one shows), its text
    "openai": ("openai/gpt-4o-mini",
               (b'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"Caf\xc3\xa9"}}]}\n\n'
                b'data: {"choices":[{"index":0,"delta":{"content":" ok"},"finish_reason":"stop"}],'
                b'"usage":{"prompt_tokens":5,"completion_tokens":2,"total_tokens":7}}\n\n'),
               "Caf\u00e9 ok"),
    "gemini": ("gemini/gemini-2.5-flash", GEMINI_STREAM, "Hello"),
}


def _framed(body: bytes, line_end: bytes, last_blank_line: bool) -> bytes:
    body = body.replace(b"\r\n", b"\n").replace(b"\n", line_end)
    return body if last_blank_line else body[: -len(line_end)]


def _stream_cases() -> Iterator[Any]:
    for wire in WIRE_STREAMS:
        for end_name, line_end in (("lf", b"\n"), ("crlf", b"\r\n"), ("cr", b"\r")):
            for last_blank_line in (True, False):
                # Without the last blank line, StreamAssembly.close() gives the last event and the
                # stream yields its deltas before the Response.
                name = f"{wire}-{end_name}" + ("" if last_blank_line else "-no-last-blank-line")
                yield pytest.param(wire, line_end, last_blank_line, id=name)


@pytest.mark.parametrize(("wire", "line_end", "last_blank_line"), list(_stream_cases()))
def test_stream_deltas_are_the_response(monkeypatch: pytest.MonkeyPatch, wire: str, line_end: bytes,
                                        last_blank_line: bool) -> None:
    model, body, text = WIRE_STREAMS[wire]
    body = _framed(body, line_end, last_blank_line)
    chunkings = {"whole": [body], "bytes": [body[i : i + 1] for i in range(len(body))]}
    for chunking, pieces in chunkings.items():
        def answer(request: httpx.Request, spec: object, pieces: list[bytes] = pieces) -> httpx.Response:
            return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=_Pieces(pieces),
                                  request=request)

        monkeypatch.setattr(transport, "interceptor", answer)
        client = Client(model, api_key="sk-test-0123456789")
        with client.stream("Hi") as stream:
            deltas = "".join(event.text for event in stream if event.kind == "text")
        assert (deltas, stream.response.text) == (text, text), f"sync, {chunking}"

        async def run(client: Client = client) -> tuple[str, str]:
            async with client.astream("Hi") as astream:
                adeltas = "".join([event.text async for event in astream if event.kind == "text"])
                return adeltas, (await astream.get_response()).text

        assert asyncio.run(run()) == (text, text), f"async, {chunking}"
