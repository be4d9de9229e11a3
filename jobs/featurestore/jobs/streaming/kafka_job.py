"""``featurestore stream`` — the streaming job: Kafka -> per-user state -> Redis (docs/streaming.md).

Spark Structured Streaming reads a topic of transaction events with its Kafka source,
parses each record with :func:`.events.parse_event` (on the executors, ``mapInArrow``),
folds the good ones into per-user state (``transformWithState``, :mod:`.realtime`) and
writes the ``user_realtime`` features through the :class:`.writer.StreamingWriter` sink
(HSETEX with per-field TTLs, the out-of-order guard).  Two queries share the source:

* ``features`` — the features, checkpointed in ``<checkpoint>/features``;
* ``dead_letters`` — records that are not valid events (unparseable, no entity id, wrong
  types), written with their reason to the dead-letter topic (``<topic>.dead-letters``)
  and counted; a bad record never fails the query.

Restarts are exact: a query killed mid-stream restarts from its checkpoint (Kafka
offsets and the state store of the last committed micro-batch); the micro-batch that was
in flight is planned again over the same offsets, and re-writing its rows is idempotent
(same values, same event times: the guard lets an equal time through).  Replaying a topic
into a store with newer values changes nothing (the guard skips older event times).

Progress: every ``--report-seconds`` a line with events/s, event -> Redis latency
p50/p99 (from each record's Kafka timestamp to the end of the micro-batch write that made
it visible) and the consumer lag; the same numbers go to the metrics
(``STREAM_METRICS``) and to ``fs:stream:<view>`` in Redis, which ``featurestore status`` shows.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly, stream_progress_samples
from featurestore.readers.errors import JobError

from .events import (
    DEFAULT_EVENT_SCHEMA,
    EventSchema,
    Rejected,
    StreamStats,
    dead_letter,
    lag_of_progress,
    parse_event,
    progress_line,
)
from .realtime import NEEDED_FIELDS, OUTPUT_SCHEMA, STATE_SCHEMA, VIEW, processor

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurestore.jobs.core.feature_log import LogSettings

    from .spark_sink import ForeachBatchSink

log = logging.getLogger(__name__)

__all__ = ["KafkaStreamConfig", "StreamingJob", "kafka_jars", "run_job", "start_job"]

DEFAULT_TOPIC = "transactions"
STATE_STORE_CONF = "spark.sql.streaming.stateStore.providerClass"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
assert STATE_SCHEMA  # the state's shape is realtime's; kept in its checkpoint
# a busy machine can take more than Spark's 15 s to start the state processor's Python worker: a query that
# dies of it restarts from its checkpoint, but a long-running job should rather wait
SESSION_CONF = {"spark.python.authenticate.socketTimeout": "120s"}


@dataclass(frozen=True)
class KafkaStreamConfig:
    """Where the events come from and where the job keeps its progress."""

    bootstrap: str
    topic: str = DEFAULT_TOPIC
    checkpoint: str = ".featurestore/stream-checkpoint"
    schema: EventSchema = field(default_factory=lambda: EventSchema.parse(DEFAULT_EVENT_SCHEMA))
    dead_letter_topic: str | None = None  # None: <topic>.dead-letters
    starting_offsets: str = "earliest"  # for a new checkpoint only; a restart resumes where it stopped
    max_offsets_per_trigger: int | None = None
    trigger_seconds: float = 1.0
    available_now: bool = False  # process what is in the topic now, then stop

    @property
    def dead_letters(self) -> str:
        return self.dead_letter_topic or f"{self.topic}.dead-letters"


# --- on the executors: parsing ------------------------------------------------------------


def parsed_schema(schema: EventSchema) -> str:
    """The columns :class:`_ParseJob` returns: the id, the features' inputs, times, the dead letter."""
    id_type = "long" if schema.types[schema.id_field] == "long" else "string"
    return f"user_id {id_type}, amount double, country string, event_ms long, kafka_ms long, dead_letter binary"


@dataclass(frozen=True)
class _ParseJob:
    """``mapInArrow``: Kafka records (value, topic, partition, offset, kafka_ms) -> parsed rows.

    A bad record becomes a row with only ``dead_letter`` set (the JSON of :func:`.events.dead_letter`).
    """

    schema: EventSchema

    def __call__(self, batches: Any) -> Any:
        import pyarrow as pa

        schema = self.schema
        id_type = pa.int64() if schema.types[schema.id_field] == "long" else pa.string()
        out_schema = pa.schema(
            [("user_id", id_type), ("amount", pa.float64()), ("country", pa.string()), ("event_ms", pa.int64()),
             ("kafka_ms", pa.int64()), ("dead_letter", pa.binary())]
        )  # fmt: skip
        for batch in batches:
            cols: dict[str, list[Any]] = {name: [] for name in out_schema.names}
            values, topics, partitions, offsets, stamps = (batch.column(i).to_pylist() for i in range(5))
            for value, topic, partition, offset, stamp in zip(values, topics, partitions, offsets, stamps):
                event = parse_event(value, schema)
                if isinstance(event, Rejected):
                    row: dict[str, Any] = dict.fromkeys(cols)
                    row["kafka_ms"] = stamp
                    row["dead_letter"] = dead_letter(
                        value, event, topic=topic, partition=partition, offset=offset, timestamp_ms=stamp
                    )
                else:
                    row = {
                        "user_id": event[schema.id_field], "amount": event.get("amount"),
                        "country": event.get("country"), "event_ms": event[schema.time_field],
                        "kafka_ms": stamp, "dead_letter": None,
                    }  # fmt: skip
                for name in cols:
                    cols[name].append(row[name])
            yield pa.RecordBatch.from_pydict(cols, schema=out_schema)


# --- on the driver: the two foreachBatch functions ------------------------------------------


@dataclass
class _FeatureBatches:
    """``foreachBatch`` of the features query: write through the sink, then measure latency."""

    sink: ForeachBatchSink
    stats: StreamStats
    lock: threading.Lock

    def __call__(self, df: DataFrame, epoch_id: int) -> None:
        from pyspark.sql import functions as F

        df = df.persist()
        try:
            stamps = df.select(F.explode("kafka_ms")).toArrow().column(0).to_pylist()
            self.sink(df.drop("kafka_ms"), epoch_id)
            visible_ms = time.time() * 1000  # every row of the micro-batch is in Redis now
        finally:
            df.unpersist()
        with self.lock:
            self.stats.add_latencies((visible_ms - s) / 1000 for s in stamps if s is not None)
            self.stats.events += len(stamps)
            self.stats.batches = self.sink.batches
            self.stats.written, self.stats.skipped = self.sink.written, self.sink.skipped


@dataclass
class _DeadLetterBatches:
    """``foreachBatch`` of the dead-letters query: count them and write them to the dead-letter topic."""

    bootstrap: str
    topic: str
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
                log.warning("%d records were not valid events: sent to %s", count, self.topic, extra={"view": VIEW})
        finally:
            df.unpersist()
        with self.lock:
            self.stats.dead_letters += count


# --- the job --------------------------------------------------------------------------------


@dataclass
class StreamingJob:
    """The two running queries of a Kafka stream and their shared :class:`.events.StreamStats`."""

    features: Any
    dead_letters: Any
    stats: StreamStats
    lock: threading.Lock
    config: KafkaStreamConfig

    @property
    def queries(self) -> list[Any]:
        return [self.features, self.dead_letters]

    def report(self) -> dict[str, Any]:
        """Events/s and latencies since the last report, totals, and the lag now."""
        progress = self.features.lastProgress
        if progress is not None and hasattr(progress, "json"):  # pyspark 4: a StreamingQueryProgress
            progress = json.loads(progress.json)
        with self.lock:
            if progress:
                lag = lag_of_progress(progress)
                if lag is not None:
                    self.stats.lag = lag
            return self.stats.report(time.monotonic())

    def failure(self) -> str | None:
        for query in self.queries:
            error = query.exception()
            if error is not None:
                return f"the streaming query {query.name} failed: {error}"
        return None

    def active(self) -> bool:
        """Whether any query still runs (with ``available_now`` each stops once caught up)."""
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


def _source(spark: SparkSession, config: KafkaStreamConfig) -> DataFrame:
    from pyspark.sql import functions as F

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", config.bootstrap)
        .option("subscribe", config.topic)
        .option("startingOffsets", config.starting_offsets)
        .option("failOnDataLoss", "false")  # records removed by retention are skipped, with a warning
    )
    if config.max_offsets_per_trigger:
        reader = reader.option("maxOffsetsPerTrigger", str(config.max_offsets_per_trigger))
    raw = reader.load()
    return raw.select("value", "topic", "partition", "offset", F.unix_millis("timestamp").alias("kafka_ms"))


def start_job(
    spark: SparkSession, sink: ForeachBatchSink, config: KafkaStreamConfig, stats: StreamStats | None = None
) -> StreamingJob:
    """Start the ``features`` and ``dead_letters`` queries (see the module's docstring).

    ``stats``: the counters to go on with (a restart after a failure), else new ones.
    """
    from pyspark.sql import functions as F

    config.schema.require(NEEDED_FIELDS)
    parsed = _source(spark, config).mapInArrow(_ParseJob(config.schema), parsed_schema(config.schema))
    good = parsed.where(F.col("dead_letter").isNull()).drop("dead_letter")
    output = OUTPUT_SCHEMA.replace("user_id long", parsed_schema(config.schema).split(",")[0])
    features = good.groupBy("user_id").transformWithState(
        processor(produced_col="kafka_ms"), f"{output}, kafka_ms array<long>", "Update", "None"
    )
    bad = parsed.where(F.col("dead_letter").isNotNull()).select(F.col("dead_letter").alias("value"))
    stats, lock = stats or StreamStats(started=time.monotonic()), threading.Lock()
    checkpoint = Path(config.checkpoint)
    # `available_now` is not Spark's availableNow trigger: restarted from a checkpoint, Spark 4.1.1's Kafka
    # source fails that trigger's first micro-batch (a NullPointerException in KafkaMicroBatchStream.metrics).
    # The queries run on processing time and stop once everything the topic held at the start is processed.
    trigger: dict[str, Any] = {"processingTime": f"{config.trigger_seconds} seconds"}
    previous = spark.conf.get(STATE_STORE_CONF, None)
    spark.conf.set(STATE_STORE_CONF, ROCKSDB_PROVIDER)  # transformWithState needs RocksDB; this query only
    try:
        feature_query = (
            features.writeStream.queryName(f"featurestore_{VIEW}_features")
            .foreachBatch(_FeatureBatches(sink, stats, lock))
            .outputMode("update")
            .option("checkpointLocation", str(checkpoint / "features"))
            .trigger(**trigger)
            .start()
        )
    finally:
        if previous is None:
            spark.conf.unset(STATE_STORE_CONF)
        else:
            spark.conf.set(STATE_STORE_CONF, previous)
    try:
        dead_query = (
            bad.writeStream.queryName(f"featurestore_{VIEW}_dead_letters")
            .foreachBatch(_DeadLetterBatches(config.bootstrap, config.dead_letters, stats, lock))
            .option("checkpointLocation", str(checkpoint / "dead_letters"))
            .trigger(**trigger)
            .start()
        )
    except BaseException:
        feature_query.stop()
        raise
    log.info(
        "streaming %s from %s (Kafka %s) into %s; dead letters to %s; checkpoint %s", config.topic, config.bootstrap,
        config.starting_offsets, VIEW, config.dead_letters, checkpoint, extra={"view": VIEW},
    )  # fmt: skip
    return StreamingJob(feature_query, dead_query, stats, lock, config)


def run_job(
    spark: SparkSession,
    redis_url: str,
    config: KafkaStreamConfig,
    *,
    seconds: float | None = None,
    report_seconds: float = 5.0,
    on_report: Any = None,
    metrics: MetricsTarget | None = None,
    max_restarts: int = 3,
    feature_log: LogSettings | None = None,
) -> dict[str, Any]:
    """Run the job until ``seconds`` passed (None: until stopped, or caught up with ``available_now``).

    Every ``report_seconds``: a progress line (logged, and passed to ``on_report``), the
    metrics, and the progress record in Redis.  Returns the last report.  A failed query
    (a Python worker that did not start in time on a busy machine, Redis unreachable for
    longer than the writer's retries ...) is restarted from its checkpoint, which is exact,
    up to ``max_restarts`` times; then :class:`JobError` is raised.  With ``feature_log``
    each micro-batch's writes are also appended to the view's feature log (docs/training-data.md).
    """
    from .writer import StreamingWriter

    metrics = metrics if metrics is not None else MetricsTarget()  # None: no metrics
    with StreamingWriter.connect(redis_url, VIEW) as writer:  # a too-old server fails here, before Spark reads
        sink = writer.foreach_batch(event_time_col="event_time", metrics=metrics, feature_log=feature_log)
        job = start_job(spark, sink, config)
        started = time.monotonic()
        restarts = 0
        while True:
            failure: str | None
            try:
                _watch(
                    job, config, seconds, started, report_seconds, partial(_publish, job, writer, metrics, on_report)
                )
            except Exception as exc:
                failure = job.failure() or f"{type(exc).__name__}: {exc}"
            else:
                failure = job.failure()
            finally:
                job.stop()
            if failure is None:
                break
            if restarts >= max_restarts:
                raise JobError(failure)
            restarts += 1
            log.warning(
                "%s; restarting from the checkpoint (%d of %d)", failure.splitlines()[0], restarts, max_restarts,
                extra={"view": VIEW},
            )  # fmt: skip
            time.sleep(2.0)
            job = start_job(spark, sink, config, stats=job.stats)
        return _publish(job, writer, metrics, on_report)


def _watch(
    job: StreamingJob,
    config: KafkaStreamConfig,
    seconds: float | None,
    started: float,
    report_seconds: float,
    publish: Any,
) -> None:
    """Report every ``report_seconds`` until time is up, or caught up (``available_now``), or a failure."""
    if config.available_now:
        job.process_all_available()  # what the topic holds now; raises if a query fails
        publish()
        return
    while True:
        deadline = time.monotonic() + report_seconds
        while time.monotonic() < deadline and job.active() and job.failure() is None:
            time.sleep(min(0.2, report_seconds))
        if job.failure() is not None:
            return
        if not job.active():
            raise JobError("the streaming query stopped")
        publish()
        if seconds is not None and time.monotonic() - started >= seconds:
            job.process_all_available()
            return


def _publish(job: StreamingJob, writer: Any, metrics: MetricsTarget, on_report: Any) -> dict[str, Any]:
    report = job.report()
    log.info("%s", progress_line(report), extra={"view": VIEW})
    if on_report is not None:
        on_report(report)
    if metrics.enabled:
        publish_quietly(stream_progress_samples(VIEW, report), metrics, f"stream_{VIEW}_progress", {"view": VIEW})
    try:
        writer.record_progress(report, source=f"spark:{job.config.topic}")
    except Exception as exc:  # the status record never fails the stream
        log.warning("could not record the stream's progress in Redis: %s", exc)
    return report


# --- the jars ---------------------------------------------------------------------------------


def kafka_jars() -> list[str]:
    """Spark's Kafka source and sink jars (resolved once from Maven Central, then local)."""
    from featurestore.jobs import maven

    return [str(p) for p in maven.resolve(maven.SPARK_KAFKA)]
