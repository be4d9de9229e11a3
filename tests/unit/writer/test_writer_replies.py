"""The writer's reply counting (the wire's pipelining ``Link``) over a real socket pair:
the fast path (count lines) and its hand-over to hiredis, with replies split at every
possible byte."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator

import hiredis
import pytest

from featurestore.readers.wire import Link
from featurestore.readers.wire.link import after_line

# Two pipelines' replies back to back: HSET, EXPIRE, HEXPIRE (array of 2) / HSET, error, EXPIRE
FIRST = b":21\r\n:1\r\n*2\r\n:1\r\n:-2\r\n"  # 3 replies, 5 lines
SECOND = b":0\r\n-WRONGTYPE Operation against a key holding the wrong kind of value\r\n:1\r\n"  # 3 replies


@pytest.fixture
def pair() -> Iterator[tuple[Link, socket.socket]]:
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    link = Link(None, "test-node")
    link.sock, link.reader = ours, hiredis.Reader()
    yield link, theirs
    ours.close()
    theirs.close()


def send_slowly(sock: socket.socket, data: bytes, step: int) -> threading.Thread:
    def run() -> None:
        for i in range(0, len(data), step):
            sock.sendall(data[i : i + step])
            time.sleep(0.001)

    thread = threading.Thread(target=run)
    thread.start()
    return thread


@pytest.mark.parametrize("step", [1, 2, 3, 5, 7, 1000])
def test_replies_are_counted_and_errors_placed_whatever_the_splits(pair, step: int) -> None:  # type: ignore[no-untyped-def]
    link, server = pair
    sender = send_slowly(server, FIRST + SECOND + FIRST, step)
    errors: list[tuple[int, object]] = []
    link.read(3, 5, errors)
    assert (link.received, errors) == (3, [])
    link.read(3, 3, errors)
    assert link.received == 3
    assert [(i, str(e)[:9]) for i, e in errors] == [(1, "WRONGTYPE")]
    errors.clear()
    link.read(3, 5, errors)  # after an error, what follows is still read right
    assert (link.received, errors) == (3, [])
    sender.join()
    assert link.pending == b"" and not link.reader.has_data()


def test_a_connection_closed_mid_replies_tells_how_many_arrived(pair) -> None:  # type: ignore[no-untyped-def]
    link, server = pair
    server.sendall(FIRST + b":0\r\n:1")  # 3 complete replies, then half of the next pipeline's 2nd
    server.close()
    link.read(3, 5, [])
    with pytest.raises(ConnectionError):
        link.read(3, 3, [])
    assert link.received == 1


def test_the_next_pipelines_replies_in_the_same_chunk_are_kept_for_the_next_read(pair) -> None:  # type: ignore[no-untyped-def]
    link, server = pair
    server.sendall(FIRST + FIRST[:7])  # all of the first pipeline, a bit of the second
    link.read(3, 5, [])
    assert link.pending == FIRST[:7]  # fast path: kept as bytes
    server.sendall(FIRST[7:] + SECOND[:7])
    link.read(3, 5, [])
    assert link.received == 3
    server.sendall(SECOND[7:] + FIRST)  # an error line: hiredis takes over and keeps the rest
    errors: list[tuple[int, object]] = []
    link.read(3, 3, errors)
    assert link.received == 3 and [i for i, _ in errors] == [1]
    assert link.reader.has_data()
    link.read(3, 5, errors)
    assert link.received == 3 and len(errors) == 1 and not link.reader.has_data()


@pytest.mark.parametrize("data", [FIRST + SECOND + FIRST, b"\n" * 700, (b":1\r\n" * 300 + b"*2\r\n:1\r\n:1\r\n") * 9])
def test_the_offset_after_the_nth_line_is_found_without_a_python_loop_per_line(data: bytes) -> None:
    ends = [i + 1 for i, byte in enumerate(data) if byte == 10]
    assert [after_line(data, n) for n in range(1, len(ends) + 1)] == ends
