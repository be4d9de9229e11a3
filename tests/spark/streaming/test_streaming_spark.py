"""Spark Structured Streaming: foreachBatch over a file source, and the sink's column checks (the
streaming demo: tests/e2e/streaming/test_streaming_demo.py)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.jobs.core.job_metrics import MetricsTarget
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming import StreamingWriter
from featurestore.readers import FeatureReader, FeatureStatus
from featurestore.readers.errors import ConfigurationError

T0 = 1_764_150_000_000
SCHEMA = "user_id long, event_time timestamp, txn_count_5m long, last_amount double, last_country string"


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def drop(folder: Path, name: str, rows: list[dict[str, Any]]) -> None:
    (folder / name).write_text("".join(json.dumps(r) + "\n" for r in rows))


def test_foreach_batch_over_a_file_source(spark: Any, redis_url: str, tmp_path: Path) -> None:
    events = tmp_path / "events"
    events.mkdir()
    drop(events, "a.json", [
        {"user_id": i, "event_time": iso(T0 + i), "txn_count_5m": i, "last_amount": i / 4, "last_country": "FR"}
        for i in range(1, 51)
    ])  # fmt: skip
    drop(events, "b.json", [
        {"user_id": 1, "event_time": iso(T0 - 60_000), "txn_count_5m": 99, "last_amount": 99.0, "last_country": "XX"},
        {"user_id": 2, "event_time": iso(T0 + 60_000), "txn_count_5m": 7, "last_amount": None, "last_country": "PT"},
    ])  # fmt: skip
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        sink = writer.foreach_batch(metrics=MetricsTarget(textfile_dir=str(tmp_path / "metrics")))
    query = (
        spark.readStream.schema(SCHEMA)
        .option("maxFilesPerTrigger", 1)  # a.json, then b.json: b's first row arrives out of order
        .json(str(events))
        .writeStream.foreachBatch(sink)
        .option("checkpointLocation", str(tmp_path / "checkpoint"))
        .trigger(availableNow=True)
        .start()
    )
    query.awaitTermination(180)
    assert query.exception() is None
    assert (sink.batches, sink.written, sink.skipped) == (2, 51, 1)
    # the query's counters after the last micro-batch, for node_exporter's textfile collector
    prom = (tmp_path / "metrics" / "featurestore_stream_user_realtime.prom").read_text()
    assert 'featurestore_stream_batches_total{view="user_realtime"} 2.0' in prom
    assert 'featurestore_stream_events_written_total{view="user_realtime"} 51.0' in prom
    assert 'featurestore_stream_events_skipped_total{view="user_realtime"} 1.0' in prom

    client = redis.Redis.from_url(redis_url)
    assert client.hget(b"fs:user:{1}", "_ts:user_realtime") == str(T0 + 1).encode()  # the timestamp, in UTC ms
    assert client.hget(b"fs:user:{1}", "last_country") == b"FR"  # the late event did not overwrite
    ttls = client.execute_command("HTTL", b"fs:user:{2}", "FIELDS", 3, "txn_count_5m", "last_country", "last_amount")
    assert 350 <= ttls[0] <= 360 and 3590 <= ttls[1] <= 3600 and ttls[2] == -2  # null amount: deleted
    with FeatureReader(redis_url, catalog=catalog) as reader:
        vectors = reader.get_many(list(range(1, 51)), "user_realtime", serve_stale=True)
    for i, vector in zip(range(1, 51), vectors):
        if i <= 2:
            continue
        assert (vector["txn_count_5m"], vector["last_amount"], vector["last_country"]) == (i, i / 4, "FR")
    assert vectors[1]["txn_count_5m"] == 7 and vectors[1].status("last_amount") is FeatureStatus.MISSING


def test_sink_checks_columns_on_the_driver(spark: Any, redis_url: str) -> None:
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        sink = writer.foreach_batch()
    foreign = spark.createDataFrame(
        [(1, T0, 3, "FR")], "user_id long, event_time long, txn_count_5m long, home_country string"
    )
    with pytest.raises(ConfigurationError, match="batch view 'user_profile'"):
        sink.write_dataframe(foreign)
    no_time = spark.createDataFrame([(1, 3)], "user_id long, txn_count_5m long")
    with pytest.raises(ConfigurationError, match="no column 'event_time'"):
        sink.write_dataframe(no_time)
    assert redis.Redis.from_url(redis_url).exists(b"fs:user:{1}") == 0
    # epoch-ms event times and a renamed id column work too
    good = spark.createDataFrame([(5, T0, 3)], "uid long, ts long, txn_count_5m long")
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        stats = writer.foreach_batch(id_col="uid", event_time_col="ts").write_dataframe(good)
    assert (stats.written, stats.skipped) == (1, 0)
    assert redis.Redis.from_url(redis_url).hget(b"fs:user:{5}", "_ts:user_realtime") == str(T0).encode()
