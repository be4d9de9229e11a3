"""The window engine in Spark (featurestore.jobs.streaming.processor) against the written semantics.

A file source feeds a small declared view, one file per micro-batch, in two runs of the same
query (the second restarted from the first's checkpoint).  Every output row is applied, in
order, to "what Redis would hold" (a null deletes the field) and compared with
``windows.reference`` over the events that reached the processor, at the row's as-of: the
reference is the brute-force computation of docs/streaming.md, "Windows".  The events hold
out-of-order, late-within-lateness and late-beyond-watermark ones, a quiet gap that empties
a window (another entity's later event moves the watermark so the timers fire), events at and
just above the watermark, and one older than every window of its entity (ignored).  It also
pins Spark's rules: a timer at ``T`` fires once the watermark is ``>= T``; a row is dropped as
late when its event time is at or below the watermark of the micro-batch *before* its own.
"""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from featurestore.jobs.streaming.processor import rocksdb_state_store, windowed_features
from featurestore.jobs.streaming.windows import ViewProgram, reference
from featurestore.readers import Aggregate, Entity, FeatureView, LastValue, SecondsSincePrevious, StreamSource

Event = dict[str, Any]
Rows = list[tuple[int, Any]]  # (batch id, output row)
M = 60_000  # one minute in ms
B = 2_833_333 * 10 * M  # epoch-aligned to 10 minutes (2023-11-14T22:10Z)
SCHEMA = "user_id long, kind string, price double, item string, event_time timestamp"

user = Entity("user", join_key="user_id")
source = StreamSource("clicks", SCHEMA, id_field="user_id", time_field="event_time", allowed_lateness=60)
VIEW = FeatureView(
    "clicks_view",
    user,
    (
        Aggregate("views_10m", "count", where={"kind": "view"}, window=timedelta(minutes=10), slide=60),
        Aggregate("spend_5m", "sum", "price", window=timedelta(minutes=5), slide=60),
        Aggregate("items_10m", "distinct_count", "item", window=timedelta(minutes=10), slide=60),
        LastValue("last_item", "item"),
        SecondsSincePrevious("gap_s"),
    ),
    kind="streaming",
    ttl=timedelta(hours=1),
    stream=source,
)


def at(minutes: float) -> int:
    return B + round(minutes * M)


def ev(uid: int, minutes: float, kind: str = "view", item: str | None = None, price: float | None = None) -> Event:
    return {"user_id": uid, "kind": kind, "price": price, "item": item, "event_time": at(minutes)}


# One file per micro-batch.  The watermark of batch N (timers fire up to it): the largest event time of
# batches < N minus 1 minute; Spark drops a row as late if it is at or below the watermark of batch N-1.
RUN_1 = [
    [ev(1, 0.5, item="A"), ev(1, 1, "buy", "B", 10.0), ev(1, 2, item="A"), ev(2, 1.5, item="C")],  # WM: none
    [ev(1, 1.75, item="C"), ev(1, 3, "buy", "A", 5.5), ev(2, 3.5, item="C")],  # WM 1:00: 1:45 out of order, in
    # WM 2:30, late below 1:00: 0:10 is dropped; 1:30 is below the watermark but not the previous one, so
    # it counts; 2:40 is late but within the lateness; user 2's 14:00 moves the watermark to 13:00
    [ev(1, 1 / 6, item="Z"), ev(1, 1.5, item="G"), ev(1, 2 + 2 / 3, item="D"), ev(2, 14, item="C")],
    # WM 13:00, late below 2:30: user 2's 2:45 reaches the processor, older than every window of user 2
    # (ignored); then user 1's timers fire and its windows empty (one at 13:00 exactly: the >= rule)
    [ev(2, 2.75, item="Q")],
]
RUN_2 = [  # restarted from the checkpoint: the state, the timers and the watermark (13:00) carry on
    [ev(1, 15, item="E"), ev(1, 12.5, item="Y"), ev(3, 13, item="X"), ev(3, 14.5, "buy", "F", 2.25)],
    [ev(2, 25, item="C")],  # WM 24:00: user 3's windows empty
]
LATE = {(1, at(1 / 6)), (1, at(12.5)), (3, at(13))}  # at or below the watermark of the batch before theirs


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat(timespec="milliseconds")


def write_files(folder: Path, batches: list[list[dict[str, Any]]], first: int) -> None:
    """One JSON-lines file per batch, with increasing modification times (the file source's order)."""
    for number, batch in enumerate(batches, start=first):
        path = folder / f"events-{number:02d}.json"
        path.write_text("".join(json.dumps({**e, "event_time": iso(e["event_time"])}) + "\n" for e in batch))
        stamp = time.time() - 600 + number
        os.utime(path, (stamp, stamp))


def run(spark: Any, folder: Path, checkpoint: Path, program: ViewProgram) -> tuple[Rows, list[int], int]:
    """Process everything in ``folder``, one file per micro-batch: the output rows by batch id, the ids
    of the batches that read a file (in order), and the events Spark dropped as late."""
    rows: list[tuple[int, Any]] = []

    def collect(frame: Any, batch_id: int) -> None:
        rows.extend((batch_id, row) for row in frame.collect())

    events = spark.readStream.schema(SCHEMA).option("maxFilesPerTrigger", 1).json(str(folder))
    with rocksdb_state_store(spark):
        query = (
            windowed_features(events, program)
            .writeStream.foreachBatch(collect)
            .outputMode("update")
            .option("checkpointLocation", str(checkpoint))
            .trigger(availableNow=True)
            .start()
        )
    try:
        assert query.awaitTermination(120), "the query did not finish"
    finally:
        query.stop()
    assert query.exception() is None
    progress = query.recentProgress
    data_batches = [p["batchId"] for p in progress if p["numInputRows"] > 0]
    late = sum(op["numRowsDroppedByWatermark"] for p in progress for op in p["stateOperators"])
    return rows, data_batches, late


def check_rows(
    program: ViewProgram,
    rows: list[tuple[int, Any]],
    files: list[list[dict[str, Any]]],
    data_batches: list[int],
    history: dict[int, list[dict[str, Any]]],
    store: dict[int, dict[str, Any]],
) -> list[tuple[int, int, int]]:
    """Apply the rows in order to ``store`` (what Redis would hold), each checked against the reference
    over the events that reached the processor so far; the ``(user, as_of, ignored)`` of each row."""
    assert len(data_batches) == len(files), data_batches
    applied = []
    for batch_id in sorted({b for b, _ in rows} | set(data_batches)):
        if batch_id in data_batches:
            for event in files[data_batches.index(batch_id)]:
                if (event["user_id"], event["event_time"]) not in LATE:
                    history.setdefault(event["user_id"], []).append(event)
        for row in sorted((r for b, r in rows if b == batch_id), key=lambda r: (r.user_id, r._ts)):
            held = store.setdefault(row.user_id, {})
            for name in row._fields:
                if row[name] is None:
                    held.pop(name, None)
                else:
                    held[name] = row[name]
            expected = reference(program, history[row.user_id], row._ts)
            assert held == {k: v for k, v in expected.items() if v is not None}, (batch_id, row)
            applied.append((row.user_id, row._ts, row._ignored))
    return applied


def test_windowed_features_in_spark_equal_the_reference_across_a_restart(spark: Any, tmp_path: Path) -> None:
    program = ViewProgram.of(VIEW)
    folder, checkpoint = tmp_path / "events", tmp_path / "checkpoint"
    folder.mkdir()
    history: dict[int, list[dict[str, Any]]] = {}
    store: dict[int, dict[str, Any]] = {}

    write_files(folder, RUN_1, first=0)
    rows, data_batches, late = run(spark, folder, checkpoint, program)
    applied = check_rows(program, rows, RUN_1, data_batches, history, store)
    assert late == 1
    assert (2, at(14), 1) in applied, applied  # 2:45: ignored, user 2's as-of unchanged
    assert sum(ignored for _, _, ignored in applied) == 1
    assert (1, at(13), 0) in applied, applied  # the watermark 13:00 fires user 1's timer at 13:00 (>=)
    assert store[1] == {"last_item": "A", "gap_s": 20.0}  # its windows emptied: their fields deleted
    assert store[2] == {"views_10m": 1, "items_10m": 1, "last_item": "C", "gap_s": 630.0}

    write_files(folder, RUN_2, first=len(RUN_1))
    rows, data_batches, late = run(spark, folder, checkpoint, program)
    applied = check_rows(program, rows, RUN_2, data_batches, history, store)
    assert data_batches[0] > 2  # the restart went on from the checkpoint
    assert late == 2  # 12:30, and 13:00 at the watermark: the state's watermark survived the restart
    assert store[1] == {"views_10m": 1, "items_10m": 1, "last_item": "E", "gap_s": 720.0}
    assert store[2] == {"views_10m": 1, "items_10m": 1, "last_item": "C", "gap_s": 660.0}
    assert store[3] == {"last_item": "F"}  # its sum emptied at 19:00, its distinct count at 24:00
    assert (3, at(24), 0) in applied, applied
