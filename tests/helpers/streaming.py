"""Helpers of the streaming tests: a catalogue with short TTLs, a batch loader, and the end of a
streaming driver run as a subprocess.

The short-TTL catalogue has the same shape as the example one (two batch views, one of
them shorter than the key TTL, and a streaming view whose features have different TTLs),
with lifetimes of seconds so expiry can be watched within a test.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import redis

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import Catalog, Entity, Feature, FeatureView

user = Entity("user", join_key="user_id")
profile = FeatureView(
    "profile",
    user,
    (Feature("home_country", "string", default=""), Feature("credit_limit", "float64")),
    ttl=120,  # the key TTL
)
activity = FeatureView("activity", user, (Feature("txn_count_1d", "int64", default=0),), ttl=60)  # gets HEXPIRE
live = FeatureView(
    "live",
    user,
    (
        Feature("clicks_1m", "int64", default=0, ttl=1),
        Feature("last_page", "string", default="", ttl=2),
        Feature("risk_score", "float32", ttl=2),
        Feature("embedding", "vector", dim=3, ttl=2),
        Feature("is_mobile", "bool", default=False, ttl=2),
    ),
    kind="streaming",
)
short_catalog = Catalog(views=(profile, activity, live))


def now_ms() -> int:
    return int(time.time() * 1000)


def batch_load(client: Any, catalog: Catalog, view: FeatureView, rows: Mapping[int, Mapping[str, Any]]) -> None:
    """Write rows exactly as the batch job does (BatchWritePlan commands), pipelined."""
    plan = BatchWritePlan.build(catalog, view)
    at = now_ms()
    pipe = client.pipeline(transaction=False)
    for entity_id, values in rows.items():
        for command in plan.commands(entity_id, values, at):
            pipe.execute_command(command[0].decode(), *command[1:])
    pipe.execute()


def plain_client(url: str) -> Any:
    base, _, query = url.partition("?")
    if "cluster=true" in query:
        return redis.RedisCluster.from_url(base)
    return redis.Redis.from_url(base)


def finish_driver(process: subprocess.Popen[bytes], log: Path, timeout: float = 300) -> dict[str, Any]:
    """Wait for a streaming driver (started with ``start_new_session=True``, output in ``log``) to end
    with exit code 0; return the last JSON report it printed.  A driver still running after
    ``timeout`` seconds is killed with its JVM (its process group) and the test fails."""
    try:
        code = process.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait()
        raise AssertionError(f"the driver did not finish in {timeout}s:\n{log.read_text()[-3000:]}") from None
    text = log.read_text()
    assert code == 0, text[-3000:]
    return dict(json.loads(next(line for line in reversed(text.splitlines()) if line.startswith("{"))))


def report_of(log: Path, view: str) -> dict[str, Any]:
    """The JSON report of ``view`` among the ones a driver printed when it ended (one line per view)."""
    lines = [json.loads(line) for line in log.read_text().splitlines() if line.startswith("{")]
    return dict(next(r for r in reversed(lines) if r.get("view") == view))
