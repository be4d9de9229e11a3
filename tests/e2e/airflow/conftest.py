"""Fixtures for the Airflow tests: a real Airflow 3 metadata DB, real connections, real servers
(``secured_redis``/``secured_url``: tests/conftest.py).

Airflow reads ``AIRFLOW_HOME`` and its ``AIRFLOW__*`` settings when it is first imported,
so they are set here, at collection time, before any test module imports it.  Connections
and DAG settings are plain environment variables (``AIRFLOW_CONN_*``, ``FEATURESTORE_*``),
exactly as a deployment would set them; the DAG file reads them when it is parsed.
"""

from __future__ import annotations

import atexit
import os
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from tests.helpers.airflow import DAGS_FOLDER, SPARK_CONN

if "airflow" in sys.modules:
    raise RuntimeError(
        "airflow was imported before tests/e2e/airflow/conftest.py could point AIRFLOW_HOME at a temp dir"
    )
_AIRFLOW_HOME = tempfile.mkdtemp(prefix="featurestore-airflow-")
# removed at exit, whether or not a test used it (collecting this folder creates it)
atexit.register(shutil.rmtree, _AIRFLOW_HOME, ignore_errors=True)
AIRFLOW_ENV = {
    "AIRFLOW_HOME": _AIRFLOW_HOME,
    "AIRFLOW__CORE__DAGS_FOLDER": str(DAGS_FOLDER),
    "AIRFLOW__CORE__LOAD_EXAMPLES": "False",
    "AIRFLOW_CONN_FEATURESTORE_SPARK": SPARK_CONN,
    # spark-submit runs the job with this interpreter (where the package is installed)
    "PYSPARK_PYTHON": sys.executable,
    "PYSPARK_DRIVER_PYTHON": sys.executable,
    "SPARK_LOCAL_IP": "127.0.0.1",
    "GX_ANALYTICS_ENABLED": "False",
}
os.environ.update(AIRFLOW_ENV)


@pytest.fixture(scope="session")
def airflow_db() -> Iterator[str]:
    """``airflow db migrate`` into the temp AIRFLOW_HOME (SQLite), once per session."""
    result = subprocess.run(
        [sys.executable, "-m", "airflow", "db", "migrate"], capture_output=True, text=True, timeout=300
    )
    if result.returncode != 0:
        pytest.fail(f"airflow db migrate failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    yield _AIRFLOW_HOME


@pytest.fixture(scope="session")
def ds() -> date:
    """The date the DAG runs load: yesterday (UTC), the last partition of the sample warehouse."""
    return datetime.now(UTC).date() - timedelta(days=1)


@pytest.fixture(scope="session")
def warehouse(spark: Any, tmp_path_factory: pytest.TempPathFactory, ds: date) -> Path:
    """A tiny sample warehouse (40 users, 31 days: ~500 transactions) as real Delta tables.

    Here it replaces the batch tests' ``warehouse`` of tests/conftest.py: the DAG runs load ``ds``.
    """
    from featurestore.jobs.examples.fraud.sample_data import WarehouseSpec, generate_warehouse

    path = tmp_path_factory.mktemp("warehouse")
    generate_warehouse(spark, path, WarehouseSpec(n_users=40, days=31, end_date=ds))
    return path


@pytest.fixture(scope="session")
def broken_warehouse(spark: Any, warehouse: Path, tmp_path_factory: pytest.TempPathFactory, ds: date) -> Path:
    """The sample warehouse plus one account change that breaks the user_profile suite.

    On the afternoon of ``ds`` a user's credit limit becomes negative: the suite's
    ``expect_column_values_to_be_between(credit_limit, 0, 1000000)`` fails for that run.
    """
    from pyspark.sql import functions as F

    from featurestore.jobs.batch.sources import table_path

    path = tmp_path_factory.mktemp("broken") / "warehouse"
    shutil.copytree(warehouse, path)
    users = spark.read.format("delta").load(str(table_path(path, "users")))
    when = datetime(ds.year, ds.month, ds.day, 12, tzinfo=UTC)
    change = (
        users.where(F.col("signup_time") < F.lit(when))
        .orderBy("user_id", F.col("updated_at").desc())
        .limit(1)
        .withColumn("credit_limit", F.lit(-500.0))
        .withColumn("updated_at", F.lit(when))
    )
    change.write.format("delta").mode("append").save(str(table_path(path, "users")))
    return path
