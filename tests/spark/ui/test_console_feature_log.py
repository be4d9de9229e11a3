"""The console reads the feature log as Spark wrote it (no Spark on the console's side): batch runs, a
re-run of a day (replaceWhere: removed files), streaming micro-batches past Delta's checkpoint interval
(a parquet checkpoint); the rows agree with Spark's own read of each table, and the entity page shows them."""

from __future__ import annotations

import html
from datetime import date
from pathlib import Path
from typing import Any

from starlette.testclient import TestClient

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.spark_types import view_schema
from featurestore.jobs.ui.app import create_app
from featurestore.jobs.ui.log_history import FeatureLogReader
from featurestore.jobs.ui.store import ConsoleConfig
from featurestore.readers.definitions import FeatureView
from featurestore.readers.settings import ConnectionSettings
from tests.helpers.reader import client_for, live, now_ms, scores, test_catalog
from tests.helpers.ui import populate

DAY = 86_400_000
MICRO_BATCHES = 11  # Delta's default checkpoint interval is 10: commit 10 writes a checkpoint


def spark_rows(spark: Any, settings: fl.LogSettings, view: FeatureView, entity_id: int) -> list[tuple[Any, ...]]:
    """The entity's rows as Spark reads the table, in the console's order (ds, then write time, newest first)."""
    frame = spark.read.format("delta").load(str(settings.path(view)))
    ordered = frame.where(frame[view.entity.join_key] == entity_id).orderBy(
        frame["ds"].desc(), frame[fl.WRITTEN_AT_MS].desc(), frame[fl.TS_MS].desc()
    )
    return [
        (r["ds"], r[fl.RUN_ID], r[fl.WRITTEN_AT_MS], r[fl.FIELDS], *(r[f.name] for f in view.features))
        for r in ordered.collect()
    ]


def test_the_console_reads_the_log_spark_wrote(spark: Any, redis_url: str, tmp_path: Path) -> None:
    from pyspark.sql import functions as F

    settings = fl.LogSettings(tmp_path / "log", retention_days=0)
    start = now_ms() - 3 * DAY
    users = [
        (42, 5, 12.5, 0.1, "gold", True, [0.5, 0.2, 1.0]),
        (7, 1, None, None, None, False, None),
    ]

    def batch(ds: date, run_id: str, written_ms: int, n_orders: int) -> None:
        rows = [(u[0], n_orders if u[0] == 42 else u[1], *u[2:]) for u in users]
        frame = fl.batch_log_frame(spark.createDataFrame(rows, view_schema(scores)), scores, ds, run_id,
                                   written_ms - 1000, written_ms)  # fmt: skip
        fl.write_batch_log(frame, settings, scores, ds)

    batch(date(2024, 6, 1), "run-a", start, 5)
    batch(date(2024, 6, 2), "run-b", start + DAY, 6)
    batch(date(2024, 6, 2), "run-c", start + DAY + 60_000, 7)  # the re-run of 2024-06-02 replaces run-b's rows
    for i in range(MICRO_BATCHES):
        events = spark.createDataFrame([(42, i, start + i)], "user_id long, clicks_1m long, event_ms long")
        frame = fl.streaming_log_frame(events, live, "user_id", F.col("event_ms"), start + 2 * DAY + i, f"stream-{i}")
        fl.append_streaming_log(frame, settings, live)
    checkpoint = settings.path(live) / "_delta_log" / f"{MICRO_BATCHES - 1:020d}.checkpoint.parquet"
    assert checkpoint.is_file(), "no classic checkpoint written: the test would not read one"

    reader = FeatureLogReader(settings)
    for view in (scores, live):
        got = reader.history(view, 42, limit=100)
        assert got.problem == "" and got.complete and not got.more
        assert [
            (r.ds, r.run_id, r.written_at_ms, None if r.fields is None else list(r.fields),
             *(r.values[f.name] for f in view.features))
            for r in got.rows
        ] == spark_rows(spark, settings, view, 42)  # fmt: skip
    assert [r.run_id for r in reader.history(scores, 42).rows] == ["run-c", "run-a"]
    assert len(reader.history(live, 42).rows) == MICRO_BATCHES

    admin = client_for(redis_url)
    populate(admin)
    admin.close()
    config = ConsoleConfig(ConnectionSettings.from_url(redis_url, timeout=2.0), test_catalog,
                           allow_write_user=True, feature_log=settings)  # fmt: skip
    with TestClient(create_app(config), raise_server_exceptions=False) as browser:
        page = html.unescape(browser.get("/entities/user/42").text)
        history = page.split("Feature-log history")[1]
        assert "run-c" in history and "run-b" not in history and "stream-10" in history
        assert "[0.5, 0.2, 1.0]" in history and "0.1" in history
        log_page = browser.get("/entities/user/42/log/live")
        assert log_page.status_code == 200 and log_page.text.count("<td>streaming</td>") == MICRO_BATCHES
