"""Helpers for reader tests: write rows exactly as the batch job does (same commands)."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import redis

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import Catalog, Entity, Feature, FeatureView, codec


def now_ms() -> int:
    return int(time.time() * 1000)


def client_for(url: str) -> Any:
    base, _, query = url.partition("?")
    if "cluster=true" in query:
        return redis.RedisCluster.from_url(base)
    return redis.Redis.from_url(base)


def write_view(
    client: Any,
    catalog: Catalog,
    view: FeatureView,
    rows: Mapping[object, Mapping[str, Any]],
    computed_at_ms: int | None = None,
) -> None:
    """HSET/HDEL/EXPIRE/HEXPIRE each row, then publish the view in the registry."""
    plan = BatchWritePlan.build(catalog, view)
    at = now_ms() if computed_at_ms is None else computed_at_ms
    for entity_id, values in rows.items():
        for command in plan.commands(entity_id, values, at):
            client.execute_command(command[0].decode(), *command[1:])  # RedisCluster wants a str name
    client.hset(codec.REGISTRY_KEY, view.name, codec.registry_entry(view, at, "test-run"))


# A small catalogue with every dtype, a packed view and a streaming view.
user = Entity("user", join_key="user_id")
account = Entity("account", join_key="account_id", id_dtype="string")
scores = FeatureView(
    "scores",
    user,
    (
        Feature("n_orders", "int64", default=0),
        Feature("spend", "float64", default=0.0),
        Feature("ratio", "float32"),
        Feature("segment", "string", default="none"),
        Feature("is_vip", "bool", default=False),
        Feature("embedding", "vector", dim=3),
    ),
    ttl=3600,
)
compact = FeatureView(
    "compact",
    user,
    (Feature("c1", "float32", default=-1.0), Feature("c_count", "int64"), Feature("c2", "float32")),
    ttl=3600,
    packed=True,
)
# the compact layout: every dtype in one record field `_c:dense`
dense = FeatureView(
    "dense",
    user,
    (
        Feature("d_count", "int64", default=0),
        Feature("d_amount", "float64"),
        Feature("d_ratio", "float32", default=0.5),
        Feature("d_tag", "string", default="none"),
        Feature("d_flag", "bool", default=False),
        Feature("d_emb", "vector", dim=2),
    ),
    ttl=3600,
    layout="compact",
    record_parts=2,  # `_c:dense` and `_c1:dense`: the reader joins them
)
live = FeatureView("live", user, (Feature("clicks_1m", "int64", default=0, ttl=60),), kind="streaming")
balances = FeatureView("balances", account, (Feature("balance", "float64"),), ttl=600)
test_catalog = Catalog(views=(scores, compact, dense, live, balances))
