"""The Spark wrapper of the window engine (featurestore.jobs.streaming.processor), without Spark.

The processor is driven here through an in-memory stand-in for Spark's state handle (the
calls ``transformWithState`` makes); the real thing runs in
tests/spark/streaming/test_window_processor.py.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

from featurestore.jobs.streaming.processor import EVENT_TS, output_schema, window_processor
from featurestore.jobs.streaming.windows import EntityState, ViewProgram, reference
from featurestore.readers import Aggregate, Entity, FeatureView, LastValue, SecondsSincePrevious, StreamSource

M = 60_000
item = Entity("item", join_key="item_id", id_dtype="string")
SCHEMA = "item_id string, user_id long, kind string, price double, seen_at timestamp, event_time timestamp"
VIEW = FeatureView(
    "items",
    item,
    (
        Aggregate("views_10m", "count", where={"kind": "view"}, window=timedelta(minutes=10), slide=60),
        Aggregate("revenue_5m", "sum", "price", window=timedelta(minutes=5)),
        Aggregate("buyers_10m", "distinct_count", "user_id", window=timedelta(minutes=10), slide=60),
        Aggregate("mean_price_5m", "mean", "price", window=timedelta(minutes=5)),
        Aggregate("max_user_5m", "max", "user_id", window=timedelta(minutes=5)),
        LastValue("last_kind", "kind"),
        LastValue("last_seen_at", "seen_at"),
        SecondsSincePrevious("gap_s", dtype="float32"),
    ),
    kind="streaming",
    ttl=timedelta(hours=1),
    stream=StreamSource("clicks", SCHEMA, id_field="item_id", time_field="event_time", allowed_lateness=60),
)
PROGRAM = ViewProgram.of(VIEW)


def test_the_output_schema_holds_the_id_every_feature_and_the_write_columns() -> None:
    assert output_schema(PROGRAM, "kafka_ms") == (
        "item_id string, views_10m long, revenue_5m double, buyers_10m long, mean_price_5m double, max_user_5m long, "
        "last_kind string, last_seen_at long, gap_s double, _fields array<string>, _ts long, _ignored long, "
        "kafka_ms array<long>"
    )


class ValueState:
    def __init__(self) -> None:
        self.row: tuple[Any, ...] | None = None

    def exists(self) -> bool:
        return self.row is not None

    def get(self) -> tuple[Any, ...] | None:
        return self.row

    def update(self, row: tuple[Any, ...]) -> None:
        self.row = tuple(row)

    def clear(self) -> None:
        self.row = None


class Handle:
    """What the processor uses of Spark's StatefulProcessorHandle: one value state and timers."""

    def __init__(self) -> None:
        self.state = ValueState()
        self.timers: set[int] = set()

    def getValueState(self, name: str, schema: str) -> ValueState:
        assert (name, schema) == ("entity", "as_of long, body string")
        return self.state

    def registerTimer(self, ms: int) -> None:
        self.timers.add(ms)


class Expired:
    def __init__(self, ms: int) -> None:
        self.ms = ms

    def getExpiryTimeInMs(self) -> int:
        return self.ms


def rows_of(events: list[dict[str, Any]]) -> Iterator[Any]:
    from pyspark.sql import Row

    for event in events:
        yield Row(**event, **{EVENT_TS: None, "kafka_ms": event["event_time"] + 5})


def test_rows_fold_timers_fire_and_an_empty_state_is_deleted() -> None:
    processor, handle = window_processor(PROGRAM, "kafka_ms"), Handle()
    processor.init(handle)
    events = [
        {"item_id": "i", "user_id": 7, "kind": "view", "price": None, "seen_at": 1, "event_time": 2 * M},
        {"item_id": "i", "user_id": 8, "kind": "buy", "price": 2.5, "seen_at": 2, "event_time": 3 * M + 1},
    ]
    (out,) = processor.handleInputRows(("i",), rows_of(events), None)
    assert out._ts == 3 * M + 1 and out._ignored == 0 and out.kafka_ms == [2 * M + 5, 3 * M + 6]
    assert {name: out[name] for name in out._fields} == reference(PROGRAM, events, 3 * M + 1)
    assert handle.timers == {5 * M, 12 * M, 13 * M} == EntityState.from_row(handle.state.row).timers  # type: ignore[arg-type]
    fired = []
    while handle.timers:  # fire every timer in order, as the watermark passes them
        ms = min(handle.timers)
        handle.timers.discard(ms)
        fired.append(ms)
        for row in processor.handleExpiredTimer(("i",), None, Expired(ms)):
            assert (row._ts, row._ignored, row.kafka_ms) == (ms, 0, [])
            assert row._fields == ["views_10m", "revenue_5m", "buyers_10m", "mean_price_5m", "max_user_5m"]
            expected = reference(PROGRAM, events, ms)
            assert {name: row[name] for name in row._fields} == {name: expected[name] for name in row._fields}
    # the windows empty at 13:00; the state is forgotten an hour (the last values' TTL) after the last event
    assert fired == [5 * M, 12 * M, 13 * M, 63 * M + 1]
    assert handle.state.row is None


def test_nothing_is_emitted_for_a_timer_that_changes_nothing() -> None:
    processor, handle = window_processor(PROGRAM), Handle()
    processor.init(handle)
    event = {"item_id": "i", "user_id": 7, "kind": "view", "price": 1.0, "seen_at": 1, "event_time": 10 * M}
    assert len(list(processor.handleInputRows(("i",), rows_of([event]), None))) == 1
    assert list(processor.handleExpiredTimer(("i",), None, Expired(10 * M))) == []  # at the as-of: no change
    assert handle.state.row is not None


def test_the_pickled_processor_imports_nothing_of_ours_where_it_is_unpickled() -> None:
    # Spark's driver-side Python worker unpickles it within a fixed 10 s: it must not import
    # featurestore (and redis-py with it); the module and the engine travel by value.
    from pyspark import cloudpickle

    blob = cloudpickle.dumps(window_processor(PROGRAM, "kafka_ms"))
    code = (
        "import pickle, sys; processor = pickle.loads(sys.stdin.buffer.read()); "
        "print(sorted(m for m in sys.modules if m.startswith('featurestore')))"
    )
    out = subprocess.run([sys.executable, "-c", code], input=blob, capture_output=True, check=True)
    assert out.stdout.decode().strip() == "[]"


def test_importing_the_processor_loads_no_spark() -> None:
    code = "import sys, featurestore.jobs.streaming.processor; print('pyspark' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
