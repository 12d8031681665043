"""The SSE parser and relay bookkeeping, without a network."""

from __future__ import annotations

from daylite.streaming import SSEParser


def test_parser_joins_events_split_across_reads_and_crlf() -> None:
    parser = SSEParser()
    first = parser.feed(b'data: {"a":1}\r')
    second = parser.feed(b"\n\r\n: ping\n\ndata: [DO")
    third = parser.feed(b"NE]\n\n")

    assert first == []
    assert second == [(b"data", b'{"a":1}'), (b":", b": ping")]
    assert third == [(b"data", b"[DONE]")]


def test_parser_joins_multiline_data() -> None:
    assert SSEParser().feed(b"data: a\ndata: b\n\n") == [(b"data", b"a\nb")]
