"""Spark Structured Streaming: ``foreachBatch(sink)`` writes each micro-batch from the executors.

:class:`ForeachBatchSink` (made by :meth:`.writer.StreamingWriter.foreach_batch`) checks
a micro-batch's columns on the driver, then writes its rows where they are, with
``mapInArrow``: each executor's Python worker keeps one writer per sink across
micro-batches, and only one ``(written, skipped)`` row per partition comes back to the
driver.  This module knows Spark and Arrow, not Redis: the sink carries ``open_writer``,
which builds an executor's writer (:func:`.writer.writer_for_sink`).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly, stream_samples
from featurestore.readers.errors import ConfigurationError

from .plan import EventTime, StreamingWritePlan, WriteStats

log = logging.getLogger(__name__)

if TYPE_CHECKING:
    from pyspark.sql import DataFrame

__all__ = ["EventWriter", "ForeachBatchSink"]


class EventWriter(Protocol):
    """What an executor needs of a writer: :meth:`.writer.StreamingWriter.write_many`."""

    def write_many(self, events: Iterable[tuple[object, Mapping[str, Any], EventTime]]) -> WriteStats: ...


@dataclass
class ForeachBatchSink:
    """``foreachBatch(sink)``: writes each micro-batch with a streaming writer per executor.

    Picklable (no connection inside); each executor's Python worker keeps one writer per
    sink and reuses it across micro-batches.  The rows never come to the driver:
    ``mapInArrow`` writes them where they are and returns one ``(written, skipped)`` row
    per partition.  Totals since the query started: ``batches``, ``written``, ``skipped``.
    """

    url: str
    plan: StreamingWritePlan
    id_col: str
    event_time_col: str | None
    guard: bool
    method: str
    timeout: float
    retry_seconds: float
    max_pipeline: int
    open_writer: Callable[[ForeachBatchSink], EventWriter]  # a module-level function: pickled by name
    metrics: MetricsTarget = field(default_factory=MetricsTarget)  # the query's counters, after each micro-batch
    feature_log: LogSettings | None = None  # log each micro-batch's writes there (docs/training-data.md)
    clock: Callable[[], float] = time.time  # when a micro-batch was written (the log's _written_at_ms)
    # an array<string> column naming the features each row writes (the others are left as they are; a null value
    # among them deletes its field); None: every feature column of the frame, on every row
    fields_col: str | None = None
    batches: int = 0
    written: int = 0
    skipped: int = 0

    def feature_columns(self, columns: Sequence[str]) -> list[str]:
        """The feature columns of a DataFrame; raises on a missing id or a foreign column."""
        required = [self.id_col] + ([self.event_time_col] if self.event_time_col else [])
        required += [self.fields_col] if self.fields_col else []
        missing = [c for c in required if c not in columns]
        if missing:
            raise ConfigurationError(
                f"streaming view {self.plan.view.name!r}: the DataFrame has no column {missing[0]!r} "
                f"(columns: {', '.join(columns)})"
            )
        rest = [c for c in columns if c not in required]
        self.plan.check_names(rest)
        return rest

    def __call__(self, df: DataFrame, epoch_id: int) -> None:
        started = time.monotonic()
        stats = self.write_dataframe(df)
        self.batches += 1
        self.written += stats.written
        self.skipped += stats.skipped
        if self.metrics.enabled:
            view = self.plan.view.name
            samples = stream_samples(
                view, self.batches, self.written, self.skipped, time.time(), time.monotonic() - started
            )
            publish_quietly(samples, self.metrics, f"stream_{view}", {"view": view})
        log.debug(
            "micro-batch %d: %d written, %d skipped as out of order", epoch_id, stats.written, stats.skipped,
            extra={"view": self.plan.view.name},
        )  # fmt: skip

    def write_dataframe(self, df: DataFrame) -> WriteStats:
        """Write a micro-batch (or any DataFrame) from the executors; return the counts."""
        from pyspark.sql import functions as F
        from pyspark.sql.types import DateType, TimestampNTZType, TimestampType

        features = self.feature_columns(df.columns)
        selected = [F.col(self.id_col)] + [F.col(c) for c in features]
        if self.event_time_col:
            event = F.col(self.event_time_col)
            if isinstance(df.schema[self.event_time_col].dataType, (TimestampType, TimestampNTZType, DateType)):
                event = F.unix_millis(event.cast("timestamp"))  # epoch ms, whatever the session time zone
            selected.append(event.cast("long"))
        if self.fields_col:
            selected.append(F.col(self.fields_col))
        job = _ArrowJob(self, tuple(features))
        logged = self.feature_log is not None and self.feature_log.enabled
        source = df.select(*selected)
        if logged:
            source = source.persist()  # the log holds exactly the rows written
        try:
            rows = source.mapInArrow(job, "written long, skipped long").collect()  # type: ignore[arg-type]
            if logged:
                self.log_written(source, features, int(self.clock() * 1000))
        finally:
            if logged:
                source.unpersist()
        return WriteStats(sum(r.written for r in rows), sum(r.skipped for r in rows))

    def log_written(self, written: DataFrame, features: Sequence[str], written_at_ms: int) -> None:
        """Append a written micro-batch to the view's feature log: the values, the event time in
        ``_ts``, and when it was written (the TTLs count from then)."""
        from pyspark.sql import functions as F

        from featurestore.jobs.core import feature_log

        assert self.feature_log is not None
        names = [self.id_col, *features]
        frame = written.toDF(
            *names, *(["_event_ms"] if self.event_time_col else []), *(["_row_fields"] if self.fields_col else [])
        )
        event = F.col("_event_ms") if self.event_time_col else F.lit(written_at_ms)
        row_fields = F.col("_row_fields") if self.fields_col else None
        run_id = f"stream-{written_at_ms}"
        rows = feature_log.streaming_log_frame(
            frame, self.plan.view, self.id_col, event, written_at_ms, run_id, fields=row_fields
        )
        feature_log.append_streaming_log(rows, self.feature_log, self.plan.view)


# --- on the executors --------------------------------------------------------------------

_EXECUTOR_WRITERS: dict[tuple[Any, ...], EventWriter] = {}
_EXECUTOR_LOCK = threading.Lock()


def _executor_writer(sink: ForeachBatchSink) -> EventWriter:
    """One writer per sink per Python worker, kept across micro-batches (worker reuse)."""
    key = (
        sink.open_writer, sink.url, sink.plan.view, sink.guard, sink.method,
        sink.timeout, sink.retry_seconds, sink.max_pipeline,
    )  # fmt: skip
    with _EXECUTOR_LOCK:
        writer = _EXECUTOR_WRITERS.get(key)
        if writer is None:
            writer = _EXECUTOR_WRITERS[key] = sink.open_writer(sink)
        return writer


@dataclass(frozen=True)
class _ArrowJob:
    """The ``mapInArrow`` function: runs on an executor and writes its partition's rows.

    Columns: the id, the feature columns in ``features`` order, then the event time (if the
    sink has one), then the row's fields (if the sink has ``fields_col``): a row writes those only.
    """

    sink: ForeachBatchSink
    features: tuple[str, ...]

    def __call__(self, batches: Iterator[Any]) -> Iterator[Any]:
        import pyarrow as pa

        writer = _executor_writer(self.sink)
        total = WriteStats()
        names = self.features
        for batch in batches:
            ids = batch.column(0).to_pylist()
            columns = [batch.column(i + 1).to_pylist() for i in range(len(names))]
            position = len(names) + 1
            if self.sink.event_time_col:
                times: list[Any] = batch.column(position).to_pylist()
                position += 1
            else:
                times = [None] * len(ids)
            rows = zip(*columns) if columns else ((),) * len(ids)
            if self.sink.fields_col:
                wanted = batch.column(position).to_pylist()
                values = (
                    {name: value for name, value in zip(names, row) if name in (only or ())}
                    for row, only in zip(rows, wanted)
                )
            else:
                values = (dict(zip(names, row)) for row in rows)
            total += writer.write_many(
                (entity_id, row_values, event) for entity_id, row_values, event in zip(ids, values, times)
            )
        yield pa.RecordBatch.from_pydict(
            {"written": [total.written], "skipped": [total.skipped]},
            schema=pa.schema([("written", pa.int64()), ("skipped", pa.int64())]),
        )
