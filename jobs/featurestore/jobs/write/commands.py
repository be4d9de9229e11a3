"""Write commands as data: what the batch writer sends for one entity of one view.

Pure logic (no I/O, no Spark).  The freshness rules of docs/storage-format.md live here:

* ``HSET`` the non-null features and ``_ts:<view>``; ``HDEL`` the features that are null
  now, so a stale value never survives a rewrite (a ``layout="compact"`` view ``HSET``s its
  one record ``_c:<view>``, whose presence bitmap says which features are null: no ``HDEL``);
* ``EXPIRE`` the key by the longest batch TTL of the entity (views never shrink each
  other's lifetime);
* ``HEXPIRE`` the view's fields when its TTL is shorter than the key's (``HSET`` clears
  a field's TTL, so this is re-applied on every write).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, FeatureView
from featurestore.readers.wire import encode

Command = tuple[bytes, ...]


def resp(command: Sequence[bytes]) -> bytes:
    """The RESP encoding of one command (the wire's encoder)."""
    return encode(*command)


@dataclass(frozen=True)
class BatchWritePlan:
    """Everything about a batch view's write that does not depend on the row."""

    view: FeatureView
    key_ttl: int
    field_ttl: int | None  # set when the view's TTL is shorter than the key's
    fields: tuple[bytes, ...]  # text features, in definition order
    packed: bytes | None  # `_f32:<view>` or None
    ts_field: bytes
    record: tuple[bytes, ...] = ()  # the record's fields of a compact view (then `fields` is empty)

    @classmethod
    def build(cls, catalog: Catalog, view: FeatureView) -> BatchWritePlan:
        if not view.is_batch:
            raise ValueError(f"view {view.name!r} is a streaming view; use the streaming writer")
        key_ttl = catalog.key_ttl(view.entity.name)
        assert key_ttl is not None and view.ttl_seconds is not None
        # a compact view has no per-feature field: its record holds them all
        skip = {f.name for f in (view.features if view.is_compact else view.packed_features)}
        return cls(
            view=view,
            key_ttl=key_ttl,
            field_ttl=view.ttl_seconds if view.ttl_seconds < key_ttl else None,
            fields=tuple(f.name.encode() for f in view.features if f.name not in skip),
            packed=codec.packed_field(view) if view.packed else None,
            ts_field=codec.ts_field(view),
            record=codec.record_fields(view) if view.is_compact else (),
        )

    def commands(self, entity_id: object, values: Mapping[str, Any], computed_at_ms: int) -> list[Command]:
        """The commands that write one entity's row (values by feature name; None = null)."""
        key = codec.entity_key(self.view.entity, entity_id)
        present: list[bytes] = []
        absent: list[bytes] = []
        if self.record:
            parts = codec.split_record(codec.encode_record(self.view, values), len(self.record))
            for name, part in zip(self.record, parts, strict=True):
                present += [name, part]
        packed_names = {f.name for f in self.view.packed_features}
        for feature in self.view.features:
            if feature.name in packed_names or self.record:
                continue
            encoded = codec.encode_value(feature, values.get(feature.name))
            name = feature.name.encode()
            if encoded is None:
                absent.append(name)
            else:
                present += [name, encoded]
        if self.packed is not None:
            blob = codec.encode_packed(self.view, dict(values))
            if blob is None:
                absent.append(self.packed)
            else:
                present += [self.packed, blob]
        present += [self.ts_field, codec.encode_ts(computed_at_ms)]
        out: list[Command] = [(b"HSET", key, *present)]
        if absent:
            out.append((b"HDEL", key, *absent))
        out.append((b"EXPIRE", key, str(self.key_ttl).encode()))
        if self.field_ttl is not None:
            written = present[0::2]
            out.append((b"HEXPIRE", key, str(self.field_ttl).encode(), b"FIELDS", str(len(written)).encode(), *written))
        return out
