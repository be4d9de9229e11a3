"""The file-fed streaming demo (``featurestore demo``): live fraud signals beside the batch views.

A sample generator drops transaction events (JSON lines, user ids 1..n like the batch
sample warehouse) into a folder; a Spark Structured Streaming job reads the folder (file
source), computes the example catalogue's declared ``user_realtime`` view per user
(:func:`featurestore.jobs.streaming.processor.windowed_features`: the generic job's windows
and timers) and, through :meth:`StreamingWriter.foreach_batch`, keeps its features fresh in
the same entity hashes as the batch views:

* ``txn_count_5m`` — transactions in a 5-minute window sliding by 1 minute
* ``last_amount``, ``last_country`` — of the latest transaction (by event time)
* ``seconds_since_prev_txn`` — between the latest and the one before it

Late events (event time before the user's latest, within the allowed lateness) are folded
into the windows where they belong and never replace the latest values.
:func:`expected_features` computes the features from the generated events with
:func:`featurestore.jobs.streaming.windows.reference`, at each user's as-of: the demo (and
its test) check what the reader serves against it.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.examples.fraud.sample_data import EVENT_SCHEMA, EventGenerator, TxnEvent
from featurestore.jobs.streaming.windows import ViewProgram, reference
from featurestore.readers.codec import decode_float32, format_float32

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

    from featurestore.jobs.core.feature_log import LogSettings

log = logging.getLogger(__name__)

VIEW = "user_realtime"
FIELDS = ("txn_count_5m", "last_amount", "last_country", "seconds_since_prev_txn")
# the demo's late events stay within the view's allowed lateness (1 min), so none is dropped by the watermark
# and the reference over every generated event is exact (docs/streaming.md, "Windows": later ones are `late`)
MAX_LATE_MS = 45_000


def program() -> ViewProgram:
    """The compiled ``user_realtime`` declaration of the example catalogue."""
    from featurestore.jobs.examples.fraud.definitions import catalog

    return ViewProgram.of(catalog.view(VIEW))


class WithinLateness(EventGenerator):
    """The sample events, with the late ones at most ``max_late_ms`` late (30 s to 4 min late are
    squeezed into 30 s to ``max_late_ms``), so that the watermark drops none of them."""

    def __init__(self, users: int, seed: int = 7, late_share: float = 0.05, max_late_ms: int = MAX_LATE_MS) -> None:
        super().__init__(users, seed=seed, late_share=late_share)
        self.max_late_ms = max_late_ms

    def events(self, count: int, now_ms: int) -> list[TxnEvent]:
        out = []
        for event in super().events(count, now_ms):
            late = now_ms - event.event_ms
            if late > 30_000:
                late = 30_000 + (late - 30_000) * (self.max_late_ms - 30_000) // 210_000
                event = TxnEvent(event.user_id, event.amount, event.country, now_ms - late)
            out.append(event)
        return out


def drop_file(directory: Path, events: Sequence[TxnEvent], sequence: int) -> Path:
    """Write events as one JSON-lines file, atomically (Spark ignores ``.``-files)."""
    final = directory / f"events-{sequence:06d}.json"
    temporary = directory / f".{final.name}.tmp"
    temporary.write_text("".join(e.to_json() + "\n" for e in events))
    os.replace(temporary, final)
    return final


def expected_features(events: Iterable[TxnEvent], as_of: dict[int, int] | None = None) -> dict[int, dict[str, Any]]:
    """The ``user_realtime`` values per user at ``as_of[user]`` (default: the user's latest event
    time), by :func:`featurestore.jobs.streaming.windows.reference` over the events (the reference)."""
    compiled = program()
    by_user: dict[int, list[dict[str, Any]]] = {}
    for event in events:
        by_user.setdefault(event.user_id, []).append(
            {"user_id": event.user_id, "amount": event.amount, "country": event.country, "event_time": event.event_ms}
        )
    out = {}
    for user, items in by_user.items():
        at = (as_of or {}).get(user, max(e["event_time"] for e in items))
        out[user] = {**reference(compiled, items, at), "event_ms": at}
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


@dataclass
class _WindowRows:
    """``foreachBatch``: the processor's rows (their ``_fields`` only) through the writer's sink."""

    sink: Any

    def __call__(self, df: Any, epoch_id: int) -> None:
        from pyspark.sql import functions as F

        self.sink(df.where(F.size("_fields") > 0).drop("_ignored"), epoch_id)


def start_query(spark: SparkSession, sink: Any, events_dir: Path, checkpoint_dir: Path, trigger_seconds: float) -> Any:
    """Start the streaming query: file source -> the declared view's windows -> ``foreachBatch(sink)``.

    ``sink``: the writer's ``foreach_batch(id_col="user_id", event_time_col="_ts", fields_col="_fields")``.
    """
    from featurestore.jobs.streaming.processor import rocksdb_state_store, windowed_features

    events = spark.readStream.schema(EVENT_SCHEMA).json(str(events_dir))
    features = windowed_features(events, program())
    with rocksdb_state_store(spark):
        return (
            features.writeStream.queryName("featurestore_user_realtime")
            .foreachBatch(_WindowRows(sink))
            .outputMode("update")
            .option("checkpointLocation", str(checkpoint_dir))
            .trigger(processingTime=f"{trigger_seconds} seconds")
            .start()
        )


def compare(expected: dict[int, dict[str, Any]], vectors: Iterable[Any]) -> list[str]:
    """Differences between the reference and what the reader serves (empty: all match)."""
    problems = []
    for vector in vectors:
        want = expected[vector.entity_id]
        got = vector.to_dict()
        for name in FIELDS:
            value = want[name]
            if name in ("last_amount", "seconds_since_prev_txn") and value is not None:
                value = decode_float32(format_float32(value))  # stored as float32, served as the float32 itself
            if value is None:  # absent: the reader serves the default as missing
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
        sink = writer.foreach_batch(
            id_col="user_id", event_time_col="_ts", fields_col="_fields", feature_log=feature_log
        )
        server = writer.server_version
    started = time.monotonic()
    query = start_query(spark, sink, events_dir, checkpoint_dir, trigger_seconds)
    try:
        produced, files = _drop_events(sink, events_dir, WithinLateness(users, seed=seed), rate, seconds, tick_seconds)
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
    sink: Any, events_dir: Path, generator: Any, rate: int, seconds: float, tick_seconds: float
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

    expected = expected_features(produced, served_as_of(redis_url, {e.user_id for e in produced}))
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


def served_as_of(redis_url: str, users: Iterable[int]) -> dict[int, int]:
    """Each user's ``_ts:user_realtime`` in Redis: the as-of of the last write (timers may move it past
    the latest event), at which :func:`expected_features` computes the reference."""
    import redis

    client = redis.Redis.from_url(redis_url)
    try:
        ordered = sorted(users)
        stamps = client.pipeline(transaction=False)
        for user in ordered:
            stamps.hget(f"fs:user:{{{user}}}", f"_ts:{VIEW}")
        return {user: int(ts) for user, ts in zip(ordered, stamps.execute()) if ts is not None}
    finally:
        client.close()


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
    from featurestore.jobs.streaming.kafka_job import KafkaStreamConfig, ViewStream, start_job
    from featurestore.jobs.streaming.writer import StreamingWriter
    from featurestore.readers import FeatureReader
    from featurestore.readers.errors import JobError

    topic = f"demo-transactions-{uuid.uuid4().hex[:6]}"
    checkpoint = Path(workdir) / "streaming" / f"checkpoint-{topic}"
    with StreamingWriter.connect(redis_url, VIEW, catalog=catalog) as writer:
        sink = writer.foreach_batch(
            id_col="user_id", event_time_col="_ts", fields_col="_fields", feature_log=feature_log
        )
        server = writer.server_version
    kafka_client.ensure_topic(bootstrap, topic)
    started = time.monotonic()
    config = KafkaStreamConfig(bootstrap, str(checkpoint), topic=topic, trigger_seconds=1.0)
    job = start_job(spark, sink, config, ViewStream.of(catalog.view(VIEW), config))
    try:
        sent = produce_demo(
            bootstrap, topic, users=users, seconds=seconds, rate=rate, bad_share=bad_share, seed=seed,
            generator=WithinLateness(users, seed=seed),
        )  # fmt: skip
        log.info("waiting for the last micro-batches", extra={"view": VIEW})
        job.process_all_available()
    finally:
        job.stop()
    failure = job.failure()
    if failure:
        raise JobError(failure)
    report = job.report()
    expected = expected_features(sent.events, served_as_of(redis_url, {e.user_id for e in sent.events}))
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
