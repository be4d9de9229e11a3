"""The console's page models: the store's data in, what a page shows out (pure, no I/O).

Each function takes plain data — the catalogue, :class:`~featurestore.jobs.ops.status.ViewStatus`,
:class:`~featurestore.jobs.core.run_records.RunRecord`, a stream's progress hash, the
entity report of :mod:`featurestore.jobs.ops.inspect`, a page of the feature log
(:class:`~featurestore.jobs.ui.log_history.History`) — and returns frozen dataclasses of
display strings that the templates only lay out.  Every status a person reads (a view's
verdict, a feature's *present* / *stale* / *missing*, a run's result) carries a CSS class
``status-<word>`` whose colours the unit tests check for contrast.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from featurestore.jobs.core.run_records import REFUSED, RunRecord
from featurestore.jobs.ops.inspect import EntityReport
from featurestore.jobs.ops.status import ViewStatus
from featurestore.jobs.ui.log_history import History
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView
from featurestore.readers.settings import redact_text

# the words a status badge may carry: each has a CSS class status-<word> (console.css)
STATUS_WORDS = (
    "fresh",
    "ageing",
    "stale",
    "never",
    "failing",
    "present",
    "missing",
    "succeeded",
    "refused",
    "failed",
    "ok",
    "mismatch",
    "unknown",
)
_RUN_STATUS = {
    "succeeded": "succeeded",
    "failed_validation": "refused",
    "refused_by_guard": "refused",
    "failed": "failed",
    "interrupted": "unknown",
}
_RUN_LABEL = {
    "succeeded": "succeeded",
    "failed_validation": "refused (nothing written)",
    "refused_by_guard": "refused by a guard (nothing written)",
    "failed": "failed",
    "interrupted": "interrupted (Ctrl-C)",
}


def age_text(seconds: float | None) -> str:
    """A duration for people: ``42s``, ``3.5m``, ``2.1h``, ``1.5d``; ``-`` when unknown."""
    if seconds is None or (isinstance(seconds, float) and math.isnan(seconds)):
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def status_class(word: str) -> str:
    """The CSS class of a status word (``never materialized`` -> ``status-never``)."""
    first = word.split()[0] if word else "unknown"
    return f"status-{first if first in STATUS_WORDS else 'unknown'}"


def value_text(value: Any) -> str:
    """A decoded feature value as JSON text (vectors as lists, strings quoted)."""
    return json.dumps(codec.json_value(value), ensure_ascii=False)


@dataclass(frozen=True)
class Badge:
    """A status as shown: its words and its CSS class."""

    text: str
    css: str

    @classmethod
    def of(cls, text: str, word: str | None = None) -> Badge:
        return cls(text, status_class(word or text))


# ---------------------------------------------------------------- views list and one view


@dataclass(frozen=True)
class ViewRow:
    """One line of the views list."""

    name: str
    entity: str
    kind: str
    layout: str
    ttl: str
    max_age: str
    features: int
    freshness: Badge
    age: str


def view_rows(catalog: Catalog, statuses: Sequence[ViewStatus]) -> list[ViewRow]:
    """The views list: every view of the catalogue with its freshness verdict (``status``'s)."""
    by_view = {s.view: s for s in statuses}
    rows = []
    for view in catalog.views:
        status = by_view.get(view.name)
        rows.append(
            ViewRow(
                name=view.name,
                entity=view.entity.name,
                kind=str(view.kind),
                layout=str(view.layout),
                ttl=age_text(view.ttl_seconds),
                max_age=age_text(view.max_age_seconds),
                features=len(view.features),
                freshness=Badge.of(status.verdict) if status else Badge.of("unknown"),
                age=age_text(status.age_seconds) if status else "-",
            )
        )
    return rows


@dataclass(frozen=True)
class FeatureRow:
    name: str
    dtype: str
    default: str
    ttl: str
    description: str


def feature_rows(view: FeatureView) -> list[FeatureRow]:
    """A view's features: dtype (with a vector's dim), default, own TTL, description."""
    rows = []
    for feature in view.features:
        dtype = str(feature.dtype) + (f"[{feature.dim}]" if feature.dim else "")
        default = "null" if feature.default is None else value_text(feature.default)
        rows.append(FeatureRow(feature.name, dtype, default, age_text(feature.ttl_seconds), feature.description))
    return rows


@dataclass(frozen=True)
class Freshness:
    """A view's freshness, as ``featurestore status`` judges it."""

    verdict: Badge
    age: str
    max_age: str
    last_success: str
    last_failure: str
    last_failure_reason: str
    entities_written: str
    keys: str
    bytes_per_entity: str
    newest_write: str


def freshness(status: ViewStatus) -> Freshness:
    return Freshness(
        verdict=Badge.of(status.verdict),
        age=age_text(status.age_seconds),
        max_age=age_text(status.max_age_seconds),
        last_success=(status.last_success_at or "-")[:19],
        last_failure=(status.last_failure_at or "-")[:19],
        last_failure_reason=redact_text(status.last_failure_reason or ""),
        entities_written="-" if status.entities_written is None else f"{status.entities_written:,}",
        keys=f"{status.keys_with_view} of {status.keys_sampled} sampled keys",
        bytes_per_entity="-" if status.memory_per_entity_bytes is None else f"{status.memory_per_entity_bytes:.0f}",
        newest_write=age_text(status.newest_write_age_seconds),
    )


# ---------------------------------------------------------------- runs


@dataclass(frozen=True)
class RunRow:
    """One run, as a line of a runs table and as the run's own page."""

    entry_id: str  # the fs:runs stream entry: the run's address in the console
    run_id: str
    view: str
    ds: str
    result: Badge
    finished_at: str
    rows_read: str
    rows_written: str
    rows_failed: str
    entities_written: str
    source: str
    duration: str
    durations: list[tuple[str, str]]
    reason: str  # why it did not succeed (the error), empty when it did
    failures: list[str]  # each refused expectation or guard, in the job's words
    notes: list[str]  # what the guards noted
    overrides: list[str]  # the guards a person told to accept, and why
    input_rows: list[tuple[str, str]]  # table -> rows per partition, as the input guard saw them
    checks: list[CheckRow] = field(default_factory=list)  # the validation report: each refused check
    feature_stats: list[tuple[str, str]] = field(default_factory=list)  # feature -> the drift guard's statistics
    nan_as_null: list[str] = field(default_factory=list)  # float features whose NaNs were written as null
    source_versions: list[str] = field(default_factory=list)  # table@version of each source read
    refused: bool = False  # the validation gate refused the run (its checks are the whole report)


@dataclass(frozen=True)
class CheckRow:
    """One refused check of a run's validation report: who refused (the GX suite, a built-in check, a
    guard), the expectation or check with its arguments, and what was observed."""

    source: str
    check: str
    arguments: str
    observed: str


# the checks of featurestore.jobs.batch.validation and .guards, by who runs them
_CHECK_SOURCES = {
    "input_partition_rows": "input guard",
    "input_not_stale": "input guard",
    "feature_drift": "drift guard",
    "row_count_not_collapsed": "collapse guard",
}
# validation.Failure's text: "<expectation type>(<kwargs>): <observed>", the observed text in one of
# validation._observed's forms; or "featurestore:<check>: <observed>"
_GX_FAILURE = re.compile(
    r"(?P<check>[A-Za-z_][A-Za-z0-9_]*)\((?P<arguments>.*?)\): "
    r"(?P<observed>(?:observed |could not be evaluated|\d+ of ).*)",
    re.DOTALL,
)


def check_row(failure: str) -> CheckRow:
    """One failure recorded with a run (``RunRecord.failures``, validation.Failure's text) as a report line."""
    if failure.startswith("featurestore:"):
        check, _, observed = failure.removeprefix("featurestore:").partition(": ")
        return CheckRow(_CHECK_SOURCES.get(check, "built-in check"), check, "", observed)
    match = _GX_FAILURE.fullmatch(failure)
    if match:
        return CheckRow("GX suite", match["check"], match["arguments"], match["observed"])
    return CheckRow("run", "", "", failure)


def _stats_text(stats: Mapping[str, float | None]) -> str:
    return ", ".join(f"{name} {'-' if value is None else f'{value:.4g}'}" for name, value in stats.items())


def run_row(entry_id: str, record: RunRecord) -> RunRow:
    """A run record as shown: result, rows, durations, the guards' decisions and reasons."""
    total = sum(record.durations.values())
    source = record.source_table + (f"@v{record.source_version}" if record.source_version is not None else "")
    word = _RUN_STATUS.get(record.status, "unknown")
    failures = [redact_text(f) for f in record.failures]
    overrides = [
        redact_text(
            f"{o.get('guard', '?')} on {o.get('target', '?')} accepted by {o.get('by', '?')}: "
            f"{o.get('reason', '')}" + (f" (it had refused: {o['failure']})" if o.get("failure") else "")
        )
        for o in record.overrides
    ]
    inputs = [
        (table, ", ".join(f"{part}: {rows:,}" for part, rows in sorted(parts.items())))
        for table, parts in sorted(record.input_rows.items())
    ]
    return RunRow(
        entry_id=entry_id,
        run_id=record.run_id,
        view=record.view,
        ds=record.ds,
        result=Badge(_RUN_LABEL.get(record.status, record.status), status_class(word)),
        finished_at=record.finished_at[:19].replace("T", " "),
        rows_read=f"{record.rows_read:,}",
        rows_written=f"{record.rows_written:,}",
        rows_failed=f"{record.rows_failed:,}",
        entities_written=f"{record.entities_written:,}",
        source=source,
        duration=f"{total:.1f}s",
        durations=[(stage, f"{seconds:.1f}s") for stage, seconds in record.durations.items()],
        reason=redact_text(record.error or ""),
        failures=failures,
        notes=[redact_text(n) for n in record.notes],
        overrides=overrides,
        input_rows=inputs,
        checks=[check_row(f) for f in failures],
        feature_stats=[(name, _stats_text(stats)) for name, stats in sorted(record.feature_stats.items())],
        nan_as_null=[f"{name}: {count:,}" for name, count in sorted(record.nan_as_null.items()) if count],
        source_versions=[f"{table}@v{version}" for table, version in sorted(record.source_versions.items())],
        refused=record.status in REFUSED,
    )


@dataclass(frozen=True)
class Page:
    """A page of a newest-first list: its rows and the cursor of the next (older) page."""

    rows: list[Any]
    next_cursor: str | None  # the entry id to continue after (exclusive); None: the last page
    scanned_all: bool = True  # False: a filtered listing stopped scanning before the end


def runs_page(entries: Sequence[tuple[str, RunRecord]], size: int, scanned_all: bool = True) -> Page:
    """``size`` runs of ``entries`` (newest first, one more than a page when there is a next page)."""
    shown = list(entries[:size])
    more = len(entries) > size
    return Page([run_row(e, r) for e, r in shown], shown[-1][0] if more and shown else None, scanned_all)


# ---------------------------------------------------------------- audits


@dataclass(frozen=True)
class AuditRow:
    audited_at: str
    ds: str
    result: Badge
    worst_rate: str
    limit: str
    sample: str
    worst_features: list[str]
    note: str


def audit_row(data: Mapping[str, Any]) -> AuditRow:
    """One ``fs:audits`` entry (an :class:`~featurestore.jobs.training.audit.AuditReport` as JSON)."""
    rates: list[tuple[float, str]] = []
    for title, audits in (("served", data.get("served") or {}), ("recomputed", data.get("recomputed") or {})):
        for name, audit in audits.items():
            compared = audit.get("compared", 0) or 0
            rate = (audit.get("mismatches", 0) or 0) / compared if compared else 0.0
            rates.append((rate, f"{name} ({title}): {rate:.2%}"))
    worst = [text for rate, text in sorted(rates, reverse=True)[:3] if rate > 0]
    ok = bool(data.get("ok", True))
    return AuditRow(
        audited_at=str(data.get("audited_at", ""))[:19].replace("T", " "),
        ds=str(data.get("ds", "")),
        result=Badge.of("OK" if ok else "mismatch", "ok" if ok else "mismatch"),
        worst_rate=f"{float(data.get('worst_rate', 0.0)):.2%}",
        limit=f"{float(data.get('max_mismatch_rate', 0.0)):.2%}",
        sample=f"{int(data.get('sample', 0)):,}",
        worst_features=worst,
        note=redact_text(str(data.get("note") or "")),
    )


# ---------------------------------------------------------------- streams


@dataclass(frozen=True)
class StreamModel:
    """A streaming view's last progress report (``fs:stream:<view>``)."""

    view: str
    reported: bool
    source: str = "-"
    reported_ago: str = "-"
    events_per_second: str = "-"
    latency_p50: str = "-"
    latency_p99: str = "-"
    lag: str = "-"
    events: str = "-"
    written: str = "-"
    skipped: str = "-"
    dead_letters: str = "-"
    late: str = "-"
    ignored: str = "-"
    batches: str = "-"
    health: Badge = field(default_factory=lambda: Badge.of("unknown"))


def _number(progress: Mapping[str, str], name: str) -> str:
    raw = progress.get(name)
    if raw is None or raw == "":
        return "-"
    try:
        value = float(raw)
    except ValueError:
        return raw
    return f"{value:,.0f}" if value.is_integer() else f"{value:,.1f}"


def stream_model(view: FeatureView, progress: Mapping[str, str] | None, now_ms: int) -> StreamModel:
    """A stream's numbers as shown; its health is *stale* when no report came within the view's
    ``max_age`` (the job stopped), *failing* when it reported dead letters, else *fresh*."""
    if not progress:
        return StreamModel(view=view.name, reported=False, health=Badge.of("never reported", "never"))
    try:
        age = max(0, now_ms - int(progress.get("updated_ms", now_ms))) / 1000
    except ValueError:
        age = None
    dead = progress.get("dead_letters", "0")
    if age is not None and age > view.max_age_seconds:
        health = Badge.of("stale: no report within max_age", "stale")
    elif dead not in ("0", "", None):
        health = Badge.of(f"fresh, with {dead} dead letters", "ageing")
    else:
        health = Badge.of("fresh")
    latency = {q: progress.get(f"latency_{q}_ms") for q in ("p50", "p99")}
    return StreamModel(
        view=view.name,
        reported=True,
        source=progress.get("source", "-"),
        reported_ago=age_text(age),
        events_per_second=_number(progress, "events_per_second"),
        latency_p50="-" if latency["p50"] is None else f"{latency['p50']} ms",
        latency_p99="-" if latency["p99"] is None else f"{latency['p99']} ms",
        lag=_number(progress, "lag"),
        events=_number(progress, "events"),
        written=_number(progress, "written"),
        skipped=_number(progress, "skipped"),
        dead_letters=_number(progress, "dead_letters"),
        late=_number(progress, "late"),
        ignored=_number(progress, "ignored"),
        batches=_number(progress, "batches"),
        health=health,
    )


# ---------------------------------------------------------------- one entity


@dataclass(frozen=True)
class EntityFeature:
    """One feature as the reader serves it: the served value, its status, the view's age, the
    holding field's own TTL; for a stale feature also the value stored (never served)."""

    feature: str
    served: str
    status: Badge
    age: str
    field_ttl: str
    stored: str  # a stale value as stored (the reader serves the default instead); else empty


@dataclass(frozen=True)
class EntityViewModel:
    view: str
    kind: str
    layout: str
    max_age: str
    features: list[EntityFeature]


@dataclass(frozen=True)
class EntityModel:
    entity: str
    entity_id: str
    key: str
    exists: bool
    key_ttl: str
    views: list[EntityViewModel]
    unknown_fields: list[str]


def entity_model(catalog: Catalog, report: EntityReport, entity_id: str) -> EntityModel:
    """Every view's features of one entity as ``FeatureReader.get`` serves them (a stale or
    missing feature: its default), from the report of :func:`~featurestore.jobs.ops.inspect.inspect_key`."""
    views: list[EntityViewModel] = []
    lines = {(f.view, f.feature): f for f in report.features}
    for view in catalog.views_of(report.entity):
        rows = []
        for feature in view.features:
            line = lines.get((view.name, feature.name))
            status = line.status if line is not None else "missing"
            if line is not None and status == "present":
                served = value_text(line.value)
            else:
                served = "null" if feature.default is None else value_text(feature.default)
            stored = value_text(line.value) if line is not None and status == "stale" else ""
            rows.append(
                EntityFeature(
                    feature=feature.name,
                    served=served,
                    status=Badge.of(status),
                    age=age_text(line.age_seconds if line else None),
                    field_ttl=age_text(line.field_ttl_seconds if line else None),
                    stored=stored,
                )
            )
        views.append(EntityViewModel(view.name, str(view.kind), str(view.layout), age_text(view.max_age_seconds), rows))
    return EntityModel(
        entity=report.entity,
        entity_id=entity_id,
        key=report.key,
        exists=report.exists,
        key_ttl="none" if report.key_ttl_seconds is None else age_text(report.key_ttl_seconds),
        views=views,
        unknown_fields=[f"{name}: {raw}" for name, raw in report.unknown_fields.items()],
    )


# ---------------------------------------------------------------- one entity's feature-log history

NOT_WRITTEN = "-"  # a streaming event that left this feature alone (not in its _fields)


@dataclass(frozen=True)
class HistoryRow:
    """One logged write as shown: when (ds, computed, written), by which run, and each feature's value."""

    ds: str
    kind: str
    run_id: str
    computed_at: str  # _ts_ms: what _ts:<view> was set to
    written_at: str  # _written_at_ms: visible to the reader from then on
    values: list[str]  # in the view's feature order: JSON text, "null" (deleted), NOT_WRITTEN


@dataclass(frozen=True)
class HistoryModel:
    """A view's part of the entity page (or its own history page): a page of logged rows, newest first."""

    view: str
    features: list[str]
    rows: list[HistoryRow]
    note: str  # what a person should know: no log, nothing logged, a partial search, an unreadable table
    first: int  # the 1-based number of the first row shown (0: none)
    next_offset: int | None  # the offset of the next (older) page; None: the last page


def ms_text(ms: int | None) -> str:
    """Epoch milliseconds as UTC ``YYYY-MM-DD HH:MM:SS``; ``-`` when unknown."""
    if ms is None:
        return "-"
    from datetime import UTC, datetime

    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S")


def logged_value_text(feature: Feature, value: Any) -> str:
    """A logged value (Arrow's Python value) as the entity page shows served ones: float32s in their shortest text."""
    if value is None:
        return "null"

    def float32(number: float) -> float:  # 0.10000000149011612 -> 0.1, as the reader decodes the stored text
        return float(codec.format_float32(number))

    if feature.dtype is DType.FLOAT32 and isinstance(value, float):
        value = float32(value)
    elif feature.dtype is DType.VECTOR and isinstance(value, list):
        value = [None if v is None else float32(v) for v in value]
    return value_text(value)


def history_model(view: FeatureView, entity_id: str, history: History | None) -> HistoryModel:
    """The entity's rows of the view's feature log (``history`` None: the console has no log configured)."""
    features = [f.name for f in view.features]
    if history is None:
        note = "No feature log is configured for this console (FEATURESTORE_FEATURE_LOG=off, or --feature-log off)."
        return HistoryModel(view.name, features, [], note, 0, None)
    if history.problem:
        return HistoryModel(view.name, features, [], redact_text(history.problem), 0, None)
    if not history.exists:
        note = f"Nothing logged for {view.name}: no Delta table at {history.table}."
        return HistoryModel(view.name, features, [], note, 0, None)
    rows = []
    for logged in history.rows:
        values = [
            NOT_WRITTEN
            if logged.fields is not None and f.name not in logged.fields
            else logged_value_text(f, logged.values.get(f.name))
            for f in view.features
        ]
        rows.append(
            HistoryRow(
                logged.ds, logged.kind, logged.run_id, ms_text(logged.ts_ms), ms_text(logged.written_at_ms), values
            )
        )
    if not rows:
        note = f"No logged rows of {view.name} for id {entity_id}" + (" on this page." if history.offset else ".")
    else:
        note = ""
    if not history.complete:
        note += (
            f" The search stopped after {history.files_read} files of {history.table}: older partitions were not "
            "read (`featurestore training-set` reads them all)."
        )
    return HistoryModel(
        view=view.name,
        features=features,
        rows=rows,
        note=note.strip(),
        first=history.offset + 1 if rows else 0,
        next_offset=history.offset + len(rows) if history.more else None,
    )
