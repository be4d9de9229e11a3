"""The streaming writer against a local Redis Cluster (3 masters + 3 replicas)."""

from __future__ import annotations

from typing import Any

import pytest
import redis
from redis.crc import key_slot

from featurestore.jobs.dev.local_redis import LocalRedis
from featurestore.jobs.examples.fraud.definitions import catalog, user_profile, user_realtime
from featurestore.jobs.streaming import GUARD_LIBRARY, StreamingWriter
from featurestore.readers import FeatureReader, FeatureStatus, codec
from tests.helpers.streaming import batch_load, now_ms

pytestmark = pytest.mark.cluster


def libraries(client: Any) -> list[str]:
    return [dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode() for lib in client.function_list()]


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "unguarded"])
def test_writes_spread_over_every_master(cluster_url: str, redis_cluster: LocalRedis, guard: bool) -> None:
    ids = list(range(1, 601))
    t = now_ms()
    with StreamingWriter.connect(
        cluster_url, "user_realtime", catalog=catalog, guard=guard, max_pipeline=250
    ) as writer:
        stats = writer.write_many((i, {"txn_count_5m": i % 5, "last_country": "NL"}, t) for i in ids)
        assert (stats.written, stats.skipped) == (600, 0)
        if guard:  # the older event of every entity is skipped, on whichever master owns it
            older = writer.write_many((i, {"txn_count_5m": 99}, t - 1) for i in ids)
            assert (older.written, older.skipped) == (0, 600)
    masters = {p: redis_cluster.client(p) for p in redis_cluster.primary_ports()}
    owners: dict[int, list[tuple[int, int]]] = {p: [] for p in masters}
    for port, client in masters.items():
        slots = client.execute_command("CLUSTER", "SLOTS")
        for first, last, primary, *_ in slots:
            if primary[1] == port:
                owners[port].append((first, last))  # several ranges once a slot has moved
        if guard:
            assert libraries(client) == [GUARD_LIBRARY]  # loaded on each master
    per_master = dict.fromkeys(masters, 0)
    for i in ids:
        key = codec.entity_key(user_realtime.entity, i)
        slot = key_slot(key)
        port = next(p for p, ranges in owners.items() if any(a <= slot <= b for a, b in ranges))
        stored = masters[port].hmget(key, "txn_count_5m", "last_country", "_ts:user_realtime")
        assert stored == [str(i % 5).encode(), b"NL", str(t).encode()]
        ttls = masters[port].execute_command(
            "HTTL", key, "FIELDS", 3, "txn_count_5m", "last_country", "_ts:user_realtime"
        )
        assert 350 <= ttls[0] <= 360 and all(3590 <= x <= 3600 for x in ttls[1:])
        per_master[port] += 1
    assert all(n > 100 for n in per_master.values()), per_master


def test_function_lost_on_one_master_is_reloaded(cluster_url: str, redis_cluster: LocalRedis) -> None:
    with StreamingWriter.connect(cluster_url, "user_realtime", catalog=catalog) as writer:
        victim = redis_cluster.client(redis_cluster.primary_ports()[1])
        victim.function_flush()
        assert libraries(victim) == []
        stats = writer.write_many((i, {"txn_count_5m": 1}, None) for i in range(1, 301))
        assert stats.written == 300
    assert libraries(victim) == [GUARD_LIBRARY]


def test_reader_sees_batch_and_streaming_features_in_the_cluster(cluster_url: str) -> None:
    base = cluster_url.partition("?")[0]
    client = redis.RedisCluster.from_url(base)
    batch_load(client, catalog, user_profile, {i: {"home_country": "SE", "account_type": "gold"} for i in range(1, 51)})
    with StreamingWriter.connect(cluster_url, "user_realtime", catalog=catalog) as writer:
        writer.write_many((i, {"last_amount": float(i), "last_country": "DK"}, now_ms()) for i in range(1, 51))
    with FeatureReader(cluster_url, catalog=catalog) as reader:
        vectors = reader.get_many(list(range(1, 51)), ["home_country", "last_amount", "last_country", "txn_count_5m"])
    for i, vector in zip(range(1, 51), vectors):
        assert (vector["home_country"], vector["last_amount"], vector["last_country"]) == ("SE", float(i), "DK")
        assert vector.status("txn_count_5m") is FeatureStatus.MISSING  # never written: the default
        assert vector["txn_count_5m"] == 0
        assert vector.age("user_realtime") is not None and vector.age("user_realtime") < 10  # type: ignore[operator]


def _node_id(client: redis.Redis) -> str:
    return client.execute_command("CLUSTER", "MYID").decode()


def _id_in_slot(slot: int, other_than: int) -> int:
    return next(i for i in range(1, 10**7) if i != other_than and key_slot(b"fs:user:{%d}" % i) == slot)


@pytest.mark.parametrize(
    ("guard", "method"), [(True, "auto"), (False, "hset_hexpire")], ids=["guarded-fcall", "unguarded-multi"]
)
def test_writes_follow_ask_and_moved_while_a_slot_migrates(
    cluster_url: str, redis_cluster: LocalRedis, guard: bool, method: str
) -> None:
    t = now_ms()
    with StreamingWriter.connect(cluster_url, "user_realtime", catalog=catalog, guard=guard, method=method) as writer:
        writer.write(7, {"txn_count_5m": 1}, t)  # the slot map is cached now
        key = codec.entity_key(user_realtime.entity, 7)
        slot = key_slot(key)
        masters = {p: redis_cluster.client(p) for p in redis_cluster.primary_ports()}
        source_port = next(p for p, c in masters.items() if c.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot))
        target_port = next(p for p in masters if p != source_port)
        source, target = masters[source_port], masters[target_port]
        target.execute_command("CLUSTER", "SETSLOT", slot, "IMPORTING", _node_id(source))
        source.execute_command("CLUSTER", "SETSLOT", slot, "MIGRATING", _node_id(target))
        source.execute_command("MIGRATE", redis_cluster.host, target_port, "", 0, 5000, "KEYS", key)
        # mid-migration the source answers ASK for both (the moved key, and a new key of the slot)
        other = _id_in_slot(slot, other_than=7)
        asking = int(target.info("commandstats").get("cmdstat_asking", {}).get("calls", 0))
        stats = writer.write_many([(7, {"txn_count_5m": 2}, t + 1), (other, {"txn_count_5m": 3}, t + 1)])
        assert stats.written == 2
        assert int(target.info("commandstats")["cmdstat_asking"]["calls"]) > asking  # went there by ASK
        for client in masters.values():
            client.execute_command("CLUSTER", "SETSLOT", slot, "NODE", _node_id(target))
        # afterwards the source answers MOVED; the writer reloads the slot map
        assert writer.write(7, {"txn_count_5m": 4}, t + 2)
    assert target.hget(key, "txn_count_5m") == b"4"
    assert target.hget(codec.entity_key(user_realtime.entity, other), "txn_count_5m") == b"3"
    assert 350 <= target.execute_command("HTTL", key, "FIELDS", 1, "txn_count_5m")[0] <= 360
    assert source.execute_command("CLUSTER", "COUNTKEYSINSLOT", slot) == 0  # nothing left behind
