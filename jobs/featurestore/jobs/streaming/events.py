"""Events from Kafka: the declared schema, parsing, dead letters and record ids, lag (pure).

Nothing here does I/O; the Spark job (:mod:`.kafka_job`) and the plain consumer
(:mod:`.kafka_consumer`) both parse with :func:`parse_event`, so a record is good or bad
for the same reason on both paths.

* :class:`EventSchema` — the event's JSON fields and their types, which one is the entity
  id and which the event time: a view's ``StreamSource`` (:meth:`EventSchema.of`), or a
  DDL-like string (``"user_id long, price double, event_time timestamp"``).
* :func:`parse_event` — one Kafka value to a typed event (the event time as epoch ms), or
  a :class:`Rejected` with its reason: ``unparseable``, ``not_an_object``, ``missing_id``,
  ``missing_event_time``, ``wrong_type``.  A bad record never raises.
* :func:`dead_letter` — the JSON written to the dead-letter topic for a rejected record
  (reason, detail, where it came from, the original value; with a view, its
  :func:`record_id` ``<view>/<topic>/<partition>/<offset>``, also the record's key).
* :func:`percentile`, :func:`lag_of_progress`, :class:`StreamStats` — what the progress
  lines and the metrics report: events/s, event -> Redis latency p50/p99, consumer lag,
  and for the Spark job of a declared view its ``late`` and ``ignored`` events.
"""

from __future__ import annotations

import bisect
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from featurestore.jobs.core.control_plane import progress_key
from featurestore.jobs.core.job_metrics import STREAM_LATENCY_BUCKETS
from featurestore.readers.definitions import EVENT_FIELD_TYPES, StreamSource, parse_event_schema
from featurestore.readers.errors import ConfigurationError, DefinitionError

__all__ = [
    "REASONS",
    "EventSchema",
    "Rejected",
    "StreamStats",
    "dead_letter",
    "lag_of_progress",
    "parse_event",
    "percentile",
    "progress_fields",
    "progress_key",
    "progress_line",
    "record_id",
]

TYPES = EVENT_FIELD_TYPES
REASONS = ("unparseable", "not_an_object", "missing_id", "missing_event_time", "wrong_type")
_MAX_LONG = 2**63 - 1


@dataclass(frozen=True)
class Rejected:
    """A record that is not a valid event: ``reason`` is one of :data:`REASONS`."""

    reason: str
    detail: str


@dataclass(frozen=True)
class EventSchema:
    """The JSON fields of an event and their types; ``id_field`` and ``time_field`` among them.

    The id field must be ``long`` or ``string``, the time field ``timestamp`` (an ISO-8601
    string, UTC when it has no offset, or epoch milliseconds) or ``long`` (epoch ms).
    Other fields may be absent or null (the feature is then null: deleted in Redis).
    """

    fields: tuple[tuple[str, str], ...]
    id_field: str = "user_id"
    time_field: str = "event_time"

    @classmethod
    def parse(cls, ddl: str, id_field: str = "user_id", time_field: str = "event_time") -> EventSchema:
        """From ``"name type, name type, ..."`` (types: long, double, string, boolean, timestamp)."""
        try:
            fields = parse_event_schema(ddl)
        except DefinitionError as exc:
            raise ConfigurationError(str(exc)) from None
        schema = cls(fields, id_field, time_field)
        types = dict(fields)
        if types.get(id_field) not in ("long", "string"):
            raise ConfigurationError(f"event schema: the id field {id_field!r} must be a long or string field")
        if types.get(time_field) not in ("timestamp", "long"):
            raise ConfigurationError(f"event schema: the time field {time_field!r} must be a timestamp or long field")
        return schema

    @classmethod
    def of(cls, source: StreamSource) -> EventSchema:
        """The schema of a declared stream (already checked when the source was built)."""
        return cls(source.fields, source.id_field, source.time_field)

    @property
    def types(self) -> dict[str, str]:
        return dict(self.fields)

    def require(self, needed: Mapping[str, str]) -> None:
        """Refuse a schema without the fields a feature computation needs (name -> type)."""
        types = self.types
        for name, kind in needed.items():
            if types.get(name) != kind:
                raise ConfigurationError(f"event schema: the features need a {kind} field {name!r}; schema: {self}")

    def __str__(self) -> str:
        return ", ".join(f"{name} {kind}" for name, kind in self.fields)


def _timestamp_ms(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, float) and math.isfinite(value):
        return int(value)
    if isinstance(value, str):
        try:
            stamp = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        except ValueError:
            return None
        if stamp.tzinfo is None:
            stamp = stamp.replace(tzinfo=UTC)
        return round(stamp.timestamp() * 1000)
    return None


def _typed(value: Any, kind: str) -> tuple[bool, Any]:
    """(ok, converted) for one JSON value of a declared type."""
    if kind == "long":
        ok = isinstance(value, int) and not isinstance(value, bool) and -_MAX_LONG - 1 <= value <= _MAX_LONG
        return ok, value
    if kind == "double":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
        return ok, float(value) if ok else value
    if kind == "string":
        return isinstance(value, str), value
    if kind == "boolean":
        return isinstance(value, bool), value
    ms = _timestamp_ms(value)
    return ms is not None, ms


def _show(value: Any) -> str:
    text = json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def parse_event(value: bytes | str | None, schema: EventSchema) -> dict[str, Any] | Rejected:
    """One Kafka record value to ``{field: typed value}`` (the time field as epoch ms), or why not."""
    if value is None:
        return Rejected("unparseable", "the record has no value")
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError) as exc:
        return Rejected("unparseable", f"not JSON: {exc}")
    if not isinstance(doc, dict):
        return Rejected("not_an_object", f"a JSON {type(doc).__name__}, not an object")
    out: dict[str, Any] = {}
    for name, kind in schema.fields:
        raw = doc.get(name)
        if raw is None:
            if name == schema.id_field:
                return Rejected("missing_id", f"no entity id {name!r}")
            if name == schema.time_field:
                return Rejected("missing_event_time", f"no event time {name!r}")
            out[name] = None
            continue
        ok, typed = _typed(raw, "timestamp" if name == schema.time_field else kind)
        if not ok:
            return Rejected("wrong_type", f"{name!r} must be a {kind}, got {_show(raw)}")
        out[name] = typed
    return out


def record_id(view: str, topic: str, partition: int, offset: int) -> str:
    """The id of a record as one view's job saw it: ``<view>/<topic>/<partition>/<offset>``.

    Dead letters are keyed by it: they are at-least-once (a job killed between sending
    them and committing its micro-batch sends them again on restart), so a reader
    de-duplicates by this key, or the dead-letter topic is compacted.
    """
    return f"{view}/{topic}/{partition}/{offset}"


def dead_letter(
    value: bytes | None,
    rejected: Rejected,
    *,
    topic: str,
    partition: int,
    offset: int,
    timestamp_ms: int | None,
    view: str | None = None,
) -> bytes:
    """The dead-letter record of a rejected event: why, where from, and the value as it came.

    With ``view`` it also holds ``view`` and ``record_id`` (:func:`record_id`, the record's key).
    """
    ids = {} if view is None else {"view": view, "record_id": record_id(view, topic, partition, offset)}
    return json.dumps(
        {
            **ids,
            "reason": rejected.reason,
            "detail": rejected.detail,
            "topic": topic,
            "partition": partition,
            "offset": offset,
            "timestamp_ms": timestamp_ms,
            "value": None if value is None else value.decode("utf-8", errors="replace"),
        },
        separators=(",", ":"),
    ).encode()


# --- what the progress lines report --------------------------------------------------------


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q``-th percentile (0..100, nearest rank) of ``values``; None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return float(ordered[min(rank, len(ordered)) - 1])


def lag_of_progress(progress: Mapping[str, Any]) -> int | None:
    """Records not yet read, summed over partitions, from a Kafka source's query progress.

    ``latestOffset`` (the topic's end when the micro-batch was planned) minus ``endOffset``
    (where the micro-batch stopped), per partition; None when the progress has neither.
    """
    total = None
    for source in progress.get("sources") or ():
        latest, end = _offsets(source.get("latestOffset")), _offsets(source.get("endOffset"))
        if latest is None or end is None:
            continue
        for key, position in latest.items():
            total = (total or 0) + max(0, position - end.get(key, 0))
    return total


def _offsets(value: Any) -> dict[tuple[str, str], int] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if not isinstance(value, dict):
        return None
    out = {}
    for topic, partitions in value.items():
        if isinstance(partitions, dict):
            for partition, offset in partitions.items():
                if isinstance(offset, int):
                    out[(topic, str(partition))] = offset
    return out


@dataclass
class StreamStats:
    """Counters and latency samples of a running stream, for its progress lines and metrics.

    ``add_latencies`` takes event -> visible-in-Redis latencies in seconds; :meth:`report`
    returns events/s since the previous report, p50/p99 of the latencies since then (for the
    progress line and ``featurestore status``), the totals, and the latency histogram since the
    start (every latency counted in its :data:`STREAM_LATENCY_BUCKETS` bucket: the metrics' raw
    counts).  At most ``max_samples`` latencies are kept per report (evenly thinned); the
    histogram counts them all.
    """

    started: float
    events: int = 0
    written: int = 0
    skipped: int = 0
    dead_letters: int = 0
    # the Spark job of declared views only (None: not reported): events dropped by the watermark before the
    # computation, and events too old for every window of their entity
    late: int | None = None
    ignored: int | None = None
    batches: int = 0
    lag: int | None = None
    max_samples: int = 100_000
    _latencies: list[float] = field(default_factory=list)
    _last_report: float | None = None
    _events_at_last_report: int = 0
    # per bucket of STREAM_LATENCY_BUCKETS (and one above the last bound): latencies counted since the start
    _latency_counts: list[int] = field(default_factory=lambda: [0] * (len(STREAM_LATENCY_BUCKETS) + 1))
    _latency_sum: float = 0.0

    def add_latencies(self, latencies: Iterable[float]) -> None:
        added = list(latencies)
        self._latencies.extend(added)
        counts = self._latency_counts
        for latency in added:
            counts[bisect.bisect_left(STREAM_LATENCY_BUCKETS, latency)] += 1  # le: a latency on a bound is in it
        self._latency_sum += math.fsum(added)
        if len(self._latencies) > self.max_samples:
            self._latencies = self._latencies[::2]

    def report(self, now: float) -> dict[str, Any]:
        """Rates and percentiles since the previous report (or the start), and the totals."""
        since = self._last_report if self._last_report is not None else self.started
        seconds = max(now - since, 1e-9)
        latencies = self._latencies
        out = {
            "events": self.events,
            "events_per_second": (self.events - self._events_at_last_report) / seconds,
            "written": self.written,
            "skipped": self.skipped,
            "dead_letters": self.dead_letters,
            "batches": self.batches,
            "latency_p50_seconds": percentile(latencies, 50),
            "latency_p99_seconds": percentile(latencies, 99),
            "lag": self.lag,
            "latency_buckets": self._cumulative_buckets(),
            "latency_sum_seconds": self._latency_sum,
            "latency_count": sum(self._latency_counts),
        }
        if self.late is not None or self.ignored is not None:
            out.update(late=self.late or 0, ignored=self.ignored or 0)
        self._latencies = []
        self._last_report = now
        self._events_at_last_report = self.events
        return out

    def _cumulative_buckets(self) -> list[tuple[float, int]]:
        """``(le, latencies <= le)`` per bound, as a Prometheus histogram's buckets."""
        running, buckets = 0, []
        for bound, count in zip(STREAM_LATENCY_BUCKETS, self._latency_counts):
            running += count
            buckets.append((bound, running))
        return buckets


def progress_fields(report: Mapping[str, Any], source: str, now_ms: int) -> dict[str, str]:
    """A progress report as the fields of :func:`progress_key` (absent numbers are left out)."""
    fields = {"source": source, "updated_ms": str(now_ms)}
    counters: tuple[str, ...] = ("events", "events_per_second", "written", "skipped", "dead_letters", "late")
    counters += ("ignored", "batches")
    counters += ("lag",)
    for name in counters:
        value = report.get(name)
        if value is not None:
            fields[name] = f"{value:.1f}" if isinstance(value, float) else str(value)
    for name in ("latency_p50_seconds", "latency_p99_seconds"):
        value = report.get(name)
        if value is not None:
            fields[name.replace("_seconds", "_ms")] = f"{value * 1000:.1f}"
    return fields


def _late_part(report: Mapping[str, Any]) -> str:
    """``, N late, M ignored`` when the report has them (the Spark job; the plain consumer has no windows)."""
    late, ignored = report.get("late"), report.get("ignored")
    if late is None and ignored is None:
        return ""
    return f", {late or 0} late, {ignored or 0} ignored"


def progress_line(report: Mapping[str, Any]) -> str:
    """One human line of a :meth:`StreamStats.report`."""

    def ms(value: float | None) -> str:
        return "-" if value is None else f"{value * 1000:.0f} ms"

    lag = report.get("lag")
    return (
        f"{report['events']} events ({report['events_per_second']:.0f}/s), {report['written']} written, "
        f"{report['skipped']} skipped (out of order), {report['dead_letters']} dead letters"
        f"{_late_part(report)}; "
        f"event->Redis p50 {ms(report['latency_p50_seconds'])} p99 {ms(report['latency_p99_seconds'])}; "
        f"lag {'-' if lag is None else lag}"
    )
