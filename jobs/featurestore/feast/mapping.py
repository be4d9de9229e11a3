"""Feast's objects -> our definitions, on plain data: the one place the two models meet.

Pure logic (no Feast import, no I/O), so the unit tier tests it without Feast installed.
:mod:`.store` turns Feast's ``FeatureView`` into a :class:`FeastViewSpec` (names, value types
as Feast's ``ValueType`` names, the view's ``ttl``, whether it is pushed to) and everything
else is decided here:

* a Feast view becomes one of our views of the same name: ``kind="streaming"`` when Feast
  writes it from a push or stream source (each field then gets its own TTL with ``HSETEX``
  and the out-of-order guard), ``kind="batch"`` otherwise (``HSET`` + key ``EXPIRE``);
* Feast's ``ttl`` is both the TTL and our ``max_age`` (older ``_ts:<view>`` => stale, which
  Feast sees as ``OUTSIDE_MAX_AGE``); a view without ``ttl`` takes the store's
  ``default_ttl_seconds`` or is refused, because every value in our store expires;
* one join key of type INT32/INT64/STRING becomes our entity's id; several join keys, or
  another type, are refused with a message naming the view and the keys;
* each value type we can store maps to a dtype (:data:`VALUE_TYPES`); any other is refused
  naming the view, the feature and the type;
* our statuses become Feast's field statuses (:func:`feast_status`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.readers.definitions import Catalog, DType, Entity, Feature, FeatureView, ViewKind
from featurestore.readers.errors import DefinitionError
from featurestore.readers.results import FeatureStatus

__all__ = [
    "ID_TYPES",
    "PROTO_FIELDS",
    "VALUE_TYPES",
    "FeastField",
    "FeastViewSpec",
    "UnsupportedFeastDefinition",
    "catalog_for",
    "feast_status",
    "key_ttl",
    "view_for",
]

# Feast ValueType name -> our dtype (the codec's encoding); FLOAT_LIST needs a fixed length
VALUE_TYPES: Mapping[str, DType] = {
    "INT32": DType.INT64,
    "INT64": DType.INT64,
    "FLOAT": DType.FLOAT32,
    "DOUBLE": DType.FLOAT64,
    "STRING": DType.STRING,
    "BOOL": DType.BOOL,
    "FLOAT_LIST": DType.VECTOR,
}
# Feast ValueType name -> the field of Feast's ValueProto a read value goes back into
PROTO_FIELDS: Mapping[str, str] = {
    "INT32": "int32_val",
    "INT64": "int64_val",
    "FLOAT": "float_val",
    "DOUBLE": "double_val",
    "STRING": "string_val",
    "BOOL": "bool_val",
    "FLOAT_LIST": "float_list_val",
}
# Feast ValueType name of a join key -> our entity's id_dtype
ID_TYPES: Mapping[str, str] = {"INT32": "int64", "INT64": "int64", "STRING": "string"}


class UnsupportedFeastDefinition(DefinitionError):
    """A Feast object our store cannot represent; raised at ``feast apply`` (names the culprit)."""


@dataclass(frozen=True)
class FeastField:
    """A Feast ``Field``: its name, its ``ValueType`` name, and ``vector_length`` (0: none)."""

    name: str
    value_type: str
    vector_length: int = 0


@dataclass(frozen=True)
class FeastViewSpec:
    """What we need of a Feast ``FeatureView`` (plain data, built by :mod:`.store`).

    ``entities`` are the Feast entity names, ``join_keys`` the entity columns with their
    types, ``ttl_seconds`` Feast's ``ttl`` (0: none), ``pushed`` whether Feast writes it from
    a ``PushSource`` or a stream source (then it is one of our streaming views).
    """

    name: str
    entities: tuple[str, ...]
    join_keys: tuple[FeastField, ...]
    features: tuple[FeastField, ...]
    ttl_seconds: int
    pushed: bool = False
    description: str = ""


def _refuse(view: str, what: str) -> UnsupportedFeastDefinition:
    return UnsupportedFeastDefinition(f"Feast feature view {view!r}: {what} (redis-feature-store online store)")


def _entity(spec: FeastViewSpec, hash_per_view: bool) -> Entity:
    if len(spec.join_keys) != 1 or len(spec.entities) != 1:
        keys = ", ".join(k.name for k in spec.join_keys) or "none"
        raise _refuse(
            spec.name,
            f"an entity key must be exactly one join key (this view has {len(spec.join_keys)}: {keys}); "
            "our store keys one hash per entity id: combine the keys into one column (e.g. a string 'a|b')",
        )
    key = spec.join_keys[0]
    id_dtype = ID_TYPES.get(key.value_type)
    if id_dtype is None:
        raise _refuse(
            spec.name,
            f"join key {key.name!r} has Feast type {key.value_type}; ids must be {', '.join(sorted(ID_TYPES))}",
        )
    try:
        return Entity(spec.name if hash_per_view else spec.entities[0], join_key=key.name, id_dtype=id_dtype)
    except DefinitionError as exc:
        raise _refuse(spec.name, str(exc)) from None


def _feature(spec: FeastViewSpec, field: FeastField) -> Feature:
    dtype = VALUE_TYPES.get(field.value_type)
    if dtype is None:
        raise _refuse(
            spec.name,
            f"feature {field.name!r} has Feast type {field.value_type}, which the store cannot represent "
            f"(supported: {', '.join(VALUE_TYPES)}; FLOAT_LIST with a vector_length)",
        )
    if dtype is DType.VECTOR and field.vector_length < 1:
        raise _refuse(
            spec.name,
            f"feature {field.name!r} has Feast type FLOAT_LIST without a vector_length; the store keeps "
            "fixed-length float32 vectors: declare Field(..., vector_length=N)",
        )
    try:
        return Feature(field.name, dtype, dim=field.vector_length if dtype is DType.VECTOR else None)
    except DefinitionError as exc:
        raise _refuse(spec.name, str(exc)) from None


def view_for(
    spec: FeastViewSpec, default_ttl_seconds: int | None = None, layout: str = "text", hash_per_view: bool = False
) -> FeatureView:
    """Our view for a Feast view (refuses what we cannot represent, naming feature and type).

    ``layout="compact"`` stores a batch view's features as one binary record (about a third of
    the text layout's memory, docs/storage-format.md); pushed views always stay ``text`` (each
    field has its own TTL).  ``hash_per_view=True`` keys each view's values by the view's name
    (``fs:<view>:{<id>}``) instead of the entity's, so two views of one entity may have features
    of the same name (Feast's "fresh" pushed copy of a batch view does)."""
    entity = _entity(spec, hash_per_view)
    features = tuple(_feature(spec, field) for field in spec.features)
    ttl = spec.ttl_seconds or default_ttl_seconds
    if not ttl:
        raise _refuse(
            spec.name,
            "it has no ttl; every value in our store expires: set the view's ttl, or "
            "default_ttl_seconds in the online_store block",
        )
    kind = ViewKind.STREAMING if spec.pushed else ViewKind.BATCH
    try:
        return FeatureView(
            spec.name,
            entity,
            features,
            kind=kind,
            ttl=ttl,
            max_age=ttl,
            description=spec.description,
            layout="text" if spec.pushed else layout,
        )
    except DefinitionError as exc:
        raise _refuse(spec.name, str(exc)) from None


def catalog_for(views: Iterable[FeatureView]) -> Catalog:
    """The catalogue of the given views (checks feature names are unique per entity)."""
    try:
        return Catalog(tuple(views))
    except DefinitionError as exc:
        raise UnsupportedFeastDefinition(
            f"Feast repository: {exc}; our store keeps one field per feature name in the entity's hash: "
            "rename one, or set hash_per_view: true in the online_store block (redis-feature-store online store)"
        ) from None


def key_ttl(view: FeatureView, registry: Sequence[Mapping[str, Any]]) -> int:
    """The key TTL a batch write of ``view`` sets: the longest TTL among the batch views of its
    entity (published registry entries, plus ``view`` itself), so views never shrink each
    other's lifetime (docs/storage-format.md)."""
    assert view.ttl_seconds is not None
    ttls = [view.ttl_seconds]
    for entry in registry:
        if entry.get("entity") == view.entity.name and entry.get("kind") == "batch" and entry.get("ttl"):
            ttls.append(int(entry["ttl"]))
    return max(ttls)


def feast_status(status: FeatureStatus, view_age: float | None) -> str:
    """Feast's ``FieldStatus`` name for one of our values.

    ``view_age`` is the age of the value's view (``None``: no ``_ts:<view>``, the entity was
    never written by the view or its key expired).  Missing with the view present is a null
    written by the view (an absent field): ``NULL_VALUE``; missing without it: ``NOT_FOUND``;
    stale (older than Feast's ``ttl``): ``OUTSIDE_MAX_AGE``.
    """
    if status is FeatureStatus.PRESENT:
        return "PRESENT"
    if status is FeatureStatus.STALE:
        return "OUTSIDE_MAX_AGE"
    return "NOT_FOUND" if view_age is None else "NULL_VALUE"
