"""Backfill: compute past days of a batch view into the feature log, without touching Redis.

``featurestore backfill --view V --from 2024-05-01 --to 2024-05-31``

* **The sources as they were**: for each day ``D``, every source table is read at the
  Delta version that was current when the nightly run of ``D`` would have started
  (``as_of(D) + --load-delay-hours``, 02:00 UTC by default, the DAG's schedule): time
  travel.  A table created after that moment is read at its oldest version (a warehouse
  loaded after the fact), and the summary says so.
* **The same transform, cast and validation** as ``featurestore materialize``: row checks
  and the view's Great Expectations suite, per day; a day that fails is reported and not
  logged (the others are).
* **One pass per source snapshot**: days that read the same versions share one read of
  their sources (pruned to the days' lookback windows, cached), and the transform of every
  day is one union, computed once; the days that passed are written in one Delta commit.
* **Already logged days are kept** (a real run's log is what Redis served); ``--overwrite``
  replaces them.  Backfilled rows get ``_run_id = backfill-<view>-<ds>`` and
  ``_ts_ms = _written_at_ms = as_of(D) + load delay``: as if the nightly run had loaded them then.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch import schema, transforms, validation
from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, read_source, table_path
from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.core import repository
from featurestore.jobs.core.console import Steps
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

DEFAULT_LOAD_DELAY_HOURS = 2.0
MAX_DAYS = 3660


@dataclass
class BackfillSummary:
    """What a backfill did, day by day."""

    view: str
    logged: dict[str, int] = field(default_factory=dict)  # ds -> rows logged
    skipped: list[str] = field(default_factory=list)  # already in the log
    failed: dict[str, list[str]] = field(default_factory=dict)  # ds -> failures
    versions: dict[str, dict[str, int]] = field(default_factory=dict)  # ds -> {table: version}
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0

    def lines(self) -> list[str]:
        total = sum(self.logged.values())
        out = [
            f"backfill {self.view}: {len(self.logged)} days logged ({total:,} rows), {len(self.skipped)} already "
            f"logged, {len(self.failed)} failed validation, in {self.seconds:.1f}s"
        ]
        for ds, rows in sorted(self.logged.items()):
            versions = ", ".join(f"{t}@v{v}" for t, v in self.versions.get(ds, {}).items())
            out.append(f"  {ds}  {rows:>8,} rows  {versions}")
        for ds, failures in sorted(self.failed.items()):
            out.append(f"  {ds}  FAILED: " + "; ".join(failures[:3]))
        out += [f"  note  {n}" for n in self.notes]
        return out


def days_between(first: date, last: date) -> list[date]:
    """``first..last`` inclusive; refuses an empty or absurd range."""
    if last < first:
        raise ConfigurationError(f"--to {last} is before --from {first}")
    count = (last - first).days + 1
    if count > MAX_DAYS:
        raise ConfigurationError(f"--from {first} --to {last} is {count} days; backfill at most {MAX_DAYS} at once")
    return [first + timedelta(days=i) for i in range(count)]


def version_as_of(history: Sequence[tuple[int, datetime]], moment: datetime) -> tuple[int, bool]:
    """The newest version committed at or before ``moment`` (pure); ``(oldest, False)`` if none was."""
    ordered = sorted(history)
    before = [v for v, at in ordered if at <= moment]
    if before:
        return before[-1], True
    return ordered[0][0], False


def plan_versions(
    histories: Mapping[str, Sequence[tuple[int, datetime]]], days: Sequence[date], load_delay: timedelta
) -> tuple[dict[date, dict[str, int]], list[str]]:
    """Each day's source versions (pure), and notes for tables read at a version newer than the day."""
    plan: dict[date, dict[str, int]] = {}
    late: dict[str, list[date]] = {}
    for day in days:
        moment = transforms.as_of_for(day) + load_delay
        plan[day] = {}
        for table, history in histories.items():
            version, existed = version_as_of(history, moment)
            plan[day][table] = version
            if not existed:
                late.setdefault(table, []).append(day)
    notes = [
        f"table {t!r} did not exist yet on {len(d)} of the days ({d[0]}..{d[-1]}): read at its oldest version"
        for t, d in late.items()
    ]
    return plan, notes


def _history(spark: SparkSession, warehouse: Any, table: str) -> list[tuple[int, datetime]]:
    from delta.tables import DeltaTable

    rows = DeltaTable.forPath(spark, str(table_path(warehouse, table))).history().select("version", "timestamp")
    return [(int(r[0]), r[1].replace(tzinfo=UTC) if r[1].tzinfo is None else r[1]) for r in rows.collect()]


def compute_days(
    spark: SparkSession, view: FeatureView, days: Sequence[date], versions: Mapping[str, int], warehouse: Any
) -> tuple[DataFrame, list[DataFrame]]:
    """The view's rows for every day of ``days`` (sharing ``versions``) as one frame with a ``ds`` column,
    and the cached source frames (unpersist them when done)."""
    from pyspark.sql import functions as F

    transform = transforms.transform_for(view)
    repository.prepare_for_spark()  # a repository's UDFs reach the executors by value
    first, last = min(days), max(days)
    span = (last - first).days
    frames = {}
    for table in transform.sources:
        lookback = transform.lookback_days.get(table)
        read = read_source(spark, warehouse, table, last, lookback + span if lookback else None, versions[table])
        frames[table] = read.df.persist()
    parts = []
    for day in days:
        output = transform(frames, transforms.as_of_for(day))
        typed = validation.nan_to_null(schema.cast_to_view(output, view), view)
        parts.append(typed.withColumn(fl.PARTITION, F.lit(day.isoformat())))
    union = parts[0]
    for part in parts[1:]:
        union = union.unionByName(part)
    return union, list(frames.values())


def backfill(
    spark: SparkSession,
    view_name: str,
    first: date,
    last: date,
    *,
    catalog: Catalog | str | None = None,
    warehouse: str | os.PathLike[str] = DEFAULT_WAREHOUSE,
    feature_log: str | os.PathLike[str] | fl.LogSettings | None = None,
    expectations_dir: str | os.PathLike[str] | None = None,
    load_delay_hours: float = DEFAULT_LOAD_DELAY_HOURS,
    overwrite: bool = False,
    steps: Steps | None = None,
) -> BackfillSummary:
    """Compute ``first..last`` into the view's feature log (see the module docstring)."""
    from pyspark.sql import functions as F

    started = time.monotonic()
    chosen = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    view = chosen.view(view_name)
    if not view.is_batch:
        raise ConfigurationError(f"view {view.name!r} is a streaming view: only batch views are backfilled")
    settings = (
        feature_log if isinstance(feature_log, fl.LogSettings) else fl.LogSettings.resolve(warehouse, feature_log)
    )
    if not settings.enabled:
        raise ConfigurationError("the feature log is off (FEATURESTORE_FEATURE_LOG=off): nowhere to backfill to")
    suite = validation.load_suite(validation.suite_path(view, expectations_dir), view)
    transform = transforms.transform_for(view)
    days = days_between(first, last)
    summary = BackfillSummary(view.name)
    if not overwrite:
        logged = fl.read_log(spark, settings, view).select(fl.PARTITION).distinct().collect()
        done = {r[0] for r in logged}
        summary.skipped = [d.isoformat() for d in days if d.isoformat() in done]
        days = [d for d in days if d.isoformat() not in done]
    load_delay = timedelta(hours=load_delay_hours)
    histories = {table: _history(spark, warehouse, table) for table in transform.sources}
    plan, summary.notes = plan_versions(histories, days, load_delay)
    groups: dict[tuple[tuple[str, int], ...], list[date]] = {}
    for day in days:
        groups.setdefault(tuple(sorted(plan[day].items())), []).append(day)
    passed: list[Any] = []
    for n, (versions, group) in enumerate(groups.items(), 1):
        label = f"{group[0]}..{group[-1]} at " + ", ".join(f"{t}@v{v}" for t, v in versions)
        log.info("snapshot %d of %d: %d days, %s", n, len(groups), len(group), label, extra={"view": view.name})
        if steps is not None:
            steps.detail(f"snapshot {n}/{len(groups)}: {label}")
        computed, sources = compute_days(spark, view, group, dict(versions), warehouse)
        rows = computed.persist()
        group_logged: list[str] = []
        counts = {r[0]: int(r[1]) for r in rows.groupBy(fl.PARTITION).count().collect()}
        for day in group:
            ds = day.isoformat()
            one = rows.where(F.col(fl.PARTITION) == ds).drop(fl.PARTITION)
            failures = validation.check_rows(one, view).failures(view)
            failures += validation.run_suite(one, view, suite)[1]
            if failures:
                summary.failed[ds] = [str(f) for f in failures]
                log.warning("ds %s failed validation: %s", ds, "; ".join(map(str, failures[:3])))
                continue
            at_ms = int((transforms.as_of_for(day) + load_delay).timestamp() * 1000)
            passed.append(fl.batch_log_frame(one, view, day, f"backfill-{view.name}-{ds}", at_ms, at_ms))
            summary.logged[ds] = counts.get(ds, 0)
            summary.versions[ds] = dict(versions)
            group_logged.append(ds)
        if passed:
            union = passed[0]
            for frame in passed[1:]:
                union = union.unionByName(frame)
            _write_days(union, settings, view, group_logged)
            passed = []
        rows.unpersist()
        for frame in sources:
            frame.unpersist()
    summary.seconds = time.monotonic() - started
    return summary


def _write_days(frame: DataFrame, settings: fl.LogSettings, view: FeatureView, days: Sequence[str]) -> None:
    """Replace the ``days`` partitions of the view's log with ``frame`` in one commit."""
    listed = ", ".join(f"'{d}'" for d in days)
    frame.write.format("delta").mode("overwrite").partitionBy(fl.PARTITION).option(
        "replaceWhere", f"{fl.PARTITION} IN ({listed})"
    ).save(str(settings.path(view)))
