"""The semantics of declared streaming features, and the per-entity state that computes them (pure).

No pyspark and no I/O: the generic streaming job wraps these functions in a Spark
``StatefulProcessor`` (one state row per entity, event-time timers), the tests run them
directly, and :func:`reference` computes the same values by brute force from the written
semantics (docs/streaming.md, "Windows"), as the independent expected result.

* :class:`ViewProgram` — a ``stream=`` view compiled to plain, picklable data.
* :class:`EntityState` — what one entity's state holds; ``to_row``/``from_row`` as
  ``(as_of, versioned JSON)``.
* :func:`fold` — a micro-batch of an entity's events into its state; the :class:`Emission`
  says which fields to write (``None`` deletes one) with ``_ts`` = ``as_of``.
* :func:`expire` — a fired event-time timer: a bucket left the window (or the state is
  forgotten).  :func:`due_timers` / :func:`register_timers` — the timers the state needs.
* :func:`reference` — every feature's value at an as-of, straight from all the events.

Events are mappings of event field -> typed value, the time field as epoch milliseconds
(what :func:`featurestore.jobs.streaming.events.parse_event` returns).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from featurestore.readers.definitions import Aggregate, FeatureView, LastValue, SecondsSincePrevious

__all__ = [
    "STATE_VERSION",
    "AggSpec",
    "Emission",
    "EntityState",
    "GapSpec",
    "LastSpec",
    "ViewProgram",
    "due_timers",
    "expire",
    "fold",
    "reference",
    "register_timers",
]

# The version of EntityState's JSON body: a state written by another version is refused
# (a changed definition starts a new checkpoint anyway: ViewProgram.fingerprint).
STATE_VERSION = 1
_MS = 1000

# One bucket of an aggregate: [n, sum, min, max].  n counts the bucket's matching events
# (count()) or non-null values (every other fn); sum is an int for a long column and, for a
# double column, the exact partial sums (Shewchuk), so sums and means are exact whatever
# the arrival order or the micro-batching.
Bucket = list[Any]


@dataclass(frozen=True)
class AggSpec:
    """One :class:`~featurestore.readers.Aggregate`, in milliseconds."""

    name: str
    fn: str
    column: str | None
    column_type: str | None
    window_ms: int
    slide_ms: int
    where: tuple[tuple[str, Any], ...]

    def window_start(self, as_of: int) -> int:
        """The first event time inside the window at ``as_of`` (the window ends after ``as_of``'s bucket)."""
        return (as_of // self.slide_ms) * self.slide_ms + self.slide_ms - self.window_ms


@dataclass(frozen=True)
class LastSpec:
    """One :class:`~featurestore.readers.LastValue`."""

    name: str
    column: str
    column_type: str
    where: tuple[tuple[str, Any], ...]


@dataclass(frozen=True)
class GapSpec:
    """One :class:`~featurestore.readers.SecondsSincePrevious`: null once the gap reaches ``ttl_ms``."""

    name: str
    ttl_ms: int


@dataclass(frozen=True)
class ViewProgram:
    """A ``stream=`` view compiled to plain data (no callables): what the job ships to executors.

    ``horizon_ms``: how long the state keeps an entity whose windows are all empty (the
    longest TTL of its last values and gaps); then it forgets it (docs/streaming.md).
    ``fingerprint``: changes whenever the state or its meaning would (stream, computations),
    so the job keeps one checkpoint per fingerprint.
    """

    view: str
    id_field: str
    time_field: str
    lateness_ms: int
    fingerprint: str
    features: tuple[str, ...]
    aggregates: tuple[AggSpec, ...]
    last_values: tuple[LastSpec, ...]
    gaps: tuple[GapSpec, ...]
    horizon_ms: int
    event_fields: tuple[tuple[str, str], ...]

    @classmethod
    def of(cls, view: FeatureView) -> ViewProgram:
        """Compile ``view`` (which must have ``stream=``)."""
        # Imported here, not at the top: Spark pickles this module by value, and a global reference
        # would make every Python worker import featurestore.readers (redis-py, ...) to unpickle it.
        from featurestore.readers.definitions import Aggregate, LastValue, SecondsSincePrevious
        from featurestore.readers.errors import DefinitionError

        stream = view.stream
        if stream is None:
            raise DefinitionError(
                f"view {view.name!r} has no stream=: it is written by a hook (StreamingWriter), "
                "not computed from a topic"
            )
        types = stream.types
        aggregates: list[AggSpec] = []
        last_values: list[LastSpec] = []
        gaps: list[GapSpec] = []
        for name, computation in view.computations:
            if isinstance(computation, Aggregate):
                aggregates.append(_agg_spec(name, computation, types))
            elif isinstance(computation, LastValue):
                where = _where(computation.where)
                last_values.append(LastSpec(name, computation.column, types[computation.column], where))
            else:
                assert isinstance(computation, SecondsSincePrevious)
                gaps.append(GapSpec(name, view.feature_ttl(view.feature(name)) * _MS))
        last_like = [
            view.feature_ttl(view.feature(name)) for name in (*(s.name for s in last_values), *(g.name for g in gaps))
        ]
        return cls(
            view=view.name,
            id_field=stream.id_field,
            time_field=stream.time_field,
            lateness_ms=stream.allowed_lateness_seconds * _MS,
            fingerprint=_fingerprint(view),
            features=view.feature_names,
            aggregates=tuple(aggregates),
            last_values=tuple(last_values),
            gaps=tuple(gaps),
            horizon_ms=max(last_like, default=0) * _MS,
            event_fields=stream.fields,
        )

    @property
    def needed_fields(self) -> dict[str, str]:
        """The event fields the computations read (id and time fields included), with their types."""
        needed = {self.id_field, self.time_field}
        for spec in self.aggregates:
            needed.update(name for name, _ in spec.where)
            if spec.column is not None:
                needed.add(spec.column)
        for last in self.last_values:
            needed.update(name for name, _ in last.where)
            needed.add(last.column)
        return {name: kind for name, kind in self.event_fields if name in needed}


def _where(where: Mapping[str, Any] | None) -> tuple[tuple[str, Any], ...]:
    return tuple(sorted((where or {}).items()))


def _agg_spec(name: str, agg: Aggregate, types: Mapping[str, str]) -> AggSpec:
    column_type = types[agg.column] if agg.column is not None else None
    window_ms, slide_ms = agg.window_seconds * _MS, agg.slide_seconds * _MS
    return AggSpec(name, agg.fn, agg.column, column_type, window_ms, slide_ms, _where(agg.where))


def _fingerprint(view: FeatureView) -> str:
    """sha256 of what the state and its meaning depend on: the stream and the computations."""
    stream = view.stream
    assert stream is not None
    described = {
        "state_version": STATE_VERSION,
        "view": view.name,
        "topic": stream.topic,
        "schema": [list(f) for f in stream.fields],
        "id_field": stream.id_field,
        "time_field": stream.time_field,
        "allowed_lateness": stream.allowed_lateness_seconds,
        "computations": [_described(c) for _, c in view.computations],
    }
    canonical = json.dumps(described, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


def _described(computation: Aggregate | LastValue | SecondsSincePrevious) -> dict[str, Any]:
    from featurestore.readers.definitions import Aggregate, LastValue  # not global: see ViewProgram.of

    if isinstance(computation, Aggregate):
        return {
            "aggregate": computation.name,
            "fn": computation.fn,
            "column": computation.column,
            "window": computation.window_seconds,
            "slide": computation.slide_seconds,
            "where": [list(w) for w in _where(computation.where)],
        }
    if isinstance(computation, LastValue):
        return {
            "last": computation.name,
            "column": computation.column,
            "where": [list(w) for w in _where(computation.where)],
        }
    return {"gap": computation.name}


# --- the state -------------------------------------------------------------------------------


@dataclass
class EntityState:
    """One entity's state: its as-of, latest event times, last values, window buckets, timers.

    * ``as_of``: the largest event time folded or timer fired (``_ts`` of its writes);
    * ``last_ms``/``prev_ms``: the latest and the previous event time (duplicates count);
    * ``last``: per last value, ``(event ms, value)`` of the latest matching event;
    * ``buckets``: per aggregate (not distinct_count), bucket start -> ``[n, sum, min, max]``;
    * ``seen``: per distinct_count, value -> its latest event ms (exact distinct counts);
    * ``timers``: the timers registered for it and not fired yet.
    """

    as_of: int | None = None
    last_ms: int | None = None
    prev_ms: int | None = None
    last: dict[str, tuple[int, Any]] = field(default_factory=dict)
    buckets: dict[str, dict[int, Bucket]] = field(default_factory=dict)
    seen: dict[str, dict[Any, int]] = field(default_factory=dict)
    timers: set[int] = field(default_factory=set)

    @property
    def is_empty(self) -> bool:
        """Nothing to keep: the job removes the state (its timers, if any, then find none)."""
        return self.as_of is None and not self.last and not self.timers and not self.has_windows

    def clear(self) -> None:
        """Forget everything (in place): the state becomes :attr:`is_empty`."""
        self.as_of = self.last_ms = self.prev_ms = None
        self.last, self.buckets, self.seen, self.timers = {}, {}, {}, set()

    @property
    def has_windows(self) -> bool:
        """Some window holds an event."""
        return any(self.buckets.values()) or any(self.seen.values())

    def to_row(self) -> tuple[int | None, str]:
        """``(as_of, body)``: the Spark state row ``as_of long, body string`` (body: versioned JSON)."""
        body = {
            "v": STATE_VERSION,
            "last_ms": self.last_ms,
            "prev_ms": self.prev_ms,
            "last": {name: [ms, value] for name, (ms, value) in self.last.items()},
            "buckets": {
                name: [[start, *b] for start, b in sorted(bs.items())] for name, bs in self.buckets.items() if bs
            },
            "seen": {
                name: [[value, ms] for value, ms in values.items()] for name, values in self.seen.items() if values
            },
            "timers": sorted(self.timers),
        }
        return self.as_of, json.dumps(body, separators=(",", ":"))

    @classmethod
    def from_row(cls, row: Sequence[Any]) -> EntityState:
        """The state of a :meth:`to_row` row; a body of another version raises ``ValueError``."""
        as_of, text = row[0], row[1]
        body = json.loads(text)
        if not isinstance(body, dict) or body.get("v") != STATE_VERSION:
            version = body.get("v") if isinstance(body, dict) else None
            raise ValueError(
                f"entity state version {version!r} is not {STATE_VERSION}: written by another version of "
                "featurestore; start the query from a new checkpoint"
            )
        return cls(
            as_of=as_of,
            last_ms=body["last_ms"],
            prev_ms=body["prev_ms"],
            last={name: (ms, value) for name, (ms, value) in body["last"].items()},
            buckets={name: {b[0]: list(b[1:]) for b in bs} for name, bs in body["buckets"].items()},
            seen={name: {value: ms for value, ms in pairs} for name, pairs in body["seen"].items()},
            timers=set(body["timers"]),
        )


@dataclass(frozen=True)
class Emission:
    """What to write for one entity: ``fields`` (in the view's order) with their ``values``.

    ``None`` deletes a field; ``as_of`` is the ``_ts:<view>`` of the write.  ``fields`` is
    empty when the events changed nothing (all too old for any window: ``ignored``).
    """

    as_of: int
    values: dict[str, Any]
    fields: tuple[str, ...]
    ignored: int = 0


# --- folding events --------------------------------------------------------------------------


def fold(program: ViewProgram, state: EntityState, events: Iterable[Mapping[str, Any]]) -> Emission | None:
    """Fold one micro-batch of an entity's events into ``state``; None for no events.

    The events need not be in order.  Each counts in the windows that still hold it at the
    new as-of (later is ignored), may become a last value (if not older than the current
    one), and moves the latest/previous event times.  Every windowed feature is re-emitted
    whenever the state's windows or its as-of changed; last values and gaps when they did.
    """
    batch = sorted(events, key=lambda event: int(event[program.time_field]))
    if not batch:
        return None
    times = [int(event[program.time_field]) for event in batch]
    before = state.as_of
    as_of = max(times) if before is None else max(before, max(times))
    starts = {spec.name: spec.window_start(as_of) for spec in program.aggregates}
    windows_changed = _prune(program, state, as_of) or before != as_of
    written: set[str] = set()
    ignored = 0
    for event, ms in zip(batch, times, strict=True):
        took = _fold_last_values(program, state, event, ms, written)
        took = _fold_gap(program, state, ms, written) or took
        counted = _fold_windows(program, state, event, ms, starts)
        windows_changed = windows_changed or counted
        if not counted and not took and _too_old(program, ms, starts):
            ignored += 1
    state.as_of = as_of
    if windows_changed:
        written.update(spec.name for spec in program.aggregates)
    return _emission(program, state, written, ignored)


def _too_old(program: ViewProgram, ms: int, starts: Mapping[str, int]) -> bool:
    """Before the start of every window of the view (a view without windows ignores nothing)."""
    return bool(program.aggregates) and all(ms < start for start in starts.values())


def _matches(where: tuple[tuple[str, Any], ...], event: Mapping[str, Any]) -> bool:
    return all(event.get(key) == value for key, value in where)


def _typed(value: Any, kind: str | None) -> Any:
    """Longs as ints, doubles as floats (what Spark's rows and parse_event give)."""
    if value is None:
        return None
    if kind == "double":
        return float(value)
    if kind in ("long", "timestamp"):
        return int(value)
    return value


def _fold_last_values(
    program: ViewProgram, state: EntityState, event: Mapping[str, Any], ms: int, written: set[str]
) -> bool:
    took = False
    for spec in program.last_values:
        if not _matches(spec.where, event):
            continue
        current = state.last.get(spec.name)
        if current is None or ms >= current[0]:  # ties: the later arrival wins
            state.last[spec.name] = (ms, _typed(event.get(spec.column), spec.column_type))
            written.add(spec.name)
            took = True
    return took


def _fold_gap(program: ViewProgram, state: EntityState, ms: int, written: set[str]) -> bool:
    """Keep the two latest event times (a multiset: the same time twice is a gap of 0)."""
    latest, previous = state.last_ms, state.prev_ms
    if latest is None or ms >= latest:
        state.prev_ms, state.last_ms = latest, ms
    elif previous is None or ms > previous:
        state.prev_ms = ms
    changed = (state.last_ms, state.prev_ms) != (latest, previous)
    if changed:
        written.update(gap.name for gap in program.gaps)
    return changed and bool(program.gaps)


def _fold_windows(
    program: ViewProgram, state: EntityState, event: Mapping[str, Any], ms: int, starts: Mapping[str, int]
) -> bool:
    """Count the event in each aggregate whose window still holds it; True if any did."""
    counted = False
    for spec in program.aggregates:
        if ms < starts[spec.name] or not _matches(spec.where, event):
            continue
        value = None if spec.column is None else _typed(event.get(spec.column), spec.column_type)
        if spec.column is not None and value is None:
            continue  # nulls are ignored, as in Spark SQL
        if spec.fn == "distinct_count":
            seen = state.seen.setdefault(spec.name, {})
            seen[value] = max(ms, seen.get(value, ms))
        else:
            bucket_start = (ms // spec.slide_ms) * spec.slide_ms
            bucket = state.buckets.setdefault(spec.name, {}).setdefault(bucket_start, [0, None, None, None])
            _add(bucket, value, spec)
        counted = True
    return counted


def _add(bucket: Bucket, value: Any, spec: AggSpec) -> None:
    bucket[0] += 1
    if spec.fn in ("sum", "mean"):
        if spec.column_type == "double":
            bucket[1] = _add_exact(bucket[1] or [], value)
        else:
            bucket[1] = (bucket[1] or 0) + value
    elif spec.fn == "min":
        bucket[2] = value if bucket[2] is None else min(bucket[2], value)
    elif spec.fn == "max":
        bucket[3] = value if bucket[3] is None else max(bucket[3], value)


def _add_exact(partials: list[float], x: float) -> list[float]:
    """Shewchuk's exact running sum: non-overlapping partials whose sum is exactly the total."""
    kept: list[float] = []
    for y in partials:
        if abs(x) < abs(y):
            x, y = y, x
        high = x + y
        low = y - (high - x)
        if low:
            kept.append(low)
        x = high
    kept.append(x)
    return kept


# --- timers ------------------------------------------------------------------------------------


def expire(program: ViewProgram, state: EntityState, timer_ms: int) -> Emission | None:
    """A fired timer: the as-of moves to ``timer_ms``, buckets that left are dropped, windows re-emitted.

    None when no window changes (a timer at or before the as-of, e.g. one whose bucket a
    later event already pushed out; a state without windows).  An entity with no window
    left is forgotten (``state.is_empty``) at its eviction timer, once its last values'
    horizon has passed: the watermark is then past its as-of, so no later event can be
    older than what it wrote.
    """
    state.timers.discard(timer_ms)
    if state.as_of is None:
        return None
    emission = None
    if timer_ms > state.as_of:
        had_windows = state.has_windows
        state.as_of = timer_ms
        _prune(program, state, timer_ms)
        if had_windows:
            emission = _emission(program, state, {spec.name for spec in program.aggregates}, 0)
    if not state.has_windows and timer_ms >= _forget_at(program, state):
        state.clear()
    return emission


def _forget_at(program: ViewProgram, state: EntityState) -> int:
    """When an entity without windows is forgotten: its as-of, or its latest event + ``horizon_ms`` if later."""
    assert state.as_of is not None
    latest = state.last_ms if state.last_ms is not None else state.as_of
    return max(state.as_of, latest + program.horizon_ms)


def due_timers(program: ViewProgram, state: EntityState) -> set[int]:
    """The timers the state needs: when each non-empty bucket leaves its window, and, with no
    window left, when the entity is forgotten (its as-of, or latest event + ``horizon_ms``)."""
    due: set[int] = set()
    for spec in program.aggregates:
        if spec.fn == "distinct_count":
            starts: Iterable[int] = {
                (ms // spec.slide_ms) * spec.slide_ms for ms in state.seen.get(spec.name, {}).values()
            }
        else:
            starts = state.buckets.get(spec.name, {}).keys()
        due.update(start + spec.window_ms for start in starts)
    if not due and state.as_of is not None:
        due.add(_forget_at(program, state))
    return due


def register_timers(program: ViewProgram, state: EntityState) -> list[int]:
    """The due timers not registered yet, in order; records them in ``state.timers``.

    The job registers each with Spark (``handle.registerTimer``) after every :func:`fold`
    and :func:`expire` (an emptied window adds the eviction timer).  A registered timer
    that is no longer due is left to fire: :func:`expire` ignores it.  Spark fires a timer
    at ``T`` in the first micro-batch whose watermark is ``>= T``, after that batch's events
    (PySpark 4.1.1, ``timeMode="EventTime"``; tests/spark/streaming/test_window_processor.py).
    """
    new = sorted(due_timers(program, state) - state.timers)
    state.timers.update(new)
    return new


def _prune(program: ViewProgram, state: EntityState, as_of: int) -> bool:
    """Drop the buckets (and distinct values) that left the window at ``as_of``; True if any did."""
    pruned = False
    for spec in program.aggregates:
        start = spec.window_start(as_of)
        if spec.fn == "distinct_count":
            seen = state.seen.get(spec.name, {})
            gone: list[Any] = [value for value, ms in seen.items() if ms < start]
            for value in gone:
                del seen[value]
        else:
            buckets = state.buckets.get(spec.name, {})
            gone = [bucket_start for bucket_start in buckets if bucket_start < start]
            for bucket_start in gone:
                del buckets[bucket_start]
        pruned = pruned or bool(gone)
    return pruned


# --- values ------------------------------------------------------------------------------------


def _emission(program: ViewProgram, state: EntityState, written: set[str], ignored: int) -> Emission:
    assert state.as_of is not None
    fields = tuple(name for name in program.features if name in written)
    values: dict[str, Any] = {}
    for spec in program.aggregates:
        if spec.name in written:
            values[spec.name] = _aggregate_value(spec, state)
    for last in program.last_values:
        if last.name in written:
            values[last.name] = state.last[last.name][1]
    for gap in program.gaps:
        if gap.name in written:
            values[gap.name] = _gap_seconds(state.last_ms, state.prev_ms, gap.ttl_ms)
    return Emission(as_of=state.as_of, values={name: values[name] for name in fields}, fields=fields, ignored=ignored)


def _aggregate_value(spec: AggSpec, state: EntityState) -> Any:
    if spec.fn == "distinct_count":
        return len(state.seen.get(spec.name, {})) or None
    buckets = list(state.buckets.get(spec.name, {}).values())
    n = sum(b[0] for b in buckets)
    if not n:
        return None  # an empty window: the field is deleted (count 0 is never stored)
    if spec.fn == "count":
        return n
    if spec.fn == "min":
        return min(b[2] for b in buckets)
    if spec.fn == "max":
        return max(b[3] for b in buckets)
    if spec.column_type == "double":
        total: Any = math.fsum(p for b in buckets for p in b[1])
    else:
        total = sum(b[1] for b in buckets)
    return total if spec.fn == "sum" else total / n


def _gap_seconds(latest: int | None, previous: int | None, ttl_ms: int) -> float | None:
    if latest is None or previous is None or latest - previous >= ttl_ms:
        return None
    return (latest - previous) / _MS


# --- the reference: the written semantics, by brute force -------------------------------------


def reference(program: ViewProgram, events: Sequence[Mapping[str, Any]], as_of: int) -> dict[str, Any]:
    """Every feature's value at ``as_of`` from all the events folded so far (``None``: absent).

    Straight from docs/streaming.md, "Windows", sharing with :func:`fold` only the
    ``where`` test and the typing of values: the events with event time <= ``as_of`` (in
    arrival order) that match ``where`` and lie in ``[window start, as_of]``; last values
    of the latest matching event (ties: the later arrival); gaps from the two latest
    event times.
    """
    known = [event for event in events if int(event[program.time_field]) <= as_of]
    out: dict[str, Any] = {}
    for spec in program.aggregates:
        start = (as_of // spec.slide_ms) * spec.slide_ms + spec.slide_ms - spec.window_ms
        inside = [e for e in known if int(e[program.time_field]) >= start and _matches(spec.where, e)]
        out[spec.name] = _brute_force(spec, inside)
    for last in program.last_values:
        matching = [e for e in known if _matches(last.where, e)]
        latest = max(enumerate(matching), key=lambda p: (int(p[1][program.time_field]), p[0]), default=None)
        out[last.name] = None if latest is None else _typed(latest[1].get(last.column), last.column_type)
    times = sorted(int(e[program.time_field]) for e in known)
    for gap in program.gaps:
        seconds = (times[-1] - times[-2]) / _MS if len(times) >= 2 else None
        out[gap.name] = seconds if seconds is not None and seconds * _MS < gap.ttl_ms else None
    return {name: out[name] for name in program.features}


def _brute_force(spec: AggSpec, events: Sequence[Mapping[str, Any]]) -> Any:
    if spec.column is None:
        return len(events) or None
    values = [_typed(e.get(spec.column), spec.column_type) for e in events]
    values = [v for v in values if v is not None]
    if not values:
        return None
    if spec.fn == "count":
        return len(values)
    if spec.fn == "distinct_count":
        return len(set(values))
    if spec.fn == "min":
        return min(values)
    if spec.fn == "max":
        return max(values)
    total = math.fsum(values) if spec.column_type == "double" else sum(values)
    return total if spec.fn == "sum" else total / len(values)
