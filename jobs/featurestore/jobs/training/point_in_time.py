"""Point-in-time feature values: for each (entity, timestamp), what the reader would have returned then.

Pure DataFrame -> DataFrame logic (no I/O, the session is the caller's).  The rules are the
serving rules of docs/storage-format.md and docs/training-data.md, applied to the
feature log instead of Redis, with times in epoch milliseconds:

* **visible**: a log row written at ``w`` (``_written_at_ms``) is seen by a label at ``t`` iff
  ``w <= t`` (a tie is visible: the row was in Redis when the label's read happened);
  a value computed or written 1 ms after ``t`` never is;
* **expired**: a batch view whose TTL is shorter than its entity's key TTL loses its fields
  at ``w + view ttl`` (``HEXPIRE``); a streaming feature at ``w + feature ttl``
  (``HSETEX EX``); ``_ts:<streaming view>`` at ``w + longest ttl``;
* **key death**: the entity's hash dies ``key ttl`` after its last batch write unless
  another batch write (any batch view of the entity) comes first; a death at ``d`` removes
  every field written before ``d``, batch or streaming (alive while ``t < d``);
* **null** in the log (a deleted field) is *missing*;
* **stale**: a present value whose view's ``_ts`` is older than the view's ``max_age``
  (``t - _ts_ms > max_age``) is *stale*;
* missing and stale values are the feature's **default**, exactly like the reader's.

Implemented as one sort per entity: the labels, the log rows and the key deaths are unioned
and a window keeps, for each label, the last visible value of every view (or of every
streaming feature), then column expressions apply the rules above.  A label row travels
through the sort as one struct column, so nothing is joined back.  No Python loop, no
join per label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from featurestore.jobs.core import feature_log as fl
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView
from featurestore.readers.errors import ConfigurationError, FeatureNotFoundError, unknown_name_message
from featurestore.readers.results import FeatureStatus

if TYPE_CHECKING:
    from pyspark.sql import Column, DataFrame

__all__ = ["STATUS_SUFFIX", "Requested", "point_in_time", "resolve_features", "timestamp_ms"]

STATUS_SUFFIX = "__status"
_ROW, _T, _O, _DEATH = "_pit_row", "_pit_t", "_pit_order", "_pit_death"
# order of rows at the same millisecond: a key death, then writes, then labels
_ORDER_DEATH, _ORDER_WRITE, _ORDER_LABEL = 0, 1, 2


@dataclass(frozen=True)
class Requested:
    """The features asked for, in order, with their views."""

    features: tuple[tuple[FeatureView, Feature], ...]

    @property
    def views(self) -> tuple[FeatureView, ...]:
        seen: dict[str, FeatureView] = {}
        for view, _ in self.features:
            seen.setdefault(view.name, view)
        return tuple(seen.values())

    @property
    def entities(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(v.entity.name for v in self.views))


def resolve_features(catalog: Catalog, names: Sequence[str]) -> Requested:
    """View names (all their features) and feature names, resolved like the reader resolves them."""
    if isinstance(names, str):
        names = [names]
    if not names:
        raise FeatureNotFoundError("no features requested")
    by_name: dict[str, list[tuple[FeatureView, Feature]]] = {}
    for view in catalog.views:
        for feature in view.features:
            by_name.setdefault(feature.name, []).append((view, feature))
    view_names = {v.name for v in catalog.views}
    chosen: list[tuple[FeatureView, Feature]] = []
    for name in names:
        if name in view_names:
            view = catalog.view(name)
            chosen += [(view, f) for f in view.features]
            continue
        found = by_name.get(name)
        if not found:
            problem = f"unknown feature or view {name!r}"
            raise FeatureNotFoundError(unknown_name_message(problem, name, [*view_names, *by_name]))
        if len(found) > 1:
            owners = sorted(v.entity.name for v, _ in found)
            raise FeatureNotFoundError(f"feature {name!r} exists for entities {owners}: request its view instead")
        chosen.append(found[0])
    unique = tuple(dict.fromkeys(chosen))
    return Requested(unique)


def timestamp_ms(labels: DataFrame, column: str) -> Column:
    """The label time as epoch milliseconds: a timestamp, a date (its midnight, UTC) or epoch-ms longs."""
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    if column not in labels.columns:
        raise ConfigurationError(f"the labels have no timestamp column {column!r} (columns: {labels.columns})")
    dtype = labels.schema[column].dataType
    if isinstance(dtype, (T.TimestampType, T.TimestampNTZType)):
        return F.unix_millis(F.col(column).cast("timestamp"))
    if isinstance(dtype, T.DateType):
        return F.unix_millis(F.to_utc_timestamp(F.col(column).cast("timestamp"), "UTC"))
    if isinstance(dtype, (T.LongType, T.IntegerType)):
        return F.col(column).cast("long")
    raise ConfigurationError(
        f"timestamp column {column!r} is {dtype.simpleString()}: use a timestamp, a date or epoch milliseconds"
    )


def _default(feature: Feature) -> Column:
    from pyspark.sql import functions as F

    from featurestore.jobs.spark_types import spark_type

    value = feature.default
    if value is None:
        return F.lit(None).cast(spark_type(feature))
    if DType(feature.dtype) is DType.VECTOR:
        return F.array(*[F.lit(float(v)) for v in value]).cast(spark_type(feature))
    return F.lit(value).cast(spark_type(feature))


def _struct_name(view: FeatureView, feature: Feature | None = None) -> str:
    return f"_pit_{view.name}" + (f"__{feature.name}" if feature is not None else "")


def _key_deaths(batch_logs: Sequence[DataFrame], key: str, key_ttl_ms: int) -> DataFrame | None:
    """When the entity's hash died: ``w + key ttl`` of a batch write not followed by another in time."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    if not batch_logs:
        return None
    writes = None
    for frame in batch_logs:
        part = frame.select(F.col(key), F.col(fl.WRITTEN_AT_MS).alias("_w"))
        writes = part if writes is None else writes.unionByName(part)
    assert writes is not None
    writes = writes.distinct()
    following = F.lead("_w").over(Window.partitionBy(key).orderBy("_w"))
    death = F.col("_w") + F.lit(key_ttl_ms)
    return (
        writes.select(key, "_w", following.alias("_next"))
        .where(F.col("_next").isNull() | (F.col("_next") >= death))
        .select(key, death.alias(_DEATH))
    )


def _typed_null_structs(views: Sequence[FeatureView]) -> dict[str, Column]:
    """The struct columns a timeline row can carry, in order, each as a null of its type.

    A batch view carries its last write (every feature, ``ts`` and ``w``); a streaming view
    its last event (``ts``, ``w``) and each feature's last value (``v``, ``w``).  The types
    come from the log schema (no Spark round trip), so the union of the rows lines up.
    """
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    def written() -> list[T.StructField]:
        return [T.StructField("ts", T.LongType()), T.StructField("w", T.LongType())]

    typed_nulls: dict[str, Column] = {}
    for view in views:
        types = {f.name: f.dataType for f in fl.log_schema(view).fields}
        if view.is_batch:
            kind = T.StructType([T.StructField(f.name, types[f.name]) for f in view.features] + written())
            typed_nulls[_struct_name(view)] = F.lit(None).cast(kind)
        else:
            typed_nulls[_struct_name(view)] = F.lit(None).cast(T.StructType(written()))
            for feature in view.features:
                kind = T.StructType([T.StructField("v", types[feature.name]), T.StructField("w", T.LongType())])
                typed_nulls[_struct_name(view, feature)] = F.lit(None).cast(kind)
    return typed_nulls


def _written_structs(view: FeatureView) -> dict[str, Column]:
    """What one feature-log row of ``view`` sets among the timeline's struct columns."""
    from pyspark.sql import functions as F

    written_at = F.col(fl.WRITTEN_AT_MS).alias("w")
    if view.is_batch:
        features = [F.col(f.name) for f in view.features]
        return {_struct_name(view): F.struct(*features, F.col(fl.TS_MS).alias("ts"), written_at)}
    own = {_struct_name(view): F.struct(F.col(fl.TS_MS).alias("ts"), written_at)}
    for feature in view.features:
        wrote = F.col(fl.FIELDS).isNull() | F.array_contains(F.col(fl.FIELDS), feature.name)
        own[_struct_name(view, feature)] = F.when(wrote, F.struct(F.col(feature.name).alias("v"), written_at))
    return own


@dataclass(frozen=True)
class _Timeline:
    """The rows of one entity's timeline, all with the same columns: the key, the time, the
    order within a millisecond, the label row (one struct of every label column, so no join
    brings it back), a key death, and the struct columns of :func:`_typed_null_structs`."""

    key: str
    typed_nulls: Mapping[str, Column]
    null_label: Column

    def rows(
        self, frame: DataFrame, t: Column, order: int, label: Column, death: Column, own: Mapping[str, Column]
    ) -> DataFrame:
        from pyspark.sql import functions as F

        return frame.select(
            F.col(self.key).alias("_pit_key"), t.alias(_T), F.lit(order).alias(_O),
            label.alias(_ROW), death.alias(_DEATH),
            *[own.get(name, null).alias(name) for name, null in self.typed_nulls.items()],
        )  # fmt: skip


def _as_of_labels(timeline: DataFrame, struct_names: Sequence[str]) -> DataFrame:
    """The label rows, each with the last key death and the last value of every struct column up to it."""
    from pyspark.sql import Window
    from pyspark.sql import functions as F

    window = Window.partitionBy("_pit_key").orderBy(_T, _O).rowsBetween(Window.unboundedPreceding, Window.currentRow)
    carried = [F.last(F.col(name), ignorenulls=True).over(window).alias(name) for name in [_DEATH, *struct_names]]
    return timeline.select(_ROW, _T, _O, *carried).where(F.col(_O) == _ORDER_LABEL)


def _alive(w: Column, ttl_ms: int | None) -> Column:
    """A field written at ``w`` is still there at the label's time: no key death since, not expired."""
    from pyspark.sql import functions as F

    death = F.col(_DEATH)
    ok = w.isNotNull() & (death.isNull() | (death <= w))
    if ttl_ms is not None:
        ok = ok & (F.col(_T) < w + F.lit(ttl_ms))
    return ok


def _view_as_of(view: FeatureView, key_ttl: int | None) -> tuple[Column, dict[str, tuple[Column, Column]]]:
    """The view's stale flag at the label's time, and (alive, raw value) of each of its features."""
    from pyspark.sql import functions as F

    t = F.col(_T)
    max_age_ms = view.max_age_seconds * 1000
    if view.is_batch:
        last = F.col(_struct_name(view))
        field_ttl = view.ttl_seconds if key_ttl is not None and view.ttl_seconds < key_ttl else None  # type: ignore[operator]
        view_alive = _alive(last["w"], field_ttl * 1000 if field_ttl else None)
        stale = view_alive & ((t - last["ts"]) > F.lit(max_age_ms))
        return stale, {f.name: (view_alive, last[f.name]) for f in view.features}
    event = F.col(_struct_name(view))
    ts_alive = _alive(event["w"], view.longest_ttl * 1000)
    stale = ts_alive & ((t - event["ts"]) > F.lit(max_age_ms))
    raws = {}
    for feature in view.features:
        last = F.col(_struct_name(view, feature))
        raws[feature.name] = (_alive(last["w"], view.feature_ttl(feature) * 1000), last["v"])
    return stale, raws


def _served(feature: Feature, is_alive: Column, raw: Column, stale: Column) -> tuple[Column, Column]:
    """(value, status) of a feature as the reader serves it: the default when missing or stale."""
    from pyspark.sql import functions as F

    present = is_alive & raw.isNotNull()
    status = (
        F.when(~present, F.lit(FeatureStatus.MISSING.value))
        .when(stale, F.lit(FeatureStatus.STALE.value))
        .otherwise(F.lit(FeatureStatus.PRESENT.value))
    )
    value = F.when(present & ~stale, raw).otherwise(_default(feature))
    return value, status


def _feature_columns(
    views: Sequence[FeatureView], requested: Requested, key_ttl: int | None, with_status: bool
) -> list[Column]:
    """The requested features of ``views`` (and their statuses) as columns over :func:`_as_of_labels`."""
    out: list[Column] = []
    wanted = {(v.name, f.name) for v, f in requested.features}
    for view in views:
        stale, raws = _view_as_of(view, key_ttl)
        for feature in view.features:
            if (view.name, feature.name) not in wanted:
                continue
            value, status = _served(feature, *raws[feature.name], stale)
            out.append(value.alias(feature.name))
            if with_status:
                out.append(status.alias(feature.name + STATUS_SUFFIX))
    return out


def _entity_frame(
    labels: DataFrame,
    catalog: Catalog,
    entity: str,
    requested: Requested,
    logs: Mapping[str, DataFrame],
    with_status: bool,
) -> DataFrame:
    """``labels`` (every column) + one column per requested feature of ``entity`` (and its status).

    The stages: one timeline of the labels, the feature-log rows and the key deaths; the
    last visible values as of each label (:func:`_as_of_labels`); the serving rules as
    columns (:func:`_feature_columns`).
    """
    from pyspark.sql import functions as F

    key = catalog.entity(entity).join_key
    if key not in labels.columns:
        raise ConfigurationError(
            f"the labels have no column {key!r}, the join key of entity {entity!r} (columns: {labels.columns})"
        )
    views = [v for v in requested.views if v.entity.name == entity]
    key_ttl = catalog.key_ttl(entity)

    def log_of(view: FeatureView) -> DataFrame:
        frame = logs.get(view.name)
        if frame is None:
            raise ConfigurationError(f"no feature log given for view {view.name!r} (entity {entity!r})")
        return frame

    label_struct = F.struct(*[F.col(c) for c in labels.columns])
    null_label = F.lit(None).cast(labels.select(label_struct).schema[0].dataType)
    timeline = _Timeline(key, _typed_null_structs(views), null_label)
    null_long = F.lit(None).cast("long")
    union = timeline.rows(labels, F.col(_T), _ORDER_LABEL, label_struct, null_long, {})
    for view in views:
        written = _written_structs(view)
        union = union.unionByName(
            timeline.rows(log_of(view), F.col(fl.WRITTEN_AT_MS), _ORDER_WRITE, null_label, null_long, written)
        )
    if key_ttl is not None:
        batch_logs = [log_of(v) for v in catalog.views_of(entity) if v.is_batch]
        deaths = _key_deaths(batch_logs, key, key_ttl * 1000)
        if deaths is not None:
            union = union.unionByName(timeline.rows(deaths, F.col(_DEATH), _ORDER_DEATH, null_label, F.col(_DEATH), {}))

    as_of = _as_of_labels(union, list(timeline.typed_nulls))
    out = [F.col(f"{_ROW}.{c}").alias(c) for c in labels.columns]
    return as_of.select(*out, *_feature_columns(views, requested, key_ttl, with_status))


def point_in_time(
    labels: DataFrame,
    logs: Mapping[str, DataFrame],
    catalog: Catalog,
    features: Requested | Sequence[str],
    *,
    timestamp_col: str = "ts",
    statuses: bool = False,
) -> DataFrame:
    """Each label row with each requested feature as the reader would have returned it at the row's time.

    ``labels`` holds the join key of every entity involved, ``timestamp_col`` (timestamp,
    date or epoch ms) and any other columns (labels), which are kept as they are.
    ``logs`` maps view names to feature-log frames (:mod:`.feature_log`): every requested
    view and every batch view of the entities involved (they decide when a key dies).
    ``statuses=True`` adds ``<feature>__status`` columns (``present``/``missing``/``stale``).
    Feature columns are named like the features; row order is not kept.
    """
    requested = features if isinstance(features, Requested) else resolve_features(catalog, features)
    clash = [n for _, f in requested.features for n in (f.name, f.name + STATUS_SUFFIX) if n in labels.columns]
    if clash:
        raise ConfigurationError(f"the labels already have columns named like requested features: {clash}")
    result = labels.withColumn(_T, timestamp_ms(labels, timestamp_col))
    for entity in requested.entities:  # one sort per entity, each adding its features to the rows
        result = _entity_frame(result, catalog, entity, requested, logs, statuses)
    ordered = [c for c in labels.columns]
    for _, feature in requested.features:
        ordered.append(feature.name)
        if statuses:
            ordered.append(feature.name + STATUS_SUFFIX)
    return result.select(*ordered)
