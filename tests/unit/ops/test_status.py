"""The verdict of `featurestore status`, from run records and a key sample, at an injected now
(the command against real servers: tests/integration/ops/test_status.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from featurestore.jobs.core.job_metrics import Sample
from featurestore.jobs.examples.fraud.definitions import catalog, merchant_risk, user_profile, user_realtime
from featurestore.jobs.ops.status import (
    AGEING,
    FAILING,
    FRESH,
    NEVER,
    NEVER_WRITTEN,
    REFUSED,
    STALE,
    UNHEALTHY,
    EntitySample,
    format_table,
    status_samples,
    verdict,
    view_status,
)
from featurestore.readers.definitions import FeatureView
from featurestore.readers.plan import Planner
from tests.helpers.post_load_check import NOW_MS, ok_run

HOUR = 3_600_000
NOTHING = EntitySample(keys=0, stamps_ms={}, memory_per_entity=None)


def finished(hours_ago: float) -> str:
    return datetime.fromtimestamp((NOW_MS - hours_ago * HOUR) / 1000, UTC).isoformat()


@pytest.mark.parametrize(
    ("age", "failing", "expected"),
    [(None, False, NEVER), (0, False, FRESH), (50, False, FRESH), (51, False, AGEING), (100, False, AGEING),
     (101, False, STALE), (0, True, FAILING), (None, True, FAILING)],
)  # fmt: skip
def test_verdict_thresholds(age: float | None, failing: bool, expected: str) -> None:
    assert verdict(age, 100, failing) == expected


def test_a_batch_view_is_judged_by_its_last_successful_run() -> None:
    week = user_profile.max_age_seconds / 3600  # 7 days
    runs = [ok_run(finished_at=finished(2))]
    status = view_status(user_profile, runs, NOTHING, NOW_MS)
    assert (status.verdict, status.age_seconds, status.entities_written) == (FRESH, 7200.0, 500)
    assert view_status(user_profile, [ok_run(finished_at=finished(week * 0.6))], NOTHING, NOW_MS).verdict == AGEING
    assert view_status(user_profile, [ok_run(finished_at=finished(week + 1))], NOTHING, NOW_MS).verdict == STALE
    assert view_status(user_profile, [], NOTHING, NOW_MS).verdict == NEVER
    # another view's runs do not count
    other = [ok_run(view="merchant_risk", finished_at=finished(1))]
    assert view_status(user_profile, other, NOTHING, NOW_MS).verdict == NEVER


def test_a_newest_failed_run_makes_the_view_failing_with_its_reason() -> None:
    runs = [
        ok_run(run_id="r2", status="failed_validation", failures=["credit_limit: 1 value below 0"],
               finished_at=finished(1)),
        ok_run(run_id="r1", finished_at=finished(25)),
    ]  # newest first  # fmt: skip
    status = view_status(user_profile, runs, NOTHING, NOW_MS)
    assert status.verdict == FAILING
    assert (status.last_failure_run, status.last_failure_reason) == ("r2", "credit_limit: 1 value below 0")
    assert status.last_success_run == "r1" and status.age_seconds == 25 * 3600
    # a success after the failure heals it
    healed = [ok_run(run_id="r3", finished_at=finished(0.5)), *runs]
    assert view_status(user_profile, healed, NOTHING, NOW_MS).verdict == FRESH


def test_a_streaming_view_is_judged_by_the_newest_value_sampled() -> None:
    stamps = {"user_realtime": [NOW_MS - 30_000, NOW_MS - 90_000]}
    sample = EntitySample(keys=10, stamps_ms=stamps, memory_per_entity=812.0)
    status = view_status(user_realtime, [], sample, NOW_MS)
    assert (status.verdict, status.newest_write_age_seconds, status.keys_with_view) == (FRESH, 30.0, 2)
    old = EntitySample(keys=10, stamps_ms={"user_realtime": [NOW_MS - 2 * HOUR]}, memory_per_entity=None)
    assert view_status(user_realtime, [], old, NOW_MS).verdict == STALE  # max_age: its longest TTL, 1 h
    assert view_status(merchant_risk, [], NOTHING, NOW_MS).verdict == NEVER


def _reader_says_stale(view: FeatureView, ts_ms: int, now_ms: int) -> bool:
    """The reader's stale rule (ReadPlan.decode_row) for a row of ``view`` carrying ``_ts`` ``ts_ms``."""
    plan = Planner(catalog).plan(view)
    row: list[object] = [b"1"] * len(view.features) + [str(ts_ms).encode()]
    _missing, stale = plan.decode_row(row, now_ms, False, [0])
    return stale != 0


def test_a_batch_view_is_dated_by_the_ts_it_wrote_the_readers_clock() -> None:
    """One clock: the run's values carry `_ts` = computed_at (written when the write starts); the run
    ends later.  status must call the view stale exactly when the reader does, not minutes later."""
    max_age_ms = user_profile.max_age_seconds * 1000
    computed_ms = NOW_MS - max_age_ms - 1  # 1 ms past max_age for the reader
    run = ok_run(
        computed_at=finished(-(computed_ms - NOW_MS) / HOUR),
        finished_at=finished(-(computed_ms + 210_000 - NOW_MS) / HOUR),
    )
    assert _reader_says_stale(user_profile, computed_ms, NOW_MS)
    # from the run record alone (no key sampled) and with the keys' `_ts` sampled: the same verdict
    assert view_status(user_profile, [run], NOTHING, NOW_MS).verdict == STALE
    sampled = EntitySample(keys=3, stamps_ms={"user_profile": [computed_ms] * 3}, memory_per_entity=None)
    status = view_status(user_profile, [run], sampled, NOW_MS)
    assert (status.verdict, status.age_seconds) == (STALE, round((max_age_ms + 1) / 1000, 1))
    # 2 ms earlier both call it fresh enough (ageing): the boundary is the same
    assert not _reader_says_stale(user_profile, computed_ms, NOW_MS - 2)
    assert view_status(user_profile, [run], sampled, NOW_MS - 2).verdict == AGEING


def test_a_dead_stream_is_stale_not_never_materialized() -> None:
    """Issue 25 item 2: an hour after the last event the values have expired (per-field TTL), but
    the stream's progress report (fs:stream:<view>) says when it last wrote."""
    max_age_ms = user_realtime.max_age_seconds * 1000
    last_report = {"source": "spark:events", "updated_ms": str(NOW_MS - max_age_ms - 60_000),
                   "events_per_second": "42.0", "written": "9000"}  # fmt: skip
    dead = view_status(user_realtime, [], NOTHING, NOW_MS, last_report)
    assert dead.verdict == STALE and dead.verdict in UNHEALTHY and dead.age_seconds == max_age_ms / 1000 + 60
    assert Sample("featurestore_view_healthy", (("view", "user_realtime"),), 0.0) in status_samples([dead])
    # the same report a minute ago: the stream is alive and writing
    alive = view_status(user_realtime, [], NOTHING, NOW_MS, {**last_report, "updated_ms": str(NOW_MS - 60_000)})
    assert (alive.verdict, alive.age_seconds) == (FRESH, 60.0)
    assert Sample("featurestore_view_healthy", (("view", "user_realtime"),), 1.0) in status_samples([alive])
    # a running stream that wrote nothing within max_age (its reports count no events): stale, not "never"
    idle = {**last_report, "updated_ms": str(NOW_MS - 5_000), "events_per_second": "0.0"}
    assert view_status(user_realtime, [], NOTHING, NOW_MS, idle).verdict == STALE
    assert view_status(user_realtime, [], NOTHING, NOW_MS, idle).headline() == (
        "view 'user_realtime' is stale (its stream wrote nothing within max_age 1h)"
    )  # what the DAG's store_status task fails with
    assert dead.headline() == "view 'user_realtime' is stale (1h1m old, max_age 1h)"
    assert "wrote nothing within max_age" in format_table(
        [view_status(user_realtime, [], NOTHING, NOW_MS, idle)], NOW_MS
    )
    # a report naming its last write is taken at its word
    named = {**idle, "last_write_ms": str(NOW_MS - 10_000)}
    assert view_status(user_realtime, [], NOTHING, NOW_MS, named).verdict == FRESH
    # no stream known and no value: never written (a batch view: never materialized)
    assert view_status(user_realtime, [], NOTHING, NOW_MS).verdict == NEVER_WRITTEN
    assert NEVER_WRITTEN not in UNHEALTHY


def test_an_interrupted_run_is_neither_a_success_nor_a_failure() -> None:
    runs = [
        ok_run(run_id="r2", status="interrupted", finished_at=finished(0.1)),
        ok_run(run_id="r1", finished_at=finished(2)),
    ]
    status = view_status(user_profile, runs, NOTHING, NOW_MS)
    assert (status.verdict, status.last_success_run, status.last_failure_run) == (FRESH, "r1", None)


def test_a_guard_refusal_is_its_own_verdict_with_the_guards_reason() -> None:
    reason = "featurestore:feature_drift: feature 'credit_limit': mean 1 -> 10"
    runs = [ok_run(run_id="r2", status="refused_by_guard", failures=[reason], finished_at=finished(1)),
            ok_run(run_id="r1", finished_at=finished(25))]  # fmt: skip
    status = view_status(user_profile, runs, NOTHING, NOW_MS)
    assert status.verdict == REFUSED and status.verdict in UNHEALTHY
    assert f"user_profile: run r2 was refused by a guard: {reason}" in format_table([status], NOW_MS)
