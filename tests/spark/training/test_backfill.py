"""Backfill on the sample warehouse: past days land in the feature log, each day computed as of
that day, checked against the raw transactions; a second call keeps what is already logged."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestore.jobs.batch.sources import table_path
from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.training import backfill as bf
from tests.helpers.batch import DS


def test_backfilled_days_follow_the_raw_data_and_a_second_call_skips_them(
    batch_spark: Any, warehouse: Any, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    days = [DS - timedelta(days=1), DS]
    log_dir = tmp_path / "log"
    summary = bf.backfill(
        batch_spark, "user_transactions", days[0], days[1], catalog=catalog, warehouse=warehouse.path,
        feature_log=log_dir,
    )  # fmt: skip
    assert summary.failed == {} and sorted(summary.logged) == [d.isoformat() for d in days]

    view = catalog.view("user_transactions")
    logged = fl.read_log(batch_spark, fl.LogSettings.resolve(warehouse.path, log_dir), view)
    raw = batch_spark.read.format("delta").load(str(table_path(warehouse.path, "transactions")))
    for day in days:
        start = datetime(day.year, day.month, day.day, tzinfo=UTC)
        expected = {
            r["user_id"]: r["n"]
            for r in raw.where(
                (F.col("event_time") >= F.lit(start)) & (F.col("event_time") < F.lit(start + timedelta(days=1)))
            )
            .groupBy("user_id")
            .agg(F.count(F.lit(1)).alias("n"))
            .collect()
        }
        rows = logged.where(F.col(fl.PARTITION) == day.isoformat()).collect()
        assert expected and {r["user_id"]: r["txn_count_1d"] for r in rows if r["txn_count_1d"]} == expected
        # as if the nightly run of that day had loaded it at 02:00 UTC the next morning
        loaded_ms = int((start + timedelta(days=1, hours=2)).timestamp() * 1000)
        assert {(r[fl.RUN_ID], r[fl.TS_MS]) for r in rows} == {(f"backfill-user_transactions-{day}", loaded_ms)}

    again = bf.backfill(
        batch_spark, "user_transactions", days[0], days[1], catalog=catalog, warehouse=warehouse.path,
        feature_log=log_dir,
    )  # fmt: skip
    assert again.logged == {} and again.skipped == [d.isoformat() for d in days]
