"""The generic streaming job's Spark path without Kafka: a file source feeds a declared view with
several computations through the job's own micro-batch function (kafka_job._FeatureBatches) into
the StreamingWriter sink on a real Redis 8, with the feature log on.

Pinned: Redis ends with exactly what ``windows.reference`` says at each entity's ``_ts`` (a
window that empties deletes its field); a too-late row is counted as late (the job's count from
``numRowsDroppedByWatermark``) and an event too old for every window as ignored; each row writes
only its ``_fields`` (a timer's row leaves the last values and their TTL alone; a null deletes);
the feature log holds those per-row fields, so point-in-time replays what Redis saw.  The Kafka
parsing and the CLI: tests/unit/streaming/test_generic_stream_offline.py; end to end with a
broker: tests/e2e/streaming/test_kafka_stream.py.
"""

from __future__ import annotations

import json
import os
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import redis

from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.streaming import StreamingWriter
from featurestore.jobs.streaming.events import StreamStats
from featurestore.jobs.streaming.kafka_job import PRODUCED, _FeatureBatches, _late_rows
from featurestore.jobs.streaming.plan import value_encoder
from featurestore.jobs.streaming.processor import rocksdb_state_store, windowed_features
from featurestore.jobs.streaming.windows import ViewProgram, reference
from featurestore.readers import Aggregate, Catalog, Entity, FeatureView, LastValue, SecondsSincePrevious, StreamSource

M = 60_000
B = 2_833_333 * 10 * M  # epoch-aligned to 10 minutes
SCHEMA = "user_id long, kind string, price double, item string, event_time timestamp"

user = Entity("user", join_key="user_id")
VIEW = FeatureView(
    "clicks_live",
    user,
    (
        Aggregate("views_5m", "count", where={"kind": "view"}, window=timedelta(minutes=5), slide=60),
        Aggregate("spend_5m", "sum", "price", window=timedelta(minutes=5)),  # tumbling
        LastValue("last_item", "item"),
        SecondsSincePrevious("gap_s"),
    ),
    kind="streaming",
    ttl=timedelta(hours=1),
    stream=StreamSource("clicks", SCHEMA, id_field="user_id", time_field="event_time", allowed_lateness=60),
)
CATALOG = Catalog(views=(VIEW,))


def ev(uid: int, minutes: float, kind: str = "view", item: str | None = None, price: float | None = None) -> Any:
    return {"user_id": uid, "kind": kind, "price": price, "item": item, "event_time": B + round(minutes * M)}


# One file per micro-batch.  Batch 3 runs with the watermark 8:00 (9:00 - 1 min): user 1's buckets leave their
# windows (timers at 5, 6, 7 min) and its windowed fields are deleted; rows at or below 0:30 (the watermark of
# batch 2) are dropped as late; user 2's 0:45 is older than every window of user 2 (as-of 9:00): ignored.
FILES = [
    [ev(1, 0.5, item="A"), ev(1, 1, "buy", "B", 10.0), ev(2, 1.5, item="C")],
    [ev(1, 2, item="A"), ev(2, 9, item="D")],
    [ev(1, 1 / 6, item="Z"), ev(1, 1 + 2 / 3, item="E"), ev(2, 0.75, item="Q")],
]
LATE = [(1, B + 10_000)]


def write_files(folder: Path) -> None:
    for number, batch in enumerate(FILES):
        path = folder / f"events-{number:02d}.json"
        lines = []
        for e in batch:
            stamp = datetime.fromtimestamp(e["event_time"] / 1000, UTC).isoformat(timespec="milliseconds")
            lines.append(json.dumps({**e, "event_time": stamp, PRODUCED: e["event_time"]}))
        path.write_text("\n".join(lines) + "\n")
        os.utime(path, (time.time() - 600 + number,) * 2)


def test_a_declared_view_streams_into_redis_and_the_log_as_the_reference_says(
    batch_spark: Any, redis_url: str, tmp_path: Path
) -> None:
    spark = batch_spark
    program = ViewProgram.of(VIEW)
    folder = tmp_path / "events"
    folder.mkdir()
    write_files(folder)
    log_settings = fl.LogSettings.resolve(tmp_path, tmp_path / "log")
    with StreamingWriter.connect(redis_url, VIEW, catalog=CATALOG) as writer:
        sink = writer.foreach_batch(
            id_col="user_id", event_time_col="_ts", fields_col="_fields", feature_log=log_settings
        )
    stats = StreamStats(started=time.monotonic(), late=0, ignored=0)
    events = spark.readStream.schema(f"{SCHEMA}, {PRODUCED} long").option("maxFilesPerTrigger", 1).json(str(folder))
    with rocksdb_state_store(spark):
        query = (
            windowed_features(events, program, produced_col=PRODUCED)
            .writeStream.foreachBatch(_FeatureBatches(sink, stats, threading.Lock()))
            .outputMode("update")
            .option("checkpointLocation", str(tmp_path / "checkpoint"))
            .trigger(availableNow=True)  # ends with the no-data batch that fires the last due timers
            .start()
        )
    try:
        assert query.awaitTermination(180), "the query did not finish"
    finally:
        query.stop()
    assert query.exception() is None

    # late and ignored, as the job counts them
    assert sum(_late_rows(json.loads(p.json) if hasattr(p, "json") else p) for p in query.recentProgress) == 1
    assert stats.ignored == 1
    assert stats.events == sum(len(f) for f in FILES) - len(LATE)  # the rows that reached the computation

    # Redis: the reference at each user's as-of, over the events that were not late
    client = redis.Redis.from_url(redis_url)
    kept = [e for f in FILES for e in f if (e["user_id"], e["event_time"]) not in LATE]
    for uid in (1, 2):  # (the events are from 2023: the reader would call them stale, so compare the bytes)
        stored = client.hgetall(f"fs:user:{{{uid}}}")
        as_of = int(stored.pop(b"_ts:clicks_live"))
        want = reference(program, [e for e in kept if e["user_id"] == uid], as_of)
        assert stored == {
            name.encode(): value_encoder(VIEW.feature(name))(value) for name, value in want.items() if value is not None
        }, uid
    # user 1's windows emptied at 7:00 (its last bucket's timer): their fields were deleted
    assert int(client.hget("fs:user:{1}", "_ts:clicks_live")) == B + 7 * M
    assert not client.hexists("fs:user:{1}", "views_5m") and not client.hexists("fs:user:{1}", "spend_5m")
    assert client.hget("fs:user:{1}", "last_item") == b"A"
    assert client.hget("fs:user:{2}", "views_5m") == b"1"  # 9:00 only: 1:30 left the window
    # the timers' rows wrote the windowed fields only: the last value's TTL counts from its event's write
    ttls = client.execute_command("HTTL", "fs:user:{1}", "FIELDS", 1, "last_item")
    assert 3500 < ttls[0] <= 3600

    # the log: one row per write, with the fields that row wrote (the others null and not listed)
    logged = fl.read_log(spark, log_settings, VIEW).where("user_id = 1").orderBy("_ts_ms", "_written_at_ms").collect()
    timer_rows = [r for r in logged if r["_ts_ms"] > B + 2 * M]
    assert timer_rows and all(set(r["_fields"]) <= {"views_5m", "spend_5m"} for r in timer_rows)
    assert all(r["last_item"] is None and r["gap_s"] is None for r in timer_rows)
    assert timer_rows[-1]["_ts_ms"] == B + 7 * M and timer_rows[-1]["views_5m"] is None
    first = logged[0]
    assert first["_ts_ms"] == B + M and set(first["_fields"]) == set(VIEW.feature_names)


def test_the_sink_writes_only_each_rows_fields(spark: Any, redis_url: str) -> None:
    with StreamingWriter.connect(redis_url, VIEW, catalog=CATALOG) as writer:
        writer.write(7, {"views_5m": 3, "spend_5m": 2.5, "last_item": "X", "gap_s": 4.0}, event_time=B)
        sink = writer.foreach_batch(id_col="user_id", event_time_col="_ts", fields_col="_fields")
    frame = spark.createDataFrame(
        [(7, 4, None, "Y", None, ["views_5m", "spend_5m"], B + M)],
        "user_id long, views_5m long, spend_5m double, last_item string, gap_s double, _fields array<string>, _ts long",
    )
    sink.write_dataframe(frame)
    stored = redis.Redis.from_url(redis_url).hgetall("fs:user:{7}")
    # views_5m rewritten, spend_5m deleted (null among the row's fields); last_item and gap_s not in _fields: kept
    assert stored == {b"views_5m": b"4", b"last_item": b"X", b"gap_s": b"4", b"_ts:clicks_live": str(B + M).encode()}
