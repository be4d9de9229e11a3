"""AsyncFeatureReader: the same plans and decoding over redis.asyncio."""

from __future__ import annotations

import asyncio
import time

import pytest
import redis

from featurestore.readers import (
    AsyncFeatureReader,
    Catalog,
    Feature,
    FeatureStatus,
    FeatureStoreTimeout,
    FeatureView,
    RegistryMismatchError,
)
from tests.helpers.reader import client_for, dense, scores, test_catalog, user, write_view

ROWS = {i: {"n_orders": i, "segment": f"s{i}"} for i in range(1, 201)}


async def test_get_and_get_many_standalone(redis_url: str) -> None:
    write_view(client_for(redis_url), test_catalog, scores, ROWS)
    async with await AsyncFeatureReader.connect(redis_url, catalog=test_catalog) as reader:
        v = await reader.get(3, ["segment", "n_orders"])
        assert v.to_list() == ["s3", 3] and v.status("n_orders") is FeatureStatus.PRESENT
        batch = await reader.get_many([5, 1000, 5], ["n_orders"])
        assert batch.to_list() == [[5], [0], [5]]
        assert batch.status(1, "n_orders") is FeatureStatus.MISSING
        # concurrent calls share the pool safely
        results = await asyncio.gather(*(reader.get(i, ["n_orders"]) for i in range(1, 51)))
        assert [r.to_list() for r in results] == [[i] for i in range(1, 51)]


async def test_compact_view_async(redis_url: str) -> None:
    write_view(client_for(redis_url), test_catalog, dense, {30: {"d_count": 4, "d_tag": "x", "d_emb": [0.5, 1.0]}})
    async with await AsyncFeatureReader.connect(redis_url, catalog=test_catalog) as reader:
        v = await reader.get(30, ["d_emb", "d_tag", "d_count", "d_amount"])
        assert v.to_list() == [(0.5, 1.0), "x", 4, None]
        assert v.status("d_amount") is FeatureStatus.MISSING and v.status("d_tag") is FeatureStatus.PRESENT


@pytest.mark.cluster
async def test_get_many_across_cluster_shards(cluster_url: str) -> None:
    write_view(client_for(cluster_url), test_catalog, scores, ROWS)
    async with await AsyncFeatureReader.connect(cluster_url, catalog=test_catalog) as reader:
        batch = await reader.get_many(list(range(200, 0, -1)), ["segment"])
        assert batch.to_list() == [[f"s{i}"] for i in range(200, 0, -1)]
    async with await AsyncFeatureReader.connect(cluster_url, catalog=test_catalog, read_from_replicas=True) as reader:
        assert (await reader.get(7, ["n_orders"])).to_list() in ([7], [0])  # a replica may lag a moment


async def test_timeout_and_registry_check(redis_url: str) -> None:
    write_view(client_for(redis_url), test_catalog, scores, ROWS)
    changed = FeatureView("scores", user, (Feature("n_orders", "string"),), ttl=60)
    with pytest.raises(RegistryMismatchError, match="'n_orders' is string here but was materialized as int64"):
        await AsyncFeatureReader.connect(redis_url, catalog=Catalog(views=(changed,)))
    reader = await AsyncFeatureReader.connect(redis_url, catalog=test_catalog)
    try:
        await reader.get(1, ["n_orders"])  # a pooled connection exists
        redis.Redis.from_url(redis_url).execute_command("CLIENT", "PAUSE", 800, "ALL")
        start = time.monotonic()
        with pytest.raises(FeatureStoreTimeout, match="timed out after 0.1s"):
            await reader.get_many([1, 2], ["n_orders"], timeout=0.1)
        assert time.monotonic() - start < 0.5
        await asyncio.sleep(0.8)
        assert (await reader.get(2, ["n_orders"])).to_list() == [2]
    finally:
        await reader.close()
