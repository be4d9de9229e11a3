"""Point-in-time training sets: ``featurestore training-set`` and :func:`build_training_set`.

For each label row (entity ids + a timestamp + any label columns), each requested feature
exactly as the reader would have returned it at that timestamp, computed from the feature
log (:mod:`.feature_log`) under the serving rules (:mod:`.point_in_time`,
docs/training-data.md)::

    featurestore training-set --labels labels.parquet --features customer_spend,last_order_amount \\
        --timestamp-col ts --out training.parquet --statuses

The labels are a Parquet file or folder, or a Delta table; the output a Parquet folder
(``--format delta`` for a Delta table).  A summary of the statuses per feature goes to stdout.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE
from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.training.point_in_time import STATUS_SUFFIX, Requested, point_in_time, resolve_features
from featurestore.readers.definitions import Catalog
from featurestore.readers.repository import load_catalog

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
    feature_log: str | os.PathLike[str] | fl.LogSettings | None = None,
    timestamp_col: str = "ts",
    statuses: bool = False,
) -> DataFrame:
    """``labels`` with the requested features (view names or feature names) as of each row's timestamp.

    Values are what the reader would have returned at ``timestamp_col`` (defaults where
    missing or stale); ``statuses=True`` adds ``<feature>__status``.  The feature log is
    ``feature_log`` (its settings, or a folder), else ``<warehouse>/_feature_log``.
    """
    chosen = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    requested = resolve_features(chosen, features)
    settings = (
        feature_log if isinstance(feature_log, fl.LogSettings) else fl.LogSettings.resolve(warehouse, feature_log)
    )
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
