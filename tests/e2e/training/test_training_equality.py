"""Training data equals serving data, proven on one timeline: what the reader returned for a sample of
users at four moments, and the point-in-time training set for the same (user, moment) pairs, value by
value and status by status.

The clock is injected where the store lets it be: each batch run's computed-at time (``_ts``) is set
in the past, so a night is skipped without waiting (the first run is 47 h old: stale under a 30 h
``max_age``; the key and field TTLs, counted by Redis from the real write, are 2 and 7 days, so none
of them ends during the test).  The streaming TTLs are seconds, counted by Redis itself, so the test
waits (about 5 s after the write) for the 3 s feature to expire.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.jobs.training.training_set import build_training_set
from featurestore.readers import Catalog, Feature, FeatureReader, FeatureView
from featurestore.readers.example_catalog import user_profile, user_transactions
from tests.helpers.batch import DS, run

HOUR_MS = 3_600_000
TXN = FeatureView(  # the example view (its transform and suite), stale after 30 h instead of 2 days
    name="user_transactions", entity=user_transactions.entity, source="transactions", ttl=timedelta(days=2),
    max_age=timedelta(hours=30), features=user_transactions.features,
)  # fmt: skip
REALTIME = FeatureView(
    name="user_realtime", entity=user_transactions.entity, kind="streaming",
    features=(
        Feature("txn_count_5m", "int64", default=0, ttl=3),
        Feature("last_amount", "float32", ttl=60),
        Feature("last_country", "string", default="", ttl=60),
    ),
)  # fmt: skip
CATALOG = Catalog(views=(TXN, user_profile, REALTIME))
FEATURES = ["txn_count_7d", "amount_sum_30d", "amount_mean_30d", "txn_count_5m", "last_amount", "last_country"]
USERS = [*range(1, 21), 9999]  # 9999 was never written


def _same(feature: str, served: Any, trained: Any) -> bool:
    # the same Python value, float32 features included: compared as float64, to the last bit
    # (the reader decodes a float32's text to the float32 itself, as the training set upcasts it)
    return bool(served == trained)


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
