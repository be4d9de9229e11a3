"""Streaming writes per second from one process, beside raw pipelined HSETEX, same server, same run.

    python benchmarks/streaming_writes.py                 # starts its own Redis 8, stops it after
    python benchmarks/streaming_writes.py --url redis://localhost:6379 --events 200000

Each event is one entity's ``user_realtime`` update (4 features, 2 distinct TTLs) of the
example catalogue.  Measured, in this order, on the same server:

* ``raw HSETEX pipeline``: the baseline — redis-py ``pipeline(transaction=False)`` of the
  same two HSETEX commands per event (bytes built before the clock starts);
* ``raw RESP socket``: the same bytes pre-encoded, written and read back on one
  connection: about the server's ceiling for these commands from one client;
* ``StreamingWriter guard=False``: encoding from Python values + pipelined HSETEX;
* ``StreamingWriter guard=True`` (the default): one FCALL per event, the out-of-order
  guard and the write atomic on the server;
* the same with ``method="hset_hexpire"`` (what Redis 7.4 gets);
* ``write()`` one event per round trip, for a consumer that cannot batch.

The contenders run once per round, ``--rounds`` rounds interleaved (all of them in each
round, so a noisy moment hits everyone); each round's ratio to that round's baseline is
kept, and the median [min-max] over rounds printed, with the load before and after.
Besides events/s and the ratio to the baseline, it prints the server time per event from
``INFO commandstats`` (usec), which is the cost of the guard independent of the client.
Not a test: run it by hand; on a shared machine other processes compete for the CPU.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import machine_load, show_spread

from featurestore.jobs.dev import local_redis
from featurestore.jobs.examples.fraud.definitions import catalog, user_realtime
from featurestore.jobs.streaming import HSET_HEXPIRE, StreamingWritePlan, StreamingWriter
from featurestore.jobs.streaming.plan import resp


def events(count: int, entities: int, t0: int) -> list[tuple[int, dict[str, Any], int]]:
    return [
        (
            1 + i % entities,
            {"txn_count_5m": i % 7, "last_amount": 12.5 + i % 100, "last_country": "FR", "seconds_since_prev_txn": 3.5},
            t0 + i,  # increasing: every event is newer, so the guard writes them all
        )
        for i in range(count)
    ]


def server_usec(client: redis.Redis, commands: list[str]) -> tuple[float, int]:
    """Total usec and calls of the given commands since the last CONFIG RESETSTAT."""
    stats = client.info("commandstats")
    usec = sum(float(stats.get(f"cmdstat_{c}", {}).get("usec", 0)) for c in commands)
    calls = sum(int(stats.get(f"cmdstat_{c}", {}).get("calls", 0)) for c in commands)
    return usec, calls


ROUNDS = 3  # interleaved rounds: every contender once per round


def measure(
    name: str, client: redis.Redis, n_events: int, run: Callable[[], None], commands: list[str], rows: Rows
) -> None:
    """One run of one contender: its events/s, server usec and calls per event, appended to ``rows[name]``."""
    client.flushall()
    client.config_resetstat()
    started = time.perf_counter()
    run()
    seconds = time.perf_counter() - started
    usec, calls = server_usec(client, commands)
    rows.setdefault(name, []).append((n_events / seconds, usec / n_events, calls / n_events))


Rows = dict[str, list[tuple[float, float, float]]]


def raw_pipeline(client: redis.Redis, commands: list[list[tuple[bytes, ...]]], pipeline: int) -> None:
    for start in range(0, len(commands), pipeline):
        pipe = client.pipeline(transaction=False)
        for per_event in commands[start : start + pipeline]:
            for command in per_event:
                pipe.execute_command(*command)
        pipe.execute()


def raw_socket(client: redis.Redis, payloads: list[bytes], replies: int, pipeline: int) -> None:
    conn = client.connection_pool.get_connection()
    try:
        per_event = replies // len(payloads)
        for start in range(0, len(payloads), pipeline):
            chunk = payloads[start : start + pipeline]
            conn.send_packed_command([b"".join(chunk)], check_health=False)
            for _ in range(len(chunk) * per_event):
                conn.read_response(disable_decoding=True)
    finally:
        client.connection_pool.release(conn)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python benchmarks/streaming_writes.py", description=__doc__.split("\n")[0])
    parser.add_argument("--url", help="a Redis >= 7.4 / Valkey >= 9 to use (default: start a local Redis 8)")
    parser.add_argument("--events", type=int, default=100_000)
    parser.add_argument("--entities", type=int, default=20_000)
    parser.add_argument("--pipeline", type=int, default=1000, help="events per round trip")
    parser.add_argument("--single", type=int, default=5_000, help="events for the one-round-trip-per-event run")
    parser.add_argument("--rounds", type=int, default=ROUNDS, help="interleaved rounds (>= 3 for a spread)")
    args = parser.parse_args(argv)
    globals()["ROUNDS"] = max(1, args.rounds)

    workdir = None
    url = args.url
    if url is None:
        workdir = tempfile.mkdtemp(prefix="fs-bench-stream-")
        url = local_redis.start(workdir).url
    try:
        return _run(args, url)
    finally:
        if workdir is not None:
            local_redis.stop(workdir)


def _run(args: argparse.Namespace, url: str) -> int:
    client = redis.Redis.from_url(url)
    load_before = machine_load()
    t0 = int(time.time() * 1000)
    data = events(args.events, args.entities, t0)
    plan = StreamingWritePlan.build(user_realtime, catalog)
    prebuilt = [plan.commands(entity, values, ms) for entity, values, ms in data]
    payloads = [b"".join(resp(c) for c in per_event) for per_event in prebuilt]
    replies = sum(len(per_event) for per_event in prebuilt)
    rows: Rows = {}
    n = args.events
    single = data[: args.single]
    pipe, raw = args.pipeline, ["hsetex"]
    baseline = "raw HSETEX pipeline (baseline)"
    with (
        StreamingWriter.connect(url, user_realtime, catalog=catalog, guard=False, max_pipeline=pipe) as unguarded,
        StreamingWriter.connect(url, user_realtime, catalog=catalog, max_pipeline=pipe) as guarded,
        StreamingWriter.connect(url, user_realtime, catalog=catalog, method=HSET_HEXPIRE, max_pipeline=pipe) as w74,
    ):
        version = unguarded.server_version

        def one_by_one() -> None:
            for entity, values, ms in single:
                guarded.write(entity, values, ms)

        for round_ in range(1, ROUNDS + 1):
            measure(baseline, client, n, lambda: raw_pipeline(client, prebuilt, pipe), raw, rows)
            ceiling = "raw RESP socket (server ceiling)"
            measure(ceiling, client, n, lambda: raw_socket(client, payloads, replies, pipe), raw, rows)
            name = "StreamingWriter guard=False"
            measure(name, client, n, lambda: unguarded.write_many(data), ["hsetex", "hdel"], rows)
            name = "StreamingWriter guard=True (default)"
            measure(name, client, n, lambda: guarded.write_many(data), ["fcall"], rows)
            name = "  ... method=hset_hexpire (Redis 7.4)"
            measure(name, client, n, lambda: w74.write_many(data), ["fcall"], rows)
            measure("write() one event per round trip", client, len(single), one_by_one, ["fcall"], rows)
            print(f"round {round_}/{ROUNDS} done, load {machine_load()}", flush=True)

    load_after = machine_load()
    print(f"server: {version} at {redis.Redis.from_url(url).connection_pool.connection_kwargs.get('host')}")
    print(
        f"events: {n} over {args.entities} entities, {args.pipeline} events per round trip; "
        f"2 HSETEX (TTL 600 s and 3600 s) per event unguarded"
    )
    print(f"load average (1/5/15 min) before: {load_before}  after: {load_after}")
    print(f"{ROUNDS} interleaved rounds; median [min-max] over rounds; ratios taken within each round")
    print(f"{'':40}{'events/s (median)':>18}{'vs baseline':>30}{'server us/event':>17}")
    base_rates = [r[0] for r in rows[baseline]]
    for name, runs in rows.items():
        rate = statistics.median(r[0] for r in runs)
        ratios = [r[0] / b for r, b in zip(runs, base_rates)]
        usec = statistics.median(r[1] for r in runs)
        print(f"{name:40}{rate:18,.0f}{show_spread(ratios, unit='x'):>30}{usec:17.2f}")
    unguarded_us = statistics.median(r[1] for r in rows["StreamingWriter guard=False"])
    guarded_us = statistics.median(r[1] for r in rows["StreamingWriter guard=True (default)"])
    walls = [
        u[0] / g[0] for u, g in zip(rows["StreamingWriter guard=False"], rows["StreamingWriter guard=True (default)"])
    ]
    print(
        f"out-of-order guard: {guarded_us - unguarded_us:+.2f} us of server time per event "
        f"({guarded_us / unguarded_us:.2f}x the unguarded HSETEX pair); wall clock per event "
        f"{show_spread(walls, unit='x')} the unguarded one"
    )
    print("target: StreamingWriter guard=True >= 0.8x the raw HSETEX pipeline")
    return 0


if __name__ == "__main__":
    sys.exit(main())
