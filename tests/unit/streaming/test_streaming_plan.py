"""Pure logic of the streaming hook: the bytes sent, name checks, event times, methods."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from featurestore.jobs.examples.fraud.definitions import catalog, user_profile, user_realtime
from featurestore.jobs.streaming.guard import GUARD_FUNCTION, GUARD_LUA
from featurestore.jobs.streaming.plan import (
    HSET_HEXPIRE,
    HSETEX,
    METHODS,
    StreamingWritePlan,
    event_time_ms,
    resp,
    value_encoder,
)
from featurestore.jobs.streaming.writer import ServerCapabilities, choose_method
from featurestore.jobs.write import commands as batch_commands
from featurestore.readers import Feature, codec
from featurestore.readers.errors import (
    ConfigurationError,
    EncodingError,
    FeatureNotFoundError,
    FeatureStoreError,
    UnsupportedServerError,
)
from tests.helpers.streaming import live, short_catalog

T = 1_764_150_000_123  # an event time, epoch ms
EVENT = {"txn_count_5m": 3, "last_amount": 12.5, "last_country": "FR", "seconds_since_prev_txn": 42.25}


@pytest.fixture
def plan() -> StreamingWritePlan:
    return StreamingWritePlan.build(user_realtime, catalog)


def test_groups_by_ttl_with_ts_in_the_longest(plan: StreamingWritePlan) -> None:
    # txn_count_5m: its derived TTL, window 5 min + allowed lateness 1 min (600 s before issue 20)
    assert [(ttl, [f.name for f in fs]) for ttl, fs in plan.groups] == [
        (360, ["txn_count_5m"]),
        (3600, ["last_amount", "last_country", "seconds_since_prev_txn"]),
    ]
    assert plan.ts_field == b"_ts:user_realtime"
    assert plan.ts_ttl == 3600 == user_realtime.longest_ttl


def test_golden_hsetex_commands(plan: StreamingWritePlan) -> None:
    # Pinned bytes: one HSETEX per TTL, `_ts` with the longest TTL, key untouched.
    assert plan.commands(42, EVENT, T) == [
        (b"HSETEX", b"fs:user:{42}", b"EX", b"360", b"FIELDS", b"1", b"txn_count_5m", b"3"),
        (
            b"HSETEX", b"fs:user:{42}", b"EX", b"3600", b"FIELDS", b"4",
            b"last_amount", b"12.5", b"last_country", b"FR", b"seconds_since_prev_txn", b"42.25",
            b"_ts:user_realtime", b"1764150000123",
        ),
    ]  # fmt: skip


def test_golden_hset_hexpire_commands(plan: StreamingWritePlan) -> None:
    # Redis 7.4: HSET clears field TTLs, so HSET and the HEXPIREs share one MULTI.
    assert plan.commands(42, {"txn_count_5m": 3, "last_country": None}, T, HSET_HEXPIRE) == [
        (b"MULTI",),
        (b"HSET", b"fs:user:{42}", b"txn_count_5m", b"3", b"_ts:user_realtime", b"1764150000123"),
        (b"HEXPIRE", b"fs:user:{42}", b"360", b"FIELDS", b"1", b"txn_count_5m"),
        (b"HEXPIRE", b"fs:user:{42}", b"3600", b"FIELDS", b"1", b"_ts:user_realtime"),
        (b"HDEL", b"fs:user:{42}", b"last_country"),
        (b"EXEC",),
    ]


def test_golden_guarded_fcall(plan: StreamingWritePlan) -> None:
    assert plan.guarded_command(42, {"txn_count_5m": 3, "last_amount": None}, T) == (
        b"FCALL", GUARD_FUNCTION.encode(), b"1", b"fs:user:{42}",
        b"_ts:user_realtime", b"1764150000123", b"hsetex",
        b"2",
        b"360", b"1", b"txn_count_5m", b"3",
        b"3600", b"1", b"_ts:user_realtime", b"1764150000123",
        b"1", b"last_amount",
    )  # fmt: skip


def test_resp_is_the_batch_writers_encoding(plan: StreamingWritePlan) -> None:
    for command in plan.commands(7, EVENT, T):
        assert resp(command) == batch_commands.resp(command)
    key, payloads = plan.unit(7, EVENT, T, HSETEX, guard=True)
    assert key == b"fs:user:{7}"
    assert payloads == [batch_commands.resp(plan.guarded_command(7, EVENT, T))]


def test_values_use_the_codec() -> None:
    plan = StreamingWritePlan.build(live, short_catalog)
    groups, deletes = plan.encode(
        {"clicks_1m": 2, "risk_score": 0.1, "embedding": [1.0, 0.5, -2.0], "is_mobile": True, "last_page": "héllo"}
    )
    assert groups == [
        (1, [b"clicks_1m", b"2"]),
        (2, [b"last_page", "héllo".encode(), b"risk_score", b"0.1", b"embedding",
             b"\x00\x00\x80?\x00\x00\x00?\x00\x00\x00\xc0", b"is_mobile", b"1"]),
    ]  # fmt: skip
    assert deletes == []


def test_partial_update_and_nulls(plan: StreamingWritePlan) -> None:
    # absent features are left alone; None and NaN delete their field
    groups, deletes = plan.encode({"last_amount": math.nan, "last_country": None})
    assert groups == [(3600, [])]  # only the `_ts` group remains
    assert deletes == [b"last_amount", b"last_country"]
    commands = plan.commands(1, {"last_amount": None}, T)
    assert commands[-1] == (b"HDEL", b"fs:user:{1}", b"last_amount")
    assert commands[0][-2:] == (b"_ts:user_realtime", b"1764150000123")


def test_batch_owned_feature_is_refused(plan: StreamingWritePlan) -> None:
    with pytest.raises(ConfigurationError) as info:
        plan.encode({"txn_count_5m": 1, "home_country": "FR"})
    message = str(info.value)
    assert "'user_realtime'" in message and "'home_country'" in message
    assert "batch view 'user_profile'" in message


def test_unknown_feature_is_refused(plan: StreamingWritePlan) -> None:
    with pytest.raises(FeatureNotFoundError, match="'user_realtime' has no feature 'txn_count_1m'"):
        plan.encode({"txn_count_1m": 1})


def test_without_catalogue_foreign_names_are_still_refused() -> None:
    plan = StreamingWritePlan.build(user_realtime)
    with pytest.raises(FeatureNotFoundError, match="'home_country'"):
        plan.commands(1, {"home_country": "FR"}, T)


def test_batch_view_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="'user_profile' is a batch view"):
        StreamingWritePlan.build(user_profile, catalog)


def test_bad_value_names_the_feature(plan: StreamingWritePlan) -> None:
    with pytest.raises(EncodingError, match="txn_count_5m"):
        plan.commands(1, {"txn_count_5m": "three"}, T)


def test_event_times() -> None:
    aware = datetime(2025, 11, 26, 10, 20, 0, 123000, tzinfo=UTC)
    assert event_time_ms(aware) == 1_764_152_400_123
    assert event_time_ms(aware.replace(tzinfo=None)) == 1_764_152_400_123  # naive is UTC
    assert event_time_ms(aware.astimezone(timezone(timedelta(hours=2)))) == 1_764_152_400_123
    assert event_time_ms(1_764_152_400_123) == 1_764_152_400_123
    assert event_time_ms(None, now_ms=T) == T
    with pytest.raises(EncodingError, match="did you|seconds"):
        event_time_ms(1_764_152_400)  # epoch seconds
    with pytest.raises(EncodingError, match="datetime or epoch milliseconds"):
        event_time_ms(1_764_152_400.5)  # type: ignore[arg-type]
    with pytest.raises(EncodingError):
        event_time_ms(True)


def test_method_choice() -> None:
    redis8 = ServerCapabilities("Redis 8.2.3", hsetex=True, hexpire=True)
    redis74 = ServerCapabilities("Redis 7.4.2", hsetex=False, hexpire=True)
    redis70 = ServerCapabilities("Redis 7.0.15", hsetex=False, hexpire=False)
    assert choose_method(live, "redis://h:1", [redis8]) == HSETEX
    assert choose_method(live, "redis://h:1", [redis8, redis74]) == HSET_HEXPIRE  # a mixed cluster
    assert choose_method(live, "redis://h:1", [redis8], HSET_HEXPIRE) == HSET_HEXPIRE
    with pytest.raises(UnsupportedServerError) as info:
        choose_method(live, "redis://h:1", [redis8, redis70])
    assert "Redis 7.0.15" in str(info.value) and "Redis >= 7.4" in str(info.value) and "'live'" in str(info.value)
    with pytest.raises(UnsupportedServerError, match="HSETEX .*Redis 7.4.2"):
        choose_method(live, "redis://h:1", [redis74], HSETEX)
    with pytest.raises(ConfigurationError):
        choose_method(live, "redis://h:1", [redis8], "hset")
    assert issubclass(UnsupportedServerError, FeatureStoreError)


@pytest.mark.parametrize("dtype", ["int64", "float64", "float32", "string", "bool", "vector"])
def test_value_shortcut_gives_the_codecs_bytes(dtype: str) -> None:
    import numpy as np

    feature = Feature("f", dtype, dim=2 if dtype == "vector" else None)
    samples: list[Any] = [
        0, 1, -1, 7, 2**63 - 1, -(2**63), 2**63, 3.0, 2.5, -0.0, 0.1, 1e-7, 1e300, 3.4e38, 1e39, 123456789.125,
        math.nan, math.inf, -math.inf, True, False, "", "FR", "héllo", "\ud800", b"x", None, [1.0, 2.0], (1, 2),
        np.int64(5), np.float32(0.1), np.float64(2.5), np.bool_(True), np.nan,
    ]  # fmt: skip
    encode = value_encoder(feature)
    for value in samples:
        try:
            expected: Any = codec.encode_value(feature, value)
        except EncodingError as exc:
            expected = f"error: {exc}"
        try:
            got: Any = encode(value)
        except EncodingError as exc:
            got = f"error: {exc}"
        assert got == expected, (dtype, value)


def test_the_guard_function_knows_every_method() -> None:
    # the Lua compares its `method` argument with these names
    for method in METHODS:
        assert f"'{method}'" in GUARD_LUA


def test_server_capabilities_from_the_probe_replies() -> None:
    info = b"# Server\r\nredis_version:8.2.3\r\nredis_mode:standalone\r\n"
    both = [[b"hsetex"], [b"hexpire"]]  # COMMAND INFO: one entry per command, nil if unknown
    assert ServerCapabilities.parse(info, both) == ServerCapabilities("Redis 8.2.3", hsetex=True, hexpire=True)
    valkey = b"# Server\r\nredis_version:7.2.4\r\nserver_name:valkey\r\nvalkey_version:9.1.2\r\n"
    assert ServerCapabilities.parse(valkey, both).version == "Valkey 9.1.2"  # not the compatibility version
    old = ServerCapabilities.parse(b"redis_version:7.0.15\r\n", [None, None])
    assert (old.version, old.hsetex, old.hexpire) == ("Redis 7.0.15", False, False)
    assert ServerCapabilities.parse(b"redis_version:7.4.2\r\n", [None, [b"hexpire"]]).hexpire
