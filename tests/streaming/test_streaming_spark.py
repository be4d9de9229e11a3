"""Spark Structured Streaming: foreachBatch over a file source, and the streaming demo."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.streaming import StreamingWriter
from featurestore.jobs.streaming_demo import (
    EventGenerator,
    TxnEvent,
    count_late,
    expected_features,
    features_of,
    fold_events,
    run_streaming_demo,
)
from featurestore.readers import FeatureReader, FeatureStatus, codec
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.example_catalog import catalog

pytestmark = pytest.mark.spark
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
    with StreamingWriter(redis_url, "user_realtime", catalog=catalog) as writer:
        sink = writer.foreach_batch()
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

    client = redis.Redis.from_url(redis_url)
    assert client.hget(b"fs:user:{1}", "_ts:user_realtime") == str(T0 + 1).encode()  # the timestamp, in UTC ms
    assert client.hget(b"fs:user:{1}", "last_country") == b"FR"  # the late event did not overwrite
    ttls = client.execute_command("HTTL", b"fs:user:{2}", "FIELDS", 3, "txn_count_5m", "last_country", "last_amount")
    assert 590 <= ttls[0] <= 600 and 3590 <= ttls[1] <= 3600 and ttls[2] == -2  # null amount: deleted
    with FeatureReader(redis_url, catalog=catalog) as reader:
        vectors = reader.get_many(list(range(1, 51)), "user_realtime", serve_stale=True)
    for i, vector in zip(range(1, 51), vectors):
        if i <= 2:
            continue
        assert (vector["txn_count_5m"], vector["last_amount"], vector["last_country"]) == (i, i / 4, "FR")
    assert vectors[1]["txn_count_5m"] == 7 and vectors[1].status("last_amount") is FeatureStatus.MISSING


def test_sink_checks_columns_on_the_driver(spark: Any, redis_url: str) -> None:
    with StreamingWriter(redis_url, "user_realtime", catalog=catalog) as writer:
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
    with StreamingWriter(redis_url, "user_realtime", catalog=catalog) as writer:
        stats = writer.foreach_batch(id_col="uid", event_time_col="ts").write_dataframe(good)
    assert (stats.written, stats.skipped) == (1, 0)
    assert redis.Redis.from_url(redis_url).hget(b"fs:user:{5}", "_ts:user_realtime") == str(T0).encode()


def test_state_fold_matches_the_reference() -> None:
    generator = EventGenerator(users=5, seed=3, late_share=0.3)
    produced: list[TxnEvent] = []
    for tick in range(40):
        produced += generator.events(6, T0 + tick * 20_000)
    assert count_late(produced) > 10  # the generator does produce late events
    expected = expected_features(produced)
    for user, want in expected.items():
        state: tuple[int, int, Any, Any, list[int]] = (-1, -1, None, None, [])
        mine = [e for e in produced if e.user_id == user]
        for start in range(0, len(mine), 7):  # in micro-batches, in arrival order
            state = fold_events(state, ((e.event_ms, e.amount, e.country) for e in mine[start : start + 7]))
        got = features_of(user, state)
        assert got["event_time"] == want["event_ms"]
        for name in ("txn_count_5m", "last_amount", "last_country", "seconds_since_prev_txn"):
            assert got[name] == want[name], (user, name)


def test_streaming_demo_end_to_end(spark: Any, redis_url: str, tmp_path: Path) -> None:
    summary = run_streaming_demo(spark, redis_url, tmp_path, users=20, seconds=3, rate=40)
    assert summary["matches"], summary["mismatches"]
    assert summary["events"] >= 80 and summary["users_with_events"] == 20
    assert summary["rows_written"] >= 20 and summary["micro_batches"] >= 1
    assert summary["server"].startswith("Redis 8")
    client = redis.Redis.from_url(redis_url)
    key = codec.entity_key(catalog.entity("user"), summary["sample_user"])
    ttls = client.execute_command("HTTL", key, "FIELDS", 2, "txn_count_5m", "last_amount")
    assert 0 < ttls[0] <= 600 and 600 < ttls[1] <= 3600
    assert client.ttl(key) == -1  # streaming set no key TTL
    assert 0 <= summary["sample_age_seconds"] < 120


def test_stream_command_arguments() -> None:
    args = cli.build_parser(only="stream").parse_args(["stream", "--users", "50", "--seconds", "5", "--rate", "10"])
    assert (args.users, args.seconds, args.rate, args.workdir) == (50, 5.0, 10, ".featurestore")
