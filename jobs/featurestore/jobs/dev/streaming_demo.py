"""The file-fed streaming demo (``featurestore demo``): live fraud signals beside the batch views.

A sample generator drops transaction events (JSON lines, user ids 1..n like the batch
sample warehouse) into a folder; a Spark Structured Streaming job reads the folder (file
source), keeps per-user state (``transformWithState``) and, through
:meth:`StreamingWriter.foreach_batch`, keeps the example catalogue's ``user_realtime``
features fresh in the same entity hashes as the batch views:

* ``txn_count_5m`` — transactions in the 5 minutes up to the user's latest transaction
* ``last_amount``, ``last_country`` — of the latest transaction (by event time)
* ``seconds_since_prev_txn`` — between the latest and the one before it

Late events (event time before the user's latest) are folded into the state, so they
count where they belong and never replace the latest values.  :func:`expected_features`
computes the same features in plain Python from the generated events: the demo (and its
test) check what the reader serves against it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.examples.fraud.sample_data import EVENT_SCHEMA, EventGenerator, TxnEvent
from featurestore.jobs.streaming.realtime import (  # the logic lives in production code; re-exported here
    OUTPUT_SCHEMA,
    VIEW,
    WINDOW_MS,
    features_of,  # noqa: F401
    fold_events,  # noqa: F401
    processor,
)
from featurestore.readers.codec import format_float32

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestore.jobs.core.feature_log import LogSettings

log = logging.getLogger(__name__)

STATE_STORE_CONF = "spark.sql.streaming.stateStore.providerClass"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"


def drop_file(directory: Path, events: Sequence[TxnEvent], sequence: int) -> Path:
    """Write events as one JSON-lines file, atomically (Spark ignores ``.``-files)."""
    final = directory / f"events-{sequence:06d}.json"
    temporary = directory / f".{final.name}.tmp"
    temporary.write_text("".join(e.to_json() + "\n" for e in events))
    os.replace(temporary, final)
    return final


def expected_features(events: Iterable[TxnEvent]) -> dict[int, dict[str, Any]]:
    """The ``user_realtime`` values the job must end with, per user (the reference)."""
    by_user: dict[int, list[TxnEvent]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(event)
    out = {}
    for user, items in by_user.items():
        items.sort(key=lambda e: e.event_ms)
        last = items[-1]
        cutoff = last.event_ms - WINDOW_MS
        out[user] = {
            "txn_count_5m": sum(1 for e in items if e.event_ms > cutoff),
            "last_amount": last.amount,
            "last_country": last.country,
            "seconds_since_prev_txn": (last.event_ms - items[-2].event_ms) / 1000 if len(items) > 1 else None,
            "event_ms": last.event_ms,
        }
    return out


def count_late(events: Iterable[TxnEvent]) -> int:
    """Events that arrived after a newer event of the same user (out of order)."""
    newest: dict[int, int] = {}
    late = 0
    for event in events:
        if event.event_ms < newest.get(event.user_id, -1):
            late += 1
        else:
            newest[event.user_id] = event.event_ms
    return late


def start_query(spark: SparkSession, sink: Any, events_dir: Path, checkpoint_dir: Path, trigger_seconds: float) -> Any:
    """Start the streaming query: file source -> per-user state -> ``foreachBatch(sink)``.

    ``transformWithState`` needs the RocksDB state store; the setting is made for this
    query only (a query keeps the settings it started with) and then put back.
    """
    from pyspark.sql import functions as F

    events = spark.readStream.schema(EVENT_SCHEMA).json(str(events_dir))
    features = (
        events.withColumn("event_ms", F.unix_millis("event_time"))
        .groupBy("user_id")
        .transformWithState(processor(), OUTPUT_SCHEMA, "Update", "None")
    )
    previous = spark.conf.get(STATE_STORE_CONF, None)
    spark.conf.set(STATE_STORE_CONF, ROCKSDB_PROVIDER)
    try:
        return (
            features.writeStream.queryName("featurestore_user_realtime")
            .foreachBatch(sink)
            .outputMode("update")
            .option("checkpointLocation", str(checkpoint_dir))
            .trigger(processingTime=f"{trigger_seconds} seconds")
            .start()
        )
    finally:
        if previous is None:
            spark.conf.unset(STATE_STORE_CONF)
        else:
            spark.conf.set(STATE_STORE_CONF, previous)


def compare(expected: dict[int, dict[str, Any]], vectors: Iterable[Any]) -> list[str]:
    """Differences between the reference and what the reader serves (empty: all match)."""
    problems = []
    for vector in vectors:
        want = expected[vector.entity_id]
        got = vector.to_dict()
        for name in ("txn_count_5m", "last_amount", "last_country", "seconds_since_prev_txn"):
            value = want[name]
            if name in ("last_amount", "seconds_since_prev_txn") and value is not None:
                value = float(format_float32(value))  # stored as float32
            if name == "seconds_since_prev_txn" and value is None:
                ok = vector.status(name).value == "missing"
            else:
                ok = got[name] == value
            if not ok:
                problems.append(f"user {vector.entity_id}: {name} is {got[name]!r}, expected {value!r}")
    return problems


def run_streaming_demo(
    spark: SparkSession,
    redis_url: str,
    workdir: str | os.PathLike[str],
    users: int = 1000,
    seconds: float = 20.0,
    *,
    rate: int = 200,
    seed: int = 7,
    trigger_seconds: float = 1.0,
    tick_seconds: float = 0.5,
    feature_log: LogSettings | None = None,
) -> dict[str, Any]:
    """Run the streaming job for ``seconds`` over generated events; return a summary.

    ``workdir/streaming/{events,checkpoint}`` belong to the demo and are emptied first.
    The summary says how many events, micro-batches and writes there were, whether the
    features the reader serves match :func:`expected_features` (``matches``), and shows
    one user's vector.  Raises if the query fails (e.g. a server older than Redis 7.4).
    With ``feature_log`` (``featurestore demo`` passes its settings') every write is logged too.
    """
    from featurestore.jobs.examples.fraud.definitions import catalog
    from featurestore.jobs.streaming.writer import StreamingWriter

    events_dir, checkpoint_dir = _fresh_folders(Path(workdir) / "streaming")
    # Connecting checks the server (a too-old one fails here, before the query starts)
    with StreamingWriter.connect(redis_url, VIEW, catalog=catalog) as writer:
        sink = writer.foreach_batch(event_time_col="event_time", feature_log=feature_log)
        server = writer.server_version
    started = time.monotonic()
    query = start_query(spark, sink, events_dir, checkpoint_dir, trigger_seconds)
    try:
        produced, files = _drop_events(sink, events_dir, EventGenerator(users, seed=seed), rate, seconds, tick_seconds)
        log.info("waiting for the last micro-batches", extra={"view": VIEW})
        query.processAllAvailable()  # every dropped file is in Redis after this
    finally:
        query.stop()
    if query.exception() is not None:
        raise RuntimeError(f"the streaming query failed: {query.exception()}")
    elapsed = time.monotonic() - started
    summary: dict[str, Any] = {
        "server": server,
        "events": len(produced),
        "late_events": count_late(produced),
        "files": files,
        "micro_batches": sink.batches,
        "rows_written": sink.written,
        "rows_skipped_out_of_order": sink.skipped,
        "seconds": round(elapsed, 1),
    }
    return {**summary, **_check_served(redis_url, produced)}


def _fresh_folders(root: Path) -> tuple[Path, Path]:
    """``root/events`` (created empty) and ``root/checkpoint`` (removed): the demo's own folders."""
    events_dir, checkpoint_dir = root / "events", root / "checkpoint"
    for folder in (events_dir, checkpoint_dir):
        shutil.rmtree(folder, ignore_errors=True)
    events_dir.mkdir(parents=True)
    return events_dir, checkpoint_dir


def _drop_events(
    sink: Any, events_dir: Path, generator: EventGenerator, rate: int, seconds: float, tick_seconds: float
) -> tuple[list[TxnEvent], int]:
    """Drop ``rate`` events/s into ``events_dir``, one file per tick, for ``seconds``: (events, files)."""
    produced: list[TxnEvent] = []
    per_tick = max(1, round(rate * tick_seconds))
    ticks = max(1, round(seconds / tick_seconds))  # counted, not timed: a slow start still produces them all
    log_every = max(1, round(1 / tick_seconds))
    for sequence in range(1, ticks + 1):
        batch = generator.events(per_tick, int(time.time() * 1000))
        drop_file(events_dir, batch, sequence - 1)
        produced += batch
        if sequence % log_every == 0 or sequence == ticks:
            log.info(
                "%d events in %d files, %d micro-batches written", len(produced), sequence, sink.batches,
                extra={"view": VIEW},
            )  # fmt: skip
        time.sleep(tick_seconds)
    return produced, ticks


def _check_served(redis_url: str, produced: Sequence[TxnEvent]) -> dict[str, Any]:
    """What the reader serves against :func:`expected_features`, and the busiest user's vector."""
    from featurestore.jobs.examples.fraud.definitions import catalog
    from featurestore.readers import FeatureReader

    expected = expected_features(produced)
    with FeatureReader(redis_url, catalog=catalog) as reader:
        problems = compare(expected, reader.get_many(sorted(expected), VIEW))
        sample_id = max(expected, key=lambda u: expected[u]["txn_count_5m"])
        sample = reader.get(sample_id, VIEW)
    return {
        "users_with_events": len(expected),
        "matches": not problems,
        "mismatches": problems[:10],
        "sample_user": sample_id,
        "sample": {k: v for k, v in sample.to_dict().items()},
        "sample_age_seconds": sample.age(VIEW),
    }


def run_kafka_demo(
    spark: SparkSession,
    redis_url: str,
    bootstrap: str,
    workdir: str | os.PathLike[str],
    users: int = 1000,
    seconds: float = 15.0,
    *,
    rate: int = 200,
    seed: int = 7,
    bad_share: float = 0.01,
    feature_log: LogSettings | None = None,
) -> dict[str, Any]:
    """The streaming demo from Kafka: demo traffic to a new topic while the streaming job runs.

    ``featurestore kafka produce-demo``'s producer sends ``rate`` transactions/s for
    ``seconds`` (``bad_share`` of malformed records among them) while the job of
    ``featurestore stream`` (:func:`featurestore.jobs.streaming.kafka_job.start_job`)
    consumes them; then every served feature is checked against :func:`expected_features`.
    The checkpoint goes to ``workdir/streaming/checkpoint-<topic>``; with ``feature_log`` every
    write is logged too.
    """
    import uuid

    from featurestore.jobs.dev.kafka_command import produce_demo
    from featurestore.jobs.examples.fraud.definitions import catalog
    from featurestore.jobs.streaming import kafka_client
    from featurestore.jobs.streaming.kafka_job import KafkaStreamConfig, start_job
    from featurestore.jobs.streaming.writer import StreamingWriter
    from featurestore.readers import FeatureReader
    from featurestore.readers.errors import JobError

    topic = f"demo-transactions-{uuid.uuid4().hex[:6]}"
    checkpoint = Path(workdir) / "streaming" / f"checkpoint-{topic}"
    with StreamingWriter.connect(redis_url, VIEW, catalog=catalog) as writer:
        sink = writer.foreach_batch(event_time_col="event_time", feature_log=feature_log)
        server = writer.server_version
    kafka_client.ensure_topic(bootstrap, topic)
    started = time.monotonic()
    job = start_job(spark, sink, KafkaStreamConfig(bootstrap, topic, str(checkpoint), trigger_seconds=1.0))
    try:
        sent = produce_demo(bootstrap, topic, users=users, seconds=seconds, rate=rate, bad_share=bad_share, seed=seed)
        log.info("waiting for the last micro-batches", extra={"view": VIEW})
        job.process_all_available()
    finally:
        job.stop()
    failure = job.failure()
    if failure:
        raise JobError(failure)
    report = job.report()
    expected = expected_features(sent.events)
    with FeatureReader(redis_url, catalog=catalog) as reader:
        problems = compare(expected, reader.get_many(sorted(expected), VIEW))
    return {
        "server": server,
        "topic": topic,
        "events": len(sent.events),
        "late_events": count_late(sent.events),
        "bad_records": sent.bad,
        "dead_letters": report["dead_letters"],
        "micro_batches": report["batches"],
        "rows_written": report["written"],
        "rows_skipped_out_of_order": report["skipped"],
        "latency_p50_seconds": report["latency_p50_seconds"],
        "latency_p99_seconds": report["latency_p99_seconds"],
        "users_with_events": len(expected),
        "seconds": round(time.monotonic() - started, 1),
        "matches": not problems,
        "mismatches": problems[:10],
    }
