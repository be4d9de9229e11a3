"""What a streaming write sends: pure logic, no I/O.

* :func:`event_time_ms` — an event time (``datetime`` or epoch ms) as epoch milliseconds;
* :func:`value_encoder` — the codec's bytes for one feature, fast for plain Python values;
* :class:`StreamingWritePlan` — everything about a view's writes that does not depend on
  the event: its features grouped by TTL, and for each event the commands (unguarded:
  ``HSETEX``, or ``MULTI`` ``HSET`` + ``HEXPIRE`` for Redis 7.4) or the one guarded ``FCALL``
  of :mod:`.guard`, as RESP bytes;
* :class:`WriteStats` — what a call wrote.

The writer (:mod:`.writer`) sends these bytes through the one wire; the golden tests
(tests/unit/streaming/test_streaming_plan.py) pin them.
"""

from __future__ import annotations

import struct
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from functools import partial
from typing import Any

import hiredis

from featurestore.readers import codec
from featurestore.readers.definitions import Catalog, DType, Feature, FeatureView
from featurestore.readers.errors import ConfigurationError, EncodingError, FeatureNotFoundError

from .guard import GUARD_FUNCTION

__all__ = [
    "HSETEX",
    "HSET_HEXPIRE",
    "METHODS",
    "Command",
    "Encoder",
    "EventTime",
    "StreamingWritePlan",
    "WriteStats",
    "event_time_ms",
    "float32_text",
    "float64_text",
    "resp",
    "value_encoder",
]

Command = tuple[bytes, ...]
EventTime = datetime | int | None

# The write methods; each name is also the guard function's ``method`` argument.
HSETEX = "hsetex"  # Redis >= 8.0, Valkey >= 9.0: value and TTL in one command
HSET_HEXPIRE = "hset_hexpire"  # Redis 7.4: HSET then HEXPIRE, made atomic by MULTI or the function
METHODS = (HSETEX, HSET_HEXPIRE)

# Event times before this are almost certainly epoch *seconds* passed as milliseconds.
_MIN_EVENT_MS = 946_684_800_000  # 2000-01-01T00:00:00Z
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_INT64_MIN, _INT64_MAX = -(2**63), 2**63 - 1


def event_time_ms(event_time: EventTime, now_ms: int | None = None) -> int:
    """An event time as epoch milliseconds.

    ``datetime`` (a naive one is taken as UTC) or ``int`` epoch milliseconds (a Kafka
    record timestamp); ``None`` means now.  Times before 2000 are refused: they are
    almost always epoch seconds passed where milliseconds are expected.
    """
    if event_time is None:
        return now_ms if now_ms is not None else int(time.time() * 1000)
    if isinstance(event_time, datetime):
        aware = event_time if event_time.tzinfo is not None else event_time.replace(tzinfo=UTC)
        ms = (aware - _EPOCH) // timedelta(milliseconds=1)
    elif isinstance(event_time, bool) or not hasattr(event_time, "__index__"):
        raise EncodingError(
            f"event_time must be a datetime or epoch milliseconds (int), got {event_time!r} "
            f"({type(event_time).__name__})"
        )
    else:
        ms = event_time.__index__()
    if ms < _MIN_EVENT_MS:
        raise EncodingError(
            f"event_time {event_time!r} is before 2000-01-01 as epoch milliseconds; "
            "pass milliseconds (seconds * 1000) or a datetime"
        )
    return ms


def resp(command: Sequence[bytes]) -> bytes:
    """The RESP encoding of one command (same bytes as ``featurestore.jobs.write.commands.resp``).

    hiredis packs it in C: about twice as fast as joining formatted parts in Python, on
    the per-event path (the arguments are bytes, which it copies as they are)."""
    packed: bytes = hiredis.pack_command(tuple(command))  # type: ignore[arg-type]  # its stub types a 1-tuple
    return packed


# --- fast float text: the codec's bytes, pinned by tests/unit/streaming/test_fast_floats.py -----

_F32 = struct.Struct("<f")
_F32_SPECS = ("%.5e", "%.6e", "%.7e", "%.8e")  # 1-6 significant digits at once, then 7, 8, 9


def float64_text(value: float) -> bytes | None:
    """``codec.format_float64(value)`` as bytes for a plain ``float`` in the common range,
    ``None`` for anything else (the caller then asks the codec).

    ``repr`` is already the shortest round-trip text; for 1e-4 <= |x| < 1e10 (and zero)
    it is positional, as the codec's layout (exponents -7 < e < 10), and differs only by
    the ``.0`` of integral values.
    """
    text = repr(value)
    if "e" in text or "n" in text or not -1e10 < value < 1e10:  # scientific, inf, nan: the codec
        return None
    if text.endswith(".0"):
        text = text[:-2]
    return text.encode()


def float32_text(value: float) -> bytes | None:
    """``codec.format_float32(value)`` as bytes for a finite, non-zero float32, else ``None``.

    The codec tries 1, 2, ... 9 significant digits until the text round-trips through
    float32.  Here one try covers 1 to 6: if the shortest round-trip text has p <= 6
    digits, the value rounded to 6 digits is that text padded with zeros (float32's
    spacing, < 1.2e-7 relative, is far below a 6-digit decimal's, >= 1e-6), so it also
    round-trips, and stripping the zeros gives the codec's digits.  Then 7, 8, 9 as the codec.
    """
    try:
        x32 = _F32.unpack(_F32.pack(value))[0]
    except OverflowError:
        return None
    size = abs(x32)
    if size == 0.0 or size == float("inf"):
        return None
    for spec in _F32_SPECS:
        text = spec % size
        try:
            if _F32.unpack(_F32.pack(float(text)))[0] == size:
                break
        except OverflowError:  # near FLT_MAX: the codec's own loop handles it
            return None
    mantissa, _, exp = text.partition("e")
    digits = mantissa.replace(".", "").rstrip("0") or "0"
    exponent = int(exp)
    sign = "-" if x32 < 0 else ""
    if -7 < exponent < 10:
        if exponent >= 0:
            whole = digits[: exponent + 1].ljust(exponent + 1, "0")
            fraction = digits[exponent + 1 :]
            return (sign + whole + ("." + fraction if fraction else "")).encode()
        return (sign + "0." + "0" * (-exponent - 1) + digits).encode()
    return None  # scientific layout: rare, the codec's


Encoder = Callable[[Any], "bytes | None"]


def value_encoder(feature: Feature) -> Encoder:
    """``codec.encode_value`` for one feature, with a shortcut for the plain Python types.

    The shortcut produces the codec's bytes through the codec's own formatters (pinned
    by tests/unit/streaming/test_streaming_plan.py); anything else — numpy scalars, NaN,
    out-of-range numbers, wrong types — takes ``codec.encode_value`` itself, errors
    included.  It saves the per-value dtype dispatch on the request-rate path.
    """
    slow = partial(codec.encode_value, feature)
    dtype = DType(feature.dtype)
    if dtype is DType.INT64:

        def encode_int(value: Any) -> bytes | None:
            if type(value) is int and _INT64_MIN <= value <= _INT64_MAX:
                return b"%d" % value
            return slow(value)

        return encode_int
    if dtype is DType.FLOAT32 or dtype is DType.FLOAT64:
        fast = float32_text if dtype is DType.FLOAT32 else float64_text

        def encode_float(value: Any) -> bytes | None:
            if type(value) is float and value == value:  # not NaN (NaN is null)
                text = fast(value)
                if text is not None:
                    return text
            return slow(value)  # the codec: zero, inf, scientific, numpy scalars, errors

        return encode_float
    if dtype is DType.STRING:

        def encode_str(value: Any) -> bytes | None:
            if type(value) is str:
                try:
                    return value.encode()
                except UnicodeEncodeError:
                    pass
            return slow(value)

        return encode_str
    if dtype is DType.BOOL:

        def encode_bool(value: Any) -> bytes | None:
            if value is True:
                return b"1"
            if value is False:
                return b"0"
            return slow(value)

        return encode_bool
    return slow


@dataclass(frozen=True)
class StreamingWritePlan:
    """Everything about a streaming view's writes that does not depend on the event.

    ``groups`` holds the view's features by TTL, shortest first; ``_ts:<view>`` is
    written with the last (longest) group, so it expires with the longest-lived feature.
    """

    view: FeatureView
    groups: tuple[tuple[int, tuple[Feature, ...]], ...]
    ts_field: bytes
    ts_ttl: int
    names: frozenset[str]
    others: Mapping[str, str]  # feature -> "batch view 'x'", for the entity's other views (messages)
    # per group: (ttl, ((feature name, field bytes, encoder), ...)), built from `groups`
    encoders: tuple[tuple[int, tuple[tuple[str, bytes, Encoder], ...]], ...] = field(
        default=(), compare=False, repr=False
    )

    def __post_init__(self) -> None:
        if not self.encoders:
            built = tuple(
                (ttl, tuple((f.name, f.name.encode(), value_encoder(f)) for f in features))
                for ttl, features in self.groups
            )
            object.__setattr__(self, "encoders", built)

    @classmethod
    def build(cls, view: FeatureView, catalog: Catalog | None = None) -> StreamingWritePlan:
        """The plan of ``view``; refuses a batch view (the batch job owns those).

        ``catalog`` only sharpens error messages: a name of another view of the entity
        is refused either way, with the catalogue the message names its view.
        """
        if view.is_batch:
            raise ConfigurationError(
                f"view {view.name!r} is a batch view: the batch job writes it (featurestore materialize); "
                "a StreamingWriter only writes streaming views"
            )
        by_ttl: dict[int, list[Feature]] = {}
        for feature in view.features:
            by_ttl.setdefault(view.feature_ttl(feature), []).append(feature)
        groups = tuple((ttl, tuple(by_ttl[ttl])) for ttl in sorted(by_ttl))
        others: dict[str, str] = {}
        if catalog is not None:
            for other in catalog.views_of(view.entity.name):
                if other.name != view.name:
                    described = f"{'batch' if other.is_batch else 'streaming'} view {other.name!r}"
                    others.update(dict.fromkeys(other.feature_names, described))
        return cls(
            view=view,
            groups=groups,
            ts_field=codec.ts_field(view),
            ts_ttl=view.longest_ttl,
            names=frozenset(view.feature_names),
            others=others,
        )

    def check_names(self, names: Iterable[str]) -> None:
        """Refuse any name that is not a feature of this view (batch-owned ones by name)."""
        for name in names:
            if name in self.names:
                continue
            owner = self.others.get(name)
            if owner is not None:
                why = (
                    "batch-owned features are written by the batch job only"
                    if owner.startswith("batch")
                    else "write it with that view's StreamingWriter"
                )
                raise ConfigurationError(
                    f"streaming view {self.view.name!r} cannot write feature {name!r}: it belongs to {owner}; {why}"
                )
            raise FeatureNotFoundError(
                f"streaming view {self.view.name!r} has no feature {name!r} "
                f"(it has: {', '.join(self.view.feature_names)})"
            )

    def encode(self, values: Mapping[str, Any]) -> tuple[list[tuple[int, list[bytes]]], list[bytes]]:
        """``([(ttl, [field, value, ...]), ...], [null fields])`` for one event.

        Features absent from ``values`` are left as they are (a partial update); a
        ``None`` (or NaN) value deletes its field.  Empty groups are dropped except the
        last (longest TTL) one, which the callers complete with ``_ts:<view>``.
        """
        if not values.keys() <= self.names:
            self.check_names(values)
        groups: list[tuple[int, list[bytes]]] = []
        deletes: list[bytes] = []
        for ttl, features in self.encoders:
            pairs: list[bytes] = []
            for name, name_bytes, encode in features:
                if name not in values:
                    continue
                encoded = encode(values[name])
                if encoded is None:
                    deletes.append(name_bytes)
                else:
                    pairs += [name_bytes, encoded]
            if pairs or ttl == self.ts_ttl:
                groups.append((ttl, pairs))
        return groups, deletes

    def commands(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str = HSETEX
    ) -> list[Command]:
        """The unguarded commands for one event (``guard=False``): last write wins."""
        key = codec.entity_key(self.view.entity, entity_id)
        return self._commands(key, values, event_ms, method)

    def _commands(self, key: bytes, values: Mapping[str, Any], event_ms: int, method: str) -> list[Command]:
        groups, deletes = self.encode(values)
        groups[-1][1].extend((self.ts_field, codec.encode_ts(event_ms)))
        out: list[Command] = []
        if method == HSETEX:
            for ttl, pairs in groups:
                out.append((b"HSETEX", key, b"EX", b"%d" % ttl, b"FIELDS", b"%d" % (len(pairs) // 2), *pairs))
            if deletes:
                out.append((b"HDEL", key, *deletes))
            return out
        # Redis 7.4: HSET clears a field's TTL, so HSET and HEXPIRE must never be seen apart.
        out.append((b"MULTI",))
        out.append((b"HSET", key, *[p for _, pairs in groups for p in pairs]))
        for ttl, pairs in groups:
            names = pairs[0::2]
            out.append((b"HEXPIRE", key, b"%d" % ttl, b"FIELDS", b"%d" % len(names), *names))
        if deletes:
            out.append((b"HDEL", key, *deletes))
        out.append((b"EXEC",))
        return out

    def guarded_command(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str = HSETEX
    ) -> Command:
        """The one ``FCALL`` that writes the event unless a newer one is stored."""
        key = codec.entity_key(self.view.entity, entity_id)
        return self._guarded(key, values, event_ms, method)

    def _guarded(self, key: bytes, values: Mapping[str, Any], event_ms: int, method: str) -> Command:
        groups, deletes = self.encode(values)
        ts = codec.encode_ts(event_ms)
        groups[-1][1].extend((self.ts_field, ts))
        args: list[bytes] = [b"FCALL", GUARD_FUNCTION.encode(), b"1", key, self.ts_field, ts, method.encode()]
        args.append(b"%d" % len(groups))
        for ttl, pairs in groups:
            args += [b"%d" % ttl, b"%d" % (len(pairs) // 2), *pairs]
        args.append(b"%d" % len(deletes))
        args += deletes
        return tuple(args)

    def unit(
        self, entity_id: object, values: Mapping[str, Any], event_ms: int, method: str, guard: bool
    ) -> tuple[bytes, list[bytes]]:
        """``(key, [RESP of each command])`` for one event: one unit of the wire's round trip."""
        key = codec.entity_key(self.view.entity, entity_id)
        if guard:
            return key, [resp(self._guarded(key, values, event_ms, method))]
        return key, [resp(c) for c in self._commands(key, values, event_ms, method)]


@dataclass
class WriteStats:
    """What a call wrote: events written, and events skipped as older than the stored one."""

    written: int = 0
    skipped: int = 0

    def __add__(self, other: WriteStats) -> WriteStats:
        return WriteStats(self.written + other.written, self.skipped + other.skipped)

    @property
    def events(self) -> int:
        return self.written + self.skipped
