"""``featurestore status`` — one screen for every view of the catalogue, and a health check.

For each view: the last successful run and its age against the view's ``max_age``, the last
failed run and why, the entities written, a sample of the entity keys (how many carry the
view, their memory per entity with ``MEMORY USAGE``, the newest ``_ts`` — for a streaming
view, how long ago its last event was written, and the last progress report of the job or consumer
feeding it: events/s, event -> Redis latency p50/p99, consumer lag, dead letters), and a verdict:

====================== ===============================================================
``fresh``              the newest values are younger than half the view's ``max_age``
``ageing``             older than half of ``max_age`` (a nightly run was probably missed)
``stale``              older than ``max_age``: the reader serves defaults, status *stale*;
                       also a streaming view whose stream is known (``fs:stream:<view>``)
                       but wrote nothing within ``max_age`` (a dead or idle stream)
``never materialized`` a batch view: no run recorded and no value found
``never written``      a streaming view: no stream known and no value found
``refused``            the view's newest run was refused by a guard alone (input, drift):
                       nothing written, the previous values serve until ``max_age``
``failing``            the view's newest run failed (validation or runtime)
====================== ===============================================================

**One clock.**  A view's age is the age of its newest values as the reader judges them: the
``_ts:<view>`` written with them (sampled keys; for a batch view also its last successful
run's ``computed_at``, the same ``_ts``; the run's end only for records older than that field),
and for a streaming view also the last progress report that counted written events.  An
``interrupted`` run (Ctrl-C) is neither a success nor a failure of the view: it is skipped.

The exit code is 1 when any view is ``stale``, ``refused`` or ``failing`` (0 otherwise), so the
command doubles as a health check (cron, a Kubernetes probe, the Airflow DAG);
``featurestore_view_healthy{view=...}`` is 0 for the same views.  Works against a standalone
server and a Cluster (the sample scans every primary).
"""

from __future__ import annotations

import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any

from featurestore.jobs.core.console import format_duration
from featurestore.jobs.core.control_plane import progress_key
from featurestore.jobs.core.job_metrics import Sample, label_value
from featurestore.jobs.core.run_records import INTERRUPTED, RunRecord, aligned, epoch_seconds, list_runs
from featurestore.jobs.ops.post_load_check import entity_keys
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, Entity, FeatureView

FRESH, AGEING, STALE, NEVER, FAILING = "fresh", "ageing", "stale", "never materialized", "failing"
NEVER_WRITTEN, REFUSED = "never written", "refused"
UNHEALTHY = frozenset({STALE, REFUSED, FAILING})
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
    age_seconds: float | None  # of the newest values known (their `_ts`: last successful run, sampled keys, stream)
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

    def headline(self) -> str:
        """One line: the view, its verdict and why (the failed or refused run, or its age)."""
        line = f"view {self.view!r} is {self.verdict}"
        if self.verdict in (FAILING, REFUSED):
            return line + f" (run {self.last_failure_run}: {self.last_failure_reason})"
        if self.verdict == STALE and self.age_seconds is None:
            return line + f" (its stream wrote nothing within max_age {format_duration(self.max_age_seconds)})"
        if self.verdict == STALE:
            return line + f" ({format_duration(self.age_seconds)} old, max_age {format_duration(self.max_age_seconds)})"
        return line


def verdict(
    age_seconds: float | None, max_age_seconds: int, failing: bool, *, refused: bool = False, never: str = NEVER
) -> str:
    """The verdict for a view whose newest values are ``age_seconds`` old (None: none known).

    ``failing``: its newest run failed; ``refused``: a guard alone refused it; ``never``: what
    to call a view with no values known (:data:`NEVER`, :data:`NEVER_WRITTEN`, or :data:`STALE`
    for a stream that is known but wrote nothing lately)."""
    if failing:
        return FAILING
    if refused:
        return REFUSED
    if age_seconds is None:
        return never
    if age_seconds > max_age_seconds:
        return STALE
    if age_seconds > max_age_seconds / 2:
        return AGEING
    return FRESH


def run_values_ms(run: RunRecord) -> int | None:
    """When a successful run's values were computed: the ``_ts:<view>`` it wrote (``computed_at``),
    the clock of the reader's stale rule; the run's end for a record older than that field."""
    seconds = epoch_seconds(run.computed_at) if run.computed_at else epoch_seconds(run.finished_at)
    return None if seconds is None else round(seconds * 1000)


def stream_write_ms(progress: Mapping[str, str] | None) -> int | None:
    """The newest write a stream's progress report vouches for: its ``last_write_ms`` if it has
    one, else the report's time when it counted events since the report before (a report of an
    idle stream says the job runs, not that it wrote)."""
    if not progress:
        return None
    try:
        if progress.get("last_write_ms"):
            return int(progress["last_write_ms"])
        if float(progress.get("events_per_second") or 0) > 0:
            return int(progress["updated_ms"])
    except (KeyError, ValueError):
        return None
    return None


def view_status(
    view: FeatureView,
    runs: Sequence[RunRecord],
    sample: EntitySample,
    now_ms: int,
    progress: Mapping[str, str] | None = None,
) -> ViewStatus:
    """Pure: the status of ``view`` from its run records (newest first), a key sample and, for a
    streaming view, its stream's last progress report (``fs:stream:<view>``)."""
    # an interrupted run (Ctrl-C) says nothing about the view: neither a success nor a failure
    mine = [r for r in runs if r.view == view.name and r.status != INTERRUPTED]
    success = next((r for r in mine if r.status == "succeeded"), None)
    failure = next((r for r in mine if r.status != "succeeded"), None)
    newest_run = mine[0].status if mine else "succeeded"
    stamps = sample.stamps_ms.get(view.name, [])
    known = [*stamps, run_values_ms(success) if success is not None else None, stream_write_ms(progress)]
    newest = max((ms for ms in known if ms is not None), default=None)
    reason = None
    if failure is not None:
        reason = "; ".join(failure.failures) or failure.error or failure.status
    age = None if newest is None else max(0, now_ms - newest) / 1000
    failing = newest_run not in ("succeeded", "refused_by_guard")
    if view.is_batch:
        never = NEVER
    else:  # a stream that is known but vouches for no write in the window is not "never materialized"
        never = STALE if progress else NEVER_WRITTEN
    return ViewStatus(
        view=view.name,
        kind=str(view.kind),
        verdict=verdict(age, view.max_age_seconds, failing, refused=newest_run == "refused_by_guard", never=never),
        age_seconds=None if age is None else round(age, 1),
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
        stream=dict(progress) if progress else None,
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
    return [
        view_status(v, runs, samples[v.entity.name], now_ms, None if v.is_batch else stream_progress(client, v.name))
        for v in catalog.views
    ]


def status_samples(statuses: Iterable[ViewStatus]) -> list[Sample]:
    """The samples of ``featurestore status``: each view's age, max_age, health and verdict."""
    samples = []
    for status in statuses:
        view = (("view", status.view),)
        if status.age_seconds is not None:
            samples.append(Sample("featurestore_view_age_seconds", view, status.age_seconds))
        samples.append(Sample("featurestore_view_max_age_seconds", view, float(status.max_age_seconds)))
        samples.append(Sample("featurestore_view_healthy", view, 0.0 if status.verdict in UNHEALTHY else 1.0))
        samples.append(Sample("featurestore_view_verdict", (*view, ("verdict", label_value(status.verdict))), 1.0))
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
    return format_duration(seconds)  # the command line's one duration format


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
        if s.last_failure_reason and s.verdict in (FAILING, REFUSED):
            reason = s.last_failure_reason
            reason = reason if len(reason) <= 300 else reason[:297] + "..."
            what = "was refused by a guard" if s.verdict == REFUSED else "failed"
            lines.append(f"  {s.view}: run {s.last_failure_run} {what}: {reason}")
        elif s.verdict == STALE and s.kind == "streaming" and s.age_seconds is None:
            lines.append(f"  {s.view}: its stream wrote nothing within max_age {_age(s.max_age_seconds)}")
    return "\n".join(lines)
