"""The storage format: keys, fields and values as bytes (docs/storage-format.md).

This module is the single source of truth for the bytes in Redis.  The batch writer's
vectorised path and the streaming writer produce exactly these bytes (pinned by golden
tests), and the reader decodes with the converters built here.
"""

from __future__ import annotations

import hashlib
import json
import math
import struct
from collections.abc import Callable
from typing import Any

from .definitions import DType, Entity, Feature, FeatureView
from .errors import DecodingError, EncodingError

KEY_PREFIX = b"fs:"
REGISTRY_KEY = b"fs:registry"
TS_FIELD_PREFIX = b"_ts:"
PACKED_FIELD_PREFIX = b"_f32:"
MAX_ID_BYTES = 512
FORMAT_VERSION = 1

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_F32 = struct.Struct("<f")
_FORBIDDEN_ID_CHARS = frozenset("{}") | frozenset(chr(c) for c in range(32)) | {"\x7f"}


# --- keys and fields ------------------------------------------------------------------


def encode_id(entity: Entity, entity_id: object) -> bytes:
    """The id part of an entity's key: decimal text for int64 ids, UTF-8 for strings."""
    if entity.id_dtype == "int64":
        if isinstance(entity_id, bool) or not hasattr(entity_id, "__index__"):
            raise EncodingError(
                f"entity {entity.name!r} has int64 ids; {entity_id!r} ({type(entity_id).__name__}) is not an integer"
            )
        value = entity_id.__index__()
        if not _INT64_MIN <= value <= _INT64_MAX:
            raise EncodingError(f"entity {entity.name!r}: id {value} is outside the int64 range")
        return str(value).encode()
    if not isinstance(entity_id, str):
        raise EncodingError(
            f"entity {entity.name!r} has string ids; {entity_id!r} ({type(entity_id).__name__}) is not a str"
        )
    bad = _FORBIDDEN_ID_CHARS.intersection(entity_id)
    if bad or not entity_id:
        raise EncodingError(
            f"entity {entity.name!r}: id {entity_id!r} cannot be encoded "
            "(ids must be non-empty, without braces or control characters)"
        )
    try:
        encoded = entity_id.encode()
    except UnicodeEncodeError as exc:
        raise EncodingError(f"entity {entity.name!r}: id {entity_id!r} is not valid Unicode") from exc
    if len(encoded) > MAX_ID_BYTES:
        raise EncodingError(f"entity {entity.name!r}: id is {len(encoded)} bytes, more than {MAX_ID_BYTES}")
    return encoded


def key_prefix(entity: Entity) -> bytes:
    """``fs:<entity>:{`` — everything of a key before the id."""
    return KEY_PREFIX + entity.name.encode() + b":{"


def entity_key(entity: Entity, entity_id: object) -> bytes:
    """``fs:<entity>:{<id>}``; the braces are the Cluster hash tag, so the slot is stable."""
    return key_prefix(entity) + encode_id(entity, entity_id) + b"}"


def ts_field(view: FeatureView | str) -> bytes:
    """``_ts:<view>``: epoch milliseconds when the view's values were computed."""
    name = view if isinstance(view, str) else view.name
    return TS_FIELD_PREFIX + name.encode()


def packed_field(view: FeatureView) -> bytes:
    """``_f32:<view>``: the packed float32 features of a view with ``packed=True``."""
    return PACKED_FIELD_PREFIX + view.name.encode()


def encode_ts(epoch_ms: int) -> bytes:
    return str(int(epoch_ms)).encode()


# --- values ---------------------------------------------------------------------------


def _shortest_text(digits: str, exponent: int, negative: bool) -> str:
    """Lay out significant digits like Arrow's float→string cast.

    Positional for decimal exponents -7 < e < 10 (``0.000001``, ``123456789``),
    scientific otherwise (``1e-7``, ``1.5e+10``); integral values carry no ``.0``.
    """
    sign = "-" if negative else ""
    if digits == "0":
        return sign + "0"
    if -7 < exponent < 10:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1 :]
            return sign + whole + ("." + fraction if fraction else "")
        return sign + "0." + "0" * (-exponent - 1) + digits
    mantissa = digits[0] + ("." + digits[1:] if len(digits) > 1 else "")
    return f"{sign}{mantissa}e{'+' if exponent > 0 else '-'}{abs(exponent)}"


def _split_scientific(text: str) -> tuple[str, int]:
    """'1.2500e+03' -> ('125', 3): significant digits and decimal exponent."""
    mantissa, _, exp = text.partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    return digits, int(exp)


def format_float64(value: float) -> str:
    """Shortest decimal text that round-trips to the same float64."""
    value = float(value)  # numpy scalars repr differently
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    # repr() gives the shortest round-trip digits; re-lay them out canonically.
    digits, exponent = _split_scientific(f"{abs(value):.{_repr_digits(value) - 1}e}")
    return _shortest_text(digits, exponent, math.copysign(1.0, value) < 0)


def _repr_digits(value: float) -> int:
    text = repr(abs(value))
    mantissa = text.partition("e")[0].replace(".", "").lstrip("0").rstrip("0")
    return max(len(mantissa), 1)


def format_float32(value: float) -> str:
    """Shortest decimal text that round-trips to the same float32."""
    try:
        x32 = _F32.unpack(_F32.pack(value))[0]
    except OverflowError:  # beyond float32's range: inf, as Spark's and Arrow's casts do
        x32 = math.copysign(math.inf, value)
    if math.isinf(x32):
        return "inf" if x32 > 0 else "-inf"
    for precision in range(1, 10):
        text = f"{abs(x32):.{precision - 1}e}"
        try:
            if _F32.unpack(_F32.pack(float(text)))[0] == abs(x32):
                break
        except OverflowError:  # too few digits near FLT_MAX round above it: try more
            continue
    digits, exponent = _split_scientific(text)
    return _shortest_text(digits, exponent, math.copysign(1.0, x32) < 0)


def encode_value(feature: Feature, value: Any) -> bytes | None:
    """One feature value as stored bytes; ``None`` means null, stored as an absent field.

    NaN counts as null for float features.  Raises :class:`EncodingError` naming the
    feature when the value does not fit its dtype.
    """
    if value is None:
        return None
    dtype = DType(feature.dtype)
    try:
        if dtype is DType.FLOAT64 or dtype is DType.FLOAT32:
            if isinstance(value, (bool, str, bytes)):
                raise TypeError
            number = float(value)
            if math.isnan(number):
                return None
            if dtype is DType.FLOAT32:
                return format_float32(number).encode()
            return format_float64(number).encode()
        if dtype is DType.INT64:
            if isinstance(value, bool) or not hasattr(value, "__index__"):
                if isinstance(value, float) and value.is_integer():
                    value = int(value)
                else:
                    raise TypeError
            number = value.__index__()
            if not _INT64_MIN <= number <= _INT64_MAX:
                raise EncodingError(f"feature {feature.name!r}: {number} is outside the int64 range")
            return str(number).encode()
        if dtype is DType.BOOL:
            if value is True or value is False or type(value).__name__ == "bool_":
                return b"1" if value else b"0"
            raise TypeError
        if dtype is DType.STRING:
            if not isinstance(value, str):
                raise TypeError
            return value.encode()
        # vector
        items = [float(v) for v in value]
        if len(items) != feature.dim:
            raise EncodingError(
                f"feature {feature.name!r}: vector has {len(items)} values, the definition says dim={feature.dim}"
            )
        return struct.pack(f"<{feature.dim}f", *items)
    except EncodingError:
        raise
    except (TypeError, ValueError, OverflowError, UnicodeEncodeError):
        raise EncodingError(
            f"feature {feature.name!r} ({dtype.value}): cannot encode {value!r} ({type(value).__name__})"
        ) from None


def encode_packed(view: FeatureView, values: dict[str, Any]) -> bytes | None:
    """The ``_f32:<view>`` field: packed float32 features, NaN for null; None if all null."""
    numbers = []
    for feature in view.packed_features:
        value = values.get(feature.name)
        numbers.append(math.nan if value is None else float(value))
    if all(math.isnan(n) for n in numbers):
        return None
    return struct.pack(f"<{len(numbers)}f", *numbers)


_BOOLS = {b"1": True, b"0": False}


def decoder(feature: Feature) -> Callable[[bytes], Any]:
    """A converter from stored bytes to the feature's Python value, built once per feature."""
    dtype = DType(feature.dtype)
    if dtype is DType.INT64:
        return int
    if dtype is DType.FLOAT64 or dtype is DType.FLOAT32:
        return float
    if dtype is DType.STRING:
        return bytes.decode
    if dtype is DType.BOOL:
        return _BOOLS.__getitem__
    assert feature.dim is not None
    return struct.Struct(f"<{feature.dim}f").unpack


def decode_value(feature: Feature, raw: bytes | None) -> Any:
    """Decode one stored value (``None`` stays ``None``); errors name the feature."""
    if raw is None:
        return None
    try:
        return decoder(feature)(raw)
    except (ValueError, KeyError, struct.error, UnicodeDecodeError):
        raise DecodingError(
            f"feature {feature.name!r} ({DType(feature.dtype).value}): stored value {raw[:64]!r} cannot be decoded"
        ) from None


def unpack_packed(view: FeatureView, raw: bytes) -> tuple[float | None, ...]:
    """Values of the packed float32 features, ``None`` where NaN (null)."""
    count = len(view.packed_features)
    if len(raw) != 4 * count:
        raise DecodingError(
            f"view {view.name!r}: packed field holds {len(raw)} bytes, expected {4 * count} "
            f"for {count} float32 features"
        )
    return tuple(None if v != v else v for v in struct.unpack(f"<{count}f", raw))


# --- registry -------------------------------------------------------------------------


def view_spec(view: FeatureView) -> dict[str, Any]:
    """What decides how a view's values are decoded: published in the registry."""
    return {
        "view": view.name,
        "entity": view.entity.name,
        "id_dtype": view.entity.id_dtype,
        "kind": view.kind.value if hasattr(view.kind, "value") else str(view.kind),
        "packed": view.packed,
        "features": [
            {"name": f.name, "dtype": DType(f.dtype).value, **({"dim": f.dim} if f.dim else {})} for f in view.features
        ],
        "format_version": FORMAT_VERSION,
    }


def fingerprint(view: FeatureView) -> str:
    """sha256 of the canonical JSON of :func:`view_spec` (changes iff decoding would)."""
    canonical = json.dumps(view_spec(view), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def json_value(value: Any) -> Any:
    """A default or decoded value as JSON: vectors as lists; a non-finite float as ``"inf"``,
    ``"-inf"`` or ``"nan"`` (JSON has no such numbers)."""
    if isinstance(value, tuple):
        return [json_value(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    return value


def view_contract(view: FeatureView) -> dict[str, Any]:
    """Everything a reader in any language needs to apply the read rules to ``view``.

    :func:`view_spec` (what decides decoding: fingerprinted), plus the key and field names,
    each feature's default and lifetime, the view's TTL and ``max_age``, and the order of the
    features in a packed field.  Published in the registry and by ``featurestore catalog
    export``; docs/storage-format.md explains each rule.
    """
    spec = view_spec(view)
    features = [
        {**described, "default": json_value(feature.default), "ttl": view.feature_ttl(feature)}
        for described, feature in zip(spec["features"], view.features, strict=True)
    ]
    return {
        **spec,
        "features": features,
        "key": f"{KEY_PREFIX.decode()}{view.entity.name}:{{<id>}}",
        "ts_field": ts_field(view).decode(),
        "packed_field": packed_field(view).decode() if view.packed else None,
        "packed_features": [f.name for f in view.packed_features],
        "ttl": view.ttl_seconds,
        "max_age": view.max_age_seconds,
    }


def registry_entry(view: FeatureView, published_at_ms: int, run_id: str = "") -> bytes:
    """The value of the view's field in the ``fs:registry`` hash: its contract, fingerprinted."""
    entry = {
        **view_contract(view),
        "fingerprint": fingerprint(view),
        "published_at_ms": int(published_at_ms),
        "run_id": run_id,
    }
    return json.dumps(entry, sort_keys=True, separators=(",", ":")).encode()


def parse_registry_entry(raw: bytes) -> dict[str, Any]:
    try:
        entry = json.loads(raw)
    except ValueError as exc:
        raise DecodingError(f"registry entry is not JSON: {raw[:80]!r}") from exc
    if not isinstance(entry, dict) or "features" not in entry:
        raise DecodingError(f"registry entry has no feature list: {raw[:80]!r}")
    return entry
