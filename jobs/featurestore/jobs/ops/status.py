"""``featurestore status`` — one screen for every view of the catalogue, and a health check.

For each view: the last successful run and its age against the view's ``max_age``, the last
failed run and why, the entities written, a sample of the entity keys (how many carry the
view, their memory per entity with ``MEMORY USAGE``, the newest ``_ts`` — for a streaming
view, how long ago its last event was written, and the last progress report of the job or consumer
feeding it: events/s, event -> Redis latency p50/p99, consumer lag, dead letters), and a verdict:

==================== =================================================================
``fresh``            the newest values are younger than half the view's ``max_age``
``ageing``           older than half of ``max_age`` (a nightly run was probably missed)
``stale``            older than ``max_age``: the reader serves defaults, status *stale*
``never materialized`` no run recorded and no value found
``failing``          the view's newest run failed (validation or runtime)
==================== =================================================================

The exit code is 1 when any view is ``stale`` or ``failing`` (0 otherwise), so the command
doubles as a health check (cron, a Kubernetes probe, the Airflow DAG).  Works against a
standalone server and a Cluster (the sample scans every primary).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

from featurestore.jobs.core.control_plane import progress_key
from featurestore.jobs.core.job_metrics import Sample
from featurestore.jobs.core.run_records import RunRecord, aligned, epoch_seconds, list_runs
from featurestore.jobs.ops.post_load_check import entity_keys
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, Entity, FeatureView

FRESH, AGEING, STALE, NEVER, FAILING = "fresh", "ageing", "stale", "never materialized", "failing"
UNHEALTHY = frozenset({STALE, FAILING})
DEFAULT_SAMPLE = 200
_MEMORY_SAMPLE = 50  # MEMORY USAGE is O(fields) per key: a smaller sample is enough for a mean
_RUNS_SCANNED = 500  # the newest run records looked at for the last success / failure


@dataclass(frozen=True)
class EntitySample:
    """What a scan of one entity's keys found: per view, the ``_ts`` of each key carrying it."""

    keys: int
    stamps_ms: dict[str, list[int]]
    memory_per_entity: float | None


@dataclass(frozen=True)
class ViewStatus:
    """The status of one view (``to_dict`` is the ``--json`` form)."""

    view: str
    kind: str
    verdict: str
    age_seconds: float | None  # of the newest values known (last successful run, or newest sampled _ts)
    max_age_seconds: int
    ttl_seconds: int | None
    last_success_run: str | None
    last_success_at: str | None
    last_failure_run: str | None
    last_failure_at: str | None
    last_failure_reason: str | None
    entities_written: int | None
    keys_sampled: int
    keys_with_view: int
    memory_per_entity_bytes: float | None
    newest_write_age_seconds: float | None
    stream: dict[str, str] | None = None  # a streaming view's last progress report (fs:stream:<view>)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def verdict(age_seconds: float | None, max_age_seconds: int, failing: bool) -> str:
    """The verdict for a view whose newest values are ``age_seconds`` old (None: none known)."""
    if failing:
        return FAILING
    if age_seconds is None:
        return NEVER
    if age_seconds > max_age_seconds:
        return STALE
    if age_seconds > max_age_seconds / 2:
        return AGEING
    return FRESH


def view_status(view: FeatureView, runs: Sequence[RunRecord], sample: EntitySample, now_ms: int) -> ViewStatus:
    """Pure: the status of ``view`` from its run records (newest first) and a key sample."""
    mine = [r for r in runs if r.view == view.name]
    success = next((r for r in mine if r.status == "succeeded"), None)
    failure = next((r for r in mine if r.status != "succeeded"), None)
    failing = bool(mine) and mine[0].status != "succeeded"
    stamps = sample.stamps_ms.get(view.name, [])
    finished = epoch_seconds(success.finished_at) if success is not None else None
    newest = max([*stamps, *([round(finished * 1000)] if finished is not None else [])], default=None)
    reason = None
    if failure is not None:
        reason = "; ".join(failure.failures) or failure.error or failure.status
    return ViewStatus(
        view=view.name,
        kind=str(view.kind),
        verdict=verdict(None if newest is None else max(0, now_ms - newest) / 1000, view.max_age_seconds, failing),
        age_seconds=None if newest is None else round(max(0, now_ms - newest) / 1000, 1),
        max_age_seconds=view.max_age_seconds,
        ttl_seconds=view.ttl_seconds,
        last_success_run=success.run_id if success else None,
        last_success_at=success.finished_at if success else None,
        last_failure_run=failure.run_id if failure else None,
        last_failure_at=failure.finished_at if failure else None,
        last_failure_reason=reason,
        entities_written=success.entities_written if success else None,
        keys_sampled=sample.keys,
        keys_with_view=len(stamps),
        memory_per_entity_bytes=sample.memory_per_entity,
        newest_write_age_seconds=None if not stamps else round(max(0, now_ms - max(stamps)) / 1000, 1),
    )


def sample_entity(client: Any, entity: Entity, views: Sequence[FeatureView], size: int) -> EntitySample:
    """Scan up to ``size`` keys of ``entity``: each view's ``_ts`` and the memory of a few keys."""
    stamps: dict[str, list[int]] = {v.name: [] for v in views}
    fields = [codec.ts_field(v) for v in views]
    memory: list[int] = []
    keys = 0
    for key in entity_keys(client, entity, size):
        keys += 1
        for view, raw in zip(views, client.hmget(key, fields)):
            if raw is not None:
                stamps[view.name].append(int(raw))
        if len(memory) < _MEMORY_SAMPLE:
            used = client.memory_usage(key)
            if used is not None:
                memory.append(int(used))
    return EntitySample(keys, stamps, sum(memory) / len(memory) if memory else None)


def collect(client: Any, catalog: Catalog, sample_size: int, now_ms: int) -> list[ViewStatus]:
    """Every view's status, read from ``client`` (run records, then one key sample per entity)."""
    runs = list_runs(client, limit=_RUNS_SCANNED)
    samples = {
        name: sample_entity(client, catalog.entity(name), catalog.views_of(name), sample_size)
        for name in dict.fromkeys(v.entity.name for v in catalog.views)
    }
    statuses = [view_status(v, runs, samples[v.entity.name], now_ms) for v in catalog.views]
    return [replace(s, stream=stream_progress(client, s.view)) if s.kind == "streaming" else s for s in statuses]


def status_samples(statuses: Iterable[ViewStatus]) -> list[Sample]:
    """The samples of ``featurestore status``: each view's age, max_age, health and verdict."""
    samples = []
    for status in statuses:
        view = (("view", status.view),)
        if status.age_seconds is not None:
            samples.append(Sample("featurestore_view_age_seconds", view, status.age_seconds))
        samples.append(Sample("featurestore_view_max_age_seconds", view, float(status.max_age_seconds)))
        samples.append(Sample("featurestore_view_healthy", view, 0.0 if status.verdict in UNHEALTHY else 1.0))
        samples.append(Sample("featurestore_view_verdict", (*view, ("verdict", status.verdict)), 1.0))
    return samples


def stream_progress(client: Any, view: str) -> dict[str, str] | None:
    """The last progress report of the job or consumer streaming into ``view``, if any wrote one."""
    raw = client.hgetall(progress_key(view))
    if not raw:
        return None
    return {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v) for k, v in
            raw.items()}  # fmt: skip


def stream_line(view: str, progress: dict[str, str], now_ms: int) -> str:
    """One line of a stream's progress: events/s, event -> Redis latency p50/p99, lag, dead letters,
    late and ignored events (the Spark job of a declared view), age."""
    age = max(0, now_ms - int(progress.get("updated_ms", now_ms))) / 1000
    rate = float(progress.get("events_per_second", "0"))
    windows = (
        f", {progress.get('late', '0')} late, {progress.get('ignored', '0')} ignored"
        if "late" in progress or "ignored" in progress
        else ""
    )
    return (
        f"  {view}: stream {progress.get('source', '?')}: {rate:.0f} events/s, event->Redis "
        f"p50 {progress.get('latency_p50_ms', '-')} ms p99 {progress.get('latency_p99_ms', '-')} ms, "
        f"lag {progress.get('lag', '-')}, {progress.get('dead_letters', '0')} dead letters{windows} "
        f"(reported {_age(age)} ago)"
    )


def _age(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def format_table(statuses: Sequence[ViewStatus], now_ms: int | None = None) -> str:
    """The statuses as an aligned text table, then one line per stream's progress and per failing
    view's reason."""
    header = ("view", "kind", "verdict", "age", "max_age", "last success", "entities", "keys", "B/entity", "last write")
    rows = [header]
    for s in statuses:
        rows.append(
            (
                s.view,
                s.kind,
                s.verdict,
                _age(s.age_seconds),
                _age(s.max_age_seconds),
                (s.last_success_at or "-")[:19],
                "-" if s.entities_written is None else f"{s.entities_written:,}",
                f"{s.keys_with_view}/{s.keys_sampled}",
                "-" if s.memory_per_entity_bytes is None else f"{s.memory_per_entity_bytes:.0f}",
                _age(s.newest_write_age_seconds),
            )
        )
    lines = aligned(rows)
    now = int(time.time() * 1000) if now_ms is None else now_ms
    lines += [stream_line(s.view, s.stream, now) for s in statuses if s.stream]
    for s in statuses:
        if s.last_failure_reason and s.verdict == FAILING:
            reason = s.last_failure_reason
            reason = reason if len(reason) <= 300 else reason[:297] + "..."
            lines.append(f"  {s.view}: run {s.last_failure_run} failed: {reason}")
    return "\n".join(lines)
