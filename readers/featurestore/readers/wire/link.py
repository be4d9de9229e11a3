"""A pipelining link: one connection to one node with several pipelines in flight.

The batch writer sends a pipeline's bytes, then the next pipelines' bytes, and reads
each pipeline's replies later, in order (replies on a connection come back in the order
the commands were sent).  Reading is where its time goes, so the replies are *counted*,
not parsed: the writer's commands answer integers and arrays of integers, one RESP line
each, so a pipeline whose ``lines`` are known is read by counting newlines and scanning
for an error line (``-`` at a line start).  Only when an error reply shows up does
hiredis parse the bytes, reply by reply, to tell which command it answered.

The connection comes from a pool of :mod:`.connection` (redis-py does the handshake:
TLS, AUTH/HELLO, SELECT); this module is the only place its socket is read and written.
Routing, retries and redirects are the :class:`~.engine.RoundTrip`'s, driven by the caller.
"""

from __future__ import annotations

from typing import Any

import hiredis

_READ_SIZE = 1 << 18
_LF = 10  # ord("\n")
_DASH = 45  # ord("-"): the first byte of an error reply


def after_line(data: bytes, n: int) -> int:
    """The offset just past the ``n``-th (1-based) newline of ``data``, which has at least ``n``.

    A binary search on ``bytes.count`` (C speed), then a few ``find`` calls: no
    per-line Python loop over a pipeline's thousands of reply lines.
    """
    count, find = data.count, data.find
    lo, hi, below = 0, len(data), 0  # below: newlines in data[:lo] (< n <= newlines in data[:hi])
    while hi - lo > 256:
        mid = (lo + hi) >> 1
        found = count(b"\n", lo, mid)
        if below + found >= n:
            hi = mid
        else:
            lo, below = mid, below + found
    at = lo - 1
    for _ in range(n - below):
        at = find(b"\n", at + 1)
    return at + 1


class Link:
    """One connection to one node (``name``, for messages) from ``pool``, opened on first use.

    ``generation`` grows each time the connection is closed: the replies of whatever was
    sent before are lost, so a caller holding a pipeline sent at an older generation
    knows it must re-send it.  ``received`` tells, also after an exception, how many
    replies of the last :meth:`read` arrived.
    """

    def __init__(self, pool: Any, name: str) -> None:
        self.pool = pool
        self.name = name
        self.connection: Any = None
        self.sock: Any = None
        self.reader: Any = None
        self.received = 0
        self.pending = b""  # reply bytes read past the previous pipeline's replies
        self.generation = 0

    def open(self) -> None:
        """Take a connected connection from the pool (a no-op while one is open)."""
        if self.sock is not None:
            return
        connection = self.pool.get_connection()  # connects: TLS, AUTH/HELLO, SELECT
        try:
            if connection.wire_socket is None:
                connection.connect()
        except BaseException:
            self.pool.release(connection)
            raise
        self.connection, self.sock, self.reader = connection, connection.wire_socket, hiredis.Reader()

    def send(self, data: Any) -> None:
        """Write ``data`` (bytes or any buffer, e.g. an Arrow buffer) on the socket."""
        self.sock.sendall(data)

    def read(self, count: int, lines: int, errors: list[tuple[int, Any]]) -> None:
        """Read ``count`` replies (``lines`` RESP lines if none is an error); error replies
        are appended to ``errors`` as ``(index, hiredis.ReplyError)``.

        Fast path: count newlines and look for an error line.  An error line hands the
        bytes to hiredis, which counts replies exactly.  Bytes past this pipeline's
        replies (the next pipeline's, already arrived) are kept for the next read.
        """
        self.received = 0
        if self.reader.has_data():  # an earlier slow read left the next replies in hiredis
            self._parse(b"", count, errors, more=True)
            return
        recv = self.sock.recv
        seen = 0
        line_start = True  # the next byte begins a line
        chunks: list[bytes] = []
        data, self.pending = self.pending, b""
        try:
            while True:
                if not data:
                    data = recv(_READ_SIZE)
                    if not data:
                        raise ConnectionError(f"{self.name} closed the connection")
                chunks.append(data)
                if (line_start and data[0] == _DASH) or b"\n-" in data:  # an error reply
                    break
                found = data.count(b"\n")
                if seen + found >= lines:
                    if seen + found > lines or data[-1] != _LF:  # the next pipeline's replies follow
                        self.pending = data[after_line(data, lines - seen) :]
                    self.received = count
                    return
                seen += found
                line_start = data[-1] == _LF
                data = b""
        except BaseException:
            self.pending = b""
            self._parse(b"".join(chunks), count, errors, more=False)
            raise
        self._parse(b"".join(chunks), count, errors, more=True)

    def _parse(self, data: bytes, count: int, errors: list[tuple[int, Any]], *, more: bool) -> None:
        """Count replies with hiredis (after ``data``, reading on while ``more``)."""
        reader = self.reader
        if data:
            reader.feed(data)
        got = 0
        try:
            while got < count:
                reply = reader.gets()
                if reply is False:
                    if not more:
                        return
                    chunk = self.sock.recv(_READ_SIZE)
                    if not chunk:
                        raise ConnectionError(f"{self.name} closed the connection")
                    reader.feed(chunk)
                    continue
                if reply.__class__ is hiredis.ReplyError:
                    errors.append((got, reply))
                got += 1
        finally:
            self.received = got

    def close(self) -> None:
        """Drop the connection (the next :meth:`open` takes a new one)."""
        if self.sock is not None:
            self.generation += 1
        connection, self.connection, self.sock, self.reader = self.connection, None, None, None
        self.pending = b""
        if connection is not None:
            try:
                connection.disconnect()
            finally:
                self.pool.release(connection)
