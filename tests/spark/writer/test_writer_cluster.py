"""write_view into the shared local Redis Cluster (3 masters + 3 replicas): routing per node."""

from __future__ import annotations

from typing import Any

import pytest

from featurestore.jobs.dev.local_redis import LocalRedis
from featurestore.jobs.write.partition_writer import write_view
from tests.helpers.writer import (
    COMPUTED_AT,
    EDGE_ROWS,
    PACKED_ROWS,
    SHOP_ROWS,
    client_for,
    dump,
    edge,
    frame,
    packed_scores,
    range_frame,
    reference_write,
    shop_stats,
    writer_catalog,
)

pytestmark = pytest.mark.cluster


def command_calls(server: LocalRedis, port: int, command: str) -> int:
    return int(server.client(port).info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


def redirects(server: LocalRedis, port: int) -> int:
    errors: dict[str, Any] = server.client(port).info("errorstats")
    return sum(int(errors.get(f"errorstat_{kind}", {}).get("count", 0)) for kind in ("MOVED", "ASK"))


def primary_ports(url: str) -> list[int]:
    """The masters now: on a loaded machine a replica may have taken over (node timeout 2 s)."""
    client = client_for(url)
    ports = sorted(int(node.port) for node in client.get_primaries())
    client.close()
    return ports


def test_keys_spread_over_every_master_and_each_pipeline_goes_to_the_owner(  # type: ignore[no-untyped-def]
    spark, redis_cluster: LocalRedis, cluster_url: str
) -> None:
    masters = primary_ports(cluster_url)
    assert len(masters) == 3
    for port in masters:
        redis_cluster.client(port).config_resetstat()
    stats = write_view(range_frame(spark, 3000, partitions=3), writer_catalog, edge, cluster_url, computed_at_ms=1)
    assert (stats.rows, stats.written, stats.entities, stats.failed) == (3000, 3000, 3000, 0)
    keys = [redis_cluster.client(port).dbsize() for port in masters]
    assert sum(keys) == 3000 and all(k > 700 for k in keys), keys
    if stats.retries == 0:  # (a failover during the write would legitimately redirect)
        for port, held in zip(masters, keys):
            # every HSET a master received was for a key it owns: no MOVED/ASK, one HSET per key
            assert redirects(redis_cluster, port) == 0
            assert command_calls(redis_cluster, port, "hset") == held
            assert command_calls(redis_cluster, port, "expire") == held


def test_cluster_state_equals_the_reference_writer(spark, cluster_url: str) -> None:  # type: ignore[no-untyped-def]
    views = [(edge, EDGE_ROWS), (packed_scores, PACKED_ROWS), (shop_stats, SHOP_ROWS)]
    for view, rows in views:
        stats = write_view(frame(spark, view, rows), writer_catalog, view, cluster_url, computed_at_ms=COMPUTED_AT)
        assert stats.written == len(rows)
    ours = dump(cluster_url)
    client_for(cluster_url).flushall()
    for view, rows in views:
        reference_write(cluster_url, writer_catalog, view, rows)
    assert ours == dump(cluster_url)
