"""The partition writer's routing, redirects and retries against a fake cluster on the
wire's injected transport (``Wire(pool_factory=...)``), with an injected clock: no server.

Each fake node parses the RESP the writer sends (hiredis) and answers as a Redis Cluster
node would: integers for the writer's commands, ``MOVED`` for a key of a slot it does not
own, ``ASK`` for a slot it is migrating, ``+OK`` to ``ASKING``; tests script failures on
top (a connection that breaks mid-replies, ``CLUSTERDOWN``, ``WRONGTYPE``, ``NOPERM``).
The same behaviours run against the live local cluster in tests/spark/writer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hiredis
import pyarrow as pa
import pytest
from redis.crc import key_slot

from featurestore.jobs.write.commands import BatchWritePlan, resp
from featurestore.jobs.write.partition_writer import PartitionWriter, WriterOptions, preflight
from featurestore.readers import codec
from featurestore.readers.errors import UnsupportedServerError, WriteError
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import RetryPolicy, Wire
from tests.helpers.clock import FakeClock
from tests.helpers.writer import edge, shop_stats, writer_catalog

A, B, C = "10.0.0.1:7000", "10.0.0.2:7000", "10.0.0.3:7000"
CLUSTER_URL = "redis://10.0.0.1:7000/0?cluster=true"
Script = Callable[["FakeNode", list[bytes]], bytes | None]  # a reply instead of the normal one, or None


class FakeSocket:
    def __init__(self, node: FakeNode) -> None:
        self.node = node
        self.outgoing = b""
        self.parser = hiredis.Reader()
        self.asking = False

    def settimeout(self, seconds: float) -> None:
        pass

    def sendall(self, data: Any) -> None:
        self.parser.feed(bytes(data))
        while (command := self.parser.gets()) is not False:
            asking, self.asking = self.asking, False
            self.outgoing += self.node.answer(self, command, asking)

    def recv(self, size: int) -> bytes:
        if self.node.break_after is not None:  # deliver that many bytes, then the connection is gone
            allowed, self.node.break_after = self.node.break_after, None
            chunk, self.outgoing = self.outgoing[:allowed], b""
            self.node.broken = True
            return chunk
        if self.node.broken:
            return b""
        chunk, self.outgoing = self.outgoing[:size], self.outgoing[size:]
        return chunk

    def recv_into(self, buffer: bytearray) -> int:
        chunk = self.recv(len(buffer))
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
        self.node.broken = False
        self.wire_socket = FakeSocket(self.node)

    def disconnect(self) -> None:
        self.wire_socket = None


class FakeNode:
    """One node, and the pool the wire asks for its connections."""

    def __init__(self, cluster: FakeCluster, name: str) -> None:
        self.cluster = cluster
        self.name = name
        self.commands: list[list[bytes]] = []
        self.keys: dict[bytes, int] = {}  # key -> HSETs it received
        self.down = False
        self.break_after: int | None = None
        self.broken = False
        self.connects = 0
        self.migrating: dict[int, str] = {}  # slot -> importing node
        self.importing: set[int] = set()
        self.script: Script | None = None

    # the pool interface the wire uses
    def get_connection(self, *args: Any) -> FakeConnection:
        return FakeConnection(self)

    def release(self, conn: FakeConnection) -> None:
        pass

    def disconnect(self) -> None:
        pass

    def answer(self, sock: FakeSocket, command: list[bytes], asking: bool) -> bytes:
        self.commands.append(command)
        name = command[0].upper()
        if name == b"CLUSTER":
            return self.cluster.slots_reply()
        if name == b"ASKING":
            sock.asking = True
            return b"+OK\r\n"
        if name == b"PING":
            return b"+PONG\r\n"
        if self.script is not None and (scripted := self.script(self, command)) is not None:
            return scripted
        key = command[1]
        if self.cluster.cluster:
            slot = key_slot(key)
            if slot in self.migrating and key not in self.keys:
                return b"-ASK %d %s\r\n" % (slot, self.migrating[slot].encode())
            owner = self.cluster.owner(slot)
            if owner != self.name and not (asking and slot in self.importing):
                return b"-MOVED %d %s\r\n" % (slot, owner.encode())
        if name == b"HSET":
            self.keys[key] = self.keys.get(key, 0) + 1
            return b":%d\r\n" % ((len(command) - 2) // 2)
        if name == b"HEXPIRE":
            count = int(command[4])
            return b"*%d\r\n" % count + b":1\r\n" * count
        return b":1\r\n"  # HDEL, EXPIRE

    def hsets(self) -> int:
        return sum(1 for c in self.commands if c[0] == b"HSET")


class FakeCluster:
    def __init__(self, ranges: list[tuple[int, int, str]] | None = None) -> None:
        self.cluster = ranges is not None
        self.ranges = ranges or []
        names = {name for _, _, name in self.ranges} or {"server"}
        self.nodes = {name: FakeNode(self, name) for name in names}
        self.before_slots: Callable[[], None] | None = None  # e.g. a failover completing

    def owner(self, slot: int) -> str:
        return next((name for start, end, name in self.ranges if start <= slot <= end), "")

    def slots_reply(self) -> bytes:
        if self.before_slots is not None:
            self.before_slots()
        out = b"*%d\r\n" % len(self.ranges)
        for start, end, name in self.ranges:
            host, port = name.split(":")
            out += b"*3\r\n:%d\r\n:%d\r\n*2\r\n$%d\r\n%s\r\n:%d\r\n" % (start, end, len(host), host.encode(), int(port))
        return out

    def pool(self, node: str, readonly: bool) -> FakeNode:
        return self.nodes[node]

    def all_keys(self) -> set[bytes]:
        return {key for node in self.nodes.values() for key in node.keys}


def three_masters() -> FakeCluster:
    return FakeCluster([(0, 5460, A), (5461, 10922, B), (10923, 16383, C)])


def rows(n: int, first: int = 0) -> pa.RecordBatch:
    ids = list(range(first, first + n))
    return pa.RecordBatch.from_pydict(
        {
            "acct_id": pa.array(ids, pa.int64()),
            "n": pa.array(ids, pa.int64()),
            "amount": pa.array([i / 4 for i in ids], pa.float64()),
            "ratio": pa.array([None] * n, pa.float32()),
            "label": pa.array([f"l{i}" for i in ids]),
            "flag": pa.array([i % 2 == 0 for i in ids]),
            "emb": pa.array([[1.0, 2.0, float(i)] for i in ids], pa.list_(pa.float32())),
        }
    )


def key(i: int) -> bytes:
    return codec.entity_key(edge.entity, i)


def writer(
    fake: FakeCluster, url: str = CLUSTER_URL, *, seconds: float = 5.0, **options: Any
) -> tuple[PartitionWriter, FakeClock]:
    clock = FakeClock()
    settings = ConnectionSettings.from_url(url)
    wire = Wire(
        settings,
        policy=RetryPolicy(seconds=seconds),
        timeout=1.0,
        replicas=False,
        clock=clock,
        sleep=clock.sleep,
        pool_factory=fake.pool,
    )
    writer_options = WriterOptions(redis_url=url, computed_at_ms=42, retry_seconds=seconds, **options)
    return PartitionWriter(BatchWritePlan.build(writer_catalog, edge), writer_options, wire=wire), clock


def test_standalone_sends_exactly_the_reference_commands() -> None:
    fake = FakeCluster()
    partition, _ = writer(fake, "redis://server:6379/0", pipeline_rows=7)
    batch = rows(20)
    stats = partition.write([batch])
    assert (stats.rows, stats.written, stats.failed, stats.retries, stats.entities) == (20, 20, 0, 0, 20)
    plan = BatchWritePlan.build(writer_catalog, edge)
    expected = [c for values in batch.to_pylist() for c in plan.commands(values["acct_id"], values, 42)]
    sent = fake.nodes["server"].commands
    assert b"".join(resp(c) for c in sent) == b"".join(resp(c) for c in expected)
    assert fake.nodes["server"].connects == 1  # one connection for every pipeline


def test_each_pipeline_goes_to_the_owner_of_each_rows_slot() -> None:
    fake = three_masters()
    partition, clock = writer(fake, pipeline_rows=100, in_flight=3)
    stats = partition.write([rows(600)])
    assert (stats.written, stats.failed, stats.retries) == (600, 0, 0)
    for name, node in fake.nodes.items():
        assert node.keys and all(fake.owner(key_slot(k)) == name for k in node.keys)
        assert node.hsets() == len(node.keys)  # no redirect, no retry
    assert fake.all_keys() == {key(i) for i in range(600)}
    assert clock.slept == []


def test_moved_after_a_resharding_refreshes_the_slot_map_and_resends_to_the_new_owner() -> None:
    fake = three_masters()
    partition, _ = writer(fake, pipeline_rows=50)
    partition.write_batch(rows(50))  # loads the slot map, writes (pipelines stay in flight)
    partition.flush()
    fake.ranges = [(0, 5460, B), (5461, 10922, B), (10923, 16383, C)]  # A's slots moved to B
    stats = partition.write([rows(50, first=50)])
    assert (stats.written, stats.failed) == (100, 0) and stats.retries >= 1
    moved = [key(i) for i in range(50, 100) if key_slot(key(i)) <= 5460]
    assert moved and all(k in fake.nodes[B].keys for k in moved)
    assert not any(k in fake.nodes[A].keys for k in moved)


def test_ask_during_a_slot_migration_sends_asking_before_each_command_on_the_target() -> None:
    fake = three_masters()
    slot = key_slot(key(0))
    owner = fake.owner(slot)
    target = next(name for name in fake.nodes if name != owner)
    fake.nodes[owner].migrating[slot] = target
    fake.nodes[target].importing.add(slot)
    partition, _ = writer(fake)
    stats = partition.write([rows(30)])
    assert (stats.written, stats.failed) == (30, 0) and stats.retries == 1
    assert key(0) in fake.nodes[target].keys and key(0) not in fake.nodes[owner].keys
    sent = fake.nodes[target].commands
    for position, command in enumerate(sent):
        if command[0] != b"ASKING" and command[1] == key(0):
            assert sent[position - 1] == [b"ASKING"]


def test_a_connection_lost_mid_replies_keeps_the_answered_rows_and_resends_the_rest() -> None:
    fake = FakeCluster()
    node = fake.nodes["server"]
    node.break_after = 4 * 40 + 2  # the replies of the first rows (HSET, EXPIRE, HEXPIRE *4 ... )
    partition, clock = writer(fake, "redis://server:6379/0", pipeline_rows=100, in_flight=1)
    stats = partition.write([rows(100)])
    assert (stats.written, stats.failed) == (100, 0) and stats.retries == 1
    assert node.connects == 2 and len(clock.slept) == 1
    counts = node.keys
    assert set(counts) == {key(i) for i in range(100)}
    assert 0 < sum(1 for c in counts.values() if c == 1) < 100  # the answered rows were not re-sent


def test_a_node_killed_mid_write_is_ridden_through_once_a_replica_takes_over() -> None:
    fake = three_masters()
    fake.nodes["10.0.0.4:7000"] = FakeNode(fake, "10.0.0.4:7000")  # B's replica
    partition, clock = writer(fake, pipeline_rows=40)
    partition.write_batch(rows(40))
    partition.flush()
    fake.nodes[B].down = True
    fake.nodes[B].broken = True
    failover_at = clock.now + 3.0

    def promote_the_replica_in_time() -> None:
        if clock.now >= failover_at:
            fake.ranges = [(0, 5460, A), (5461, 10922, "10.0.0.4:7000"), (10923, 16383, C)]

    fake.before_slots = promote_the_replica_in_time
    stats = partition.write([rows(200, first=40)])
    assert (stats.written, stats.failed) == (240, 0) and stats.retries >= 2
    assert clock.now >= failover_at  # it kept trying through the failover
    on_b = [key(i) for i in range(40, 240) if 5461 <= key_slot(key(i)) <= 10922]
    assert on_b and all(k in fake.nodes["10.0.0.4:7000"].keys for k in on_b)


def test_clusterdown_until_the_deadline_gives_up_with_a_write_error() -> None:
    fake = three_masters()
    for node in fake.nodes.values():
        node.script = lambda node, command: b"-CLUSTERDOWN The cluster is down\r\n"
    partition, clock = writer(fake, seconds=2.0)
    stats = partition.write([rows(10)])
    assert stats.fatal is not None and "could not write" in stats.fatal and "CLUSTERDOWN" in stats.fatal
    assert "'edge'" in stats.fatal and stats.written == 0 and stats.failed == 10
    assert 2.0 - RetryPolicy().max_backoff <= clock.now - 1000.0 <= 2.0  # the budget, in the wire's backoff
    assert max(clock.slept) <= RetryPolicy().max_backoff


def test_a_wrongtype_row_is_failed_and_the_others_are_written() -> None:
    fake = FakeCluster()
    bad = key(3)
    fake.nodes["server"].script = lambda node, c: (
        b"-WRONGTYPE Operation against a key holding the wrong kind of value\r\n" if c[1] == bad else None
    )
    partition, _ = writer(fake, "redis://server:6379/0", pipeline_rows=4)
    stats = partition.write([rows(10)])
    assert (stats.written, stats.failed, stats.retries, stats.entities) == (9, 1, 0, 9)
    assert "WRONGTYPE" in stats.failures[0] and "'3'" in stats.failures[0]


def test_noperm_stops_the_task_at_once() -> None:
    fake = FakeCluster()
    fake.nodes["server"].script = lambda node, c: b"-NOPERM User loader has no permissions\r\n"
    partition, clock = writer(fake, "redis://loader:pw@server:6379/0")
    stats = partition.write([rows(10)])
    assert stats.fatal is not None and "refused the write: NOPERM" in stats.fatal and "pw@" not in stats.fatal
    assert clock.slept == []


def test_an_unreachable_cluster_is_a_write_error_after_the_budget() -> None:
    fake = three_masters()
    for node in fake.nodes.values():
        node.down = True
    partition, clock = writer(fake, seconds=1.5)
    stats = partition.write([rows(5)])
    assert stats.fatal is not None and "cannot reach Redis" in stats.fatal
    assert 1.5 - RetryPolicy().max_backoff <= clock.now - 1000.0 <= 1.5


def test_preflight_through_the_wire_refuses_a_server_without_hexpire() -> None:
    fake = FakeCluster()
    fake.nodes["server"].script = lambda node, c: (
        b"-ERR unknown command 'HEXPIRE', with args beginning with: \r\n" if c[0] == b"HEXPIRE" else None
    )
    settings = ConnectionSettings.from_url("redis://server:6379")
    wire = Wire(settings, policy=RetryPolicy(seconds=1.0), pool_factory=fake.pool)
    with pytest.raises(UnsupportedServerError, match=r"view 'edge'.*HEXPIRE \(Redis >= 7.4 or Valkey >= 9\)"):
        preflight(BatchWritePlan.build(writer_catalog, edge), settings, 1.0, 1.0, wire=wire)
    # a view without a shorter TTL does not need it
    wire = Wire(settings, policy=RetryPolicy(seconds=1.0), pool_factory=fake.pool)
    preflight(BatchWritePlan.build(writer_catalog, shop_stats), settings, 1.0, 1.0, wire=wire)


def test_preflight_names_the_view_when_redis_is_unreachable() -> None:
    fake = FakeCluster()
    fake.nodes["server"].down = True
    clock = FakeClock()
    settings = ConnectionSettings.from_url("redis://u:s3cret@server:6379")
    wire = Wire(settings, policy=RetryPolicy(seconds=1.0), clock=clock, sleep=clock.sleep, pool_factory=fake.pool)
    with pytest.raises(WriteError, match=r"view 'edge'.*cannot reach Redis") as failed:
        preflight(BatchWritePlan.build(writer_catalog, edge), settings, 1.0, 1.0, wire=wire)
    assert "s3cret" not in str(failed.value)


def test_a_throttled_partition_writes_in_pipelines_of_a_tenth_of_a_second() -> None:
    fake = FakeCluster()
    partition, clock = writer(fake, "redis://server:6379/0", rows_per_second_per_task=200.0)
    stats = partition.write([rows(100)])
    assert stats.written == 100 and partition.pipeline_rows == 20
    assert clock.now - 1000.0 == pytest.approx(0.5)  # 100 rows at 200 rows/s
