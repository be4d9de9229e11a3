"""Read planning and decoding: pure logic, no I/O.

A :class:`ReadPlan` is built once per (entity, feature list) and cached by the reader.
It holds everything the request path needs, prepared in advance: the HMGET field list
already encoded as RESP, one converter and one default per feature, and where each
view's ``_ts`` field sits in the reply.  Decoding then works in place on the reply
lists that hiredis returns, so a batch of 500 entities allocates almost no containers
of its own (which keeps Python's cyclic GC, and its pauses, out of the tail latency).
"""

from __future__ import annotations

import operator
import struct
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from . import codec
from .definitions import Catalog, DType, Entity, Feature, FeatureView
from .errors import DecodingError, FeatureNotFoundError, unknown_name_message

_NEVER = -1  # stands for "no _ts field": age unknown
_call = operator.call  # map(_call, decoders, row): each decoder on its value, in C


def _typed(value: Any) -> Any:
    """The decoder of a feature read from a compact record: already typed by the record's decoder."""
    return value


def _bulk(data: bytes) -> bytes:
    return b"$%d\r\n%s\r\n" % (len(data), data)


@dataclass(frozen=True)
class ViewSlot:
    """One view touched by a plan: where its ``_ts`` is and which positions it owns."""

    view: FeatureView
    ts_index: int  # index of `_ts:<view>` in the HMGET reply
    max_age_ms: int
    positions: tuple[int, ...]  # indexes of the view's requested features in the result
    mask: int  # the same positions as a bit mask
    packed_index: int  # index of `_f32:<view>` in the reply, or -1
    packed_positions: tuple[tuple[int, int], ...]  # (result position, offset in packed blob)
    record_indexes: tuple[int, ...] = ()  # indexes of the record's parts in the reply (compact layout)
    record_positions: tuple[tuple[int, int], ...] = ()  # (result position, index in the view's record)
    record_decoder: Callable[[bytes], list[Any]] | None = None


class ReadPlan:
    """The prepared form of one feature request; see the module docstring."""

    __slots__ = (
        "command_head",
        "command_tail",
        "decoders",
        "defaults",
        "entity",
        "features",
        "fields",
        "has_packed",
        "index",
        "key_prefix",
        "n_features",
        "n_fields",
        "names",
        "views",
    )  # fmt: skip

    def __init__(self, entity: Entity, features: Sequence[tuple[FeatureView, Feature]]) -> None:
        self.entity = entity
        self.features: tuple[Feature, ...] = tuple(f for _, f in features)
        self.names: tuple[str, ...] = tuple(f.name for f in self.features)
        self.index: dict[str, int] = {name: i for i, name in enumerate(self.names)}
        self.n_features = len(self.features)

        # Reply layout: one entry per feature (text fields; packed and compact ones stay
        # None here), then one `_f32:<view>` per packed view, one `_c:<view>` per compact
        # view, then one `_ts:<view>` per view.
        fields: list[bytes] = []
        views: dict[str, FeatureView] = {}
        for view, feature in features:
            views.setdefault(view.name, view)
            in_blob = view.is_compact or (view.packed and feature.dtype is DType.FLOAT32)
            fields.append(b"" if in_blob else feature.name.encode())
        packed_views = [v for v in views.values() if v.packed and any(f in v.packed_features for f in self.features)]
        packed_at = {v.name: len(fields) + i for i, v in enumerate(packed_views)}
        fields += [codec.packed_field(v) for v in packed_views]
        compact_views = [v for v in views.values() if v.is_compact]
        record_at: dict[str, tuple[int, ...]] = {}
        for v in compact_views:
            parts = codec.record_fields(v)
            record_at[v.name] = tuple(range(len(fields), len(fields) + len(parts)))
            fields += parts
        ts_base = len(fields)
        fields += [codec.ts_field(v) for v in views.values()]

        slots = []
        for i, view in enumerate(views.values()):
            positions = tuple(p for p, (v, _) in enumerate(features) if v.name == view.name)
            packed = tuple(
                (p, view.packed_features.index(f))
                for p, (v, f) in enumerate(features)
                if v.name == view.name and view.packed and f.dtype is DType.FLOAT32
            )
            in_record = tuple((p, view.features.index(f)) for p, (v, f) in enumerate(features) if v.name == view.name)
            mask = 0
            for p in positions:
                mask |= 1 << p
            slots.append(
                ViewSlot(
                    view,
                    ts_base + i,
                    view.max_age_seconds * 1000,
                    positions,
                    mask,
                    packed_at.get(view.name, -1),
                    packed,
                    record_at.get(view.name, ()),
                    in_record if view.is_compact else (),
                    codec.record_decoder(view) if view.is_compact else None,
                )
            )
        self.views: tuple[ViewSlot, ...] = tuple(slots)
        self.has_packed = bool(packed_views) or bool(compact_views)
        # A packed feature keeps its slot in the reply through a placeholder field: `_`
        # is reserved (field names never start with `_` otherwise), so it reads as nil.
        self.fields: tuple[bytes, ...] = tuple(f or b"_" for f in fields)
        self.n_fields = len(self.fields)
        self.decoders: tuple[Callable[[bytes], Any], ...] = tuple(
            _typed if v.is_compact else codec.decoder(f) for v, f in features
        )
        self.defaults: tuple[Any, ...] = tuple(f.default for f in self.features)
        self.key_prefix = codec.key_prefix(entity)
        # RESP for `HMGET <key> <fields...>`: the head goes before the key, the tail after.
        self.command_head = b"*%d\r\n$5\r\nHMGET\r\n" % (self.n_fields + 2)
        self.command_tail = b"".join(_bulk(f) for f in self.fields)

    # --- commands -----------------------------------------------------------------

    def key(self, entity_id: object) -> bytes:
        return self.key_prefix + codec.encode_id(self.entity, entity_id) + b"}"

    def command(self, key: bytes) -> bytes:
        """The RESP bytes of one HMGET for ``key``."""
        return b"%s$%d\r\n%s\r\n%s" % (self.command_head, len(key), key, self.command_tail)

    def keys(self, entity_ids: Sequence[object]) -> list[bytes]:
        entity, prefix = self.entity, self.key_prefix
        # the fast path: plain ints (not bools) in the int64 range
        if entity.id_dtype == "int64" and all(type(i) is int and -(2**63) <= i < 2**63 for i in entity_ids):
            return [b"%s%d}" % (prefix, i) for i in entity_ids]  # type: ignore[str-format]
        return [prefix + codec.encode_id(entity, i) + b"}" for i in entity_ids]

    # --- decoding -----------------------------------------------------------------

    def decode_row(
        self, row: list[Any], now_ms: int, serve_stale: bool, stamps: list[int], offset: int = 0
    ) -> tuple[int, int]:
        """Decode one HMGET reply in place; returns (missing mask, stale mask).

        Writes each view's ``_ts`` (epoch ms, or -1 if absent) to ``stamps[offset:]``.
        Afterwards ``row`` holds the typed values in request order: defaults where missing
        or stale (or the old value where stale and ``serve_stale``).
        """
        stale_mask = 0
        for slot in self.views:
            raw_ts = row[slot.ts_index]
            ts = int(raw_ts) if raw_ts is not None else _NEVER
            stamps[offset] = ts
            offset += 1
            if ts != _NEVER and now_ms - ts > slot.max_age_ms:
                stale_mask |= slot.mask
        if self.has_packed:
            self._unpack(row)
        del row[self.n_features :]
        decoders = self.decoders
        try:
            if not stale_mask and None not in row:  # the common case: everything fresh and present
                row[:] = map(_call, decoders, row)
                return 0, 0
            return self._decode_slow(row, stale_mask, serve_stale)
        except (ValueError, KeyError, TypeError, struct.error, UnicodeDecodeError):
            raise self._decoding_error(row) from None

    def _decode_slow(self, row: list[Any], stale_mask: int, serve_stale: bool) -> tuple[int, int]:
        missing_mask = 0
        defaults = self.defaults
        for i, decode in enumerate(self.decoders):
            raw = row[i]
            if raw is None:
                row[i] = defaults[i]
                missing_mask |= 1 << i
            elif stale_mask >> i & 1 and not serve_stale:
                row[i] = defaults[i]
            else:
                row[i] = decode(raw)
        return missing_mask, stale_mask & ~missing_mask

    def _decoding_error(self, row: list[Any]) -> DecodingError:
        for i, feature in enumerate(self.features):  # find the culprit (slow path: errors only)
            raw = row[i]
            if type(raw) is bytes:
                try:
                    codec.decode_value(feature, raw)
                except DecodingError:
                    return DecodingError(
                        f"entity {self.entity.name!r}: feature {feature.name!r} ({DType(feature.dtype).value}) "
                        f"holds {raw[:64]!r}, which cannot be decoded; was it written by another tool?"
                    )
        return DecodingError(f"entity {self.entity.name!r}: a stored value cannot be decoded")

    def _unpack(self, row: list[Any]) -> None:
        for slot in self.views:
            if slot.record_decoder is not None:
                parts = [row[i] for i in slot.record_indexes]
                # one HSET writes every part and they expire together: a part missing means no record
                decoded = None if None in parts else slot.record_decoder(b"".join(parts))
                for position, index in slot.record_positions:
                    row[position] = None if decoded is None else decoded[index]
                continue
            if slot.packed_index < 0:
                continue
            blob = row[slot.packed_index]
            values = codec.unpack_packed(slot.view, blob) if blob is not None else None
            for position, offset in slot.packed_positions:
                # a float passes through its decoder (float) unchanged
                row[position] = None if values is None else values[offset]


class Planner:
    """Turns the caller's feature selection into a cached :class:`ReadPlan`."""

    def __init__(self, catalog: Catalog, max_cached: int = 1024) -> None:
        self.catalog = catalog
        self._cache: dict[tuple[Any, ...], ReadPlan] = {}
        self._max_cached = max_cached
        # (entity, feature name) -> (view, feature)
        self._features: dict[tuple[str, str], tuple[FeatureView, Feature]] = {
            (v.entity.name, f.name): (v, f) for v in catalog.views for f in v.features
        }
        self._entities_of: dict[str, list[str]] = {}
        for entity_name, feature_name in self._features:
            self._entities_of.setdefault(feature_name, []).append(entity_name)

    def plan(self, features: str | FeatureView | Sequence[str], entity: str | None = None) -> ReadPlan:
        cache_key = (features if isinstance(features, (str, FeatureView)) else tuple(features), entity)
        plan = self._cache.get(cache_key)
        if plan is None:
            plan = self._build(cache_key[0], entity)
            if len(self._cache) >= self._max_cached:
                self._cache.clear()  # a service uses a handful of plans; this bounds a leak
            self._cache[cache_key] = plan
        return plan

    def _build(self, features: str | FeatureView | tuple[str, ...], entity: str | None) -> ReadPlan:
        if isinstance(features, FeatureView):
            features = features.name
        if isinstance(features, str):
            view = self.catalog.view(features)  # a view name selects all its features
            if entity is not None and entity != view.entity.name:
                raise FeatureNotFoundError(f"view {view.name!r} belongs to entity {view.entity.name!r}, not {entity!r}")
            return ReadPlan(view.entity, [(view, f) for f in view.features])
        if not features:
            raise FeatureNotFoundError("no features requested")
        entity_name = entity or self._infer_entity(features)
        ent = self.catalog.entity(entity_name)
        chosen = []
        for name in features:
            found = self._features.get((entity_name, name))
            if found is None:
                raise FeatureNotFoundError(self._unknown(name, entity_name))
            chosen.append(found)
        return ReadPlan(ent, chosen)

    def _infer_entity(self, names: tuple[str, ...]) -> str:
        for name in names:
            if not isinstance(name, str):
                raise FeatureNotFoundError(f"feature names must be strings, got {name!r}")
            owners = self._entities_of.get(name)
            if owners is None:
                raise FeatureNotFoundError(self._unknown(name, None))
            if len(owners) > 1:
                raise FeatureNotFoundError(
                    f"feature {name!r} exists for entities {sorted(owners)}; pass entity=... to choose"
                )
            return owners[0]
        raise FeatureNotFoundError("no features requested")  # pragma: no cover

    def _unknown(self, name: str, entity: str | None) -> str:
        known = (f for e, f in self._features if entity is None or e == entity)
        where = f" of entity {entity!r}" if entity else ""
        return unknown_name_message(f"unknown feature {name!r}{where}", name, known)
