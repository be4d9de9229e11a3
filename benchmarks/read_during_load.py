"""Serving latency while a batch load runs: the reader's ``get`` p99 idle, under an
unthrottled load, and under the adaptive throttle -- and the write rates achieved.

    python benchmarks/read_during_load.py [--entities 200000] [--rounds 3] [--target-ms 0.25]

One Redis 8 (started here), one reader process and Spark ``local[2]`` share the machine:

* a **reader** process calls ``FeatureReader.get(id, 20 features)`` about 2,000 times a
  second (paced, so it does not take a core for itself) and timestamps every call;
* the driver runs, in each round and in a rotating order: an **idle** phase (no load),
  an **unthrottled** ``write_view`` of N entities x 20 features, and an **adaptive**
  ``write_view(..., adaptive=True)`` of the same rows;
* each phase's reader calls (by timestamp) give its p50/p99; the ratios to the idle p99
  of the same round are what the adaptive mode is judged by (target: <= 1.5x);
* finally a **capped** load, ``max_writes_per_sec=--cap`` over two partitions of which one
  is empty (issue 14: the even split over partitions reached half the asked rate), its
  rate also given net of Spark's own time for a job over the same rows (a mapInArrow that
  only receives them, measured just before).

Prints the load average before and after, every round, and the median [min-max] over the
rounds.  Not a test: never run by pytest.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from array import array
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import bench_catalog, bench_view, machine_load, percentiles, show_spread

PACE_SECONDS = 0.0004  # between two reader calls: ~2,000 calls/s with the call itself


def reader_child(url: str, entities: int, out: str, stop: str) -> int:
    """The serving side: paced ``get`` calls until ``stop`` exists; (start, duration) ns pairs to ``out``."""
    from featurestore.readers import FeatureReader

    reader = FeatureReader(url, catalog=bench_catalog())
    features = list(bench_view().feature_names)
    rng = random.Random(5)
    for _ in range(500):  # warm up
        reader.get(rng.randrange(entities), features)
    print("ready", flush=True)
    samples = array("q")
    clock = time.monotonic_ns  # CLOCK_MONOTONIC: the same clock as the driver's phases
    while not os.path.exists(stop):
        for _ in range(100):
            entity_id = rng.randrange(entities)
            started = clock()
            reader.get(entity_id, features)
            samples.append(started)
            samples.append(clock() - started)
            time.sleep(PACE_SECONDS)
    with open(out, "wb") as f:
        samples.tofile(f)
    return 0


def spark_floor(df: Any) -> float:
    """Seconds Spark takes for a mapInArrow job that only receives the rows (defined here, in
    ``__main__``, so that cloudpickle ships it by value to the Python workers)."""

    def receive(batches: Any) -> Any:
        import pyarrow as pa

        yield pa.RecordBatch.from_pydict({"rows": [sum(batch.num_rows for batch in batches)]})

    started = time.monotonic()
    df.mapInArrow(receive, "rows long").collect()
    return time.monotonic() - started


def phase_latency(samples: array, start_ns: int, end_ns: int) -> dict[str, float]:
    durations = [samples[i + 1] for i in range(0, len(samples), 2) if start_ns <= samples[i] < end_ns]
    return percentiles(durations)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--entities", type=int, default=200_000, help="rows per load")
    parser.add_argument(
        "--adaptive-entities", type=int, default=None, help="rows of the adaptive load (default: --entities / 2)"
    )
    parser.add_argument("--reader-entities", type=int, default=20_000, help="entities the reader reads")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--idle-seconds", type=float, default=5.0)
    parser.add_argument("--target-ms", type=float, default=None, help="adaptive_target_ms (default: the writer's)")
    parser.add_argument("--cap", type=float, default=5000.0, help="max_writes_per_sec of the capped load")
    parser.add_argument("--cap-entities", type=int, default=40_000)
    parser.add_argument("--reader-child", nargs=3, metavar=("URL", "OUT", "STOP"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


@dataclass
class Run:
    """One benchmark run: its settings, the loads' rows, and what was measured."""

    args: argparse.Namespace
    target_ms: float
    url: str = ""
    df: Any = None
    adaptive_df: Any = None
    adaptive_n: int = 0
    phases: list[tuple[int, str, int, int, float]] = field(default_factory=list)  # round, phase, start/end ns, rows/s
    capped_runs: list[tuple[float, float, float]] = field(default_factory=list)  # rows/s wall, net of Spark, floor s
    samples: array = field(default_factory=lambda: array("q"))  # the reader's (start, duration) ns pairs


def start_reader(run: Run, out: str, stop: str) -> subprocess.Popen[str]:
    """The reader process (this script with --reader-child), once it has warmed up."""
    child = subprocess.Popen(
        [sys.executable, __file__, "--reader-child", run.url, out, stop,
         "--reader-entities", str(run.args.reader_entities)],
        stdout=subprocess.PIPE, text=True, env={**os.environ, "PYTHONHASHSEED": "0"},
    )  # fmt: skip
    assert child.stdout is not None and child.stdout.readline().strip() == "ready"
    return child


def run_phase(run: Run, round_: int, phase: str) -> None:
    """One phase: ``idle`` (sleep), ``unthrottled`` or ``adaptive`` (a write_view)."""
    from materialize_throughput import bench20, catalog

    from featurestore.jobs.write.partition_writer import write_view

    started = time.monotonic_ns()
    rate = 0.0
    if phase == "idle":
        time.sleep(run.args.idle_seconds)
    else:
        adaptive = phase == "adaptive"
        stats = write_view(
            run.adaptive_df if adaptive else run.df, catalog, bench20, run.url,
            computed_at_ms=int(time.time() * 1000), adaptive=adaptive, adaptive_target_ms=run.target_ms,
        )  # fmt: skip
        assert stats.written == (run.adaptive_n if adaptive else run.args.entities) and stats.failed == 0, stats
        rate = stats.rows_per_second
    run.phases.append((round_, phase, started, time.monotonic_ns(), rate))
    print(f"round {round_} {phase}: {(run.phases[-1][3] - started) / 1e9:.1f}s {rate:,.0f} rows/s", flush=True)


def run_capped(run: Run) -> None:
    """The capped load: two partitions, the second one empty.  Spark's own cost of a job
    over these rows (a mapInArrow that only receives them) is measured in the same run
    and taken off, so the rate is the writer's, not Spark's start-up."""
    from materialize_throughput import bench20, catalog

    from featurestore.jobs.write.partition_writer import write_view

    args = run.args
    capped = run.df.where(run.df["item_id"] < min(args.cap_entities, args.entities // 2))
    for _ in range(args.rounds):
        floor = spark_floor(capped)
        stats = write_view(
            capped, catalog, bench20, run.url, computed_at_ms=int(time.time() * 1000),
            max_writes_per_sec=args.cap,
        )  # fmt: skip
        run.capped_runs.append((stats.written / stats.seconds, stats.written / max(stats.seconds - floor, 1e-9), floor))
        print(
            f"capped: {run.capped_runs[-1][0]:,.0f} rows/s wall, {run.capped_runs[-1][1]:,.0f} net of Spark", flush=True
        )


def measure(run: Run) -> None:
    """Start Redis, Spark and the reader; run the rounds (phases in a rotating order), then
    the capped load; collect the reader's samples and stop everything."""
    from materialize_throughput import bench20, build_frame, catalog
    from reader_latency import load

    from featurestore.jobs.dev import local_redis
    from featurestore.jobs.spark import build_session
    from featurestore.jobs.write.partition_writer import write_view

    args = run.args
    workdir = tempfile.mkdtemp(prefix="fs-bench-")
    run.url = local_redis.start(workdir).url
    spark = None
    child = None
    stop = os.path.join(workdir, "stop")
    out = os.path.join(workdir, "samples")
    try:
        load(run.url, args.reader_entities)
        spark = build_session("read-during-load", master="local[2]", shuffle_partitions=2)
        spark.sparkContext.setLogLevel("ERROR")
        n = args.entities
        print(f"generating {n:,} entities x 20 features on local[2] (2 partitions) ...", flush=True)
        run.df = df = build_frame(spark, n, 2)
        now_ms = int(time.time() * 1000)
        write_view(df.where(df["item_id"] < 2000), catalog, bench20, run.url, computed_at_ms=now_ms)  # warm up
        child = start_reader(run, out, stop)
        run.adaptive_n = adaptive_n = min(n, args.adaptive_entities or n // 2)
        run.adaptive_df = df.where(df["item_id"] % (n // 2) < adaptive_n // 2)  # rows in both partitions
        order = ["idle", "unthrottled", "adaptive"]
        for round_ in range(1, args.rounds + 1):
            for phase in order[round_ - 1 :] + order[: round_ - 1]:  # rotate: no phase always first
                run_phase(run, round_, phase)
        run_capped(run)
    finally:
        if child is not None:
            Path(stop).touch()
            child.wait(timeout=60)
        if spark is not None:
            spark.stop()
        if os.path.exists(out):
            with open(out, "rb") as f:
                run.samples.frombytes(f.read())
        local_redis.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)


def report_rounds(run: Run) -> None:
    """Each round's phases (calls, p50, p99, p99/idle, rows/s), then median [min-max] over the rounds."""
    args = run.args
    results: dict[tuple[int, str], dict[str, Any]] = {}
    for round_, phase, start, end, rate in run.phases:
        results[round_, phase] = {**phase_latency(run.samples, start, end), "rate": rate}
    print(f"{'round':<7}{'phase':<13}{'calls':>7}{'p50 us':>9}{'p99 us':>9}{'p99/idle':>10}{'rows/s':>10}")
    ratios: dict[str, list[float]] = {"unthrottled": [], "adaptive": []}
    p99s: dict[str, list[float]] = {"idle": [], "unthrottled": [], "adaptive": []}
    rates: dict[str, list[float]] = {"unthrottled": [], "adaptive": []}
    for round_ in range(1, args.rounds + 1):
        idle = results[round_, "idle"]["p99"]
        for phase in ("idle", "unthrottled", "adaptive"):
            r = results[round_, phase]
            ratio = r["p99"] / idle
            p99s[phase].append(r["p99"])
            if phase != "idle":
                ratios[phase].append(ratio)
                rates[phase].append(r["rate"])
            print(
                f"{round_:<7}{phase:<13}{r['n']:>7}{r['p50']:>9.0f}{r['p99']:>9.0f}{ratio:>9.2f}x"
                f"{r['rate'] or 0:>10,.0f}"
            )
    print("\nmedian [min-max] over the rounds:")
    for phase in ("idle", "unthrottled", "adaptive"):
        line = f"  {phase:<12} p99 {show_spread(p99s[phase], '{:.0f}', ' us')}"
        if phase != "idle":
            line += f"  p99/idle {show_spread(ratios[phase], unit='x')}  rows/s {show_spread(rates[phase], '{:,.0f}')}"
        print(line)
    print("  target: adaptive p99 <= 1.5x idle p99")


def report_capped(run: Run) -> None:
    """The capped load's achieved rate over the cap, net of Spark's own job time and wall clock."""
    args, capped_runs = run.args, run.capped_runs
    if not capped_runs:
        return
    wall = [r[0] / args.cap for r in capped_runs]
    net = [r[1] / args.cap for r in capped_runs]
    floors = [r[2] for r in capped_runs]
    print(
        f"capped load: max_writes_per_sec={args.cap:,.0f}, {min(args.cap_entities, args.entities // 2):,} rows "
        f"over 2 partitions (one empty), {len(capped_runs)} runs:\n"
        f"  achieved / cap, net of Spark's own job time ({show_spread(floors, '{:.1f}', ' s')}): "
        f"{show_spread(net, unit='x')}; wall clock including it: {show_spread(wall, unit='x')}"
    )


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.reader_child:
        url, out, stop = args.reader_child
        return reader_child(url, args.reader_entities, out, stop)

    from featurestore.jobs.write.throttle import DEFAULT_ADAPTIVE_TARGET_MS

    run = Run(args, args.target_ms if args.target_ms is not None else DEFAULT_ADAPTIVE_TARGET_MS)
    load_before = machine_load()
    measure(run)
    load_after = machine_load()
    print()
    print(
        f"reader get (20 features) during a write_view of {args.entities:,} (adaptive: "
        f"{min(args.entities, args.adaptive_entities or args.entities // 2):,}) entities x 20 features, "
        f"Redis 8, Spark local[2], {os.cpu_count()} cores; adaptive_target_ms={run.target_ms:g}"
    )
    print(f"load average (1/5/15 min) before: {load_before}  after: {load_after}")
    report_rounds(run)
    report_capped(run)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
