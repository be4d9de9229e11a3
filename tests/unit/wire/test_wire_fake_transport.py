"""The wire's redirect and retry logic against an injected fake transport.

Each fake node parses the RESP the wire sends (with hiredis) and answers with scripted
RESP bytes, so routing, MOVED/ASK, TRYAGAIN/CLUSTERDOWN, lost connections, refused
commands and the deadline are tested at the byte level, with an injected clock and no
server.  The round-trip loop is the engine's, shared by the sync and the asyncio
drivers: each behaviour they share runs once per driver (``driver`` fixture), on the
same fake nodes.  The same behaviour is tested against the live local cluster in the
integration tier.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from typing import Any

import hiredis
import pytest
import redis

from featurestore.readers.errors import FeatureStoreConnectionError, FeatureStoreTimeout, ServerError
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import Repair, RetryPolicy, RoundTrip, Wire, encode, key_slot
from featurestore.readers.wire.aio import AsyncWire
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


# --- the asyncio driver's side of the same fake nodes (redis.asyncio's public connection API) ---

# error codes redis-py's parser strips into an exception class of its own, as it does
_ERROR_CLASSES: dict[str, type[redis.ResponseError]] = {
    "TRYAGAIN": redis.exceptions.TryAgainError,
    "CLUSTERDOWN": redis.exceptions.ClusterDownError,
    "NOPERM": redis.exceptions.NoPermissionError,
}


def as_exception(reply: hiredis.ReplyError) -> redis.ResponseError:
    code, _, rest = str(reply).partition(" ")
    if code == "MOVED":
        return redis.exceptions.MovedError(rest)
    if code == "ASK":
        return redis.exceptions.AskError(rest)
    if code in _ERROR_CLASSES:
        return _ERROR_CLASSES[code](rest)
    return redis.ResponseError(str(reply))


class FakeAsyncConnection:
    """``send_packed_command``/``read_response`` over a :class:`FakeNode`'s answers."""

    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.parser = hiredis.Reader()
        self.replies = hiredis.Reader()
        self.broken = False

    async def send_packed_command(self, payload: bytes, check_health: bool = True) -> None:
        self.parser.feed(bytes(payload))
        outgoing = b""
        while (command := self.parser.gets()) is not False:
            self.node.received.append(command)
            outgoing += self.node.handler(command)
        if self.node.break_after is not None:  # deliver that many bytes, then the connection is gone
            outgoing, self.node.break_after, self.broken = outgoing[: self.node.break_after], None, True
        self.replies.feed(outgoing)

    async def read_response(self, disable_decoding: bool = False) -> Any:
        reply = self.replies.gets()
        if reply is False:
            raise redis.ConnectionError("Connection closed by server." if self.broken else "no reply")
        if isinstance(reply, hiredis.ReplyError):
            raise as_exception(reply)
        return reply

    async def disconnect(self) -> None:
        pass


class FakeAsyncPool:
    def __init__(self, node: FakeNode) -> None:
        self.node = node

    async def get_connection(self, *args: Any) -> FakeAsyncConnection:
        if self.node.down:
            raise ConnectionRefusedError(f"{self.node.name} is down")
        self.node.connects += 1
        return FakeAsyncConnection(self.node)

    async def release(self, conn: FakeAsyncConnection) -> None:
        pass

    async def disconnect(self) -> None:
        pass


class Driver:
    """The sync or the asyncio driver of the wire on the same fake nodes, behind one call."""

    def __init__(self, kind: str, nodes: dict[str, FakeNode], url: str, seconds: float = 2.0) -> None:
        self.kind = kind
        self.clock = clock = FakeClock(100.0)
        settings = ConnectionSettings.from_url(url, timeout=seconds)
        policy = RetryPolicy(seconds=None, jitter=False)
        self.wire: Wire | AsyncWire
        if kind == "sync":
            self.wire = Wire(
                settings, policy=policy, clock=clock, sleep=clock.sleep, pool_factory=lambda node, ro: nodes[node]
            )
        else:

            async def sleep(seconds: float) -> None:
                clock.sleep(seconds)

            pools = {name: FakeAsyncPool(node) for name, node in nodes.items()}
            self.wire = AsyncWire(
                settings, policy=policy, clock=clock, sleep=sleep, pool_factory=lambda node, ro: pools[node]
            )

    def round_trip(self, keys: Sequence[bytes], payloads: Sequence[bytes], seconds: float = 1.0) -> Any:
        deadline = self.wire.start(seconds)
        if isinstance(self.wire, Wire):
            return self.wire.round_trip(keys, payloads, deadline)
        return asyncio.run(self.wire.round_trip(keys, payloads, deadline))

    def connect(self) -> None:
        if isinstance(self.wire, Wire):
            self.wire.connect(self.wire.start(1.0))
        else:
            asyncio.run(self.wire.connect(self.wire.start(1.0)))


@pytest.fixture(params=["sync", "async"])
def driver_kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


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


def test_standalone_round_trip_keeps_order(driver_kind: str) -> None:
    node = FakeNode("server", hmget_answer)
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379")
    keys = [b"fs:user:{1}", b"fs:user:{2}", b"fs:user:{3}"]
    replies, trip = driver.round_trip(keys, [hmget(k) for k in keys])
    assert replies == [[k] for k in keys]
    assert trip.retries == 0 and not trip.failed
    assert len(node.received) == 3 and node.connects == 1


def test_cluster_routes_each_key_to_its_slot_owner(driver_kind: str) -> None:
    nodes = two_node_cluster(hmget_answer, hmget_answer)
    driver = Driver(driver_kind, nodes, "redis://seed:7000?cluster=true")
    low, high = keys_on_both_halves()
    replies, _ = driver.round_trip([high, low], [hmget(high), hmget(low)])
    assert replies == [[high], [low]]
    assert [c[1] for c in nodes["10.0.0.1:7000"].commands(b"HMGET")] == [low]
    assert [c[1] for c in nodes["10.0.0.2:7000"].commands(b"HMGET")] == [high]


def test_moved_refreshes_the_slot_map_and_retries_on_the_new_owner(driver_kind: str) -> None:
    low, _ = keys_on_both_halves()
    moved_layout = slots_reply((0, 16383, "10.0.0.2:7000"))
    a_answers: dict[str, bytes] = {}

    def a(command: list[bytes]) -> bytes:
        return b"-MOVED %d 10.0.0.2:7000\r\n" % key_slot(low)

    nodes = two_node_cluster(a, hmget_answer)
    driver = Driver(driver_kind, nodes, "redis://seed:7000?cluster=true")
    driver.connect()
    # from now on every node reports the new layout
    for node in nodes.values():
        inner = node.handler
        node.handler = lambda c, inner=inner: moved_layout if c[0].upper() == b"CLUSTER" else inner(c)
    replies, trip = driver.round_trip([low], [hmget(low)])
    assert replies == [[low]]
    assert trip.retries == 1
    assert nodes["10.0.0.2:7000"].commands(b"HMGET") == [[b"HMGET", low, b"f"]]
    assert driver.clock.slept == [0.025]  # one backoff, the policy's first
    assert not a_answers


def test_ask_sends_asking_before_the_command_on_the_named_node(driver_kind: str) -> None:
    low, _ = keys_on_both_halves()

    def a(command: list[bytes]) -> bytes:
        return b"-ASK %d 10.0.0.2:7000\r\n" % key_slot(low)

    def b(command: list[bytes]) -> bytes:
        return b"+OK\r\n" if command[0] == b"ASKING" else hmget_answer(command)

    nodes = two_node_cluster(a, b)
    driver = Driver(driver_kind, nodes, "redis://seed:7000?cluster=true")
    replies, _ = driver.round_trip([low], [hmget(low)])
    assert replies == [[low]]
    assert nodes["10.0.0.2:7000"].received[-2:] == [[b"ASKING"], [b"HMGET", low, b"f"]]
    # ASK is a one-off redirect: the slot map was not reloaded
    assert len(nodes["10.0.0.1:7000"].commands(b"CLUSTER")) + len(nodes["seed:7000"].commands(b"CLUSTER")) == 1


def test_tryagain_is_retried_until_it_succeeds(driver_kind: str) -> None:
    answers = [b"-TRYAGAIN Multiple keys request during rehashing of slot\r\n"] * 2

    def handler(command: list[bytes]) -> bytes:
        return answers.pop() if answers else hmget_answer(command)

    node = FakeNode("server", handler)
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379")
    replies, trip = driver.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")])
    assert replies == [[b"fs:user:{1}"]]
    assert trip.retries == 2
    assert driver.clock.slept == [0.025, 0.05]  # doubling backoff


def test_a_connection_lost_mid_reply_keeps_the_answered_and_resends_the_rest(driver_kind: str) -> None:
    node = FakeNode("server", hmget_answer)
    keys = [b"fs:user:{%d}" % i for i in range(4)]
    first_two = len(hmget_answer([b"HMGET", keys[0], b"f"]) + hmget_answer([b"HMGET", keys[1], b"f"]))
    node.break_after = first_two + 3  # two whole replies and a few bytes of the third
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379")
    replies, trip = driver.round_trip(keys, [hmget(k) for k in keys])
    assert replies == [[k] for k in keys]
    assert trip.retries == 2  # only the two unanswered commands
    assert [c[1] for c in node.commands(b"HMGET")] == [*keys, keys[2], keys[3]]
    assert node.connects == 2


def test_clusterdown_until_the_deadline_raises_a_connection_error_naming_the_url(driver_kind: str) -> None:
    node = FakeNode("server", lambda c: b"-CLUSTERDOWN The cluster is down\r\n")
    driver = Driver(driver_kind, {"server": node}, "redis://user:secret@server:6379", seconds=0.5)
    clock = driver.clock
    with pytest.raises(FeatureStoreConnectionError) as info:
        driver.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], 0.5)
    assert "CLUSTERDOWN" in str(info.value) and "secret" not in str(info.value)
    assert "redis://user:***@server:6379" in str(info.value)
    assert 100.25 < clock.now <= 100.5  # kept trying, and gave up before the deadline passed
    assert clock.slept[:4] == [0.025, 0.05, 0.1, 0.2]


def test_a_node_down_until_the_deadline_is_a_connection_error(driver_kind: str) -> None:
    node = FakeNode("server", hmget_answer)
    node.down = True
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379", seconds=0.2)
    with pytest.raises(FeatureStoreConnectionError, match="cannot reach Redis"):
        driver.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")], 0.2)


def test_a_refused_command_fails_at_once_without_retry(driver_kind: str) -> None:
    node = FakeNode("server", lambda c: b"-NOPERM User reader has no permissions to run the 'hmget' command\r\n")
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379")
    with pytest.raises(ServerError, match="NOPERM"):
        driver.round_trip([b"fs:user:{1}"], [hmget(b"fs:user:{1}")])
    assert driver.clock.slept == [] and len(node.received) == 1


def test_a_command_error_is_reported_per_unit_and_not_retried(driver_kind: str) -> None:
    def handler(command: list[bytes]) -> bytes:
        if command[1] == b"fs:user:{2}":
            return b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n"
        return hmget_answer(command)

    node = FakeNode("server", handler)
    driver = Driver(driver_kind, {"server": node}, "redis://server:6379")
    keys = [b"fs:user:{1}", b"fs:user:{2}", b"fs:user:{3}"]
    replies, trip = driver.round_trip(keys, [hmget(k) for k in keys])
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


# --- what only the sync driver offers: the writers' repair between attempts -------------------


def test_a_repairable_reply_is_repaired_on_its_node_then_resent_within_the_deadline() -> None:
    lost = {"server"}
    repaired: list[str] = []

    def handler(command: list[bytes]) -> bytes:
        return b"-ERR Function not found\r\n" if lost else integer(1)

    def reload(node: str) -> None:
        repaired.append(node)
        lost.clear()

    node = FakeNode("server", handler)
    wire, clock = make_wire({"server": node}, "redis://server:6379")
    repair = Repair(matches=lambda reply: "Function not found" in reply, run=reload, what="reloading it")
    keys = [b"fs:user:{1}", b"fs:user:{2}"]
    payloads = [encode("FCALL", "f", 1, k) for k in keys]
    replies, trip = wire.round_trip(keys, payloads, wire.start(1.0), repair=repair)
    assert replies == [1, 1] and not trip.failed and trip.retries == 2
    assert repaired == ["server"] and clock.slept == [0.025]  # one backoff, one repair, one re-send
    # without a repair the same reply is a failed unit, as any other refusal
    lost.add("server")
    _, trip = wire.round_trip(keys, payloads, wire.start(1.0))
    assert trip.failed == {0: "ERR Function not found", 1: "ERR Function not found"}


def test_a_repair_that_does_not_help_is_a_server_error_at_the_deadline() -> None:
    node = FakeNode("server", lambda c: b"-ERR Function not found\r\n")
    wire, clock = make_wire({"server": node}, "redis://server:6379", seconds=0.5)
    runs: list[str] = []
    repair = Repair(matches=lambda reply: "Function not found" in reply, run=runs.append, what="reloading the guard")
    with pytest.raises(
        ServerError, match=r"\(server\) still answers 'ERR Function not found' after reloading the guard"
    ):
        wire.round_trip([b"k"], [encode("FCALL", "f", 1, "k")], wire.start(0.5), repair=repair)
    assert runs and set(runs) == {"server"} and 100.25 < clock.now <= 100.5


def test_run_drives_a_caller_attempt_through_the_same_loop() -> None:
    """The batch writer's way in: its own attempt (I/O), the wire's backoff, refresh and deadline."""
    wire, clock = make_wire({"server": FakeNode("server", hmget_answer)}, "redis://server:6379")
    trip = RoundTrip.of([0, 0, 0], wire._group, wire.start(1.0))
    attempts: list[list[int]] = []

    def attempt(batches: list[Any]) -> None:
        (batch,) = batches
        attempts.append(batch.units)
        # the first attempt loses the connection after one reply, the second gets TRYAGAIN once
        if len(attempts) == 1:
            trip.replied(type(batch)(batch.node, batch.units[:1]))
            trip.lost(batch, ConnectionResetError("gone"), answered=1)
        elif len(attempts) == 2:
            trip.replied(batch, [(0, "TRYAGAIN busy")])

    refreshes: list[float] = []
    wire.run(trip, attempt, refresh=lambda deadline: refreshes.append(deadline.remaining()))
    assert trip.done and attempts == [[0, 1, 2], [1, 2], [1]]
    assert clock.slept == [0.025, 0.05] and len(refreshes) == 2  # every retry but an ASK redirect refreshes
