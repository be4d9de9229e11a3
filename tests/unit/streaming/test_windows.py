"""The window engine (featurestore.jobs.streaming.windows) against its written semantics.

Directed cases pin each rule of docs/streaming.md, "Windows"; the property test drives
``fold``/``expire`` the way the Spark job will (micro-batches, a watermark from the
previous batches, late rows dropped, due timers fired after the data) over seeded random
streams with out-of-order and late events, and checks after every emission that what
Redis would hold equals :func:`reference` at that as-of.
"""

from __future__ import annotations

import json
import pickle
import random
from collections.abc import Sequence
from typing import Any

import pytest

from featurestore.jobs.streaming.windows import (
    STATE_VERSION,
    Emission,
    EntityState,
    ViewProgram,
    due_timers,
    expire,
    fold,
    reference,
    register_timers,
)
from featurestore.readers import (
    Aggregate,
    DefinitionError,
    Entity,
    Feature,
    FeatureView,
    LastValue,
    SecondsSincePrevious,
    StreamSource,
)

S = 1000  # event times are epoch ms; windows are declared in seconds
user = Entity("user", join_key="user_id")
SCHEMA = "user_id long, kind string, price double, qty long, item string, event_time long"


def program_of(*features: Any, lateness: int = 0, ttl: int | None = 60) -> ViewProgram:
    source = StreamSource("clicks", SCHEMA, id_field="user_id", time_field="event_time", allowed_lateness=lateness)
    view = FeatureView("clicks_view", user, features, kind="streaming", ttl=ttl, stream=source)
    return ViewProgram.of(view)


def ev(t_ms: int, **fields: Any) -> dict[str, Any]:
    return {"user_id": 1, "event_time": t_ms, **fields}


def emitted(emission: Emission | None) -> Emission:
    assert emission is not None
    return emission


def store_after(emissions: Sequence[Emission | None]) -> dict[str, Any]:
    """What Redis holds after writing the emissions in order (``None`` deletes a field)."""
    store: dict[str, Any] = {}
    for emission in emissions:
        if emission is not None:
            apply(store, emission)
    return store


def apply(store: dict[str, Any], emission: Emission) -> None:
    for name in emission.fields:
        value = emission.values[name]
        if value is None:
            store.pop(name, None)
        else:
            store[name] = value


# --- directed cases --------------------------------------------------------------------------


def test_a_sliding_window_holds_the_buckets_ending_with_the_as_of_one() -> None:
    p = program_of(Aggregate("n", "count", window=60, slide=10))
    state = EntityState()
    emission = fold(p, state, [ev(0), ev(9_999), ev(10 * S)])  # 0 is exactly on a bucket edge
    assert emission == Emission(as_of=10 * S, values={"n": 3}, fields=("n",), ignored=0)
    assert due_timers(p, state) == {60 * S, 70 * S}  # bucket start + window, per non-empty bucket
    # the window at as-of a spans the window/slide buckets ending with a's: [a//10*10 + 10 - 60, ...]
    assert reference(p, [ev(0), ev(10 * S)], 59_999)["n"] == 2
    assert reference(p, [ev(0), ev(10 * S)], 60 * S)["n"] == 1  # the bucket [0, 10 s) left at 60 s
    assert reference(p, [ev(5 * S)], 65 * S)["n"] is None  # 55 to 60 s of events: 5 s is out
    assert expire(p, state, 60 * S) == Emission(as_of=60 * S, values={"n": 1}, fields=("n",))
    assert expire(p, state, 70 * S) == Emission(as_of=70 * S, values={"n": None}, fields=("n",))  # emptied
    assert state.is_empty  # no last value to keep: forgotten with its last window


def test_a_tumbling_window_is_the_current_bucket() -> None:
    p = program_of(Aggregate("n", "count", window=60))
    events = [ev(59_999), ev(60 * S)]
    assert reference(p, events, 59_999)["n"] == 1
    assert reference(p, events, 60 * S)["n"] == 1
    assert reference(p, events, 119_999)["n"] == 1
    assert reference(p, events, 120 * S)["n"] is None
    state = EntityState()
    assert emitted(fold(p, state, events[:1])).values == {"n": 1}
    assert emitted(fold(p, state, events[1:])).values == {"n": 1}  # the first bucket is out


def test_a_window_that_empties_deletes_its_fields_and_keeps_last_values() -> None:
    p = program_of(
        Aggregate("n", "count", window=20, slide=10),
        Aggregate("total", "sum", "qty", window=20, slide=10),
        LastValue("last_kind", "kind", ttl=60),
    )
    state = EntityState()
    first = fold(p, state, [ev(1 * S, kind="view", qty=2), ev(12 * S, kind="buy", qty=3)])
    assert first == Emission(12 * S, {"n": 2, "total": 5, "last_kind": "buy"}, ("n", "total", "last_kind"))
    assert register_timers(p, state) == [20 * S, 30 * S]
    assert expire(p, state, 20 * S) == Emission(20 * S, {"n": 1, "total": 3}, ("n", "total"))
    emptied = expire(p, state, 30 * S)
    assert emptied == Emission(30 * S, {"n": None, "total": None}, ("n", "total"))  # deleted: reader serves 0, missing
    assert not state.has_windows and not state.is_empty  # the last value is kept ...
    assert register_timers(p, state) == [72 * S]  # ... until the latest event + the longest last-value ttl
    assert expire(p, state, 72 * S) is None
    assert state.is_empty
    assert store_after([first, emptied]) == {"last_kind": "buy"}


def test_a_late_event_inside_the_window_is_folded_with_the_as_of_unchanged() -> None:
    p = program_of(Aggregate("n", "count", window=60, slide=10), LastValue("last_kind", "kind"), lateness=30)
    state = EntityState()
    fold(p, state, [ev(50 * S, kind="view")])
    late = fold(p, state, [ev(20 * S, kind="buy")])  # older than the as-of, inside its window
    assert late == Emission(as_of=50 * S, values={"n": 2}, fields=("n",), ignored=0)  # last_kind untouched
    assert state.last["last_kind"] == (50 * S, "view")


def test_an_event_older_than_every_window_is_ignored_and_counted() -> None:
    p = program_of(
        Aggregate("n", "count", window=20, slide=10), Aggregate("n60", "count", window=60, slide=10), lateness=300
    )
    state = EntityState()
    fold(p, state, [ev(130 * S)])
    assert fold(p, state, [ev(100 * S)]) == Emission(130 * S, {"n": 1, "n60": 2}, ("n", "n60"))  # in n60's window
    assert fold(p, state, [ev(59 * S)]) == Emission(130 * S, {}, (), ignored=1)  # in no window: nothing to write
    assert reference(p, [ev(130 * S), ev(100 * S), ev(59 * S)], 130 * S) == {"n": 1, "n60": 2}


def test_distinct_count_is_exact_across_buckets() -> None:
    p = program_of(Aggregate("items", "distinct_count", "item", window=30, slide=10))
    state = EntityState()
    assert emitted(fold(p, state, [ev(1 * S, item="a"), ev(2 * S, item="b"), ev(3 * S, item=None)])).values == {
        "items": 2
    }
    assert emitted(fold(p, state, [ev(15 * S, item="a")])).values == {"items": 2}
    assert due_timers(p, state) == {30 * S, 40 * S}
    assert expire(p, state, 30 * S) == Emission(30 * S, {"items": 1}, ("items",))  # "a" was seen again at 15 s
    assert expire(p, state, 40 * S) == Emission(40 * S, {"items": None}, ("items",))


def test_where_filters_and_nulls_are_ignored_and_nothing_gives_null() -> None:
    p = program_of(
        Aggregate("views", "count", where={"kind": "view"}, window=60),
        Aggregate("priced", "count", "price", window=60),
        Aggregate("mean_price", "mean", "price", window=60),
        Aggregate("min_price", "min", "price", window=60),
        Aggregate("max_qty", "max", "qty", window=60),
        Aggregate("view_qty", "sum", "qty", where={"kind": "view"}, window=60),
    )
    events = [ev(1 * S, kind="view", price=None, qty=None), ev(2 * S, kind="buy", price=2.5, qty=4)]
    expected = {"views": 1, "priced": 1, "mean_price": 2.5, "min_price": 2.5, "max_qty": 4, "view_qty": None}
    assert emitted(fold(p, EntityState(), events)).values == expected == reference(p, events, 2 * S)
    nothing = [ev(1 * S, kind="click")]
    assert set(reference(p, nothing, 1 * S).values()) == {None}  # count 0 is never stored


def test_every_emission_that_moves_the_as_of_rewrites_every_windowed_field() -> None:
    # the derived TTL (window + lateness) counts from each write: docs/streaming.md, "Windows"
    p = program_of(Aggregate("views", "count", where={"kind": "view"}, window=60), LastValue("last_kind", "kind"))
    state = EntityState()
    fold(p, state, [ev(1 * S, kind="view")])
    moved = fold(p, state, [ev(2 * S, kind="click")])  # counts in no window, moves the as-of
    assert moved == Emission(2 * S, {"views": 1, "last_kind": "click"}, ("views", "last_kind"))


def test_sums_and_means_are_exact_whatever_the_order() -> None:
    p = program_of(Aggregate("total", "sum", "price", window=60), Aggregate("avg", "mean", "price", window=60))
    prices = [0.1] * 10 + [1e16, 1.0, -1e16]
    events = [ev(i * S, price=x) for i, x in enumerate(prices)]
    expected = reference(p, events, 20 * S)
    assert expected == {"total": 2.0, "avg": 2.0 / 13}  # math.fsum: exactly rounded
    for seed in range(5):
        shuffled = random.Random(seed).sample(events, len(events))
        state = EntityState()
        emissions = [fold(p, state, shuffled[i : i + 3]) for i in range(0, len(shuffled), 3)]
        assert store_after(emissions) == expected


def test_seconds_since_previous() -> None:
    p = program_of(SecondsSincePrevious("gap", ttl=60), lateness=600)
    state = EntityState()
    assert fold(p, state, [ev(10 * S)]) == Emission(10 * S, {"gap": None}, ("gap",))  # no previous event
    assert emitted(fold(p, state, [ev(40 * S)])).values == {"gap": 30.0}
    assert emitted(fold(p, state, [ev(35 * S)])).values == {"gap": 5.0}  # a late one is the previous
    assert fold(p, state, [ev(20 * S)]) == Emission(40 * S, {}, ())  # older than both: changes nothing
    assert emitted(fold(p, state, [ev(40 * S)])).values == {"gap": 0.0}  # the same time twice
    assert emitted(fold(p, state, [ev(100 * S)])).values == {"gap": None}  # 60 s: the ttl, null


def test_a_last_value_is_never_replaced_by_an_older_event() -> None:
    p = program_of(LastValue("last_kind", "kind"), LastValue("last_view", "item", where={"kind": "view"}))
    state = EntityState()
    assert emitted(fold(p, state, [ev(10 * S, kind="buy", item="x"), ev(5 * S, kind="view", item="a")])).values == {
        "last_kind": "buy",
        "last_view": "a",
    }
    assert fold(p, state, [ev(8 * S, kind="view", item="b")]) == Emission(10 * S, {"last_view": "b"}, ("last_view",))
    assert fold(p, state, [ev(9 * S, kind="click")]) == Emission(10 * S, {}, ())  # late: no last value moves
    tie = fold(p, state, [ev(10 * S, kind="click"), ev(10 * S, kind=None)])
    assert tie == Emission(10 * S, {"last_kind": None}, ("last_kind",))  # ties: the later arrival; null deletes


def test_the_state_round_trips_through_its_row_and_refuses_another_version() -> None:
    p = program_of(
        Aggregate("total", "sum", "price", window=60, slide=10),
        Aggregate("n_qty", "max", "qty", window=60, slide=10),
        Aggregate("items", "distinct_count", "item", window=60, slide=10),
        LastValue("last_kind", "kind"),
        SecondsSincePrevious("gap"),
    )
    state = EntityState()
    fold(p, state, [ev(1 * S, price=0.1, qty=3, item="a", kind="x"), ev(12 * S, price=0.2, qty=None, item="b")])
    register_timers(p, state)
    as_of, body = state.to_row()
    assert as_of == 12 * S and json.loads(body)["v"] == STATE_VERSION
    again = EntityState.from_row((as_of, body))
    assert again == state and again.to_row() == (as_of, body)
    assert fold(p, again, [ev(13 * S, price=0.3)]) == fold(p, state, [ev(13 * S, price=0.3)])
    with pytest.raises(ValueError, match="entity state version 99 is not 1"):
        EntityState.from_row((as_of, body.replace(f'"v":{STATE_VERSION}', '"v":99')))


def test_a_timer_at_or_before_the_as_of_changes_nothing() -> None:
    p = program_of(Aggregate("n", "count", window=20, slide=10), LastValue("last_kind", "kind"))
    state = EntityState()
    fold(p, state, [ev(1 * S, kind="a")])
    assert register_timers(p, state) == [20 * S]
    fold(p, state, [ev(35 * S, kind="b")])  # pushes the first bucket out before its timer fires
    assert register_timers(p, state) == [50 * S]
    assert state.timers == {20 * S, 50 * S}
    assert expire(p, state, 20 * S) is None
    assert state.timers == {50 * S}
    assert expire(p, EntityState(), 20 * S) is None  # a timer left over after the state was forgotten


def test_timers_fired_out_of_order_skip_a_step_but_never_give_a_wrong_value() -> None:
    p = program_of(Aggregate("n", "count", window=30, slide=10))
    events = [ev(1 * S), ev(12 * S), ev(25 * S)]
    state = EntityState()
    fold(p, state, events)
    assert register_timers(p, state) == [30 * S, 40 * S, 50 * S]
    assert expire(p, state, 40 * S) == Emission(40 * S, {"n": 1}, ("n",)) and reference(p, events, 40 * S) == {"n": 1}
    assert expire(p, state, 30 * S) is None  # its bucket already left with the as-of
    assert expire(p, state, 50 * S) == Emission(50 * S, {"n": None}, ("n",))


def test_the_program_is_plain_picklable_data() -> None:
    p = program_of(
        Aggregate("views", "count", where={"kind": "view"}, window=60, slide=10),
        LastValue("last_item", "item"),
        SecondsSincePrevious("gap", ttl=30),
        lateness=5,
    )
    assert pickle.loads(pickle.dumps(p)) == p
    assert p.needed_fields == {"user_id": "long", "kind": "string", "item": "string", "event_time": "long"}
    assert (p.lateness_ms, p.horizon_ms, p.features) == (5 * S, 60 * S, ("views", "last_item", "gap"))
    hook = FeatureView("hook", user, (Feature("f", "int64"),), kind="streaming", ttl=60)
    with pytest.raises(DefinitionError, match="view 'hook' has no stream=: it is written by a hook"):
        ViewProgram.of(hook)


# --- the property test: micro-batches + timers == reference at every step ----------------------

PROPERTY_FEATURES = (
    Aggregate("n_30s", "count", window=30, slide=10),
    Aggregate("views_20s", "count", where={"kind": "view"}, window=20),
    Aggregate("qty_sum_30s", "sum", "qty", window=30, slide=5),
    Aggregate("price_sum_30s", "sum", "price", window=30, slide=10),
    Aggregate("price_mean_40s", "mean", "price", window=40, slide=10),
    Aggregate("price_min_30s", "min", "price", window=30, slide=10),
    Aggregate("qty_max_60s", "max", "qty", window=60, slide=20),
    Aggregate("items_60s", "distinct_count", "item", window=60, slide=10),
    Aggregate("priced_20s", "count", "price", window=20, slide=10),
    LastValue("last_kind", "kind", ttl=30),
    LastValue("last_view_item", "item", where={"kind": "view"}, ttl=45),
    SecondsSincePrevious("gap", ttl=25),
)
PROGRAMS = {lateness: program_of(*PROPERTY_FEATURES, lateness=lateness) for lateness in (0, 3, 10, 25, 90)}
LAST_ONLY = program_of(LastValue("last_kind", "kind", ttl=30), SecondsSincePrevious("gap", ttl=20), lateness=5)


def random_stream(rng: random.Random) -> list[dict[str, Any]]:
    """Events in arrival order: event times drift forward (sometimes a long pause, sometimes a
    tie) and arrive out of order by up to ``disorder`` ms, so some land beyond the lateness."""
    t = rng.randint(-5 * S, 5 * S)
    disorder = rng.choice([0, 5 * S, 20 * S, 40 * S, 100 * S])
    events = []
    for _ in range(rng.randint(1, 30)):
        t += rng.choice([0, rng.randint(0, 8 * S), rng.randint(0, 8 * S), rng.randint(50 * S, 120 * S)])
        event = {
            "user_id": rng.randint(1, 3),
            "event_time": t,
            "kind": rng.choice(["view", "view", "click", "buy", None]),
            "price": rng.choice([None, round(rng.uniform(0, 100), 2), 0.1]),
            "qty": rng.choice([None, rng.randint(-3, 9)]),
            "item": rng.choice(["a", "b", "c", "d", None]),
        }
        events.append((t + rng.randint(0, disorder), event))
    return [event for _, event in sorted(events, key=lambda pair: pair[0])]


def run_like_the_job(program: ViewProgram, events: list[dict[str, Any]], rng: random.Random) -> dict[str, int]:
    """Micro-batches of 1-6 arrivals, as Spark 4.1.1 runs them (pinned by
    tests/spark/streaming/test_window_processor.py): batch N's watermark is the largest event
    time of batches < N minus the lateness; it drops the rows at or below batch N-1's
    watermark, folds per entity, registers timers, then fires the timers <= its watermark."""
    states: dict[int, EntityState] = {}
    folded: dict[int, list[dict[str, Any]]] = {}
    stores: dict[int, dict[str, Any]] = {}
    written_as_of: dict[int, int] = {}
    max_seen: int | None = None
    watermark: int | None = None
    counts = dict.fromkeys(("late", "emissions", "ignored", "emptied", "forgotten"), 0)

    def check(entity: int, emission: Emission | None) -> None:
        if emission is None:
            return
        counts["emissions"] += 1
        counts["ignored"] += emission.ignored
        counts["emptied"] += bool(emission.fields) and all(emission.values[f] is None for f in emission.fields)
        assert emission.as_of >= written_as_of.get(entity, emission.as_of), "the out-of-order guard would refuse it"
        written_as_of[entity] = emission.as_of
        store = stores.setdefault(entity, {})
        apply(store, emission)
        expected = reference(program, folded[entity], emission.as_of)
        assert {name: store.get(name) for name in program.features} == expected, (entity, emission)

    i = 0
    while i < len(events):
        size = rng.randint(1, 6)
        batch, i = events[i : i + size], i + size
        late_below, watermark = watermark, None if max_seen is None else max_seen - program.lateness_ms
        by_entity: dict[int, list[dict[str, Any]]] = {}
        for event in batch:
            if late_below is not None and event["event_time"] <= late_below:
                counts["late"] += 1  # dropped by Spark before the processor
            else:
                by_entity.setdefault(event["user_id"], []).append(event)
        for entity, rows in by_entity.items():
            state = states.setdefault(entity, EntityState())
            folded.setdefault(entity, []).extend(rows)
            check(entity, fold(program, state, rows))
            register_timers(program, state)
        if watermark is not None:
            for entity, state in states.items():
                for timer in sorted(t for t in state.timers if t <= watermark):
                    check(entity, expire(program, state, timer))
                    counts["forgotten"] += state.is_empty
                    register_timers(program, state)
                assert due_timers(program, state) <= state.timers
        max_seen = max([e["event_time"] for e in batch] + ([] if max_seen is None else [max_seen]))
    return counts


@pytest.mark.parametrize("lateness", sorted(PROGRAMS))
def test_micro_batches_and_timers_give_the_reference_at_every_step(lateness: int) -> None:
    totals: dict[str, int] = {}
    for seed in range(60):
        rng = random.Random(f"{lateness}/{seed}")
        counts = run_like_the_job(PROGRAMS[lateness], random_stream(rng), rng)
        totals = {k: totals.get(k, 0) + counts[k] for k in counts}
    # the streams do reach every case: beyond the lateness, windows that empty, entities forgotten
    assert totals["emissions"] > 500 and totals["emptied"] > 5 and totals["forgotten"] > 5, totals
    if lateness < 25:
        assert totals["late"] > 0, totals
    if lateness > 60:
        assert totals["ignored"] > 0, totals  # accepted by the watermark, older than every window


def test_a_view_of_last_values_only_gives_the_reference_too() -> None:
    for seed in range(40):
        rng = random.Random(f"last/{seed}")
        run_like_the_job(LAST_ONLY, random_stream(rng), rng)


def test_the_engine_imports_only_the_standard_library_and_the_definitions() -> None:
    # no pyspark (the Python workers import it by value) and nothing that does I/O
    import ast
    from pathlib import Path

    import featurestore.jobs.streaming.windows as windows

    tree = ast.parse(Path(windows.__file__).read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)} | {
        a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    allowed = {"__future__", "collections.abc", "dataclasses", "hashlib", "json", "math", "typing"}
    assert imported - allowed == {"featurestore.readers.definitions", "featurestore.readers.errors"}
