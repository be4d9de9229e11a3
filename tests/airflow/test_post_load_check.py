"""The post-load check: the pure verdict, the URL of an Airflow connection, and real Redis reads."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.post_load_check import (
    SampleStats,
    check_view,
    collect_sample,
    connection_url,
    evaluate,
    parse_entity_id,
)
from featurestore.jobs.run_records import RunRecord, record_run
from featurestore.readers import ConfigurationError, Feature, FeatureReader, FeatureView, codec
from featurestore.readers.example_catalog import catalog, merchant_risk, user_profile, user_transactions
from tests.airflow.helpers import write_view

NOW_MS = 1_750_000_000_000


def ok_run(**changes: object) -> RunRecord:
    started = datetime.fromtimestamp((NOW_MS - 600_000) / 1000, UTC).isoformat()
    run = RunRecord(
        run_id="r1", view="user_profile", ds="2025-06-14", source_table="users", source_version=3,
        status="succeeded", rows_read=700, rows_out=500, rows_written=500, rows_failed=0, entities_written=500,
        started_at=started,
    )  # fmt: skip
    return replace(run, **changes)  # type: ignore[arg-type]


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
    assert "2 of 100 sampled entities have _ts:user_profile older than the limit of 86400s" in problems[0]
    assert "(oldest 100000s)" in problems[0]


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


def test_a_percent_encoded_password_still_authenticates(secured_url: str) -> None:
    password = secured_url.split(":")[2].split("@")[0]
    url = connection_url(host="127.0.0.1", port=int(secured_url.rsplit(":", 1)[1]), login="default", password=password)
    assert "%2B" in url  # the '+' of the password is encoded
    assert redis.Redis.from_url(url).ping()


# --- reading Redis -----------------------------------------------------------------------


def test_entity_ids_round_trip_through_keys() -> None:
    user, merchant = user_profile.entity, merchant_risk.entity
    assert parse_entity_id(user, codec.entity_key(user, 42)) == 42
    assert parse_entity_id(merchant, codec.entity_key(merchant, "m0007")) == "m0007"
    with pytest.raises(Exception, match="not a key of entity 'merchant'"):
        parse_entity_id(merchant, codec.entity_key(user, 42))


def profile(i: int) -> dict[str, object]:
    return {"account_age_days": i, "home_country": "DE", "account_type": "standard", "credit_limit": 1000.0,
            "kyc_verified": True}  # fmt: skip


def test_collect_sample_reads_the_entities_that_carry_the_view(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now = int(time.time() * 1000)
    write_view(client, catalog, user_profile, {i: profile(i) for i in range(1, 41)}, now - 3_600_000)
    # users that only have transaction features: keys of the entity that do not carry the view
    txns = dict.fromkeys(user_transactions.feature_names, 1)
    write_view(client, catalog, user_transactions, {i: txns for i in range(100, 130)}, now)
    with FeatureReader(redis_url, catalog=catalog) as reader:
        sample = collect_sample(reader, client, user_profile, sample_size=25)
        assert sample.carriers == 25
        assert all(3_595 <= age <= 3_700 for age in sample.ages_seconds)
        assert sample.registry == "ok"
        assert sample.missing_by_feature == dict.fromkeys(user_profile.feature_names, 0)

        everything = collect_sample(reader, client, user_profile, sample_size=1000)
        assert (everything.carriers, everything.keys_scanned, everything.scan_complete) == (40, 70, True)

        merchants = collect_sample(reader, client, merchant_risk, sample_size=10)
        assert (merchants.carriers, merchants.keys_scanned, merchants.registry) == (0, 0, "not materialized")


# --- `featurestore check` ------------------------------------------------------------------


def test_the_check_command_passes_a_good_load_and_fails_a_missing_one(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = redis.Redis.from_url(redis_url)
    now = int(time.time() * 1000)
    write_view(client, catalog, user_profile, {i: profile(i) for i in range(1, 31)}, now)
    started = datetime.fromtimestamp(now / 1000 - 30, UTC).isoformat()
    record_run(client, replace(ok_run(rows_out=30, rows_written=30, entities_written=30), started_at=started))

    assert cli.main(["check", "--view", "user_profile", "--ds", "2025-06-14", "--redis-url", redis_url]) == 0
    out = capsys.readouterr().out
    assert "check of view 'user_profile' for ds 2025-06-14: OK" in out
    assert "sample: 30 entities carry the view among 30 keys scanned" in out

    # the URL from the environment, a JSON report, and a date that was never loaded
    monkeypatch.setenv("FEATURESTORE_REDIS_URL", redis_url)
    assert cli.main(["check", "--view", "user_profile", "--ds", "2025-06-15", "--json", "--sample", "5"]) == 1
    report = json.loads(capsys.readouterr().out.splitlines()[0])
    assert report["ok"] is False and report["sample"]["carriers"] == 5
    assert report["problems"] == [
        "view 'user_profile': no run record for ds 2025-06-15 in the run log (did the job run?)"
    ]


def test_the_check_command_refuses_bad_input(redis_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["check", "--view", "user_realtime", "--ds", "2025-06-14", "--redis-url", redis_url]) == 1
    assert "'user_realtime' is a streaming view" in capsys.readouterr().err
    assert cli.main(["check", "--view", "nope", "--ds", "2025-06-14", "--redis-url", redis_url]) == 1
    assert "no view 'nope'" in capsys.readouterr().err


def test_a_decoding_skew_fails_only_the_check_of_that_view(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    now = int(time.time() * 1000)
    started = datetime.fromtimestamp(now / 1000 - 30, UTC).isoformat()
    for view in (user_profile, user_transactions):
        ids = range(1, 11)
        values = profile(0) if view is user_profile else dict.fromkeys(view.feature_names, 1)
        write_view(client, catalog, view, dict.fromkeys(ids, values), now)
        run = ok_run(view=view.name, rows_out=10, rows_written=10, entities_written=10, started_at=started)
        record_run(client, run)
    assert check_view(redis_url, "user_profile", "2025-06-14", catalog=catalog, sample_size=10).ok
    # user_transactions was materialized with txn_count_1d as a string: its values would be mis-decoded
    skewed = FeatureView(
        "user_transactions", user_transactions.entity,
        tuple(Feature(f.name, "string") if f.name == "txn_count_1d" else f for f in user_transactions.features),
        ttl=user_transactions.ttl,
    )  # fmt: skip
    client.hset(codec.REGISTRY_KEY, "user_transactions", codec.registry_entry(skewed, now, "older-run"))

    report = check_view(redis_url, "user_transactions", "2025-06-14", catalog=catalog, sample_size=10)
    [problem] = report.problems
    assert "view 'user_transactions' would be decoded differently" in problem and "txn_count_1d" in problem
    assert check_view(redis_url, "user_profile", "2025-06-14", catalog=catalog, sample_size=10).ok
