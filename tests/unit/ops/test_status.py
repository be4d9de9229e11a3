"""The verdict of `featurestore status`, from run records and a key sample, at an injected now
(the command against real servers: tests/integration/ops/test_status.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from featurestore.jobs.examples.fraud.definitions import merchant_risk, user_profile, user_realtime
from featurestore.jobs.ops.status import AGEING, FAILING, FRESH, NEVER, STALE, EntitySample, verdict, view_status
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
