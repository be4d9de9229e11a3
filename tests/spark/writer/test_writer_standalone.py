"""write_view on real Spark (local[2]) into a real standalone Redis 8 (and Valkey 9, Redis 7.0)."""

from __future__ import annotations

import math
import socket
import time
from typing import Any

import pytest

from featurestore.jobs.dev.local_redis import LocalRedis
from featurestore.jobs.examples.fraud.definitions import catalog as example_catalog
from featurestore.jobs.examples.fraud.definitions import user_profile, user_transactions
from featurestore.jobs.write.partition_writer import BatchWriteStats, write_view
from featurestore.readers import codec
from featurestore.readers.errors import AuthenticationError, UnsupportedServerError, WriteError
from tests.helpers.writer import (
    CARD_ROWS,
    COMPUTED_AT,
    EDGE_ROWS,
    PACKED_ROWS,
    SHOP_ROWS,
    card_compact,
    client_for,
    dump,
    edge,
    frame,
    key_of,
    packed_scores,
    reference_write,
    shop_stats,
    writer_catalog,
)

DAY = 86_400


def write(spark: Any, url: str, view: Any, rows: list[dict[str, Any]], **options: Any) -> BatchWriteStats:
    catalog = options.pop("catalog", writer_catalog)
    at = options.pop("computed_at_ms", COMPUTED_AT)
    return write_view(frame(spark, view, rows), catalog, view, url, computed_at_ms=at, **options)


@pytest.mark.parametrize("server", ["redis8", "valkey"])
def test_state_equals_the_reference_writer_on_edge_values(spark, server: str, request) -> None:  # type: ignore[no-untyped-def]
    url = request.getfixturevalue("redis_url" if server == "redis8" else "valkey_url")
    stats = {view.name: write(spark, url, view, rows) for view, rows in _all_views()}
    ours = dump(url)
    client_for(url).flushall()
    for view, rows in _all_views():
        reference_write(url, writer_catalog, view, rows)
    assert ours == dump(url)
    assert stats["edge"].rows == stats["edge"].written == stats["edge"].entities == len(EDGE_ROWS)
    assert stats["shop_stats"].failed == 0 and stats["shop_stats"].written == len(SHOP_ROWS)
    # spot checks of what the reference means
    edge3 = ours[key_of(edge, 3)]["fields"]
    assert b"amount" not in edge3 and b"ratio" not in edge3  # NaN -> absent
    assert edge3[b"n"] == b"9223372036854775807" and edge3[b"label"] == "é€😀".encode()
    assert ours[key_of(edge, 0)]["fields"][b"amount"] == b"-0"
    assert ours[key_of(packed_scores, 2)]["fields"].get(b"_f32:packed_scores") is None  # every packed value null
    # the compact view: one record in 3 parts and `_ts` per entity, decoding back to the row
    card3 = ours[key_of(card_compact, 3)]["fields"]
    parts = codec.record_fields(card_compact)
    assert set(card3) == {*parts, b"_ts:card_compact"}
    decoded = codec.decode_record(card_compact, b"".join(card3[p] for p in parts))
    assert decoded[:5] == [2**63 - 1, None, None, "é€😀", False]  # NaN -> null in the presence bitmap


def _all_views() -> list[tuple[Any, list[dict[str, Any]]]]:
    return [(edge, EDGE_ROWS), (packed_scores, PACKED_ROWS), (shop_stats, SHOP_ROWS), (card_compact, CARD_ROWS)]


def test_a_feature_null_today_removes_yesterdays_value(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    yesterday = [{"acct_id": 1, "n": 5, "amount": 2.5, "label": "gold", "flag": True, "emb": [1.0, 2.0, 3.0]}]
    today = [{"acct_id": 1, "n": 6, "amount": math.nan, "label": None, "flag": True, "emb": None}]
    write(spark, redis_url, edge, yesterday, computed_at_ms=COMPUTED_AT - DAY * 1000)
    client = client_for(redis_url)
    assert set(client.hgetall(key_of(edge, 1))) == {b"n", b"amount", b"label", b"flag", b"emb", b"_ts:edge"}
    write(spark, redis_url, edge, today)
    assert client.hgetall(key_of(edge, 1)) == {b"n": b"6", b"flag": b"1", b"_ts:edge": str(COMPUTED_AT).encode()}


def test_key_ttl_is_the_longest_batch_ttl_and_shorter_views_get_field_ttls(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """user_profile (7d) sets the key TTL of `user`; user_transactions (2d) gets HEXPIRE."""
    profile = [{"user_id": 42, "account_age_days": 400, "home_country": "FR", "account_type": "gold",
                "credit_limit": 5000.0, "kyc_verified": True}]  # fmt: skip
    txns = [{"user_id": 42, "txn_count_1d": 3, "amount_sum_1d": 99.5, "amount_mean_7d": 12.25,
             "night_share_30d": 0.125}]  # fmt: skip
    write(spark, redis_url, user_transactions, txns, catalog=example_catalog)
    client = client_for(redis_url)
    key = codec.entity_key(user_profile.entity, 42)
    assert 7 * DAY - 60 <= client.ttl(key) <= 7 * DAY  # even when only the 2-day view was written
    write(spark, redis_url, user_profile, profile, catalog=example_catalog)
    assert 7 * DAY - 60 <= client.ttl(key) <= 7 * DAY
    txn_fields = ["txn_count_1d", "amount_sum_1d", "amount_mean_7d", "night_share_30d", "_ts:user_transactions"]
    for ttl in client.execute_command("HTTL", key, "FIELDS", len(txn_fields), *txn_fields):
        assert 2 * DAY - 60 <= ttl <= 2 * DAY
    profile_fields = ["account_age_days", "home_country", "credit_limit", "kyc_verified", "_ts:user_profile"]
    assert client.execute_command("HTTL", key, "FIELDS", len(profile_fields), *profile_fields) == [-1] * 5
    # the null features of user_transactions were deleted, not written
    assert client.hget(key, "txn_count_7d") is None and client.hget(key, "amount_mean_7d") == b"12.25"


def test_rerun_gives_identical_state(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    rows = [{"acct_id": i, "n": i, "amount": i / 3, "ratio": i / 7, "label": f"l{i % 5}", "flag": i % 2 == 0,
             "emb": [float(i), -float(i), 0.5]} for i in range(500)]  # fmt: skip
    df = frame(spark, edge, rows, partitions=3)
    first = write_view(df, writer_catalog, edge, redis_url, computed_at_ms=COMPUTED_AT)
    state = dump(redis_url)
    second = write_view(df, writer_catalog, edge, redis_url, computed_at_ms=COMPUTED_AT)
    assert dump(redis_url) == state
    assert len(state) == 500
    assert (first.rows, first.entities, first.written, first.failed) == (500, 500, 500, 0)
    assert (second.rows, second.entities, second.written, second.failed) == (500, 500, 500, 0)


def test_bad_rows_are_counted_as_failed_and_the_rest_is_written(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    client = client_for(redis_url)
    client.set(codec.entity_key(shop_stats.entity, "not-a-hash"), "x")  # WRONGTYPE for HSET
    rows = [
        {"shop_id": "good-1", "visits": 1},
        {"shop_id": None, "visits": 2},
        {"shop_id": "bad{id}", "visits": 3},
        {"shop_id": "not-a-hash", "visits": 4},
        {"shop_id": "good-2", "visits": 5},
    ]
    stats = write(spark, redis_url, shop_stats, rows)
    assert (stats.rows, stats.written, stats.failed, stats.entities) == (5, 2, 3, 2)
    joined = "\n".join(stats.failures)
    assert "null id in join key column 'shop_id'" in joined
    assert "'bad{id}' cannot be encoded" in joined
    assert "WRONGTYPE" in joined and "'not-a-hash'" in joined
    assert client.hget(codec.entity_key(shop_stats.entity, "good-2"), "visits") == b"5"
    assert client.get(codec.entity_key(shop_stats.entity, "not-a-hash")) == b"x"


def test_duplicate_ids_in_a_partition_are_counted_once_as_entities(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    rows = [{"acct_id": 1, "n": 1}, {"acct_id": 1, "n": 2}, {"acct_id": 2, "n": 3}]
    stats = write_view(frame(spark, edge, rows, partitions=1), writer_catalog, edge, redis_url, computed_at_ms=1)
    assert (stats.rows, stats.written, stats.entities) == (3, 3, 2)


def test_throttle_limits_the_rate(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    rows = [{"acct_id": i, "n": i} for i in range(600)]
    df = frame(spark, edge, rows, partitions=2)
    # warm-up: run alone, the session's first job starts the Python workers (tens of s at load 10)
    write_view(df, writer_catalog, edge, redis_url, computed_at_ms=1)
    free = write_view(df, writer_catalog, edge, redis_url, computed_at_ms=1)
    throttled = write_view(df, writer_catalog, edge, redis_url, computed_at_ms=2, max_writes_per_sec=300)
    assert throttled.written == 600
    # 600 rows at 300/s take ~2 s (20 windows of 30 rows, shared by the 2 tasks); Spark adds its overhead
    assert 1.9 <= throttled.seconds <= free.seconds + 6.0, (free.seconds, throttled.seconds)
    assert throttled.seconds > free.seconds + 1.0


def _refused_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


def test_connection_refused_is_a_clear_write_error_without_the_password(spark) -> None:  # type: ignore[no-untyped-def]
    url = f"redis://default:s3cr3t-pw@127.0.0.1:{_refused_port()}/0"
    started = time.monotonic()
    with pytest.raises(WriteError) as failed:
        write(spark, url, edge, EDGE_ROWS[:2], retry_seconds=1.0)
    message = str(failed.value)
    assert "s3cr3t-pw" not in message and "default:***@127.0.0.1" in message
    assert "'edge'" in message and "cannot reach Redis" in message
    assert time.monotonic() - started < 15


def test_wrong_schema_is_refused_before_writing(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    df = frame(spark, edge, EDGE_ROWS[:2])
    with pytest.raises(WriteError, match=r"view 'edge'.*n is int, expected bigint"):
        write_view(df.withColumn("n", df["n"].cast("int")), writer_catalog, edge, redis_url, computed_at_ms=1)
    with pytest.raises(WriteError, match=r"view 'edge'.*lacks column\(s\) \['label'\]"):
        write_view(df.drop("label"), writer_catalog, edge, redis_url, computed_at_ms=1)
    assert client_for(redis_url).dbsize() == 0


def test_redis_7_0_is_refused_for_a_view_that_needs_hexpire(spark, redis7: LocalRedis) -> None:  # type: ignore[no-untyped-def]
    redis7.client().flushall()
    with pytest.raises(UnsupportedServerError, match=r"view 'edge'.*HEXPIRE \(Redis >= 7.4"):
        write(spark, redis7.url, edge, EDGE_ROWS[:2])
    assert redis7.client().dbsize() == 0
    # a view without a shorter TTL needs no HEXPIRE and writes fine on 7.0
    assert write(spark, redis7.url, shop_stats, SHOP_ROWS).written == len(SHOP_ROWS)


def test_password_protected_server_works_and_a_wrong_password_fails_fast(spark, tmp_path) -> None:  # type: ignore[no-untyped-def]
    from featurestore.jobs.dev import local_redis

    server = local_redis.start(tmp_path / "auth", password="right-pw")
    try:
        wrong = server.url.replace("right-pw", "wrong-pw")
        started = time.monotonic()
        with pytest.raises(AuthenticationError) as refused:  # its own class, not a generic WriteError
            write(spark, wrong, shop_stats, SHOP_ROWS)  # default 30 s retry budget: must not be used
        assert time.monotonic() - started < 10
        assert "wrong-pw" not in str(refused.value) and "shop_stats" in str(refused.value)
        assert write(spark, server.url, shop_stats, SHOP_ROWS).written == len(SHOP_ROWS)
        assert server.client().hget(codec.entity_key(shop_stats.entity, "m-1"), "visits") == b"10"
    finally:
        local_redis.stop(tmp_path / "auth")


def test_many_small_pipelines_with_error_replies_among_them(spark, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    """Two pipelines in flight, replies split anywhere: errors land on the right rows."""
    client = client_for(redis_url)
    blocked = set(range(0, 400, 37))
    for i in blocked:
        client.set(key_of(edge, i), "not a hash")
    rows = [{"acct_id": i, "n": i, "label": "x" * (i % 50), "amount": None if i % 3 else i / 8} for i in range(400)]
    stats = write_view(frame(spark, edge, rows), writer_catalog, edge, redis_url, computed_at_ms=9, pipeline_rows=7)
    assert (stats.rows, stats.written, stats.failed) == (400, 400 - len(blocked), len(blocked))
    for i in range(400):
        if i in blocked:
            assert client.get(key_of(edge, i)) == b"not a hash"
        else:
            assert client.hget(key_of(edge, i), "n") == str(i).encode()
            assert client.hget(key_of(edge, i), "_ts:edge") == b"9"
