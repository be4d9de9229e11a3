"""The plain consumer against a real Kafka broker (KRaft) and Redis 8: demo traffic with bad records in,
the latest transaction per user out, dead letters with their reasons, commits after the write
(a restarted consumer of the same group reads nothing again; a replay in a new group changes nothing),
and its progress where `featurestore status` finds it."""

from __future__ import annotations

import json
from typing import Any

import redis

from featurestore.jobs.dev.kafka_command import produce_demo
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming import kafka_client
from featurestore.jobs.streaming.events import REASONS, progress_key
from featurestore.jobs.streaming.kafka_consumer import FeatureConsumer
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.readers import FeatureReader


def _dead_letters(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    consumer = kafka_client.consumer(bootstrap, f"check-{topic}")
    consumer.subscribe([topic])
    found: list[dict[str, Any]] = []
    try:
        for _ in range(40):
            found += [json.loads(m.value()) for m in consumer.consume(100, 0.5) if m.error() is None]
            if len(found) >= expected:
                break
    finally:
        consumer.close()
    return found


def test_consumer_writes_the_latest_transaction_at_least_once(kafka: Any, kafka_topic: str, redis_url: str) -> None:
    sent = produce_demo(kafka.bootstrap, kafka_topic, users=50, events=600, bad_share=0.02, seed=11)
    assert sent.bad >= 5
    latest: dict[int, Any] = {}
    for event in sent.events:
        if event.user_id not in latest or event.event_ms >= latest[event.user_id].event_ms:
            latest[event.user_id] = event

    with StreamingWriter.connect(redis_url, "user_realtime") as writer:
        consumer = FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="g1", batch_size=200)
        report = consumer.run(until_caught_up=True, report_seconds=0.5)
    assert report["lag"] == 0
    assert consumer.stats.events == 600 and consumer.stats.dead_letters == sent.bad
    # late events arrive after newer ones of the same user: the guard skipped them
    assert consumer.stats.written + consumer.stats.skipped == 600 and consumer.stats.skipped > 0
    assert report["latency_p99_seconds"] is None or report["latency_p99_seconds"] < 60

    with FeatureReader(redis_url, catalog=catalog) as reader:
        served = reader.get_many(sorted(latest), ["last_amount", "last_country"])
    for vector in served:
        want = latest[vector.entity_id]
        assert vector["last_country"] == want.country
        assert abs(vector["last_amount"] - want.amount) < 1e-3 * max(1.0, want.amount)  # float32
    client = redis.Redis.from_url(redis_url)
    stamps = {u: int(client.hget(f"fs:user:{{{u}}}", "_ts:user_realtime")) for u in latest}
    assert stamps == {u: e.event_ms for u, e in latest.items()}

    letters = _dead_letters(kafka.bootstrap, f"{kafka_topic}.dead-letters", sent.bad)
    assert len(letters) == sent.bad
    reasons = {d["reason"] for d in letters}
    assert reasons <= set(REASONS) and len(reasons) >= 3
    assert all(d["topic"] == kafka_topic and d["offset"] >= 0 and d["value"] for d in letters)

    progress = {k.decode(): v.decode() for k, v in client.hgetall(progress_key("user_realtime")).items()}
    assert progress["source"] == f"consumer:{kafka_topic}" and progress["lag"] == "0"
    assert int(progress["dead_letters"]) == sent.bad

    before = {k: client.hgetall(k) for k in client.scan_iter("fs:user:*")}
    # the same group again: every offset was committed after its write, nothing is read twice
    with StreamingWriter.connect(redis_url, "user_realtime") as writer:
        again = FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="g1")
        again.run(until_caught_up=True, report_seconds=0.5)
        assert again.stats.events == 0 and again.stats.dead_letters == 0
        # a replay from the beginning (a new group) into the store that has the newest values changes nothing
        replay = FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="replay",
                                         dead_letter_topic=f"{kafka_topic}.replayed-dead-letters")  # fmt: skip
        replay.run(until_caught_up=True, report_seconds=0.5)
    assert replay.stats.events == 600 and replay.stats.written == len(latest)  # only the equal (latest) ones
    assert {k: client.hgetall(k) for k in client.scan_iter("fs:user:*")} == before
