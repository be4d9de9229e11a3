"""Fixtures of the batch-pipeline tests (``batch_spark`` and the sample ``warehouse``: tests/conftest.py,
the e2e tier uses them too; run helpers: tests/helpers/batch.py)."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.dev.sample_data import GeneratedWarehouse


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
