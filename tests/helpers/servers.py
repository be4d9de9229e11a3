"""Servers a test starts for itself (the shared ones are session fixtures in tests/conftest.py)."""

from __future__ import annotations

from pathlib import Path

from featurestore.jobs.dev import local_redis

# a silent master counts as failing after 1 s (not 5 s): its replica takes over in ~2 s, which
# keeps the failover tests short; on a loaded machine a false failover here only hurts the test
# that owns this cluster
FAILOVER_NODE_TIMEOUT_MS = 1000


def cluster_to_hurt(workdir: Path) -> local_redis.LocalRedis:
    """A 3-master + 3-replica cluster of the test's own, for a test that kills one of its masters."""
    return local_redis.start(workdir, cluster=True, cluster_node_timeout_ms=FAILOVER_NODE_TIMEOUT_MS)
