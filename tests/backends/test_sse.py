"""LineSplitter and EventSplitter: raw network reads of an SSE body in, lines and events out.

Pure logic over bytes; the backends' tests run the same code against stand-in servers.
"""

from __future__ import annotations

import pytest

from hybridgate.backends.sse import EventSplitter, LineSplitter

BODY = b'event: ping\ndata: {"a": 1}\r\n\r\n: keep-alive\rdata: x\ndata: y\n\ndata: tail'


def split_lines(reads: list[bytes]) -> list[bytes]:
    splitter = LineSplitter()
    lines = [line for read in reads for line in splitter.feed(read)]
    return lines + splitter.end()


def split_events(reads: list[bytes]) -> list[tuple[str, bytes]]:
    splitter = EventSplitter()
    events = [event for read in reads for event in splitter.feed(read)]
    return events + splitter.end()


def reads_of(body: bytes, size: int) -> list[bytes]:
    return [body[i : i + size] for i in range(0, len(body), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, len(BODY)])
def test_lines_are_the_same_however_the_body_is_cut(size: int) -> None:
    assert split_lines(reads_of(BODY, size)) == [
        b"event: ping",
        b'data: {"a": 1}',
        b"",
        b": keep-alive",
        b"data: x",
        b"data: y",
        b"",
        b"data: tail",
    ]


def test_a_line_is_held_back_until_its_end_arrives() -> None:
    splitter = LineSplitter()
    assert splitter.feed(b"data: {") == []
    assert splitter.feed(b'"a": 1}\r') == []  # the "\n" of "\r\n" may still come
    assert splitter.feed(b"\ndata: 2\n") == [b'data: {"a": 1}', b"data: 2"]
    assert splitter.end() == []


@pytest.mark.parametrize("size", [1, 5, len(BODY)])
def test_events_join_their_data_lines_and_keep_their_name(size: int) -> None:
    assert split_events(reads_of(BODY, size)) == [("ping", b'{"a": 1}'), ("", b"x\ny"), ("", b"tail")]


def test_one_read_with_many_events_gives_them_all_at_once() -> None:
    splitter = EventSplitter()
    body = b"".join(b"event: e%d\ndata: %d\n\n" % (i, i) for i in range(5))
    assert splitter.feed(body) == [(f"e{i}", str(i).encode()) for i in range(5)]
    assert splitter.end() == []
