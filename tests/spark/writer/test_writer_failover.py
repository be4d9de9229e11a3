"""Redirects and failures on a DEDICATED local cluster (this module breaks it on purpose).

* a slot being migrated answers ``ASK``: the rows follow the redirect with ``ASKING``;
* a master killed mid-write: the job completes (after retries) or raises WriteError,
  and a re-run then has every row.
"""

from __future__ import annotations

import os
import signal
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from redis.crc import key_slot

from featurestore.jobs.dev import local_redis
from featurestore.jobs.write.partition_writer import BatchWriteStats, write_view
from featurestore.readers import codec
from featurestore.readers.errors import WriteError
from tests.helpers.servers import cluster_to_hurt
from tests.helpers.writer import edge, expected_n, frame, range_frame, writer_catalog

pytestmark = [pytest.mark.cluster, pytest.mark.slow]


@pytest.fixture(scope="module")
def own_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    workdir: Path = tmp_path_factory.mktemp("writer-failover-cluster")
    server = cluster_to_hurt(workdir)
    try:
        yield server
    finally:
        local_redis.stop(workdir)


def node_id(client: redis.Redis) -> str:
    return str(client.execute_command("CLUSTER", "MYID").decode())


def test_rows_of_a_migrating_slot_follow_the_ask_redirect(spark, own_cluster: local_redis.LocalRedis) -> None:  # type: ignore[no-untyped-def]
    source, target = (own_cluster.client(p) for p in own_cluster.primary_ports()[:2])
    slot = 100  # owned by the first master (slots 0-5460)
    ids = [i for i in range(200_000) if key_slot(codec.entity_key(edge.entity, i)) == slot][:5]
    others = list(range(1, 40))
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", node_id(source))
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", node_id(target))
    try:
        rows = [{"acct_id": i, "n": i} for i in ids + others]
        stats = write_view(frame(spark, edge, rows), writer_catalog, edge, own_cluster.url, computed_at_ms=1)
    finally:
        for port in own_cluster.primary_ports():  # the slot now belongs to the target
            own_cluster.client(port).execute_command("CLUSTER", "SETSLOT", slot, "NODE", node_id(target))
    assert stats.written == len(rows) and stats.failed == 0
    assert stats.retries >= 1  # the ASK round
    # the new keys went to the importing node, none to the migrating one
    assert source.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0
    assert target.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == len(ids)
    for i in ids:
        key = codec.entity_key(edge.entity, i)
        assert target.hget(key, "n") == str(i).encode() and target.ttl(key) > 0
    assert int(source.info("errorstats").get("errorstat_ASK", {}).get("count", 0)) >= 1


def test_a_master_killed_mid_write_then_a_rerun_has_every_row(spark, own_cluster: local_redis.LocalRedis) -> None:  # type: ignore[no-untyped-def]
    count = 30_000
    for port in own_cluster.primary_ports():
        own_cluster.client(port).flushall()
    # not the URL's seed node (ports[0]): a job must be able to reach some node to start
    victim_port = own_cluster.primary_ports()[1]
    victim_pid = int((Path(own_cluster.workdir) / str(victim_port) / "server.pid").read_text())
    df = range_frame(spark, count, partitions=2)
    killed = threading.Event()

    def kill_when_writing() -> None:
        client = own_cluster.client(own_cluster.primary_ports()[0])
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and client.dbsize() < 500:
            time.sleep(0.05)
        os.kill(victim_pid, signal.SIGKILL)
        killed.set()

    killer = threading.Thread(target=kill_when_writing, daemon=True)
    killer.start()
    outcome: BatchWriteStats | WriteError
    try:  # ~4 s of writing at 7.5k rows/s, so the kill lands in the middle
        outcome = write_view(df, writer_catalog, edge, own_cluster.url, computed_at_ms=1, max_writes_per_sec=7500)
    except WriteError as exc:
        outcome = exc
    killer.join(130)
    assert killed.is_set()
    if isinstance(outcome, BatchWriteStats):  # it rode out the failover
        assert outcome.retries >= 1 and outcome.written + outcome.failed == count
    else:
        assert "could not write" in str(outcome) and "edge" in str(outcome)

    rerun = write_view(df, writer_catalog, edge, own_cluster.url, computed_at_ms=2)
    assert (rerun.written, rerun.failed) == (count, 0)
    reader = redis.RedisCluster(host=own_cluster.host, port=own_cluster.primary_ports()[0])
    pipe = reader.pipeline(transaction=False)
    for i in range(count):
        pipe.hmget(codec.entity_key(edge.entity, i), ["n", "_ts:edge"])
    values = pipe.execute()
    missing = [i for i, (n, ts) in enumerate(values) if (n, ts) != (expected_n(i), b"2")]
    assert missing == [], f"{len(missing)} rows missing or stale after the re-run, e.g. {missing[:5]}"
    reader.close()
