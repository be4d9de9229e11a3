"""The reader against a real standalone Redis 8 (and Valkey 9 for the basics; without a server:
tests/unit/reader/test_reader_offline.py)."""

from __future__ import annotations

import math
import time

import pytest
import redis

from featurestore.readers import (
    Catalog,
    ConfigurationError,
    EncodingError,
    Feature,
    FeatureNotFoundError,
    FeatureReader,
    FeatureStatus,
    FeatureStoreError,
    FeatureStoreTimeout,
    FeatureView,
    RegistryMismatchError,
    codec,
)
from tests.helpers.reader import client_for, compact, dense, now_ms, scores, test_catalog, user, write_view

ROW = {"n_orders": 7, "spend": 12.5, "ratio": 0.1, "segment": "gold", "is_vip": True, "embedding": [1, 2, 3]}


@pytest.fixture
def reader(redis_url: str) -> FeatureReader:
    write_view(client_for(redis_url), test_catalog, scores, {1: ROW, 2: {"n_orders": 1}})
    with FeatureReader.connect(redis_url, catalog=test_catalog) as r:
        yield r


def test_get_returns_typed_values_with_statuses_and_the_view_age(reader: FeatureReader) -> None:
    v = reader.get(1, "scores")
    assert v.to_dict() == {
        "n_orders": 7, "spend": 12.5, "ratio": pytest.approx(0.1), "segment": "gold", "is_vip": True,
        "embedding": (1.0, 2.0, 3.0),
    }  # fmt: skip
    assert type(v["n_orders"]) is int and type(v["spend"]) is float and type(v["is_vip"]) is bool
    assert v.all_present and set(v.statuses.values()) == {FeatureStatus.PRESENT}
    assert 0 <= v.age("scores") < 5


def test_a_subset_of_features_in_the_callers_order(reader: FeatureReader) -> None:
    v = reader.get(2, ["segment", "n_orders", "spend"])
    assert v.to_list() == ["none", 1, 0.0]  # defaults where missing
    assert v.status("n_orders") is FeatureStatus.PRESENT
    assert v.status("segment") is FeatureStatus.MISSING
    assert v.found


def test_unknown_entity_reads_as_missing_with_defaults(reader: FeatureReader) -> None:
    v = reader.get(999, "scores")
    assert not v.found
    assert v.to_list() == [0, 0.0, None, "none", False, None]
    assert v.age("scores") is None


def test_get_many_keeps_the_callers_order_and_duplicates(reader: FeatureReader) -> None:
    batch = reader.get_many([2, 999, 1, 2], ["n_orders", "segment"])
    assert batch.to_list() == [[1, "none"], [0, "none"], [7, "gold"], [1, "none"]]
    assert [v.entity_id for v in batch] == [2, 999, 1, 2]
    assert batch.status(1, "n_orders") is FeatureStatus.MISSING
    assert batch.count(FeatureStatus.PRESENT) == 4
    assert reader.get_many([], "scores").to_list() == []


def test_to_numpy_for_numeric_features(reader: FeatureReader) -> None:
    np = pytest.importorskip("numpy")
    array = reader.get_many([1, 2], ["n_orders", "spend", "ratio", "is_vip"]).to_numpy()
    assert array.shape == (2, 4)
    assert array[0].tolist() == pytest.approx([7, 12.5, 0.1, 1.0])
    assert math.isnan(array[1][2])  # ratio has no default: NaN for the model
    assert np.asarray(reader.get(1, ["embedding", "n_orders"]).to_numpy()).tolist() == [1, 2, 3, 7]


def test_stale_view_serves_defaults_not_old_values(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {5: ROW}, computed_at_ms=now_ms() - 3_600_001)  # older than max_age
    reader = FeatureReader.connect(redis_url, catalog=test_catalog)
    v = reader.get(5, ["n_orders", "segment"])
    assert v.to_list() == [0, "none"]
    assert v.status("n_orders") is FeatureStatus.STALE
    assert v.age("scores") > 3600
    old = reader.get(5, ["n_orders", "segment"], serve_stale=True)  # only on explicit request
    assert old.to_list() == [7, "gold"] and old.status("segment") is FeatureStatus.STALE


def test_packed_view_round_trip(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, compact, {3: {"c1": 1.5, "c_count": 4, "c2": None}})
    assert client.hget("fs:user:{3}", "_f32:compact") is not None
    assert client.hget("fs:user:{3}", "c1") is None  # packed features have no field of their own
    reader = FeatureReader.connect(redis_url, catalog=test_catalog)
    v = reader.get(3, ["c2", "c_count", "c1"])
    assert v.to_list() == [None, 4, 1.5]
    assert v.status("c2") is FeatureStatus.MISSING and v.status("c1") is FeatureStatus.PRESENT
    assert reader.get(4, ["c1"]).to_list() == [-1.0]


def test_compact_view_round_trip_with_statuses(redis_url: str) -> None:
    client = client_for(redis_url)
    full = {"d_count": -3, "d_amount": 0.1, "d_ratio": 1.5, "d_tag": "é", "d_flag": True, "d_emb": [1.0, -2.0]}
    write_view(client, test_catalog, dense, {20: full, 21: {"d_count": 2**63 - 1, "d_flag": False}})
    write_view(client, test_catalog, dense, {22: full}, computed_at_ms=now_ms() - 4_000_000)  # older than max_age
    # a record in 2 parts, no field per feature
    assert set(client.hkeys("fs:user:{20}")) == {b"_c:dense", b"_c1:dense", b"_ts:dense"}
    reader = FeatureReader.connect(redis_url, catalog=test_catalog)  # the registry check passes (same layout)
    v = reader.get(20, ["d_tag", "d_emb", "d_count", "d_amount", "d_flag", "d_ratio"])
    assert v.to_list() == ["é", (1.0, -2.0), -3, 0.1, True, 1.5]
    assert set(v.statuses.values()) == {FeatureStatus.PRESENT}
    batch = reader.get_many([21, 22, 99], "dense")
    assert batch.to_list() == [
        [2**63 - 1, None, 0.5, "none", False, None],  # nulls in the record: defaults, missing
        [0, None, 0.5, "none", False, None],  # stale: defaults
        [0, None, 0.5, "none", False, None],  # no record at all: missing
    ]
    assert batch.status(0, "d_count") is FeatureStatus.PRESENT and batch.status(0, "d_flag") is FeatureStatus.PRESENT
    assert batch.status(0, "d_tag") is FeatureStatus.MISSING
    assert batch.status(1, "d_tag") is FeatureStatus.STALE and batch.status(2, "d_tag") is FeatureStatus.MISSING
    assert reader.get(22, ["d_tag"], serve_stale=True).to_list() == ["é"]
    # a reader that would decode the view as text fails at start-up, naming the layout
    as_text = FeatureView("dense", user, dense.features, ttl=3600)
    with pytest.raises(RegistryMismatchError, match="layout is 'text' here but 'compact' in Redis"):
        FeatureReader.connect(redis_url, catalog=Catalog(views=(as_text,)))


def test_features_of_several_views_in_one_hmget(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {8: ROW})
    write_view(
        client, test_catalog, compact, {8: {"c1": 2.0, "c_count": 1, "c2": 3.0}}, computed_at_ms=now_ms() - 4_000_000
    )
    v = FeatureReader.connect(redis_url, catalog=test_catalog).get(8, ["c1", "n_orders", "c_count"])
    assert v.to_list() == [-1.0, 7, None]  # compact is stale, scores fresh
    assert v.statuses == {"c1": FeatureStatus.STALE, "n_orders": FeatureStatus.PRESENT, "c_count": FeatureStatus.STALE}
    assert set(v.ages) == {"scores", "compact"}


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda r: r.get(1, ["nope"]), FeatureNotFoundError, "unknown feature 'nope'"),
        (lambda r: r.get(1, "nope_view"), FeatureNotFoundError, "no view 'nope_view'"),
        (
            lambda r: r.get(1, ["balance"], entity="user"),
            FeatureNotFoundError,
            "unknown feature 'balance' of entity 'user'",
        ),
        (lambda r: r.get(1, "scores", entity="account"), FeatureNotFoundError, "belongs to entity 'user'"),
        (lambda r: r.get("1", "scores"), EncodingError, "entity 'user' has int64 ids"),
        (lambda r: r.get_many([1, None], "scores"), EncodingError, "entity 'user'"),
        (lambda r: r.get("x{y}", "balances"), EncodingError, "entity 'account'"),
        (lambda r: r.get_many(12, "scores"), TypeError, None),
        (lambda r: r.get_many("abc", "balances"), ConfigurationError, "sequence of ids"),
    ],
)
def test_bad_input_gets_a_clear_error(reader: FeatureReader, call, error, message) -> None:  # type: ignore[no-untyped-def]
    with pytest.raises(error, match=message):
        call(reader)


def test_string_ids(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, test_catalog.view("balances"), {"acc-é1": {"balance": 10.25}})
    reader = FeatureReader.connect(redis_url, catalog=test_catalog)
    assert reader.get("acc-é1", ["balance"]).to_list() == [10.25]


def test_registry_mismatch_fails_loudly_at_start_up(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {1: ROW})
    changed = FeatureView("scores", user, (Feature("n_orders", "float64"), Feature("spend", "float64")), ttl=3600)
    with pytest.raises(
        RegistryMismatchError, match=r"view 'scores'.*feature 'n_orders' is float64 here but was materialized as int64"
    ):
        FeatureReader.connect(redis_url, catalog=Catalog(views=(changed,)))
    lazy = FeatureReader(redis_url, catalog=Catalog(views=(changed,)))  # no I/O yet: checked before the first read
    with pytest.raises(RegistryMismatchError, match="feature 'n_orders' is float64 here"):
        lazy.get(1, ["n_orders"])
    # a feature that is defined but not materialized yet is fine: it reads as missing
    added = FeatureView("scores", user, (*scores.features, Feature("brand_new", "int64", default=-1)), ttl=3600)
    reader = FeatureReader.connect(redis_url, catalog=Catalog(views=(added, compact)))
    assert reader.registry_status == {"scores": "ok", "compact": "not materialized"}
    assert reader.get(1, ["brand_new", "n_orders"]).to_list() == [-1, 7]


def test_undecodable_value_names_entity_and_feature(redis_url: str) -> None:
    client = client_for(redis_url)
    client.hset("fs:user:{1}", mapping={"n_orders": "lots", "_ts:scores": now_ms()})
    with pytest.raises(FeatureStoreError, match="entity 'user': feature 'n_orders' \\(int64\\) holds b'lots'"):
        FeatureReader.connect(redis_url, catalog=test_catalog).get(1, ["n_orders"])


def test_a_slow_server_raises_timeout_and_the_reader_recovers(redis8, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    write_view(client_for(redis_url), test_catalog, scores, {1: ROW})
    reader = FeatureReader.connect(redis_url, catalog=test_catalog, timeout=0.3)
    pauser = redis.Redis.from_url(redis_url)
    pauser.execute_command("CLIENT", "PAUSE", 1500, "ALL")
    start = time.monotonic()
    with pytest.raises(FeatureStoreTimeout, match="timed out"):
        reader.get(1, "scores", timeout=0.1)  # per call
    assert time.monotonic() - start < 0.4
    start = time.monotonic()
    with pytest.raises(FeatureStoreTimeout):  # a new connection's handshake: within the call's timeout too
        reader.get_many([1, 2, 3], "scores", timeout=0.1)
    assert time.monotonic() - start < 0.4
    time.sleep(1.5)
    assert reader.get(1, ["n_orders"]).to_list() == [7]  # the timed-out connection was not reused


def test_reader_survives_a_server_side_disconnect(redis_url: str) -> None:
    write_view(client_for(redis_url), test_catalog, scores, {1: ROW})
    reader = FeatureReader.connect(redis_url, catalog=test_catalog)
    assert reader.get(1, ["n_orders"]).to_list() == [7]
    redis.Redis.from_url(redis_url).execute_command("CLIENT", "KILL", "TYPE", "normal", "SKIPME", "yes")
    assert reader.get(1, ["n_orders"]).to_list() == [7]  # the dead pooled connection is replaced


def test_acl_user_and_password_never_shown(redis_url: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "inference", "on", ">hunter2pass", "~fs:*", "+hmget", "+hgetall", "+ping")
    write_view(client_for(redis_url), test_catalog, scores, {1: ROW})
    try:
        host_port = redis_url.split("//")[1]
        reader = FeatureReader.connect(f"redis://inference:hunter2pass@{host_port}", catalog=test_catalog)
        assert reader.get(1, ["n_orders"]).to_list() == [7]
        assert "hunter2pass" not in repr(reader)
        with pytest.raises(FeatureStoreError) as failure:
            FeatureReader.connect(f"redis://inference:wrongpass@{host_port}", catalog=test_catalog)
        assert "wrongpass" not in str(failure.value) and "inference:***@" in str(failure.value)
    finally:
        admin.execute_command("ACL", "DELUSER", "inference")


def test_valkey9_serves_the_same_values(valkey_url: str) -> None:
    write_view(client_for(valkey_url), test_catalog, scores, {1: ROW, 2: {"n_orders": 1}})
    reader = FeatureReader.connect(valkey_url, catalog=test_catalog)
    assert reader.get_many([1, 2], ["n_orders", "segment"]).to_list() == [[7, "gold"], [1, "none"]]


def test_registry_entries_are_what_the_codec_writes(redis_url: str) -> None:
    client = client_for(redis_url)
    write_view(client, test_catalog, scores, {1: ROW})
    entry = codec.parse_registry_entry(client.hget(codec.REGISTRY_KEY, "scores"))
    assert entry["fingerprint"] == codec.fingerprint(scores)
