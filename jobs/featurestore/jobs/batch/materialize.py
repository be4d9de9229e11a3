"""The batch materialization job: Delta source -> transform -> cast -> validate -> Redis.

``featurestore materialize --view V --ds YYYY-MM-DD [--redis-url URL] ...`` (and the
``spark-submit`` entry file ``featurestore/jobs/materialize_job.py``) run one
materialization, a straight line of stages, each returning a value:

0. :func:`prepare` — without Spark: the view, its transform, its suite, the Redis URL
   parsed once (:class:`PreparedRun`); then Redis is reached (fail fast) and the view's
   last successful run is looked up, once;
1. :func:`read_snapshot` -> :class:`~featurestore.jobs.batch.sources.SourceSnapshot`:
   every input table of the transform at one pinned Delta version (``--version`` for the
   view's own source, else the latest, resolved once and recorded), pruned to the ``ds``
   partitions the transform can use; a source with no rows in partition ``ds`` is refused;
2. :func:`compute_features` -> :class:`Features`: the transform (pure, point-in-time
   correct as of the end of ``ds``), cast to the view's schema, cached, row checks counted;
3. :func:`validate` -> :class:`~featurestore.jobs.batch.validation.ValidationReport`:
   row checks, the view's Great Expectations suite, the collapse guard, the input guards
   (each source's new partitions against a baseline of recent runs) and the drift guard
   (each feature against the last successful run; :mod:`featurestore.jobs.batch.guards`).
   A failure writes nothing: a failed check or suite records a ``failed_validation`` run and
   exits 3; a refusal by the guards alone (the data passed) records a ``refused_by_guard`` run
   and exits 4; ``--accept-input TABLE`` / ``--accept-drift FEATURE`` with ``--reason`` accept a
   guard's refusal, recorded with who and why;
4. :func:`write` -> ``BatchWriteStats``: publish the view's **registry** entry, then write on
   the executors (``featurestore.jobs.write.partition_writer.write_view``); rows that
   could not be written make the run ``failed`` (exit 1) — a re-run is safe, writes are
   idempotent;
5. :func:`run_record` -> :class:`RunRecord`, built from whatever the stages returned
   (also when one failed), appended to ``fs:runs``; the CLI prints a short summary.

Each stage logs its start at INFO on ``featurestore.jobs.batch.materialize`` with the
view, ``ds`` and run id as structured fields (``record.view``, ``record.ds``,
``record.run_id``).  Exit codes (:class:`featurestore.jobs.core.console.ExitCode`): 0 succeeded,
1 failed, 2 usage error, 3 failed validation, 4 refused by a guard, 130 interrupted (Ctrl-C: the
run is recorded ``interrupted``, see :func:`execute`).

The command line (:mod:`featurestore.jobs.cli.materialize`) parses the arguments and builds
the :class:`MaterializeRequest` from them and the settings (``--redis-url`` defaults to
``$FEATURESTORE_REDIS_URL`` so a scheduler need not put a password on a command line);
this module takes the typed request.
"""

from __future__ import annotations

import dataclasses
import logging
import os
import time
import uuid
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from importlib.resources.abc import Traversable
from typing import TYPE_CHECKING, Any

from featurestore.jobs.batch import guards, schema, transforms, validation
from featurestore.jobs.batch.guards import GuardVerdict, Override
from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, PARTITION_COLUMN, SourceSnapshot, check_tables
from featurestore.jobs.batch.validation import Failure, RowChecks, ValidationReport
from featurestore.jobs.core import control_plane, interrupts, repository, run_records
from featurestore.jobs.core.console import ExitCode, Steps, exit_code_for
from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly, run_samples
from featurestore.jobs.core.run_records import RunRecord
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.errors import (
    ConfigurationError,
    FeatureStoreError,
    GuardRefused,
    JobError,
    PermissionDeniedError,
    ValidationFailed,
    WriteError,
)
from featurestore.readers.repository import load_catalog
from featurestore.readers.settings import ConnectionSettings, redact_text

if TYPE_CHECKING:
    from pyspark.sql import DataFrame, SparkSession

    from featurestore.jobs.write.partition_writer import BatchWriteStats

log = logging.getLogger(__name__)

EXIT_FAILED = ExitCode.FAILED  # 1
EXIT_VALIDATION = ExitCode.VALIDATION  # 3: refused before anything was written
EXIT_GUARD = ExitCode.GUARD  # 4: refused by the input or drift guards alone (nothing written either)


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
    adaptive_throttle: bool = False  # slow the load down when serving round trips grow (--adaptive-throttle)
    adaptive_target_ms: float | None = None  # what the load may add to a round trip (default: the writer's)
    min_row_ratio: float = validation.DEFAULT_MIN_ROW_RATIO
    run_id: str | None = None
    accept_drift: tuple[str, ...] = ()  # features whose drift the operator accepts (--accept-drift)
    accept_input: tuple[str, ...] = ()  # source tables whose input guard the operator overrides (--accept-input)
    override_reason: str | None = None  # why (--reason): required with an accept option
    override_by: str | None = None  # who (--by; default: the user running the job)
    # the feature log: its settings (the CLI's: flag, $FEATURESTORE_FEATURE_LOG, file, <warehouse>/_feature_log)
    # or a folder; None: no log
    feature_log: str | os.PathLike[str] | LogSettings | None = None
    metrics: MetricsTarget = field(default_factory=MetricsTarget)  # where the run's metrics go (default: nowhere)
    computed_at_ms: int | None = None  # the `_ts:<view>` written and logged (default: now); an injected clock

    def __post_init__(self) -> None:
        object.__setattr__(self, "accept_drift", tuple(self.accept_drift))
        object.__setattr__(self, "accept_input", tuple(self.accept_input))
        if (self.accept_drift or self.accept_input) and not (self.override_reason or "").strip():
            raise ConfigurationError(
                "--accept-drift/--accept-input need --reason TEXT: an override is recorded with who and why"
            )
        if self.version is not None and self.version < 0:
            raise ConfigurationError(f"--version must be >= 0, got {self.version}")
        if self.max_writes_per_sec is not None and self.max_writes_per_sec <= 0:
            raise ConfigurationError(f"--max-writes-per-sec must be > 0, got {self.max_writes_per_sec}")
        if self.adaptive_target_ms is not None and self.adaptive_target_ms <= 0:
            raise ConfigurationError(f"--adaptive-target-ms must be > 0, got {self.adaptive_target_ms}")
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
    not_recorded: str | None = None  # why the record could not be stored in fs:runs (None: it was)
    failure: FeatureStoreError | None = None  # the run's first failure, whose class decides the exit code

    @property
    def exit_code(self) -> int:
        if self.not_recorded is not None and self.record.status == "succeeded":
            return EXIT_FAILED  # the data is written, but the run is missing from fs:runs (and its checks)
        if self.failure is not None:
            return exit_code_for(self.failure)  # permission, password, cluster down ...: each its own code
        return _EXIT_CODES.get(self.record.status, EXIT_FAILED)

    @property
    def error(self) -> str | None:
        """What went wrong, first failure first: the run's own error, then a record that could not be stored."""
        parts = [part for part in (self.record.error, self.not_recorded) if part]
        return "; and ".join(parts) if parts else None


_EXIT_CODES = {
    "succeeded": ExitCode.OK,
    "failed_validation": EXIT_VALIDATION,
    "refused_by_guard": EXIT_GUARD,
    run_records.INTERRUPTED: ExitCode.INTERRUPTED,
}


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def new_run_id(view: str, ds: date) -> str:
    """``<view>-<ds>-<12 hex>``: readable in ``featurestore runs``, unique per run."""
    return f"{view}-{ds.isoformat()}-{uuid.uuid4().hex[:12]}"


# --- 0. what can be checked without Spark ------------------------------------------------------


@dataclass(frozen=True)
class PreparedRun:
    """A request resolved without Spark: the view, its transform and suite, the Redis settings."""

    request: MaterializeRequest
    catalog: Catalog
    view: FeatureView
    transform: transforms.Transform
    suite_file: Traversable  # the suite's file: in --expectations DIR, or package data of the examples
    suite: Mapping[str, Any]
    settings: ConnectionSettings  # the request's URL, parsed once

    @property
    def override(self) -> Override:
        """What the operator accepts of the guards' refusals, and who and why."""
        request = self.request
        return Override(
            tables=frozenset(request.accept_input),
            features=frozenset(request.accept_drift),
            by=request.override_by or "unknown",
            reason=(request.override_reason or "").strip(),
        )


def prepare(request: MaterializeRequest) -> PreparedRun:
    """Everything that can be checked without Spark nor Redis: a typo or a missing suite fails here."""
    catalog = request.catalog if isinstance(request.catalog, Catalog) else load_catalog(request.catalog)
    view = catalog.view(request.view)
    if not view.is_batch:
        raise ConfigurationError(
            f"view {view.name!r} is a streaming view; it is written by the streaming hook, not materialized"
        )
    transform = transforms.transform_for(view)
    if view.source and transform.sources[0] != view.source:
        raise ConfigurationError(
            f"view {view.name!r}: its source is {view.source!r} but its transform reads {transform.sources[0]!r} first"
        )
    for name in request.accept_drift:
        view.feature(name)  # an unknown feature is a usage error naming the view's features
    for setting, tables in (("--accept-input", request.accept_input), ("guards.must_change", view.guards.must_change)):
        unknown = sorted(set(tables) - set(transform.sources))
        if unknown:
            raise ConfigurationError(
                f"view {view.name!r}: {setting} names {unknown}, which the view's transform does not read "
                f"(its sources: {', '.join(transform.sources)})"
            )
    suite_file = validation.suite_path(view, request.expectations_dir)
    suite = validation.load_suite(suite_file, view)
    settings = control_plane.job_settings(request.redis_url)
    return PreparedRun(request, catalog, view, transform, suite_file, suite, settings)


# --- the stages -----------------------------------------------------------------------------


def read_snapshot(spark: SparkSession, request: MaterializeRequest, transform: transforms.Transform) -> SourceSnapshot:
    """1. Every input of the transform at one pinned version, rows counted (one scan)."""
    from featurestore.jobs.batch.sources import read_snapshot as read

    return read(spark, transform, request.warehouse, request.ds, request.version)


def require_ds_partition(snapshot: SourceSnapshot, view: FeatureView) -> None:
    """A partitioned source with no rows for the run's date is a load that did not happen, not a quiet day."""
    if snapshot.rows_in_ds == 0:
        primary = snapshot.primary
        raise ValidationFailed(
            f"view {view.name!r} failed validation, nothing was written: source {primary.table!r} "
            f"(version {primary.version}) has no rows in partition {PARTITION_COLUMN}={snapshot.ds}"
        )


@dataclass(frozen=True)
class Features:
    """The view's rows for the run, cast to its schema and cached (call :meth:`release` after the run)."""

    frame: DataFrame  # NaN floats as null: what the suite sees and the writer writes
    cached: DataFrame  # the cast frame, persisted: the checks, the suite and the writer all scan it
    checks: RowChecks
    ignored_columns: tuple[str, ...] = ()
    stats: Mapping[str, Mapping[str, float | None]] = field(default_factory=dict)  # per feature: the drift guard's

    def release(self) -> None:
        self.cached.unpersist()


def compute_features(snapshot: SourceSnapshot, view: FeatureView, transform: transforms.Transform) -> Features:
    """2. Transform (as of the end of ``ds``), cast, cache; the row checks' pass materializes the cache
    and profiles every feature for the drift guard (the same aggregation)."""
    from pyspark import StorageLevel

    repository.prepare_for_spark()  # a repository's UDFs reach the executors by value
    output = transform(snapshot.frames, transforms.as_of_for(snapshot.ds))
    ignored = tuple(schema.extra_columns(output, view))
    typed = schema.cast_to_view(output, view).persist(StorageLevel.MEMORY_AND_DISK)
    try:
        checks = validation.check_rows(typed, view, guards.profile_columns(view))
    except BaseException:
        typed.unpersist()
        raise
    stats = guards.profile(view, checks.rows, checks.extra)
    return Features(validation.nan_to_null(typed, view), typed, checks, ignored, stats)


def collapse_guard(
    features: Features, snapshot: SourceSnapshot, previous: RunRecord | None, min_row_ratio: float
) -> list[Failure]:
    """Rows to write and rows read against the view's last successful run (none: nothing to compare)."""
    if previous is None:
        return []
    return validation.collapse_failures(
        {"rows": features.checks.rows, "rows_read": snapshot.rows_read},
        {"rows": previous.rows_out or previous.rows_written + previous.rows_failed, "rows_read": previous.rows_read},
        min_row_ratio,
        previous_run=f"{previous.run_id} (ds {previous.ds})",
    )


def input_guard(snapshot: SourceSnapshot, job: PreparedRun, history: list[RunRecord]) -> GuardVerdict:
    """Each source's partitions new since the last successful run, against the baseline of recent runs.

    Pure arithmetic on what the read stage counted: run right after it, so the run record
    has the counts even when a later stage fails.
    """
    sources = [
        guards.SourceRows(r.table, r.version, snapshot.rows.get(r.table, {}), r.partitioned, r.first_ds)
        for r in snapshot.reads
    ]
    return guards.input_guard(job.view, snapshot.ds, sources, history, job.override)


def validate(
    features: Features,
    snapshot: SourceSnapshot,
    job: PreparedRun,
    previous: RunRecord | None,
    verdict: GuardVerdict | None = None,
) -> ValidationReport:
    """3. Row checks, the suite, the collapse guard, the input guards' and the drift guard's verdicts: every
    failure at once.  The drift guard's notes and overrides are added to ``verdict``."""
    view = job.view
    failures = features.checks.failures(view)
    _, suite_failures = validation.run_suite(features.frame, view, job.suite)
    failures += suite_failures
    failures += collapse_guard(features, snapshot, previous, job.request.min_row_ratio)
    verdict = verdict if verdict is not None else GuardVerdict()  # None: no input guard ran (a direct call)
    verdict.extend(guards.drift_guard(view, features.stats, previous, job.override))
    verdict.notes += guards.unused_overrides(verdict, job.override)
    failures += verdict.failures
    return ValidationReport(view, str(job.suite_file), tuple(failures))


def write(client: Any, job: PreparedRun, features: Features, run_id: str) -> BatchWriteStats:
    """4. Publish the view's definition, then write its rows on the executors.

    Published first: from the first row on, Redis holds values in this definition's
    encoding, and a reader with other definitions must refuse to start rather than
    mis-decode them.
    """
    from featurestore.jobs.write.partition_writer import write_view
    from featurestore.jobs.write.throttle import DEFAULT_ADAPTIVE_TARGET_MS

    request = job.request
    target_ms = request.adaptive_target_ms if request.adaptive_target_ms is not None else DEFAULT_ADAPTIVE_TARGET_MS
    computed_at_ms = request.computed_at_ms
    now_ms = int(time.time() * 1000) if computed_at_ms is None else int(computed_at_ms)
    client.hset(codec.REGISTRY_KEY, job.view.name, codec.registry_entry(job.view, now_ms, run_id))
    return write_view(
        features.frame, job.catalog, job.view,
        job.request.redis_url,  # as given: the writer reads the cluster options from it
        computed_at_ms=now_ms, max_writes_per_sec=request.max_writes_per_sec,
        adaptive=request.adaptive_throttle, adaptive_target_ms=target_ms,
    )  # fmt: skip


def log_written(features: Features, job: PreparedRun, run_id: str, computed_at_ms: int) -> int | None:
    """4b. Append the rows just written to the view's feature log (replacing the run's ``ds`` partition).

    Logged after the write, with the time the write finished: from then on the rows are
    what the reader serves (docs/training-data.md).  A failure fails the run (a re-run
    writes both again; both are idempotent).  ``None`` when the log is off.
    """
    from featurestore.jobs.core import feature_log

    request = job.request
    given = request.feature_log
    settings = given if isinstance(given, LogSettings) else LogSettings.resolve(request.warehouse, given)
    if given is None or not settings.enabled:
        return None
    written_at_ms = int(time.time() * 1000)
    frame = feature_log.batch_log_frame(features.frame, job.view, request.ds, run_id, computed_at_ms, written_at_ms)
    return feature_log.write_batch_log(frame, settings, job.view, request.ds, features.checks.rows)


def require_written(stats: BatchWriteStats, job: PreparedRun) -> None:
    """Rows that could not be written fail the run (a re-run completes it)."""
    if stats.failed:
        raise WriteError(
            f"view {job.view.name!r}: {stats.failed} of {stats.rows} rows could not be written to "
            f"{job.settings.redacted_url} after retries (re-run to complete; writes are idempotent): "
            + "; ".join(redact_text(f) for f in stats.failures[:3])
        )


INTERRUPTED_MESSAGE = "interrupted (Ctrl-C / SIGINT): not a failure of the view; a re-run is safe"


def _verdict(error: BaseException | None, stats: BatchWriteStats | None) -> tuple[str, str | None, list[str]]:
    """(status, error message, failures) of a run that ended with ``error`` (None: it succeeded)."""
    write_failures = [redact_text(f) for f in stats.failures] if stats is not None else []
    if error is None:
        return "succeeded", None, write_failures
    if interrupts.caused_by_interrupt(error):  # Ctrl-C, or the JVM's calls failing after it
        return run_records.INTERRUPTED, INTERRUPTED_MESSAGE, write_failures
    if isinstance(error, ValidationFailed):  # a GuardRefused too: the data passed, a guard refused it
        status = "refused_by_guard" if isinstance(error, GuardRefused) else "failed_validation"
        return status, redact_text(str(error)), [str(f) for f in getattr(error, "failures", [])]
    if isinstance(error, FeatureStoreError):
        return "failed", redact_text(str(error)), write_failures
    # Spark, Delta or Redis errors: the first line says what happened
    first_line = str(error).splitlines()[0] if str(error) else ""
    return "failed", redact_text(f"{type(error).__name__}: {first_line}"), write_failures


def run_record(
    job: PreparedRun,
    run_id: str,
    started: float,
    finished: float,
    durations: Mapping[str, float],
    snapshot: SourceSnapshot | None,
    features: Features | None,
    stats: BatchWriteStats | None,
    error: BaseException | None,
    verdict: GuardVerdict | None = None,
    computed_at_ms: int | None = None,
) -> RunRecord:
    """5. The run as stored in ``fs:runs``, from what the stages returned before the run ended
    (``computed_at_ms``: the ``_ts:<view>`` written, if the write started)."""
    status, message, failures = _verdict(error, stats)
    verdict = verdict or GuardVerdict()
    return RunRecord(
        run_id=run_id,
        view=job.view.name,
        ds=job.request.ds.isoformat(),
        source_table=job.transform.sources[0],
        source_version=snapshot.primary.version if snapshot is not None else None,
        status=status,
        rows_read=snapshot.rows_read if snapshot is not None else 0,
        rows_written=stats.written if stats is not None else 0,
        rows_failed=stats.failed if stats is not None else 0,
        entities_written=stats.entities if stats is not None else 0,
        retries=stats.retries if stats is not None else 0,
        started_at=_iso(started),
        finished_at=_iso(finished),
        computed_at=_iso(computed_at_ms / 1000) if computed_at_ms is not None else "",
        durations=dict(durations),
        error=message,
        rows_out=features.checks.rows if features is not None else 0,
        source_versions=snapshot.versions if snapshot is not None else {},
        nan_as_null=dict(features.checks.nan_as_null) if features is not None else {},
        failures=failures,
        input_rows=verdict.input_rows,
        feature_stats={k: dict(v) for k, v in features.stats.items()} if features is not None else {},
        notes=list(verdict.notes),
        overrides=list(verdict.overrides),
    )


STAGE_NAMES = {
    "read": "the Delta sources at pinned versions",
    "transform": "computing the features as of the end of ds",
    "validate": "row checks, the Great Expectations suite, the collapse, input and drift guards",
    "write": "pipelines of HSET/HDEL/EXPIRE from the executors",
    "log": "appending the written rows to the feature log (docs/training-data.md)",
}


def log_fields(view: str, ds: date | str, run_id: str) -> dict[str, str]:
    """The structured fields of a run's log records (``extra=``)."""
    return {"view": view, "ds": ds if isinstance(ds, str) else ds.isoformat(), "run_id": run_id}


class StageClock:
    """Seconds per stage, for the run record: a stage that did not finish has no entry.

    Each stage is logged when it starts (INFO) and ends (DEBUG) with the run's ``fields``.
    """

    def __init__(self, fields: Mapping[str, str] | None = None) -> None:
        self.durations: dict[str, float] = {}
        self.fields = dict(fields or {})

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        log.info("%s: %s", name, STAGE_NAMES.get(name, name), extra=self.fields)
        started = time.monotonic()
        yield
        self.durations[name] = round(time.monotonic() - started, 3)
        log.debug("%s took %.1fs", name, self.durations[name], extra=self.fields)


# --- the run ---------------------------------------------------------------------------------


def materialize(spark: SparkSession, request: MaterializeRequest) -> RunOutcome:
    """Run one materialization and record it in ``fs:runs``.

    * A configuration problem (unknown view, no transform, missing suite, unreachable
      Redis) raises before anything runs, and nothing is recorded.
    * A validation, schema or write failure is *recorded* (status ``failed_validation`` /
      ``failed``) and returned, with the error in ``outcome.record.error``; call
      :func:`raise_for_outcome` to turn it into an exception.
    * Any other error (Spark, Delta) is recorded as ``failed`` and re-raised.
    * Ctrl-C (:class:`KeyboardInterrupt`, and whatever fails after it while Spark goes away) is
      recorded as ``interrupted`` and re-raised as :class:`KeyboardInterrupt`.
    """
    job = prepare(request)
    client = connect(job)  # fail fast: no point computing without a target
    return execute(spark, job, client)


BATCH_WRITER_ROLE = "batch-writer"  # the ACL role a run needs (featurestore.jobs.ops.acl.BATCH_WRITER)
_JOB = "featurestore materialize"


def connect(job: PreparedRun) -> Any:
    """The run's control-plane client (PING'd): a user without the batch-writer role is told so."""
    return control_plane.connect(job.settings, role=BATCH_WRITER_ROLE, job=_JOB)


def execute(spark: SparkSession, job: PreparedRun, client: Any) -> RunOutcome:
    """The stages of a prepared run, then its record; closes ``client`` (see :func:`materialize`)."""
    interrupts.reset()  # a Ctrl-C before this run (e.g. in a notebook) says nothing about it
    started = time.time()
    run_id = job.request.run_id or new_run_id(job.view.name, job.request.ds)
    fields = log_fields(job.view.name, job.request.ds, run_id)
    clock = StageClock(fields)
    snapshot: SourceSnapshot | None = None
    features: Features | None = None
    stats: BatchWriteStats | None = None
    error: BaseException | None = None
    verdict: GuardVerdict | None = None
    previous: RunRecord | None = None
    computed_at_ms: int | None = None
    try:
        # the guards' baseline: the view's last successful runs, newest first
        history = run_records.recent_runs(client, job.view.name, "succeeded", job.view.guards.baseline_runs)
        previous = history[0] if history else None
        with clock.stage("read"):
            snapshot = read_snapshot(spark, job.request, job.transform)
        verdict = input_guard(snapshot, job, history)
        require_ds_partition(snapshot, job.view)
        with clock.stage("transform"):
            features = compute_features(snapshot, job.view, job.transform)
        with clock.stage("validate"):
            report = validate(features, snapshot, job, previous, verdict)
        for note in verdict.notes:
            log.info("%s", note, extra=fields)
        for entry in verdict.overrides:
            log.warning("accepted by %s (%s): %s", entry["by"], entry["reason"], entry["failure"], extra=fields)
        report.raise_if_failed()  # nothing is written, not even the registry
        # one computed-at time for the `_ts:<view>` written and the feature log
        computed_at = job.request.computed_at_ms or int(time.time() * 1000)
        job = dataclasses.replace(job, request=dataclasses.replace(job.request, computed_at_ms=computed_at))
        computed_at_ms = computed_at
        with clock.stage("write"):
            stats = write(client, job, features, run_id)
        require_written(stats, job)
        with clock.stage("log"):
            log_written(features, job, run_id, computed_at_ms)
    except PermissionDeniedError as exc:  # e.g. the registry's HSET refused: say which role the run needs
        error = control_plane.needs_role(exc, BATCH_WRITER_ROLE, _JOB)
    except Exception as exc:  # recorded below; a FeatureStoreError is an outcome, anything else re-raised
        error = exc
    except KeyboardInterrupt as exc:  # Ctrl-C: recorded as interrupted below, then re-raised
        interrupts.note_interrupt()
        error = exc
    finally:
        if features is not None:
            _quietly(features.release, "releasing the cached features", fields)
    finished = time.time()
    record = run_record(
        job, run_id, started, finished, clock.durations, snapshot, features, stats, error, verdict, computed_at_ms
    )
    # The run's own error comes first: a record that cannot be stored (e.g. a user without
    # XADD, the very permission that failed the run) is said next to it, never instead of it.
    not_recorded = store_record(client, record, fields)
    _quietly(client.close, "closing the Redis connection", fields)
    # Prometheus metrics of the run, when a textfile folder or a Pushgateway is configured
    samples = run_samples(record, last_success_at=previous.finished_at if previous is not None else None)
    publish_quietly(samples, job.request.metrics, f"run_{job.view.name}", {"view": job.view.name})
    _raise_unless_an_outcome(record, error, not_recorded, fields)
    level = logging.INFO if record.status == "succeeded" else logging.WARNING
    log.log(level, "run %s %s", run_id, record.status, extra=fields)
    return RunOutcome(
        record,
        seconds=finished - started,
        entities_per_second=stats.entities / stats.seconds if stats is not None and stats.seconds > 0 else 0.0,
        ignored_columns=list(features.ignored_columns) if features is not None else [],
        source_partitions=snapshot.partitions if snapshot is not None else {},
        not_recorded=not_recorded,
        failure=error if isinstance(error, FeatureStoreError) else None,
    )


def _raise_unless_an_outcome(
    record: RunRecord, error: BaseException | None, not_recorded: str | None, fields: Mapping[str, str]
) -> None:
    """Re-raise what is not a run's outcome: Ctrl-C (as :class:`KeyboardInterrupt`, whatever failed
    after it: the Py4J errors are its consequence), and errors other than a FeatureStoreError."""
    if record.status == run_records.INTERRUPTED:
        log.info("run %s interrupted", record.run_id, extra=dict(fields))  # the CLI's one line says so
        interrupt = KeyboardInterrupt()
        if not_recorded:
            interrupt.add_note(not_recorded)
        raise interrupt from (None if isinstance(error, KeyboardInterrupt) else error)
    if error is not None and not isinstance(error, FeatureStoreError):  # Spark, Delta ...: re-raised as is
        if not_recorded:
            error.add_note(not_recorded)
        raise error


def store_record(client: Any, record: RunRecord, fields: Mapping[str, str] | None = None) -> str | None:
    """Append ``record`` to ``fs:runs``; None when stored, else why not (it never raises).

    A record that cannot be stored is logged whole (ERROR, as JSON), so the run is still
    recorded in the job's log (the Airflow task log, the CLI's log file).
    """
    try:
        run_records.record_run(client, record)
    except Exception as exc:
        why = redact_text(str(exc) or type(exc).__name__)
        message = f"run {record.run_id} could not be recorded in {run_records.RUNS_KEY}: {why}"
        log.error("%s; the record: %s", message, record.to_json(), extra=dict(fields or {}))
        return message
    return None


def _quietly(cleanup: Callable[[], object], what: str, fields: Mapping[str, str]) -> None:
    """Run a clean-up step whose failure must not hide the run's outcome (logged instead)."""
    try:
        cleanup()
    except Exception as exc:
        # after Ctrl-C the JVM's calls fail as a matter of course: no news for the terminal
        level = logging.DEBUG if interrupts.interrupted() else logging.WARNING
        log.log(level, "%s failed: %s", what, redact_text(f"{type(exc).__name__}: {exc}"), extra=dict(fields))


def raise_for_outcome(outcome: RunOutcome) -> None:
    """Turn a recorded failure back into the exception (for API callers that want one); its
    message is the run's first failure, then a record that could not be stored, if any."""
    record = outcome.record
    if outcome.failure is not None and record.status != "succeeded":
        if outcome.not_recorded and outcome.not_recorded not in getattr(outcome.failure, "__notes__", ()):
            outcome.failure.add_note(outcome.not_recorded)
        raise outcome.failure  # the first failure itself: its class is what callers catch
    if record.status == "refused_by_guard":
        raise GuardRefused(outcome.error or f"view {record.view!r} was refused by a guard")
    if record.status == "failed_validation":
        raise ValidationFailed(outcome.error or f"view {record.view!r} failed validation")
    if outcome.exit_code != ExitCode.OK:
        raise JobError(outcome.error or f"view {record.view!r}: run {record.run_id} failed")


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
    if r.status not in run_records.REFUSED and "write" in r.durations:
        lines.append(
            f"  wrote    {r.entities_written:,} entities ({r.rows_written:,} rows, {r.rows_failed:,} failed, "
            f"{r.retries:,} retries) at {outcome.entities_per_second:,.0f} entities/s"
        )
    lines.append("  seconds  " + ", ".join(f"{k} {v:.1f}" for k, v in r.durations.items()))
    for note in r.notes:
        lines.append(f"  note     {note}")
    for entry in r.overrides:
        lines.append(f"  accepted by {entry['by']} ({entry['reason']}): {entry['failure']}")
    if r.error:
        lines.append(f"  error    {r.error}")
    if outcome.not_recorded:
        lines.append(f"  record   {outcome.not_recorded} (the record is in the job's log)")
    return "\n".join(lines)


# --- one run, from a request (the CLI's `featurestore materialize`, materialize_job.py) -----------


def run_request(
    request: MaterializeRequest, spark: SparkSession | None = None, settings: Settings | None = None
) -> RunOutcome:
    """Check the request, reach Redis, start Spark (unless given one), run, stop Spark again.

    A typo, a missing suite, a missing warehouse or source table (when this starts Spark: a
    caller's session may read another file system) or an unreachable Redis fails in a second,
    before Spark starts, as a configuration error that records no run;
    a progress bar shows the stages on a terminal.  Returns the outcome (failed or not:
    :func:`raise_for_outcome` turns a failure into its exception).  ``settings`` configure
    the session this starts (master, driver memory, jars).
    """
    job = prepare(request)
    if spark is None:  # a typo in --warehouse: found before Spark starts, and no run is recorded
        check_tables(request.warehouse, job.transform.sources)
    client = connect(job)
    with Steps(2, f"materialize {request.view}") as steps:  # a bar on a terminal only
        try:
            with steps.step("start Spark"):
                spark, own_session = session(spark, f"featurestore-materialize-{request.view}", settings)
        except BaseException:
            _quietly(client.close, "closing the Redis connection", {"view": request.view})
            raise
        try:
            with steps.step("run"):  # the stages show as the bar's detail (their INFO records)
                return execute(spark, job, client)
        finally:
            if own_session:  # a failing stop must not hide the run's outcome or error
                _quietly(spark.stop, "stopping Spark", {"view": request.view})
