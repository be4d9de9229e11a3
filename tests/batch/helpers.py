"""Helpers of the batch-pipeline tests (imported as ``tests.batch.helpers``)."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from featurestore.jobs import materialize
from featurestore.jobs.run_records import connect
from featurestore.jobs.sample_data import WarehouseSpec

DS = date(2024, 5, 31)  # the last partition of the test warehouse
SPEC = WarehouseSpec(n_users=120, days=35, end_date=DS, seed=11)


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
