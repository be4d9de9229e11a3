"""The plain consumer against a real Kafka broker (KRaft) and Redis 8: demo traffic with bad records in,
the declared view's last values per user out (`--features`: the view also has windowed features, which
the consumer refuses to compute), dead letters with their reasons keyed by record id, commits after the
write (a restarted consumer of the same group reads nothing again; a replay in a new group changes
nothing), and its progress where `featurestore status` finds it."""

from __future__ import annotations

import json
from typing import Any

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.dev.kafka_command import produce_demo
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming import kafka_client
from featurestore.jobs.streaming.events import REASONS, progress_key
from featurestore.jobs.streaming.kafka_consumer import FeatureConsumer
from featurestore.jobs.streaming.writer import StreamingWriter
from featurestore.readers import FeatureReader
from featurestore.readers.errors import ConfigurationError

LAST_VALUES = ("last_amount", "last_country")


def _dead_letters(bootstrap: str, topic: str, expected: int) -> list[dict[str, Any]]:
    consumer = kafka_client.consumer(bootstrap, f"check-{topic}")
    consumer.subscribe([topic])
    found: list[dict[str, Any]] = []
    try:
        for _ in range(40):
            found += [
                {**json.loads(m.value()), "_key": m.key().decode()}
                for m in consumer.consume(100, 0.5)
                if m.error() is None
            ]
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
        refusal = "has windowed features .* run featurestore stream --view user_realtime"
        with pytest.raises(ConfigurationError, match=refusal):
            FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="g0")
        consumer = FeatureConsumer.connect(
            kafka.bootstrap, kafka_topic, writer, group="g1", batch_size=200, features=LAST_VALUES
        )
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
    # keyed by record id (at-least-once: a consumer re-reading a round re-sends them; de-duplicate by key)
    assert all(d["_key"] == d["record_id"] == f"user_realtime/{kafka_topic}/{d['partition']}/{d['offset']}"
               for d in letters)  # fmt: skip
    assert len({d["_key"] for d in letters}) == sent.bad

    progress = {k.decode(): v.decode() for k, v in client.hgetall(progress_key("user_realtime")).items()}
    assert progress["source"] == f"consumer:{kafka_topic}" and progress["lag"] == "0"
    assert int(progress["dead_letters"]) == sent.bad

    before = {k: client.hgetall(k) for k in client.scan_iter("fs:user:*")}
    # the same group again: every offset was committed after its write, nothing is read twice
    with StreamingWriter.connect(redis_url, "user_realtime") as writer:
        again = FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="g1", features=LAST_VALUES)
        again.run(until_caught_up=True, report_seconds=0.5)
        assert again.stats.events == 0 and again.stats.dead_letters == 0
        # a replay from the beginning (a new group) into the store that has the newest values changes nothing
        replay = FeatureConsumer.connect(kafka.bootstrap, kafka_topic, writer, group="replay", features=LAST_VALUES,
                                         dead_letter_topic=f"{kafka_topic}.replayed-dead-letters")  # fmt: skip
        replay.run(until_caught_up=True, report_seconds=0.5)
    assert replay.stats.events == 600 and replay.stats.written == len(latest)  # only the equal (latest) ones
    assert {k: client.hgetall(k) for k in client.scan_iter("fs:user:*")} == before


def test_consume_refuses_windowed_features_in_one_line(kafka: Any, redis_url: str, capsys: Any) -> None:
    argv = ["consume", "--view", "user_realtime", "--bootstrap-servers", kafka.bootstrap, "--redis-url", redis_url]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert err.endswith(
        "view 'user_realtime' has windowed features (txn_count_5m, seconds_since_prev_txn): the plain consumer "
        "keeps no state; run featurestore stream --view user_realtime, or pass --features last_amount,last_country "
        "to write only its last values"
    )
