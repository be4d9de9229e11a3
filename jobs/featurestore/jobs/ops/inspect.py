"""``featurestore inspect`` — one entity's hash, decoded for humans, whatever its layout.

    featurestore inspect user 42            # the key fs:user:{42}
    featurestore inspect --key 'fs:user:{42}'
    featurestore inspect user 42 --json     # one JSON object

Prints every feature of every view of the entity: its value, its status as the reader would
return it (``present``, ``missing``, ``stale``), the view's age (from ``_ts:<view>``) and the
remaining TTL of the field that holds it (for a ``compact`` or ``packed`` view, the record's
field).  A stale value is shown as stored (the reader would serve the default); a missing one
shows the default the reader serves.  Fields no view of the catalogue knows are listed too,
raw.  The key's TTL, encoding and ``MEMORY USAGE`` head the table.

Decoding is the reader's own (:class:`featurestore.readers.plan.ReadPlan`, one plan per view,
applied to the hash as ``HGETALL`` returns it), so a compact record, a packed float32 field
and a text field are decoded here exactly as ``FeatureReader.get`` decodes them.  Reads go
through the wire's client factory (TLS, ACL user, the store's error classes).

Exit codes: 0 the key exists, 1 it does not (never written, or expired), 2 an unknown
entity, a malformed key or an id that cannot be encoded; the connection failures as for
every command (``featurestore --help``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from featurestore.jobs.core.console import format_duration
from featurestore.jobs.core.run_records import aligned
from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, Entity
from featurestore.readers.errors import (
    ConfigurationError,
    EncodingError,
    ServerError,
)
from featurestore.readers.plan import ReadPlan
from featurestore.readers.results import FeatureStatus

_KEY = re.compile(rb"^fs:([a-z][a-z0-9_]{0,62}):\{(.+)\}$", re.DOTALL)
NO_TTL = -1  # HTTL's answer for a field without a TTL of its own


@dataclass(frozen=True)
class FeatureLine:
    """One feature as the reader would see it (``to_dict`` is its ``--json`` form)."""

    view: str
    layout: str
    feature: str
    field: str  # the hash field that holds it: the feature's name, `_c:<view>` (and its parts) or `_f32:<view>`
    value: Any  # decoded (the stored value when stale; the default when missing)
    status: str
    age_seconds: float | None  # of the view, from `_ts:<view>` (None: no `_ts`)
    field_ttl_seconds: int | None  # the holding field's own TTL (None: none, or not known)


@dataclass(frozen=True)
class EntityReport:
    """Everything ``inspect`` shows about one key."""

    key: str
    entity: str
    exists: bool
    key_ttl_seconds: int | None
    encoding: str | None
    memory_bytes: int | None
    features: list[FeatureLine] = field(default_factory=list)
    unknown_fields: dict[str, str] = field(default_factory=dict)  # field -> stored bytes, repr

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["features"] = [{**asdict(f), "value": codec.json_value(f.value)} for f in self.features]
        return out


def parse_key(catalog: Catalog, key: str | bytes) -> tuple[Entity, object]:
    """The entity and id of a key ``fs:<entity>:{<id>}``; :class:`ConfigurationError` if it is none."""
    raw = key.encode() if isinstance(key, str) else key
    match = _KEY.match(raw)
    if match is None:
        raise ConfigurationError(f"key {raw!r} is not a feature-store key fs:<entity>:{{<id>}}")
    entity = catalog.entity(match.group(1).decode())
    text = match.group(2).decode(errors="replace")
    if entity.id_dtype == "int64":
        try:
            return entity, int(text)
        except ValueError:
            raise ConfigurationError(f"entity {entity.name!r} has int64 ids; {text!r} in {raw!r} is not one") from None
    return entity, text


def entity_id_of(entity: Entity, text: str) -> object:
    """An id typed on the command line, as the entity's id type (checked by the codec)."""
    value: object = text
    if entity.id_dtype == "int64":
        try:
            value = int(text)
        except ValueError:
            raise ConfigurationError(f"entity {entity.name!r} has int64 ids; {text!r} is not one") from None
    try:
        codec.encode_id(entity, value)
    except EncodingError as exc:
        raise ConfigurationError(str(exc)) from None
    return value


def decode_hash(
    catalog: Catalog,
    entity: Entity,
    stored: Mapping[bytes, bytes],
    field_ttls: Mapping[bytes, int],
    now_ms: int,
) -> tuple[list[FeatureLine], dict[str, str]]:
    """Pure: every feature of ``entity``'s views decoded from its hash as ``HGETALL`` returns
    it, with the reader's plans (``serve_stale`` so a stale value is shown as stored), and
    the fields no view knows."""
    lines: list[FeatureLine] = []
    known: set[bytes] = set()
    for view in catalog.views_of(entity.name):
        plan = ReadPlan(entity, [(view, f) for f in view.features])
        known.update(plan.fields)
        row: list[Any] = [stored.get(f) for f in plan.fields]
        stamps = [0] * len(plan.views)
        missing, stale = plan.decode_row(row, now_ms, True, stamps)
        ts = stamps[0]
        age = None if ts < 0 else round(max(0, now_ms - ts) / 1000, 1)
        for i, feature in enumerate(view.features):
            if view.is_compact:
                holder = codec.record_field(view)  # the first part: they all share one TTL
            elif feature in view.packed_features:
                holder = codec.packed_field(view)
            else:
                holder = feature.name.encode()
            status = FeatureStatus.MISSING if missing >> i & 1 else FeatureStatus.STALE if stale >> i & 1 else None
            ttl = field_ttls.get(holder)
            lines.append(
                FeatureLine(
                    view=view.name,
                    layout=str(view.layout),
                    feature=feature.name,
                    field=holder.decode(),
                    value=row[i],
                    status=(status or FeatureStatus.PRESENT).value,
                    age_seconds=age,
                    field_ttl_seconds=None if ttl is None or ttl < 0 else ttl,
                )
            )
    unknown = {k.decode(errors="replace"): repr(v[:80]) for k, v in sorted(stored.items()) if k not in known}
    return lines, unknown


def _seconds_text(seconds: float | None) -> str:
    return format_duration(seconds)  # the command line's one duration format


def _value_text(value: Any) -> str:
    return json.dumps(codec.json_value(value), ensure_ascii=False)


def format_report(report: EntityReport) -> str:
    """The report as a header line and an aligned table."""
    memory = f"{report.memory_bytes} bytes" if report.memory_bytes is not None else "?"
    ttl = "none" if report.key_ttl_seconds is None else _seconds_text(report.key_ttl_seconds)
    head = f"{report.key}  key TTL {ttl}  encoding {report.encoding or '?'}  memory {memory}"
    rows = [("view", "feature", "value", "status", "view age", "field TTL", "field")]
    for f in report.features:
        rows.append(
            (f.view, f.feature, _value_text(f.value), f.status, _seconds_text(f.age_seconds),
             _seconds_text(f.field_ttl_seconds), f.field)
        )  # fmt: skip
    lines = [head, *aligned(rows)]
    for name, raw in report.unknown_fields.items():
        lines.append(f"unknown field {name!r}: {raw}")
    return "\n".join(lines)


def _field_ttls(client: Any, key: bytes, fields: Sequence[bytes]) -> dict[bytes, int]:
    """Each field's own TTL (HTTL, Redis >= 7.4); empty on a server without HTTL."""
    if not fields:
        return {}
    try:
        ttls = client.execute_command("HTTL", key, "FIELDS", len(fields), *fields)
    except ServerError as exc:
        if "unknown command" in str(exc).lower():
            return {}
        raise
    return {f: int(t) for f, t in zip(fields, ttls)}


def inspect_key(client: Any, catalog: Catalog, entity: Entity, key: bytes, now_ms: int) -> EntityReport:
    """Read one entity's hash (HGETALL, HTTL, TTL, OBJECT ENCODING, MEMORY USAGE) and decode it."""
    stored: dict[bytes, bytes] = client.hgetall(key)
    if not stored:
        return EntityReport(key.decode(errors="replace"), entity.name, False, None, None, None)
    ttls = _field_ttls(client, key, list(stored))
    key_ttl = int(client.ttl(key))
    encoding: str | None
    memory: int | None
    try:  # diagnostics only: an ACL user without them still gets the values
        raw_encoding = client.object("encoding", key)
        encoding = raw_encoding.decode() if isinstance(raw_encoding, bytes) else raw_encoding
        memory = client.memory_usage(key)
    except ServerError:
        encoding, memory = None, None
    features, unknown = decode_hash(catalog, entity, stored, ttls, now_ms)
    return EntityReport(
        key=key.decode(errors="replace"),
        entity=entity.name,
        exists=True,
        key_ttl_seconds=key_ttl if key_ttl >= 0 else None,
        encoding=encoding,
        memory_bytes=memory,
        features=features,
        unknown_fields=unknown,
    )
