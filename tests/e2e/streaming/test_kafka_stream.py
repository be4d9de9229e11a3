"""`featurestore stream` (the generic job over the fraud example's declared `user_realtime`) end to end on a
real Kafka broker (KRaft), Spark's Kafka source and Redis 8: a driver SIGKILLed mid-stream and restarted from
its checkpoint (by the spark-submit entry file) ends with exactly the Redis state the events call for —
computed from the events produced with `windows.reference` (values, each user's `_ts` at their latest event
time: the guard's decisions, per-field TTLs from the catalogue, no key TTL) — bad records are dead letters
counted by distinct record id (at-least-once: a restart may send one again), and replaying the topic from the
beginning into a store holding newer values changes nothing.  The replay's driver also runs a second declared
view of the same topic (tests/e2e/streaming/two_views.py), which ends as its reference says.  The late events
stay within the view's allowed lateness, so the watermark drops none and the reference over every event is
exact (too-late events: tests/spark/streaming/test_generic_stream.py).

The reference is computed, not run: a second, uninterrupted driver over the same events would only repeat
what the reference states (the uninterrupted Kafka path from an empty store is the demo's, run by
tests/e2e/test_wheel_install.py).  The drivers are subprocesses (a SIGKILL needs a process of its own), one
at a time: on a busy 2-core machine two drivers side by side starve each other's Python workers."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import redis

from featurestore.jobs.dev.kafka_command import produce_demo
from featurestore.jobs.dev.streaming_demo import WithinLateness, compare, expected_features
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming import kafka_client
from featurestore.jobs.streaming.windows import ViewProgram, reference
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.readers import FeatureReader
from tests.e2e.streaming.two_views import user_countries_live
from tests.helpers.streaming import finish_driver, report_of

REPO = Path(__file__).resolve().parents[3]
EVENTS, USERS, PER_BATCH = 1200, 100, 100
FIELDS = ("txn_count_5m", "last_amount", "last_country", "seconds_since_prev_txn")
TS_FIELD = b"_ts:user_realtime"


def _driver(command: list[str], url: str, kafka: Any, topic: str, checkpoint: Path, log: Path, *extra: str) -> Any:
    args = [
        "--redis-url", url, "--bootstrap-servers", kafka.bootstrap, "--topic", topic, "--checkpoint", str(checkpoint),
        "--trigger-seconds", "0.5", "--report-seconds", "1", "--partitions", "1", *extra,
    ]  # fmt: skip
    with open(log, "ab") as output:
        return subprocess.Popen(
            [*command, *args], stdout=output, stderr=subprocess.STDOUT, start_new_session=True, cwd=REPO
        )


CLI = [sys.executable, "-m", "featurestore.jobs.cli", "stream"]
ENTRY = [sys.executable, str(REPO / "jobs" / "featurestore" / "jobs" / "stream_job.py")]


def _batches(folder: Path) -> int:
    return len([p for p in folder.glob("[0-9]*")]) if folder.is_dir() else 0


def _state(client: Any) -> dict[bytes, dict[bytes, bytes]]:
    return {key: client.hgetall(key) for key in client.scan_iter("fs:user:*")}


def _ttls(client: Any, key: bytes, fields: list[bytes]) -> list[int]:
    return list(client.execute_command("HTTL", key, "FIELDS", len(fields), *fields))


def _reference_state(events: list[Any]) -> tuple[dict[bytes, set[bytes]], dict[bytes, bytes]]:
    """Per user key, from the events produced (`windows.reference` at each user's latest event time: no
    timer fires within this run, as no bucket leaves its window before the watermark): the fields the hash
    must hold (a null is an absent field), and `_ts:user_realtime` (the latest event time: the as-of)."""
    expected = expected_features(events)
    fields, ts = {}, {}
    for user, want in expected.items():
        key = b"fs:user:{%d}" % user
        fields[key] = {name.encode() for name in FIELDS if want[name] is not None} | {TS_FIELD}
        ts[key] = str(want["event_ms"]).encode()
    return fields, ts


def _dead_letter_keys(bootstrap: str, topic: str, at_least: int) -> list[str]:
    """The keys (record ids) of the dead-letter topic's records."""
    consumer = kafka_client.consumer(bootstrap, f"check-{topic}")
    consumer.subscribe([topic])
    keys: list[str] = []
    try:
        for _ in range(40):
            keys += [m.key().decode() for m in consumer.consume(100, 0.5) if m.error() is None]
            if len(keys) >= at_least:
                break
    finally:
        consumer.close()
    return keys


def test_sigkill_restart_is_exact_and_replay_changes_nothing(
    kafka: Any, kafka_topic: str, redis_url: str, tmp_path: Path
) -> None:
    generator = WithinLateness(USERS, seed=5)  # late events within the view's allowed lateness (1 min)
    sent = produce_demo(
        kafka.bootstrap, kafka_topic, users=USERS, events=EVENTS, bad_share=0.01, seed=5, generator=generator
    )
    assert sent.bad > 0
    drivers: list[Any] = []
    try:
        # the run that is killed, then restarted from its checkpoint
        started = time.time()
        killed = _driver(CLI, redis_url, kafka, kafka_topic, tmp_path / "cp-b", tmp_path / "b.log",
                         "--max-offsets-per-trigger", str(PER_BATCH))  # fmt: skip
        drivers.append(killed)
        fingerprint = ViewProgram.of(catalog.view("user_realtime")).fingerprint[:8]
        commits = tmp_path / "cp-b" / "user_realtime" / fingerprint / "features" / "commits"  # one per definition
        deadline = time.monotonic() + 240
        while _batches(commits) < 2:
            assert killed.poll() is None, (tmp_path / "b.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the killed run committed no micro-batch in time"
            time.sleep(0.05)
        os.killpg(killed.pid, signal.SIGKILL)  # the driver and its JVM, mid-stream
        killed.wait()
        committed = _batches(commits)
        assert committed < EVENTS // PER_BATCH  # it was killed before the end of the topic
        # the restart replays the batch the kill interrupted (its offsets are in the checkpoint), then takes
        # the rest in bigger batches: each micro-batch costs seconds of the state store's commit
        restarted = _driver(ENTRY, redis_url, kafka, kafka_topic, tmp_path / "cp-b", tmp_path / "b2.log",
                            "--available-now", "--max-offsets-per-trigger", str(4 * PER_BATCH))  # fmt: skip
        drivers.append(restarted)
        report_b = finish_driver(restarted, tmp_path / "b2.log")
        assert _batches(commits) > committed  # the restart went on from the checkpoint

        # exactly the state the events call for, computed from them (not by a second driver)
        a = redis.Redis.from_url(redis_url)
        state = _state(a)
        fields, ts = _reference_state(sent.events)
        assert len(state) == USERS and {key: set(hash_) for key, hash_ in state.items()} == fields
        assert {key: hash_[TS_FIELD] for key, hash_ in state.items()} == ts  # the guard's decisions
        view = catalog.view("user_realtime")
        for key, hash_ in state.items():
            names = sorted(f for f in hash_ if not f.startswith(b"_ts:"))
            want = [view.feature(name.decode()).ttl_seconds for name in names]  # the catalogue's per-field TTLs
            got = _ttls(a, key, names)
            elapsed = time.time() - started  # each field was last written after `started`, with its own TTL
            assert all(w is not None and w - elapsed - 1 <= x <= w for x, w in zip(got, want)), (key, got, want)
            assert a.ttl(key) == -1  # streaming never sets a key TTL
        expected = expected_features(sent.events)
        with FeatureReader(redis_url, catalog=catalog) as reader:
            assert compare(expected, reader.get_many(sorted(expected), "user_realtime")) == []
        assert report_b["events"] > 0 and report_b["view"] == "user_realtime" and report_b["late"] == 0

        # replay from the beginning (a new checkpoint), where 3 users hold newer values
        newer_ms = int(time.time() * 1000) + 3_600_000
        with StreamingWriter.connect(redis_url, "user_realtime") as writer:
            for user in (1, 2, 3):
                writer.write(user, {"last_country": "ZZ", "txn_count_5m": 99}, event_time=newer_ms)
        before = _state(a)
        # one driver, two views of the topic: user_realtime and the second view (new in this store)
        replay = _driver(CLI, redis_url, kafka, kafka_topic, tmp_path / "cp-replay", tmp_path / "r.log",
                         "--available-now",  # the whole topic in one micro-batch per query
                         "--catalog", "tests.e2e.streaming.two_views",
                         "--view", "user_realtime", "--view", "user_countries_live")  # fmt: skip
        drivers.append(replay)
        report_second = finish_driver(replay, tmp_path / "r.log")
        report_r = report_of(tmp_path / "r.log", "user_realtime")
        assert report_second["view"] == "user_countries_live" and report_second["events"] == EVENTS
        second = ViewProgram.of(user_countries_live)
        by_user: dict[int, list[dict[str, Any]]] = {}
        for e in sent.events:
            by_user.setdefault(e.user_id, []).append(
                {"user_id": e.user_id, "amount": e.amount, "country": e.country, "event_time": e.event_ms}
            )
        for user, events in by_user.items():
            stored = a.hgetall(b"fs:user:{%d}" % user)
            as_of = int(stored[b"_ts:user_countries_live"])
            assert as_of == max(e["event_time"] for e in events)
            want = reference(second, events, as_of)
            assert int(stored[b"countries_10m"]) == want["countries_10m"]
            assert float(stored[b"amount_max_10m"]) == want["amount_max_10m"]
            for name in ("countries_10m", "amount_max_10m", "_ts:user_countries_live"):
                del stored[name.encode()]
            before_hash = before[b"fs:user:{%d}" % user]
            assert stored == before_hash, user  # user_realtime's fields: the replay changed nothing
        assert report_r["skipped"] > 0 and report_r["events"] == EVENTS and report_r["late"] == 0
        # one uninterrupted run over the whole topic: every event and every bad record counted
        assert report_r["dead_letters"] == sent.bad and report_r["written"] + report_r["skipped"] >= USERS
        assert a.hget("fs:user:{1}", "last_country") == b"ZZ"
        # dead letters, keyed by record id: at-least-once across the kill, and the replay sent them again
        keys = _dead_letter_keys(kafka.bootstrap, f"{kafka_topic}.dead-letters", 3 * sent.bad)
        mine = [key for key in keys if key.startswith(f"user_realtime/{kafka_topic}/")]
        assert len(set(mine)) == sent.bad and len(mine) >= 2 * sent.bad
        assert len({key for key in keys if key.startswith(f"user_countries_live/{kafka_topic}/")}) == sent.bad
    finally:
        for driver in drivers:
            if driver.poll() is None:
                os.killpg(driver.pid, signal.SIGKILL)
                driver.wait()
