"""Declared streaming features: validation (each message), derived dtypes and TTLs, and the
normalisation into plain Features that leaves codec, registry and fingerprints unchanged."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
import inspect
import json
import textwrap
from datetime import timedelta
from typing import Any

import pytest

from featurestore.jobs.examples.fraud.definitions import catalog as example_catalog
from featurestore.jobs.streaming.events import EventSchema
from featurestore.jobs.streaming.windows import ViewProgram
from featurestore.readers import (
    Aggregate,
    Catalog,
    DefinitionError,
    DType,
    Entity,
    Feature,
    FeatureView,
    LastValue,
    SecondsSincePrevious,
    StreamSource,
    codec,
)
from featurestore.readers import definitions as definitions_module
from featurestore.readers.definitions import duration_text, parse_event_schema
from featurestore.readers.errors import FeatureNotFoundError

item = Entity("item", join_key="item_id", id_dtype="string")
user = Entity("user", join_key="user_id", id_dtype="int64")
SCHEMA = (
    "user_id long, item_id string, kind string, category string, price double, qty long, "
    "flag boolean, seen_at timestamp, event_time timestamp"
)
interactions = StreamSource(
    "interactions", SCHEMA, id_field="item_id", time_field="event_time", allowed_lateness=timedelta(minutes=2)
)
HOUR, MINUTE = timedelta(hours=1), timedelta(minutes=1)


def stream_view(*features: Any, name: str = "item_popularity", **options: Any) -> FeatureView:
    options.setdefault("kind", "streaming")
    options.setdefault("stream", interactions)
    return FeatureView(name, options.pop("entity", item), features, **options)


# --- the declarations, and what they turn into -------------------------------------------------


def test_computations_become_plain_features_with_derived_dtype_default_and_ttl() -> None:
    view = stream_view(
        Aggregate("views_1h", "count", where={"kind": "view"}, window=HOUR, slide=5 * MINUTE),
        Aggregate("buyers_24h", "distinct_count", "user_id", window=timedelta(hours=24), slide=HOUR),
        Aggregate("revenue_1h", "sum", "price", window=HOUR),
        Aggregate("units_1h", "sum", "qty", window=HOUR),
        Aggregate("mean_price_1h", "mean", "price", window=HOUR, dtype="float32"),
        Aggregate("max_qty_1h", "max", "qty", window=HOUR),
        Aggregate("min_price_1h", "min", "price", window=HOUR, ttl=7200, default=-1.0),
        LastValue("last_category", "category", default=""),
        LastValue("last_seen_at", "seen_at", ttl=600),
        LastValue("last_flag", "flag"),
        SecondsSincePrevious("gap", dtype="float32"),
        ttl=timedelta(hours=3),
    )
    got = {f.name: (f.dtype.value, f.default, f.ttl) for f in view.features}  # type: ignore[union-attr]
    assert got == {
        "views_1h": ("int64", 0, 3720),  # window + allowed_lateness
        "buyers_24h": ("int64", 0, 86520),
        "revenue_1h": ("float64", 0.0, 3720),
        "units_1h": ("int64", 0, 3720),
        "mean_price_1h": ("float32", None, 3720),
        "max_qty_1h": ("int64", None, 3720),
        "min_price_1h": ("float64", -1.0, 7200),  # its own ttl and default
        "last_category": ("string", "", 10800),  # the view's ttl
        "last_seen_at": ("int64", None, 600),  # a timestamp is epoch ms
        "last_flag": ("bool", None, 10800),
        "gap": ("float32", None, 10800),
    }
    assert all(type(f) is Feature for f in view.features)
    assert view.max_age_seconds == 86520  # the longest TTL, as for every streaming view


def test_computation_gives_back_the_normalised_declaration() -> None:
    views = Aggregate("views_1h", "count", where={"kind": "view"}, window=HOUR, slide=5 * MINUTE)
    view = stream_view(views, Aggregate("revenue_1h", "sum", "price", window=HOUR))
    got = view.computation("views_1h")
    assert isinstance(got, Aggregate)
    assert (got.window, got.slide, dict(got.where or {}), got.is_tumbling) == (3600, 300, {"kind": "view"}, False)
    assert view.computation("revenue_1h").slide == 3600  # type: ignore[union-attr]  # tumbling: slide = window
    with pytest.raises(FeatureNotFoundError, match="view 'item_popularity' has no feature 'nope'"):
        view.computation("nope")
    hook = FeatureView("hook", user, (Feature("f", "int64"),), kind="streaming", ttl=60)
    assert hook.computation("f") is None and hook.computations == ()


def test_views_stay_hashable_comparable_and_replaceable() -> None:
    def build() -> FeatureView:
        return stream_view(
            Aggregate("views_1h", "count", where={"kind": "view"}, window=HOUR, slide=5 * MINUTE),
            LastValue("last_category", "category"),
            ttl=HOUR,
        )

    assert build() == build() and hash(build()) == hash(build())
    Catalog(views=(build(),))
    longer = dataclasses.replace(build(), ttl=2 * HOUR)  # the copy re-derives from the declarations
    assert longer.feature("last_category").ttl == 7200 and longer.computation("views_1h") == build().computation(
        "views_1h"
    )
    by_user = dataclasses.replace(interactions, id_field="user_id")
    assert by_user.fields == interactions.fields and by_user.allowed_lateness == 120
    plain = dataclasses.replace(build(), stream=None, kind="streaming")  # back to a hook view: plain Features
    assert plain.computations == () and plain.feature_names == build().feature_names


def test_the_type_checkers_init_lists_every_init_field() -> None:
    # FeatureView declares a typing-only __init__ (features may hold computations): keep it in step
    source = textwrap.dedent(inspect.getsource(definitions_module.FeatureView))
    stub = next(
        node for node in ast.walk(ast.parse(source)) if isinstance(node, ast.FunctionDef) and node.name == "__init__"
    )
    names = [a.arg for a in stub.args.args[1:]] + [a.arg for a in stub.args.kwonlyargs]
    assert names == [f.name for f in dataclasses.fields(FeatureView) if f.init]


def test_stream_sources_are_checked_and_parsed() -> None:
    assert interactions.types["price"] == "double" and interactions.dead_letters_topic == "interactions.dead-letters"
    assert StreamSource("t", "id long, ts long", "id", "ts", allowed_lateness=0).allowed_lateness == 0
    schema = EventSchema.of(interactions)
    assert (schema.fields, schema.id_field, schema.time_field) == (interactions.fields, "item_id", "event_time")
    for args, message in [
        (("", "id long, ts long", "id", "ts"), "stream source: topic must be a non-empty topic name"),
        (("t", "id long ts long", "id", "ts"), "stream 't': event schema: expected 'name type', got 'id long ts long'"),
        (("t", "id long, ts decimal", "id", "ts"), "stream 't': event schema: field 'ts' has type 'decimal'"),
        (("t", "id double, ts long", "id", "ts"), "stream 't': id_field 'id' must be a long or string field"),
        (("t", "id long, ts string", "id", "ts"), "stream 't': time_field 'ts' must be a timestamp or long"),
        (("t", "id long, ts long", "id", "missing"), "stream 't': time_field 'missing' must be"),
    ]:
        with pytest.raises(DefinitionError, match=message):
            StreamSource(*args)
    with pytest.raises(DefinitionError, match=r"stream 't': allowed_lateness must be .* >= 0, got -1"):
        StreamSource("t", "id long, ts long", "id", "ts", allowed_lateness=-1)
    assert parse_event_schema("a BIGINT, b float, c bool") == (("a", "long"), ("b", "double"), ("c", "boolean"))
    assert [duration_text(s) for s in (0, 45, 420, 3600, 3720, 86400, 86520)] == [
        "0s", "45s", "7m", "1h", "1h2m", "24h", "24h2m",
    ]  # fmt: skip


# --- each rule, with its message ---------------------------------------------------------------

V, F = "view 'item_popularity'", "view 'item_popularity', feature 'f'"


@pytest.mark.parametrize(
    ("computation", "message"),
    [
        (Aggregate("f", "count", window=HOUR, slide=7 * MINUTE), f"{F}: slide 7m does not divide window 1h"),
        (Aggregate("f", "count", window=HOUR, slide=2 * HOUR), f"{F}: slide 2h is longer than window 1h"),
        (
            Aggregate("f", "count", window=timedelta(days=2), slide=MINUTE),
            f"{F}: window 48h in steps of 1m is 2880 steps; at most 1440",
        ),
        (Aggregate("f", "count", window=0), f"{F}: window must be a whole number of seconds >= 1, got 0"),
        (Aggregate("f", "count", window=1.5), f"{F}: window must be a whole number of seconds >= 1, got 1.5"),
        (Aggregate("f", "count", window=HOUR, slide="5m"), f"{F}: slide must be a timedelta or a number of seconds"),
        (Aggregate("f", "avg", "price", window=HOUR), f"{F}: fn must be one of count, sum, mean, min, max, distinct"),
        (Aggregate("f", "sum", window=HOUR), f"{F}: sum needs a column"),
        (Aggregate("f", "max", "prce", window=HOUR), f"{F}: column 'prce' is not a field of stream 'interactions'"),
        (Aggregate("f", "mean", "kind", window=HOUR), f"{F}: mean needs a long or double column; 'kind' is a string"),
        (Aggregate("f", "min", "seen_at", window=HOUR), f"{F}: min needs a long or double column; 'seen_at' is a"),
        (Aggregate("f", "distinct_count", "seen_at", window=HOUR), f"{F}: distinct_count needs a non-timestamp"),
        (Aggregate("f", "count", where={"knd": "view"}, window=HOUR), f"{F}: where field 'knd' is not a field"),
        (Aggregate("f", "count", where={"qty": "2"}, window=HOUR), f"{F}: where 'qty' = '2' does not fit the long"),
        (Aggregate("f", "count", where={"flag": 1}, window=HOUR), f"{F}: where 'flag' = 1 does not fit the boolean"),
        (Aggregate("f", "count", where={"kind": None}, window=HOUR), f"{F}: where 'kind' = None does not fit"),
        (Aggregate("f", "count", where={"seen_at": 0}, window=HOUR), f"{F}: where field 'seen_at' is a timestamp"),
        (Aggregate("f", "count", where=[("kind", "view")], window=HOUR), f"{F}: where must be a mapping"),  # type: ignore[arg-type]
        (Aggregate("f", "count", window=HOUR, dtype="float64"), f"{F}: dtype 'float64' does not fit: .* gives int64"),
        (
            Aggregate("f", "sum", "price", window=HOUR, dtype="int64"),
            f"{F}: dtype 'int64' does not fit: .*float64 \\(or",
        ),
        (Aggregate("f", "count", window=HOUR, dtype="float16"), f"{F}: dtype 'float16' is not a dtype"),
        (Aggregate("f", "count", window=HOUR, default="none"), f"{F}: default 'none' does not fit dtype int64"),
        (Aggregate("f", "count", window=HOUR, ttl=0), f"{F}: ttl must be a whole number of seconds >= 1"),
        (Aggregate("bad name", "count", window=HOUR), f"{V}, feature name 'bad name' is invalid"),
        (LastValue("f", "colour"), f"{F}: column 'colour' is not a field of stream 'interactions'"),
        (LastValue("f", "kind"), f"{F}: ttl is required: set ttl= on the feature, or a ttl on the view"),
        (LastValue("f", "qty", dtype="float64", ttl=60), f"{F}: dtype 'float64' does not fit: .* gives int64"),
        (SecondsSincePrevious("f"), f"{F}: ttl is required"),
        (SecondsSincePrevious("f", dtype="int64", ttl=60), f"{F}: dtype 'int64' does not fit"),
    ],
)
def test_each_rule_names_the_view_the_feature_and_the_setting(computation: Any, message: str) -> None:
    with pytest.raises(DefinitionError, match=message):
        stream_view(computation)


def test_view_level_rules() -> None:
    count = Aggregate("f", "count", window=HOUR)
    with pytest.raises(DefinitionError, match=f"{F}: a computed feature needs the view's stream="):
        FeatureView("item_popularity", item, (count,), kind="streaming", ttl=60)
    with pytest.raises(DefinitionError, match=f"{V}: Feature\\(name='g'.* is not a computation; a view with stream="):
        stream_view(count, Feature("g", "int64", ttl=60))
    with pytest.raises(DefinitionError, match=f"{V}: stream= is only for kind='streaming' views"):
        stream_view(count, kind="batch", ttl=60)
    with pytest.raises(DefinitionError, match=f"{V}: stream must be a StreamSource, got 'interactions'"):
        stream_view(count, stream="interactions")
    with pytest.raises(
        DefinitionError,
        match=f"{V}: stream id_field 'item_id' is a string, but entity 'user' has int64 ids \\(needs a long field\\)",
    ):
        stream_view(count, entity=user)
    with pytest.raises(DefinitionError, match=f"{V}: duplicate feature names \\['f'\\]"):
        stream_view(count, LastValue("f", "kind", ttl=60))
    with pytest.raises(DefinitionError, match="streaming view 'item_popularity': packed=True is only for batch"):
        stream_view(count, packed=True)


# --- fingerprints ---------------------------------------------------------------------------------

# codec.fingerprint and a sha256 of codec.view_contract of the example catalogue, taken on main
# before declared streaming features existed: the registry sees the same views.
EXAMPLE_BEFORE = {
    "user_transactions": (
        "a2c657e3b0c1a32ac77d6d665a31afa8cfc4096751c6cb2733efcf80e01c980e",
        "74e58db1d105a8ec492c9f70c7bab07d0407c120662d682d430779f73fa248e3",
    ),
    "user_profile": (
        "2b42b0a5ddd31191f398e374f11d63ae76444103edb1e24bd03dda6d0955a0ff",
        "9f3db5144669c196250781114752598fd3969ae4c9c7eaf87748bc9d0a52608e",
    ),
    "merchant_risk": (
        "d01094917600206017e0c78627f5dbea562bfede1fe88d1404748f0424b7527c",
        "569ef0f3fc40664f890a4e8ec94fbf382be6cf90c287058af5ef2b89f8d9ab75",
    ),
    # declared with stream= (issue 20): the fingerprint (decoding) stays; the contract's only change
    # is txn_count_5m's derived TTL, 600 s -> 360 s (window 5 min + lateness 1 min; accepted by issue 20)
    "user_realtime": (
        "cd55b9425b49c2c659d7f39a1f3e7681ef5549979c64858e49eb477c33411ee1",
        "8f4b5adcbef7791077f4b0527684228077146236f81a9f56de5387d66e6a99a8",
    ),
}


def contract_hash(view: FeatureView) -> str:
    return hashlib.sha256(
        json.dumps(codec.view_contract(view), sort_keys=True, separators=(",", ":")).encode()
    ).hexdigest()


def test_existing_views_keep_their_fingerprints_and_contracts() -> None:
    assert {v.name: (codec.fingerprint(v), contract_hash(v)) for v in example_catalog.views} == EXAMPLE_BEFORE


def test_a_declared_view_decodes_like_its_hand_written_twin() -> None:
    # the example's streaming view, declared: the registry fingerprint is the hand-written one's
    transactions = StreamSource(
        "transactions",
        "user_id long, amount double, country string, event_time timestamp",
        id_field="user_id",
        time_field="event_time",
    )
    declared = FeatureView(
        "user_realtime",
        user,
        (
            Aggregate("txn_count_5m", "count", window=5 * MINUTE, slide=MINUTE),
            LastValue("last_amount", "amount", dtype="float32"),
            LastValue("last_country", "country", default=""),
            SecondsSincePrevious("seconds_since_prev_txn", dtype="float32"),
        ),
        kind="streaming",
        ttl=HOUR,
        stream=transactions,
    )
    hand_written = example_catalog.view("user_realtime")
    assert codec.view_spec(declared) == codec.view_spec(hand_written)
    assert codec.fingerprint(declared) == EXAMPLE_BEFORE["user_realtime"][0]
    assert declared.feature("txn_count_5m").ttl == 360  # 5 min + 1 min lateness (10 min by hand)


def test_the_program_fingerprint_follows_the_state_not_the_serving_settings() -> None:
    def program(**changes: Any) -> str:
        views = Aggregate("views_1h", "count", where={"kind": "view"}, window=HOUR, slide=5 * MINUTE)
        view = stream_view(dataclasses.replace(views, **changes), LastValue("last_category", "category"), ttl=HOUR)
        return ViewProgram.of(view).fingerprint

    base = program()
    assert base == program() and base == program(ttl=7200, description="x", default=5)
    assert len({base, program(window=2 * HOUR), program(slide=10 * MINUTE), program(where={"kind": "buy"})}) == 4
    other_view = stream_view(
        Aggregate("views_1h", "count", window=HOUR), LastValue("last_category", "category"), ttl=HOUR
    )
    assert ViewProgram.of(other_view).fingerprint != base
    registry_twin = stream_view(
        Aggregate("views_1h", "count", where={"kind": "view"}, window=2 * HOUR, slide=5 * MINUTE),
        LastValue("last_category", "category"),
        ttl=HOUR,
    )
    assert codec.fingerprint(registry_twin) == codec.fingerprint(other_view)  # decoding is unchanged by a window


def test_dtype_is_a_dtype_after_normalisation() -> None:
    view = stream_view(Aggregate("f", "count", window=HOUR))
    assert view.feature("f").dtype is DType.INT64
