"""Feast with our online store against Feast with its own Redis store, side by side (issue 21, item 4).

    python benchmarks/feast_online_store.py [--entities 5000] [--calls 2000] [--rounds 3] [--layout compact]

Both stores run under the same Feast 0.67 (the tests' side venv, tests/helpers/feast.py: built
with pip on first use) against one embedded Redis 8 started here, flushed between runs, in
alternating order per round.  Through Feast's own API: ``write_to_online_store`` rows/s (the
``online_write_batch`` path of ``feast materialize`` and ``push``), the memory of an entity's key,
and ``get_online_features(...).to_dict()`` p50/p99 for 1 and 100 entities of a 20-feature view.
Prints each figure as median [min-max] over the rounds, the ratios ours / Feast's, and the
machine's load before and after (the cores are shared).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from _common import machine_load, show_spread

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))  # tests.helpers.feast: the side venv the tests use

METRICS = ("write_rows_per_s", "bytes_per_entity", "get_1.p50", "get_1.p99", "get_100.p50", "get_100.p99")


def _value(result: dict[str, Any], metric: str) -> float:
    if "." in metric:
        call, q = metric.split(".")
        return float(result[call][q])
    return float(result[metric])


def run_one(python: Path, store: str, url: str, args: argparse.Namespace, workdir: str) -> dict[str, Any]:
    from tests.helpers.feast import feast_env

    command = [
        str(python), str(Path(__file__).resolve().parent / "_feast_store_bench.py"), "--store", store,
        "--redis-url", url, "--entities", str(args.entities), "--calls", str(args.calls),
        "--workdir", os.path.join(workdir, store), "--layout", args.layout,
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, env=feast_env(), cwd=workdir)
    if done.returncode != 0:
        raise SystemExit(f"{store}: {done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--entities", type=int, default=5000)
    parser.add_argument("--calls", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--layout", choices=("text", "compact"), default="text", help="our store's `layout`")
    args = parser.parse_args(argv)

    from featurestore.jobs.dev import local_redis
    from tests.helpers.feast import feast_python

    python, built = feast_python()
    if built:
        print(f"built the Feast side venv in {built:.0f} s")
    load_before = machine_load()
    workdir = tempfile.mkdtemp(prefix="fs-bench-feast-")
    server = local_redis.start(workdir)
    runs: dict[str, list[dict[str, Any]]] = {"ours": [], "redis": []}
    try:
        for round_ in range(args.rounds):
            for store in ("ours", "redis") if round_ % 2 == 0 else ("redis", "ours"):
                server.client().flushall()
                runs[store].append(run_one(python, store, server.url, args, workdir))
    finally:
        local_redis.stop(workdir)
        shutil.rmtree(workdir, ignore_errors=True)
    version = runs["ours"][0]["feast_version"]
    print(f"\nFeast {version}: our online store ({args.layout}) vs Feast's Redis store,")
    print(f"{args.entities} entities x 20 features, one Redis 8 on loopback, {args.rounds} rounds, median [min-max];")
    print("latency in microseconds")
    print(f"{'metric':<20}{'ours':>28}{'feast redis':>28}{'ours / feast':>28}")
    for metric in METRICS:
        ours = [_value(r, metric) for r in runs["ours"]]
        theirs = [_value(r, metric) for r in runs["redis"]]
        ratios = [a / b for a, b in zip(ours, theirs, strict=True)]
        print(f"{metric:<20}{show_spread(ours, '{:.0f}'):>28}{show_spread(theirs, '{:.0f}'):>28}"
              f"{show_spread(ratios, unit='x'):>28}")  # fmt: skip
    print(f"load average before {load_before}, after {machine_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
