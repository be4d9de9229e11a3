"""A streaming ``write_many`` rides through a master failover (a DEDICATED local cluster: this
module kills one of its masters).

The writer's retry budget (``retry_seconds``, default ``WRITER_RETRY_SECONDS``) is long
enough for a replica to be promoted (node timeout 5 s + election on the local cluster), so
a ``foreachBatch`` micro-batch or a consumer's batch does not fail when a master dies.
"""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from redis.crc import key_slot

from featurestore.jobs.dev import local_redis
from featurestore.jobs.examples.fraud.definitions import catalog, user_realtime
from featurestore.jobs.streaming import StreamingWriter
from featurestore.readers import FeatureReader, FeatureStatus, codec
from featurestore.readers.wire import WRITER_RETRY_SECONDS
from tests.helpers.servers import cluster_to_hurt
from tests.helpers.streaming import now_ms

pytestmark = [pytest.mark.cluster, pytest.mark.slow]

FEATURES = ["txn_count_5m", "last_amount", "last_country"]


def wait_until_replicated(server: local_redis.LocalRedis, master: Any) -> int:
    """Wait until the master's replica has everything the master acknowledged; its port.

    Replication is asynchronous: a write acknowledged but not yet replicated is lost in
    any failover, whatever the client does.  The test kills the master only once its
    replica caught up, so every acknowledged event must survive.
    """
    port = int(master.info("replication")["slave0"]["port"])
    replica = server.client(port)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        target = int(master.info("replication")["master_repl_offset"])
        if int(replica.info("replication")["slave_repl_offset"]) >= target:
            return port
        time.sleep(0.01)
    raise AssertionError("the replica did not catch up within 10 s")


def test_write_many_rides_through_a_master_failover(tmp_path: Path) -> None:
    server = cluster_to_hurt(tmp_path / "failover")  # its own cluster: this one gets hurt
    try:
        # not the URL's seed node (ports[0]); pids follow ports
        victim_port, victim_pid = server.ports[1], server.pids[1]
        victim = server.client(victim_port)
        victim_slots = {
            slot
            for first, last, primary, *_ in victim.execute_command("CLUSTER", "SLOTS")
            if int(primary[1]) == victim_port
            for slot in range(int(first), int(last) + 1)
        }
        ids = list(range(1, 20_001))
        t0 = now_ms()
        killed: list[int] = []  # the replica's port, once the master is dead

        def events() -> Iterator[tuple[int, dict[str, Any], int]]:
            for n, i in enumerate(ids):
                if n == len(ids) // 4:  # 10 of 40 pipelines sent: the master of a third of the slots dies
                    killed.append(wait_until_replicated(server, victim))
                    os.kill(victim_pid, signal.SIGKILL)
                yield i, {"txn_count_5m": i % 5, "last_amount": float(i), "last_country": "SE"}, t0 + i

        with StreamingWriter.connect(server.url, "user_realtime", catalog=catalog, max_pipeline=500) as writer:
            assert writer.retry_seconds == WRITER_RETRY_SECONDS
            stats = writer.write_many(events())  # must not raise
        assert killed, "the master was never killed"
        assert (stats.written, stats.skipped) == (len(ids), 0)
        # the replica took over, so the events after the kill that belong to its slots went there
        promoted = server.client(killed[0])
        assert promoted.info("replication")["role"] == "master"
        after_kill = [
            i for i in ids[len(ids) // 4 :] if key_slot(codec.entity_key(user_realtime.entity, i)) in victim_slots
        ]
        assert len(after_kill) > 1000
        assert promoted.hget(codec.entity_key(user_realtime.entity, after_kill[-1]), "last_amount") is not None

        with FeatureReader.connect(server.url, catalog=catalog) as reader:
            vectors = reader.get_many(ids, FEATURES, timeout=30)  # 20,000 entities: correctness, not latency
        wrong = [
            i
            for i, vector in zip(ids, vectors)
            if not all(vector.status(f) is FeatureStatus.PRESENT for f in FEATURES)
            or (vector["txn_count_5m"], vector["last_amount"], vector["last_country"]) != (i % 5, float(i), "SE")
        ]
        assert wrong == [], f"{len(wrong)} events missing or wrong after the failover, e.g. {wrong[:5]}"
    finally:
        local_redis.stop(tmp_path / "failover")
