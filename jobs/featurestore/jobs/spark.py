"""Building the SparkSession: the one place that does (helpers get the session passed in).

Entry points (the CLI commands, ``materialize_job.py``, the demo) get a session from
:func:`session` or :func:`build_session` and hand it down; library code never creates one.

Delta Lake's JVM jars come from Maven Central through ``spark.jars.packages`` (resolved
by Ivy into ``~/.ivy2`` on first use), unless ``FEATURESTORE_SPARK_JARS`` names local jar
files (comma-separated) fetched beforehand, e.g. by ``.ci/run``.  The settings are read
through :mod:`featurestore.jobs.config`; this module only *sets* the defaults Spark's
JVM and Python workers need before they start.
"""

from __future__ import annotations

import functools
import os
import sys
from typing import TYPE_CHECKING

from featurestore.jobs import jvm
from featurestore.jobs.config import DEFAULT_SPARK_MASTER, JobEnvironment
from featurestore.jobs.config import JARS_ENV_VAR as JARS_ENV_VAR
from featurestore.readers.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.3.1"  # what delta-spark 4.3.1 asks for on Spark 4.1


def prepare_environment() -> None:
    """Settings Spark needs before its JVM starts (loopback, this Python on executors)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@functools.cache
def require_java() -> None:
    """Refuse, in one line, a Java older than Spark needs, before a JVM starts (once per process)."""
    problem = jvm.java_problem()
    if problem:
        raise ConfigurationError(problem)


def build_session(
    app_name: str = "featurestore", master: str | None = None, shuffle_partitions: int = 4
) -> SparkSession:
    """A SparkSession with Delta Lake enabled.

    ``master`` defaults to ``$SPARK_MASTER`` or ``local[2]``; under ``spark-submit`` the
    submitter's master wins.
    """
    env = JobEnvironment.from_env()
    if not env.under_spark_submit:  # under spark-submit the JVM is already running
        require_java()
    prepare_environment()
    from pyspark.sql import SparkSession

    builder = (
        SparkSession.builder.appName(app_name)
        .config("spark.sql.extensions", "io.delta.sql.DeltaSparkSessionExtension")
        .config("spark.sql.catalog.spark_catalog", "org.apache.spark.sql.delta.catalog.DeltaCatalog")
        .config("spark.sql.shuffle.partitions", str(shuffle_partitions))
        .config("spark.sql.session.timeZone", "UTC")
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.execution.arrow.pyspark.enabled", "true")
        .config("spark.driver.memory", env.driver_memory)
    )
    if master or env.spark_master or not env.under_spark_submit:
        builder = builder.master(master or env.spark_master or DEFAULT_SPARK_MASTER)
    if env.spark_jars:
        builder = builder.config("spark.jars", env.spark_jars)
    else:
        builder = builder.config("spark.jars.packages", DELTA_PACKAGE)
    return builder.getOrCreate()


def session(spark: SparkSession | None, app_name: str) -> tuple[SparkSession, bool]:
    """The given or already active session (not ours to stop), else a new one (ours: stop it).

    For entry points: ``spark, own = session(None, "featurestore-x")`` ... ``if own: spark.stop()``.
    """
    if spark is not None:
        return spark, False
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # e.g. called in-process by a notebook or a test
        return active, False
    return build_session(app_name), True


def main(argv: list[str] | None = None) -> int:
    """``python -m featurestore.jobs.spark --fetch-jars``: resolve the Delta jars now."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m featurestore.jobs.spark")
    parser.add_argument("--fetch-jars", action="store_true", help="start a session once so Ivy fetches the jars")
    args = parser.parse_args(argv)
    if args.fetch_jars:
        session = build_session("featurestore-fetch-jars", master="local[1]")
        session.range(1).count()
        session.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
