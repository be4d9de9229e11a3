"""Schema cast, the built-in row checks and GX suites on Spark frames (schema derivation, suite loading
and the collapse guard: tests/unit/batch/test_batch_schema_validation.py)."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import spark_types
from featurestore.jobs.batch import schema, validation
from featurestore.readers import Catalog
from featurestore.readers.errors import ConfigurationError, JobError, ValidationFailed
from tests.helpers.batch import ITEM_STATS as VIEW
from tests.helpers.batch import write_suite

CATALOG = Catalog(views=(VIEW,))
DDL = "item_id long, clicks long, ctr double, score float, title string, active boolean, embedding array<float>"


def test_cast_widens_numbers_reorders_and_drops_extra_columns(batch_spark: Any) -> None:
    df = batch_spark.createDataFrame(
        [(1.5, "t", 3, True, [1, 2], 7, 0.25, "extra")],
        "score double, title string, clicks int, active boolean, embedding array<int>, item_id int, ctr float, "
        "note string",
    )
    assert schema.extra_columns(df, VIEW) == ["note"]
    cast = schema.cast_to_view(df, VIEW)
    assert cast.schema == spark_types.view_schema(VIEW)
    assert cast.first().asDict() == {
        "item_id": 7, "clicks": 3, "ctr": 0.25, "score": 1.5, "title": "t", "active": True, "embedding": [1.0, 2.0],
    }  # fmt: skip


def test_cast_refuses_lossy_or_meaningless_types_and_names_each_column(batch_spark: Any) -> None:
    df = batch_spark.createDataFrame(
        [("7", 1.9, 0.1, 0.2, "t", 1)],
        "item_id string, clicks double, ctr double, score double, title string, active int",
    )
    with pytest.raises(JobError) as caught:
        schema.cast_to_view(df, VIEW)
    message = str(caught.value)
    assert "view 'item_stats'" in message
    assert "column 'item_id' (join key of entity 'item') is string" in message
    assert "column 'clicks' (feature (int64)) is double" in message  # would truncate 1.9
    assert "column 'active' (feature (bool)) is int" in message
    assert "column 'embedding' (feature (vector)) is missing" in message


def frame(spark: Any, rows: list[tuple[Any, ...]]) -> Any:
    return spark.createDataFrame(rows, DDL)


def test_row_checks_count_null_and_duplicate_ids_inf_nan_and_bad_vectors(batch_spark: Any) -> None:
    rows = [
        (1, 1, 0.1, 1.0, "a", True, [1.0, 2.0]),
        (2, 1, math.nan, 1.0, "b", True, [1.0, 2.0]),
        (2, 1, 0.1, math.inf, "c", True, [1.0]),
        (None, 1, 0.1, -math.inf, "d", True, [1.0, None]),
        (3, 1, math.nan, math.nan, "e", True, None),
        (3, 1, 0.1, 1.0, "f", True, [1.0, 2.0]),
    ]
    checks = validation.check_rows(frame(batch_spark, rows), VIEW)
    assert (checks.rows, checks.null_ids, checks.duplicate_ids) == (6, 1, 2)
    assert checks.duplicate_examples == (2, 3)
    assert dict(checks.nan_as_null) == {"ctr": 2, "score": 1}
    assert dict(checks.infinite) == {"score": 2}
    assert dict(checks.bad_vectors) == {"embedding": 2}
    failures = [str(f) for f in checks.failures(VIEW)]
    assert failures == [
        "featurestore:entity_ids_not_null: 1 of 6 rows have a null item_id",
        "featurestore:entity_ids_unique: 2 item_id values appear on more than one row (e.g. 2, 3)",
        "featurestore:no_infinite_values: score: 2 of 6 rows are +/-inf",
        "featurestore:vector_dimension: embedding: 2 of 6 vectors are not 2 non-null floats",
    ]


def test_clean_rows_pass_and_nan_becomes_null(batch_spark: Any) -> None:
    df = frame(batch_spark, [(1, 1, math.nan, 1.0, "a", True, [1.0, 2.0]), (2, None, 0.5, None, None, None, None)])
    checks = validation.check_rows(df, VIEW)
    assert checks.failures(VIEW) == [] and dict(checks.nan_as_null) == {"ctr": 1}
    clean = validation.nan_to_null(df, VIEW)
    assert [r["ctr"] for r in clean.orderBy("item_id").collect()] == [None, 0.5]


def test_suite_failures_name_the_expectation_and_what_was_observed(batch_spark: Any, tmp_path: Path) -> None:
    path = write_suite(
        tmp_path,
        [
            {"type": "expect_column_values_to_be_between", "kwargs": {"column": "ctr", "min_value": 0, "max_value": 1}},
            {"type": "expect_table_row_count_to_be_between", "kwargs": {"min_value": 10}},
            {"type": "expect_column_values_to_not_be_null", "kwargs": {"column": "title"}},
        ],
    )
    suite = validation.load_suite(path, VIEW)
    df = frame(batch_spark, [(1, 1, 0.5, 1.0, "a", True, None), (2, 1, 1.5, 1.0, "b", True, None)])
    count, failures = validation.run_suite(df, VIEW, suite)
    assert count == 3
    assert [str(f) for f in failures] == [
        "expect_column_values_to_be_between(column='ctr', min_value=0.0, max_value=1.0): "
        "1 of 2 values unexpected (50.00% of non-null), e.g. [1.5]",
        "expect_table_row_count_to_be_between(min_value=10): observed 2",
    ]
    with pytest.raises(ValidationFailed) as caught:
        validation.raise_if_failed(VIEW, failures, str(path))
    assert "view 'item_stats' failed validation, nothing was written: 2 check(s) failed" in str(caught.value)
    assert "expect_table_row_count_to_be_between(min_value=10): observed 2" in str(caught.value)
    assert len(caught.value.failures) == 2  # type: ignore[attr-defined]


def test_a_suite_with_an_unknown_expectation_is_refused_not_silently_shortened(
    batch_spark: Any, tmp_path: Path
) -> None:
    path = write_suite(tmp_path, [{"type": "expect_column_values_to_be_purple", "kwargs": {"column": "ctr"}}])
    df = frame(batch_spark, [(1, 1, 0.5, 1.0, "a", True, None)])
    with pytest.raises(ConfigurationError, match="expect_column_values_to_be_purple"):
        validation.run_suite(df, VIEW, validation.load_suite(path, VIEW))
