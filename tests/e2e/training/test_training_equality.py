"""Training data equals serving data, proven on one timeline: what the reader returned for a sample of
users at four moments, and the point-in-time training set for the same (user, moment) pairs, value by
value and status by status.

The clock is injected where the store lets it be: each batch run's computed-at time (``_ts``) is set
in the past, so a night is skipped without waiting (the first run is 47 h old: stale under a 30 h
``max_age``; the key and field TTLs, counted by Redis from the real write, are 2 and 7 days, so none
of them ends during the test).  The streaming TTLs are seconds, counted by Redis itself, so the test
waits (about 5 s after the write) for the 3 s feature to expire.

A declared view with a 3 s tumbling window (lateness 0) goes through the generic job's engine
(``windows.fold``/``expire``: the emissions the Spark processor makes) into the sink with per-row
``_fields`` and the log: read while the window is open, after it empties (its timer's row deletes the
count and leaves the last value alone), and after a late event folded into the window (``_ts``
unchanged): training equals serving at every read.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.examples.fraud.definitions import user_profile, user_transactions
from featurestore.jobs.streaming.windows import EntityState, ViewProgram, expire, fold
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.jobs.training.training_set import build_training_set
from featurestore.readers import Aggregate, Catalog, Feature, FeatureReader, FeatureView, LastValue, StreamSource
from tests.helpers.batch import DS, run

HOUR_MS = 3_600_000
TXN = FeatureView(  # the example view (its transform and suite), stale after 30 h instead of 2 days
    name="user_transactions", entity=user_transactions.entity, source="transactions", ttl=timedelta(days=2),
    max_age=timedelta(hours=30), features=user_transactions.features, transform=user_transactions.transform,
)  # fmt: skip
REALTIME = FeatureView(
    name="user_realtime", entity=user_transactions.entity, kind="streaming",
    features=(
        Feature("txn_count_5m", "int64", default=0, ttl=3),
        Feature("last_amount", "float32", ttl=60),
        Feature("last_country", "string", default="", ttl=60),
    ),
)  # fmt: skip
CLICKS = FeatureView(  # declared: computed by the generic job's engine
    name="user_clicks_live", entity=user_transactions.entity, kind="streaming",
    stream=StreamSource("clicks", "user_id long, amount double, event_time long", id_field="user_id",
                        time_field="event_time", allowed_lateness=0),
    features=(Aggregate("clicks_3s", "count", window=3, ttl=30), LastValue("last_click_amount", "amount", ttl=60)),
)  # fmt: skip
CATALOG = Catalog(views=(TXN, user_profile, REALTIME, CLICKS))
FEATURES = ["txn_count_7d", "amount_sum_30d", "amount_mean_30d", "txn_count_5m", "last_amount", "last_country",
            "clicks_3s", "last_click_amount"]  # fmt: skip
CLICK_USERS = range(1, 6)
USERS = [*range(1, 21), 9999]  # 9999 was never written


def _same(feature: str, served: Any, trained: Any) -> bool:
    # the same Python value, float32 features included: compared as float64, to the last bit
    # (the reader decodes a float32's text to the float32 itself, as the training set upcasts it)
    return bool(served == trained)


def _into_bucket(window_ms: int, earliest: int = 300, latest: int = 1500) -> int:
    """Wait until now is ``earliest``..``latest`` ms into a window's bucket; return now (epoch ms)."""
    while True:
        now = int(time.time() * 1000)
        if earliest <= now % window_ms <= latest:
            return now
        time.sleep(0.05)


def _windowed_timeline(spark: Any, redis_url: str, log_settings: fl.LogSettings, read: Any) -> None:
    """The declared view's emissions, as the Spark processor makes them, through the sink and the log."""
    program, window = ViewProgram.of(CLICKS), 3_000
    states = {user: EntityState() for user in CLICK_USERS}
    with StreamingWriter.connect(redis_url, CLICKS, catalog=CATALOG) as writer:
        sink = writer.foreach_batch(
            id_col="user_id", event_time_col="_ts", fields_col="_fields", feature_log=log_settings
        )

        def write(emissions: list[tuple[int, Any]]) -> None:
            rows = [(user, e.values.get("clicks_3s"), e.values.get("last_click_amount"), list(e.fields), e.as_of)
                    for user, e in emissions if e is not None and e.fields]  # fmt: skip
            sink.write_dataframe(spark.createDataFrame(
                rows, "user_id long, clicks_3s long, last_click_amount double, _fields array<string>, _ts long"
            ))  # fmt: skip

        def event(user: int, ms: int, amount: float) -> dict[str, Any]:
            return {"user_id": user, "amount": amount, "event_time": ms}

        first = _into_bucket(window)
        write([(u, fold(program, states[u], [event(u, first - 100 - i, u + i / 2) for i in range(u % 3 + 1)]))
               for u in CLICK_USERS])  # fmt: skip
        read("window open")
        leaves = (first // window) * window + window  # the bucket's timer: it leaves the window
        time.sleep(max(0.0, (leaves + 100) / 1000 - time.time()))
        write([(u, expire(program, states[u], leaves)) for u in CLICK_USERS])  # the watermark passed it
        read("window emptied")
        now = _into_bucket(window)
        # user 1: a new event, then one 200 ms older in the same window, in the same micro-batch (late, folded)
        write([(1, fold(program, states[1], [event(1, now, 7.5), event(1, now - 200, 9.25)]))])
        read("after a late event")


def test_training_set_equals_what_the_reader_served(
    batch_spark: Any, warehouse: Any, redis_url: str, tmp_path: Path
) -> None:
    from pyspark.sql import functions as F

    log_settings = fl.LogSettings.resolve(warehouse.path, tmp_path / "log")
    start = int(time.time() * 1000)
    reads: list[tuple[str, Any]] = []
    with FeatureReader(redis_url, catalog=CATALOG, check_registry=False) as reader:

        def read(moment: str) -> None:
            reads.append((moment, reader.get_many(USERS, FEATURES, entity="user")))

        for ds, age_hours in ((DS - timedelta(days=1), 47), (DS, 20)):
            outcome = run(
                batch_spark, redis_url, "user_transactions", warehouse.path, ds=ds, catalog=CATALOG,
                feature_log=log_settings.root, computed_at_ms=start - age_hours * HOUR_MS, min_row_ratio=0,
            )  # fmt: skip
            assert outcome.record.status == "succeeded", outcome.record.error
            read(f"after ds {ds}")  # the first: a night skipped, so stale

        now = int(time.time() * 1000)
        events = [(u, now, u, 10.0 + u / 4, "FR") for u in range(1, 11)]  # fresh
        events += [(u, now - 90_000, u, 20.0 + u / 4, None if u == 11 else "DE") for u in range(11, 21)]  # 90 s old
        frame = batch_spark.createDataFrame(
            events, "user_id long, event_time long, txn_count_5m long, last_amount float, last_country string"
        )
        with StreamingWriter.connect(redis_url, REALTIME, catalog=CATALOG) as writer:
            writer.foreach_batch(feature_log=log_settings).write_dataframe(frame)
        rt_log = batch_spark.read.format("delta").load(str(log_settings.path(REALTIME)))
        written_at = rt_log.agg(F.max(fl.WRITTEN_AT_MS)).collect()[0][0]
        time.sleep(max(0.0, (written_at + 4_500) / 1000 - time.time()))  # 1.5 s past the 3 s TTL
        read("after txn_count_5m expired")
        assert reads[-1][1].read_at_ms < written_at + 55_000, "the machine is too loaded for a 60 s TTL"
        _windowed_timeline(batch_spark, redis_url, log_settings, read)

    labels = batch_spark.createDataFrame(
        [(moment, user, batch.read_at_ms) for moment, batch in reads for user in USERS],
        "moment string, user_id long, ts long",
    )
    trained = build_training_set(
        batch_spark, labels, FEATURES, catalog=CATALOG, feature_log=log_settings.root, statuses=True
    ).collect()
    by_key = {(r["moment"], r["user_id"]): r for r in trained}
    assert len(by_key) == len(reads) * len(USERS)

    seen: set[tuple[str, str]] = set()
    mismatches = []
    for moment, batch in reads:
        for user, vector in zip(USERS, batch):
            row = by_key[(moment, user)]
            for feature in FEATURES:
                served, status = vector[feature], vector.status(feature).value
                seen.add((feature, status))
                if not _same(feature, served, row[feature]) or status != row[feature + "__status"]:
                    mismatches.append(
                        (moment, user, feature, (served, status), (row[feature], row[feature + "__status"]))
                    )
    assert mismatches == []
    # the timeline covered every rule: present, stale after a skipped night, missing, expired streaming fields
    assert {("txn_count_7d", s) for s in ("present", "stale", "missing")} <= seen
    assert ("txn_count_5m", "missing") in seen
    assert {("last_amount", "present"), ("last_amount", "stale"), ("last_country", "missing")} <= seen
    # the windowed view: served while the window was open, deleted once it emptied, the late event counted
    assert {("clicks_3s", "present"), ("clicks_3s", "missing"), ("last_click_amount", "present")} <= seen
    windowed = {moment: batch for moment, batch in reads}
    assert [v["clicks_3s"] for v in windowed["window open"]][:5] == [2, 3, 1, 2, 3]
    assert windowed["window emptied"][0].status("clicks_3s").value == "missing"
    assert windowed["window emptied"][0]["last_click_amount"] == 1.0  # the timer's row left it alone
    late = windowed["after a late event"][0]
    assert (late["clicks_3s"], late["last_click_amount"]) == (2, 7.5)  # counted; never replaces the latest

    # the audit on the same data: Redis against the log (one value tampered with), and a recomputation
    from featurestore.jobs import cli
    from featurestore.jobs.core.control_plane import connect
    from featurestore.jobs.training.audit import AUDITS_KEY

    client = connect(redis_url)
    try:
        client.hset("fs:user:{1}", "txn_count_7d", "12345")
        code = cli.main([
            "audit", "--view", "user_transactions", "--ds", DS.isoformat(), "--redis-url", redis_url,
            "--warehouse", str(warehouse.path), "--feature-log", str(log_settings.root), "--recompute",
            "--max-mismatch-rate", "0", "--json",
        ])  # fmt: skip
        stored = client.xrange(AUDITS_KEY)
    finally:
        client.close()
    assert code == 1
    audit = json.loads(stored[-1][1][b"audit"])
    assert audit["sample"] > 100  # every user of the run (the warehouse has 120)
    assert audit["served"]["txn_count_7d"]["mismatches"] == 1
    assert "user 1: Redis 12345 (present)" in audit["served"]["txn_count_7d"]["examples"][0]
    assert all(a["mismatches"] == 0 for name, a in audit["served"].items() if name != "txn_count_7d")
    assert audit["recomputed"] and all(a["mismatches"] == 0 for a in audit["recomputed"].values())
    assert audit["source_versions"] and audit["ok"] is False
