"""``featurestore`` — the command line.

Each sub-command lives in its own module with ``add_arguments(parser)`` and
``run(args) -> int``; this file only dispatches, and imports a module (and so Spark,
Great Expectations ...) only when its command runs.  The dependency goes one way: a
command module never imports this file (its own ``main(argv)`` parses and reports errors
itself), and the local-development commands (``redis``, ``kafka``, ``demo``, ``generate``,
in ``featurestore.jobs.dev``) are named here as strings, so nothing of the
production path imports dev code.

Output conventions (:mod:`featurestore.jobs.console`): results on stdout, progress, log
records and errors on stderr, ``-v``/``-q`` set the logging level, the commands that start
Spark send the JVM's output to a log file whose path is shown (and its tail on a failure),
and every failure maps to one documented exit code (``featurestore --help``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from importlib import metadata

from featurestore.jobs import console

DISTRIBUTION = "redis-feature-store"

# command -> (module, one-line help, starts Spark)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "redis": ("featurestore.jobs.dev.redis_command", "start, stop or show a local Redis 8 server or cluster", False),
    "kafka": (
        "featurestore.jobs.dev.kafka_command",
        "start, stop or show a local Kafka broker (KRaft); produce demo traffic",
        False,
    ),
    "demo": ("featurestore.jobs.dev.demo", "generate sample data, materialize every view, read it back", True),
    "generate": ("featurestore.jobs.dev.sample_data", "write the sample fraud warehouse as Delta tables", True),
    "materialize": ("featurestore.jobs.batch.materialize", "compute, validate and write one batch view", True),
    "runs": ("featurestore.jobs.batch.run_records", "list recent materialization runs", False),
    "stream": (
        "featurestore.jobs.streaming.kafka_job",
        "the streaming job: Kafka -> real-time features -> Redis (Spark Structured Streaming)",
        True,
    ),
    "consume": (
        "featurestore.jobs.streaming.kafka_consumer",
        "the plain Kafka consumer (no Spark): events -> Redis, at-least-once",
        False,
    ),
    "check": ("featurestore.jobs.ops.post_load_check", "check a view's freshness after a load", False),
    "status": (
        "featurestore.jobs.ops.status",
        "every view's freshness and last runs; exit 1 if any is stale or failing",
        False,
    ),
    "inspect": (
        "featurestore.jobs.ops.inspect_command",
        "decode one entity's hash, any layout: value, status, view age, field TTL",
        False,
    ),
    "catalog": ("featurestore.jobs.ops.catalog_command", "export the views' contract or conformance vectors", False),
    "acl": ("featurestore.jobs.ops.acl_command", "print (or --apply) the least-privilege ACL roles", False),
    "executor-env": (
        "featurestore.jobs.deploy.executor_env",
        "pack the Spark executors' Python environment for spark-submit --archives",
        False,
    ),
    "training-set": (
        "featurestore.jobs.training.training_set",
        "point-in-time training data: each label row's features as the reader served them then",
        True,
    ),
    "backfill": ("featurestore.jobs.training.backfill", "compute past days into the feature log (no Redis)", True),
    "audit": (
        "featurestore.jobs.training.audit",
        "compare what Redis serves with the feature log; exit 1 above a mismatch rate",
        True,
    ),
}


def version() -> str:
    """The installed distribution's version (``unknown`` when run from a bare checkout)."""
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return "unknown"


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="featurestore",
        description="redis-feature-store command line",
        epilog=console.EXIT_CODES_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {version()}")
    console.add_verbosity_options(parser)
    # -v/-q also after the command (`featurestore demo -v`); SUPPRESS keeps the top-level value otherwise
    common = argparse.ArgumentParser(add_help=False)
    console.add_verbosity_options(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text, _) in COMMANDS.items():
        command_parser = sub.add_parser(
            name, help=help_text, description=help_text, parents=[common],
            epilog=console.EXIT_CODES_HELP, formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        if only is None or name == only:
            importlib.import_module(module).add_arguments(command_parser)
    return parser


def _chosen(argv: Sequence[str]) -> str | None:
    """The command named on the command line (the first argument that is one), if any."""
    return next((arg for arg in argv if arg in COMMANDS), None)


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    # Only the chosen command's module is imported to build its arguments.
    parser = build_parser(only=_chosen(argv) or "__none__")
    args = parser.parse_args(argv)  # a usage error exits 2 here (argparse)
    module_name, _, starts_spark = COMMANDS[args.command]
    module = importlib.import_module(module_name)
    return console.run_command(args.command, module.run, args, starts_spark=starts_spark)


if __name__ == "__main__":
    raise SystemExit(main())
