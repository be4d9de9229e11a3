"""The feature log: every value the store wrote to Redis, as a Delta table per view (docs/training-data.md).

One Delta table per view at ``<log root>/<view>``, partitioned by ``ds`` (a ``YYYY-MM-DD``
string).  Columns: the entity's join key, one column per feature typed from the
definitions (:mod:`featurestore.jobs.spark_types`), then

====================  =========================================================================
``_view``             the view's name
``_kind``             ``batch`` or ``streaming``
``_run_id``           the batch run (``featurestore runs``), or ``stream-<epoch>`` of a micro-batch
``_ts_ms``            what ``_ts:<view>`` was set to: a batch run's computed-at time, an event time
``_written_at_ms``    when the write was done: the row is visible from then on, its TTL counts from then
``_fields``           the features the write set or deleted (null = all of the view's features)
``ds``                the batch run's date; for streaming rows the UTC day of ``_written_at_ms``
====================  =========================================================================

A batch run replaces its own ``ds`` partition (``replaceWhere``), so a re-run of the same
day leaves one copy; streaming micro-batches append.  Building these frames is pure
(DataFrame -> DataFrame); :func:`write_batch_log` and :func:`append_streaming_log` do the I/O.
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from featurestore.jobs.core.settings import Settings
from featurestore.readers.definitions import FeatureView
from featurestore.readers.errors import ConfigurationError, JobError

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame, SparkSession
    from pyspark.sql.types import StructType

log = logging.getLogger(__name__)

DEFAULT_LOG_FOLDER = "_feature_log"  # inside the warehouse
DEFAULT_RETENTION_DAYS = 400
OFF = ("off", "none", "false", "0")
PARTITION = "ds"
VIEW, KIND, RUN_ID, TS_MS, WRITTEN_AT_MS, FIELDS = "_view", "_kind", "_run_id", "_ts_ms", "_written_at_ms", "_fields"
META_COLUMNS = (VIEW, KIND, RUN_ID, TS_MS, WRITTEN_AT_MS, FIELDS, PARTITION)


@dataclass(frozen=True)
class LogSettings:
    """Where the feature log lives and how long it keeps partitions.

    ``root`` is ``None`` when logging is off (``FEATURESTORE_FEATURE_LOG=off``).
    ``retention_days``: partitions older than this many days before the newest written
    one are deleted after a batch run's append (``0`` keeps everything).
    """

    root: Path | None
    retention_days: int = DEFAULT_RETENTION_DAYS

    @classmethod
    def resolve(
        cls,
        warehouse: str | os.PathLike[str],
        given: str | os.PathLike[str] | None = None,
        retention_days: int | None = None,
    ) -> LogSettings:
        """``given`` (a folder, or ``off``), else ``<warehouse>/_feature_log``; ``retention_days``
        else :data:`DEFAULT_RETENTION_DAYS`."""
        chosen = str(given) if given is not None else None
        retention_days = DEFAULT_RETENTION_DAYS if retention_days is None else retention_days
        if retention_days < 0:
            raise ConfigurationError(f"feature log retention must be >= 0 days, got {retention_days}")
        if chosen is not None and chosen.strip().lower() in OFF:
            return cls(None, retention_days)
        root = Path(chosen) if chosen else Path(warehouse) / DEFAULT_LOG_FOLDER
        return cls(root.absolute(), retention_days)

    @classmethod
    def from_settings(
        cls, warehouse: str | os.PathLike[str], settings: Settings, given: str | os.PathLike[str] | None = None
    ) -> LogSettings:
        """``given`` (``--feature-log``), else the settings' ``feature_log`` (``$FEATURESTORE_FEATURE_LOG``,
        the settings file), else ``<warehouse>/_feature_log``; the retention from the settings."""
        return cls.resolve(warehouse, given if given is not None else settings.feature_log,
                           settings.feature_log_retention_days)  # fmt: skip

    @property
    def enabled(self) -> bool:
        return self.root is not None

    def path(self, view: FeatureView | str) -> Path:
        """The view's log table."""
        if self.root is None:
            raise ConfigurationError("the feature log is off (FEATURESTORE_FEATURE_LOG=off)")
        return self.root / (view if isinstance(view, str) else view.name)


def log_schema(view: FeatureView) -> StructType:
    """The log table's schema: the view's columns (join key, features) then the meta columns."""
    from pyspark.sql import types as T

    from featurestore.jobs.spark_types import view_schema

    fields = list(view_schema(view).fields)
    fields += [
        T.StructField(VIEW, T.StringType(), False),
        T.StructField(KIND, T.StringType(), False),
        T.StructField(RUN_ID, T.StringType(), False),
        T.StructField(TS_MS, T.LongType(), False),
        T.StructField(WRITTEN_AT_MS, T.LongType(), False),
        T.StructField(FIELDS, T.ArrayType(T.StringType()), True),
        T.StructField(PARTITION, T.StringType(), False),
    ]
    return T.StructType(fields)


def batch_log_frame(
    features: DataFrame, view: FeatureView, ds: date, run_id: str, computed_at_ms: int, written_at_ms: int
) -> DataFrame:
    """A batch run's validated rows (join key + typed features, nulls as written) as log rows."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    schema = log_schema(view)
    columns = [F.col(f.name).cast(f.dataType).alias(f.name) for f in schema.fields[: 1 + len(view.features)]]
    return features.select(
        *columns,
        F.lit(view.name).alias(VIEW),
        F.lit("batch").alias(KIND),
        F.lit(run_id).alias(RUN_ID),
        F.lit(int(computed_at_ms)).cast("long").alias(TS_MS),
        F.lit(int(written_at_ms)).cast("long").alias(WRITTEN_AT_MS),
        F.lit(None).cast(T.ArrayType(T.StringType())).alias(FIELDS),
        F.lit(ds.isoformat()).alias(PARTITION),
    )


def streaming_log_frame(
    events: DataFrame,
    view: FeatureView,
    id_col: str,
    event_ms: object,
    written_at_ms: int,
    run_id: str,
    fields: Column | None = None,
) -> DataFrame:
    """A micro-batch's events as log rows: the features in the DataFrame are the ones each event wrote.

    ``event_ms`` is a Column of epoch milliseconds (the event time written into ``_ts``).
    ``fields``: an ``array<string>`` Column naming the features each row wrote (a declared
    view's job writes a different set per row: :class:`.spark_sink.ForeachBatchSink`'s
    ``fields_col``); the row's other features are logged as null and not in ``_fields``, so
    point-in-time replays exactly what Redis saw.  None: every feature column of the frame.
    """
    from pyspark.sql import functions as F

    schema = log_schema(view)
    present = [f for f in view.features if f.name in events.columns]
    typed = {f.name: f.dataType for f in schema.fields}
    columns = [F.col(id_col).cast(typed[view.entity.join_key]).alias(view.entity.join_key)]
    for feature in view.features:
        value = F.col(feature.name) if feature in present else F.lit(None)
        if fields is not None and feature in present:  # a feature the row did not write: null, as in the log
            value = F.when(F.array_contains(fields, feature.name), value)
        columns.append(value.cast(typed[feature.name]).alias(feature.name))
    wrote = (
        F.array(*[F.lit(f.name) for f in present])
        if fields is None
        else F.filter(fields, lambda name: name.isin([f.name for f in present]))
    )
    written_day = datetime.fromtimestamp(written_at_ms / 1000, UTC).date().isoformat()
    return events.select(
        *columns,
        F.lit(view.name).alias(VIEW),
        F.lit("streaming").alias(KIND),
        F.lit(run_id).alias(RUN_ID),
        event_ms.cast("long").alias(TS_MS),  # type: ignore[attr-defined]
        F.lit(int(written_at_ms)).cast("long").alias(WRITTEN_AT_MS),
        wrote.alias(FIELDS),
        F.lit(written_day).alias(PARTITION),
    )


def write_batch_log(
    frame: DataFrame, settings: LogSettings, view: FeatureView, ds: date, rows: int | None = None
) -> int | None:
    """Replace the ``ds`` partition of the view's log with ``frame`` (idempotent per ds).

    The same commit drops the partitions older than the retention (``replaceWhere`` on
    ``ds = D OR ds < D - retention``): one Delta transaction per run.  Raises
    :class:`JobError` naming the view and the table when Delta refuses.  Returns ``rows``.
    """
    path = settings.path(view)
    condition = f"{PARTITION} = '{ds.isoformat()}'"
    if settings.retention_days:
        condition += f" OR {PARTITION} < '{(ds - timedelta(days=settings.retention_days)).isoformat()}'"
    try:
        (
            frame.write.format("delta")
            .mode("overwrite")
            .partitionBy(PARTITION)
            .option("replaceWhere", condition)
            .save(str(path))
        )
    except Exception as exc:
        raise JobError(
            f"view {view.name!r}: the feature log {path} could not be written for ds {ds}: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None
    log.info("logged ds %s to %s", ds, path, extra={"view": view.name, "ds": ds.isoformat()})
    return rows


def append_streaming_log(frame: DataFrame, settings: LogSettings, view: FeatureView) -> None:
    """Append a micro-batch's log rows to the view's log."""
    path = settings.path(view)
    try:
        frame.write.format("delta").mode("append").partitionBy(PARTITION).save(str(path))
    except Exception as exc:
        raise JobError(
            f"streaming view {view.name!r}: the feature log {path} could not be appended: "
            f"{str(exc).splitlines()[0] if str(exc) else type(exc).__name__}"
        ) from None


def read_log(spark: SparkSession, settings: LogSettings, view: FeatureView) -> DataFrame:
    """The view's log table (an empty frame of the log schema when nothing was logged yet)."""
    from delta.tables import DeltaTable

    path = str(settings.path(view))
    if not DeltaTable.isDeltaTable(spark, path):
        log.warning("no feature log for view %s at %s: treated as empty", view.name, path, extra={"view": view.name})
        return spark.createDataFrame([], log_schema(view))
    return spark.read.format("delta").load(path)
