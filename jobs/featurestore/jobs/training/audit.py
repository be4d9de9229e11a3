"""The online/offline audit: does Redis serve what the feature log says it should?

``featurestore audit --view V --ds D [--sample N] [--recompute] [--max-mismatch-rate R]``

1. samples ``N`` entities of the view's log partition ``ds=D`` (the rows run ``D`` wrote);
2. reads them from Redis with the reader (one pipelined round trip) and notes the read time;
3. builds the point-in-time values of the same entities at that time from the feature log
   (:mod:`.point_in_time`: the reader's rules, applied to the log) and compares value by
   value and status by status;
4. with ``--recompute``, computes the view again at the source versions recorded in the
   run record of ``D`` (``fs:runs``), with the same transform and cast, and compares it with
   the logged rows: the run is reproducible;
5. prints the mismatch rate per feature with examples, appends the audit to ``fs:audits``
   (a Redis stream, like the run records) and exits 1 when a feature's mismatch rate
   (served or recomputed) is above ``--max-mismatch-rate`` (default 0.01).
"""

from __future__ import annotations

import json
import logging
import math
import struct
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE
from featurestore.jobs.core import control_plane, repository, run_records
from featurestore.jobs.core import feature_log as fl
from featurestore.jobs.training.point_in_time import STATUS_SUFFIX, Requested, point_in_time
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView
from featurestore.readers.errors import ConfigurationError, JobError
from featurestore.readers.repository import load_catalog

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

log = logging.getLogger(__name__)

AUDITS_KEY = "fs:audits"
MAX_AUDITS = 10_000
DEFAULT_SAMPLE = 1000
DEFAULT_MAX_MISMATCH_RATE = 0.01
MAX_EXAMPLES = 3
FLOAT_TOLERANCE = 1e-6  # relative, for recomputed floats (a sum's order may differ between runs)


@dataclass
class FeatureAudit:
    """One feature's comparison: how many entities differed, and a few of them."""

    compared: int = 0
    mismatches: int = 0
    examples: list[str] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.mismatches / self.compared if self.compared else 0.0

    def add(self, same: bool, example: str) -> None:
        self.compared += 1
        if not same:
            self.mismatches += 1
            if len(self.examples) < MAX_EXAMPLES:
                self.examples.append(example)


@dataclass
class AuditReport:
    """What one audit found (stored as JSON in ``fs:audits``)."""

    view: str
    ds: str
    audited_at: str
    sample: int
    max_mismatch_rate: float
    served: dict[str, FeatureAudit] = field(default_factory=dict)
    recomputed: dict[str, FeatureAudit] | None = None
    source_versions: dict[str, int] = field(default_factory=dict)
    note: str | None = None

    @property
    def worst_rate(self) -> float:
        audits = list(self.served.values()) + list((self.recomputed or {}).values())
        return max((a.rate for a in audits), default=0.0)

    @property
    def ok(self) -> bool:
        return self.worst_rate <= self.max_mismatch_rate

    def to_json(self) -> str:
        data = asdict(self)
        data["worst_rate"] = self.worst_rate
        data["ok"] = self.ok
        return json.dumps(data, sort_keys=True, separators=(",", ":"))

    def summary(self) -> str:
        verdict = "OK" if self.ok else "MISMATCH"
        lines = [
            f"audit {self.view} ds={self.ds}: {verdict}, worst mismatch rate {self.worst_rate:.2%} "
            f"(limit {self.max_mismatch_rate:.2%}) over {self.sample:,} entities"
        ]
        if self.note:
            lines.append(f"  note     {self.note}")
        for title, audits in (("served vs log", self.served), ("recomputed vs log", self.recomputed or {})):
            if audits:
                lines.append(f"  {title}:")
            for name, audit in audits.items():
                lines.append(f"    {name:<32} {audit.mismatches:>6,} of {audit.compared:,} ({audit.rate:.2%})")
                lines += [f"      e.g. {example}" for example in audit.examples]
        return "\n".join(lines)


def _same_value(feature: Feature, a: Any, b: Any, tolerance: float = 0.0) -> bool:
    """Equal as the feature's type: float32 as float32 bits (the reader and the log both give the
    float32 widened to a float64 now; the bits also match records a reader older than that served)."""
    if a is None or b is None:
        return a is None and b is None
    dtype = DType(feature.dtype)
    if dtype in (DType.FLOAT32, DType.FLOAT64):
        a, b = float(a), float(b)
        if math.isnan(a) or math.isnan(b):
            return math.isnan(a) and math.isnan(b)
        if dtype is DType.FLOAT32 and not tolerance:
            return struct.pack("<f", a) == struct.pack("<f", b)
        return bool(a == b or abs(a - b) <= tolerance * max(1.0, abs(a), abs(b)))
    if dtype is DType.VECTOR:
        return len(a) == len(b) and all(_same_value(Feature("x", "float32"), x, y, tolerance) for x, y in zip(a, b))
    return bool(a == b)


def compare_served(
    view: FeatureView,
    served: Sequence[tuple[object, Mapping[str, Any], Mapping[str, str]]],
    expected: Mapping[Any, Any],
) -> dict[str, FeatureAudit]:
    """Per feature: the reader's (value, status) for each entity against the point-in-time row (pure)."""
    out = {f.name: FeatureAudit() for f in view.features}
    for entity_id, values, statuses in served:
        row = expected.get(entity_id)
        for feature in view.features:
            name = feature.name
            want = (None, "absent from the log") if row is None else (row[name], row[name + STATUS_SUFFIX])
            got = (values[name], statuses[name])
            same = row is not None and _same_value(feature, got[0], want[0]) and got[1] == want[1]
            out[name].add(
                same, f"{view.entity.name} {entity_id}: Redis {got[0]!r} ({got[1]}), log {want[0]!r} ({want[1]})"
            )
    return out


def compare_recomputed(
    view: FeatureView, logged: Mapping[Any, Any], recomputed: Mapping[Any, Any]
) -> dict[str, FeatureAudit]:
    """Per feature: the logged value of each entity against a fresh recomputation (pure)."""
    out = {f.name: FeatureAudit() for f in view.features}
    for entity_id, row in logged.items():
        again = recomputed.get(entity_id)
        for feature in view.features:
            name = feature.name
            theirs = None if again is None else again[name]
            same = again is not None and _same_value(feature, row[name], theirs, FLOAT_TOLERANCE)
            out[name].add(same, f"{view.entity.name} {entity_id}: logged {row[name]!r}, recomputed {theirs!r}")
    return out


def record_audit(client: Any, report: AuditReport) -> str:
    """Append the audit to ``fs:audits``; returns the stream entry id."""
    entry = client.xadd(AUDITS_KEY, {"audit": report.to_json()}, maxlen=MAX_AUDITS, approximate=True)
    return entry.decode() if isinstance(entry, bytes) else str(entry)


def _sampled(spark: SparkSession, settings: fl.LogSettings, view: FeatureView, ds: date, sample: int) -> DataFrame:
    from pyspark.sql import functions as F

    logged = fl.read_log(spark, settings, view).where(F.col(fl.PARTITION) == ds.isoformat())
    key = view.entity.join_key
    # a stable sample: the same entities for the same ds, whatever the file layout
    return logged.orderBy(F.xxhash64(F.col(key)), F.col(key)).limit(sample)


def recompute(
    spark: SparkSession, view: FeatureView, ds: date, warehouse: Any, versions: Mapping[str, int]
) -> DataFrame:
    """The view's rows for ``ds`` computed again at the recorded source versions (transform, cast, NaN as null)."""
    from featurestore.jobs.batch import schema, transforms, validation
    from featurestore.jobs.batch.sources import read_source

    transform = transforms.transform_for(view)
    repository.prepare_for_spark()  # a repository's UDFs reach the executors by value
    missing = [t for t in transform.sources if t not in versions]
    if missing:
        raise JobError(f"view {view.name!r}: the run record of ds {ds} has no source version for {missing}")
    frames = {
        t: read_source(spark, warehouse, t, ds, transform.lookback_days.get(t), versions[t]).df
        for t in transform.sources
    }
    output = transform(frames, transforms.as_of_for(ds))
    return validation.nan_to_null(schema.cast_to_view(output, view), view)


def audit(
    spark: SparkSession,
    view_name: str,
    ds: date,
    redis_url: str,
    *,
    catalog: Catalog | str | None = None,
    warehouse: Any = DEFAULT_WAREHOUSE,
    feature_log: Any = None,
    sample: int = DEFAULT_SAMPLE,
    with_recompute: bool = False,
    max_mismatch_rate: float = DEFAULT_MAX_MISMATCH_RATE,
    client: Any = None,
) -> AuditReport:
    """Run one audit (see the module docstring) and record it; returns the report."""
    from featurestore.jobs.training.training_set import logs_for
    from featurestore.readers import FeatureReader

    chosen = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    view = chosen.view(view_name)
    if not view.is_batch:
        raise ConfigurationError(f"view {view.name!r} is a streaming view: audit a batch view (its runs have a ds)")
    if sample < 1:
        raise ConfigurationError(f"--sample must be >= 1, got {sample}")
    settings = (
        feature_log if isinstance(feature_log, fl.LogSettings) else fl.LogSettings.resolve(warehouse, feature_log)
    )
    report = AuditReport(
        view.name, ds.isoformat(), datetime.now(UTC).isoformat(timespec="seconds"), 0, max_mismatch_rate
    )
    if not settings.enabled:
        report.note = "the feature log is off: nothing to compare with"
        return report
    key = view.entity.join_key
    sampled = _sampled(spark, settings, view, ds, sample).persist()
    try:
        logged = {r[key]: r.asDict() for r in sampled.collect()}
        report.sample = len(logged)
        if not logged:
            raise JobError(f"view {view.name!r}: the feature log {settings.path(view)} has no rows for ds {ds}")
        ids = list(logged)
        with FeatureReader(redis_url, catalog=chosen) as reader:
            batch = reader.get_many(ids, view)
        served = [(i, v.to_dict(), {n: s.value for n, s in v.statuses.items()}) for i, v in zip(ids, batch)]
        labels = sampled.select(key).withColumn("_audit_ts", _lit_long(batch.read_at_ms))
        requested = Requested(tuple((view, f) for f in view.features))
        logs = logs_for(spark, chosen, requested, settings)
        expected_rows = point_in_time(labels, logs, chosen, requested, timestamp_col="_audit_ts", statuses=True)
        expected = {r[key]: r.asDict() for r in expected_rows.collect()}
        report.served = compare_served(view, served, expected)
        if with_recompute:
            own = client or control_plane.connect(redis_url)
            try:
                record = run_records.latest_run(own, view.name, ds.isoformat(), "succeeded")
            finally:
                if client is None:
                    own.close()
            if record is None:
                raise JobError(f"view {view.name!r}: no successful run of ds {ds} in {run_records.RUNS_KEY}")
            report.source_versions = dict(record.source_versions)
            again = recompute(spark, view, ds, warehouse, record.source_versions)
            again = again.join(sampled.select(key), key, "left_semi")
            report.recomputed = compare_recomputed(view, logged, {r[key]: r.asDict() for r in again.collect()})
    finally:
        sampled.unpersist()
    return report


def _lit_long(value: int) -> Any:
    from pyspark.sql import functions as F

    return F.lit(int(value)).cast("long")
