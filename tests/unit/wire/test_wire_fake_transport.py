"""The wire's redirect and retry logic against an injected fake transport.

Each fake node parses the RESP the wire sends (with hiredis) and answers with scripted
RESP bytes, so routing, MOVED/ASK, TRYAGAIN/CLUSTERDOWN, lost connections, refused
commands and the deadline are tested at the byte level, with an injected clock and no
server.  The same behaviour is tested against the live local cluster in the
integration tier.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hiredis
import pytest

from featurestore.readers.errors import FeatureStoreConnectionError, FeatureStoreTimeout, ServerError
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import RetryPolicy, Wire, encode, key_slot
from tests.helpers.clock import FakeClock

Handler = Callable[[list[bytes]], bytes]


def bulk(value: bytes | None) -> bytes:
    return b"$-1\r\n" if value is None else b"$%d\r\n%s\r\n" % (len(value), value)


def array(*items: bytes) -> bytes:
    return b"*%d\r\n" % len(items) + b"".join(items)


def integer(n: int) -> bytes:
    return b":%d\r\n" % n


def slots_reply(*ranges: tuple[int, int, str]) -> bytes:
    entries = []
    for start, end, node in ranges:
        host, port = node.split(":")
        entries.append(array(integer(start), integer(end), array(bulk(host.encode()), integer(int(port)))))
    return array(*entries)


class FakeSocket:
    """Answers each command it is sent with ``handler(command)``; can break after N bytes."""

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.outgoing = b""
        self.reader = hiredis.Reader()

    def settimeout(self, seconds: float) -> None:
        pass

    def sendall(self, data: bytes) -> None:
        self.reader.feed(bytes(data))
        while (command := self.reader.gets()) is not False:
            self.node.received.append(command)
            self.outgoing += self.node.handler(command)

    def recv_into(self, buffer: bytearray) -> int:
        if self.node.break_after is not None:
            allowed = self.node.break_after
            self.node.break_after = None
            chunk, self.outgoing = self.outgoing[:allowed], b""
            buffer[: len(chunk)] = chunk
            return len(chunk)  # then b"" on the next call: the connection is gone
        chunk, self.outgoing = self.outgoing[: len(buffer)], self.outgoing[len(buffer) :]
        buffer[: len(chunk)] = chunk
        return len(chunk)


class FakeConnection:
    socket_timeout = 1.0

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.wire_socket: FakeSocket | None = None

    def connect(self) -> None:
        if self.node.down:
            raise ConnectionRefusedError(f"{self.node.name} is down")
        self.node.connects += 1
        self.wire_socket = FakeSocket(self.node)

    def disconnect(self) -> None:
        self.wire_socket = None


class FakeNode:
    def __init__(self, name: str, handler: Handler) -> None:
        self.name = name
        self.handler = handler
        self.received: list[list[bytes]] = []
        self.break_after: int | None = None
        self.down = False
        self.connects = 0

    def get_connection(self, *args: Any) -> FakeConnection:
        return FakeConnection(self)

    def release(self, conn: FakeConnection) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def commands(self, name: bytes) -> list[list[bytes]]:
        return [c for c in self.received if c[0].upper() == name]


def hmget_answer(command: list[bytes]) -> bytes:
    """A field's value is the key it was read from (so the test sees where it came from)."""
    return array(*(bulk(command[1]) for _ in command[2:]))


def make_wire(nodes: dict[str, FakeNode], url: str, seconds: float = 2.0) -> tuple[Wire, FakeClock]:
    clock = FakeClock(100.0)
    settings = ConnectionSettings.from_url(url, timeout=seconds)
    wire = Wire(
        settings,
        policy=RetryPolicy(seconds=None, jitter=False),
        clock=clock,
        sleep=clock.sleep,
        pool_factory=lambda node, readonly: nodes[node],
    )
    return wire, clock


def hmget(key: bytes) -> bytes:
    return encode("HMGET", key, "f")


def keys_on_both_halves() -> tuple[bytes, bytes]:
    low = next(b"fs:user:{%d}" % i for i in range(1000) if key_slot(b"fs:user:{%d}" % i) < 8192)
    high = next(b"fs:user:{%d}" % i for i in range(1000) if key_slot(b"fs:user:{%d}" % i) >= 8192)
    return low, high


def two_node_cluster(a_handler: Handler, b_handler: Handler) -> dict[str, FakeNode]:
    layout = slots_reply((0, 8191, "10.0.0.1:7000"), (8192, 16383, "10.0.0.2:7000"))

    def with_slots(handler: Handler) -> Handler:
        return lambda c: layout if c[0].upper() == b"CLUSTER" else handler(c)

    a = FakeNode("10.0.0.1:7000", with_slots(a_handler))
    b = FakeNode("10.0.0.2:7000", with_slots(b_handler))
    return {a.name: a, b.name: b, "seed:7000": FakeNode("seed:7000", with_slots(a_handler))}


def test_standalone_round_trip_keeps_order() -> None:
    node = FakeNode("server", hmget_answer)
    wire, _ = make_wire({"server": node}, "redis://server:6379")
    keys = [b"fs:user:{1}", b"fs:user:{2}", b"fs:user:{3}"]
    replies, trip = wire.round_trip(keys, [hmget(k) for k in keys], wire.start(1.0))
    assert replies == [[k] for k in keys]
    assert trip.retries == 0 and not trip.failed
    assert len(node.received) == 3 and node.connects == 1


def test_cluster_routes_each_key_to_its_slot_owner() -> None:
    nodes = two_node_cluster(hmget_answer, hmget_answer)
    wire, _ = make_wire(nodes, "redis://seed:7000?cluster=true")
    low, high = keys_on_both_halves()
    replies, _ = wire.round_trip([high, low], [hmget(high), hmget(low)], wire.start(1.0))
    assert replies == [[high], [low]]
    assert [c[1] for c in nodes["10.0.0.1:7000"].commands(b"HMGET")] == [low]
    assert [c[1] for c in nodes["10.0.0.2:7000"].commands(b"HMGET")] == [high]


def test_moved_refreshes_the_slot_map_and_retries_on_the_new_owner() -> None:
    low, _ = keys_on_both_halves()
    moved_layout = slots_reply((0, 16383, "10.0.0.2:7000"))
    a_answers: dict[str, bytes] = {}

    def a(command: list[bytes]) -> bytes:
        return b"-MOVED %d 10.0.0.2:7000\r\n" % key_slot(low)

    nodes = two_node_cluster(a, hmget_answer)
    wire, clock = make_wire(nodes, "redis://seed:7000?cluster=true")
    wire.connect(wire.start(1.0))
    # from now on every node reports the new layout
    for node in nodes.values():
        inner = node.handler
        node.handler = lambda c, inner=inner: moved_layout if c[0].upper() == b"CLUSTER" else inner(c)
    replies, trip = wire.round_trip([low], [hmget(low)], wire.start(1.0))
    assert replies == [[low]]
    assert trip.retries == 1
    assert nodes["10.0.0.2:7000"].commands(b"HMGET") == [[b"HMGET", low, b"f"]]
    assert clock.slept == [0.025]  # one backoff, the policy's first
    assert not a_answers


def test_ask_sends_asking_before_the_command_on_the_named_node() -> None:
    low, _ = keys_on_both_halves()

    def a(command: list[bytes]) -> bytes:
        return b"-ASK %d 10.0.0.2:7000\r\n" % key_slot(low)

    def b(command: list[bytes]) -> bytes:
        return b"+OK\r\n" if command[0] == b"ASKING" else hmget_answer(command)

    nodes = two_node_cluster(a, b)
    wire, _ = make_wire(nodes, "redis://seed:7000?cluster=true")
    replies, _ = wire.round_trip([low], [hmget(low)], wire.start(1.0))
    assert replies == [[low]]
    assert nodes["10.0.0.2:7000"].received[-2:] == [[b"ASKING"], [b"HMGET", low, b"f"]]
    # ASK is a one-off redirect: the slot map was not reloaded
    assert len(nodes["10.0.0.1:7000"].commands(b"CLUSTER")) + len(nodes["seed:7000"].commands(b"CLUSTER")) == 1


def test_tryagain_is_retried_until_it_succeeds() -> None:
    answers = [b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"] * 2

    def handler(command: list[bytes]) -> bytes:
        return answers.pop() if answers else hmget_answer(command)

    node = FakeNode("server", handler)
    wire, clock = make_wire({"server": node}, "redis://server:6379")
    replies, trip = wire.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], wire.start(1.0))
    assert replies == [[b"fs:user:{1}"]]
    assert trip.retries == 2
    assert clock.slept == [0.025, 0.05]  # doubling backoff


def test_a_connection_lost_mid_reply_keeps_the_answered_and_resends_the_rest() -> None:
    node = FakeNode("server", hmget_answer)
    keys = [b"fs:user:{%d}" % i for i in range(4)]
    first_two = len(hmget_answer([b"HMGET", keys[0], b"f"]) + hmget_answer([b"HMGET", keys[1], b"f"]))
    node.break_after = first_two + 3  # two whole replies and a few bytes of the third
    wire, _ = make_wire({"server": node}, "redis://server:6379")
    replies, trip = wire.round_trip(keys, [hmget(k) for k in keys], wire.start(1.0))
    assert replies == [[k] for k in keys]
    assert trip.retries == 2  # only the two unanswered commands
    assert [c[1] for c in node.commands(b"HMGET")] == [*keys, keys[2], keys[3]]
    assert node.connects == 2


def test_clusterdown_until_the_deadline_raises_a_connection_error_naming_the_url() -> None:
    node = FakeNode("server", lambda c: b"-CLUSTERDOWN The cluster is down\r\n")
    wire, clock = make_wire({"server": node}, "redis://user:secret@server:6379", seconds=0.5)
    with pytest.raises(FeatureStoreConnectionError) as info:
        wire.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], wire.start(0.5))
    assert "CLUSTERDOWN" in str(info.value) and "secret" not in str(info.value)
    assert "redis://user:***@server:6379" in str(info.value)
    assert 100.25 < clock.now <= 100.5  # kept trying, and gave up before the deadline passed
    assert clock.slept[:4] == [0.025, 0.05, 0.1, 0.2]


def test_a_node_down_until_the_deadline_is_a_connection_error() -> None:
    node = FakeNode("server", hmget_answer)
    node.down = True
    wire, _ = make_wire({"server": node}, "redis://server:6379", seconds=0.2)
    with pytest.raises(FeatureStoreConnectionError, match="cannot reach Redis"):
        wire.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], wire.start(0.2))


def test_a_refused_command_fails_at_once_without_retry() -> None:
    node = FakeNode("server", lambda c: b"-NOPERM User reader has no permissions to run the 'hmget' command\r\n")
    wire, clock = make_wire({"server": node}, "redis://server:6379")
    with pytest.raises(ServerError, match="NOPERM"):
        wire.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], wire.start(1.0))
    assert clock.slept == [] and len(node.received) == 1


def test_a_command_error_is_reported_per_unit_and_not_retried() -> None:
    def handler(command: list[bytes]) -> bytes:
        if command[1] == b"fs:user:{2}":
            return b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        return hmget_answer(command)

    node = FakeNode("server", handler)
    wire, _ = make_wire({"server": node}, "redis://server:6379")
    keys = [b"fs:user:{1}", b"fs:user:{2}", b"fs:user:{3}"]
    replies, trip = wire.round_trip(keys, [hmget(k) for k in keys], wire.start(1.0))
    assert trip.failed == {1: "WRONGTYPE Operation against a key holding the wrong kind of value"}
    assert replies[0] == [keys[0]] and replies[2] == [keys[2]]
    assert trip.retries == 0


def test_multi_command_units_are_split_and_their_errors_found() -> None:
    def handler(command: list[bytes]) -> bytes:
        if command[0] == b"EXPIRE":
            return b"-ERR invalid expire time\r\n" if command[1] == b"k2" else integer(1)
        return integer(2)

    node = FakeNode("server", handler)
    wire, _ = make_wire({"server": node}, "redis://server:6379")
    payloads = [encode("HSET", k, "a", "1", "b", "2") + encode("EXPIRE", k, "10") for k in (b"k1", b"k2")]
    replies, trip = wire.round_trip([b"k1", b"k2"], payloads, wire.start(1.0), counts=[2, 2])
    assert replies == [[2, 1], [2, replies[1][1]]]
    assert trip.failed == {1: "ERR invalid expire time"}


def test_a_slow_node_times_out_at_the_deadline() -> None:
    node = FakeNode("server", lambda c: b"")  # never answers
    wire, clock = make_wire({"server": node}, "redis://server:6379", seconds=0.3)

    class Stuck(FakeSocket):
        def recv_into(self, buffer: bytearray) -> int:
            clock.now += 0.3
            raise TimeoutError("timed out")

    node.get_connection = lambda *a: _with_socket(node, Stuck)  # type: ignore[method-assign]
    with pytest.raises(FeatureStoreTimeout, match=r"timed out after 0\.3s"):
        wire.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], wire.start(0.3))


def _with_socket(node: FakeNode, socket_class: type[FakeSocket]) -> FakeConnection:
    conn = FakeConnection(node)
    conn.connect = lambda: setattr(conn, "wire_socket", socket_class(node))  # type: ignore[method-assign]
    return conn
