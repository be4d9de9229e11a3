"""Helpers of the batch-pipeline tests: the test warehouse's spec, a view of every dtype and its suites,
one run through the job's API, a Redis snapshot, run records."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path
from typing import Any

from featurestore.jobs.batch import materialize
from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.run_records import RunRecord
from featurestore.jobs.examples.fraud.sample_data import WarehouseSpec
from featurestore.readers import Entity, Feature, FeatureView

DS = date(2024, 5, 31)  # the last partition of the test warehouse
SPEC = WarehouseSpec(n_users=120, days=35, end_date=DS, seed=11)

# A view of every dtype, for the schema and validation tests (suites written with `write_suite`)
item = Entity("item", join_key="item_id", id_dtype="int64")
ITEM_STATS = FeatureView(
    name="item_stats",
    entity=item,
    ttl=3600,
    features=(
        Feature("clicks", "int64"),
        Feature("ctr", "float64"),
        Feature("score", "float32"),
        Feature("title", "string"),
        Feature("active", "bool"),
        Feature("embedding", "vector", dim=2),
    ),
)


def run(spark: Any, url: str, view: str, warehouse: Path, ds: date = DS, **options: Any) -> materialize.RunOutcome:
    """One materialization through the job's API."""
    request = materialize.MaterializeRequest(view=view, ds=ds, redis_url=url, warehouse=warehouse, **options)
    return materialize.materialize(spark, request)


def snapshot(url: str, *, with_ts: bool = True) -> dict[bytes, dict[bytes, bytes]]:
    """Every feature hash in Redis (all masters of a cluster), optionally without `_ts:` fields."""
    client = connect(url)
    try:
        keys = [k for k in client.scan_iter(match="fs:*:{*}", count=1000)]
        out = {}
        for key in keys:
            fields = client.hgetall(key)
            out[key] = {k: v for k, v in fields.items() if with_ts or not k.startswith(b"_ts:")}
        return out
    finally:
        client.close()


def make_run_record(i: int, view: str, ds: str, status: str = "succeeded") -> RunRecord:
    """Run record number ``i`` (its counts and source version grow with ``i``)."""
    return RunRecord(
        run_id=f"r{i}", view=view, ds=ds, source_table="transactions", source_version=i, status=status,
        rows_read=100 * i, rows_written=10 * i, entities_written=10 * i,
        started_at="2024-06-01T02:00:00.000Z", finished_at="2024-06-01T02:01:00.000Z",
        durations={"read": 1.0, "transform": 2.0, "validate": 3.0, "write": 4.0},
    )  # fmt: skip


def write_suite(tmp_path: Path, expectations: list[dict[str, Any]]) -> Path:
    """An expectation suite file for ``ITEM_STATS``."""
    path = tmp_path / "item_stats.json"
    path.write_text(json.dumps({"name": "item_stats", "expectations": expectations}))
    return path
