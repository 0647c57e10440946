"""llmclient.wire.sse.SSEParser: whole events out of bytes cut anywhere (WHATWG event-stream)."""

from __future__ import annotations

import pytest

from llmclient.wire.sse import SSEEvent, SSEParser


def parse(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events: list[SSEEvent] = []
    for chunk in chunks:
        events += parser.feed(chunk)
    return events + parser.close()


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
STREAMS = {
    "openai": (OPENAI_STREAM, OPENAI_EVENTS),
    "anthropic": (ANTHROPIC_STREAM, ANTHROPIC_EVENTS),
    "gemini-crlf": (GEMINI_STREAM, GEMINI_EVENTS),
    "cr-only": (CR_STREAM, CR_EVENTS),
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


def test_events_come_out_as_soon_as_their_blank_line_arrives() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: one\n") == []
    assert parser.feed(b"\ndata: tw") == [SSEEvent("message", "one")]
    assert parser.feed(b"o\n\n") == [SSEEvent("message", "two")]
    assert parser.close() == []


def test_crlf_split_between_cr_and_lf_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == []
    assert parser.feed(b"\ndata: b\r\n\r\n") == [SSEEvent("message", "a"), SSEEvent("message", "b")]


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(b"data: a\rdata: b\r\r", [SSEEvent("message", "a\nb")], id="cr-only-line-ends"),
        pytest.param(b"data: line one\ndata: line two\ndata:\ndata: end\n\n", [SSEEvent("message", "line one\nline two\n\nend")],
                     id="multi-line-data-joined-with-lf"),
        pytest.param(b"data:no-space\n\n", [SSEEvent("message", "no-space")], id="no-space-after-colon"),
        pytest.param(b"data:  two spaces\n\n", [SSEEvent("message", " two spaces")], id="only-one-leading-space-stripped"),
        pytest.param(b"data\n\n", [SSEEvent("message", "")], id="field-without-colon"),
        pytest.param(b"data:\n\n", [SSEEvent("message", "")], id="empty-data-still-dispatches"),
        pytest.param(b": keep-alive\ndata: x\n: another comment\ndata: y\n\n", [SSEEvent("message", "x\ny")], id="comments-skipped"),
        pytest.param(b": only a comment\n\n", [], id="comment-only-block"),
        pytest.param(b"event: ping\n\n", [], id="event-without-data-not-dispatched"),
        pytest.param(b"id: 7\nretry: 3000\ndata: z\n\n", [SSEEvent("message", "z")], id="id-and-retry-ignored"),
        pytest.param(b"event: error\ndata: {}\n\ndata: {}\n\n", [SSEEvent("error", "{}"), SSEEvent("message", "{}")],
                     id="event-type-resets-after-dispatch"),
        pytest.param(b"event: ping\n\ndata: x\n\n", [SSEEvent("message", "x")], id="event-type-reset-by-empty-block"),
        pytest.param(b"\n\n\ndata: x\n\n\n\n", [SSEEvent("message", "x")], id="extra-blank-lines"),
        pytest.param('data: {"t": "a\u2028b\u0085c"}\n\n'.encode(), [SSEEvent("message", '{"t": "a\u2028b\u0085c"}')],
                     id="unicode-line-separators-are-not-line-ends"),
        pytest.param(b"data: last event without blank line", [SSEEvent("message", "last event without blank line")],
                     id="close-flushes-unterminated-event"),
        pytest.param(b"data: last\r", [SSEEvent("message", "last")], id="close-flushes-trailing-cr"),
        pytest.param(b"", [], id="empty-stream"),
    ],
)
def test_framing(body: bytes, expected: list[SSEEvent]) -> None:
    assert parse(body) == expected


def test_multibyte_character_split_across_chunks() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: \xe2\x9c") == []  # first two bytes of U+2713
    assert parser.feed(b"\x93\n\n") == [SSEEvent("message", "\u2713")]


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
