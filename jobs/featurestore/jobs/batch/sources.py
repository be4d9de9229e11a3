"""The source side of a batch run: warehouse tables read at one pinned Delta version.

The warehouse is a folder with one Delta table per sub-folder (``<warehouse>/<table>``);
tables with a ``ds`` column are partitioned by it.  :func:`read_snapshot` reads every
input of a view's transform at one version (resolved once, or ``--version`` for the view's
own source), pruned to the ``ds`` partitions the transform can use, and counts the rows
of every table in one scan each, per ``ds`` partition (the input guards compare them
with earlier runs): the first stage of a run (``featurestore.jobs.batch.materialize``).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

from featurestore.readers.definitions import Catalog
from featurestore.readers.errors import ConfigurationError, JobError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurestore.jobs.batch.transforms import Transform

DEFAULT_WAREHOUSE = Path(".featurestore/warehouse")
PARTITION_COLUMN = "ds"
WHOLE_TABLE = "all"  # the partition key of a table without a ds column: the input guards treat it as one partition
WAREHOUSE_SETTING = "FEATURESTORE_WAREHOUSE or warehouse in featurestore.toml"


def table_path(warehouse: str | os.PathLike[str], table: str) -> Path:
    """Where a table of the warehouse lives (one Delta table per folder)."""
    return Path(warehouse).absolute() / table


def parse_date(text: str, what: str = "--ds") -> date:
    """A ``YYYY-MM-DD`` date or a ConfigurationError naming the option."""
    try:
        return date.fromisoformat(text)
    except (TypeError, ValueError):
        raise ConfigurationError(f"{what} must be a date like 2024-05-31, got {text!r}") from None


def check_tables(warehouse: str | os.PathLike[str], tables: Sequence[str]) -> None:
    """Before Spark starts: a local warehouse folder exists and holds each table as a Delta table.

    A typo in ``--warehouse`` is a configuration error (exit 2, no run recorded), found in a
    millisecond instead of after Spark's start-up.  A remote warehouse (``s3a://``, ``hdfs://``)
    is left to Spark.
    """
    text = str(warehouse)
    if "://" in text and not text.startswith("file://"):
        return
    root = Path(text.removeprefix("file://")).expanduser().absolute()
    hint = "create the sample warehouse with `featurestore generate --warehouse DIR`"
    if not root.is_dir():
        raise ConfigurationError(f"warehouse {root} does not exist (set by --warehouse, {WAREHOUSE_SETTING}); {hint}")
    missing = [t for t in tables if not (root / t / "_delta_log").is_dir()]
    if missing:
        tables_text = ", ".join(repr(t) for t in missing)
        raise ConfigurationError(
            f"source table {tables_text} not found: no Delta table {root / missing[0]} in warehouse {root} "
            f"(set by --warehouse, {WAREHOUSE_SETTING}); {hint}"
        )


def check_view_sources(catalog: Catalog | str | None, view: str, warehouse: str | os.PathLike[str]) -> None:
    """:func:`check_tables` for the tables a batch view's transform reads (a streaming view: nothing)."""
    from featurestore.jobs.batch.transforms import transform_for

    chosen = load_catalog(catalog).view(view)
    if chosen.is_batch:
        check_tables(warehouse, transform_for(chosen).sources)


def source_tables(catalog: Catalog, warehouse: str | os.PathLike[str]) -> list[str]:
    """The Delta tables the batch views read, each found in ``warehouse`` (no Spark), or the
    ConfigurationError naming the first missing one (``featurestore plan --connect`` and ``doctor``)."""
    from featurestore.jobs.batch.transforms import transform_for

    for view in catalog.batch_views:
        check_view_sources(catalog, view.name, warehouse)
    return sorted({t for v in catalog.batch_views for t in transform_for(v).sources})


@dataclass(frozen=True)
class SourceRead:
    """One input table as the run reads it."""

    table: str
    version: int
    df: DataFrame
    partitions: str  # e.g. "ds 2024-05-02..2024-05-31" or "all rows"
    partitioned: bool = False  # has a ds column
    first_ds: date | None = None  # the oldest ds partition read (None: all partitions up to ds, or unpartitioned)


def latest_version(spark: SparkSession, path: Path) -> int:
    """The table's current Delta version (read once, so the run reads one consistent snapshot)."""
    from delta.tables import DeltaTable

    row = DeltaTable.forPath(spark, str(path)).history(1).select("version").first()
    assert row is not None  # a Delta table has at least version 0
    return int(row[0])


def read_source(
    spark: SparkSession, warehouse: str | os.PathLike[str], table: str, ds: date, lookback_days: int | None,
    version: int | None = None,
) -> SourceRead:  # fmt: skip
    """One input table at a pinned version, pruned to ``ds`` partitions ``[ds - lookback + 1, ds]``."""
    from delta.tables import DeltaTable
    from pyspark.sql import functions as F

    path = table_path(warehouse, table)
    if not DeltaTable.isDeltaTable(spark, str(path)):
        raise JobError(
            f"source table {table!r} not found: {path} is not a Delta table "
            "(create the sample warehouse with `featurestore generate --warehouse DIR`)"
        )
    pinned = latest_version(spark, path) if version is None else version
    try:
        df = spark.read.format("delta").option("versionAsOf", pinned).load(str(path))
    except Exception as exc:  # Delta's error for a version that does not exist (yet, or any more)
        raise JobError(f"source table {table!r}: cannot read version {pinned}: {str(exc).splitlines()[0]}") from None
    partitions = "all rows"
    first_ds = None
    if PARTITION_COLUMN in df.columns:
        upper = ds.isoformat()
        condition = F.col(PARTITION_COLUMN) <= F.lit(upper)
        partitions = f"{PARTITION_COLUMN} <= {upper}"
        if lookback_days:
            first_ds = ds - timedelta(days=lookback_days - 1)
            lower = first_ds.isoformat()
            condition &= F.col(PARTITION_COLUMN) >= F.lit(lower)
            partitions = f"{PARTITION_COLUMN} {lower}..{upper}"
        # a partition filter: Delta reads only these folders
        df = df.where(condition)
    return SourceRead(table, pinned, df, partitions, PARTITION_COLUMN in df.columns, first_ds)


@dataclass(frozen=True)
class SourceSnapshot:
    """Every input of a run at its pinned version, and what was counted in the view's own source.

    ``rows_in_ds`` is the number of rows of the view's source in the run's own ``ds``
    partition (``None`` when the source is not partitioned).  ``rows[table]`` holds the
    rows of every table read, per ``ds`` partition (partitions without rows are absent),
    or under ``"all"`` for a table without ``ds``.
    """

    ds: date
    reads: tuple[SourceRead, ...]  # the transform's sources, its own first
    rows_read: int
    rows_in_ds: int | None
    rows: Mapping[str, Mapping[str, int]] = field(default_factory=dict)

    @property
    def primary(self) -> SourceRead:
        return self.reads[0]

    @property
    def frames(self) -> dict[str, DataFrame]:
        return {read.table: read.df for read in self.reads}

    @property
    def versions(self) -> dict[str, int]:
        return {read.table: read.version for read in self.reads}

    @property
    def partitions(self) -> dict[str, str]:
        return {read.table: read.partitions for read in self.reads}


def read_snapshot(
    spark: SparkSession,
    transform: Transform,
    warehouse: str | os.PathLike[str],
    ds: date,
    version: int | None = None,
) -> SourceSnapshot:
    """Read every source of ``transform`` (``version`` pins the first), then count each one's rows in one scan."""
    reads = tuple(
        read_source(spark, warehouse, table, ds, transform.lookback_days.get(table), version if i == 0 else None)
        for i, table in enumerate(transform.sources)
    )
    rows = {read.table: count_rows(read) for read in reads}
    primary = reads[0]
    counted = rows[primary.table]
    rows_in_ds = counted.get(ds.isoformat(), 0) if primary.partitioned else None
    return SourceSnapshot(ds, reads, sum(counted.values()), rows_in_ds, rows)


def count_rows(read: SourceRead) -> dict[str, int]:
    """Rows per ``ds`` partition of what ``read`` reads (``{"all": n}`` without ``ds``), in one scan.

    A ``GROUP BY`` on the partition column: the total, the run's own partition and every
    partition the input guards check come out of the same pass.
    """
    from pyspark.sql import functions as F

    if not read.partitioned:
        return {WHOLE_TABLE: read.df.count()}
    grouped = read.df.groupBy(PARTITION_COLUMN).agg(F.count(F.lit(1)).alias("rows")).collect()
    return {str(row[PARTITION_COLUMN]): int(row["rows"]) for row in grouped}
