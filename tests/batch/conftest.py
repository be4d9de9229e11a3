"""Fixtures of the batch-pipeline tests: one small sample warehouse per session, run helpers."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.run_records import connect
from featurestore.jobs.sample_data import GeneratedWarehouse, generate
from tests.batch.helpers import SPEC


@pytest.fixture(scope="session")
def batch_spark(spark: Any) -> Any:
    """The shared session; Delta's log replay on 2 partitions instead of 50 keeps tiny tables fast."""
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    return spark


@pytest.fixture(scope="session")
def warehouse(batch_spark: Any, tmp_path_factory: pytest.TempPathFactory) -> GeneratedWarehouse:
    """The sample warehouse (read-only: tests that change it use ``warehouse_copy``)."""
    return generate(batch_spark, tmp_path_factory.mktemp("warehouse"), SPEC)


@pytest.fixture
def warehouse_copy(warehouse: GeneratedWarehouse, tmp_path: Path) -> Path:
    """A private copy of the warehouse (Delta tables are plain folders with relative paths)."""
    target = tmp_path / "warehouse"
    shutil.copytree(warehouse.path, target)
    return target


@pytest.fixture
def client(redis_url: str) -> Iterator[Any]:
    c = connect(redis_url)
    yield c
    c.close()
