"""`featurestore stream`, the streaming demo, end to end: generated events, Spark Structured Streaming,
Redis 8, and the served values checked against the reference fold."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import redis

from featurestore.jobs.dev.streaming_demo import run_streaming_demo
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.readers import codec


def test_streaming_demo_end_to_end(spark: Any, redis_url: str, tmp_path: Path) -> None:
    summary = run_streaming_demo(spark, redis_url, tmp_path, users=20, seconds=3, rate=40)
    assert summary["matches"], summary["mismatches"]
    assert summary["events"] >= 80 and summary["users_with_events"] == 20
    assert summary["rows_written"] >= 20 and summary["micro_batches"] >= 1
    assert summary["server"].startswith("Redis 8")
    client = redis.Redis.from_url(redis_url)
    key = codec.entity_key(catalog.entity("user"), summary["sample_user"])
    ttls = client.execute_command("HTTL", key, "FIELDS", 2, "txn_count_5m", "last_amount")
    assert 0 < ttls[0] <= 600 and 600 < ttls[1] <= 3600
    assert client.ttl(key) == -1  # streaming set no key TTL
    assert 0 <= summary["sample_age_seconds"] < 120
