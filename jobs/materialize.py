"""The batch materialization job: Delta source -> transform -> cast -> validate -> Redis.

``featurestore materialize --view V --ds YYYY-MM-DD [--redis-url URL] ...`` (and the
``spark-submit`` entry file ``jobs/materialize_job.py``) run :func:`materialize`:

1. **read** every input table of the view's transform from the warehouse at one pinned
   Delta version (``--version`` for the view's own source, else the latest, resolved
   once and recorded), pruned to the ``ds`` partitions the transform can use;
2. **transform** (pure, point-in-time correct as of the end of ``ds``) and **cast** to
   the view's schema;
3. **validate**: built-in row checks, the view's Great Expectations suite and the
   collapse guard.  A failure writes nothing, records a ``failed_validation`` run and
   exits 2;
4. publish the view's **registry** entry, then **write** on the executors
   (``featurestore.jobs.writer.write_view``); rows that could not be written make the
   run ``failed`` (exit 1) — a re-run is safe, writes are idempotent;
5. **record** the run in ``fs:runs`` and print a short summary.

``--redis-url`` defaults to ``$FEATURESTORE_REDIS_URL`` so a scheduler need not put a
password on a command line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs import run_records, schema, transforms, validation
from featurestore.jobs.run_records import REDIS_URL_ENV_VAR, RunRecord
from featurestore.jobs.sample_data import DEFAULT_WAREHOUSE, parse_date, table_path
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, FeatureView, load_catalog
from featurestore.readers.errors import (
    ConfigurationError,
    FeatureStoreError,
    JobError,
    ValidationFailed,
    WriteError,
)
from featurestore.readers.settings import redact_text, redact_url

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

WAREHOUSE_ENV_VAR = "FEATURESTORE_WAREHOUSE"
EXIT_FAILED = 1
EXIT_VALIDATION = 2
PARTITION_COLUMN = "ds"


@dataclass(frozen=True)
class MaterializeRequest:
    """Everything one run needs besides the SparkSession."""

    view: str
    ds: date
    redis_url: str
    warehouse: str | os.PathLike[str] = DEFAULT_WAREHOUSE
    catalog: Catalog | str | None = None
    expectations_dir: str | os.PathLike[str] | None = None
    version: int | None = None
    max_writes_per_sec: float | None = None
    min_row_ratio: float = validation.DEFAULT_MIN_ROW_RATIO
    run_id: str | None = None

    def __post_init__(self) -> None:
        if self.version is not None and self.version < 0:
            raise ConfigurationError(f"--version must be >= 0, got {self.version}")
        if self.max_writes_per_sec is not None and self.max_writes_per_sec <= 0:
            raise ConfigurationError(f"--max-writes-per-sec must be > 0, got {self.max_writes_per_sec}")
        if not 0 <= self.min_row_ratio <= 1:
            raise ConfigurationError(f"--min-row-ratio must be between 0 and 1, got {self.min_row_ratio}")


@dataclass
class RunOutcome:
    """What :func:`materialize` did: the record (as stored in ``fs:runs``) and the details."""

    record: RunRecord
    seconds: float = 0.0
    entities_per_second: float = 0.0
    ignored_columns: list[str] = field(default_factory=list)
    source_partitions: dict[str, str] = field(default_factory=dict)

    @property
    def exit_code(self) -> int:
        return {"succeeded": 0, "failed_validation": EXIT_VALIDATION}.get(self.record.status, EXIT_FAILED)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(view: str, ds: date) -> str:
    """``<view>-<ds>-<12 hex>``: readable in ``featurestore runs``, unique per run."""
    return f"{view}-{ds.isoformat()}-{uuid.uuid4().hex[:12]}"


# --- reading the sources ------------------------------------------------------------------


@dataclass(frozen=True)
class SourceRead:
    table: str
    version: int
    df: DataFrame
    partitions: str  # e.g. "ds 2024-05-02..2024-05-31" or "all rows"


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
    if PARTITION_COLUMN in df.columns:
        upper = ds.isoformat()
        condition = F.col(PARTITION_COLUMN) <= F.lit(upper)
        partitions = f"{PARTITION_COLUMN} <= {upper}"
        if lookback_days:
            lower = (ds - timedelta(days=lookback_days - 1)).isoformat()
            condition &= F.col(PARTITION_COLUMN) >= F.lit(lower)
            partitions = f"{PARTITION_COLUMN} {lower}..{upper}"
        # a partition filter: Delta reads only these folders
        df = df.where(condition)
    return SourceRead(table, pinned, df, partitions)


# --- the job --------------------------------------------------------------------------------


def prepare(
    request: MaterializeRequest,
) -> tuple[Catalog, FeatureView, transforms.Transform, Path, dict[str, Any]]:
    """Everything that can be checked without Spark: the view, its transform and its suite."""
    catalog = request.catalog if isinstance(request.catalog, Catalog) else load_catalog(request.catalog)
    view = catalog.view(request.view)
    if not view.is_batch:
        raise ConfigurationError(
            f"view {view.name!r} is a streaming view; it is written by the streaming hook, not materialized"
        )
    transform = transforms.transform_for(view.name)
    if view.source and transform.sources[0] != view.source:
        raise ConfigurationError(
            f"view {view.name!r}: its source is {view.source!r} but its transform reads {transform.sources[0]!r} first"
        )
    suite_file = validation.suite_path(view, request.expectations_dir)
    return catalog, view, transform, suite_file, validation.load_suite(suite_file, view)


def materialize(spark: SparkSession, request: MaterializeRequest) -> RunOutcome:
    """Run one materialization and record it in ``fs:runs``.

    * A configuration problem (unknown view, no transform, missing suite, unreachable
      Redis) raises before anything runs, and nothing is recorded.
    * A validation, schema or write failure is *recorded* (status ``failed_validation`` /
      ``failed``) and returned, with the error in ``outcome.record.error``; call
      :func:`raise_for_outcome` to turn it into an exception.
    * Any other error (Spark, Delta) is recorded as ``failed`` and re-raised.
    """
    started = time.time()
    catalog, view, transform, suite_file, suite = prepare(request)
    run_id = request.run_id or new_run_id(view.name, request.ds)
    client = run_records.connect(request.redis_url)  # fail fast: no point computing without a target
    record = RunRecord(
        run_id=run_id,
        view=view.name,
        ds=request.ds.isoformat(),
        source_table=transform.sources[0],
        source_version=None,
        status="failed",
        started_at=_iso(started),
    )
    outcome = RunOutcome(record)
    cached: list[DataFrame] = []
    try:
        _run(spark, request, catalog, view, transform, suite, str(suite_file), client, outcome, cached)
    except ValidationFailed as exc:
        record.status = "failed_validation"
        record.error = redact_text(str(exc))
        record.failures = [str(f) for f in getattr(exc, "failures", [])]
    except FeatureStoreError as exc:
        record.status = "failed"
        record.error = redact_text(str(exc))
    except Exception as exc:  # Spark, Delta or Redis errors: recorded, then re-raised below
        record.status = "failed"
        record.error = redact_text(f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}")
        _finish(client, outcome, started)
        raise
    finally:
        for df in cached:
            df.unpersist()
    _finish(client, outcome, started)
    return outcome


def _finish(client: Any, outcome: RunOutcome, started: float) -> None:
    finished = time.time()
    outcome.record.finished_at = _iso(finished)
    outcome.seconds = finished - started
    try:
        run_records.record_run(client, outcome.record)
    finally:
        client.close()


def _timed(durations: dict[str, float], stage: str, started: float) -> float:
    now = time.monotonic()
    durations[stage] = round(now - started, 3)
    return now


def _run(
    spark: SparkSession,
    request: MaterializeRequest,
    catalog: Catalog,
    view: FeatureView,
    transform: transforms.Transform,
    suite: Mapping[str, Any],
    suite_file: str,
    client: Any,
    outcome: RunOutcome,
    cached: list[DataFrame],
) -> None:
    from pyspark import StorageLevel
    from pyspark.sql import functions as F

    record = outcome.record
    durations = record.durations
    clock = time.monotonic()

    # 1. read: every input at one pinned version
    inputs: dict[str, DataFrame] = {}
    for i, table in enumerate(transform.sources):
        read = read_source(
            spark, request.warehouse, table, request.ds, transform.lookback_days.get(table),
            request.version if i == 0 else None,
        )  # fmt: skip
        inputs[table] = read.df
        record.source_versions[table] = read.version
        outcome.source_partitions[table] = read.partitions
    primary = inputs[transform.sources[0]]
    record.source_version = record.source_versions[transform.sources[0]]
    partitioned = PARTITION_COLUMN in primary.columns
    in_partition = F.col(PARTITION_COLUMN) == F.lit(request.ds.isoformat()) if partitioned else F.lit(True)
    counts = primary.agg(F.count(F.lit(1)), F.count(F.when(in_partition, True))).first()  # one scan for both
    assert counts is not None  # a global aggregate has one row
    record.rows_read = int(counts[0])
    if partitioned and not counts[1]:
        raise ValidationFailed(
            f"view {view.name!r} failed validation, nothing was written: source {transform.sources[0]!r} "
            f"(version {record.source_version}) has no rows in partition {PARTITION_COLUMN}={request.ds}"
        )
    clock = _timed(durations, "read", clock)

    # 2. transform + cast, cached: the checks, the suite and the writer all scan it
    as_of = transforms.as_of_for(request.ds)
    output = transform(inputs, as_of)
    outcome.ignored_columns = schema.extra_columns(output, view)
    typed = schema.cast_to_view(output, view).persist(StorageLevel.MEMORY_AND_DISK)
    cached.append(typed)
    checks = validation.check_rows(typed, view)
    record.rows_out = checks.rows
    record.nan_as_null = dict(checks.nan_as_null)
    clock = _timed(durations, "transform", clock)

    # 3. validate: row checks, the suite, the collapse guard; report every failure at once
    clean = validation.nan_to_null(typed, view)
    failures = checks.failures(view)
    _, suite_failures = validation.run_suite(clean, view, suite)
    failures += suite_failures
    previous = run_records.latest_run(client, view.name, status="succeeded")
    if previous is not None:
        failures += validation.collapse_failures(
            {"rows": checks.rows, "rows_read": record.rows_read},
            {
                "rows": previous.rows_out or previous.rows_written + previous.rows_failed,
                "rows_read": previous.rows_read,
            },
            request.min_row_ratio,
            previous_run=f"{previous.run_id} (ds {previous.ds})",
        )
    clock = _timed(durations, "validate", clock)
    validation.raise_if_failed(view, failures, suite_file)

    # 4. publish the definition, then write.  Published first: from the first row on,
    # Redis holds values in this definition's encoding, and a reader with other
    # definitions must refuse to start rather than mis-decode them.
    now_ms = int(time.time() * 1000)
    client.hset(codec.REGISTRY_KEY, view.name, codec.registry_entry(view, now_ms, record.run_id))
    from featurestore.jobs.writer import write_view

    stats = write_view(
        clean, catalog, view, request.redis_url, computed_at_ms=now_ms, max_writes_per_sec=request.max_writes_per_sec
    )
    _timed(durations, "write", clock)
    record.rows_written = stats.written
    record.rows_failed = stats.failed
    record.entities_written = stats.entities
    record.retries = stats.retries
    record.failures = [redact_text(f) for f in stats.failures]
    outcome.entities_per_second = stats.entities / stats.seconds if stats.seconds > 0 else 0.0
    if stats.failed:
        raise WriteError(
            f"view {view.name!r}: {stats.failed} of {stats.rows} rows could not be written to "
            f"{redact_url(request.redis_url)} after retries (re-run to complete; writes are idempotent): "
            + "; ".join(record.failures[:3])
        )
    record.status = "succeeded"
    record.error = None


def raise_for_outcome(outcome: RunOutcome) -> None:
    """Turn a recorded failure back into the exception (for API callers that want one)."""
    record = outcome.record
    if record.status == "failed_validation":
        raise ValidationFailed(record.error or f"view {record.view!r} failed validation")
    if record.status != "succeeded":
        raise JobError(record.error or f"view {record.view!r}: run {record.run_id} failed")


# --- output ------------------------------------------------------------------------------


def summary(outcome: RunOutcome) -> str:
    """A few lines for the job's log: what was read, validated, written, and how fast."""
    r = outcome.record
    lines = [f"materialize {r.view} ds={r.ds}: {r.status.upper()} in {outcome.seconds:.1f}s (run {r.run_id})"]
    sources = ", ".join(
        f"{table}@v{version} ({outcome.source_partitions.get(table, '')})"
        for table, version in r.source_versions.items()
    )
    if sources:
        lines.append(f"  read     {r.rows_read:,} rows of {r.source_table}; inputs {sources}")
    lines.append(f"  rows     {r.rows_out:,} entities to write")
    if r.nan_as_null:
        lines.append("  NaN      stored as null (absent): " + ", ".join(f"{k} {v}" for k, v in r.nan_as_null.items()))
    if outcome.ignored_columns:
        lines.append(f"  ignored  columns not in the view: {', '.join(outcome.ignored_columns)}")
    if r.status != "failed_validation" and "write" in r.durations:
        lines.append(
            f"  wrote    {r.entities_written:,} entities ({r.rows_written:,} rows, {r.rows_failed:,} failed, "
            f"{r.retries:,} retries) at {outcome.entities_per_second:,.0f} entities/s"
        )
    lines.append("  seconds  " + ", ".join(f"{k} {v:.1f}" for k, v in r.durations.items()))
    if r.error:
        lines.append(f"  error    {r.error}")
    return "\n".join(lines)


# --- `featurestore materialize` --------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--view", required=True, help="the batch view to materialize")
    parser.add_argument("--ds", required=True, help="the run date YYYY-MM-DD: features as of the end of that UTC day")
    parser.add_argument("--redis-url", default=None, help=f"target Redis (default: ${REDIS_URL_ENV_VAR})")
    parser.add_argument(
        "--warehouse",
        default=None,
        help=f"folder of the Delta tables (default: ${WAREHOUSE_ENV_VAR} or {DEFAULT_WAREHOUSE})",
    )
    parser.add_argument("--catalog", default=None, help="module defining `catalog` (default: $FEATURESTORE_CATALOG)")
    parser.add_argument("--expectations", default=None, help="folder of the GX suites (default: expectations/)")
    parser.add_argument(
        "--version", type=int, default=None, help="Delta version of the view's source (default: latest)"
    )
    parser.add_argument(
        "--max-writes-per-sec", type=float, default=None, help="cap the load rate (entities/s, all writers)"
    )
    parser.add_argument(
        "--min-row-ratio", type=float, default=validation.DEFAULT_MIN_ROW_RATIO,
        help="fail if rows fall below this share of the last successful run (default 0.5; 0 disables)",
    )  # fmt: skip
    parser.add_argument("--run-id", default=None, help="an id for the run (default: generated)")
    parser.add_argument("--json", action="store_true", help="also print the run record as one JSON line")


def request_from_args(args: argparse.Namespace) -> MaterializeRequest:
    url = args.redis_url or os.environ.get(REDIS_URL_ENV_VAR)
    if not url:
        raise ConfigurationError(f"no Redis URL: pass --redis-url or set {REDIS_URL_ENV_VAR}")
    return MaterializeRequest(
        view=args.view,
        ds=parse_date(args.ds),
        redis_url=url,
        warehouse=args.warehouse or os.environ.get(WAREHOUSE_ENV_VAR) or DEFAULT_WAREHOUSE,
        catalog=args.catalog,
        expectations_dir=args.expectations,
        version=args.version,
        max_writes_per_sec=args.max_writes_per_sec,
        min_row_ratio=args.min_row_ratio,
        run_id=args.run_id,
    )


def session(spark: SparkSession | None, app_name: str) -> tuple[SparkSession, bool]:
    """The given or already active session (not ours to stop), else a new one (ours)."""
    if spark is not None:
        return spark, False
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # e.g. called in-process by a notebook or a test
        return active, False
    from featurestore.jobs.spark import build_session

    return build_session(app_name), True


def run(args: argparse.Namespace, spark: SparkSession | None = None) -> int:
    """Run from parsed arguments; prints the summary, returns 0 / 1 (failed) / 2 (failed validation)."""
    request = request_from_args(args)
    # a typo, a missing suite or an unreachable Redis fails in a second, before Spark starts
    prepare(request)
    run_records.connect(request.redis_url).close()
    spark, own_session = session(spark, f"featurestore-materialize-{request.view}")
    try:
        outcome = materialize(spark, request)
    finally:
        if own_session:
            spark.stop()
    stream = sys.stdout if outcome.exit_code == 0 else sys.stderr
    print(summary(outcome), file=stream)
    if args.json:
        print(json.dumps(json.loads(outcome.record.to_json()), sort_keys=True))
    return outcome.exit_code


def main(argv: list[str] | None = None) -> int:
    """``python -m featurestore.jobs.materialize``: same as ``featurestore materialize``."""
    parser = argparse.ArgumentParser(prog="featurestore materialize", description=__doc__)
    add_arguments(parser)
    args = parser.parse_args(argv)
    try:
        return run(args)
    except FeatureStoreError as exc:
        print(f"featurestore materialize: error: {redact_text(str(exc))}", file=sys.stderr)
        return EXIT_FAILED


if __name__ == "__main__":
    raise SystemExit(main())
