"""The streaming demo's logic without Spark: the declared view's engine (:mod:`.windows`, folded in
micro-batches as the processor does) ends where the demo's reference says (the commands'
arguments: tests/unit/streaming/test_kafka_events.py; end to end: tests/e2e/streaming/)."""

from __future__ import annotations

from typing import Any

from featurestore.jobs.dev.streaming_demo import (
    MAX_LATE_MS,
    TxnEvent,
    WithinLateness,
    count_late,
    expected_features,
    program,
)
from featurestore.jobs.streaming.windows import EntityState, fold

T0 = 1_764_150_000_000


def test_the_engine_in_micro_batches_matches_the_reference() -> None:
    generator = WithinLateness(users=5, seed=3, late_share=0.3)
    produced: list[TxnEvent] = []
    for tick in range(40):
        batch = generator.events(6, T0 + tick * 2_000)
        assert all(T0 + tick * 2_000 - e.event_ms <= MAX_LATE_MS for e in batch)  # within the lateness
        produced += batch
    assert count_late(produced) > 10  # the generator does produce late events
    expected = expected_features(produced)
    compiled = program()
    for user, want in expected.items():
        state, served = EntityState(), {}  # served: what Redis would hold (a null deletes the field)
        mine = [
            {"user_id": e.user_id, "amount": e.amount, "country": e.country, "event_time": e.event_ms}
            for e in produced
            if e.user_id == user
        ]
        for start in range(0, len(mine), 7):  # in micro-batches, in arrival order
            emission = fold(compiled, state, mine[start : start + 7])
            if emission is not None:
                for name in emission.fields:
                    served[name] = emission.values[name]
                as_of = emission.as_of
        assert as_of == want["event_ms"] == max(e["event_time"] for e in mine)
        got: dict[str, Any] = {name: value for name, value in served.items() if value is not None}
        assert got == {name: want[name] for name in compiled.features if want[name] is not None}, user
