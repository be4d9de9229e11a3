"""Run by benchmarks/memory_per_entity.py inside the side venv that has Feast installed.

    /tmp/feast-venv/bin/python benchmarks/_feast_writer.py --redis 127.0.0.1:6379 \
        --rows rows.parquet --floats float64 --workdir DIR

Writes the rows of ``rows.parquet`` (``user_id`` + the 20 benchmark features) into Redis
with Feast's own ``FeatureStore.write_to_online_store`` and ``RedisOnlineStore`` (default
settings: no key TTL), so the memory measured is Feast's real layout, not a rebuild.  It
imports nothing from redis-feature-store (Feast lives in its own venv); prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from _feast_repo import bench_store


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("--redis", required=True, help="host:port")
    parser.add_argument("--rows", required=True, help="parquet file of the rows")
    parser.add_argument("--floats", choices=("float64", "float32"), required=True)
    parser.add_argument("--workdir", required=True)
    args = parser.parse_args(argv)

    import feast
    import pandas as pd
    from feast import Field
    from feast.types import Float32, Float64, Int64, String

    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    rows = pd.read_parquet(args.rows)
    rows["event_timestamp"] = pd.Timestamp.now(tz="UTC")
    rows.to_parquet(workdir / "source.parquet")
    float_type = Float64 if args.floats == "float64" else Float32
    names = [c for c in rows.columns if c not in ("user_id", "event_timestamp")]
    schema = []
    for name in names:
        kind = rows[name].dtype.kind
        schema.append(Field(name=name, dtype=float_type if kind == "f" else Int64 if kind == "i" else String))
    store = bench_store(workdir, args.redis, schema)
    started = time.monotonic()
    chunk = 20_000
    for start in range(0, len(rows), chunk):
        store.write_to_online_store("bench_view", rows.iloc[start : start + chunk])
    seconds = time.monotonic() - started
    print(json.dumps({"feast_version": feast.__version__, "rows": len(rows), "seconds": round(seconds, 2)}))
    return 0


if __name__ == "__main__":
    sys.exit(main())
