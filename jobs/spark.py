"""Building the SparkSession: the one place that does (helpers get the session passed in).

Delta Lake's JVM jars come from Maven Central through ``spark.jars.packages`` (resolved
by Ivy into ``~/.ivy2`` on first use), unless ``FEATURESTORE_SPARK_JARS`` names local jar
files (comma-separated) fetched beforehand, e.g. by ``.ci/run``.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.3.1"  # what delta-spark 4.3.1 asks for on Spark 4.1
JARS_ENV_VAR = "FEATURESTORE_SPARK_JARS"


def prepare_environment() -> None:
    """Settings Spark needs before its JVM starts (loopback, this Python on executors)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


def build_session(
    app_name: str = "featurestore", master: str | None = None, shuffle_partitions: int = 4
) -> SparkSession:
    """A SparkSession with Delta Lake enabled.

    ``master`` defaults to ``$SPARK_MASTER`` or ``local[2]``; under ``spark-submit`` the
    submitter's master wins.
    """
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
        .config("spark.driver.memory", os.environ.get("FEATURESTORE_DRIVER_MEMORY", "2g"))
    )
    if master or "SPARK_MASTER" in os.environ or not _under_spark_submit():
        builder = builder.master(master or os.environ.get("SPARK_MASTER", "local[2]"))
    jars = os.environ.get(JARS_ENV_VAR)
    if jars:
        builder = builder.config("spark.jars", jars)
    else:
        builder = builder.config("spark.jars.packages", DELTA_PACKAGE)
    return builder.getOrCreate()


def _under_spark_submit() -> bool:
    return "spark.master" in os.environ.get("PYSPARK_SUBMIT_ARGS", "") or bool(os.environ.get("SPARK_ENV_LOADED"))


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
