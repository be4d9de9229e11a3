"""``featurestore check`` — after a load, is the view really servable?

Run right after a materialization (the nightly DAG does, as the task after each view's
Spark job), the check looks at Redis the way inference will and fails loudly when:

* the run record of the view for the date is missing, did not succeed, failed to write
  rows, wrote nothing, or its counts do not add up (``rows_written + rows_failed`` must
  equal the rows the job had to write);
* the view has no entry in the registry (``fs:registry``) or the catalogue would decode
  it differently from how it was materialized;
* fewer sampled entities carry the view (a ``_ts:<view>`` field) than the run says it
  wrote, or any sampled entity's ``_ts:<view>`` is older than the freshness limit (by
  default the view's ``max_age``: what the reader would serve as *stale*), or none of the
  sampled values was computed by this run.

The sample comes from Redis itself: a bounded ``SCAN`` over the entity's keys (every
primary of a Cluster), read back with :class:`~featurestore.readers.FeatureReader` so
the values are decoded exactly as inference decodes them.  The decision is the pure
function :func:`evaluate`; :func:`collect_sample` and :func:`check_view` do the I/O.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote, urlencode

from redis.exceptions import RedisError

from featurestore.jobs.core.console import format_duration
from featurestore.jobs.core.control_plane import connect
from featurestore.jobs.core.run_records import RunRecord, latest_run
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, Entity, FeatureView
from featurestore.readers.errors import ConfigurationError, DecodingError, RegistryMismatchError
from featurestore.readers.reader import FeatureReader, check_registry, translate_error
from featurestore.readers.repository import load_catalog
from featurestore.readers.results import FeatureStatus
from featurestore.readers.settings import ConnectionSettings

SUCCEEDED = "succeeded"
DEFAULT_SAMPLE = 100
# SCAN is bounded so the check stays cheap on a big keyspace: it reads at most this many
# of the entity's keys per sampled entity wanted (a view held by 1% of an entity's keys
# still fills the default sample of 100).
KEYS_PER_SAMPLED_ENTITY = 200
_SCAN_COUNT = 1000
_READ_BATCH = 500
_TIMEOUT_SECONDS = 10.0  # a nightly check can afford to wait; inference's 1 s would be flaky here
# The job stamps `_ts` when it computes; allow this much clock skew between the Spark
# driver and the machine running the check before calling a value "not from this run".
CLOCK_SKEW_SECONDS = 120


# --- what the check looks at --------------------------------------------------------


def _started_ms(run: RunRecord) -> int | None:
    if not run.started_at:
        return None
    started = datetime.fromisoformat(run.started_at)
    if started.tzinfo is None:  # the job writes UTC
        started = started.replace(tzinfo=UTC)
    return int(started.timestamp() * 1000)


@dataclass(frozen=True)
class SampleStats:
    """What a bounded look at the entity's keys in Redis found."""

    keys_scanned: int  # keys of the entity looked at
    carriers: int  # of those, entities holding the view (`_ts:<view>` present)
    ages_seconds: tuple[float, ...]  # age of `_ts:<view>` of each carrier
    missing_by_feature: Mapping[str, int] = field(default_factory=dict)  # carriers without the feature
    registry: str = "ok"  # the reader's registry status of the view
    scan_complete: bool = False  # True when every key of the entity was looked at

    @property
    def oldest_age_seconds(self) -> float | None:
        return max(self.ages_seconds) if self.ages_seconds else None

    @property
    def newest_age_seconds(self) -> float | None:
        return min(self.ages_seconds) if self.ages_seconds else None


@dataclass(frozen=True)
class CheckReport:
    """The verdict of one check; ``problems`` is empty when ``ok``."""

    view: str
    ds: str
    problems: tuple[str, ...]
    max_age_seconds: int
    run: RunRecord | None
    sample: SampleStats | None

    @property
    def ok(self) -> bool:
        return not self.problems

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["ok"] = self.ok
        if self.sample is not None:
            out["sample"]["oldest_age_seconds"] = self.sample.oldest_age_seconds
            out["sample"]["newest_age_seconds"] = self.sample.newest_age_seconds
            del out["sample"]["ages_seconds"]  # one number per entity: too long for a log line
        return out

    def summary(self) -> str:
        """A few lines for a log or a terminal."""
        head = f"check of view {self.view!r} for ds {self.ds}: " + ("OK" if self.ok else "FAILED")
        lines = [head]
        if self.run is not None:
            r = self.run
            lines.append(
                f"  run {r.run_id}: status={r.status} rows_read={r.rows_read} rows_out={r.rows_out} "
                f"rows_written={r.rows_written} rows_failed={r.rows_failed} entities_written={r.entities_written}"
            )
        if self.sample is not None:
            s = self.sample
            oldest = "n/a" if s.oldest_age_seconds is None else format_duration(s.oldest_age_seconds)
            lines.append(
                f"  sample: {s.carriers} entities carry the view among {s.keys_scanned} keys scanned; "
                f"oldest _ts {oldest} (limit {format_duration(self.max_age_seconds)}); registry {s.registry}"
            )
        lines += [f"  problem: {p}" for p in self.problems]
        return "\n".join(lines)


# --- the decision (pure) ------------------------------------------------------------


def evaluate(
    view: FeatureView,
    ds: str,
    run: RunRecord | None,
    sample: SampleStats,
    *,
    sample_size: int,
    max_age_seconds: int,
    now_ms: int,
) -> list[str]:
    """Every reason the load of ``view`` for ``ds`` is not fit to serve (empty: it is)."""
    problems: list[str] = []
    name = view.name
    if run is None:
        problems.append(f"view {name!r}: no run record for ds {ds} in the run log (did the job run?)")
    else:
        problems += _run_problems(name, ds, run)
    if sample.registry != "ok":
        problems.append(
            f"view {name!r}: registry says {sample.registry!r} (the job publishes the view's definition "
            "in fs:registry when it writes)"
        )
    written = None if run is None else run.entities_written
    expected = sample_size if written is None else min(sample_size, written)
    if sample.carriers < expected:
        where = "all" if sample.scan_complete else "the first"
        problems.append(
            f"view {name!r}: only {sample.carriers} entities carry the view among {where} "
            f"{sample.keys_scanned} {view.entity.name!r} keys in Redis, expected at least {expected}"
            + ("" if written is None else f" (the run wrote {written} entities)")
        )
    too_old = [a for a in sample.ages_seconds if a > max_age_seconds]
    if too_old:
        problems.append(
            f"view {name!r}: {len(too_old)} of {sample.carriers} sampled entities have _ts:{name} older than "
            f"the limit of {format_duration(max_age_seconds)} (oldest {format_duration(max(too_old))})"
        )
    if run is not None:
        problems += _values_of_run_problems(name, run, sample, now_ms)
    if sample.carriers and sample.missing_by_feature:
        empty = sorted(f for f, n in sample.missing_by_feature.items() if n >= sample.carriers)
        if len(empty) == len(view.features):
            problems.append(f"view {name!r}: the sampled entities hold a _ts:{name} but none of its features")
    return problems


def _values_of_run_problems(name: str, run: RunRecord, sample: SampleStats, now_ms: int) -> list[str]:
    """The sample must hold values this run computed (`_ts` is stamped at write time)."""
    started_ms = _started_ms(run)
    if started_ms is None or not sample.ages_seconds:
        return []
    run_age = (now_ms - started_ms) / 1000.0
    newest = min(sample.ages_seconds)
    if newest <= run_age + CLOCK_SKEW_SECONDS:
        return []
    return [
        f"view {name!r}: no sampled entity holds values of run {run.run_id} (the newest _ts:{name} is "
        f"{format_duration(newest)} old, the run started {format_duration(run_age)} ago)"
    ]


def _run_problems(name: str, ds: str, run: RunRecord) -> list[str]:
    problems = []
    if run.ds != ds:
        problems.append(f"view {name!r}: the newest run record {run.run_id} is for ds {run.ds}, not {ds}")
    if run.status != SUCCEEDED:
        problems.append(f"view {name!r}: run {run.run_id} for ds {ds} ended with status {run.status!r}")
    if run.rows_failed:
        problems.append(f"view {name!r}: run {run.run_id} failed to write {run.rows_failed} rows")
    if run.rows_written <= 0:
        problems.append(f"view {name!r}: run {run.run_id} wrote no rows (is the source partition for {ds} empty?)")
    if run.rows_written + run.rows_failed != run.rows_out:
        problems.append(
            f"view {name!r}: run {run.run_id} counts do not add up: rows_written={run.rows_written} + "
            f"rows_failed={run.rows_failed} != rows_out={run.rows_out} (the rows handed to the writer)"
        )
    if run.entities_written > run.rows_written:
        problems.append(
            f"view {name!r}: run {run.run_id} says it wrote {run.entities_written} entities from "
            f"{run.rows_written} rows"
        )
    return problems


# --- reading Redis ------------------------------------------------------------------


def parse_entity_id(entity: Entity, key: bytes) -> object:
    """The entity id inside a key ``fs:<entity>:{<id>}`` (the inverse of ``codec.entity_key``)."""
    prefix = codec.key_prefix(entity)
    if not (key.startswith(prefix) and key.endswith(b"}")):
        raise DecodingError(f"key {key[:80]!r} is not a key of entity {entity.name!r}")
    raw = key[len(prefix) : -1]
    return int(raw) if entity.id_dtype == "int64" else raw.decode()


def entity_keys(client: Any, entity: Entity, limit: int) -> Iterator[bytes]:
    """Up to ``limit`` keys of the entity, in SCAN order (all primaries of a Cluster)."""
    pattern = codec.key_prefix(entity) + b"*"
    for n, key in enumerate(client.scan_iter(match=pattern, count=_SCAN_COUNT)):
        if n >= limit:
            return
        yield key


def collect_sample(reader: FeatureReader, client: Any, view: FeatureView, sample_size: int) -> SampleStats:
    """Find up to ``sample_size`` entities holding ``view`` and read them like inference does.

    Checks the view's registry entry first (only this view's: another view's skew is that
    view's check to report) and raises :class:`RegistryMismatchError` on a decoding skew.
    """
    registry = check_registry(Catalog(views=(view,)), client.hgetall(codec.REGISTRY_KEY))[view.name]
    limit = max(sample_size * KEYS_PER_SAMPLED_ENTITY, _READ_BATCH)
    ages: list[float] = []
    missing = dict.fromkeys(view.feature_names, 0)
    scanned = 0
    batch: list[object] = []

    def read(ids: Sequence[object]) -> None:
        for vector in reader.get_many(ids, view.name, serve_stale=True):
            age = vector.age(view.name)
            if age is None or len(ages) >= sample_size:
                continue  # the entity has no value of this view (another view's key)
            ages.append(age)
            for feature, status in vector.statuses.items():
                if status is FeatureStatus.MISSING:
                    missing[feature] += 1

    for key in entity_keys(client, view.entity, limit):
        scanned += 1
        batch.append(parse_entity_id(view.entity, key))
        if len(batch) >= _READ_BATCH:
            read(batch)
            batch = []
            if len(ages) >= sample_size:
                break
    if batch and len(ages) < sample_size:
        read(batch)
    return SampleStats(
        keys_scanned=scanned,
        carriers=len(ages),
        ages_seconds=tuple(ages),
        missing_by_feature=missing,
        registry=registry,
        scan_complete=scanned < limit and len(ages) < sample_size,
    )


def latest_run_record(url: str, view: str, ds: str) -> RunRecord | None:
    """The newest run record of ``view`` for ``ds``, read with a short-lived client."""
    client = connect(url, timeout=_TIMEOUT_SECONDS)
    try:
        return latest_run(client, view, ds=ds)
    finally:
        client.close()


def check_view(
    url: str,
    view_name: str,
    ds: str,
    *,
    catalog: Catalog | str | None = None,
    sample_size: int = DEFAULT_SAMPLE,
    max_age_seconds: int | None = None,
) -> CheckReport:
    """Check the load of one batch view for one date; see the module docstring.

    Connection errors raise (a retry may help); everything the check finds wrong,
    including a registry mismatch, comes back as ``problems`` of the report.
    """
    cat = catalog if isinstance(catalog, Catalog) else load_catalog(catalog)
    view = cat.view(view_name)
    if not view.is_batch:
        raise ConfigurationError(f"view {view_name!r} is a streaming view: the post-load check is for batch views")
    if sample_size < 1:
        raise ConfigurationError(f"the sample size must be >= 1, got {sample_size}")
    limit = view.max_age_seconds if max_age_seconds is None else max_age_seconds
    if limit < 1:
        raise ConfigurationError(f"max age must be >= 1 second, got {limit}")
    settings = ConnectionSettings.from_url(url, timeout=_TIMEOUT_SECONDS)
    # the registry is checked for this view alone, in collect_sample
    reader = FeatureReader(url, catalog=cat, timeout=_TIMEOUT_SECONDS, check_registry=False)
    client = connect(url, timeout=_TIMEOUT_SECONDS)
    try:
        run = latest_run(client, view_name, ds=ds)
        sample = collect_sample(reader, client, view, sample_size)
    except RegistryMismatchError as exc:  # the message names the view and the skew
        return CheckReport(view_name, ds, (str(exc),), limit, None, None)
    except DecodingError as exc:
        return CheckReport(view_name, ds, (f"view {view_name!r}: {exc}",), limit, None, None)
    except RedisError as exc:
        raise translate_error(exc, settings, f"checking view {view_name!r}") from None
    finally:
        client.close()
        reader.close()
    problems = evaluate(
        view, ds, run, sample, sample_size=sample_size, max_age_seconds=limit, now_ms=int(time.time() * 1000)
    )
    return CheckReport(view_name, ds, tuple(problems), limit, run, sample)


# --- building the URL from an Airflow connection (no Airflow import here) ----------

_URL_EXTRAS = ("cluster", "read_from_replicas", "ssl_ca_certs", "ssl_cert_reqs", "ssl_certfile", "ssl_keyfile")


def connection_url(
    *,
    host: str | None,
    port: int | None = None,
    login: str | None = None,
    password: str | None = None,
    schema: str | None = None,
    extra: Mapping[str, Any] | None = None,
    conn_type: str | None = "redis",
) -> str:
    """A Redis URL from the fields of an Airflow connection (or any similar record).

    ``rediss://`` when the type is ``rediss`` or the extra says ``"ssl": true``; the
    database is the schema or ``extra["db"]``; ``cluster``, ``read_from_replicas`` and
    the ``ssl_*`` options of the extra become URL options.  User and password are
    percent-encoded, so any character is safe.
    """
    extra = dict(extra or {})
    if not host:
        raise ConfigurationError("the Redis connection has no host")
    tls = conn_type == "rediss" or str(extra.get("ssl", "")).lower() in ("1", "true", "yes", "on")
    auth = ""
    if login or password:
        auth = quote(login or "", safe="") + (":" + quote(password, safe="") if password else "") + "@"
    db = schema or extra.get("db")
    path = f"/{db}" if db not in (None, "") else ""
    options = {
        k: str(extra[k]).lower() if isinstance(extra[k], bool) else str(extra[k]) for k in _URL_EXTRAS if k in extra
    }
    query = f"?{urlencode(options)}" if options else ""
    return f"{'rediss' if tls else 'redis'}://{auth}{host}:{port or 6379}{path}{query}"
