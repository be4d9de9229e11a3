"""``featurestore plan`` (alias ``validate``): what a run would do with the repository; writes nothing.

It loads the repository's settings and definitions, and reports (as text lines, the CLI prints them):
every setting with where it came from (like ``dbt debug``), the definitions, per batch view its
transform, sources and suite (parsed, expectations counted), per streaming view its topic, fields,
lateness, each feature's computation and TTL (derived or set) and its checkpoint.  Any problem is
raised as the error naming the file and the key (exit 2).  No Spark, no Redis, no file written (not
even the definitions' ``__pycache__``).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from featurestore.jobs.batch import transforms, validation
from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, source_tables
from featurestore.jobs.core.repository import repository_catalog
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.streaming.windows import ViewProgram
from featurestore.readers.definitions import (
    Aggregate,
    Catalog,
    DType,
    FeatureView,
    LastValue,
    SecondsSincePrevious,
    duration_text,
)
from featurestore.readers.repository import SETTINGS_FILE
from featurestore.readers.settings import redact_url

# the settings `plan` shows, in this order
SHOWN = (
    "name",
    "catalog",
    "expectations_dir",
    "redis_url",
    "warehouse",
    "feature_log",
    "checkpoints",
    "kafka_bootstrap",
    "spark_master",
    "spark_conf",
)


def plan_lines(settings: Settings, *, connect: bool = False) -> list[str]:
    """The plan of the repository ``settings`` were loaded from, one line per item.

    ``connect=True`` (``--connect``) also reads: Redis (reached as the reader reaches it, the
    registry compared with the definitions as the reader compares them: a decoding change fails
    as it would at the reader's start-up) and the warehouse (each batch view's source tables
    exist as Delta tables; no Spark).  Still nothing is written.
    """
    folder, catalog = repository_catalog(settings)
    lines = [f"repository {settings.name or folder.name}  {folder / SETTINGS_FILE}"]
    lines += list(_settings_lines(settings))
    lines.append(_definitions_line(catalog, settings))
    for view in catalog.batch_views:
        lines += list(_batch_lines(view, settings))
    for view in catalog.streaming_views:
        lines += list(_stream_lines(view, settings))
    if connect:
        lines += list(_connected_lines(catalog, settings))
        lines.append("ok: nothing was written")
    else:
        lines.append("ok: nothing was written (plan --connect also checks Redis and the warehouse)")
    return lines


def _connected_lines(catalog: Catalog, settings: Settings) -> Iterator[str]:
    """Redis and its registry as the reader sees them; the warehouse's source tables."""
    from featurestore.readers import FeatureReader

    url = settings.require_redis_url()
    with FeatureReader.connect(url, catalog=catalog) as reader:  # PING + the registry check, read only
        status = dict(reader.registry_status)
    yield f"redis {redact_url(url)}: reachable; registry: " + ", ".join(
        f"{view} {state}" for view, state in sorted(status.items())
    )
    warehouse = settings.warehouse or str(DEFAULT_WAREHOUSE)
    tables = source_tables(catalog, warehouse)
    yield f"warehouse {warehouse}: Delta tables {', '.join(tables) or '(none needed)'} found"


def _settings_lines(settings: Settings) -> Iterator[str]:
    for name in SHOWN:
        value = getattr(settings, name)
        if name == "redis_url" and value:
            value = redact_url(value)
        elif name == "spark_conf":
            value = ", ".join(f"{k}={v}" for k, v in sorted(value.items())) or None
        if value is None:
            value = {"feature_log": "<warehouse>/_feature_log", "spark_master": "local[2]"}.get(name, "-")
        source = (
            settings.source_of(name).replace(f"{settings.repo}/", "") if settings.repo else settings.source_of(name)
        )
        yield f"  {name:<17}{value!s:<48} {source}"


def _definitions_line(catalog: Catalog, settings: Settings) -> str:
    batch, streaming = len(catalog.batch_views), len(catalog.streaming_views)
    suites = (
        f"suites in {settings.expectations_dir}"
        if settings.expectations_dir
        else "no suites folder (--expectations DIR)"
    )
    return (
        f"definitions: {len(catalog.entities)} entities, {len(catalog.views)} views "
        f"({batch} batch, {streaming} streaming); {suites}"
    )


def _batch_lines(view: FeatureView, settings: Settings) -> Iterator[str]:
    transform = transforms.transform_for(view)  # no transform: the error says where to add one
    reads = []
    for table in transform.sources:
        days = transform.lookback_days.get(table)
        reads.append(f"{table} ({'all' if days is None else f'{days} days'})")
    suite_file = validation.suite_path(view, settings.expectations_dir)
    suite = validation.load_suite(suite_file, view)
    ttl = duration_text(view.ttl_seconds or 0)
    yield (
        f"batch  {view.name:<24} {view.entity.name:<12} ttl {ttl:<6} transform {transform.name}  "
        f"sources {', '.join(reads)}  suite {len(suite['expectations'])} expectations"
    )


def _computation_text(view: FeatureView, feature: str) -> str:
    spec = view.computation(feature)
    if isinstance(spec, Aggregate):
        column = f"({spec.column})" if spec.column else ""
        where = " where " + ", ".join(f"{k}={v}" for k, v in spec.where.items()) if spec.where else ""
        window, slide = duration_text(spec.window_seconds), duration_text(spec.slide_seconds)
        shape = f"tumbling {window}" if spec.is_tumbling else f"sliding {window} every {slide}"
        return f"{spec.fn}{column}{where}  {shape}"
    if isinstance(spec, LastValue):
        where = " where " + ", ".join(f"{k}={v}" for k, v in spec.where.items()) if spec.where else ""
        return f"last({spec.column}){where}"
    if isinstance(spec, SecondsSincePrevious):
        return "seconds since previous event"
    return "written by a hook (StreamingWriter)"


def _stream_lines(view: FeatureView, settings: Settings) -> Iterator[str]:
    stream = view.stream
    if stream is None:
        yield f"stream {view.name:<24} {view.entity.name:<12} written by a hook (no stream= source)"
    else:
        yield (
            f"stream {view.name:<24} {view.entity.name:<12} topic {stream.topic}  id {stream.id_field}  "
            f"time {stream.time_field}  lateness {duration_text(stream.allowed_lateness_seconds)}"
        )
    for feature in view.features:
        spec = view.computation(feature.name)
        declared = getattr(spec, "ttl", None) is not None or (spec is None and feature.ttl is not None)
        derived = "set" if declared else "derived" if isinstance(spec, Aggregate) else "the view's"
        ttl = duration_text(view.feature_ttl(feature))
        yield (
            f"  {feature.name:<22} {DType(feature.dtype).value:<8} {_computation_text(view, feature.name):<40} "
            f"ttl {ttl} ({derived})"
        )
    if stream is not None and settings.checkpoints:
        checkpoint = Path(settings.checkpoints) / view.name / ViewProgram.of(view).fingerprint[:8]  # the job's
        state = "exists: a restart resumes from it" if checkpoint.exists() else "new: starts at the earliest offset"
        yield f"  checkpoint {checkpoint}  ({state})"
