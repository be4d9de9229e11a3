"""Helpers for the writer tests: a catalogue with every dtype, Spark frames of it, and
a dump of everything a write leaves in Redis (values and TTLs) to compare states."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import redis

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, DType, Entity, Feature, FeatureView

COMPUTED_AT = 1_760_000_000_123

acct = Entity("acct", join_key="acct_id")
shop = Entity("shop", join_key="shop_id", id_dtype="string")
# ttl 1 day < the entity's key TTL (7 days, from `packed_scores`): gets HEXPIRE
edge = FeatureView(
    "edge",
    acct,
    (
        Feature("n", "int64"),
        Feature("amount", "float64"),
        Feature("ratio", "float32"),
        Feature("label", "string"),
        Feature("flag", "bool"),
        Feature("emb", "vector", dim=3),
    ),
    ttl=86_400,
)
packed_scores = FeatureView(
    "packed_scores",
    acct,
    (Feature("p1", "float32"), Feature("p_count", "int64"), Feature("p2", "float32"), Feature("p3", "float32")),
    ttl=7 * 86_400,
    packed=True,
)
shop_stats = FeatureView(
    "shop_stats", shop, (Feature("visits", "int64"), Feature("share", "float32"), Feature("tag", "string")), ttl=3600
)
# the compact layout: edge's features in one record `_c:card_compact` (a bool pair tests the bits)
card = Entity("card", join_key="card_id")
card_compact = FeatureView(
    "card_compact",
    card,
    (*(Feature(f"c_{f.name}", f.dtype, dim=f.dim) for f in edge.features), Feature("c_flag2", "bool")),
    ttl=86_400,
    layout="compact",
    record_parts=3,  # cut in 3 fields: the split is exercised too (an all-null row has an empty part)
)
writer_catalog = Catalog(views=(edge, packed_scores, shop_stats, card_compact))

# Rows that exercise every edge of the value encoding.
EDGE_ROWS: list[dict[str, Any]] = [
    {"acct_id": 1, "n": 0, "amount": 0.1, "ratio": 0.1, "label": "", "flag": True, "emb": [0.0, -0.0, 1.5]},
    {"acct_id": 2, "n": None, "amount": None, "ratio": None, "label": None, "flag": None, "emb": None},
    {"acct_id": 3, "n": 2**63 - 1, "amount": math.nan, "ratio": math.nan, "label": "é€😀", "flag": False,
     "emb": [math.inf, -math.inf, 3.4e38]},
    {"acct_id": -(2**63), "n": -(2**63), "amount": math.inf, "ratio": -math.inf, "label": "a\r\nb$*", "flag": True,
     "emb": [1e-45, 2.5, -7.0]},
    {"acct_id": 0, "n": 5, "amount": -0.0, "ratio": -0.0, "label": "x" * 600, "flag": False, "emb": [0.1, 0.2, 0.3]},
    {"acct_id": 6, "n": -1, "amount": 5e-324, "ratio": 1e-45, "label": "0", "flag": None, "emb": [1.0, 2.0, 3.0]},
    {"acct_id": 7, "n": 123456789, "amount": 1.7976931348623157e308, "ratio": 3.0e38, "label": "null",
     "flag": True, "emb": None},
    {"acct_id": 8, "n": 1, "amount": 1e-7, "ratio": 123456789.0, "label": " ", "flag": False,
     "emb": [math.nan, 0.0, 0.0]},
]  # fmt: skip
PACKED_ROWS: list[dict[str, Any]] = [
    {"acct_id": 1, "p1": 0.5, "p_count": 3, "p2": None, "p3": math.nan},
    {"acct_id": 2, "p1": None, "p_count": None, "p2": None, "p3": None},
    {"acct_id": 3, "p1": None, "p_count": 7, "p2": math.nan, "p3": None},
    {"acct_id": 8, "p1": -0.0, "p_count": 0, "p2": math.inf, "p3": 1e-45},
]
CARD_ROWS: list[dict[str, Any]] = [
    {"card_id": r["acct_id"], **{f"c_{k}": v for k, v in r.items() if k != "acct_id"}, "c_flag2": r["flag"] is None}
    for r in EDGE_ROWS
]
SHOP_ROWS: list[dict[str, Any]] = [
    {"shop_id": "m-1", "visits": 10, "share": 0.25, "tag": "grocery"},
    {"shop_id": "é😀 shop", "visits": None, "share": math.nan, "tag": ""},
    {"shop_id": "x" * 512, "visits": 1, "share": 1.0, "tag": None},
]


def spark_schema(view: FeatureView) -> Any:
    from pyspark.sql import types as T

    spark_types = {
        DType.INT64: T.LongType(),
        DType.FLOAT64: T.DoubleType(),
        DType.FLOAT32: T.FloatType(),
        DType.STRING: T.StringType(),
        DType.BOOL: T.BooleanType(),
        DType.VECTOR: T.ArrayType(T.FloatType()),
    }
    id_type = T.LongType() if view.entity.id_dtype == "int64" else T.StringType()
    fields = [T.StructField(view.entity.join_key, id_type)]
    fields += [T.StructField(f.name, spark_types[DType(f.dtype)]) for f in view.features]
    return T.StructType(fields)


def frame(spark: Any, view: FeatureView, rows: Sequence[Mapping[str, Any]], partitions: int = 2) -> Any:
    """A DataFrame with the view's schema (float32 values rounded to float32 by Spark)."""
    columns = [view.entity.join_key, *view.feature_names]
    data = [tuple(row.get(c) for c in columns) for row in rows]
    return spark.createDataFrame(data, spark_schema(view)).repartition(partitions)


def client_for(url: str) -> Any:
    base, _, query = url.partition("?")
    if "cluster=true" in query:
        return redis.RedisCluster.from_url(base)
    return redis.Redis.from_url(base)


def reference_write(url: str, catalog: Catalog, view: FeatureView, rows: Iterable[Mapping[str, Any]]) -> None:
    """Write rows command by command with the reference commands (BatchWritePlan)."""
    client = client_for(url)
    plan = BatchWritePlan.build(catalog, view)
    for row in rows:
        for command in plan.commands(row[view.entity.join_key], row, COMPUTED_AT):
            client.execute_command(command[0].decode(), *command[1:])
    client.close()


def dump(url: str) -> dict[bytes, dict[str, Any]]:
    """Every key's fields, key TTL (rounded to minutes) and field TTLs (rounded)."""
    client = client_for(url)
    nodes = client.get_primaries() if isinstance(client, redis.RedisCluster) else [None]
    state: dict[bytes, dict[str, Any]] = {}
    for node in nodes:
        conn = client.get_redis_connection(node) if node is not None else client
        for key in conn.scan_iter(count=1000):
            fields = conn.hgetall(key)
            names = sorted(fields)
            field_ttls = conn.execute_command("HTTL", key, "FIELDS", len(names), *names) if names else []
            state[key] = {
                "fields": fields,
                "ttl_minutes": round(conn.ttl(key) / 60),
                "field_ttl_minutes": {n: (t if t < 0 else round(t / 60)) for n, t in zip(names, field_ttls)},
            }
    client.close()
    return state


def key_of(view: FeatureView, entity_id: object) -> bytes:
    return codec.entity_key(view.entity, entity_id)


def range_frame(spark: Any, count: int, partitions: int = 2) -> Any:
    """``count`` rows of the ``edge`` view computed by Spark (no driver-side data)."""
    from pyspark.sql import functions as F

    ids = spark.range(0, count, 1, partitions)
    return ids.select(
        F.col("id").alias("acct_id"),
        (F.col("id") * 3).alias("n"),
        (F.col("id") / 4).alias("amount"),
        (F.col("id") / 7).cast("float").alias("ratio"),
        F.concat(F.lit("l"), (F.col("id") % 13).cast("string")).alias("label"),
        (F.col("id") % 2 == 0).alias("flag"),
        F.array(F.col("id").cast("float"), F.lit(0.5).cast("float"), F.lit(-1.0).cast("float")).alias("emb"),
    )


def expected_n(entity_id: int) -> bytes:
    return str(entity_id * 3).encode()
