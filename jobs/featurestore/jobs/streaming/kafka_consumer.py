"""A plain Kafka consumer loop for teams without Spark on the streaming path (docs/streaming.md).

    from featurestore.jobs.streaming import StreamingWriter
    from featurestore.jobs.streaming.kafka_consumer import FeatureConsumer

    with StreamingWriter.connect("redis://localhost:6379", "session_live") as writer:
        FeatureConsumer.connect("localhost:9092", "page_views", writer, features=("last_page",)).run()

Each round polls up to ``batch_size`` records, parses them with :func:`.events.parse_event`
(the same rules as the Spark job), writes the good ones through the
:class:`.writer.StreamingWriter` (one pipelined round trip; per-field TTLs; the
out-of-order guard), sends the bad ones with their reason to the dead-letter topic, and
only then commits the offsets: **at-least-once**.  A crash between the write and the
commit re-delivers those records; writing them again changes nothing (same values, same
event times), and an older event never overwrites a newer one (the guard).

What an event writes is ``to_features(event, schema) -> (entity_id, values, event_time) | None``.
The default, :class:`LastValues` of the writer's view (declared with ``stream=``), is
stateless: each event writes the view's ``LastValue`` features it matches, at its event
time, and the guard keeps the latest by event time: exact under re-delivery and restarts.
The consumer keeps no state, so a view with windowed features (``Aggregate``,
``SecondsSincePrevious``) is refused, naming ``featurestore stream`` (the Spark job, whose
state is checkpointed with its offsets), unless ``features`` picks only its last values.
Dead letters are keyed by their record id ``<view>/<topic>/<partition>/<offset>``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly, stream_progress_samples
from featurestore.readers.definitions import FeatureView, LastValue
from featurestore.readers.errors import ConfigurationError

from . import kafka_client
from .events import EventSchema, Rejected, StreamStats, dead_letter, parse_event, progress_line, record_id
from .writer import StreamingWriter

log = logging.getLogger(__name__)

__all__ = ["FeatureConsumer", "LastValues"]

Write = tuple[object, Mapping[str, Any], int]
DEFAULT_GROUP = "featurestore-consumer"


@dataclass(frozen=True)
class LastValues:
    """The stateless mapping of a declared view: each event writes the ``LastValue`` features
    whose ``where`` it matches (``{name: event[column]}``), at its event time.

    The out-of-order guard then keeps, per entity, the latest event by event time (an equal
    time passes: the later arrival wins), which is the Spark job's rule for last values; one
    difference: the guard is per view, so an older event matching one feature's ``where``
    that arrives after a newer event of the entity is skipped (the Spark job would write it).
    """

    specs: tuple[tuple[str, str, tuple[tuple[str, Any], ...]], ...]  # (feature, column, where)

    @classmethod
    def of(cls, view: FeatureView, features: Sequence[str] | None = None) -> LastValues:
        """The last values of ``view`` (``features``: only those); refuses what needs state, in one line."""
        if view.stream is None:
            raise ConfigurationError(
                f"view {view.name!r} has no stream= declaration: the plain consumer computes a declared view's "
                "last values; write a hook view with your own to_features mapping (FeatureConsumer(to_features=...))"
            )
        computations = dict(view.computations)
        if features:
            for name in features:
                if not isinstance(view.computation(name) if name in computations else view.feature(name), LastValue):
                    raise ConfigurationError(
                        f"view {view.name!r}: --features takes last values only; {name!r} needs state "
                        f"(run featurestore stream --view {view.name})"
                    )
            chosen = list(dict.fromkeys(features))
        else:
            stateful = [name for name, c in view.computations if not isinstance(c, LastValue)]
            if stateful:
                lasts = [name for name, c in view.computations if isinstance(c, LastValue)]
                hint = f", or pass --features {','.join(lasts)} to write only its last values" if lasts else ""
                raise ConfigurationError(
                    f"view {view.name!r} has windowed features ({', '.join(stateful)}): the plain consumer keeps "
                    f"no state; run featurestore stream --view {view.name}{hint}"
                )
            chosen = [name for name, _ in view.computations]
        specs = []
        for name in chosen:
            last = computations[name]
            assert isinstance(last, LastValue)
            specs.append((name, last.column, tuple(sorted((last.where or {}).items()))))
        return cls(tuple(specs))

    def __call__(self, event: Mapping[str, Any], schema: EventSchema) -> Write | None:
        values = {
            name: event.get(column)
            for name, column, where in self.specs
            if all(event.get(key) == value for key, value in where)
        }
        if not values:
            return None
        return event[schema.id_field], values, event[schema.time_field]


@dataclass
class FeatureConsumer:
    """Kafka -> :class:`StreamingWriter`, at-least-once (commit after the write).

    ``consumer`` is a ``confluent_kafka.Consumer`` (manual commits), ``producer`` one for the
    dead letters (None: made from ``bootstrap`` when the first bad record comes).  ``schema``
    (None: the view's ``stream=``), ``to_features`` (None: :class:`LastValues` of the view,
    ``features`` of them only) and the dead-letter topic (None: the view's) come from the
    writer's view unless given.
    """

    consumer: Any
    topic: str
    writer: StreamingWriter
    bootstrap: str
    schema: EventSchema | None = None
    to_features: Callable[[Mapping[str, Any], EventSchema], Write | None] | None = None
    features: Sequence[str] | None = None
    dead_letter_topic: str | None = None
    batch_size: int = 1000
    poll_seconds: float = 0.5
    producer: Any = None
    stats: StreamStats = field(default_factory=lambda: StreamStats(started=time.monotonic()))

    def __post_init__(self) -> None:
        view = self.writer.view
        if self.to_features is None:
            self.to_features = LastValues.of(view, self.features)
        if self.schema is None:
            if view.stream is None:
                raise ConfigurationError(f"view {view.name!r} has no stream= declaration: pass the event schema")
            self.schema = EventSchema.of(view.stream)

    @classmethod
    def connect(
        cls, bootstrap: str, topic: str, writer: StreamingWriter, *, group: str = DEFAULT_GROUP, **options: Any
    ) -> FeatureConsumer:
        """A consumer of ``topic`` in consumer group ``group``, subscribed (starts at the earliest
        offset when the group has no committed one)."""
        consumer = kafka_client.consumer(bootstrap, group)
        try:
            consumer.subscribe([topic])
            return cls(consumer=consumer, topic=topic, writer=writer, bootstrap=bootstrap, **options)
        except BaseException:  # e.g. a view the consumer cannot compute: refused, nothing left open
            consumer.close()
            raise

    @property
    def dead_letters(self) -> str:
        stream = self.writer.view.stream
        if self.dead_letter_topic:
            return self.dead_letter_topic
        if stream is not None and stream.topic == self.topic:
            return stream.dead_letters_topic
        return f"{self.topic}.dead-letters"

    def step(self) -> int:
        """One round: poll, parse, write, dead-letter, commit.  Returns the records handled."""
        kafka = kafka_client.confluent()
        schema, to_features = self.schema, self.to_features
        assert schema is not None and to_features is not None  # set in __post_init__
        messages = self.consumer.consume(self.batch_size, self.poll_seconds)
        if not messages:
            return 0
        writes: list[Write] = []
        stamps: list[int] = []
        bad = good = 0
        for message in messages:
            if message.error() is not None:
                if message.error().code() == kafka.KafkaError._PARTITION_EOF:
                    continue
                raise kafka_client.KafkaError(f"consuming {self.topic}: {message.error()}")
            kind, stamp = message.timestamp()
            event = parse_event(message.value(), schema)
            write = None if isinstance(event, Rejected) else to_features(event, schema)
            if isinstance(event, Rejected):
                self._dead_letter(message, event, stamp if kind else None)
                bad += 1
            else:
                good += 1
                if write is not None:
                    writes.append(write)
                    if kind:
                        stamps.append(stamp)
        result = self.writer.write_many(writes)
        visible_ms = time.time() * 1000
        if bad:
            left = self.producer.flush(30)
            if left:
                raise kafka_client.KafkaError(f"{left} dead letters were not delivered to {self.dead_letters}")
        self.consumer.commit(asynchronous=False)  # after the write: at-least-once
        stats = self.stats
        stats.batches += 1
        stats.events += good
        stats.written += result.written
        stats.skipped += result.skipped
        stats.dead_letters += bad
        stats.add_latencies((visible_ms - s) / 1000 for s in stamps)
        return len(messages)

    def _dead_letter(self, message: Any, rejected: Rejected, stamp: int | None) -> None:
        if self.producer is None:
            self.producer = kafka_client.producer(self.bootstrap)
        view, topic, partition, offset = self.writer.view.name, message.topic(), message.partition(), message.offset()
        record = dead_letter(
            message.value(), rejected, topic=topic, partition=partition, offset=offset, timestamp_ms=stamp, view=view
        )
        # keyed by the record id: at-least-once, so a re-delivered round sends it again; de-duplicate by key
        self.producer.produce(self.dead_letters, record, key=record_id(view, topic, partition, offset).encode())

    def lag(self) -> int | None:
        """Records of the assigned partitions not yet consumed: high watermark minus the position
        (before the first fetch of a partition: its committed offset, else its low watermark)."""
        assignment = self.consumer.assignment()
        if not assignment:
            return None
        positions = self.consumer.position(assignment)
        unknown = [tp for tp in positions if tp.offset < 0]
        committed = (
            {(tp.topic, tp.partition): tp.offset for tp in self.consumer.committed(unknown, timeout=10)}
            if (unknown)
            else {}
        )
        total = 0
        for tp in positions:
            low, high = self.consumer.get_watermark_offsets(tp, timeout=5, cached=False)
            offset = tp.offset if tp.offset >= 0 else committed.get((tp.topic, tp.partition), -1)
            total += max(0, high - (offset if offset >= 0 else low))
        return total

    def report(self) -> dict[str, Any]:
        self.stats.lag = self.lag()
        return self.stats.report(time.monotonic())

    def run(
        self,
        *,
        seconds: float | None = None,
        until_caught_up: bool = False,
        report_seconds: float = 5.0,
        on_report: Callable[[dict[str, Any]], None] | None = None,
        metrics: MetricsTarget | None = None,
    ) -> dict[str, Any]:
        """Consume until ``seconds`` passed, or (``until_caught_up``) the lag is 0 after an empty
        poll, or forever; a progress report every ``report_seconds``.  Returns the last report."""
        metrics = metrics if metrics is not None else MetricsTarget()  # None: no metrics
        started = next_report = time.monotonic()
        report: dict[str, Any] = {}
        try:
            while True:
                handled = self.step()
                now = time.monotonic()
                done = seconds is not None and now - started >= seconds
                if until_caught_up and handled == 0 and self.consumer.assignment() and self.lag() == 0:
                    done = True
                if now >= next_report or done:
                    report = self._publish(metrics, on_report)
                    next_report = now + report_seconds
                if done:
                    return report
        finally:
            self.close()

    def _publish(self, metrics: MetricsTarget, on_report: Callable[[dict[str, Any]], None] | None) -> dict[str, Any]:
        report = self.report()
        view = self.writer.view.name
        log.info("%s", progress_line(report), extra={"view": view})
        if on_report is not None:
            on_report(report)
        if metrics.enabled:
            publish_quietly(stream_progress_samples(view, report), metrics, f"stream_{view}_progress", {"view": view})
        try:
            self.writer.record_progress(report, source=f"consumer:{self.topic}")
        except Exception as exc:  # the status record never fails the stream
            log.warning("could not record the consumer's progress in Redis: %s", exc)
        return report

    def close(self) -> None:
        if self.producer is not None:
            self.producer.flush(30)
        self.consumer.close()
