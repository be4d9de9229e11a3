"""Entity, feature and feature-view definitions, and the catalogue that holds them.

Definitions are pure, frozen values, validated when they are built: an invalid one
raises :class:`DefinitionError` naming the view, feature and setting at fault.  The
batch job, the streaming writer and the reader all derive their columns, Redis fields
and decoders from these objects, so training and serving cannot drift apart.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import KW_ONLY, dataclass, field, replace
from datetime import datetime, timedelta
from enum import Enum, StrEnum
from types import MappingProxyType
from typing import TYPE_CHECKING, Any, TypeAlias

from .errors import CatalogError, DefinitionError

# Names end up inside Redis keys and field names: keep them to characters that cannot
# break the key format (`:` separates parts, braces are the Cluster hash tag) and that
# read well in redis-cli.  Field names starting with `_` are reserved (`_ts:<view>`).
_ENTITY_OR_VIEW_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
_FEATURE_NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_]{0,127}$")
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
# A compact record is split in parts of about this many bytes by default: under the 64 of
# Redis's default hash-max-listpack-value, with room for longer strings than typical.
RECORD_PART_BYTES = 60
_MAX_RECORD_PARTS = 16
# What typical_record_bytes assumes for the variable-length values (a zigzag varint of a
# count up to ~8000; a string of 8 UTF-8 bytes and its length byte).
_TYPICAL_INT_BYTES, _TYPICAL_STRING_BYTES = 2, 9


def typical_record_bytes(features: Iterable[Feature]) -> int:
    """The size of a compact record with every value present, ints small, strings of 8 bytes.

    It decides how many parts a compact record is split into by default, so it is part of
    the storage format (docs/storage-format.md): change it only with a new format version.
    """
    features = tuple(features)
    n = len(features)
    size = 1 + (1 if n < 128 else 2) + (n + 7) // 8  # format byte, varint n, presence bitmap
    n_bools = sum(1 for f in features if DType(f.dtype) is DType.BOOL)
    size += (n_bools + 7) // 8
    for feature in features:
        dtype = DType(feature.dtype)
        if dtype is DType.FLOAT64:
            size += 8
        elif dtype is DType.FLOAT32:
            size += 4
        elif dtype is DType.VECTOR:
            size += 4 * (feature.dim or 0)
        elif dtype is DType.INT64:
            size += _TYPICAL_INT_BYTES
        elif dtype is DType.STRING:
            size += _TYPICAL_STRING_BYTES
    return size


class DType(StrEnum):
    """The value types a feature can have; each has one encoding (docs/storage-format.md)."""

    INT64 = "int64"
    FLOAT64 = "float64"
    FLOAT32 = "float32"
    STRING = "string"
    BOOL = "bool"
    VECTOR = "vector"  # fixed-dimension float32 vector

    @property
    def is_numeric(self) -> bool:
        return self in (DType.INT64, DType.FLOAT64, DType.FLOAT32, DType.BOOL)


class Layout(StrEnum):
    """How a view's features are laid out in the entity's hash (docs/storage-format.md).

    * ``text``: one field per feature, values as text: readable in redis-cli (the default);
    * ``compact``: all the view's features in one binary record field ``_c:<view>``
      (IEEE floats, zigzag varint ints, bit-packed bools, length-prefixed strings, a
      presence bitmap for nulls): about half the memory of ``text``, read back with
      ``featurestore inspect``.
    """

    TEXT = "text"
    COMPACT = "compact"


class ViewKind(StrEnum):
    """Who writes a view: the nightly batch job or a streaming pipeline."""

    BATCH = "batch"
    STREAMING = "streaming"


def _seconds(value: timedelta | int | float | None, what: str) -> int | None:
    if value is None:
        return None
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)):
        raise DefinitionError(f"{what} must be a timedelta or a number of seconds, got {value!r}")
    if seconds < 1 or seconds != int(seconds):
        raise DefinitionError(f"{what} must be a whole number of seconds >= 1, got {value!r}")
    return int(seconds)


def _check_name(pattern: re.Pattern[str], name: object, what: str) -> None:
    if not isinstance(name, str) or not pattern.match(name):
        raise DefinitionError(
            f"{what} name {name!r} is invalid: use {pattern.pattern} (names become part of Redis keys and fields)"
        )


@dataclass(frozen=True)
class Entity:
    """The thing features describe (a user, a merchant), stored as one Redis hash per id.

    ``join_key`` is the id column in the source data; ``id_dtype`` is ``"int64"`` or
    ``"string"`` and decides how ids are written into keys.
    """

    name: str
    join_key: str
    id_dtype: str = "int64"
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(_ENTITY_OR_VIEW_NAME, self.name, "entity")
        if not isinstance(self.join_key, str) or not self.join_key:
            raise DefinitionError(f"entity {self.name!r}: join_key must be a non-empty column name")
        if self.id_dtype not in ("int64", "string"):
            raise DefinitionError(f"entity {self.name!r}: id_dtype must be 'int64' or 'string', got {self.id_dtype!r}")


@dataclass(frozen=True)
class Feature:
    """One feature: a field of its entity's hash.

    ``default`` is what the reader serves when the value is missing or stale.
    ``ttl`` is the field's own lifetime and is only allowed on streaming views.
    """

    name: str
    dtype: DType | str
    dim: int | None = None
    default: Any = None
    ttl: timedelta | int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        _check_name(_FEATURE_NAME, self.name, "feature")
        try:
            dtype = DType(self.dtype)
        except ValueError:
            allowed = ", ".join(d.value for d in DType)
            raise DefinitionError(f"feature {self.name!r}: unknown dtype {self.dtype!r} (one of: {allowed})") from None
        object.__setattr__(self, "dtype", dtype)
        if dtype is DType.VECTOR:
            if isinstance(self.dim, bool) or not isinstance(self.dim, int) or self.dim < 1:
                raise DefinitionError(f"feature {self.name!r}: a vector needs dim >= 1, got {self.dim!r}")
        elif self.dim is not None:
            raise DefinitionError(f"feature {self.name!r}: dim is only for vectors (dtype {dtype.value})")
        object.__setattr__(self, "ttl", _seconds(self.ttl, f"feature {self.name!r} ttl"))
        if self.default is not None:
            object.__setattr__(self, "default", _checked_default(self))

    @property
    def ttl_seconds(self) -> int | None:
        return self.ttl  # type: ignore[return-value]  # normalised to int in __post_init__


def _checked_default(feature: Feature) -> Any:
    value, dtype = feature.default, DType(feature.dtype)
    bad = DefinitionError(f"feature {feature.name!r}: default {value!r} does not fit dtype {dtype.value}")
    if dtype is DType.BOOL:
        if not isinstance(value, bool):
            raise bad
        return value
    if dtype is DType.INT64:
        if isinstance(value, bool) or not isinstance(value, int) or not _INT64_MIN <= value <= _INT64_MAX:
            raise bad
        return value
    if dtype in (DType.FLOAT32, DType.FLOAT64):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
            raise bad
        return float(value)
    if dtype is DType.STRING:
        if not isinstance(value, str):
            raise bad
        return value
    # vector: a tuple of floats of the right length (tuples keep the definition frozen)
    if isinstance(value, (str, bytes)) or not isinstance(value, Iterable):
        raise bad
    items = tuple(float(v) for v in value)
    if len(items) != feature.dim:
        raise bad
    return items


@dataclass(frozen=True)
class Drift:
    """How far one batch feature's distribution may move from the last successful run's.

    The batch job profiles every feature before it writes (docs/batch.md, "Guards") and
    refuses the run when a limit is exceeded; ``None`` turns that comparison off.

    * ``null_share``: the largest change of the share of nulls, in absolute terms
      (``0.25``: from 10% to 35% passes, to 36% does not);
    * ``default_share``: the same for the share of values equal to the feature's default
      (or 0 / ``""`` / ``False`` when it has none) — zero-filled counts collapsing to 0;
    * ``mean_shift``: the largest move of the mean, in standard deviations of the last
      successful run's values (numeric and bool features).
    """

    null_share: float | None = 0.25
    default_share: float | None = 0.25
    mean_shift: float | None = 1.0

    @classmethod
    def off(cls) -> Drift:
        """No drift check at all (e.g. for a feature that legitimately jumps every day)."""
        return cls(null_share=None, default_share=None, mean_shift=None)


@dataclass(frozen=True)
class Guards:
    """A batch view's guards against bad upstream data, checked before anything is written.

    * ``min_partition_share``: every source partition that is new since the view's last
      successful run (``ds=D`` of a date-partitioned table; the whole table otherwise)
      needs at least this share of the baseline, the median row count of the last
      ``baseline_runs`` recorded partitions (``0`` turns it off);
    * ``must_change``: source tables whose Delta version must have moved since the last
      successful run whenever the run is for a later ``ds`` (a stale upstream);
    * ``drift``: the view's default :class:`Drift` limits; ``feature_drift`` overrides
      them per feature (a mapping ``{feature name: Drift}``).
    """

    min_partition_share: float = 0.5
    baseline_runs: int = 7
    must_change: tuple[str, ...] = ()
    drift: Drift = Drift()
    # not part of the hash: a read-only copy of a mapping is not hashable (equality still counts it)
    feature_drift: Mapping[str, Drift] = field(default_factory=dict, hash=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "feature_drift", MappingProxyType(dict(self.feature_drift)))
        if isinstance(self.must_change, str):
            object.__setattr__(self, "must_change", (self.must_change,))
        object.__setattr__(self, "must_change", tuple(self.must_change))

    def drift_for(self, feature: str) -> Drift:
        """The drift limits of one feature: its own, else the view's."""
        return self.feature_drift.get(feature, self.drift)


def _share(value: object) -> bool:
    return not isinstance(value, bool) and isinstance(value, (int, float)) and 0 <= value <= 1


def _check_guards(view: FeatureView) -> None:
    """The view's guard settings, with errors naming the view and the setting."""
    guards = view.guards
    where = f"view {view.name!r} guards"
    if not isinstance(guards, Guards):
        raise DefinitionError(f"view {view.name!r}: guards must be a Guards, got {guards!r}")
    if not _share(guards.min_partition_share):
        share = guards.min_partition_share
        raise DefinitionError(f"{where}: min_partition_share must be between 0 and 1, got {share!r}")
    runs = guards.baseline_runs
    if isinstance(runs, bool) or not isinstance(runs, int) or runs < 1:
        raise DefinitionError(f"{where}: baseline_runs must be a whole number >= 1, got {runs!r}")
    for table in guards.must_change:
        if not isinstance(table, str) or not table:
            raise DefinitionError(f"{where}: must_change holds source table names, got {table!r}")
    limits = [("drift", guards.drift)] + [(f"feature_drift[{n!r}]", d) for n, d in guards.feature_drift.items()]
    names = set(view.feature_names)
    for setting, drift in limits:
        if not isinstance(drift, Drift):
            raise DefinitionError(f"{where}: {setting} must be a Drift, got {drift!r}")
        for attr in ("null_share", "default_share"):
            value = getattr(drift, attr)
            if value is not None and not _share(value):
                raise DefinitionError(f"{where}: {setting}.{attr} must be between 0 and 1 or None, got {value!r}")
        shift = drift.mean_shift
        if shift is not None and (isinstance(shift, bool) or not isinstance(shift, (int, float)) or not shift > 0):
            raise DefinitionError(f"{where}: {setting}.mean_shift must be > 0 or None, got {shift!r}")
    unknown = sorted(n for n in guards.feature_drift if n not in names)
    if unknown:
        raise DefinitionError(f"{where}: feature_drift names {unknown}, which are not features of the view")


# --- declarative streaming features (docs/streaming.md, "Windows") ------------------------

# The event field types a stream's schema may use, and the spellings accepted for them.
EVENT_FIELD_TYPES = ("long", "double", "string", "boolean", "timestamp")
_EVENT_TYPE_ALIASES = {"bigint": "long", "int": "long", "integer": "long", "float": "double", "bool": "boolean"}
_EVENT_FIELD_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# The feature dtype an event field keeps when a computation passes its values through
# (last value, min, max): a timestamp is epoch milliseconds.
_DTYPE_OF_EVENT_TYPE = {
    "long": DType.INT64,
    "double": DType.FLOAT64,
    "string": DType.STRING,
    "boolean": DType.BOOL,
    "timestamp": DType.INT64,
}
_ENTITY_ID_EVENT_TYPE = {"int64": "long", "string": "string"}
AGGREGATE_FUNCTIONS = ("count", "sum", "mean", "min", "max", "distinct_count")
_NUMERIC_FUNCTIONS = ("sum", "mean", "min", "max")
# A window holds at most this many slides (buckets of state per entity and aggregate).
MAX_BUCKETS_PER_WINDOW = 1440

WhereValue: TypeAlias = str | int | float | bool


def parse_event_schema(ddl: str) -> tuple[tuple[str, str], ...]:
    """``"name type, name type, ..."`` to ``((name, type), ...)``; types as :data:`EVENT_FIELD_TYPES`.

    ``bigint``/``int``/``integer`` read as ``long``, ``float`` as ``double``, ``bool`` as
    ``boolean``.  A bad schema raises :class:`DefinitionError` saying what is wrong.
    """
    if not isinstance(ddl, str):
        raise DefinitionError(f"event schema: expected a string 'name type, ...', got {ddl!r}")
    fields: list[tuple[str, str]] = []
    for part in ddl.split(","):
        words = part.split()
        if len(words) != 2:
            raise DefinitionError(f"event schema: expected 'name type', got {part.strip()!r} in {ddl!r}")
        name, kind = words[0], _EVENT_TYPE_ALIASES.get(words[1].lower(), words[1].lower())
        if not _EVENT_FIELD_NAME.match(name):
            raise DefinitionError(f"event schema: {name!r} is not a valid field name")
        if kind not in EVENT_FIELD_TYPES:
            raise DefinitionError(f"event schema: field {name!r} has type {words[1]!r}; use one of {EVENT_FIELD_TYPES}")
        if any(name == seen for seen, _ in fields):
            raise DefinitionError(f"event schema: field {name!r} appears twice")
        fields.append((name, kind))
    return tuple(fields)


def duration_text(seconds: int) -> str:
    """``3720`` -> ``"1h2m"``, ``86400`` -> ``"24h"``, ``45`` -> ``"45s"``: how errors and plans show durations."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    text = (f"{hours}h" if hours else "") + (f"{minutes}m" if minutes else "") + (f"{secs}s" if secs else "")
    return text or "0s"


def _lateness_seconds(value: object, what: str) -> int:
    """A duration that may be zero (``allowed_lateness``): whole seconds >= 0."""
    seconds = value.total_seconds() if isinstance(value, timedelta) else value
    if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or seconds < 0 or seconds != int(seconds):
        raise DefinitionError(f"{what} must be a timedelta or a whole number of seconds >= 0, got {value!r}")
    return int(seconds)


@dataclass(frozen=True)
class StreamSource:
    """Where a streaming view's events come from: a topic of JSON events and their schema.

    * ``schema``: ``"name type, ..."`` with types ``long``, ``double``, ``string``,
      ``boolean``, ``timestamp`` (:func:`parse_event_schema`); parsed into ``fields``.
    * ``id_field``: the entity id (``long`` for an ``int64`` entity, ``string`` for a
      ``string`` one); ``time_field``: the event time (``timestamp`` or ``long`` epoch ms).
    * ``allowed_lateness``: the watermark delay; an event older than the newest event seen
      minus this is dropped (counted as *late*).  It also lengthens the derived TTL of
      windowed features (docs/streaming.md, "Windows").
    * ``dead_letter_topic``: where rejected records go (``None``: ``<topic>.dead-letters``).
    """

    topic: str
    schema: str
    id_field: str
    time_field: str
    allowed_lateness: timedelta | int = timedelta(minutes=1)
    dead_letter_topic: str | None = None
    fields: tuple[tuple[str, str], ...] = field(init=False)

    def __post_init__(self) -> None:
        if not isinstance(self.topic, str) or not self.topic:
            raise DefinitionError(f"stream source: topic must be a non-empty topic name, got {self.topic!r}")
        where = f"stream {self.topic!r}"
        try:
            fields = parse_event_schema(self.schema)
        except DefinitionError as exc:
            raise DefinitionError(f"{where}: {exc}") from None
        object.__setattr__(self, "fields", fields)
        types = dict(fields)
        if types.get(self.id_field) not in ("long", "string"):
            raise DefinitionError(f"{where}: id_field {self.id_field!r} must be a long or string field of the schema")
        if types.get(self.time_field) not in ("timestamp", "long"):
            raise DefinitionError(
                f"{where}: time_field {self.time_field!r} must be a timestamp or long (epoch ms) field of the schema"
            )
        lateness = _lateness_seconds(self.allowed_lateness, f"{where}: allowed_lateness")
        object.__setattr__(self, "allowed_lateness", lateness)
        if self.dead_letter_topic is not None and (
            not isinstance(self.dead_letter_topic, str) or not self.dead_letter_topic
        ):
            raise DefinitionError(
                f"{where}: dead_letter_topic must be a topic name or None, got {self.dead_letter_topic!r}"
            )

    @property
    def types(self) -> dict[str, str]:
        """Event field -> type."""
        return dict(self.fields)

    @property
    def allowed_lateness_seconds(self) -> int:
        return self.allowed_lateness  # type: ignore[return-value]  # normalised in __post_init__

    @property
    def dead_letters_topic(self) -> str:
        """The dead-letter topic: ``dead_letter_topic``, else ``<topic>.dead-letters``."""
        return self.dead_letter_topic or f"{self.topic}.dead-letters"


class _Auto(Enum):
    AUTO = "AUTO"

    def __repr__(self) -> str:
        return "AUTO"


AUTO = _Auto.AUTO
"""``Aggregate(default=AUTO)``: 0 for count, distinct_count and sum; ``None`` otherwise."""


def _frozen_where(where: object) -> object:
    """A ``where`` mapping as a read-only copy (``{}`` is no filter); anything else is left for the view to refuse."""
    if isinstance(where, Mapping):
        return MappingProxyType(dict(where)) if where else None
    return where


@dataclass(frozen=True)
class Aggregate:
    """A windowed aggregation over the events of an entity, by event time.

    ``Aggregate("page_views_1h", "count", where={"kind": "view"}, window=timedelta(hours=1),
    slide=timedelta(minutes=5))``.

    * ``fn``: ``count`` (events, or non-null values of ``column``), ``sum``, ``mean``,
      ``min``, ``max`` (of a long or double ``column``), ``distinct_count`` (distinct
      non-null values of any non-timestamp ``column``); nulls are ignored.
    * ``window``/``slide``: whole seconds; ``slide`` (default: ``window``, a tumbling
      window) must divide ``window``, in at most 1440 steps.  Windows are epoch-aligned.
    * ``where``: equality filters on event fields, all of which must hold.
    * ``dtype``: derived (count/distinct_count int64; sum keeps long as int64, double as
      float64; mean float64; min/max the column's type); float64 may be narrowed to float32.
    * ``default``: served when the window is empty (``AUTO``: 0 for count, distinct_count
      and sum, else ``None``).  ``ttl``: derived as ``window + allowed_lateness``.
    """

    name: str
    fn: str
    column: str | None = None
    _: KW_ONLY
    window: timedelta | int
    slide: timedelta | int | None = None
    where: Mapping[str, WhereValue] | None = field(default=None, hash=False)
    dtype: DType | str | None = None
    default: Any = AUTO
    ttl: timedelta | int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        # checked by the view that holds it, so that errors name the view (FeatureView.__post_init__)
        object.__setattr__(self, "where", _frozen_where(self.where))

    @property
    def window_seconds(self) -> int:
        return self.window  # type: ignore[return-value]  # normalised by the view

    @property
    def slide_seconds(self) -> int:
        return self.slide if self.slide is not None else self.window  # type: ignore[return-value]

    @property
    def is_tumbling(self) -> bool:
        return self.slide_seconds == self.window_seconds


@dataclass(frozen=True)
class LastValue:
    """The ``column`` of the entity's latest event (by event time) matching ``where``.

    A null value deletes the field.  An event older than the one the value came from never
    replaces it.  ``dtype`` keeps the column's type (a timestamp as int64 epoch ms; a double
    may be narrowed to float32).  ``ttl``: its own, else the view's ``ttl`` (one is needed).
    """

    name: str
    column: str
    _: KW_ONLY
    where: Mapping[str, WhereValue] | None = field(default=None, hash=False)
    dtype: DType | str | None = None
    default: Any = None
    ttl: timedelta | int | None = None
    description: str = ""

    def __post_init__(self) -> None:
        object.__setattr__(self, "where", _frozen_where(self.where))


@dataclass(frozen=True)
class SecondsSincePrevious:
    """Seconds between the entity's latest event and the one before it (by event time).

    Null (the field deleted) for the first event, and when the previous event is ``ttl`` or
    more before the latest: by then its own value would have expired.  ``dtype`` float64 or
    float32.  ``ttl``: its own, else the view's ``ttl`` (one is needed).
    """

    name: str
    _: KW_ONLY
    dtype: DType | str = DType.FLOAT64
    default: Any = None
    ttl: timedelta | int | None = None
    description: str = ""


Computation: TypeAlias = Aggregate | LastValue | SecondsSincePrevious
_COMPUTATION_TYPES = (Aggregate, LastValue, SecondsSincePrevious)


class _ComputationCheck:
    """Checks one computation of a view against its stream, with errors naming view and feature."""

    def __init__(self, view: FeatureView, stream: StreamSource, computation: Computation) -> None:
        self.view, self.stream, self.computation = view, stream, computation
        self.types = stream.types
        name = computation.name if isinstance(getattr(computation, "name", None), str) else "?"
        self.culprit = f"view {view.name!r}, feature {name!r}"

    def fail(self, message: str) -> DefinitionError:
        """An error naming the view and the feature (the message names the setting)."""
        return DefinitionError(f"{self.culprit}: {message}")

    def column_type(self, column: object, setting: str = "column") -> str:
        if not isinstance(column, str) or column not in self.types:
            known = ", ".join(self.types)
            raise self.fail(f"{setting} {column!r} is not a field of stream {self.stream.topic!r} ({known})")
        return self.types[column]

    def duration(self, value: object, setting: str) -> int:
        try:
            seconds = _seconds(value, setting)  # type: ignore[arg-type]  # checked inside
        except DefinitionError as exc:
            raise self.fail(str(exc)) from None
        if seconds is None:
            raise self.fail(f"{setting} is required")
        return seconds

    def where_filter(self, where: object) -> Mapping[str, WhereValue] | None:
        """Each ``where`` key a non-timestamp field, each value a non-null value of its type."""
        if where is None:
            return None
        if not isinstance(where, Mapping):
            raise self.fail(f"where must be a mapping {{field: value}}, got {where!r}")
        checked: dict[str, WhereValue] = {}
        for key, value in where.items():
            kind = self.column_type(key, "where field")
            if kind == "timestamp":
                raise self.fail(f"where field {key!r} is a timestamp: filter on a long, double, string or boolean")
            checked[key] = self._where_value(key, kind, value)
        return MappingProxyType(checked)

    def _where_value(self, key: str, kind: str, value: object) -> WhereValue:
        fits = {
            "long": isinstance(value, int) and not isinstance(value, bool),
            "double": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            "string": isinstance(value, str),
            "boolean": isinstance(value, bool),
        }[kind]
        if not fits:
            raise self.fail(f"where {key!r} = {value!r} does not fit the {kind} field {key!r}")
        return float(value) if kind == "double" else value  # type: ignore[arg-type, return-value]

    def dtype(self, declared: object, derived: DType) -> DType:
        """The declared dtype when it is the derived one, or float32 for a derived float64."""
        if declared is None:
            return derived
        try:
            dtype = DType(declared)  # type: ignore[arg-type]
        except ValueError:
            raise self.fail(f"dtype {declared!r} is not a dtype ({', '.join(d.value for d in DType)})") from None
        if dtype is derived or (derived is DType.FLOAT64 and dtype is DType.FLOAT32):
            return dtype
        narrowing = " (or float32)" if derived is DType.FLOAT64 else ""
        raise self.fail(f"dtype {dtype.value!r} does not fit: the computation gives {derived.value}{narrowing}")

    def last_like_ttl(self, ttl: object) -> int:
        """Its own ttl, else the view's; one of them is required."""
        if ttl is not None:
            return self.duration(ttl, "ttl")
        view_ttl = _seconds(self.view.ttl, f"view {self.view.name!r} ttl")
        if view_ttl is None:
            raise self.fail("ttl is required: set ttl= on the feature, or a ttl on the view")
        return view_ttl

    def feature(self, dtype: DType, default: Any, ttl: int, description: object) -> Feature:
        """The plain Feature the computation stands for (its checks worded with the view)."""
        try:
            return Feature(self.computation.name, dtype, default=default, ttl=ttl, description=description)  # type: ignore[arg-type]
        except DefinitionError as exc:
            raise DefinitionError(f"view {self.view.name!r}, {exc}") from None


def _declared_aggregate(check: _ComputationCheck, agg: Aggregate) -> tuple[Aggregate, Feature]:
    if agg.fn not in AGGREGATE_FUNCTIONS:
        raise check.fail(f"fn must be one of {', '.join(AGGREGATE_FUNCTIONS)}, got {agg.fn!r}")
    column_type = None
    if agg.column is None:
        if agg.fn != "count":
            raise check.fail(f"{agg.fn} needs a column")
    else:
        column_type = check.column_type(agg.column)
        if agg.fn in _NUMERIC_FUNCTIONS and column_type not in ("long", "double"):
            raise check.fail(f"{agg.fn} needs a long or double column; {agg.column!r} is a {column_type}")
        if agg.fn == "distinct_count" and column_type == "timestamp":
            raise check.fail(f"distinct_count needs a non-timestamp column; {agg.column!r} is a timestamp")
    window = check.duration(agg.window, "window")
    slide = window if agg.slide is None else check.duration(agg.slide, "slide")
    if slide > window:
        raise check.fail(f"slide {duration_text(slide)} is longer than window {duration_text(window)}")
    if window % slide:
        raise check.fail(f"slide {duration_text(slide)} does not divide window {duration_text(window)}")
    if window // slide > MAX_BUCKETS_PER_WINDOW:
        raise check.fail(
            f"window {duration_text(window)} in steps of {duration_text(slide)} is {window // slide} steps; "
            f"at most {MAX_BUCKETS_PER_WINDOW} (use a longer slide)"
        )
    where = check.where_filter(agg.where)
    derived = _aggregate_dtype(agg.fn, column_type)
    dtype = check.dtype(agg.dtype, derived)
    default = agg.default
    if default is AUTO:  # an empty window reads as zero for the additive functions, else as unknown
        default = None
        if agg.fn in ("count", "distinct_count", "sum"):
            default = 0.0 if dtype in (DType.FLOAT32, DType.FLOAT64) else 0
    ttl = window + check.stream.allowed_lateness_seconds if agg.ttl is None else check.duration(agg.ttl, "ttl")
    normalised = replace(agg, window=window, slide=slide, where=where)
    return normalised, check.feature(dtype, default, ttl, agg.description)


def _aggregate_dtype(fn: str, column_type: str | None) -> DType:
    if fn in ("count", "distinct_count"):
        return DType.INT64
    if fn == "mean":
        return DType.FLOAT64
    assert column_type is not None  # sum, min, max have a long or double column (checked before)
    return _DTYPE_OF_EVENT_TYPE[column_type]


def _declared_last_value(check: _ComputationCheck, last: LastValue) -> tuple[LastValue, Feature]:
    column_type = check.column_type(last.column)
    where = check.where_filter(last.where)
    dtype = check.dtype(last.dtype, _DTYPE_OF_EVENT_TYPE[column_type])
    ttl = check.last_like_ttl(last.ttl)
    return replace(last, where=where), check.feature(dtype, last.default, ttl, last.description)


def _declared_gap(check: _ComputationCheck, gap: SecondsSincePrevious) -> tuple[SecondsSincePrevious, Feature]:
    dtype = check.dtype(gap.dtype, DType.FLOAT64)
    ttl = check.last_like_ttl(gap.ttl)
    return gap, check.feature(dtype, gap.default, ttl, gap.description)


def _declared(view: FeatureView, stream: StreamSource, computation: Computation) -> tuple[Computation, Feature]:
    """One computation, checked and normalised, with the plain Feature it writes."""
    check = _ComputationCheck(view, stream, computation)
    if isinstance(computation, Aggregate):
        return _declared_aggregate(check, computation)
    if isinstance(computation, LastValue):
        return _declared_last_value(check, computation)
    return _declared_gap(check, computation)


BatchTransformFn: TypeAlias = Callable[[Mapping[str, Any], datetime], Any]


@dataclass(frozen=True)
class BatchTransform:
    """How a batch view is computed: a pure ``(inputs, as_of) -> DataFrame`` function and what it reads.

    ``fn`` gets ``{table: DataFrame}`` (every table of ``sources``, read at one pinned Delta
    version) and the run's *as-of* instant (the end of ``ds``, exclusive) and returns one row
    per entity: the join key plus one column per feature.  ``sources`` are warehouse tables;
    the first is the view's own ``source`` (its Delta version is the run's).
    ``lookback_days[table]`` is how many ``ds`` partitions back from the run's ``ds`` the
    transform uses (``None`` or absent: the whole table), so the job reads no more.
    Definitions stay free of pyspark: the frames are typed ``Any`` here.  Build one with
    :func:`batch_transform` and hand it to ``FeatureView(transform=...)``.
    """

    fn: BatchTransformFn
    sources: tuple[str, ...]
    lookback_days: Mapping[str, int | None] = field(default_factory=dict)

    def __post_init__(self) -> None:
        name = getattr(self.fn, "__name__", repr(self.fn))
        if not callable(self.fn):
            raise DefinitionError(f"batch transform {name}: fn must be callable, got {self.fn!r}")
        sources = (self.sources,) if isinstance(self.sources, str) else tuple(self.sources)
        if not sources or not all(isinstance(t, str) and t for t in sources):
            raise DefinitionError(f"batch transform {name}: sources must name at least one table, got {self.sources!r}")
        if len(set(sources)) != len(sources):
            raise DefinitionError(f"batch transform {name}: sources name a table twice: {list(sources)}")
        lookback = dict(self.lookback_days or {})
        unknown = sorted(set(lookback) - set(sources))
        if unknown:
            raise DefinitionError(
                f"batch transform {name}: lookback_days names {unknown}, "
                f"which are not among its sources {list(sources)}"
            )
        for table, days in lookback.items():
            if days is not None and (isinstance(days, bool) or not isinstance(days, int) or days < 1):
                raise DefinitionError(
                    f"batch transform {name}: lookback_days[{table!r}] must be a whole number of days >= 1 "
                    f"or None (the whole table), got {days!r}"
                )
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "lookback_days", MappingProxyType(lookback))

    @property
    def name(self) -> str:
        """The function's name (for messages and ``featurestore plan``)."""
        return str(getattr(self.fn, "__qualname__", getattr(self.fn, "__name__", repr(self.fn))))

    def __call__(self, inputs: Mapping[str, Any], as_of: datetime) -> Any:
        return self.fn(inputs, as_of)


def batch_transform(
    *, sources: Sequence[str], lookback_days: Mapping[str, int | None] | None = None
) -> Callable[[BatchTransformFn], BatchTransform]:
    """Decorator: turn ``fn(inputs, as_of) -> DataFrame`` into a :class:`BatchTransform`.

    ::

        @batch_transform(sources=["orders", "customers"], lookback_days={"orders": 30})
        def customer_spend(inputs, as_of):
            ...

        FeatureView(name="customer_spend", ..., source="orders", transform=customer_spend)
    """

    def decorate(fn: BatchTransformFn) -> BatchTransform:
        tables = (sources,) if isinstance(sources, str) else tuple(sources)
        return BatchTransform(fn, tables, dict(lookback_days or {}))

    return decorate


@dataclass(frozen=True)
class FeatureView:
    """A group of features of one entity that are computed and written together.

    * ``kind="batch"``: written nightly by the batch job. ``ttl`` is the lifetime of the
      view's values (the key TTL, see docs/storage-format.md); ``source`` names the warehouse
      table; ``expectation_suite`` the Great Expectations suite (default: the view's name).
    * ``kind="streaming"``: written by the streaming hook. Each feature's ``ttl`` (or the
      view's ``ttl`` as a default) is that field's own lifetime.
    * ``max_age``: older than this (judged from ``_ts:<view>``) the reader serves the
      default with status *stale*. Defaults to the view's longest TTL.
    * ``layout`` (batch only): ``"text"`` (default) stores one readable field per feature;
      ``"compact"`` stores all of them in one binary record ``_c:<view>``, which takes
      about half the memory (see :class:`Layout` and docs/storage-format.md).  Streaming
      views are refused: each streaming feature carries its own field TTL and updates on
      its own, which one record field cannot do.
    * ``record_parts`` (compact only): how many hash fields the record is split across,
      evenly.  Redis keeps a hash in its compact ``listpack`` encoding only while every
      value is at most ``hash-max-listpack-value`` bytes (64 by default); a bigger record
      turns the entity's hash into a ``hashtable``, which costs far more than the extra
      field names.  ``None`` (the default) takes one part per 60 bytes of the view's
      typical record (:func:`typical_record_bytes`); ``1`` for a server configured with a
      larger ``hash-max-listpack-value``.
    * ``packed=True`` (batch only, ``text`` layout): the view's float32 features are stored
      together as one binary field ``_f32:<view>``; kept for views that already use it,
      ``layout="compact"`` covers every dtype.
    * ``guards`` (batch only): the input and drift guards the batch job checks before it
      writes (:class:`Guards`; the defaults suit a daily date-partitioned source).
    * ``stream`` (streaming only): the :class:`StreamSource` the view is computed from by
      ``featurestore stream``.  Its ``features`` are then declared computations
      (:class:`Aggregate`, :class:`LastValue`, :class:`SecondsSincePrevious`), each turned
      into a plain :class:`Feature` with its derived dtype, default and TTL, so the codec,
      the registry and the reader see an ordinary view; :meth:`computation` gives back the
      declaration.  A streaming view without ``stream`` is written by a hook
      (``StreamingWriter``) and holds plain Features.
    * ``transform`` (batch only): the view's :class:`BatchTransform` (see
      :func:`batch_transform`).  ``source`` defaults to its first source and must equal it.
      It is not part of the view's identity: two views differing only in their transform are
      equal, and the registry fingerprint does not see it.
    """

    name: str
    entity: Entity
    features: tuple[Feature, ...]
    kind: ViewKind | str = ViewKind.BATCH
    ttl: timedelta | int | None = None
    max_age: timedelta | int | None = None
    source: str | None = None
    expectation_suite: str | None = None
    packed: bool = False
    description: str = ""
    guards: Guards = Guards()
    layout: Layout | str = Layout.TEXT
    record_parts: int | None = None
    stream: StreamSource | None = None
    # how the batch job computes the view; not part of the view's identity (no eq, no repr) nor of
    # codec.view_spec, so registry fingerprints and the storage format do not depend on it
    transform: BatchTransform | None = field(default=None, compare=False, repr=False)
    # filled in by __post_init__ (feature name -> its normalised declaration); an argument only
    # so that dataclasses.replace() hands a stream view's declarations to the copy
    computations: tuple[tuple[str, Computation], ...] = field(default=(), kw_only=True, repr=False)

    if TYPE_CHECKING:  # for type checkers only: `features` also takes computations, turned into Features

        def __init__(
            self,
            name: str,
            entity: Entity,
            features: Iterable[Feature | Computation],
            kind: ViewKind | str = ...,
            ttl: timedelta | int | None = ...,
            max_age: timedelta | int | None = ...,
            source: str | None = ...,
            expectation_suite: str | None = ...,
            packed: bool = ...,
            description: str = ...,
            guards: Guards = ...,
            layout: Layout | str = ...,
            record_parts: int | None = ...,
            stream: StreamSource | None = ...,
            transform: BatchTransform | None = ...,
            *,
            computations: tuple[tuple[str, Computation], ...] = ...,
        ) -> None: ...

    def __post_init__(self) -> None:
        # each step normalises what it checks, so the later steps see the normalised values
        self._check_identity()
        self._declare_computations()
        self._check_features()
        object.__setattr__(self, "ttl", _seconds(self.ttl, f"view {self.name!r} ttl"))
        object.__setattr__(self, "max_age", _seconds(self.max_age, f"view {self.name!r} max_age"))
        if self.kind is ViewKind.BATCH:
            self._check_batch_lifetimes()
        else:
            self._check_streaming_settings()
        self._check_storage_options()
        self._check_transform()
        if self.expectation_suite is None:
            object.__setattr__(self, "expectation_suite", self.name)
        _check_guards(self)

    # --- the validation steps of __post_init__, in order ---------------------------

    def _check_identity(self) -> None:
        """The name, the entity, and ``kind`` and ``layout`` as enums."""
        _check_name(_ENTITY_OR_VIEW_NAME, self.name, "view")
        if not isinstance(self.entity, Entity):
            raise DefinitionError(f"view {self.name!r}: entity must be an Entity, got {self.entity!r}")
        try:
            kind = ViewKind(self.kind)
        except ValueError:
            raise DefinitionError(
                f"view {self.name!r}: kind must be 'batch' or 'streaming', got {self.kind!r}"
            ) from None
        object.__setattr__(self, "kind", kind)
        try:
            layout = Layout(self.layout)
        except ValueError:
            allowed = ", ".join(repr(x.value) for x in Layout)
            raise DefinitionError(f"view {self.name!r}: layout must be one of {allowed}, got {self.layout!r}") from None
        object.__setattr__(self, "layout", layout)

    def _declare_computations(self) -> None:
        """A ``stream=`` view's computations become plain Features (a view without one is untouched)."""
        declared: tuple[Feature | Computation, ...] = tuple(self.features)
        if self.stream is None:
            computed = [c for c in declared if isinstance(c, _COMPUTATION_TYPES)]
            if computed:
                raise DefinitionError(
                    f"view {self.name!r}, feature {computed[0].name!r}: a computed feature needs the view's "
                    "stream= (a StreamSource to compute it from)"
                )
            object.__setattr__(self, "computations", ())
            return
        self._check_stream_source()
        copied = self.computations and all(isinstance(f, Feature) for f in declared)
        if copied and [f.name for f in declared] == [name for name, _ in self.computations]:
            declared = tuple(c for _, c in self.computations)  # a copy made by dataclasses.replace()
        pairs: list[tuple[str, Computation]] = []
        features: list[Feature] = []
        for item in declared:
            if not isinstance(item, _COMPUTATION_TYPES):
                raise DefinitionError(
                    f"view {self.name!r}: {item!r} is not a computation; a view with stream= computes every "
                    "feature (Aggregate, LastValue, SecondsSincePrevious): put hook-written Features in a "
                    "streaming view without stream="
                )
            computation, feature = _declared(self, self.stream, item)
            pairs.append((feature.name, computation))
            features.append(feature)
        object.__setattr__(self, "features", tuple(features))
        object.__setattr__(self, "computations", tuple(pairs))

    def _check_stream_source(self) -> None:
        """``stream`` is a StreamSource of a streaming view, its id field typed like the entity's ids."""
        stream = self.stream
        if not isinstance(stream, StreamSource):
            raise DefinitionError(f"view {self.name!r}: stream must be a StreamSource, got {stream!r}")
        if self.kind is not ViewKind.STREAMING:
            raise DefinitionError(f"view {self.name!r}: stream= is only for kind='streaming' views")
        id_type = stream.types[stream.id_field]
        wanted = _ENTITY_ID_EVENT_TYPE[self.entity.id_dtype]
        if id_type != wanted:
            raise DefinitionError(
                f"view {self.name!r}: stream id_field {stream.id_field!r} is a {id_type}, but entity "
                f"{self.entity.name!r} has {self.entity.id_dtype} ids (needs a {wanted} field)"
            )

    def _check_features(self) -> None:
        """At least one feature, all :class:`Feature`, names unique; stored as a tuple."""
        features = tuple(self.features)
        if not features:
            raise DefinitionError(f"view {self.name!r}: needs at least one feature")
        for feature in features:
            if not isinstance(feature, Feature):
                raise DefinitionError(f"view {self.name!r}: {feature!r} is not a Feature")
        names = [f.name for f in features]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise DefinitionError(f"view {self.name!r}: duplicate feature names {duplicates}")
        object.__setattr__(self, "features", features)

    def _check_batch_lifetimes(self) -> None:
        """A batch view has a ttl (the key TTL), and its features none of their own."""
        if self.ttl is None:
            raise DefinitionError(f"batch view {self.name!r}: ttl is required (the key TTL)")
        with_ttl = [f.name for f in self.features if f.ttl is not None]
        if with_ttl:
            raise DefinitionError(
                f"batch view {self.name!r}: per-feature ttl is only for streaming views "
                f"(set on {with_ttl}); batch features live as long as the view's ttl"
            )

    def _check_streaming_settings(self) -> None:
        """Every streaming feature has a lifetime; the batch-only options are refused."""
        no_ttl = [f.name for f in self.features if f.ttl is None and self.ttl is None]
        if no_ttl:
            raise DefinitionError(
                f"streaming view {self.name!r}: features {no_ttl} have no ttl; "
                "give each feature a ttl or the view a default ttl"
            )
        if self.packed:
            raise DefinitionError(
                f"streaming view {self.name!r}: packed=True is only for batch views "
                "(each streaming field carries its own TTL)"
            )
        if self.layout is Layout.COMPACT:
            raise DefinitionError(
                f"streaming view {self.name!r}: layout='compact' is only for batch views: a record "
                "field has one TTL, while each streaming feature keeps its own field TTL and is "
                "updated on its own (a record would need a read-modify-write per event)"
            )
        if self.guards != Guards():
            raise DefinitionError(
                f"streaming view {self.name!r}: guards are checked by the batch job only; "
                "a streaming view cannot have them"
            )

    def _check_storage_options(self) -> None:
        """``record_parts`` (compact only) and ``packed`` (text only, needs a float32 feature)."""
        parts = self.record_parts
        if parts is not None:
            if isinstance(parts, bool) or not isinstance(parts, int) or not 1 <= parts <= _MAX_RECORD_PARTS:
                raise DefinitionError(
                    f"view {self.name!r}: record_parts must be a whole number from 1 to {_MAX_RECORD_PARTS} "
                    f"or None, got {parts!r}"
                )
            if self.layout is not Layout.COMPACT:
                raise DefinitionError(f"view {self.name!r}: record_parts is only for layout='compact'")
        if self.packed and self.layout is Layout.COMPACT:
            raise DefinitionError(
                f"view {self.name!r}: packed=True and layout='compact' exclude each other "
                "(the compact record already stores float32 features as 4 bytes)"
            )
        if self.packed and not any(f.dtype is DType.FLOAT32 for f in self.features):
            raise DefinitionError(f"view {self.name!r}: packed=True needs at least one float32 feature")

    def _check_transform(self) -> None:
        """``transform`` is a BatchTransform of a batch view, reading the view's ``source`` first."""
        transform = self.transform
        if transform is None:
            return
        if not isinstance(transform, BatchTransform):
            raise DefinitionError(
                f"view {self.name!r}: transform must be a BatchTransform (decorate the function with "
                f"@batch_transform(sources=[...])), got {transform!r}"
            )
        if not self.is_batch:
            raise DefinitionError(
                f"streaming view {self.name!r}: transform= is only for batch views "
                "(a streaming view is computed from its stream= declarations or written by a hook)"
            )
        if self.source is None:
            object.__setattr__(self, "source", transform.sources[0])
        elif self.source != transform.sources[0]:
            raise DefinitionError(
                f"view {self.name!r}: its source is {self.source!r} but its transform {transform.name} "
                f"reads {transform.sources[0]!r} first (the first source is the view's own)"
            )

    # --- derived facts, used by the writers and the reader alike ------------------

    @property
    def is_batch(self) -> bool:
        return self.kind is ViewKind.BATCH

    @property
    def ttl_seconds(self) -> int | None:
        return self.ttl  # type: ignore[return-value]  # normalised in __post_init__

    def feature_ttl(self, feature: Feature) -> int:
        """The lifetime in seconds of one feature's value."""
        own = feature.ttl_seconds
        if own is not None and not self.is_batch:
            return own
        assert self.ttl_seconds is not None  # checked in __post_init__
        return self.ttl_seconds

    @property
    def longest_ttl(self) -> int:
        return max(self.feature_ttl(f) for f in self.features)

    @property
    def max_age_seconds(self) -> int:
        """Older than this, the reader treats the view's values as stale."""
        return self.max_age if self.max_age is not None else self.longest_ttl  # type: ignore[return-value]

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.features)

    def feature(self, name: str) -> Feature:
        for f in self.features:
            if f.name == name:
                return f
        from .errors import FeatureNotFoundError, unknown_name_message

        problem = f"view {self.name!r} has no feature {name!r}"
        raise FeatureNotFoundError(unknown_name_message(problem, name, self.feature_names, known_as="it has"))

    @property
    def is_compact(self) -> bool:
        """True when the view's features live in one binary record field ``_c:<view>``."""
        return self.layout is Layout.COMPACT

    @property
    def record_part_count(self) -> int:
        """How many fields a compact view's record is split across (1 for other layouts)."""
        if not self.is_compact:
            return 1
        if self.record_parts is not None:
            return self.record_parts
        return max(1, -(-typical_record_bytes(self.features) // RECORD_PART_BYTES))

    def computation(self, feature: str) -> Computation | None:
        """How a ``stream=`` view computes ``feature`` (normalised), or None for a plain feature."""
        self.feature(feature)  # an unknown name raises FeatureNotFoundError
        return dict(self.computations).get(feature)

    @property
    def packed_features(self) -> tuple[Feature, ...]:
        """Features stored in the packed float32 field (empty unless ``packed``)."""
        if not self.packed:
            return ()
        return tuple(f for f in self.features if f.dtype is DType.FLOAT32)


@dataclass(frozen=True)
class Catalog:
    """All feature views of a deployment, checked together.

    Feature names are unique per entity across views, so a feature's Redis field is
    simply its name.  Entities are taken from the views.
    """

    views: tuple[FeatureView, ...]
    entities: Mapping[str, Entity] = field(init=False)

    def __post_init__(self) -> None:
        views = tuple(self.views)
        object.__setattr__(self, "views", views)
        entities: dict[str, Entity] = {}
        view_names: set[str] = set()
        owner: dict[tuple[str, str], str] = {}
        for view in views:
            if not isinstance(view, FeatureView):
                raise CatalogError(f"catalogue entry {view!r} is not a FeatureView")
            if view.name in view_names:
                raise CatalogError(f"view {view.name!r} is defined twice")
            view_names.add(view.name)
            known = entities.setdefault(view.entity.name, view.entity)
            if known != view.entity:
                raise CatalogError(
                    f"entity {view.entity.name!r} is defined twice with different settings "
                    f"(view {view.name!r}: {view.entity!r} vs {known!r})"
                )
            for feature in view.features:
                first = owner.setdefault((view.entity.name, feature.name), view.name)
                if first != view.name:
                    raise CatalogError(
                        f"feature {feature.name!r} of entity {view.entity.name!r} is defined in "
                        f"views {first!r} and {view.name!r}; feature names must be unique per entity"
                    )
        object.__setattr__(self, "entities", entities)

    def view(self, name: str) -> FeatureView:
        for view in self.views:
            if view.name == name:
                return view
        from .errors import FeatureNotFoundError, unknown_name_message

        views = (v.name for v in self.views)
        raise FeatureNotFoundError(
            unknown_name_message(f"no view {name!r} in the catalogue", name, views, known_as="views")
        )

    def entity(self, name: str) -> Entity:
        try:
            return self.entities[name]
        except KeyError:
            from .errors import FeatureNotFoundError, unknown_name_message

            problem = f"no entity {name!r} in the catalogue"
            raise FeatureNotFoundError(
                unknown_name_message(problem, name, self.entities, known_as="entities")
            ) from None

    def views_of(self, entity: str) -> tuple[FeatureView, ...]:
        return tuple(v for v in self.views if v.entity.name == entity)

    @property
    def batch_views(self) -> tuple[FeatureView, ...]:
        return tuple(v for v in self.views if v.is_batch)

    @property
    def streaming_views(self) -> tuple[FeatureView, ...]:
        return tuple(v for v in self.views if not v.is_batch)

    def key_ttl(self, entity: str) -> int | None:
        """The key-level TTL of an entity's hash: the longest TTL among its batch views.

        Views never shrink each other's lifetime; a batch view with a shorter TTL also
        gets HEXPIRE on its own fields.  ``None`` if the entity has no batch view.
        """
        ttls = [v.ttl_seconds for v in self.views_of(entity) if v.is_batch and v.ttl_seconds]
        return max(ttls) if ttls else None
