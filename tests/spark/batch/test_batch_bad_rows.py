"""Bad rows get a clear, documented outcome (docs/batch.md, "Bad rows"), never a silent drop.

| rows                                  | outcome                                            |
|---------------------------------------|----------------------------------------------------|
| null or duplicate entity id, +/-inf   | failed_validation, exit 3, nothing written         |
| NaN in a float feature                | written as null (absent field), counted, reported  |
| wrong column type, missing column     | failed, exit 1, nothing written (before any write) |
"""

from __future__ import annotations

import json
import math
from datetime import date
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.batch import materialize
from featurestore.readers import Catalog, Entity, Feature, FeatureView, batch_transform
from featurestore.readers.reader import FeatureReader
from tests.helpers.batch import snapshot

device = Entity("device", join_key="device_id", id_dtype="string")


@batch_transform(sources=("device_events",))
def device_stats(inputs: Any, as_of: Any) -> Any:
    """The source rows as they are: what reaches the gate is exactly what the test wrote."""
    return inputs["device_events"]


VIEW = FeatureView(
    name="device_stats",
    entity=device,
    source="device_events",
    ttl=3600,
    features=(Feature("score", "float64"), Feature("hits", "int64"), Feature("label", "string")),
    transform=device_stats,
)
CATALOG = Catalog(views=(VIEW,))
DS = date(2024, 5, 31)
GOOD_DDL = "device_id string, score double, hits long, label string"


def materialize_rows(spark: Any, tmp_path: Path, url: str, rows: list[tuple[Any, ...]], ddl: str = GOOD_DDL) -> Any:
    warehouse = tmp_path / "warehouse"
    spark.createDataFrame(rows, ddl).write.format("delta").mode("overwrite").save(str(warehouse / "device_events"))
    suites = tmp_path / "expectations"
    suites.mkdir(exist_ok=True)
    suite = {"name": "device_stats", "expectations": [
        {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 1}},
    ]}  # fmt: skip
    (suites / "device_stats.json").write_text(json.dumps(suite))
    request = materialize.MaterializeRequest(
        view="device_stats", ds=DS, redis_url=url, warehouse=warehouse, catalog=CATALOG, expectations_dir=suites
    )
    return materialize.materialize(spark, request)


def test_null_and_duplicate_ids_and_inf_fail_validation_and_write_nothing(
    batch_spark: Any, tmp_path: Path, redis_url: str
) -> None:
    rows = [("a", 1.0, 1, "x"), (None, 2.0, 2, "y"), ("b", 3.0, 3, "z"), ("b", 4.0, 4, "w"), ("c", math.inf, 5, "v")]
    outcome = materialize_rows(batch_spark, tmp_path, redis_url, rows)
    assert outcome.record.status == "failed_validation" and outcome.exit_code == materialize.EXIT_VALIDATION
    assert outcome.record.failures == [
        "featurestore:entity_ids_not_null: 1 of 5 rows have a null device_id",
        "featurestore:entity_ids_unique: 1 device_id values appear on more than one row (e.g. 'b')",
        "featurestore:no_infinite_values: score: 1 of 5 rows are +/-inf",
    ]
    assert outcome.record.rows_written == 0 and snapshot(redis_url) == {}
    assert "nothing was written" in str(outcome.record.error)


def test_nan_is_stored_as_null_and_reported(batch_spark: Any, tmp_path: Path, redis_url: str) -> None:
    outcome = materialize_rows(batch_spark, tmp_path, redis_url, [("a", math.nan, 1, "x"), ("b", 0.5, None, "y")])
    assert outcome.record.status == "succeeded"
    assert outcome.record.nan_as_null == {"score": 1}
    assert "NaN      stored as null (absent): score 1" in materialize.summary(outcome)
    stored = snapshot(redis_url, with_ts=False)
    assert stored == {
        b"fs:device:{a}": {b"hits": b"1", b"label": b"x"},
        b"fs:device:{b}": {b"score": b"0.5", b"label": b"y"},
    }
    with FeatureReader(redis_url, catalog=CATALOG) as reader:
        vector = reader.get("a", "device_stats")
        assert vector.status("score").value == "missing" and vector["hits"] == 1


@pytest.mark.parametrize(
    ("ddl", "rows", "message"),
    [
        (
            "device_id string, score double, hits string, label string",
            [("a", 1.0, "12", "x")],
            "column 'hits' (feature (int64)) is string, which does not convert to bigint",
        ),
        ("device_id string, score double, hits long", [("a", 1.0, 1)], "column 'label' (feature (string)) is missing"),
        ("device_id long, score double, hits long, label string", [(1, 1.0, 1, "x")], "column 'device_id' (join key"),
    ],
    ids=["wrong-type", "missing-column", "wrong-id-type"],
)
def test_schema_problems_fail_the_run_before_any_write(
    batch_spark: Any, tmp_path: Path, redis_url: str, ddl: str, rows: list[tuple[Any, ...]], message: str
) -> None:
    outcome = materialize_rows(batch_spark, tmp_path, redis_url, rows, ddl)
    assert outcome.record.status == "failed" and outcome.exit_code == materialize.EXIT_FAILED
    assert "view 'device_stats': the transform's output does not match the view's schema" in str(outcome.record.error)
    assert message in str(outcome.record.error)
    assert snapshot(redis_url) == {}
