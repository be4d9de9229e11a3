"""The Spark side of declared streaming features: :mod:`.windows` in a ``transformWithState``.

* :func:`windowed_features` — the streaming frame of a ``stream=`` view: event fields in,
  one row per write out (``withWatermark`` + ``groupBy(id).transformWithState``).
* :func:`window_processor` — the ``StatefulProcessor`` it runs: one ``ValueState`` row per
  entity (:meth:`.windows.EntityState.to_row`), :func:`.windows.fold` on each micro-batch's
  rows, :func:`.windows.expire` on each fired event-time timer, the timers
  :func:`.windows.register_timers` asks for after both, and the state deleted once empty.
* :func:`output_schema` — the rows it emits: the id, every feature, ``_fields`` (which of
  them the row writes; a null value deletes one), ``_ts`` (the as-of, epoch ms) and
  ``_ignored`` (events too old for every window).
* :func:`rocksdb_state_store` — ``transformWithState`` needs the RocksDB state store.

Spark's rules as pinned by tests/spark/streaming/test_window_processor.py (PySpark 4.1.1):
a timer at ``T`` fires in the first micro-batch whose watermark is ``>= T``, after that
batch's data rows; rows with event time below the previous batch's watermark never reach
the processor (docs/streaming.md, "Windows", "The Spark processor").

No pyspark at import: the functions import it when called.  This module and
:mod:`.windows` are pickled by value, so the Python worker Spark starts on the driver (to
read the state schema, within a fixed 10 s) and the executors' workers import nothing of ours.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from . import windows
from .windows import Emission, EntityState, ViewProgram, expire, fold, register_timers

__all__ = [
    "EVENT_TS",
    "ROCKSDB_PROVIDER",
    "STATE_SCHEMA",
    "STATE_STORE_CONF",
    "output_schema",
    "rocksdb_state_store",
    "window_processor",
    "windowed_features",
]

STATE_STORE_CONF = "spark.sql.streaming.stateStore.providerClass"
ROCKSDB_PROVIDER = "org.apache.spark.sql.execution.streaming.state.RocksDBStateStoreProvider"
STATE_SCHEMA = "as_of long, body string"  # EntityState.to_row()
EVENT_TS = "_event_ts"  # the event time as a timestamp: the watermark's column (dropped before the processor sees it)

# Spark SQL type of each event field type (a timestamp reaches the processor as epoch ms)
_SPARK_TYPES = {"long": "long", "double": "double", "string": "string", "boolean": "boolean", "timestamp": "long"}


def output_schema(program: ViewProgram, produced_col: str | None = None) -> str:
    """The DDL of the processor's rows: ``<id>, <features...>, _fields, _ts, _ignored[, <produced_col>]``."""
    kinds = dict(program.event_fields)
    types: dict[str, str] = {}
    for spec in program.aggregates:
        if spec.fn in ("count", "distinct_count"):
            types[spec.name] = "long"
        elif spec.fn == "mean":
            types[spec.name] = "double"
        else:  # sum, min, max keep the column's type (long or double)
            types[spec.name] = _SPARK_TYPES[spec.column_type or "double"]
    for last in program.last_values:
        types[last.name] = _SPARK_TYPES[last.column_type]
    for gap in program.gaps:
        types[gap.name] = "double"
    columns = [f"{program.id_field} {_SPARK_TYPES[kinds[program.id_field]]}"]
    columns += [f"{name} {types[name]}" for name in program.features]
    columns += ["_fields array<string>", "_ts long", "_ignored long"]
    if produced_col:
        columns.append(f"{produced_col} array<long>")
    return ", ".join(columns)


def _row_values(
    program: ViewProgram, key: Any, emission: Emission, produced_col: str | None, produced: list[int] | None
) -> dict[str, Any]:
    """One output row (:func:`output_schema`'s columns) of an emission; unwritten features are null."""
    row: dict[str, Any] = {program.id_field: key}
    row.update((name, emission.values.get(name)) for name in program.features)
    row.update(_fields=list(emission.fields), _ts=emission.as_of, _ignored=emission.ignored)
    if produced_col:
        row[produced_col] = produced or []
    return row


def window_processor(program: ViewProgram, produced_col: str | None = None) -> Any:
    """A ``StatefulProcessor`` computing ``program``'s features, one ``ValueState`` row per entity.

    Input rows: the id, :attr:`.windows.ViewProgram.needed_fields` (timestamps as epoch ms)
    and, if given, ``produced_col`` (a long, e.g. the Kafka record timestamp): the rows
    from the events carry their values in an ``array<long>`` column of that name (timer
    rows an empty one), for the latency measurement.  A row is emitted for each emission
    that writes a field or ignored an event; none when nothing changed.
    """
    from pyspark import cloudpickle
    from pyspark.sql import Row
    from pyspark.sql.streaming.stateful_processor import StatefulProcessor, StatefulProcessorHandle

    for module in (sys.modules[__name__], windows):
        cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
    skipped = {EVENT_TS, produced_col}

    class WindowProcessor(StatefulProcessor):
        def init(self, handle: StatefulProcessorHandle) -> None:
            self.handle = handle
            self.state = handle.getValueState("entity", STATE_SCHEMA)

        def handleInputRows(self, key: Any, rows: Iterator[Any], timerValues: Any) -> Iterator[Any]:
            events: list[dict[str, Any]] = []
            produced: list[int] | None = [] if produced_col else None
            for row in rows:
                fields = row.asDict()
                if produced is not None:
                    produced.append(fields[produced_col])
                events.append({name: value for name, value in fields.items() if name not in skipped})
            state = self._load()
            yield from self._save(key, state, fold(program, state, events), produced)

        def handleExpiredTimer(self, key: Any, timerValues: Any, expiredTimerInfo: Any) -> Iterator[Any]:
            state = self._load()
            emission = expire(program, state, expiredTimerInfo.getExpiryTimeInMs())
            yield from self._save(key, state, emission, [] if produced_col else None)

        def _load(self) -> EntityState:
            row = self.state.get()  # None when absent: one call to the JVM, not two (exists() + get())
            return EntityState() if row is None else EntityState.from_row(row)

        def _save(
            self, key: Any, state: EntityState, emission: Emission | None, produced: list[int] | None
        ) -> Iterator[Any]:
            for timer_ms in register_timers(program, state):
                self.handle.registerTimer(timer_ms)
            if state.is_empty:
                self.state.clear()
            else:
                self.state.update(state.to_row())
            if emission is not None and (emission.fields or emission.ignored):
                yield Row(**_row_values(program, key[0], emission, produced_col, produced))

        def close(self) -> None:
            pass

    return WindowProcessor()


def windowed_features(events: Any, program: ViewProgram, produced_col: str | None = None) -> Any:
    """The streaming frame of ``program``'s writes: :func:`output_schema` rows, in update mode.

    ``events``: a streaming DataFrame holding :attr:`.windows.ViewProgram.needed_fields`
    (with their declared types; the id and time fields never null) and ``produced_col``.
    The watermark is the event time minus the view's allowed lateness; Spark drops the
    rows older than the previous micro-batch's watermark before the processor, and
    counts them in ``stateOperators[].numRowsDroppedByWatermark`` (the ``late`` events).
    Start the query inside :func:`rocksdb_state_store`.
    """
    from pyspark.sql import functions as F

    columns = [
        (F.unix_millis(F.col(name)) if kind == "timestamp" else F.col(name)).alias(name)
        for name, kind in program.needed_fields.items()
    ]
    if produced_col:
        columns.append(F.col(produced_col))
    timed = events.select(*columns).withColumn(EVENT_TS, F.timestamp_millis(F.col(program.time_field)))
    return (
        timed.withWatermark(EVENT_TS, f"{program.lateness_ms // 1000} seconds")
        .groupBy(program.id_field)
        .transformWithState(
            window_processor(program, produced_col), output_schema(program, produced_col), "Update", "EventTime"
        )
    )


@contextmanager
def rocksdb_state_store(spark: Any) -> Iterator[None]:
    """Select the RocksDB state store (``transformWithState`` needs it) while a query starts, then restore."""
    previous = spark.conf.get(STATE_STORE_CONF, None)
    spark.conf.set(STATE_STORE_CONF, ROCKSDB_PROVIDER)
    try:
        yield
    finally:
        if previous is None:
            spark.conf.unset(STATE_STORE_CONF)
        else:
            spark.conf.set(STATE_STORE_CONF, previous)
