"""The post-load check on a real Redis: reading a sample, `featurestore check`, an encoded password
(the pure verdict: tests/unit/ops/test_post_load_check.py)."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import UTC, datetime

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.core.run_records import record_run
from featurestore.jobs.examples.fraud.definitions import catalog, merchant_risk, user_profile, user_transactions
from featurestore.jobs.ops.post_load_check import check_view, collect_sample, connection_url
from featurestore.readers import Feature, FeatureReader, FeatureView, codec
from tests.helpers.airflow import write_view
from tests.helpers.post_load_check import ok_run


def test_a_percent_encoded_password_still_authenticates(secured_url: str) -> None:
    password = secured_url.split(":")[2].split("@")[0]
    url = connection_url(host="127.0.0.1", port=int(secured_url.rsplit(":", 1)[1]), login="default", password=password)
    assert "%2B" in url  # the '+' of the password is encoded
    assert redis.Redis.from_url(url).ping()


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
    # usage errors (exit 2), not a failed check (exit 1)
    assert cli.main(["check", "--view", "user_realtime", "--ds", "2025-06-14", "--redis-url", redis_url]) == 2
    assert "'user_realtime' is a streaming view" in capsys.readouterr().err
    assert cli.main(["check", "--view", "nope", "--ds", "2025-06-14", "--redis-url", redis_url]) == 2
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
