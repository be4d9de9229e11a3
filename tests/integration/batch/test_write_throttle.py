"""The batch writer's throttle against a real Redis 8: the job-wide budget's counters
(INCRBY per window) shared by two tasks, one of them empty, on an injected clock; and the
adaptive mode's PING probe.  The pacing logic itself: tests/unit/writer/test_throttle.py."""

from __future__ import annotations

import redis

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.jobs.write.partition_writer import PartitionWriter, WriterOptions
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import RetryPolicy, Wire
from tests.helpers.writer import edge, writer_catalog
from tests.unit.writer.test_throttle import FakeClock
from tests.unit.writer.test_writer_fake_cluster import rows


def test_two_tasks_share_the_job_budget_in_redis_and_the_adaptive_probe_runs(redis_url: str) -> None:
    clock = FakeClock()
    plan = BatchWritePlan.build(writer_catalog, edge)
    options = WriterOptions(redis_url=redis_url, computed_at_ms=7, max_writes_per_sec=2000.0, throttle_token="t1")

    def task() -> PartitionWriter:
        wire = Wire(
            ConnectionSettings.from_url(redis_url), policy=RetryPolicy(seconds=5.0), clock=clock, sleep=clock.sleep
        )
        return PartitionWriter(plan, options, wire=wire, wall=clock)

    empty, full = task(), task()
    assert empty.write([]).rows == 0  # an empty partition takes no share of the budget
    stats = full.write([rows(600)])
    assert stats.written == 600 and full.pipeline_rows == 100  # half a 0.1 s window of 2,000 rows/s
    # 600 rows at 2,000 rows/s: 0.3 s (the last window's rows go at its start), not the 0.6 s
    # an even split between the two tasks gave
    assert 0.2 <= clock.now - 1000.0 <= 0.3 + 1e-9
    client = redis.Redis.from_url(redis_url)
    counters = sorted(client.keys("fs:_throttle:{t1}:*"))
    claimed = [int(client.get(k) or 0) for k in counters]  # a claim over a full window is retried in the next
    assert len(counters) == 3 and sum(min(c, 200) for c in claimed) == 600
    assert all(0 < client.pttl(k) <= 60_000 for k in counters)

    adaptive = WriterOptions(redis_url=redis_url, computed_at_ms=8, adaptive=True, adaptive_target_ms=0.5)
    writer = PartitionWriter(plan, adaptive)
    assert writer.write([rows(400, first=600)]).written == 400
    assert writer.adaptive is not None and writer.adaptive.baseline is not None and writer.adaptive.baseline > 0
    assert writer.probes == 16 + 2  # the idle calibration, then one probe per pipeline of 200 rows
    assert client.hget(b"fs:acct:{999}", b"_ts:edge") == b"8"
