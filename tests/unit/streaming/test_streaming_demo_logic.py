"""The streaming demo's logic without Spark: the state fold against the reference (the commands'
arguments: tests/unit/streaming/test_kafka_events.py; end to end: tests/e2e/streaming/)."""

from __future__ import annotations

from typing import Any

from featurestore.jobs.dev.streaming_demo import (
    EventGenerator,
    TxnEvent,
    count_late,
    expected_features,
    features_of,
    fold_events,
)

T0 = 1_764_150_000_000


def test_state_fold_matches_the_reference() -> None:
    generator = EventGenerator(users=5, seed=3, late_share=0.3)
    produced: list[TxnEvent] = []
    for tick in range(40):
        produced += generator.events(6, T0 + tick * 20_000)
    assert count_late(produced) > 10  # the generator does produce late events
    expected = expected_features(produced)
    for user, want in expected.items():
        state: tuple[int, int, Any, Any, list[int]] = (-1, -1, None, None, [])
        mine = [e for e in produced if e.user_id == user]
        for start in range(0, len(mine), 7):  # in micro-batches, in arrival order
            state = fold_events(state, ((e.event_ms, e.amount, e.country) for e in mine[start : start + 7]))
        got = features_of(user, state)
        assert got["event_time"] == want["event_ms"]
        for name in ("txn_count_5m", "last_amount", "last_country", "seconds_since_prev_txn"):
            assert got[name] == want[name], (user, name)
