"""``dag.test()`` of the nightly DAG end to end: real Airflow, spark-submit on local Spark,
Delta, Great Expectations and an embedded Redis 8.  Slow (one spark-submit per view, ~50 s
each here), so there are only two runs, and each runs one view, the others' tasks marked
done: a run that succeeds (merchant_risk: string ids, two sources) and a run whose
validation fails (user_profile).  Every view's spark-submit is the same command with other
arguments; each view runs in-process in tests/spark, and from spark-submit in
tests/e2e/batch (user_profile, on a standalone master) and the demo.
"""

from __future__ import annotations

import time
from datetime import UTC, date, datetime
from pathlib import Path
from urllib.parse import quote

import pytest
import redis

from featurestore.jobs.core.run_records import latest_run
from featurestore.jobs.examples.fraud.definitions import catalog, user_profile
from featurestore.jobs.examples.fraud.sample_data import merchant_id
from featurestore.readers import FeatureReader, FeatureStatus
from tests.helpers.airflow import load_dag, task_states, write_view

pytestmark = pytest.mark.slow

USERS = list(range(1, 41))  # the warehouse fixture's users
MERCHANTS = [merchant_id(i, 20) for i in range(1, 21)]


def _logical_date(ds: date) -> datetime:
    return datetime(ds.year, ds.month, ds.day, 2, tzinfo=UTC)


def _state(thing: object) -> str:
    state = thing.state  # type: ignore[attr-defined]
    return str(getattr(state, "value", state))


def test_the_nightly_run_loads_a_view_through_spark_submit_and_the_reader_sees_it(
    airflow_db: str,
    secured_url: str,
    warehouse: Path,
    ds: date,
    monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_REDIS", secured_url)
    dag = load_dag(monkeypatch, warehouse=str(warehouse), retry_delay_seconds="1")
    started = time.time()
    run = dag.test(logical_date=_logical_date(ds), mark_success_pattern=r"(user_transactions|user_profile)\..*")
    output = capfd.readouterr()
    log = output.out + output.err

    states = task_states(run)
    assert _state(run) == "success", states
    assert set(states.values()) == {"success"} and len(states) == 10  # 3 x (materialize, check, audit), store_status

    client = redis.Redis.from_url(secured_url)
    written = {}
    record = latest_run(client, "merchant_risk", ds=ds.isoformat())
    assert record is not None and record.status == "succeeded", record
    assert record.rows_written == record.rows_out > 0 and record.rows_failed == 0
    written["merchant_risk"] = record.entities_written
    for view in ("user_transactions", "user_profile"):
        assert latest_run(client, view, ds=ds.isoformat()) is None  # marked done, not run

    with FeatureReader.connect(secured_url, catalog=catalog) as reader:
        assert reader.registry_status == {
            "user_transactions": "not materialized", "user_profile": "not materialized", "merchant_risk": "ok",
            "user_realtime": "not materialized",
        }  # fmt: skip
        for view, ids in (("merchant_risk", MERCHANTS),):
            batch = reader.get_many(ids, view)
            loaded = [v for v in batch if v.age(view) is not None]
            # exactly the entities the run says it wrote carry the view, and they are fresh
            assert len(loaded) == written[view] > 0, view
            assert all(v.age(view) < time.time() - started + 5 for v in loaded)
            assert all(v.status(name) is not FeatureStatus.STALE for v in loaded for name in v.features)
            assert batch.count(FeatureStatus.PRESENT) > 0
        merchant = reader.get(MERCHANTS[0], "merchant_risk")
        assert merchant.status("merchant_category") is FeatureStatus.PRESENT and merchant["merchant_category"]

    # the Redis password reached the job through the environment and no log shows it
    password = secured_url.split(":")[2].split("@")[0]
    assert "Spark-Submit cmd" in log
    assert password not in log and quote(password, safe="") not in log


def test_a_run_whose_validation_fails_ends_failed_and_keeps_the_previous_features(
    airflow_db: str, redis_url: str, broken_warehouse: Path, ds: date, monkeypatch: pytest.MonkeyPatch
) -> None:
    client = redis.Redis.from_url(redis_url)
    previous = {
        i: {"account_age_days": 100 + i, "home_country": "DE", "account_type": "premium", "credit_limit": 2500.0,
            "kyc_verified": True}
        for i in USERS
    }  # fmt: skip
    write_view(client, catalog, user_profile, previous, int(time.time() * 1000) - 3_600_000)
    before = {key: client.hgetall(key) for key in client.scan_iter(match="fs:user:*")}

    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_REDIS", redis_url)
    dag = load_dag(monkeypatch, warehouse=str(broken_warehouse), retry_delay_seconds="1")
    # only user_profile's suite breaks: the other views' tasks are marked done, not run
    run = dag.test(logical_date=_logical_date(ds), mark_success_pattern=r"(user_transactions|merchant_risk)\..*")

    states = task_states(run)
    assert _state(run) == "failed"
    assert states["user_profile.materialize"] == "failed"
    assert states["user_profile.post_load_check"] == "upstream_failed"
    assert states["store_status"] == "upstream_failed"
    tries = {ti.task_id: ti.try_number for ti in run.get_task_instances()}
    assert tries["user_profile.materialize"] == 1  # a failed validation is not retried

    record = latest_run(client, "user_profile", ds=ds.isoformat())
    assert record is not None and record.status == "failed_validation"
    assert any("credit_limit" in failure for failure in record.failures), record.failures
    # nothing was written: every hash is byte for byte what it was
    assert {key: client.hgetall(key) for key in client.scan_iter(match="fs:user:*")} == before
    with FeatureReader(redis_url, catalog=catalog) as reader:
        vector = reader.get(USERS[0], "user_profile")
        assert vector.all_present and vector["credit_limit"] == 2500.0 and vector["account_type"] == "premium"
