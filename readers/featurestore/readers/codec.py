"""The storage format: keys, fields and values as bytes (docs/storage-format.md).

This module is the single source of truth for the bytes in Redis.  The batch writer's
vectorised path and the streaming writer produce exactly these bytes (pinned by golden
tests), and the reader decodes with the converters built here.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import math
import struct
from collections.abc import Callable, Mapping
from typing import Any

from .definitions import DType, Entity, Feature, FeatureView, Layout
from .errors import DecodingError, EncodingError

KEY_PREFIX = b"fs:"
REGISTRY_KEY = b"fs:registry"
TS_FIELD_PREFIX = b"_ts:"
PACKED_FIELD_PREFIX = b"_f32:"
RECORD_FIELD_PREFIX = b"_c:"
# The first byte of every compact record: the record format's own version, so the record
# can evolve (a reader refuses a format byte it does not know).
RECORD_FORMAT = 1
MAX_ID_BYTES = 512
FORMAT_VERSION = 1

_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1
_F32 = struct.Struct("<f")
_F32_PACK, _F32_UNPACK = _F32.pack, _F32.unpack  # bound once: decode_float32 is on the read path
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


def record_field(view: FeatureView | str) -> bytes:
    """``_c:<view>``: the (first part of the) binary record of a view with ``layout="compact"``."""
    name = view if isinstance(view, str) else view.name
    return RECORD_FIELD_PREFIX + name.encode()


def record_fields(view: FeatureView) -> tuple[bytes, ...]:
    """The fields of a compact view's record parts, in order: ``_c:<view>``, ``_c1:<view>``, ..."""
    name = view.name.encode()
    parts = range(view.record_part_count)
    return tuple(RECORD_FIELD_PREFIX + name if k == 0 else b"_c%d:%s" % (k, name) for k in parts)


def split_record(raw: bytes, parts: int) -> list[bytes]:
    """A record cut into ``parts`` consecutive pieces of ``ceil(len / parts)`` bytes (the
    last ones shorter, possibly empty): every piece stays small enough for a listpack."""
    size = -(-len(raw) // parts)
    return [raw[k * size : (k + 1) * size] for k in range(parts)]


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


def _finite_float(value: Any) -> float | None:
    """``value`` as a float, ``None`` for NaN (null); a bool, str or bytes is a TypeError."""
    if isinstance(value, (bool, str, bytes)):
        raise TypeError
    number = float(value)
    return None if math.isnan(number) else number


def _encode_float64(feature: Feature, value: Any) -> bytes | None:
    number = _finite_float(value)
    return None if number is None else format_float64(number).encode()


def _encode_float32(feature: Feature, value: Any) -> bytes | None:
    number = _finite_float(value)
    return None if number is None else format_float32(number).encode()


def _encode_int64(feature: Feature, value: Any) -> bytes:
    if isinstance(value, bool) or not hasattr(value, "__index__"):
        if not (isinstance(value, float) and value.is_integer()):
            raise TypeError
        value = int(value)
    number = value.__index__()
    if not _INT64_MIN <= number <= _INT64_MAX:
        raise EncodingError(f"feature {feature.name!r}: {number} is outside the int64 range")
    return str(number).encode()


def _encode_bool(feature: Feature, value: Any) -> bytes:
    if value is True or value is False or type(value).__name__ == "bool_":
        return b"1" if value else b"0"
    raise TypeError


def _encode_string(feature: Feature, value: Any) -> bytes:
    if not isinstance(value, str):
        raise TypeError
    return value.encode()


def _encode_vector(feature: Feature, value: Any) -> bytes:
    items = [float(v) for v in value]
    if len(items) != feature.dim:
        raise EncodingError(
            f"feature {feature.name!r}: vector has {len(items)} values, the definition says dim={feature.dim}"
        )
    return struct.pack(f"<{feature.dim}f", *items)


# One encoder per dtype: each raises EncodingError with its own message, or TypeError /
# ValueError / OverflowError / UnicodeEncodeError for a value that does not fit at all.
_VALUE_ENCODERS: dict[DType, Callable[[Feature, Any], bytes | None]] = {
    DType.FLOAT64: _encode_float64,
    DType.FLOAT32: _encode_float32,
    DType.INT64: _encode_int64,
    DType.BOOL: _encode_bool,
    DType.STRING: _encode_string,
    DType.VECTOR: _encode_vector,
}


def encode_value(feature: Feature, value: Any) -> bytes | None:
    """One feature value as stored bytes; ``None`` means null, stored as an absent field.

    NaN counts as null for float features.  Raises :class:`EncodingError` naming the
    feature when the value does not fit its dtype.
    """
    if value is None:
        return None
    dtype = DType(feature.dtype)
    try:
        return _VALUE_ENCODERS[dtype](feature, value)
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


def decode_float32(raw: bytes | str) -> float:
    """A float32 feature's stored text as the exact float32 value it stands for (as a Python float).

    The text is the shortest decimal that round-trips to the float32 (``0.33333334``); the
    nearest *double* to that text (``0.33333334``) differs in its last bits from the float32
    itself (``0.3333333432674408``), which is what the packed and compact layouts, Spark's
    ``FloatType`` and the training set (``float(np.float32(x))``) give.  Serving the exact
    float32 makes every path return the same Python float (docs/reader.md, "float32").
    """
    number = float(raw)
    try:
        return _F32_UNPACK(_F32_PACK(number))[0]  # type: ignore[no-any-return]
    except OverflowError:  # beyond float32's range (not written by us): inf, as the float32 casts do
        return math.copysign(math.inf, number)


def decoder(feature: Feature) -> Callable[[bytes], Any]:
    """A converter from stored bytes to the feature's Python value, built once per feature."""
    dtype = DType(feature.dtype)
    if dtype is DType.INT64:
        return int
    if dtype is DType.FLOAT64:
        return float
    if dtype is DType.FLOAT32:
        return decode_float32
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


# --- compact records (layout="compact") -----------------------------------------------
#
#   format byte (RECORD_FORMAT) | varint n | presence bitmap | bool bits | values
#
# n is the number of features the writer's definition had (a reader whose view has more,
# appended later, reads the extra ones as missing).  Bit i of the presence bitmap (byte
# i >> 3, least significant bit first) is set when feature i (definition order) has a
# value; the bool bits hold the value of each bool feature among the n, in order (0 when
# null).  Then the value of each present non-bool feature, in order: float64 and float32
# as IEEE little-endian bytes, int64 as a zigzag LEB128 varint, string as a varint byte
# length and UTF-8, vector as dim float32 little-endian.  docs/storage-format.md.

_F64 = struct.Struct("<d")


def encode_varint(value: int) -> bytes:
    """Unsigned LEB128: 7 bits a byte, least significant group first, high bit = more."""
    out = bytearray()
    while value > 0x7F:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    """int64 -> uint64 so that small magnitudes of either sign get short varints."""
    return ((value << 1) ^ (value >> 63)) & 0xFFFFFFFFFFFFFFFF


def unzigzag(value: int) -> int:
    return (value >> 1) ^ -(value & 1)


def _record_value(feature: Feature, value: Any) -> Any:
    """``value`` checked against the feature's dtype, as the text codec checks it (same
    errors); ``None`` for null or NaN.  Floats come back as float, vectors as a tuple."""
    if value is None:
        return None
    dtype = DType(feature.dtype)
    if dtype is DType.STRING:
        if not isinstance(value, str):
            encode_value(feature, value)  # raises the codec's error
        return value
    if dtype is DType.VECTOR:
        encode_value(feature, value)  # the length and element checks
        return tuple(float(v) for v in value)
    if encode_value(feature, value) is None:  # NaN
        return None
    if dtype is DType.INT64:
        return int(value.__index__() if hasattr(value, "__index__") else value)
    if dtype is DType.BOOL:
        return bool(value)
    return float(value)


def encode_record(view: FeatureView, values: Mapping[str, Any]) -> bytes:
    """The ``_c:<view>`` record of one entity (values by feature name; missing = null).

    Raises :class:`EncodingError` naming the feature when a value does not fit its dtype.
    """
    features = view.features
    n = len(features)
    presence = 0
    bools = 0
    n_bools = 0
    body = bytearray()
    for i, feature in enumerate(features):
        value = _record_value(feature, values.get(feature.name))
        dtype = feature.dtype
        if dtype is DType.BOOL:
            if value:
                bools |= 1 << n_bools
            n_bools += 1
        if value is None:
            continue
        presence |= 1 << i
        if dtype is DType.FLOAT64:
            body += _F64.pack(value)
        elif dtype is DType.FLOAT32:
            try:
                body += _F32.pack(value)
            except OverflowError:  # beyond float32's range: inf, as the text codec and Spark do
                body += _F32.pack(math.copysign(math.inf, value))
        elif dtype is DType.INT64:
            body += encode_varint(zigzag(value))
        elif dtype is DType.STRING:
            try:
                text = value.encode()
            except UnicodeEncodeError:
                raise EncodingError(f"feature {feature.name!r} (string): {value!r} is not valid Unicode") from None
            body += encode_varint(len(text)) + text
        elif dtype is DType.VECTOR:
            body += struct.pack(f"<{feature.dim}f", *value)
    head = bytes([RECORD_FORMAT]) + encode_varint(n) + presence.to_bytes((n + 7) // 8, "little")
    if n_bools:
        head += bools.to_bytes((n_bools + 7) // 8, "little")
    return head + bytes(body)


def _read_varint(raw: bytes, at: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = raw[at]
        at += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, at
        shift += 7
        if shift > 63:
            raise ValueError("varint longer than 10 bytes")


# How a compact record's values are read, as a short program compiled once per view: each
# step is (kind, first, end, struct) and fills out[first:end].  A run of adjacent floats is
# one step unpacked by one precompiled struct (the dense program); int, string and vector
# values are one step each; bools are not steps (they live in the bool bits).
# The loops compare a step's kind with the literals (commented): on the hot path a constant
# costs less than a global lookup.
_FLOATS, _INT, _STRING, _VECTOR = 0, 1, 2, 3
_Step = tuple[int, int, int, struct.Struct]
_NO_STRUCT = struct.Struct("")  # the struct of a step that reads no fixed-size value


def _record_steps(features: tuple[Feature, ...], merge_floats: bool) -> tuple[_Step, ...]:
    """The steps reading the values of ``features`` (see above); ``merge_floats=False``
    gives every float a step of its own, for records where some values are null."""
    steps: list[_Step] = []
    i, n = 0, len(features)
    while i < n:
        dtype, end = features[i].dtype, i + 1
        if dtype is DType.FLOAT64 or dtype is DType.FLOAT32:
            while merge_floats and end < n and features[end].dtype in (DType.FLOAT64, DType.FLOAT32):
                end += 1
            layout = "".join("d" if f.dtype is DType.FLOAT64 else "f" for f in features[i:end])
            steps.append((_FLOATS, i, end, struct.Struct("<" + layout)))
        elif dtype is DType.INT64:
            steps.append((_INT, i, end, _NO_STRUCT))
        elif dtype is DType.STRING:
            steps.append((_STRING, i, end, _NO_STRUCT))
        elif dtype is DType.VECTOR:
            steps.append((_VECTOR, i, end, struct.Struct(f"<{features[i].dim}f")))
        i = end
    return tuple(steps)


def _read_dense(steps: tuple[_Step, ...], raw: bytes, at: int, out: list[Any]) -> int:
    """Run the dense program (every value present) on the values from ``raw[at:]``; returns
    where they end.  The hot path of a compact read: varints of one byte are read inline."""
    for kind, first, end, packed in steps:
        if kind == 0:  # _FLOATS
            out[first:end] = packed.unpack_from(raw, at)
            at += packed.size
        elif kind == 1:  # _INT
            value = raw[at]
            if value < 0x80:
                at += 1
            else:
                value, at = _read_varint(raw, at)
            out[first] = (value >> 1) ^ -(value & 1)
        elif kind == 2:  # _STRING
            size = raw[at]
            if size < 0x80:
                at += 1
            else:
                size, at = _read_varint(raw, at)
            stop = at + size
            if stop > len(raw):
                raise ValueError("string runs past the end")
            out[first] = raw[at:stop].decode()
            at = stop
        else:  # _VECTOR
            out[first] = packed.unpack_from(raw, at)
            at += packed.size
    return at


def _read_sparse(steps: tuple[_Step, ...], raw: bytes, at: int, n: int, presence: int, out: list[Any]) -> int:
    """Run the one-step-per-value program on the values of the first ``n`` features whose
    presence bit is set; returns where they end."""
    for kind, first, _, packed in steps:
        if first >= n:
            break
        if not presence >> first & 1:
            continue
        if kind == 0:  # _FLOATS
            out[first] = packed.unpack_from(raw, at)[0]
            at += packed.size
        elif kind == 1:  # _INT
            value, at = _read_varint(raw, at)
            out[first] = unzigzag(value)
        elif kind == 2:  # _STRING
            size, at = _read_varint(raw, at)
            if at + size > len(raw):
                raise ValueError("string runs past the end")
            out[first] = raw[at : at + size].decode()
            at += size
        else:  # _VECTOR
            out[first] = packed.unpack_from(raw, at)
            at += packed.size
    return at


def _unknown_format(view: FeatureView, raw: bytes) -> DecodingError:
    return DecodingError(
        f"view {view.name!r}: record format {raw[0]} is not known to this reader "
        f"(it reads format {RECORD_FORMAT}); upgrade redis-feature-store"
    )


def _written_by_newer_definitions(view: FeatureView, n: int) -> DecodingError:
    return DecodingError(
        f"view {view.name!r}: the record holds {n} features, this definition has {len(view.features)}; "
        "it was written by newer definitions: deploy them to this reader"
    )


def record_decoder(view: FeatureView) -> Callable[[bytes], list[Any]]:
    """A converter from a ``_c:<view>`` record to the view's values in definition order
    (``None`` where null), built once per view.  Raises :class:`DecodingError` naming the
    view when the record is malformed or was written by a definition this one does not
    extend (a record with more features than the view)."""
    n_view = len(view.features)
    # The usual record (every feature present, written by this very definition) takes the
    # dense program; any other the sparse one.
    dense, sparse = _record_steps(view.features, merge_floats=True), _record_steps(view.features, merge_floats=False)
    bool_positions = tuple(i for i, f in enumerate(view.features) if f.dtype is DType.BOOL)
    everything = (1 << n_view) - 1

    def decode(raw: bytes) -> list[Any]:
        try:
            if raw[0] != RECORD_FORMAT:
                raise _unknown_format(view, raw)
            n, at = _read_varint(raw, 1)
            if n > n_view:
                raise _written_by_newer_definitions(view, n)
            width = (n + 7) >> 3
            presence = int.from_bytes(raw[at : at + width], "little")
            at += width
            # the bools among the record's n features
            n_bools = len(bool_positions) if n == n_view else bisect.bisect_left(bool_positions, n)
            bool_width = (n_bools + 7) >> 3
            bools = int.from_bytes(raw[at : at + bool_width], "little")
            at += bool_width
            out: list[Any] = [None] * n_view
            if n == n_view and presence == everything:
                at = _read_dense(dense, raw, at, out)
                for b, position in enumerate(bool_positions):
                    out[position] = bool(bools >> b & 1)
            else:
                at = _read_sparse(sparse, raw, at, n, presence, out)
                for b, position in enumerate(bool_positions[:n_bools]):
                    if presence >> position & 1:
                        out[position] = bool(bools >> b & 1)
            if at != len(raw):
                raise ValueError(f"{len(raw) - at} bytes left over")
            return out
        except DecodingError:
            raise
        except (IndexError, ValueError, struct.error, UnicodeDecodeError) as exc:
            raise DecodingError(
                f"view {view.name!r}: the record {raw[:64]!r} ({len(raw)} bytes) cannot be decoded: {exc}"
            ) from None

    return decode


def decode_record(view: FeatureView, raw: bytes) -> list[Any]:
    """The view's values from one ``_c:<view>`` record (see :func:`record_decoder`)."""
    return record_decoder(view)(raw)


# --- registry -------------------------------------------------------------------------


def view_spec(view: FeatureView) -> dict[str, Any]:
    """What decides how a view's values are decoded: published in the registry."""
    return {
        "view": view.name,
        "entity": view.entity.name,
        "id_dtype": view.entity.id_dtype,
        "kind": view.kind.value if hasattr(view.kind, "value") else str(view.kind),
        "packed": view.packed,
        # only when not the default: the fingerprints of text views stay what they were
        **({"layout": Layout(view.layout).value, "record_parts": view.record_part_count} if view.is_compact else {}),
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
        "layout": Layout(view.layout).value,
        "record_fields": [f.decode() for f in record_fields(view)] if view.is_compact else [],
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
