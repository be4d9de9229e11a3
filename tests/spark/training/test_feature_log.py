"""The feature log's Delta table: a re-run of a day replaces it, retention drops old days in the same commit."""

from __future__ import annotations

from datetime import date
from pathlib import Path
from typing import Any

from featurestore.jobs.core import feature_log as fl
from tests.helpers.training import T0, TXN


def test_a_rerun_replaces_its_day_and_old_days_expire(spark: Any, tmp_path: Path) -> None:
    settings = fl.LogSettings(tmp_path / "log", retention_days=30)
    rows = spark.createDataFrame([(1, 3, 1.5), (2, None, None)], "user_id long, count long, mean float")

    def run(ds: date, run_id: str) -> None:
        frame = fl.batch_log_frame(rows, TXN, ds, run_id, T0, T0 + 5)
        fl.write_batch_log(frame, settings, TXN, ds)

    run(date(2024, 4, 1), "a")
    run(date(2024, 5, 30), "b")
    run(date(2024, 5, 30), "c")  # a re-run of the same day
    logged = fl.read_log(spark, settings, TXN)
    assert [(f.name, f.dataType) for f in logged.schema] == [(f.name, f.dataType) for f in fl.log_schema(TXN)]
    by_day = {
        (r["ds"], r[fl.RUN_ID]): r["n"]
        for r in logged.groupBy("ds", fl.RUN_ID).count().withColumnRenamed("count", "n").collect()
    }
    assert by_day == {("2024-05-30", "c"): 2}  # one copy of the day; 2024-04-01 is past the 30-day retention
    row = logged.where("user_id = 2").collect()[0]
    assert (row["count"], row["mean"], row[fl.TS_MS], row[fl.WRITTEN_AT_MS], row[fl.KIND]) == (
        None,
        None,
        T0,
        T0 + 5,
        "batch",
    )
