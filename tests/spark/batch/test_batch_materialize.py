"""The materialization job end to end: real Delta warehouse, local Spark, GX and Redis 8."""

from __future__ import annotations

import json
import shutil
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.batch import materialize, transforms
from featurestore.jobs.core import run_records
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.jobs.dev.sample_data import GeneratedWarehouse
from featurestore.jobs.examples import example_path
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.readers import codec
from featurestore.readers.reader import FeatureReader
from tests.helpers.batch import DS, run, snapshot

DAY = 86_400


def expected_rows(spark: Any, warehouse: Path, view: str, ds: Any = DS) -> dict[Any, dict[str, Any]]:
    """What the job should have written: the transform's output, cast, straight from Spark."""
    from featurestore.jobs.batch import schema

    transform = transforms.transform_for(catalog.view(view))
    inputs = {t: spark.read.format("delta").load(str(warehouse / t)) for t in transform.sources}
    df = schema.cast_to_view(transform(inputs, transforms.as_of_for(ds)), catalog.view(view))
    key = catalog.view(view).entity.join_key
    return {row[key]: row.asDict() for row in df.collect()}


def assert_served(reader: FeatureReader, view: str, rows: dict[Any, dict[str, Any]]) -> None:
    ids = sorted(rows)
    batch = reader.get_many(ids, view)
    for entity_id, vector in zip(ids, batch):
        for name in catalog.view(view).feature_names:
            want = rows[entity_id][name]
            if want is None:
                assert vector.status(name).value == "missing", (entity_id, name)
            elif isinstance(want, float):
                assert vector[name] == pytest.approx(want, rel=1e-6), (entity_id, name)
                assert vector.status(name).value == "present"
            else:
                assert vector[name] == want, (entity_id, name)


def test_every_view_lands_with_its_ttls_registry_and_run_record(
    batch_spark: Any, warehouse: GeneratedWarehouse, redis_url: str, client: Any
) -> None:
    outcomes = {v.name: run(batch_spark, redis_url, v.name, warehouse.path) for v in catalog.batch_views}
    for outcome in outcomes.values():
        assert outcome.record.status == "succeeded", materialize.summary(outcome)
        assert outcome.exit_code == 0
        assert outcome.record.rows_written == outcome.record.entities_written == outcome.record.rows_out > 0
        assert outcome.record.source_versions and outcome.record.source_version == 0

    with FeatureReader.connect(redis_url, catalog=catalog) as reader:
        assert reader.registry_status == {
            "user_transactions": "ok", "user_profile": "ok", "merchant_risk": "ok", "user_realtime": "not materialized",
        }  # fmt: skip
        for view in ("user_transactions", "user_profile", "merchant_risk"):
            rows = expected_rows(batch_spark, warehouse.path, view)
            assert len(rows) == outcomes[view].record.entities_written
            assert_served(reader, view, rows)

    # TTLs: user_profile (7d) is the key TTL of `user`; user_transactions (2d) gets HEXPIRE
    key = b"fs:user:{1}"
    assert 7 * DAY - 120 < client.ttl(key) <= 7 * DAY
    tx_fields = ["txn_count_30d", "amount_sum_30d", "_ts:user_transactions"]
    assert all(2 * DAY - 120 < t <= 2 * DAY for t in client.httl(key, *tx_fields))
    assert client.httl(key, "account_type", "_ts:user_profile") == [-1, -1]
    merchant = b"fs:merchant:{m0001}"
    assert 2 * DAY - 120 < client.ttl(merchant) <= 2 * DAY  # its only batch view: key TTL, no field TTL
    assert client.httl(merchant, "merchant_txn_count_30d") == [-1]

    # the registry entry is exactly the codec's, for this run
    entry = json.loads(client.hget(codec.REGISTRY_KEY, "user_transactions"))
    assert entry["fingerprint"] == codec.fingerprint(catalog.view("user_transactions"))
    assert entry["run_id"] == outcomes["user_transactions"].record.run_id

    runs = run_records.list_runs(client)
    assert [r.view for r in runs] == ["merchant_risk", "user_profile", "user_transactions"]
    record = runs[-1]
    assert record.status == "succeeded" and record.ds == "2024-05-31" and record.source_table == "transactions"
    assert record.source_versions == {"transactions": 0, "users": 0}
    assert set(record.durations) == {"read", "transform", "validate", "write", "log"}
    # (the feature log is off in the tests unless asked: tests/conftest.py; tests/spark/training cover it)
    assert record.rows_read == outcomes["user_transactions"].record.rows_read > 0
    assert record.error is None and record.started_at < record.finished_at
    summary = materialize.summary(outcomes["user_transactions"])
    assert "SUCCEEDED" in summary and "transactions@v0 (ds 2024-05-02..2024-05-31)" in summary


def test_a_feature_null_today_is_absent_and_a_rerun_gives_the_same_state(
    batch_spark: Any, warehouse_copy: Path, redis_url: str, client: Any
) -> None:
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    # a user who paid 7 days before the run date and never since: their 7-day mean is set
    # by yesterday's run and null today (the 7-day window moved past that payment)
    yesterday = DS - timedelta(days=1)
    first_day = DS - timedelta(days=6)
    transactions = DeltaTable.forPath(batch_spark, str(warehouse_copy / "transactions"))
    row = transactions.toDF().where(F.col("ds") == str(DS - timedelta(days=7))).orderBy("txn_id").first()
    assert row is not None
    user = row["user_id"]
    transactions.delete((F.col("user_id") == user) & (F.col("ds") >= str(first_day)))
    before = expected_rows(batch_spark, warehouse_copy, "user_transactions", yesterday)
    today = expected_rows(batch_spark, warehouse_copy, "user_transactions", DS)
    assert before[user]["amount_mean_7d"] is not None and today[user]["amount_mean_7d"] is None
    key = codec.entity_key(catalog.entity("user"), user)

    assert run(batch_spark, redis_url, "user_transactions", warehouse_copy, ds=yesterday).exit_code == 0
    assert client.hexists(key, "amount_mean_7d")
    assert run(batch_spark, redis_url, "user_transactions", warehouse_copy, ds=DS).exit_code == 0
    assert not client.hexists(key, "amount_mean_7d")  # HDEL'd, not left stale
    assert client.hget(key, "txn_count_7d") == str(today[user]["txn_count_7d"]).encode()
    assert client.hexists(key, "amount_mean_30d") == (today[user]["amount_mean_30d"] is not None)

    first = snapshot(redis_url)
    assert run(batch_spark, redis_url, "user_transactions", warehouse_copy, ds=DS).exit_code == 0
    second = snapshot(redis_url)
    strip = lambda s: {k: {f: v for f, v in h.items() if not f.startswith(b"_ts:")} for k, h in s.items()}  # noqa: E731
    assert strip(second) == strip(first)  # the same keys, fields and bytes
    assert all(int(second[k][b"_ts:user_transactions"]) >= int(first[k][b"_ts:user_transactions"]) for k in first)


def test_a_failed_suite_writes_nothing_and_exits_non_zero_naming_the_expectation(
    batch_spark: Any, warehouse: GeneratedWarehouse, redis_url: str, client: Any, tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    assert run(batch_spark, redis_url, "user_profile", warehouse.path).exit_code == 0
    before = snapshot(redis_url)
    registry_before = client.hgetall(codec.REGISTRY_KEY)
    strict = tmp_path / "expectations"
    shutil.copytree(
        str(example_path("fraud").joinpath("expectations")), strict
    )  # a checkout or an installed wheel: a real folder
    suite = json.loads((strict / "user_profile.json").read_text())
    suite["expectations"].append(
        {"type": "expect_column_values_to_be_between", "kwargs": {"column": "credit_limit", "max_value": 600}}
    )
    (strict / "user_profile.json").write_text(json.dumps(suite))

    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_url)  # the scheduler's way: no URL on the command line
    code = cli.main(
        ["materialize", "--view", "user_profile", "--ds", str(DS), "--warehouse", str(warehouse.path),
         "--expectations", str(strict)]
    )  # fmt: skip
    assert code == materialize.EXIT_VALIDATION
    err = capsys.readouterr().err
    assert "FAILED_VALIDATION" in err
    assert "expect_column_values_to_be_between(column='credit_limit', max_value=600.0): " in err
    assert "values unexpected" in err
    assert snapshot(redis_url) == before  # yesterday's values, `_ts` and TTLs untouched
    assert client.hgetall(codec.REGISTRY_KEY) == registry_before
    latest = run_records.latest_run(client, "user_profile")
    assert latest is not None and latest.status == "failed_validation" and latest.rows_written == 0
    assert any("credit_limit" in f for f in latest.failures)
    assert batch_spark.range(1).count() == 1  # the CLI left the caller's session running


def test_collapse_guard_then_pinned_version_and_ratio_zero(
    batch_spark: Any, warehouse_copy: Path, redis_url: str, client: Any
) -> None:
    from delta.tables import DeltaTable

    good = run(batch_spark, redis_url, "user_profile", warehouse_copy)
    assert good.exit_code == 0
    before = snapshot(redis_url)
    DeltaTable.forPath(batch_spark, str(warehouse_copy / "users")).delete(
        "user_id > 30"
    )  # version 1: upstream lost rows

    collapsed = run(batch_spark, redis_url, "user_profile", warehouse_copy)
    assert collapsed.exit_code == materialize.EXIT_VALIDATION
    assert collapsed.record.source_version == 1
    assert f"featurestore:row_count_not_collapsed: rows fell to 30 from {good.record.rows_out}" in str(
        collapsed.record.error
    )
    assert snapshot(redis_url) == before

    pinned = run(batch_spark, redis_url, "user_profile", warehouse_copy, version=0)  # re-read the good snapshot
    assert pinned.exit_code == 0 and pinned.record.source_version == 0
    assert pinned.record.rows_out == good.record.rows_out

    # the operator says so: the collapse guard off, the input guard's refusal of the shrunken table accepted
    assert "featurestore:input_partition_rows: source 'users' (whole table)" in str(collapsed.record.error)
    accepted = run(
        batch_spark, redis_url, "user_profile", warehouse_copy, min_row_ratio=0.0,
        accept_input=("users",), override_reason="accounts were purged upstream", override_by="ops",
    )  # fmt: skip
    assert accepted.exit_code == 0 and accepted.record.rows_out == 30 and accepted.record.source_version == 1
    assert [(o["guard"], o["target"], o["by"]) for o in accepted.record.overrides] == [("input", "users", "ops")]


def test_a_missing_partition_fails_validation(batch_spark: Any, warehouse: GeneratedWarehouse, redis_url: str) -> None:
    outcome = run(batch_spark, redis_url, "merchant_risk", warehouse.path, ds=DS + timedelta(days=1))
    assert outcome.record.status == "failed_validation"
    assert "has no rows in partition ds=2024-06-01" in str(outcome.record.error)
    assert snapshot(redis_url) == {}


def test_streaming_views_and_missing_tables_are_refused(batch_spark: Any, tmp_path: Path, redis_url: str) -> None:
    from featurestore.readers.errors import ConfigurationError

    with pytest.raises(ConfigurationError, match="'user_realtime' is a streaming view"):
        run(batch_spark, redis_url, "user_realtime", tmp_path)
    outcome = run(batch_spark, redis_url, "user_profile", tmp_path)
    assert outcome.record.status == "failed"
    assert "source table 'users' not found" in str(outcome.record.error) and "featurestore generate" in str(
        outcome.record.error
    )
