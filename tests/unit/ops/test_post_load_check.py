"""The post-load check without a server: the verdict, the URL of an Airflow connection, entity ids of keys
(with real Redis reads: tests/integration/ops/test_post_load_check.py)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from featurestore.jobs.core.run_records import RunRecord
from featurestore.jobs.examples.fraud.definitions import merchant_risk, user_profile
from featurestore.jobs.ops.post_load_check import SampleStats, connection_url, evaluate, parse_entity_id
from featurestore.readers import ConfigurationError, codec
from tests.helpers.post_load_check import NOW_MS, ok_run


def fresh_sample(**changes: object) -> SampleStats:
    sample = SampleStats(keys_scanned=120, carriers=100, ages_seconds=(300.0,) * 100)
    return replace(sample, **changes)  # type: ignore[arg-type]


def verdict(run: RunRecord | None = None, sample: SampleStats | None = None, **options: int) -> list[str]:
    return evaluate(
        user_profile, "2025-06-14", run if run is not None else ok_run(), sample or fresh_sample(),
        sample_size=options.get("sample_size", 100), max_age_seconds=options.get("max_age_seconds", 86_400),
        now_ms=NOW_MS,
    )  # fmt: skip


# --- the verdict ------------------------------------------------------------------------


def test_a_good_load_passes() -> None:
    assert verdict() == []


def test_a_small_run_needs_only_as_many_carriers_as_it_wrote() -> None:
    assert verdict(ok_run(rows_out=3, rows_written=3, entities_written=3), fresh_sample(carriers=3)) == []


@pytest.mark.parametrize(
    ("run", "expected"),
    [
        (ok_run(status="failed_validation"), "ended with status 'failed_validation'"),
        (ok_run(rows_failed=2, rows_written=498), "failed to write 2 rows"),
        (ok_run(rows_written=499), "counts do not add up: rows_written=499 + rows_failed=0 != rows_out=500"),
        (ok_run(rows_out=0, rows_written=0, entities_written=0), "wrote no rows"),
        (ok_run(entities_written=501), "says it wrote 501 entities from 500 rows"),
        (ok_run(ds="2025-06-13"), "is for ds 2025-06-13, not 2025-06-14"),
    ],
)
def test_a_bad_run_record_fails(run: RunRecord, expected: str) -> None:
    problems = verdict(run)
    assert any(expected in p for p in problems), problems
    assert all("'user_profile'" in p for p in problems)  # every problem names the view


def test_no_run_record_fails() -> None:
    problems = evaluate(
        user_profile, "2025-06-14", None, fresh_sample(), sample_size=100, max_age_seconds=86_400, now_ms=NOW_MS
    )
    assert problems == ["view 'user_profile': no run record for ds 2025-06-14 in the run log (did the job run?)"]


def test_too_few_entities_carrying_the_view_fails() -> None:
    problems = verdict(sample=fresh_sample(carriers=7, ages_seconds=(300.0,) * 7, scan_complete=True))
    assert problems == [
        "view 'user_profile': only 7 entities carry the view among all 120 'user' keys in Redis, "
        "expected at least 100 (the run wrote 500 entities)"
    ]


def test_values_older_than_the_limit_fail() -> None:
    sample = fresh_sample(ages_seconds=(300.0,) * 98 + (90_000.0, 100_000.0))
    problems = verdict(sample=sample, max_age_seconds=86_400)
    assert len(problems) == 1
    assert "2 of 100 sampled entities have _ts:user_profile older than the limit of 1d" in problems[0]
    assert "(oldest 1d4h)" in problems[0]


def test_values_not_written_by_this_run_fail() -> None:
    # every value is within max_age, but all predate the run: the job wrote somewhere else
    problems = verdict(sample=fresh_sample(ages_seconds=(7_200.0,) * 100))
    assert len(problems) == 1 and "no sampled entity holds values of run r1" in problems[0]


def test_a_view_missing_from_the_registry_fails() -> None:
    problems = verdict(sample=fresh_sample(registry="not materialized"))
    assert len(problems) == 1 and "registry says 'not materialized'" in problems[0]


def test_timestamps_without_any_feature_fail() -> None:
    empty = dict.fromkeys(user_profile.feature_names, 100)
    problems = verdict(sample=fresh_sample(missing_by_feature=empty))
    assert problems == ["view 'user_profile': the sampled entities hold a _ts:user_profile but none of its features"]
    # some features null for everyone is legitimate (a null is an absent field)
    assert verdict(sample=fresh_sample(missing_by_feature={"credit_limit": 100})) == []


# --- the Redis URL of an Airflow connection ----------------------------------------------


def test_connection_url_from_connection_fields() -> None:
    assert connection_url(host="cache", port=6380) == "redis://cache:6380"
    assert connection_url(host="cache", login="svc", password="p@ss/w:rd", schema="2") == (
        "redis://svc:p%40ss%2Fw%3Ard@cache:6379/2"
    )
    assert connection_url(host="cache", password="pw", extra={"ssl": True, "ssl_cert_reqs": "none"}) == (
        "rediss://:pw@cache:6379?ssl_cert_reqs=none"
    )
    assert connection_url(host="seed", extra={"cluster": True, "read_from_replicas": "true", "db": 0}) == (
        "redis://seed:6379/0?cluster=true&read_from_replicas=true"
    )
    assert connection_url(host="cache", conn_type="rediss").startswith("rediss://cache:6379")
    with pytest.raises(ConfigurationError, match="no host"):
        connection_url(host=None)


# --- entity ids of keys ---------------------------------------------------------------------


def test_entity_ids_round_trip_through_keys() -> None:
    user, merchant = user_profile.entity, merchant_risk.entity
    assert parse_entity_id(user, codec.entity_key(user, 42)) == 42
    assert parse_entity_id(merchant, codec.entity_key(merchant, "m0007")) == "m0007"
    with pytest.raises(Exception, match="not a key of entity 'merchant'"):
        parse_entity_id(merchant, codec.entity_key(user, 42))
