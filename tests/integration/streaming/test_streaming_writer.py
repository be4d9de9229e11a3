"""The streaming writer on real servers: Redis 8, Valkey 9, Redis 7.0 (the version error)."""

from __future__ import annotations

import threading
import time
from typing import Any

import pyarrow as pa
import pytest
import redis

from featurestore.jobs.dev import local_redis
from featurestore.jobs.examples.fraud.definitions import catalog, user_profile, user_realtime, user_transactions
from featurestore.jobs.streaming import GUARD_LIBRARY, HSET_HEXPIRE, HSETEX, StreamingWriter
from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.jobs.write.partition_writer import PartitionWriter, WriterOptions
from featurestore.readers import FeatureReader, FeatureStatus, codec
from featurestore.readers.definitions import DType, FeatureView
from featurestore.readers.errors import (
    ConfigurationError,
    EncodingError,
    FeatureStoreConnectionError,
    UnsupportedServerError,
    WriteError,
)
from tests.helpers.streaming import activity, batch_load, live, now_ms, profile, short_catalog

EVENT = {"txn_count_5m": 3, "last_amount": 12.5, "last_country": "FR", "seconds_since_prev_txn": 42.25}
RT_FIELDS = [*user_realtime.feature_names, "_ts:user_realtime"]
KEY = b"fs:user:{42}"

# (server fixture, forced method or "auto", the method that must be used)
ENGINES = [
    pytest.param("redis_url", "auto", HSETEX, id="redis8"),
    pytest.param("valkey_url", "auto", HSETEX, id="valkey9"),
    pytest.param("redis_url", HSET_HEXPIRE, HSET_HEXPIRE, id="redis8-as-7.4"),
]


def httl(client: Any, key: bytes, fields: list[str]) -> list[int]:
    return list(client.execute_command("HTTL", key, "FIELDS", len(fields), *fields))


def libraries(client: Any) -> list[str]:
    return [dict(zip(lib[::2], lib[1::2]))[b"library_name"].decode() for lib in client.function_list()]


def calls(client: Any, command: str) -> int:
    return int(client.info("commandstats").get(f"cmdstat_{command}", {}).get("calls", 0))


@pytest.mark.parametrize("guard", [True, False], ids=["guarded", "unguarded"])
@pytest.mark.parametrize(("server", "method", "expected_method"), ENGINES)
def test_each_field_carries_its_own_ttl(
    request: pytest.FixtureRequest, server: str, method: str, expected_method: str, guard: bool
) -> None:
    url = request.getfixturevalue(server)
    client = redis.Redis.from_url(url)
    with StreamingWriter.connect(url, "user_realtime", catalog=catalog, guard=guard, method=method) as writer:
        assert writer.method == expected_method
        before = {c: calls(client, c) for c in ("hsetex", "hset", "hexpire", "fcall")}
        assert writer.write(42, EVENT, now_ms()) is True
    after = {c: calls(client, c) for c in before}
    # the server really ran the commands of the chosen method (also inside the function)
    if expected_method == HSETEX:
        assert after["hsetex"] - before["hsetex"] == 2  # one per distinct TTL
        assert after["hexpire"] == before["hexpire"]
    else:
        assert after["hset"] - before["hset"] >= 1 and after["hexpire"] - before["hexpire"] == 2
    assert after["fcall"] - before["fcall"] == (1 if guard else 0)

    ttls = httl(client, KEY, RT_FIELDS)
    assert 358 <= ttls[0] <= 360  # txn_count_5m: 6 minutes (window + lateness)
    assert all(3598 <= t <= 3600 for t in ttls[1:])  # the others and `_ts`: 1 hour
    assert client.ttl(KEY) == -1  # the key itself has no TTL: streaming never sets one
    stored = client.hgetall(KEY)
    for name, value in EVENT.items():
        assert codec.decode_value(user_realtime.feature(name), stored[name.encode()]) == value


@pytest.mark.parametrize(("server", "method", "expected_method"), ENGINES)
def test_streaming_leaves_key_ttl_and_batch_fields_alone(
    request: pytest.FixtureRequest, server: str, method: str, expected_method: str
) -> None:
    url = request.getfixturevalue(server)
    client = redis.Redis.from_url(url)
    batch_load(client, catalog, user_profile, {42: {"home_country": "FR", "account_age_days": 10}})
    batch_load(client, catalog, user_transactions, {42: {"txn_count_7d": 5}})
    client.expire(KEY, 1234)  # a distinctive key TTL: a streaming write must not reset it
    batch_ttls = httl(client, KEY, ["home_country", "txn_count_7d"])
    assert batch_ttls[0] == -1 and 172790 <= batch_ttls[1] <= 172800  # key TTL; user_transactions' HEXPIRE
    with StreamingWriter.connect(url, user_realtime, catalog=catalog, method=method) as writer:
        writer.write_many([(42, EVENT, now_ms()), (43, {"txn_count_5m": 1}, None)])
    assert 1230 <= client.ttl(KEY) <= 1234
    assert httl(client, KEY, ["home_country", "txn_count_7d"])[0] == -1
    assert 172790 <= httl(client, KEY, ["txn_count_7d"])[0] <= 172800
    assert client.hget(KEY, "home_country") == b"FR" and client.hget(KEY, "txn_count_7d") == b"5"
    assert client.ttl(b"fs:user:{43}") == -1


@pytest.mark.parametrize(("server", "method", "expected_method"), ENGINES)
def test_out_of_order_events_never_overwrite(
    request: pytest.FixtureRequest, server: str, method: str, expected_method: str
) -> None:
    url = request.getfixturevalue(server)
    client = redis.Redis.from_url(url)
    t = now_ms()
    with StreamingWriter.connect(url, "user_realtime", catalog=catalog, method=method) as writer:
        assert writer.write(42, {"last_amount": 10.0, "last_country": "FR"}, t)
        assert writer.write(42, {"last_amount": 99.0, "last_country": None}, t - 1000) is False  # older: skipped
        assert client.hmget(KEY, "last_amount", "last_country", "_ts:user_realtime") == [
            b"10",
            b"FR",
            str(t).encode(),
        ]
        assert writer.write(42, {"last_amount": 11.0}, t)  # the same time again: written (idempotent retries)
        # in one pipeline, a newer event then an older one: the older is skipped on the server
        stats = writer.write_many([(42, {"last_amount": 12.0}, t + 5), (42, {"last_amount": 1.0}, t + 1)])
        assert (stats.written, stats.skipped) == (1, 1)
    assert client.hget(KEY, "last_amount") == b"12"
    assert client.hget(KEY, "_ts:user_realtime") == str(t + 5).encode()
    # Without the guard the last write wins, even when older: the guard is what protects.
    with StreamingWriter.connect(url, "user_realtime", catalog=catalog, method=method, guard=False) as unguarded:
        unguarded.write(42, {"last_amount": 1.0}, t)
    assert client.hget(KEY, "last_amount") == b"1"


def test_null_deletes_only_that_field(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        writer.write(42, EVENT, now_ms())
        writer.write(42, {"last_country": None, "seconds_since_prev_txn": float("nan")}, now_ms())
    assert client.hexists(KEY, "last_country") is False
    assert client.hexists(KEY, "seconds_since_prev_txn") is False
    assert client.hget(KEY, "last_amount") == b"12.5"  # left out of the event: untouched
    with FeatureReader(redis_url, catalog=catalog) as reader:
        vector = reader.get(42, "user_realtime")
    assert vector.status("last_country") is FeatureStatus.MISSING and vector["last_country"] == ""
    assert vector.status("last_amount") is FeatureStatus.PRESENT and vector["last_amount"] == 12.5
    assert 0 <= vector.age("user_realtime") < 5  # type: ignore[operator]


def test_refusals_write_nothing(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        with pytest.raises(ConfigurationError, match="batch view 'user_profile'"):
            writer.write_many([(1, {"txn_count_5m": 1}, None), (2, {"home_country": "FR"}, None)])
        with pytest.raises(EncodingError, match="txn_count_5m"):
            writer.write(3, {"txn_count_5m": "many"})
    # the chunk is encoded before anything is sent: the good event of it was not written either
    assert client.exists(b"fs:user:{1}", b"fs:user:{2}", b"fs:user:{3}") == 0
    with pytest.raises(ConfigurationError, match="'user_profile' is a batch view"):
        StreamingWriter.connect(redis_url, "user_profile", catalog=catalog)


def test_wrong_type_key_is_a_write_error(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.set(b"fs:user:{5}", b"not a hash")
    with (
        StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer,
        pytest.raises(WriteError, match=r"'user_realtime'.*fs:user:\{5\}.*WRONGTYPE"),
    ):
        writer.write(5, {"txn_count_5m": 1})


def test_registry_entry_lets_readers_check_their_decoders(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog):
        pass
    entry = codec.parse_registry_entry(client.hget(codec.REGISTRY_KEY, "user_realtime"))
    assert entry["fingerprint"] == codec.fingerprint(user_realtime) and entry["kind"] == "streaming"
    with FeatureReader.connect(redis_url, catalog=catalog) as reader:  # connect: checks the registry
        assert reader.registry_status["user_realtime"] == "ok"


def test_function_is_reloaded_after_a_flush(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        assert libraries(client) == [GUARD_LIBRARY]
        client.function_flush()  # e.g. a restarted server without persistence
        assert writer.write(42, {"txn_count_5m": 2}, now_ms())
    assert client.hget(KEY, "txn_count_5m") == b"2"
    assert libraries(client) == [GUARD_LIBRARY]


def test_redis_70_is_refused_before_anything_is_written(redis7_url: str) -> None:
    client = redis.Redis.from_url(redis7_url)
    with pytest.raises(UnsupportedServerError) as info:
        StreamingWriter.connect(redis7_url, "user_realtime", catalog=catalog)
    message = str(info.value)
    assert "Redis 7.0." in message and "Redis >= 7.4" in message and "'user_realtime'" in message
    assert client.dbsize() == 0  # no registry entry, no data
    assert client.function_list() == []  # not even the guard function
    # the same when the first write connects (the constructor does no I/O)
    lazy = StreamingWriter(redis7_url, "user_realtime", catalog=catalog)
    with pytest.raises(UnsupportedServerError, match="Redis 7.0."):
        lazy.write(42, {"txn_count_5m": 1}, now_ms())
    lazy.close()
    assert client.dbsize() == 0 and client.function_list() == []


def test_the_first_write_connects(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    client.function_flush()
    writer = StreamingWriter(redis_url, "user_realtime", catalog=catalog)  # no I/O yet
    assert not writer.connected and writer.method is None and libraries(client) == []
    assert writer.write(42, {"txn_count_5m": 1}, now_ms())
    assert writer.connected and writer.method == HSETEX and writer.server_version
    assert libraries(client) == [GUARD_LIBRARY] and client.hexists(codec.REGISTRY_KEY, "user_realtime")
    writer.close()


# --- expiry: a stopped stream's features vanish, the batch ones stay ------------------------


@pytest.mark.parametrize("server", ["redis_url", "valkey_url"])
def test_stopped_stream_fields_vanish_within_ttl_while_batch_fields_stay(
    request: pytest.FixtureRequest, server: str
) -> None:
    url = request.getfixturevalue(server)
    client = redis.Redis.from_url(url)
    ids = list(range(1, 21))
    batch_load(client, short_catalog, profile, {i: {"home_country": "FR", "credit_limit": 100.0 * i} for i in ids})
    batch_load(client, short_catalog, activity, {i: {"txn_count_1d": i} for i in ids})
    event = {"clicks_1m": 3, "last_page": "/pay", "risk_score": 0.5, "embedding": [1.0, 2.0, 3.0], "is_mobile": True}
    stop = threading.Event()
    last: dict[str, float] = {}

    def stream() -> None:  # a streaming pipeline writing every 100 ms until it dies
        with StreamingWriter.connect(url, live, catalog=short_catalog) as writer:
            while not stop.is_set():
                sent = time.time()
                writer.write_many([(i, event, None) for i in ids])
                last.update(sent=sent, done=time.time())
                time.sleep(0.1)

    worker = threading.Thread(target=stream)
    worker.start()
    time.sleep(0.6)
    names = [*live.feature_names, *profile.feature_names]
    with FeatureReader(url, catalog=short_catalog, check_registry=False) as reader:
        alive = reader.get_many(ids, names)
        assert all(v.all_present for v in alive)
        stop.set()
        worker.join()
        # the TTL of each field counts from the last write: present before it, gone after it + 1 s
        vanished: dict[str, float] = {}
        deadline = last["done"] + 2 + 1.5
        while time.time() < deadline and len(vanished) < len(live.features):
            polled = time.time()
            for feature in live.features:
                values = client.pipeline(transaction=False)
                for i in ids:
                    values.hexists(codec.entity_key(live.entity, i), feature.name)
                present = values.execute()
                if feature.name not in vanished and not any(present):
                    vanished[feature.name] = polled
                elif any(present):
                    # never gone early: expiry is the server's now at the write + TTL >= sent + TTL
                    assert polled < last["done"] + feature.ttl_seconds + 1  # type: ignore[operator]
            time.sleep(0.05)
        for feature in live.features:
            ttl = live.feature_ttl(feature)
            assert feature.name in vanished, f"{feature.name} still present {ttl + 1.5:.1f}s after the last write"
            assert vanished[feature.name] >= last["sent"] + ttl - 0.05, feature.name
            assert vanished[feature.name] <= last["done"] + ttl + 1, feature.name
        assert client.hexists(b"fs:user:{1}", "_ts:live") is False  # `_ts` went with the longest TTL
        after = reader.get_many(ids, names)
    for vector in after:
        assert all(vector.status(f) is FeatureStatus.MISSING for f in live.feature_names)
        assert vector["clicks_1m"] == 0 and vector["last_page"] == "" and vector["risk_score"] is None
        assert vector.status("home_country") is FeatureStatus.PRESENT and vector["home_country"] == "FR"
        assert vector.age("live") is None
    assert 100 <= client.ttl(b"fs:user:{1}") <= 120  # the batch key TTL is still running
    assert client.hget(b"fs:user:{7}", "txn_count_1d") == b"7"


# --- batch and streaming writers on the same entities at the same time -----------------------


def arrow_batch(view: FeatureView, ids: list[int], salt: int) -> pa.RecordBatch:
    types = {DType.INT64: pa.int64(), DType.FLOAT64: pa.float64(), DType.FLOAT32: pa.float32()}
    types |= {DType.STRING: pa.string(), DType.BOOL: pa.bool_()}
    columns: dict[str, pa.Array] = {view.entity.join_key: pa.array(ids, pa.int64())}
    for n, feature in enumerate(view.features):
        kind = DType(feature.dtype)
        if kind is DType.STRING:
            values: list[Any] = [f"v{i % 7}" for i in ids]
        elif kind is DType.BOOL:
            values = [i % 2 == 0 for i in ids]
        else:
            values = [i + n + salt for i in ids]
        columns[feature.name] = pa.array(values, types[kind])
    return pa.RecordBatch.from_pydict(columns)


def test_batch_and_streaming_at_once_lose_nothing(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    ids = list(range(1, 3001))
    key_ttl = catalog.key_ttl("user")
    spans: dict[str, tuple[float, float]] = {}
    errors: list[BaseException] = []
    start = threading.Barrier(2)

    def batch_job() -> None:  # the real batch writer, as each Spark task runs it
        try:
            start.wait()
            began = time.time()
            for salt in (0, 1):
                for view in (user_profile, user_transactions):
                    options = WriterOptions(redis_url, computed_at_ms=now_ms(), pipeline_rows=250)
                    chunks = [arrow_batch(view, ids[i : i + 500], salt) for i in range(0, len(ids), 500)]
                    stats = PartitionWriter(BatchWritePlan.build(catalog, view), options).write(chunks)
                    assert stats.written == len(ids) and stats.failed == 0 and stats.fatal is None
            spans["batch"] = (began, time.time())
        except BaseException as exc:
            errors.append(exc)

    def streaming_job() -> None:
        try:
            with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog, max_pipeline=200) as writer:
                start.wait()
                began = time.time()
                for round_ in range(3):
                    stats = writer.write_many(
                        (i, {"txn_count_5m": round_, "last_amount": i + 0.5, "last_country": "DE"}, now_ms())
                        for i in ids
                    )
                    assert stats.written == len(ids)
                spans["stream"] = (began, time.time())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=batch_job), threading.Thread(target=streaming_job)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    # they really ran at the same time
    assert spans["batch"][0] < spans["stream"][1] and spans["stream"][0] < spans["batch"][1]

    batch_fields = [*user_profile.feature_names, *user_transactions.feature_names]
    stream_fields = ["txn_count_5m", "last_amount", "last_country", "_ts:user_realtime"]
    pipe = client.pipeline(transaction=False)
    for i in ids:
        key = codec.entity_key(user_realtime.entity, i)
        pipe.hgetall(key)
        pipe.execute_command("HTTL", key, "FIELDS", len(stream_fields), *stream_fields)
        pipe.execute_command("HTTL", key, "FIELDS", 2, "home_country", "txn_count_1d")
        pipe.ttl(key)
    replies = pipe.execute()
    for n, i in enumerate(ids):
        stored, stream_ttls, batch_ttls, ttl = replies[4 * n : 4 * n + 4]
        missing = [f for f in [*batch_fields, *stream_fields] if f.encode() not in stored]
        assert not missing, f"user {i} lost {missing}"
        assert stored[b"txn_count_5m"] == b"2" and stored[b"txn_count_1d"] == str(i + 1).encode()
        assert all(t > 0 for t in stream_ttls), f"user {i}: a streaming field without TTL {stream_ttls}"
        assert batch_ttls[0] == -1 and 172700 < batch_ttls[1] <= 172800, f"user {i}: {batch_ttls}"
        assert key_ttl is not None and key_ttl - 120 < ttl <= key_ttl, f"user {i}: key TTL {ttl}"


def test_a_killed_connection_is_retried(redis_url: str) -> None:
    client = redis.Redis.from_url(redis_url)
    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        assert writer.write(42, {"txn_count_5m": 1}, now_ms())
        killed = client.client_kill_filter(_type="normal", skipme=True)  # the writer's pooled connection
        assert killed >= 1
        stats = writer.write_many((i, {"txn_count_5m": 2}, None) for i in range(1, 101))
    assert stats.written == 100
    assert client.hget(b"fs:user:{100}", "txn_count_5m") == b"2"


def test_a_stopped_server_fails_loudly_and_soon(tmp_path: Any) -> None:
    server = local_redis.start(tmp_path / "doomed")
    try:
        writer = StreamingWriter.connect(server.url, "user_realtime", catalog=catalog, timeout=0.5, retry_seconds=1.0)
    finally:
        server.stop()
    started = time.monotonic()
    with pytest.raises(FeatureStoreConnectionError, match="user_realtime"):
        writer.write(1, {"txn_count_5m": 1})
    assert time.monotonic() - started < 5
    writer.close()
