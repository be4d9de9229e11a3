"""Vectorised RESP building: one Arrow batch of rows -> the batch writer's command bytes.

Pure functions over pyarrow arrays (no I/O, no Spark).  For every row they produce
exactly the bytes of ``resp(c) for c in BatchWritePlan.commands(...)``
(featurestore.jobs.write.commands, the reference; pinned by tests/unit/writer/test_writer_resp_bulk.py):

* values are formatted by Arrow's casts, which give the same text as
  ``codec.format_float64`` / ``codec.format_float32`` / ``str(int)`` (float32 columns are
  cast as float32, so they get the shortest text that round-trips the float32);
* a null, or a NaN in a float column, leaves the field out of ``HSET`` and puts it into
  ``HDEL``;
* rows whose id or vector cannot be encoded are not encoded at all: they are returned as
  failures with the codec's own message.

Doing this per column with Arrow kernels instead of per row in Python is what lets the
writer get close to the server's pipelined ``HSET`` ceiling (docs/writer.md).
"""

from __future__ import annotations

import binascii
from dataclasses import dataclass
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from featurestore.jobs.write.commands import BatchWritePlan, resp
from featurestore.readers import codec
from featurestore.readers.definitions import DType, Feature
from featurestore.readers.errors import EncodingError
from featurestore.readers.wire import ASKING
from featurestore.readers.wire.topology import SLOTS

CRLF = b"\r\n"
_BIN = pa.binary()
_NULL_BIN = pa.scalar(None, _BIN)
# Characters an id may not contain (braces would break the Cluster hash tag).
_BAD_ID_CHARS = r"[{}\x00-\x1f\x7f]"


def bulk_arg(arg: bytes) -> bytes:
    """``$<len>\\r\\n<arg>\\r\\n``: one argument of a RESP command."""
    return b"$%d\r\n%s\r\n" % (len(arg), arg)


_PREFIX_TABLE_LIMIT = 1 << 16
_prefix_table = pa.array([b"$%d\r\n" % i for i in range(256)], _BIN)


def length_prefixes(values: pa.Array) -> pa.Array:
    """``$<len>\\r\\n`` of each value (null where null).

    Looked up in a table of prefixes rather than formatted per value: one ``take`` instead
    of two casts and a join argument, for the usual short values.
    """
    global _prefix_table
    lengths = pc.binary_length(values)
    longest = pc.max(lengths).as_py() or 0
    if longest >= _PREFIX_TABLE_LIMIT:
        return _join(b"$", pc.cast(lengths, pa.string()).cast(_BIN), CRLF)
    if longest >= len(_prefix_table):
        size = 1 << longest.bit_length()
        _prefix_table = pa.array([b"$%d\r\n" % i for i in range(size)], _BIN)
    return _prefix_table.take(lengths)


def bulk_args(values: pa.Array) -> pa.Array:
    """Each value as a RESP bulk string (``$<len>\\r\\n<value>\\r\\n``); null stays null."""
    return _join(length_prefixes(values), values, CRLF)


def _join(*parts: Any, skip_nulls: bool = False) -> pa.Array:
    return pc.binary_join_element_wise(*parts, b"", null_handling="skip" if skip_nulls else "emit_null")


def _as_binary(column: pa.Array) -> pa.Array:
    if pa.types.is_large_string(column.type) or pa.types.is_large_binary(column.type):
        column = column.cast(pa.string() if pa.types.is_large_string(column.type) else _BIN)
    return column.cast(_BIN)


def _masked(values: pa.Array, present: np.ndarray) -> pa.Array:
    """``values`` with null wherever ``present`` is False."""
    return pc.if_else(pa.array(present, pa.bool_()), values, pa.scalar(None, values.type))


def scalar_values(feature: Feature, column: pa.Array) -> pa.Array:
    """The stored text of a scalar feature column (int64, float64, float32, string, bool).

    Returns a binary array, null where the value is null (or NaN).
    """
    dtype = DType(feature.dtype)
    if dtype is DType.BOOL:
        text = pc.if_else(column.cast(pa.bool_()), b"1", b"0")
    elif dtype is DType.STRING:
        text = _as_binary(column)
    elif dtype is DType.INT64:
        text = pc.cast(column.cast(pa.int64()), pa.string())
    elif dtype is DType.FLOAT32:
        text = pc.cast(column.cast(pa.float32()), pa.string())  # float32 shortest text
    elif dtype is DType.FLOAT64:
        text = pc.cast(column.cast(pa.float64()), pa.string())
    else:  # pragma: no cover - vectors go through vector_values
        raise EncodingError(f"feature {feature.name!r}: {dtype.value} is not a scalar dtype")
    text = text.cast(_BIN)
    if pa.types.is_floating(column.type):
        is_nan = pc.is_nan(column)  # null where the value is null; the cast kept those null
        if pc.any(is_nan).as_py():
            text = pc.if_else(pc.fill_null(is_nan, False), _NULL_BIN, text)
    return text


def vector_values(feature: Feature, column: pa.Array) -> tuple[pa.Array, np.ndarray]:
    """Packed little-endian float32 bytes per row, and a mask of rows that cannot be encoded.

    A row cannot be encoded when its vector has the wrong length or a null element
    (the codec refuses both); those rows come back null and flagged.
    """
    assert feature.dim is not None
    n = len(column)
    if pa.types.is_fixed_size_list(column.type):
        column = column.cast(pa.list_(column.type.value_type))
    present = np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    lengths = pc.fill_null(pc.list_value_length(column), 0).to_numpy(zero_copy_only=False)
    bad = present & (lengths != feature.dim)
    flat = column.flatten()  # values of the valid lists only, slicing taken care of
    element_null = np.zeros(n, dtype=bool)
    if flat.null_count:
        row_of_value = np.repeat(np.arange(n), np.where(present, lengths, 0))
        element_null[row_of_value[~np.asarray(flat.is_valid().to_numpy(zero_copy_only=False), dtype=bool)]] = True
    bad |= element_null
    good = present & ~bad
    if bad.any():  # keep only the values of good rows
        keep = np.repeat(good[present], lengths[present])
        flat = flat.filter(pa.array(keep))
    data = np.asarray(pc.fill_null(flat, 0.0).to_numpy(zero_copy_only=False), dtype="<f4").tobytes()
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(np.where(good, 4 * feature.dim, 0), out=offsets[1:])
    validity = pa.array(good, pa.bool_()).buffers()[1] if not good.all() else None
    values = pa.Array.from_buffers(_BIN, n, [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data)])
    return values, bad


def packed_values(features: tuple[Feature, ...], columns: list[pa.Array]) -> pa.Array:
    """The ``_f32:<view>`` blob per row: the float32 features packed, NaN for null;
    null where every one of them is null (as ``codec.encode_packed``)."""
    n = len(columns[0])
    matrix = np.empty((n, len(features)), dtype="<f4")
    for j, column in enumerate(columns):
        matrix[:, j] = pc.fill_null(column.cast(pa.float32()), np.float32("nan")).to_numpy(zero_copy_only=False)
    any_present = np.asarray(~np.isnan(matrix).all(axis=1), dtype=bool)
    width = 4 * len(features)
    offsets = np.arange(n + 1, dtype=np.int32) * width
    blobs = pa.Array.from_buffers(_BIN, n, [None, pa.py_buffer(offsets.tobytes()), pa.py_buffer(matrix.tobytes())])
    return _masked(blobs, any_present) if not any_present.all() else blobs


# --- compact records ---------------------------------------------------------------------


def _fixed_width(data: np.ndarray, width: int, present: np.ndarray | None = None) -> pa.Array:
    """A binary array of ``width`` bytes per row from a C-contiguous buffer (null where not present)."""
    n = len(data) if data.ndim else 0
    offsets = np.arange(n + 1, dtype=np.int32) * width
    validity = None
    if present is not None and not present.all():
        validity = pa.array(present, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(_BIN, n, [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())])


def varints(values: np.ndarray, present: np.ndarray | None = None) -> pa.Array:
    """Unsigned LEB128 of each uint64 (``codec.encode_varint``), null where not present."""
    values = values.astype(np.uint64, copy=False)
    n = len(values)
    lengths = np.ones(n, dtype=np.int64)
    for k in range(1, 10):
        lengths += values >= np.uint64(1 << (7 * k))
    groups = np.empty((n, 10), dtype=np.uint8)
    for j in range(10):
        more = np.where(lengths > j + 1, 0x80, 0).astype(np.uint8)
        groups[:, j] = ((values >> np.uint64(7 * j)) & np.uint64(0x7F)).astype(np.uint8) | more
    keep = np.arange(10) < lengths[:, None]
    data = groups[keep]  # row-major: each row's bytes in order
    offsets = np.zeros(n + 1, dtype=np.int32)
    np.cumsum(lengths, out=offsets[1:])
    validity = None
    if present is not None and not present.all():
        validity = pa.array(present, pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(_BIN, n, [validity, pa.py_buffer(offsets.tobytes()), pa.py_buffer(data.tobytes())])


def _valid(column: pa.Array) -> np.ndarray:
    return np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)


def record_values(view: Any, columns: dict[str, pa.Array]) -> tuple[pa.Array, np.ndarray]:
    """The ``_c:<view>`` record of each row (exactly ``codec.encode_record``), and a mask
    of rows that cannot be encoded (a vector of the wrong length or with a null element)."""
    features = view.features
    n = len(columns[features[0].name])
    presence = np.zeros((n, len(features)), dtype=bool)
    bool_bits: list[np.ndarray] = []
    parts: list[pa.Array] = []
    bad = np.zeros(n, dtype=bool)
    for i, feature in enumerate(features):
        column = columns[feature.name]
        dtype = DType(feature.dtype)
        if dtype is DType.BOOL:
            present = _valid(column)
            bool_bits.append(np.asarray(pc.fill_null(column.cast(pa.bool_()), False).to_numpy(zero_copy_only=False)))
        elif dtype in (DType.FLOAT64, DType.FLOAT32):
            numbers = pc.fill_null(column.cast(pa.float64()), np.nan).to_numpy(zero_copy_only=False)
            present = ~np.isnan(numbers)
            with np.errstate(over="ignore"):  # beyond float32's range: inf, as the codec does
                raw = numbers.astype("<f8" if dtype is DType.FLOAT64 else "<f4")
            parts.append(_fixed_width(raw, raw.itemsize, present))
        elif dtype is DType.INT64:
            present = _valid(column)
            ints = pc.fill_null(column.cast(pa.int64()), 0).to_numpy(zero_copy_only=False).astype(np.int64)
            zigzag = ((ints << 1) ^ (ints >> 63)).view(np.uint64)
            parts.append(varints(zigzag, present))
        elif dtype is DType.STRING:
            text = _as_binary(column)
            present = _valid(column)
            lengths = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
            parts.append(_join(varints(lengths, present), text))
        else:
            blobs, bad_vectors = vector_values(feature, column)
            bad |= bad_vectors
            present = _valid(blobs)
            parts.append(blobs)
        presence[:, i] = present
    head = np.concatenate(
        [
            np.full((n, 1), codec.RECORD_FORMAT, dtype=np.uint8),
            np.tile(np.frombuffer(codec.encode_varint(len(features)), dtype=np.uint8), (n, 1)),
            np.packbits(presence, axis=1, bitorder="little"),
            *([np.packbits(np.stack(bool_bits, axis=1), axis=1, bitorder="little")] if bool_bits else []),
        ],
        axis=1,
    )
    head = np.ascontiguousarray(head)
    records = _join(_fixed_width(head, head.shape[1]), *parts, skip_nulls=True)
    return records, bad


def split_records(records: pa.Array, parts: int) -> list[pa.Array]:
    """Each record cut as ``codec.split_record`` cuts it: ``parts`` arrays, the k-th holding
    bytes ``[k * c, (k + 1) * c)`` of each record, ``c = ceil(len / parts)``.  No nulls."""
    if parts == 1:
        return [records]
    n = len(records)
    offsets = np.frombuffer(records.buffers()[1], dtype=np.int32, count=n + 1, offset=records.offset * 4)
    offsets = offsets.astype(np.int64)
    data_buffer = records.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(0, np.uint8)
    starts, ends = offsets[:-1], offsets[1:]
    size = -(-(ends - starts) // parts)
    out = []
    for k in range(parts):
        first = np.minimum(starts + k * size, ends)
        lengths = np.minimum(first + size, ends) - first
        part_offsets = np.zeros(n + 1, dtype=np.int64)
        np.cumsum(lengths, out=part_offsets[1:])
        picked = data[np.repeat(first - part_offsets[:-1], lengths) + np.arange(part_offsets[-1])]
        buffers = [None, pa.py_buffer(part_offsets.astype(np.int32).tobytes()), pa.py_buffer(picked.tobytes())]
        out.append(pa.Array.from_buffers(_BIN, n, buffers))
    return out


def id_texts(plan: BatchWritePlan, column: pa.Array) -> tuple[pa.Array, list[tuple[int, str]]]:
    """The id part of each row's key, and ``(row, message)`` for ids that cannot be encoded.

    Invalid rows come back null.  Messages are the codec's (``codec.encode_id``).
    """
    entity = plan.view.entity
    if entity.id_dtype == "int64":
        text = pc.cast(column.cast(pa.int64()), pa.string()).cast(_BIN)
        bad = ~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
    else:
        strings = column.cast(pa.string())
        text = strings.cast(_BIN)
        lengths = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False)
        forbidden = pc.fill_null(pc.match_substring_regex(strings, _BAD_ID_CHARS), True)
        bad = (
            ~np.asarray(column.is_valid().to_numpy(zero_copy_only=False), dtype=bool)
            | (lengths == 0)
            | (lengths > codec.MAX_ID_BYTES)
            | np.asarray(forbidden.to_numpy(zero_copy_only=False), dtype=bool)
        )
    failures: list[tuple[int, str]] = []
    if bad.any():
        for row in np.flatnonzero(bad).tolist():
            value = column[row].as_py()
            if value is None:
                message = f"entity {entity.name!r}: null id in join key column {entity.join_key!r}"
            else:
                try:
                    codec.encode_id(entity, value)
                    message = f"entity {entity.name!r}: id {value!r} cannot be encoded"  # pragma: no cover
                except EncodingError as exc:
                    message = str(exc)
            failures.append((row, f"view {plan.view.name!r}: {message}"))
        text = _masked(text, ~bad)
    return text, failures


# --- Cluster slots -------------------------------------------------------------------

_CRC16_TABLE = np.array([binascii.crc_hqx(bytes([i]), 0) for i in range(256)], dtype=np.uint16)


def key_slots(ids: pa.Array) -> np.ndarray:
    """Cluster hash slot of each key ``fs:<entity>:{<id>}``: CRC16 of the id (the hash tag).

    Vectorised over the id bytes, column by column (ids are short); equals
    ``redis.crc.key_slot(key)`` for every valid key.  ``ids`` must have no nulls.
    """
    ids = _as_binary(ids)
    n = len(ids)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    offsets = np.frombuffer(ids.buffers()[1], dtype=np.int32, count=n + 1, offset=ids.offset * 4)
    data_buffer = ids.buffers()[2]
    data = np.frombuffer(data_buffer, dtype=np.uint8) if data_buffer is not None else np.zeros(1, np.uint8)
    starts, lengths = offsets[:-1].astype(np.int64), np.diff(offsets).astype(np.int64)
    crc = np.zeros(n, dtype=np.uint16)
    for j in range(int(lengths.max())):
        live = lengths > j
        byte = data[np.where(live, starts + j, 0)]
        updated = (crc << np.uint16(8)) ^ _CRC16_TABLE[((crc >> np.uint16(8)) ^ byte) & 0xFF]
        crc = np.where(live, updated, crc)
    return crc.astype(np.int64) % SLOTS


# --- whole rows ------------------------------------------------------------------------


@dataclass(frozen=True)
class EncodedRows:
    """The commands of the encodable rows of one batch.

    ``rows[i]`` is the batch row of the i-th encoded row, ``ids[i]`` its id text,
    ``payload[i]`` the RESP of all its commands (HSET, HDEL if a feature is null, EXPIRE,
    HEXPIRE if the view's TTL is shorter than the key's), ``replies[i]`` how many
    replies they get and ``lines[i]`` how many RESP lines those replies take when none
    is an error (HEXPIRE answers an array: one line per field plus its header).
    ``failures`` are ``(batch row, message)`` of rows not encoded.
    """

    rows: np.ndarray
    ids: pa.Array
    payload: pa.Array
    replies: np.ndarray
    lines: np.ndarray
    failures: tuple[tuple[int, str], ...]

    def __len__(self) -> int:
        return len(self.rows)


def payload_bytes(payload: pa.Array, indexes: np.ndarray | None = None) -> pa.Buffer:
    """The concatenated bytes of the chosen rows' payloads (all rows if ``indexes`` is None)."""
    if indexes is not None:
        payload = payload.take(pa.array(indexes, pa.int64()))
    n = len(payload)
    if n == 0:
        return pa.py_buffer(b"")
    offsets = np.frombuffer(payload.buffers()[1], dtype=np.int32, count=n + 1, offset=payload.offset * 4)
    start, end = int(offsets[0]), int(offsets[-1])
    data = payload.buffers()[2]
    assert data is not None
    return data.slice(start, end - start)


def with_asking(commands: list[tuple[bytes, ...]]) -> bytes:
    """RESP of ``commands``, each preceded by ``ASKING`` (the answer to an ASK redirect)."""
    return b"".join(ASKING + resp(command) for command in commands)


class BatchEncoder:
    """Turns Arrow batches of one batch view into RESP, per the view's BatchWritePlan.

    Everything that does not depend on the row (argument headers of field names, the
    TTLs, the command names) is computed once here.  Each row's commands are assembled
    in one ``binary_join_element_wise`` over all the pieces (nulls skipped), because
    every extra pass over the bytes costs about as much as formatting a value.
    """

    def __init__(self, plan: BatchWritePlan) -> None:
        self.plan = plan
        view = plan.view
        packed_names = {f.name for f in view.packed_features}
        self.text_features = tuple(f for f in view.features if f.name not in packed_names)
        self.packed_features = view.packed_features
        self.key_head = codec.key_prefix(view.entity)
        self.name_args = {f.name: bulk_arg(f.name.encode()) for f in view.features}
        self.expire_tail = bulk_arg(str(plan.key_ttl).encode())
        self.hexpire_ttl = bulk_arg(str(plan.field_ttl).encode()) if plan.field_ttl is not None else None
        self.packed_arg = bulk_arg(plan.packed) if plan.packed is not None else None
        self.record_args = tuple(bulk_arg(name) for name in plan.record)
        if plan.record:
            self.text_features = ()
        self.ts_name_arg = bulk_arg(plan.ts_field)

    @property
    def columns(self) -> tuple[str, ...]:
        """The input columns, in order: the join key, then the view's features."""
        return (self.plan.view.entity.join_key, *self.plan.view.feature_names)

    def reference_commands(self, batch: pa.RecordBatch, row: int, computed_at_ms: int) -> list[tuple[bytes, ...]]:
        """The commands of one row built by the reference (``BatchWritePlan.commands``)."""
        values = batch.slice(row, 1).to_pylist()[0]
        return self.plan.commands(values[self.plan.view.entity.join_key], values, computed_at_ms)

    def encode(self, batch: pa.RecordBatch, computed_at_ms: int) -> EncodedRows:
        """The RESP bytes of every row of ``batch`` (columns by name, see :attr:`columns`)."""
        view = self.plan.view
        n = batch.num_rows
        ids, failures = id_texts(self.plan, batch.column(view.entity.join_key))
        bad = np.zeros(n, dtype=bool)
        for row, _ in failures:
            bad[row] = True
        values: list[tuple[bytes, pa.Array]] = []  # (name argument, value bytes)
        for feature in self.text_features:
            column = batch.column(feature.name)
            if DType(feature.dtype) is DType.VECTOR:
                text, bad_vectors = vector_values(feature, column)
                for row in np.flatnonzero(bad_vectors & ~bad).tolist():
                    entity_id = batch.column(view.entity.join_key)[row].as_py()
                    failures.append((row, _vector_message(view.name, entity_id, feature, column[row].as_py())))
                bad |= bad_vectors
            else:
                text = scalar_values(feature, column)
            values.append((self.name_args[feature.name], text))
        if self.record_args:
            columns = {f.name: batch.column(f.name) for f in view.features}
            records, bad_vectors = record_values(view, columns)
            for row in np.flatnonzero(bad_vectors & ~bad).tolist():
                entity_id = batch.column(view.entity.join_key)[row].as_py()
                culprit = next(
                    f for f in view.features if f.dim and not _vector_ok(f, batch.column(f.name)[row].as_py())
                )
                value = columns[culprit.name][row].as_py()
                failures.append((row, _vector_message(view.name, entity_id, culprit, value)))
            bad |= bad_vectors
            values += zip(self.record_args, split_records(records, len(self.record_args)), strict=True)
        if self.packed_arg is not None:
            blobs = packed_values(self.packed_features, [batch.column(f.name) for f in self.packed_features])
            values.append((self.packed_arg, blobs))
        keep = np.flatnonzero(~bad)
        if len(keep) < n:
            selector = pa.array(keep, pa.int64())
            ids = ids.take(selector)
            values = [(name, text.take(selector)) for name, text in values]
        payload, replies, lines = self._payload(ids, values, computed_at_ms)
        return EncodedRows(
            rows=keep, ids=ids, payload=payload, replies=replies, lines=lines, failures=tuple(sorted(failures))
        )

    def _payload(
        self, ids: pa.Array, values: list[tuple[bytes, pa.Array]], computed_at_ms: int
    ) -> tuple[pa.Array, np.ndarray, np.ndarray]:
        n = len(ids)
        if n == 0:
            return pa.array([], _BIN), np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        key_arg = bulk_args(_join(self.key_head, ids, b"}"))
        present = np.zeros(n, dtype=np.int64)
        pairs: list[Any] = []  # pieces of "$<len>\r\n<name>\r\n$<len>\r\n<value>\r\n"; null if null
        names: list[Any] = []  # the name argument where present (HEXPIRE), else null
        deletes: list[Any] = []  # the name argument where null (HDEL), else null
        for name_arg, text in values:
            if text.null_count == 0:  # the pieces go straight into the one join
                pairs += [name_arg, length_prefixes(text), text, CRLF]
                present += 1
                names.append(name_arg)
                continue
            pairs.append(_join(name_arg, length_prefixes(text), text, CRLF))
            mask = text.is_valid()
            present += np.asarray(mask.to_numpy(zero_copy_only=False), dtype=np.int64)
            names.append(pc.if_else(mask, pa.scalar(name_arg, _BIN), _NULL_BIN))
            deletes.append(pc.if_else(mask, _NULL_BIN, pa.scalar(name_arg, _BIN)))
        absent = len(values) - present
        ts_pair = self.ts_name_arg + bulk_arg(codec.encode_ts(computed_at_ms))
        # HSET key f v ... _ts:<view> ts: 2 + 2*present + 2 arguments
        pieces: list[Any] = [b"*", _count_piece(4 + 2 * present), b"\r\n$4\r\nHSET\r\n", key_arg, *pairs, ts_pair]
        replies = np.full(n, 2, dtype=np.int64)
        extra_lines: Any = 0  # HEXPIRE's array reply: a line per field after its header
        if deletes:
            some = absent > 0
            head = _join(b"*", _count_text(2 + absent), b"\r\n$4\r\nHDEL\r\n", key_arg)
            pieces += [_masked(head, some), *deletes]  # the deletes are null where the head is
            replies += some
        pieces += [b"*3\r\n$6\r\nEXPIRE\r\n", key_arg, self.expire_tail]
        if self.hexpire_ttl is not None:
            written = present + 1  # and the _ts field
            count = _count_piece(written)
            pieces += [
                b"*", _count_piece(5 + written), b"\r\n$7\r\nHEXPIRE\r\n", key_arg, self.hexpire_ttl,
                b"$6\r\nFIELDS\r\n", bulk_arg(count) if isinstance(count, bytes) else bulk_args(count),
                *names, self.ts_name_arg,
            ]  # fmt: skip
            replies += 1
            extra_lines = written
        lines = replies + extra_lines
        return _join(*_merge_constants(pieces), skip_nulls=True), replies, lines


def _merge_constants(pieces: list[Any]) -> list[Any]:
    """Adjacent constant pieces as one: each argument of the join costs a pass per row."""
    merged: list[Any] = []
    for piece in pieces:
        if isinstance(piece, bytes) and merged and isinstance(merged[-1], bytes):
            merged[-1] += piece
        else:
            merged.append(piece)
    return merged


def _count_piece(counts: np.ndarray) -> bytes | pa.Array:
    """Decimal text of per-row counts: one constant when every row has the same count."""
    if len(counts) and counts.min() == counts.max():
        return str(int(counts[0])).encode()
    return _count_text(counts)


def _count_text(counts: np.ndarray) -> pa.Array:
    return pc.cast(pa.array(counts, pa.int64()), pa.string()).cast(_BIN)


def _vector_ok(feature: Feature, value: Any) -> bool:
    try:
        codec.encode_value(feature, value)
    except EncodingError:
        return False
    return True


def _vector_message(view: str, entity_id: Any, feature: Feature, value: Any) -> str:
    where = f"view {view!r}, id {entity_id!r}"
    try:
        codec.encode_value(feature, value)
    except EncodingError as exc:
        return f"{where}: {exc}"
    return f"{where}: feature {feature.name!r}: vector {value!r} cannot be encoded"  # pragma: no cover
