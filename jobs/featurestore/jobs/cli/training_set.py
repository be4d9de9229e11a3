"""``featurestore training-set``: point-in-time training data (:mod:`featurestore.jobs.training.training_set`)."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE
from featurestore.jobs.core.console import Steps, echo
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
from featurestore.jobs.training.point_in_time import STATUS_SUFFIX, resolve_features
from featurestore.jobs.training.training_set import build_training_set, status_counts
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--labels", required=True, help="the labels: a Parquet file/folder or a Delta table")
    parser.add_argument(
        "--features", required=True, action="append",
        help="comma-separated view or feature names (repeatable)",
    )  # fmt: skip
    parser.add_argument("--timestamp-col", default="ts", help="the labels' time column (default: ts)")
    parser.add_argument("--out", required=True, help="where to write the training set (a folder)")
    parser.add_argument("--format", choices=("parquet", "delta"), default="parquet", help="output format")
    parser.add_argument("--statuses", action="store_true", help="add <feature>__status columns")
    parser.add_argument("--warehouse", default=None, help="the warehouse (default: $FEATURESTORE_WAREHOUSE)")
    parser.add_argument(
        "--feature-log", default=None, help="the feature log's folder (default: <warehouse>/_feature_log)"
    )
    parser.add_argument("--catalog", default=None, help="module defining `catalog` (default: $FEATURESTORE_CATALOG)")


def _read_labels(spark: SparkSession, path: str) -> DataFrame:
    if not Path(path).exists():
        raise ConfigurationError(f"--labels {path}: no such file or folder")
    if (Path(path) / "_delta_log").is_dir():
        return spark.read.format("delta").load(path)
    return spark.read.parquet(path)


def run(args: argparse.Namespace, settings: Settings, spark: SparkSession | None = None) -> int:
    """Build the training set, write it, print the status counts per feature."""
    catalog = load_catalog(settings.catalog)
    names = [n.strip() for group in args.features for n in group.split(",") if n.strip()]
    requested = resolve_features(catalog, names)  # a typo fails before Spark starts
    warehouse = settings.warehouse or DEFAULT_WAREHOUSE
    feature_log = LogSettings.from_settings(warehouse, settings, args.feature_log)
    with Steps(3, "training-set") as steps:
        with steps.step("start Spark"):
            spark, own = session(spark, "featurestore-training-set", settings)
        try:
            with steps.step("build"):
                labels = _read_labels(spark, args.labels)
                statuses = True  # counted for the summary; dropped on write unless asked for
                df = build_training_set(
                    spark, labels, names, catalog=catalog, warehouse=warehouse, feature_log=feature_log,
                    timestamp_col=args.timestamp_col, statuses=statuses,
                ).persist()  # fmt: skip
            with steps.step("write"):
                out = df if args.statuses else df.drop(*[f.name + STATUS_SUFFIX for _, f in requested.features])
                out.write.format(args.format).mode("overwrite").save(args.out)
                counts = status_counts(df, requested)
                rows = df.count()
                df.unpersist()
        finally:
            if own:
                spark.stop()
    echo(f"training set: {rows:,} rows x {len(requested.features)} features -> {args.out} ({args.format})")
    for name, by_status in counts.items():
        shown = ", ".join(f"{s} {n:,}" for s, n in by_status.items())
        echo(f"  {name:<32} {shown}")
    return 0
