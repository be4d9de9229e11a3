"""Point-in-time training sets: ``featurestore training-set`` and :func:`build_training_set`.

For each label row (entity ids + a timestamp + any label columns), each requested feature
exactly as the reader would have returned it at that timestamp, computed from the feature
log (:mod:`.feature_log`) under the serving rules (:mod:`.point_in_time`,
docs/training-data.md)::

    featurestore training-set --labels labels.parquet --features user_transactions,last_amount \\
        --timestamp-col ts --out training.parquet --statuses

The labels are a Parquet file or folder, or a Delta table; the output a Parquet folder
(``--format delta`` for a Delta table).  A summary of the statuses per feature goes to stdout.
"""

from __future__ import annotations

import argparse
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE
from featurestore.jobs.config import JobEnvironment
from featurestore.jobs.console import Steps, echo
from featurestore.jobs.spark import session
from featurestore.jobs.training import feature_log as fl
from featurestore.jobs.training.point_in_time import STATUS_SUFFIX, Requested, point_in_time, resolve_features
from featurestore.readers.definitions import Catalog, load_catalog
from featurestore.readers.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

__all__ = ["build_training_set", "logs_for", "status_counts", "training_set_pandas"]


def logs_for(
    spark: SparkSession, catalog: Catalog, requested: Requested, settings: fl.LogSettings
) -> dict[str, DataFrame]:
    """The log frames a training set needs: the requested views and every batch view of their entities."""
    views = {v.name: v for v in requested.views}
    for entity in requested.entities:
        views.update({v.name: v for v in catalog.views_of(entity) if v.is_batch})
    return {name: fl.read_log(spark, settings, view) for name, view in views.items()}


def build_training_set(
    spark: SparkSession,
    labels: DataFrame,
    features: Sequence[str],
    *,
    catalog: Catalog | str | None = None,
    warehouse: str | os.PathLike[str] = DEFAULT_WAREHOUSE,
    feature_log: str | os.PathLike[str] | None = None,
    timestamp_col: str = "ts",
    statuses: bool = False,
) -> DataFrame:
    """``labels`` with the requested features (view names or feature names) as of each row's timestamp.

    Values are what the reader would have returned at ``timestamp_col`` (defaults where
    missing or stale); ``statuses=True`` adds ``<feature>__status``.  The feature log is
    ``feature_log``, else ``$FEATURESTORE_FEATURE_LOG``, else ``<warehouse>/_feature_log``.
    """
    chosen = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    requested = resolve_features(chosen, features)
    settings = fl.LogSettings.resolve(warehouse, feature_log)
    logs = logs_for(spark, chosen, requested, settings)
    return point_in_time(labels, logs, chosen, requested, timestamp_col=timestamp_col, statuses=statuses)


def training_set_pandas(spark: SparkSession, labels: Any, features: Sequence[str], **options: Any) -> Any:
    """:func:`build_training_set` for a small pandas DataFrame of labels; returns pandas (row order kept)."""
    frame = labels.reset_index(drop=True).assign(_pandas_row=lambda d: range(len(d)))
    result: Any = build_training_set(spark, spark.createDataFrame(frame), features, **options).toPandas()
    return result.sort_values("_pandas_row").drop(columns="_pandas_row").reset_index(drop=True)


def status_counts(df: DataFrame, requested: Requested) -> dict[str, dict[str, int]]:
    """``{feature: {status: rows}}`` of a training set built with statuses, in one aggregation."""
    from pyspark.sql import functions as F

    names = [f.name for _, f in requested.features]
    aggs = [
        F.sum(F.when(F.col(n + STATUS_SUFFIX) == s, 1).otherwise(0)).alias(f"{n}|{s}")
        for n in names
        for s in ("present", "missing", "stale")
    ]
    row = df.agg(*aggs).collect()[0].asDict()
    out: dict[str, dict[str, int]] = {}
    for key, value in row.items():
        name, status = key.split("|")
        out.setdefault(name, {})[status] = int(value or 0)
    return out


# --- `featurestore training-set` ----------------------------------------------------------


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


def run(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    """Build the training set, write it, print the status counts per feature."""
    env = JobEnvironment.from_env()
    catalog = load_catalog(args.catalog)
    names = [n.strip() for group in args.features for n in group.split(",") if n.strip()]
    requested = resolve_features(catalog, names)  # a typo fails before Spark starts
    warehouse = args.warehouse or env.warehouse or DEFAULT_WAREHOUSE
    with Steps(3, "training-set") as steps:
        with steps.step("start Spark"):
            spark, own = session(spark, "featurestore-training-set")
        try:
            with steps.step("build"):
                labels = _read_labels(spark, args.labels)
                statuses = True  # counted for the summary; dropped on write unless asked for
                df = build_training_set(
                    spark, labels, names, catalog=catalog, warehouse=warehouse, feature_log=args.feature_log,
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


def main(argv: list[str] | None = None) -> int:
    """``python -m featurestore.jobs.training.training_set``: same as ``featurestore training-set``."""
    from featurestore.jobs.console import command_main

    return command_main("training-set", add_arguments, run, argv, description=__doc__, starts_spark=True)


if __name__ == "__main__":
    raise SystemExit(main())
