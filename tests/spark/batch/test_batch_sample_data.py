"""The sample warehouse generator: deterministic, consistent, and `featurestore generate` (its argument checks:
tests/unit/batch/test_batch_sample_data.py)."""

from __future__ import annotations

import hashlib
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.batch.sources import table_path
from featurestore.jobs.examples.fraud.sample_data import WarehouseSpec, generate_warehouse, merchant_id

SMALL = WarehouseSpec(n_users=30, days=4, end_date=date(2024, 5, 31), seed=3)


def digest(spark: Any, warehouse: Path, table: str, order: str) -> str:
    rows = spark.read.format("delta").load(str(table_path(warehouse, table))).orderBy(order).collect()
    return hashlib.sha256(repr([tuple(r) for r in rows]).encode()).hexdigest()


def test_same_seed_same_rows_other_seed_other_rows(batch_spark: Any, tmp_path: Path) -> None:
    first = generate_warehouse(batch_spark, tmp_path / "a", SMALL)
    again = generate_warehouse(batch_spark, tmp_path / "b", SMALL, chunk_days=1)  # chunking does not change the rows
    other = generate_warehouse(
        batch_spark, tmp_path / "c", WarehouseSpec(n_users=30, days=4, end_date=SMALL.end_date, seed=4)
    )
    assert first.rows == again.rows
    for table, order in (("transactions", "txn_id"), ("users", "updated_at"), ("merchants", "merchant_id")):
        assert digest(batch_spark, first.path, table, order) == digest(batch_spark, again.path, table, order), table
    assert digest(batch_spark, first.path, "transactions", "txn_id") != digest(
        batch_spark, other.path, "transactions", "txn_id"
    )


def test_tables_are_consistent(batch_spark: Any, warehouse: Any) -> None:
    from pyspark.sql import functions as F

    read = lambda t: batch_spark.read.format("delta").load(str(warehouse.path / t))  # noqa: E731
    tx, users, merchants = read("transactions"), read("users"), read("merchants")
    n = warehouse.rows
    assert (
        tx.count() == n["transactions"] > 1000 and users.count() == n["users"] and merchants.count() == n["merchants"]
    )
    assert users.select("user_id").distinct().count() == 120
    assert {r[0] for r in merchants.select("merchant_id").collect()} == {merchant_id(i, 20) for i in range(1, 21)}
    stats = tx.agg(
        F.min("ds"), F.max("ds"), F.count_distinct("ds"), F.count_distinct("txn_id"), F.min("user_id"),
        F.max("user_id"), F.sum(F.col("is_fraud").cast("int")),
        F.count(F.when(F.col("ds") != F.date_format("event_time", "yyyy-MM-dd"), True)),
        F.count(F.when(F.col("is_fraud") & (F.col("fraud_reported_at") <= F.col("event_time")), True)),
    ).first()  # fmt: skip
    assert tuple(stats) == ("2024-04-27", "2024-05-31", 35, n["transactions"], 1, 120, stats[6], 0, 0)
    assert 0 < stats[6] < n["transactions"] * 0.1  # some fraud, not much
    # nobody pays before signing up
    signup = users.groupBy("user_id").agg(F.min("signup_time").alias("signup"))
    assert tx.join(signup, "user_id").where(F.col("event_time") < F.col("signup")).count() == 0
    assert merchant_id(7, 20) == "m0007" and merchant_id(12_345, 20_000) == "m12345"


def test_generate_command(batch_spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = cli.main(
        ["generate", "--warehouse", str(tmp_path), "--users", "20", "--days", "2", "--end-date", "2024-05-31"]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert f"wrote {tmp_path}" in out and "ds 2024-05-30..2024-05-31" in out
    assert (tmp_path / "transactions" / "ds=2024-05-31").is_dir()
    assert batch_spark.range(1).count() == 1  # the in-process session was not stopped
