"""``featurestore stream`` — the generic streaming job: a declared view's topic -> windows -> Redis.

For each streaming view declared with ``stream=`` (docs/streaming.md, "Windows"), Spark
Structured Streaming reads the view's topic with its Kafka source, parses each record
against the view's :class:`~featurestore.readers.StreamSource` (on the executors,
``mapInArrow``, with :func:`.events.parse_event`), computes the view's features per entity
(:func:`.processor.windowed_features`: ``withWatermark`` + ``groupBy(id).transformWithState``
running :mod:`.windows`, event-time timers) and writes each row's fields through the
:class:`.writer.StreamingWriter` sink (HSETEX with per-field TTLs, the out-of-order guard).
Two queries per view share its source:

* ``features`` — the features, checkpointed in ``<checkpoint>/<view>/<fingerprint8>/features``;
* ``dead_letters`` — records that are not valid events for the view (unparseable, no
  entity id, wrong types), written with their reason to the view's dead-letter topic,
  keyed by their record id ``<view>/<topic>/<partition>/<offset>`` (at-least-once: a
  restart may send one again; de-duplicate by key) and counted; they never fail the query.

The fingerprint (:attr:`.windows.ViewProgram.fingerprint`: the stream and the computations)
names the checkpoint: a changed definition starts a new one, from ``starting_offsets``.

Restarts are exact: a query killed mid-stream restarts from its checkpoint (Kafka offsets,
the state store, the timers and the watermark of the last committed micro-batch); the
micro-batch that was in flight is planned again over the same offsets, computes the same
rows, and re-writing them is idempotent (same values, same as-of: the guard lets an equal
time through).  Replaying a topic into a store with newer values changes nothing.

Progress: every ``--report-seconds`` a line per view with events/s, event -> Redis latency
p50/p99 (from each record's Kafka timestamp to the end of the micro-batch write that made it
visible), the consumer lag, dead letters, ``late`` events (dropped by the watermark,
``numRowsDroppedByWatermark``) and ``ignored`` ones (too old for every window); the same
numbers go to the metrics and to ``fs:stream:<view>``, which ``featurestore status`` shows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly, stream_progress_samples
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.errors import ConfigurationError, JobError

from .events import EventSchema, Rejected, StreamStats, dead_letter, lag_of_progress, parse_event, progress_line
from .events import record_id as record_id_of
from .processor import rocksdb_state_store, windowed_features
from .windows import ViewProgram

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurestore.jobs.core.feature_log import LogSettings

    from .spark_sink import ForeachBatchSink

log = logging.getLogger(__name__)

__all__ = [
    "KafkaStreamConfig",
    "StreamingJob",
    "ViewStream",
    "kafka_jars",
    "run_job",
    "start_job",
    "streamed_views",
]

DEFAULT_CHECKPOINT = ".featurestore/stream-checkpoint"
PRODUCED = "kafka_ms"  # the Kafka record timestamp, carried through the processor for the latency
# a busy machine can take more than Spark's 15 s to start the state processor's Python worker: a query that
# dies of it restarts from its checkpoint, but a long-running job should rather wait
SESSION_CONF = {"spark.python.authenticate.socketTimeout": "120s"}


@dataclass(frozen=True)
class KafkaStreamConfig:
    """Where the events come from and where the job keeps its progress (for every view it runs)."""

    bootstrap: str
    checkpoint: str = DEFAULT_CHECKPOINT  # the root: <checkpoint>/<view>/<fingerprint8>/{features,dead_letters}
    topic: str | None = None  # replaces the views' topic (views that read the same one)
    dead_letter_topic: str | None = None  # replaces the views' dead-letter topic (likewise)
    starting_offsets: str = "earliest"  # for a new checkpoint only; a restart resumes where it stopped
    max_offsets_per_trigger: int | None = None
    trigger_seconds: float = 1.0
    available_now: bool = False  # process what is in the topic now, then stop


@dataclass(frozen=True)
class ViewStream:
    """One declared view as the job runs it: its program, topic, dead-letter topic and checkpoint."""

    view: FeatureView
    program: ViewProgram
    topic: str
    dead_letters: str
    checkpoint: Path

    @classmethod
    def of(cls, view: FeatureView, config: KafkaStreamConfig) -> ViewStream:
        stream = view.stream
        if stream is None:
            raise ConfigurationError(_not_declared(view.name))
        program = ViewProgram.of(view)
        topic = config.topic or stream.topic
        dead_letters = config.dead_letter_topic or (
            f"{config.topic}.dead-letters" if config.topic else stream.dead_letters_topic
        )
        checkpoint = Path(config.checkpoint) / view.name / program.fingerprint[:8]
        return cls(view, program, topic, dead_letters, checkpoint)


def _not_declared(name: str) -> str:
    return (
        f"view {name!r} has no stream= declaration: `featurestore stream` computes declared streaming views only; "
        "a streaming view without stream= is written by your own pipeline through "
        "featurestore.jobs.streaming.StreamingWriter (docs/streaming.md)"
    )


def streamed_views(catalog: Catalog, names: Sequence[str] = ()) -> list[FeatureView]:
    """The views to stream: ``names`` (each must be a view with ``stream=``), else every such view."""
    if not names:
        declared = [v for v in catalog.views if v.stream is not None]
        if not declared:
            raise ConfigurationError(
                "the catalogue declares no streaming view with stream=: nothing for `featurestore stream` "
                'to compute (docs/streaming.md, "Windows")'
            )
        return declared
    views = []
    for name in dict.fromkeys(names):
        view = catalog.view(name)  # an unknown name: FeatureNotFoundError naming the views
        if view.stream is None:
            raise ConfigurationError(_not_declared(view.name))
        views.append(view)
    return views


# --- on the executors: parsing ------------------------------------------------------------

_ARROW_KINDS = ("long", "double", "string", "boolean", "timestamp")


def parsed_schema(program: ViewProgram) -> str:
    """The columns :class:`_ParseJob` returns: the needed event fields (timestamps as epoch ms),
    the Kafka timestamp, and the dead letter with its record id."""
    columns = [f"{name} {'long' if kind == 'timestamp' else kind}" for name, kind in program.needed_fields.items()]
    return ", ".join([*columns, f"{PRODUCED} long", "record_id string", "dead_letter binary"])


@dataclass(frozen=True)
class _ParseJob:
    """``mapInArrow``: Kafka records (value, topic, partition, offset, kafka_ms) -> parsed rows.

    A bad record becomes a row with only ``record_id`` and ``dead_letter`` set (the JSON of
    :func:`.events.dead_letter`).
    """

    schema: EventSchema
    view: str
    needed: tuple[tuple[str, str], ...]

    def __call__(self, batches: Any) -> Any:
        import pyarrow as pa

        arrow = {"long": pa.int64(), "double": pa.float64(), "string": pa.string(), "boolean": pa.bool_(),
                 "timestamp": pa.int64()}  # fmt: skip
        out_schema = pa.schema(
            [(name, arrow[kind]) for name, kind in self.needed]
            + [(PRODUCED, pa.int64()), ("record_id", pa.string()), ("dead_letter", pa.binary())]
        )
        names = [name for name, _ in self.needed]
        for batch in batches:
            cols: dict[str, list[Any]] = {name: [] for name in out_schema.names}
            values, topics, partitions, offsets, stamps = (batch.column(i).to_pylist() for i in range(5))
            for value, topic, partition, offset, stamp in zip(values, topics, partitions, offsets, stamps):
                event = parse_event(value, self.schema)
                row: dict[str, Any] = dict.fromkeys(out_schema.names)
                row[PRODUCED] = stamp
                if isinstance(event, Rejected):
                    row["record_id"] = record_id_of(self.view, topic, partition, offset)
                    row["dead_letter"] = dead_letter(
                        value, event, topic=topic, partition=partition, offset=offset, timestamp_ms=stamp,
                        view=self.view,
                    )  # fmt: skip
                else:
                    row.update((name, event.get(name)) for name in names)
                for name in out_schema.names:
                    cols[name].append(row[name])
            yield pa.RecordBatch.from_pydict(cols, schema=out_schema)


# --- on the driver: the two foreachBatch functions ------------------------------------------


@dataclass
class _FeatureBatches:
    """``foreachBatch`` of the features query: write each row's fields through the sink, then
    measure latency and count the ignored events."""

    sink: ForeachBatchSink
    stats: StreamStats
    lock: threading.Lock

    def __call__(self, df: DataFrame, epoch_id: int) -> None:
        from pyspark.sql import functions as F

        df = df.persist()
        try:
            counts = df.select(F.explode(PRODUCED).alias("stamp"), F.lit(0).alias("ignored")).unionByName(
                df.select(F.lit(None).cast("long").alias("stamp"), F.col("_ignored").alias("ignored"))
            )
            arrow = counts.toArrow()
            stamps = [s for s in arrow.column("stamp").to_pylist() if s is not None]
            ignored = sum(arrow.column("ignored").to_pylist())
            # a row whose _fields is empty only reports ignored events: nothing to write
            self.sink(df.where(F.size("_fields") > 0).drop(PRODUCED, "_ignored"), epoch_id)
            visible_ms = time.time() * 1000  # every row of the micro-batch is in Redis now
        finally:
            df.unpersist()
        with self.lock:
            self.stats.add_latencies((visible_ms - s) / 1000 for s in stamps)
            self.stats.events += len(stamps)
            self.stats.ignored = (self.stats.ignored or 0) + ignored
            self.stats.batches = self.sink.batches
            self.stats.written, self.stats.skipped = self.sink.written, self.sink.skipped


@dataclass
class _DeadLetterBatches:
    """``foreachBatch`` of the dead-letters query: count them and write them, keyed by record id."""

    bootstrap: str
    topic: str
    view: str
    stats: StreamStats
    lock: threading.Lock
    kafka_options: dict[str, str] = field(default_factory=dict)

    def __call__(self, df: DataFrame, epoch_id: int) -> None:
        df = df.persist()
        try:
            count = df.count()
            if count:
                writer = df.write.format("kafka").option("kafka.bootstrap.servers", self.bootstrap)
                for key, value in self.kafka_options.items():
                    writer = writer.option(key, value)
                writer.option("topic", self.topic).save()
                log.warning(
                    "%d records were not valid events: sent to %s", count, self.topic, extra={"view": self.view}
                )
        finally:
            df.unpersist()
        with self.lock:
            self.stats.dead_letters += count


# --- the job --------------------------------------------------------------------------------


@dataclass
class StreamingJob:
    """The two running queries of one view's stream and their shared :class:`.events.StreamStats`."""

    features: Any
    dead_letters: Any
    stats: StreamStats
    lock: threading.Lock
    stream: ViewStream
    counted_batch: int = -1  # the last micro-batch whose late rows are in stats.late

    @property
    def view(self) -> str:
        return self.stream.view.name

    @property
    def queries(self) -> list[Any]:
        return [self.features, self.dead_letters]

    def report(self) -> dict[str, Any]:
        """Events/s and latencies since the last report, totals, late events, and the lag now."""
        progress = _progress_json(self.features.lastProgress)
        recent = [_progress_json(p) for p in (self.features.recentProgress or [])]
        with self.lock:
            for entry in recent:
                batch = entry.get("batchId", -1) if entry else -1
                if batch > self.counted_batch:
                    self.stats.late = (self.stats.late or 0) + _late_rows(entry)
                    self.counted_batch = batch
            if progress:
                lag = lag_of_progress(progress)
                if lag is not None:
                    self.stats.lag = lag
            return {"view": self.view, **self.stats.report(time.monotonic())}

    def failure(self) -> str | None:
        for query in self.queries:
            error = query.exception()
            if error is not None:
                return f"the streaming query {query.name} failed: {error}"
        return None

    def active(self) -> bool:
        """Whether any query still runs."""
        return any(q.isActive for q in self.queries)

    def process_all_available(self) -> None:
        for query in self.queries:
            query.processAllAvailable()

    def stop(self) -> None:
        for query in self.queries:
            try:
                query.stop()
            except Exception as exc:  # stopping one never hides another's failure
                log.warning("stopping %s: %s", query.name, exc)


def _progress_json(progress: Any) -> dict[str, Any]:
    if progress is not None and hasattr(progress, "json"):  # pyspark 4: a StreamingQueryProgress
        return dict(json.loads(progress.json))
    return dict(progress or {})


def _late_rows(progress: dict[str, Any]) -> int:
    """The rows a micro-batch dropped as later than the watermark allows (``numRowsDroppedByWatermark``)."""
    return sum(int(op.get("numRowsDroppedByWatermark") or 0) for op in progress.get("stateOperators") or ())


def _source(spark: SparkSession, config: KafkaStreamConfig, topic: str) -> DataFrame:
    from pyspark.sql import functions as F

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.bootstrap)
        .option("subscribe", topic)
        .option("startingOffsets", config.starting_offsets)
        .option("failOnDataLoss", "false")  # records removed by retention are skipped, with a warning
    )
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    raw = reader.load()
    return raw.select("value", "topic", "partition", "offset", F.unix_millis("timestamp").alias(PRODUCED))


def start_job(
    spark: SparkSession,
    sink: ForeachBatchSink,
    config: KafkaStreamConfig,
    stream: ViewStream,
    stats: StreamStats | None = None,
) -> StreamingJob:
    """Start ``stream``'s ``features`` and ``dead_letters`` queries (see the module's docstring).

    ``sink``: the view's writer's ``foreach_batch(event_time_col="_ts", fields_col="_fields",
    id_col=<id field>)``.  ``stats``: the counters to go on with (a restart after a failure), else new ones.
    """
    from pyspark.sql import functions as F

    program, view = stream.program, stream.view.name
    assert view == sink.plan.view.name, (view, sink.plan.view.name)
    schema = EventSchema(program.event_fields, program.id_field, program.time_field)
    needed = tuple(program.needed_fields.items())
    parsed = _source(spark, config, stream.topic).mapInArrow(_ParseJob(schema, view, needed), parsed_schema(program))
    timestamps = [name for name, kind in needed if kind == "timestamp"]
    good = parsed.where(F.col("dead_letter").isNull()).select(
        *[F.timestamp_millis(name).alias(name) if name in timestamps else F.col(name) for name, _ in needed],
        F.col(PRODUCED),
    )  # windowed_features takes timestamps as declared
    features = windowed_features(good, program, produced_col=PRODUCED)
    bad = parsed.where(F.col("dead_letter").isNotNull()).select(
        F.col("record_id").alias("key"), F.col("dead_letter").alias("value")
    )
    stats = stats or StreamStats(started=time.monotonic(), late=0, ignored=0)
    lock = threading.Lock()
    # `available_now` is not Spark's availableNow trigger: restarted from a checkpoint, Spark 4.1.1's Kafka
    # source fails that trigger's first micro-batch (a NullPointerException in KafkaMicroBatchStream.metrics).
    # The queries run on processing time and stop once everything the topic held at the start is processed.
    trigger: dict[str, Any] = {"processingTime": f"{config.trigger_seconds} seconds"}
    with rocksdb_state_store(spark):  # transformWithState needs RocksDB; this query only
        feature_query = (
            features.writeStream.queryName(f"featurestore_{view}_features")
            .foreachBatch(_FeatureBatches(sink, stats, lock))
            .outputMode("update")
            .option("checkpointLocation", str(stream.checkpoint / "features"))
            .trigger(**trigger)
            .start()
        )
    try:
        dead_query = (
            bad.writeStream.queryName(f"featurestore_{view}_dead_letters")
            .foreachBatch(_DeadLetterBatches(config.bootstrap, stream.dead_letters, view, stats, lock))
            .option("checkpointLocation", str(stream.checkpoint / "dead_letters"))
            .trigger(**trigger)
            .start()
        )
    except BaseException:
        feature_query.stop()
        raise
    log.info(
        "streaming %s from %s (Kafka %s) into %s; dead letters to %s; checkpoint %s", stream.topic, config.bootstrap,
        config.starting_offsets, view, stream.dead_letters, stream.checkpoint, extra={"view": view},
    )  # fmt: skip
    return StreamingJob(feature_query, dead_query, stats, lock, stream)


def run_job(
    spark: SparkSession,
    redis_url: str,
    config: KafkaStreamConfig,
    views: Sequence[FeatureView],
    *,
    catalog: Catalog | None = None,
    seconds: float | None = None,
    report_seconds: float = 5.0,
    on_report: Any = None,
    metrics: MetricsTarget | None = None,
    max_restarts: int = 3,
    feature_log: LogSettings | None = None,
) -> list[dict[str, Any]]:
    """Run the job for ``views`` (each declared with ``stream=``) until ``seconds`` passed
    (None: until stopped, or caught up with ``available_now``).

    Every ``report_seconds``: a progress line per view (logged, and passed to ``on_report``),
    the metrics, and the progress record in Redis.  Returns the last report of each view.  A
    failed query (a Python worker that did not start in time on a busy machine, Redis
    unreachable for longer than the writer's retries ...) restarts every query from its
    checkpoint, which is exact, up to ``max_restarts`` times; then :class:`JobError` is
    raised.  With ``feature_log`` each micro-batch's writes (per row: the fields it wrote)
    are also appended to the view's feature log (docs/training-data.md).
    """
    from contextlib import ExitStack

    from .writer import StreamingWriter

    if not views:
        raise ConfigurationError("no streaming view to run")
    declared_topics = {view.stream.topic for view in views if view.stream is not None}
    if len(declared_topics) > 1 and (config.topic or config.dead_letter_topic):
        raise ConfigurationError(
            "--topic and --dead-letter-topic replace the views' topic: the views read different topics "
            f"({', '.join(sorted(declared_topics))}); run them one --view at a time"
        )
    streams = [ViewStream.of(view, config) for view in views]
    metrics = metrics if metrics is not None else MetricsTarget()  # None: no metrics
    with ExitStack() as stack:
        writers = []
        sinks = []
        for stream in streams:  # a too-old server fails here, before Spark reads
            writer = stack.enter_context(StreamingWriter.connect(redis_url, stream.view, catalog=catalog))
            writers.append(writer)
            sink = writer.foreach_batch(
                id_col=stream.program.id_field, event_time_col="_ts", fields_col="_fields", metrics=metrics,
                feature_log=feature_log,
            )  # fmt: skip
            sinks.append(sink)
        jobs = _start_all(spark, sinks, config, streams, [None] * len(streams))
        started = time.monotonic()
        restarts = 0

        def publish() -> list[dict[str, Any]]:
            return [_publish(job, writer, metrics, on_report) for job, writer in zip(jobs, writers)]

        while True:
            failure: str | None
            try:
                _watch(jobs, config, seconds, started, report_seconds, publish)
            except Exception as exc:
                failure = _failure(jobs) or f"{type(exc).__name__}: {exc}"
            else:
                failure = _failure(jobs)
            finally:
                for job in jobs:
                    job.stop()
            if failure is None:
                break
            if restarts >= max_restarts:
                raise JobError(failure)
            restarts += 1
            first_line = failure.splitlines()[0]
            log.warning("%s; restarting from the checkpoint (%d of %d)", first_line, restarts, max_restarts)
            time.sleep(2.0)
            jobs = _start_all(spark, sinks, config, streams, [job.stats for job in jobs])
        return publish()


def _start_all(
    spark: SparkSession,
    sinks: Sequence[ForeachBatchSink],
    config: KafkaStreamConfig,
    streams: Sequence[ViewStream],
    stats: Sequence[StreamStats | None],
) -> list[StreamingJob]:
    jobs: list[StreamingJob] = []
    try:
        for sink, stream, counters in zip(sinks, streams, stats):
            jobs.append(start_job(spark, sink, config, stream, counters))
    except BaseException:
        for job in jobs:
            job.stop()
        raise
    return jobs


def _failure(jobs: Sequence[StreamingJob]) -> str | None:
    return next((f for f in (job.failure() for job in jobs) if f is not None), None)


def _watch(
    jobs: Sequence[StreamingJob],
    config: KafkaStreamConfig,
    seconds: float | None,
    started: float,
    report_seconds: float,
    publish: Any,
) -> None:
    """Report every ``report_seconds`` until time is up, or caught up (``available_now``), or a failure."""
    if config.available_now:
        for job in jobs:
            job.process_all_available()  # what the topic holds now; raises if a query fails
        _fire_due_timers(jobs)
        publish()
        return
    while True:
        deadline = time.monotonic() + report_seconds
        while time.monotonic() < deadline and all(j.active() for j in jobs) and _failure(jobs) is None:
            time.sleep(min(0.2, report_seconds))
        if _failure(jobs) is not None:
            return
        if not all(j.active() for j in jobs):
            raise JobError("a streaming query stopped")
        publish()
        if seconds is not None and time.monotonic() - started >= seconds:
            for job in jobs:
                job.process_all_available()
            _fire_due_timers(jobs)
            return


def _fire_due_timers(jobs: Sequence[StreamingJob], wait_seconds: float = 60.0) -> None:
    """After catching up, wait for the micro-batch without data that fires the timers the last
    watermark made due (Spark runs one when the watermark advanced; docs/streaming.md), so a
    catch-up run ends with every window that emptied by then deleted."""
    for job in jobs:
        deadline = time.monotonic() + wait_seconds
        lateness_ms = job.stream.program.lateness_ms
        while job.features.isActive and _timers_due(_progress_json(job.features.lastProgress), lateness_ms):
            if time.monotonic() > deadline:
                log.warning("the micro-batch firing the last timers did not run in time", extra={"view": job.view})
                break
            time.sleep(0.2)


def _timers_due(progress: dict[str, Any], lateness_ms: int) -> bool:
    """Whether the micro-batch of ``progress`` moves the watermark on, so that Spark runs another one
    (without data) with it: the batch's latest event time minus the lateness passes the watermark it ran with."""
    event_time = progress.get("eventTime") or {}
    if not progress.get("numInputRows") or "max" not in event_time:
        return False
    return _iso_ms(event_time["max"]) - lateness_ms > _iso_ms(event_time.get("watermark", "1970-01-01T00:00:00Z"))


def _iso_ms(text: str) -> int:
    from datetime import datetime

    return round(datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp() * 1000)


def _publish(job: StreamingJob, writer: Any, metrics: MetricsTarget, on_report: Any) -> dict[str, Any]:
    report = job.report()
    view = job.view
    log.info("%s", progress_line(report), extra={"view": view})
    if on_report is not None:
        on_report(report)
    if metrics.enabled:
        publish_quietly(stream_progress_samples(view, report), metrics, f"stream_{view}_progress", {"view": view})
    try:
        writer.record_progress(report, source=f"spark:{job.stream.topic}")
    except Exception as exc:  # the status record never fails the stream
        log.warning("could not record the stream's progress in Redis: %s", exc)
    return report


# --- the jars ---------------------------------------------------------------------------------


def kafka_jars() -> list[str]:
    """Spark's Kafka source and sink jars (resolved once from Maven Central, then local)."""
    from featurestore.jobs import maven

    return [str(p) for p in maven.resolve(maven.SPARK_KAFKA)]
