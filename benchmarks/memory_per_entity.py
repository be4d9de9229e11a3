"""Memory per entity of each storage layout, beside Feast's real Redis layout, in one run.

    python benchmarks/memory_per_entity.py                  # 100k entities, 3 rounds
    python benchmarks/memory_per_entity.py --entities 20000 --repeats 3

Loads N entities of a 20-feature view (16 floats, 2 ints, 2 short strings; the issue's
shape) into one embedded Redis 8, once per layout, and reports ``used_memory`` growth per
entity, the hash encoding, and the ratio to Feast measured in the same round.  Rounds are
interleaved (every layout once per round) and the ratios' median and spread (min-max) are
printed, with the machine's load before and after.

Feast is the real thing: the benchmark creates a side venv and installs Feast there
(Feast's dependencies would clash with ours), equivalent to

    python -m venv /tmp/feast-venv && /tmp/feast-venv/bin/pip install 'feast[redis]==0.67.*'

(``--feast-venv`` to use another; the newest Feast is tried when 0.67 is not served), then
runs ``benchmarks/_feast_writer.py`` there: Feast's own ``FeatureStore.write_to_online_store``
with ``RedisOnlineStore`` (default settings: no key TTL) against the same server, with the
16 floats declared ``Float64`` and then ``Float32``.  If Feast cannot be installed, the
output says so loudly and falls back to a byte-exact stand-in of its layout.

Layouts (all of ours carry the key TTL and ``_ts:<view>``):

* ``text-f64`` / ``text-f32``   one readable field per feature (the default layout)
* ``packed-f32``                ``packed=True``: the float32 features in one ``_f32:<view>``
* ``compact-f64`` / ``-f32``    ``layout="compact"``: one binary record, split by default in
                                3 (f64) / 2 (f32) fields of < 64 bytes, so the hash stays a
                                ``listpack`` under Redis's default ``hash-max-listpack-value``
* ``compact-f64 x1``            ``record_parts=1``: one 150-byte field, which turns the hash
                                into a ``hashtable`` on a default server
* ``... x1 lpv256``             one field, with ``hash-max-listpack-value 256`` on the server
                                (docs/storage-format.md, "Memory")
Not a test.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import zlib
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import FEAST_VENV, bench_row, bench_view, feast_python, user

from featurestore.jobs.dev import local_redis
from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import Catalog, Feature, FeatureView

HERE = Path(__file__).resolve().parent
DEFAULT_VENV = FEAST_VENV
Commands = Callable[[int, dict[str, object]], list[tuple[bytes, ...]]]


def _view(floats: str, **options: object) -> FeatureView:
    base = bench_view()
    features = tuple(Feature(f.name, floats) if f.dtype == "float32" else f for f in base.features)
    return FeatureView(base.name, user, features, ttl=base.ttl, **options)  # type: ignore[arg-type]


# --- Feast, for real ---------------------------------------------------------------------


def write_with_feast(python: Path, port: int, rows_file: Path, floats: str, workdir: Path) -> None:
    out = subprocess.run(
        [str(python), str(HERE / "_feast_writer.py"), "--redis", f"127.0.0.1:{port}", "--rows", str(rows_file),
         "--floats", floats, "--workdir", str(workdir)],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        raise RuntimeError(f"Feast's writer failed: {out.stderr.strip()[-2000:]}")


# --- the stand-in, when Feast cannot be installed ------------------------------------------


def _varint(value: int) -> bytes:
    out = bytearray()
    value &= (1 << 64) - 1
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def feast_standin(floats: str) -> Commands:
    """Feast's RedisOnlineStore layout rebuilt in size (4-byte hashed fields, proto values)."""
    view = _view(floats)

    def commands(entity_id: int, row: dict[str, object]) -> list[tuple[bytes, ...]]:
        join_key = b"user_id"
        key = (
            struct.pack("<II", 1, 2) + struct.pack("<I", len(join_key)) + join_key
            + struct.pack("<II", 4, 8) + struct.pack("<q", entity_id) + b"feature_repo"
        )  # fmt: skip
        args: list[bytes] = []
        for feature in view.features:
            field = struct.pack("<I", zlib.crc32(f"{view.name}:{feature.name}".encode()))
            value = row[feature.name]
            if feature.dtype == "float32":
                proto = b"\x35" + struct.pack("<f", float(value))  # type: ignore[arg-type]
            elif feature.dtype == "float64":
                proto = b"\x29" + struct.pack("<d", float(value))  # type: ignore[arg-type]
            elif feature.dtype == "int64":
                proto = b"\x20" + _varint(int(value))  # type: ignore[call-overload]
            else:
                text = str(value).encode()
                proto = b"\x12" + _varint(len(text)) + text
            args += [field, proto]
        args += [b"_ts:" + view.name.encode(), b"\x08" + _varint(int(time.time())) + b"\x10" + _varint(123456789)]
        return [(b"HSET", key, *args)]

    return commands


# --- ours ----------------------------------------------------------------------------------


def ours(view: FeatureView, now_ms: int) -> Commands:
    plan = BatchWritePlan.build(Catalog(views=(view,)), view)
    return lambda entity_id, row: plan.commands(entity_id, row, now_ms)


def load(client, commands_for: Commands, rows: list[dict[str, object]]) -> bytes:  # type: ignore[no-untyped-def]
    pipe = client.pipeline(transaction=False)
    key = b""
    for entity_id, row in enumerate(rows):
        for command in commands_for(entity_id, row):
            pipe.execute_command(command[0].decode(), *command[1:])
            key = command[1]
        if entity_id % 2000 == 1999:
            pipe.execute()
    pipe.execute()
    return key


def measure(client, write: Callable[[], bytes | None], entities: int, listpack_value: int) -> tuple[float, str]:  # type: ignore[no-untyped-def]
    client.flushall()
    client.config_set("hash-max-listpack-value", listpack_value)
    time.sleep(0.2)
    before = client.info("memory")["used_memory"]
    key = write() or client.randomkey()
    time.sleep(0.2)
    after = client.info("memory")["used_memory"]
    assert client.dbsize() == entities, f"expected {entities} keys, found {client.dbsize()}"
    encoding = client.object("encoding", key)
    return (after - before) / entities, encoding.decode() if isinstance(encoding, bytes) else str(encoding)


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--entities", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--feast-venv", type=Path, default=DEFAULT_VENV, help=f"side venv (default {DEFAULT_VENV})")
    parser.add_argument("--no-install", action="store_true", help="do not create the venv or pip install Feast")
    return parser.parse_args(argv)


def report(
    bytes_per: dict[str, list[float]],
    encodings: dict[str, str],
    headline: str,
    loads: tuple[tuple[float, ...], tuple[float, ...]],
) -> None:
    """The table (each layout against both Feast baselines) and the figures as JSON."""
    print(headline)
    before, after = (f"{load[0]:.2f} {load[1]:.2f}" for load in loads)
    print(f"load average (1 min, 5 min) before {before}, after {after}")
    header = f"{'B/entity (median)':>18}{'vs feast-f64':>14}{'spread':>16}{'vs feast-f32':>14}"
    print(f"{'layout':<23}{header}  encoding  TTL")
    for name, values in bytes_per.items():
        vs64 = [v / f for v, f in zip(values, bytes_per["feast-f64"])]
        vs32 = [v / f for v, f in zip(values, bytes_per["feast-f32"])]
        spread = f"{min(vs64):.3f}-{max(vs64):.3f}"
        ttl = "no" if name.startswith("feast") else "yes"
        print(
            f"{name:<23}{statistics.median(values):>18.1f}{statistics.median(vs64):>13.3f}x{spread:>16}"
            f"{statistics.median(vs32):>13.3f}x  {encodings[name]:<9} {ttl}"
        )
    print("target: compact <= 0.5x feast-f64 (TTL and _ts included)")
    print(json.dumps({"bytes_per_entity": bytes_per, "encodings": encodings}, sort_keys=True))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    python, feast_note = feast_python(args.feast_venv, install=not args.no_install)
    if python is None:
        print(f"!!! FEAST COULD NOT BE INSTALLED ({feast_note}): using the byte-exact stand-in", flush=True)

    rng = random.Random(3)
    rows = [bench_row(rng) for _ in range(args.entities)]
    now_ms = int(time.time() * 1000)
    workdir = Path(tempfile.mkdtemp(prefix="fs-mem-"))
    rows_file = workdir / "rows.parquet"
    if python is not None:
        import pyarrow as pa
        import pyarrow.parquet as pq

        pq.write_table(pa.Table.from_pylist([{"user_id": i, **r} for i, r in enumerate(rows)]), rows_file)

    server = local_redis.start(workdir / "redis")
    port = server.master_ports[0]
    client = server.client()

    def feast(floats: str) -> Callable[[], bytes | None]:
        if python is None:
            return lambda: load(client, feast_standin(floats), rows)
        return lambda: write_with_feast(python, port, rows_file, floats, workdir / f"feast-{floats}")  # type: ignore[func-returns-value]

    one_part: dict[str, object] = {"layout": "compact", "record_parts": 1}
    # name -> (writer, hash-max-listpack-value)
    layouts: dict[str, tuple[Callable[[], bytes | None], int]] = {
        "feast-f64": (feast("float64"), 64),
        "feast-f32": (feast("float32"), 64),
        "text-f64": (lambda: load(client, ours(_view("float64"), now_ms), rows), 64),
        "text-f32": (lambda: load(client, ours(_view("float32"), now_ms), rows), 64),
        "packed-f32": (lambda: load(client, ours(_view("float32", packed=True), now_ms), rows), 64),
        "compact-f64": (lambda: load(client, ours(_view("float64", layout="compact"), now_ms), rows), 64),
        "compact-f32": (lambda: load(client, ours(_view("float32", layout="compact"), now_ms), rows), 64),
        "compact-f64 x1": (lambda: load(client, ours(_view("float64", **one_part), now_ms), rows), 64),
        "compact-f64 x1 lpv256": (lambda: load(client, ours(_view("float64", **one_part), now_ms), rows), 256),
        "compact-f32 x1 lpv256": (lambda: load(client, ours(_view("float32", **one_part), now_ms), rows), 256),
    }
    load_before = os.getloadavg()
    bytes_per: dict[str, list[float]] = {name: [] for name in layouts}
    encodings: dict[str, str] = {}
    try:
        for round_ in range(max(1, args.repeats)):
            for name, (write, listpack_value) in layouts.items():
                per_entity, encodings[name] = measure(client, write, args.entities, listpack_value)
                bytes_per[name].append(per_entity)
                print(f"round {round_ + 1}: {name} {per_entity:.1f} B/entity", file=sys.stderr, flush=True)
        version = client.info("server")["redis_version"]
    finally:
        local_redis.stop(workdir / "redis")
    load_after = os.getloadavg()

    source = f"Feast {feast_note} (real RedisOnlineStore)" if python is not None else "Feast STAND-IN (not installed)"
    headline = (
        f"memory per entity: {args.entities} entities x 20 features (16 floats, 2 int64, 2 short strings), "
        f"Redis {version}, {args.repeats} interleaved rounds; baseline: {source}"
    )
    report(bytes_per, encodings, headline, (load_before, load_after))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
