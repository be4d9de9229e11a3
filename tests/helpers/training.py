"""Helpers of the training-data tests: a tiny catalogue with short TTLs, and feature-log rows by hand."""

from __future__ import annotations

from typing import Any

from featurestore.jobs.core import feature_log as fl
from featurestore.readers import Catalog, Entity, Feature, FeatureView

T0 = 1_700_000_000_000  # epoch ms

user = Entity("user", join_key="user_id", id_dtype="int64")
TXN = FeatureView(
    name="txn", entity=user, ttl=100, max_age=50,  # HEXPIRE'd: shorter than the key TTL
    features=(Feature("count", "int64", default=0), Feature("mean", "float32")),
)  # fmt: skip
PROFILE = FeatureView(name="profile", entity=user, ttl=1000, features=(Feature("country", "string", default=""),))
RT = FeatureView(
    name="rt", entity=user, kind="streaming",
    features=(Feature("f5", "int64", default=0, ttl=10), Feature("last", "float32", ttl=30)),
)  # fmt: skip
CATALOG = Catalog(views=(TXN, PROFILE, RT))


def log_row(view: FeatureView, entity_id: object, written: int, ts: int | None = None, **values: Any) -> dict:
    """One feature-log row of ``view``; streaming rows list the features given as the ones written."""
    row: dict[str, Any] = {view.entity.join_key: entity_id}
    row.update({f.name: values.get(f.name) for f in view.features})
    row.update({
        fl.VIEW: view.name, fl.KIND: "batch" if view.is_batch else "streaming", fl.RUN_ID: "r",
        fl.TS_MS: written if ts is None else ts, fl.WRITTEN_AT_MS: written,
        fl.FIELDS: None if view.is_batch else sorted(values), fl.PARTITION: "2023-11-14",
    })  # fmt: skip
    return row


def log_frame(spark: Any, view: FeatureView, rows: list[dict]) -> Any:
    schema = fl.log_schema(view)
    return spark.createDataFrame([tuple(r[f.name] for f in schema.fields) for r in rows], schema)
