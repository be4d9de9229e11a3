"""The reader against a real local Redis Cluster (3 masters + 3 replicas)."""

from __future__ import annotations

import os
import signal
import time

import pytest
import redis
from redis.crc import key_slot

from featurestore.jobs.dev import local_redis
from featurestore.readers import FeatureReader, FeatureStoreConnectionError
from tests.helpers.reader import client_for, scores, test_catalog, write_view
from tests.helpers.servers import cluster_to_hurt

pytestmark = pytest.mark.cluster
IDS = list(range(1, 301))


def rows(ids: list[int]) -> dict[int, dict[str, object]]:
    return {i: {"n_orders": i, "segment": f"s{i % 7}", "spend": i / 4} for i in ids}


def masters_holding_keys(server: local_redis.LocalRedis) -> list[int]:
    return [server.client(port).dbsize() for port in server.primary_ports()]


def test_keys_spread_over_all_masters_and_get_many_keeps_order(redis_cluster, cluster_url: str) -> None:  # type: ignore[no-untyped-def]
    write_view(client_for(cluster_url), test_catalog, scores, rows(IDS))
    counts = masters_holding_keys(redis_cluster)
    assert all(c > 50 for c in counts), counts
    reader = FeatureReader.connect(cluster_url, catalog=test_catalog)
    wanted = [300, 5, 999_999, 5, *range(100, 200)]
    batch = reader.get_many(wanted, ["n_orders", "segment"])
    expected = [[i, f"s{i % 7}"] if i in IDS else [0, "none"] for i in wanted]
    assert batch.to_list() == expected
    assert reader.get(42, ["spend"]).to_list() == [10.5]


def test_replicas_can_serve_reads(redis_cluster, cluster_url: str) -> None:  # type: ignore[no-untyped-def]
    write_view(client_for(cluster_url), test_catalog, scores, rows(IDS))
    for port in redis_cluster.primary_ports():  # let replication catch up before reading from replicas
        redis_cluster.client(port).execute_command("WAIT", 1, 2000)
    replica_ports = redis_cluster.ports[3:]
    before = sum(
        int(redis_cluster.client(p).info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))
        for p in replica_ports
    )
    reader = FeatureReader.connect(cluster_url, catalog=test_catalog, read_from_replicas=True)
    assert reader.get_many(IDS, ["n_orders"]).to_list() == [[i] for i in IDS]
    after = sum(
        int(redis_cluster.client(p).info("commandstats").get("cmdstat_hmget", {}).get("calls", 0))
        for p in replica_ports
    )
    assert after - before == len(IDS)  # every HMGET went to a replica


def _node_id(client: redis.Redis) -> str:
    return client.execute_command("CLUSTER", "MYID").decode()


def test_reads_follow_a_slot_that_moves(redis_cluster, cluster_url: str) -> None:  # type: ignore[no-untyped-def]
    write_view(client_for(cluster_url), test_catalog, scores, rows(IDS))
    reader = FeatureReader.connect(cluster_url, catalog=test_catalog)
    assert reader.get(7, ["n_orders"]).to_list() == [7]  # topology cached
    slot = key_slot(b"fs:user:{7}")
    masters = {p: redis_cluster.client(p) for p in redis_cluster.primary_ports()}
    source_port = next(p for p, c in masters.items() if c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
    target_port = next(p for p in masters if p != source_port)
    source, target = masters[source_port], masters[target_port]
    target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _node_id(source))
    source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(target))
    keys = source.execute_command("CLUSTER", "GETKEYSINSLOT", slot, 100)
    source.execute_command("MIGRATE", redis_cluster.host, target_port, "", 0, 5000, "KEYS", *keys)
    # mid-migration: the source answers ASK for the moved key
    assert reader.get_many([7, 8], ["n_orders"]).to_list() == [[7], [8]]
    for client in masters.values():
        client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", _node_id(target))
    # afterwards: the source answers MOVED; the reader refreshes its slot map
    assert reader.get(7, ["n_orders"]).to_list() == [7]
    assert reader.get_many(IDS, ["n_orders"]).to_list() == [[i] for i in IDS]


@pytest.mark.slow
def test_reads_keep_working_when_a_master_fails_over(tmp_path) -> None:  # type: ignore[no-untyped-def]
    server = cluster_to_hurt(tmp_path / "failover")  # its own cluster: this one gets hurt
    try:
        client = client_for(server.url)
        write_view(client, test_catalog, scores, rows(IDS))
        for port in server.primary_ports():
            server.client(port).execute_command("WAIT", 1, 2000)
        reader = FeatureReader.connect(server.url, catalog=test_catalog, timeout=1.0)
        assert reader.get_many(IDS, ["n_orders"]).to_list() == [[i] for i in IDS]

        os.kill(server.pids[0], signal.SIGKILL)  # the first master dies; its replica must take over
        with pytest.raises(FeatureStoreConnectionError):
            reader.get_many(IDS, ["n_orders"], timeout=0.2)  # while the cluster notices: a fast, clear error
        recovered = None
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            try:
                recovered = reader.get_many(IDS, ["n_orders"], timeout=2.0)
                break
            except FeatureStoreConnectionError:
                time.sleep(0.2)
        assert recovered is not None, "reads did not recover after the failover"
        assert recovered.to_list() == [[i] for i in IDS]  # no value lost: the replica had them all
    finally:
        local_redis.stop(tmp_path / "failover")
