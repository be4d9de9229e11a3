"""The guards of the validation gate that compare a run with earlier runs: pure functions, no Spark.

Two guards complement the row checks, the suite and the collapse guard
(:mod:`featurestore.jobs.batch.validation`); their settings are the view's
:class:`~featurestore.readers.definitions.Guards` (docs/batch.md, "Guards"):

* **Input guards**, per source table: the row count of every partition that is new since
  the view's last successful run (``ds`` partitions after that run's ``ds``, up to the
  run's own; ``"all"`` for a table without ``ds``: a full reload is its one partition)
  against a trailing baseline, the median of the last ``baseline_runs`` partitions the
  view's successful runs recorded.  Below ``min_partition_share`` of it, the run is
  refused.  A table in ``must_change`` whose Delta version has not moved since the last
  successful run (for an earlier ``ds``) is a stale upstream, and every new partition of
  a date-partitioned table being empty is one too.  No baseline yet: accepted, with a note.
* **The drift guard**, per feature: the share of nulls, the share of defaults (zeros), and
  the mean in standard deviations, against the last successful run's statistics.

The Spark side counts (``sources.count_rows``) and profiles (``validation.check_rows``) in
one pass each; these functions only compare numbers, and every refusal names the table or
feature, both numbers and the setting.  An operator's override (``--accept-input TABLE``,
``--accept-drift FEATURE``) turns a refusal into an entry of the run record's ``overrides``.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import WHOLE_TABLE
from featurestore.jobs.batch.validation import DRIFT_CHECK, INPUT_ROWS_CHECK, INPUT_STALE_CHECK, Failure
from featurestore.jobs.core.run_records import RunRecord
from featurestore.readers.definitions import DType, Feature, FeatureView, Guards

# the check names (INPUT_ROWS_CHECK ...) live beside the gate, in validation.GUARD_CHECKS: a refusal
# by the guards alone raises GuardRefused
_DIGITS = 6  # significant digits kept in the run record's statistics

if TYPE_CHECKING:
    from pyspark.sql import Column


@dataclass(frozen=True)
class SourceRows:
    """What a run counted in one source table (``rows``: per ds partition read, or ``{"all": n}``)."""

    table: str
    version: int
    rows: Mapping[str, int]
    partitioned: bool
    first_ds: date | None = None  # the oldest partition read (None: every partition up to ds)


@dataclass
class GuardVerdict:
    """What the guards found: refusals, overridden refusals, notes and the numbers to record."""

    failures: list[Failure] = field(default_factory=list)
    overrides: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    input_rows: dict[str, dict[str, int]] = field(default_factory=dict)

    def extend(self, other: GuardVerdict) -> None:
        self.failures += other.failures
        self.overrides += other.overrides
        self.notes += other.notes
        self.input_rows.update(other.input_rows)


@dataclass(frozen=True)
class Override:
    """An operator's decision to accept what a guard refuses: which targets, who, why."""

    tables: frozenset[str] = frozenset()  # --accept-input
    features: frozenset[str] = frozenset()  # --accept-drift
    by: str = ""
    reason: str = ""

    def entry(self, guard: str, target: str, failure: Failure) -> dict[str, str]:
        return {"guard": guard, "target": target, "by": self.by, "reason": self.reason, "failure": str(failure)}


def _run(record: RunRecord) -> str:
    return f"{record.run_id} (ds {record.ds})"


def _fmt(value: float | None) -> str:
    return "none" if value is None else f"{value:.4g}"


# --- input guards ------------------------------------------------------------------------------


def median(values: Sequence[int]) -> float:
    """The median of a non-empty list of counts."""
    return float(statistics.median(values))


def new_partitions(source: SourceRows, ds: date, previous: RunRecord | None) -> list[str]:
    """The partitions of ``source`` that are new since ``previous`` (the last successful run).

    ``ds`` partitions after the previous run's ``ds`` up to ``ds`` itself, within what the run
    read; just ``ds`` on a first run, a re-run or a backfill of an earlier day; ``"all"`` for
    a table without ``ds``.
    """
    if not source.partitioned:
        return [WHOLE_TABLE]
    first = ds
    if previous is not None:
        last = date.fromisoformat(previous.ds)
        if last < ds:
            first = last + timedelta(days=1)
    if source.first_ds is not None:
        first = max(first, source.first_ds)
    return [(first + timedelta(days=i)).isoformat() for i in range((ds - first).days + 1)]


def baseline(table: str, history: Iterable[RunRecord], partitioned: bool, size: int) -> list[int]:
    """Row counts of ``table``'s last ``size`` recorded partitions, newest run first.

    A date partition counts once (a re-run of a day records it again: the newer count
    wins); a table without ``ds`` gives one sample per run.
    """
    samples: dict[str, int] = {}
    for i, record in enumerate(history):
        for partition, rows in sorted(record.input_rows.get(table, {}).items(), reverse=True):
            key = partition if partitioned else f"{partition}#{i}"
            samples.setdefault(key, int(rows))
            if len(samples) >= size:
                return list(samples.values())
    return list(samples.values())


def input_guard(
    view: FeatureView,
    ds: date,
    sources: Sequence[SourceRows],
    history: Sequence[RunRecord],
    override: Override = Override(),
) -> GuardVerdict:
    """The input guards of one run; ``history`` is the view's last successful runs, newest first."""
    guards: Guards = view.guards
    previous = history[0] if history else None
    verdict = GuardVerdict()
    for source in sources:
        checked = new_partitions(source, ds, previous)
        counts = {p: int(source.rows.get(p, 0)) for p in checked}
        verdict.input_rows[source.table] = counts
        failures = _stale_failures(view, ds, source, counts, previous)
        samples = baseline(source.table, history, source.partitioned, guards.baseline_runs)
        what = f"source {source.table!r}"
        if not samples:
            shown = ", ".join(f"{_label(p)} {n:,} rows" for p, n in counts.items())
            verdict.notes.append(
                f"input guard: no earlier successful run of view {view.name!r} recorded {what}: "
                f"nothing to compare {shown} with (first run); recorded as the baseline of the next runs"
            )
        elif guards.min_partition_share > 0:
            base = median(samples)
            for partition, rows in counts.items():
                if rows < guards.min_partition_share * base:
                    failures.append(
                        Failure(
                            INPUT_ROWS_CHECK,
                            f"{what} {_label(partition)} has {rows:,} rows, {rows / base:.0%} of the baseline "
                            f"{base:,.0f} (median of the last {len(samples)} recorded partitions); view "
                            f"{view.name!r} needs at least {guards.min_partition_share:.0%} "
                            "(Guards.min_partition_share)",
                        )
                    )
        _apply(verdict, failures, "input", source.table, source.table in override.tables, override)
    return verdict


def _label(partition: str) -> str:
    return "(whole table)" if partition == WHOLE_TABLE else f"partition ds={partition}"


def _stale_failures(
    view: FeatureView, ds: date, source: SourceRows, counts: Mapping[str, int], previous: RunRecord | None
) -> list[Failure]:
    what = f"source {source.table!r}"
    if source.partitioned and counts and not any(counts.values()):
        shown = ", ".join(counts)
        return [Failure(INPUT_STALE_CHECK, f"{what} has no rows in its new partition(s) ds={shown}: no upstream load")]
    if previous is None or source.table not in view.guards.must_change or previous.ds >= ds.isoformat():
        return []
    if previous.source_versions.get(source.table) == source.version:
        return [
            Failure(
                INPUT_STALE_CHECK,
                f"{what} is still at version {source.version}, as in the last successful run {_run(previous)}: "
                f"nothing was loaded since, but view {view.name!r} expects it to change (Guards.must_change)",
            )
        ]
    return []


def _apply(
    verdict: GuardVerdict, failures: list[Failure], guard: str, target: str, accepted: bool, override: Override
) -> None:
    if accepted:
        verdict.overrides += [override.entry(guard, target, f) for f in failures]
    else:
        verdict.failures += failures


def unused_overrides(verdict: GuardVerdict, override: Override) -> list[str]:
    """Notes for accepted targets no guard refused (a typo'd table or a drift that did not happen is visible)."""
    used = {(e["guard"], e["target"]) for e in verdict.overrides}
    notes = [f"--accept-input {t}: the input guards did not refuse it" for t in sorted(override.tables)]
    notes = [n for t, n in zip(sorted(override.tables), notes) if ("input", t) not in used]
    notes += [
        f"--accept-drift {f}: it did not drift beyond its limits"
        for f in sorted(override.features)
        if ("drift", f) not in used
    ]
    return notes


# --- the drift guard ---------------------------------------------------------------------------


def default_value(feature: Feature) -> Any:
    """The value whose share the drift guard follows: the default, else 0 / 0.0 / "" / False (None: vectors)."""
    dtype = DType(feature.dtype)
    if dtype is DType.VECTOR:
        return None
    if feature.default is not None:
        return feature.default
    return {DType.INT64: 0, DType.FLOAT64: 0.0, DType.FLOAT32: 0.0, DType.STRING: "", DType.BOOL: False}[dtype]


def has_mean(feature: Feature) -> bool:
    """Numbers and booleans have a mean (a bool's is its share of True)."""
    return DType(feature.dtype).is_numeric


def _round(value: Any) -> float | None:
    if value is None:
        return None
    number = float(value)
    if not math.isfinite(number):
        return None
    return float(f"{number:.{_DIGITS}g}")


def profile_columns(view: FeatureView) -> list[Column]:
    """The aggregate columns :func:`profile` reads, for the row checks' single pass (``validation.check_rows``).

    NaN counts as null (the writer stores it as an absent field) and stays out of the mean.
    """
    from pyspark.sql import functions as F

    out = []
    for feature in view.features:
        column, dtype = F.col(feature.name), DType(feature.dtype)
        floating = dtype in (DType.FLOAT32, DType.FLOAT64)
        missing = (column.isNull() | F.isnan(column)) if floating else column.isNull()
        out.append(F.count(F.when(missing, True)).alias(f"null:{feature.name}"))
        default = default_value(feature)
        if default is not None:
            out.append(F.count(F.when(column == F.lit(default), True)).alias(f"dflt:{feature.name}"))
        if has_mean(feature):
            number = F.when(~missing, column.cast("double")) if floating else column.cast("double")
            out.append(F.avg(number).alias(f"mean:{feature.name}"))
            out.append(F.stddev_samp(number).alias(f"sd:{feature.name}"))
    return out


def profile(view: FeatureView, rows: int, aggregates: Mapping[str, Any]) -> dict[str, dict[str, float | None]]:
    """Per-feature statistics from one aggregation's results (``null:``, ``dflt:``, ``mean:``, ``sd:`` columns)."""
    out: dict[str, dict[str, float | None]] = {}
    for feature in view.features:
        name = feature.name
        stats: dict[str, float | None] = {"rows": float(rows)}
        stats["null_share"] = _round(int(aggregates[f"null:{name}"]) / rows) if rows else None
        if f"dflt:{name}" in aggregates:
            stats["default_share"] = _round(int(aggregates[f"dflt:{name}"]) / rows) if rows else None
        if f"mean:{name}" in aggregates:
            stats["mean"] = _round(aggregates[f"mean:{name}"])
            stats["std"] = _round(aggregates[f"sd:{name}"]) if aggregates[f"sd:{name}"] is not None else 0.0
        out[name] = stats
    return out


def drift_guard(
    view: FeatureView,
    stats: Mapping[str, Mapping[str, float | None]],
    previous: RunRecord | None,
    override: Override = Override(),
) -> GuardVerdict:
    """Each feature's statistics against the last successful run's, within the view's :class:`Drift` limits."""
    verdict = GuardVerdict()
    if previous is None or not previous.feature_stats:
        verdict.notes.append(
            f"drift guard: no earlier successful run of view {view.name!r} with feature statistics: "
            "nothing to compare with (first run); recorded as the baseline of the next run"
        )
        return verdict
    for feature in view.features:
        before, now = previous.feature_stats.get(feature.name), stats.get(feature.name)
        if before is None or now is None:
            continue
        failures = feature_drift(view, feature.name, now, before, f"the last successful run {_run(previous)}")
        _apply(verdict, failures, "drift", feature.name, feature.name in override.features, override)
    return verdict


def feature_drift(
    view: FeatureView,
    name: str,
    now: Mapping[str, float | None],
    before: Mapping[str, float | None],
    previous_run: str,
) -> list[Failure]:
    """One feature's drift failures: each names the feature, the statistic, both values and the limit."""
    limits = view.guards.drift_for(name)
    setting = f"Guards.feature_drift[{name!r}]" if name in view.guards.feature_drift else "Guards.drift"
    out = []
    for stat, limit in (("null_share", limits.null_share), ("default_share", limits.default_share)):
        old, new = before.get(stat), now.get(stat)
        if limit is None or old is None or new is None:
            continue
        if abs(new - old) > limit:
            out.append(
                Failure(
                    DRIFT_CHECK,
                    f"feature {name!r}: {stat.replace('_', ' ')} {old:.1%} -> {new:.1%} since {previous_run}, "
                    f"a change of {abs(new - old):.1%}; view {view.name!r} allows {limit:.1%} ({setting}.{stat})",
                )
            )
    old_mean, new_mean, old_sd = before.get("mean"), now.get("mean"), before.get("std")
    if limits.mean_shift is not None and old_mean is not None and new_mean is not None:
        shift = mean_shift(old_mean, new_mean, old_sd)
        if shift > limits.mean_shift:
            out.append(
                Failure(
                    DRIFT_CHECK,
                    f"feature {name!r}: mean {_fmt(old_mean)} -> {_fmt(new_mean)} since {previous_run}, a shift of "
                    f"{shift:.3g} standard deviations (sd {_fmt(old_sd)}); view {view.name!r} allows "
                    f"{limits.mean_shift:g} ({setting}.mean_shift)",
                )
            )
    return out


def mean_shift(old: float, new: float, old_sd: float | None) -> float:
    """How far the mean moved, in standard deviations of the earlier values (a constant that moved: inf)."""
    if new == old:
        return 0.0
    if not old_sd:
        return math.inf
    return abs(new - old) / old_sd
