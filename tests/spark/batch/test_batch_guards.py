"""The input and drift guards on the sample warehouse: real Delta, local Spark, GX and Redis 8.

The scenario of issue 10: an upstream load that half-happened (90% of today's
``transactions`` partition missing) must be refused before anything is written, while
ordinary day-to-day variation passes; a feature whose distribution jumps is refused
naming it and both values, and an operator's ``--accept-drift`` goes through and is recorded.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.batch import materialize
from featurestore.jobs.core import run_records
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.readers import codec
from tests.helpers.batch import DS, run, snapshot


def _transactions(spark: Any, warehouse: Path) -> Any:
    from delta.tables import DeltaTable

    return DeltaTable.forPath(spark, str(warehouse / "transactions"))


def test_a_half_loaded_partition_is_refused_and_ordinary_days_pass(
    batch_spark: Any, warehouse_copy: Path, redis_url: str, client: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from pyspark.sql import functions as F

    view = "user_transactions"
    day1, day2 = DS - timedelta(days=2), DS - timedelta(days=1)
    first = run(batch_spark, redis_url, view, warehouse_copy, ds=day1)
    assert first.exit_code == 0, materialize.summary(first)
    # the first run ever: accepted, with a note saying there was nothing to compare with
    assert any(
        n.startswith("input guard: no earlier successful run") and "'transactions'" in n for n in first.record.notes
    )
    assert any(n.startswith("drift guard: no earlier successful run") for n in first.record.notes)
    assert "note     input guard: no earlier successful run" in materialize.summary(first)
    rows_day1 = first.record.input_rows["transactions"][day1.isoformat()]
    assert first.record.input_rows["users"] == {"all": first.record.input_rows["users"]["all"]} and rows_day1 > 0
    assert set(first.record.feature_stats["txn_count_1d"]) == {"rows", "null_share", "default_share", "mean", "std"}

    # an ordinary next day: a different number of payments, different features, accepted without a note
    second = run(batch_spark, redis_url, view, warehouse_copy, ds=day2)
    assert second.exit_code == 0, materialize.summary(second)
    rows_day2 = second.record.input_rows["transactions"][day2.isoformat()]
    assert rows_day2 != rows_day1 and second.record.notes == [] and second.record.overrides == []
    assert second.record.feature_stats["txn_count_1d"] != first.record.feature_stats["txn_count_1d"]

    # today's partition half-loaded upstream: 90% of its rows missing
    table = _transactions(batch_spark, warehouse_copy)
    today = F.col("ds") == str(DS)
    full = table.toDF().where(today).count()
    table.delete(today & (F.col("txn_id") % 10 != 0))
    kept = table.toDF().where(today).count()
    assert 0 < kept < full * 0.2
    before = snapshot(redis_url)
    registry_before = client.hgetall(codec.REGISTRY_KEY)

    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_url)
    code = cli.main(["materialize", "--view", view, "--ds", str(DS), "--warehouse", str(warehouse_copy)])
    assert code == materialize.EXIT_GUARD  # 4: refused by the input guard alone
    err = capsys.readouterr().err
    base = (rows_day1 + rows_day2) / 2  # the median of the two recorded partitions
    assert (
        f"featurestore:input_partition_rows: source 'transactions' partition ds={DS} has {kept:,} rows, "
        f"{kept / base:.0%} of the baseline {base:,.0f} (median of the last 2 recorded partitions); "
        f"view 'user_transactions' needs at least 50% (Guards.min_partition_share)"
    ) in err
    assert "nothing was written" in err
    # the suite passed: a refusal by the guards, said so (not "failed validation"), and recorded so
    assert f"view '{view}' was refused by the input guard and the drift guard, nothing was written" in err
    assert "failed validation" not in err and "REFUSED_BY_GUARD" in err
    assert snapshot(redis_url) == before  # every key, field, `_ts` byte-identical
    assert client.hgetall(codec.REGISTRY_KEY) == registry_before
    refused = run_records.latest_run(client, view)
    assert refused is not None and refused.status == "refused_by_guard" and refused.rows_written == 0
    assert refused.input_rows["transactions"] == {str(DS): kept}
    assert any(f.startswith("featurestore:input_partition_rows: source 'transactions'") for f in refused.failures)
    # the same half-load also moves the 1-day features: the drift guard says so too, naming them
    assert any(f.startswith("featurestore:feature_drift: feature 'txn_count_1d'") for f in refused.failures)


def test_drift_is_refused_naming_the_feature_and_an_accepted_rerun_is_recorded(
    batch_spark: Any, warehouse_copy: Path, redis_url: str, client: Any,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    from pyspark.sql import functions as F

    view, feature = "merchant_risk", "merchant_amount_mean_30d"
    good = run(batch_spark, redis_url, view, warehouse_copy, ds=DS - timedelta(days=1))
    assert good.exit_code == 0, materialize.summary(good)
    # upstream now sends amounts in cents: as many rows as ever, ten times the amounts
    _transactions(batch_spark, warehouse_copy).update(set={"amount": F.col("amount") * 10})
    before = snapshot(redis_url)

    drifted = run(batch_spark, redis_url, view, warehouse_copy)
    assert drifted.exit_code == materialize.EXIT_GUARD, materialize.summary(drifted)  # the drift guard alone
    assert drifted.record.status == "refused_by_guard"
    assert str(drifted.record.error).startswith(f"view '{view}' was refused by the drift guard, nothing was written")
    old = good.record.feature_stats[feature]
    new = drifted.record.feature_stats[feature]
    assert old["mean"] is not None and new["mean"] is not None and new["mean"] > 5 * old["mean"]
    assert [f.split(": mean")[0] for f in drifted.record.failures] == [
        f"featurestore:feature_drift: feature '{feature}'"
    ]
    assert f"feature '{feature}': mean {old['mean']:.4g} -> {new['mean']:.4g} since the last successful run " in str(
        drifted.record.error
    )
    assert "(Guards.drift.mean_shift)" in str(drifted.record.error)
    assert snapshot(redis_url) == before

    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_url)
    args = ["materialize", "--view", view, "--ds", str(DS), "--warehouse", str(warehouse_copy)]
    assert cli.main([*args, "--accept-drift", feature]) == 2  # an override without a reason is a usage error
    assert "need --reason" in capsys.readouterr().err
    code = cli.main([*args, "--accept-drift", feature, "--reason", "amounts are in cents since today", "--by", "alice"])
    assert code == 0
    assert f"accepted by alice (amounts are in cents since today): featurestore:feature_drift: feature '{feature}'" in (
        capsys.readouterr().out
    )
    accepted = run_records.latest_run(client, view)
    assert accepted is not None and accepted.status == "succeeded" and accepted.failures == []
    assert [(o["guard"], o["target"], o["by"], o["reason"]) for o in accepted.overrides] == [
        ("drift", feature, "alice", "amounts are in cents since today")
    ]
    assert accepted.overrides[0]["failure"].startswith(f"featurestore:feature_drift: feature '{feature}': mean")
    assert snapshot(redis_url) != before  # written this time
