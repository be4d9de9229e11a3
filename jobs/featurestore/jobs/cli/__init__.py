"""``featurestore`` — the command line.

Each sub-command lives in its own module with ``add_arguments(parser)`` and
``run(args, settings) -> int``: the production commands in this package (argument parsing
lives here, the domain modules below take typed requests and settings), the
local-development commands (``redis``, ``kafka``, ``demo``, ``generate``) in
``featurestore.jobs.dev``, named here as strings so that nothing of the production path
imports dev code.  This file only dispatches: it imports a command's module (and so Spark,
Great Expectations ...) only when that command runs, and builds the one
:class:`~featurestore.jobs.core.settings.Settings` of the run from the command's flags, the
environment and the repository's settings file (``--repo DIR``, ``$FEATURESTORE_REPO``, or
the working directory), in that order of precedence.

Output conventions (:mod:`featurestore.jobs.core.console`): results on stdout, progress, log
records and errors on stderr, ``-v``/``-q`` set the logging level, the commands that start
Spark send the JVM's output to a log file whose path is shown (and its tail on a failure),
and every failure maps to one documented exit code: the table is in ``featurestore --help`` (and
docs/cli.md) only, each command's ``--help`` points there.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Mapping, Sequence
from importlib import metadata

from featurestore.jobs.cli.runner import run_command
from featurestore.jobs.core import console
from featurestore.jobs.core.settings import Settings
from featurestore.readers.repository import REPO_ENV_VAR, SETTINGS_FILE

DISTRIBUTION = "redis-feature-store"

# command -> (module, one-line help, starts Spark)
COMMANDS: dict[str, tuple[str, str, bool]] = {
    "init": ("featurestore.jobs.cli.init", "scaffold a feature repository (or copy an example one)", False),
    "plan": ("featurestore.jobs.cli.plan", "check the repository and show what a run would do; writes nothing", False),
    "validate": ("featurestore.jobs.cli.plan", "the same as plan", False),
    "doctor": ("featurestore.jobs.cli.doctor", "check Java, Spark, Redis, ACL role, registry, warehouse, Kafka", False),
    "redis": ("featurestore.jobs.dev.redis_command", "start, stop or show a local Redis 8 server or cluster", False),
    "kafka": (
        "featurestore.jobs.dev.kafka_command",
        "start, stop or show a local Kafka broker (KRaft); produce demo traffic",
        False,
    ),
    "demo": ("featurestore.jobs.dev.demo", "generate sample data, materialize every view, read it back", True),
    "generate": ("featurestore.jobs.dev.sample_data", "write the sample fraud warehouse as Delta tables", True),
    "materialize": ("featurestore.jobs.cli.materialize", "compute, validate and write one batch view", True),
    "runs": ("featurestore.jobs.cli.runs", "list recent materialization runs", False),
    "stream": (
        "featurestore.jobs.cli.stream",
        "the streaming job: Kafka -> real-time features -> Redis (Spark Structured Streaming)",
        True,
    ),
    "consume": (
        "featurestore.jobs.cli.consume",
        "the plain Kafka consumer (no Spark): events -> Redis, at-least-once",
        False,
    ),
    "check": ("featurestore.jobs.cli.check", "check a view's freshness after a load", False),
    "status": (
        "featurestore.jobs.cli.status",
        "every view's freshness and last runs; exit 1 if any is stale or failing",
        False,
    ),
    "inspect": (
        "featurestore.jobs.cli.inspect",
        "decode one entity's hash, any layout: value, status, view age, field TTL",
        False,
    ),
    "ui": ("featurestore.jobs.cli.ui", "serve the read-only web console: views, runs, streams, entities", False),
    "catalog": ("featurestore.jobs.cli.catalog", "export the views' contract or conformance vectors", False),
    "acl": ("featurestore.jobs.cli.acl", "print (or --apply) the least-privilege ACL roles", False),
    "executor-env": (
        "featurestore.jobs.cli.executor_env",
        "pack the Spark executors' Python environment for spark-submit --archives",
        False,
    ),
    "training-set": (
        "featurestore.jobs.cli.training_set",
        "point-in-time training data: each label row's features as the reader served them then",
        True,
    ),
    "backfill": ("featurestore.jobs.cli.backfill", "compute past days into the feature log (no Redis)", True),
    "audit": (
        "featurestore.jobs.cli.audit",
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
    add_repo_option(parser)
    # -v/-q/--repo also after the command (`featurestore demo -v`); SUPPRESS keeps the top-level value otherwise
    common = argparse.ArgumentParser(add_help=False)
    console.add_verbosity_options(common, argparse.SUPPRESS)
    add_repo_option(common, argparse.SUPPRESS)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module, help_text, _) in COMMANDS.items():
        command_parser = sub.add_parser(
            name, help=help_text, description=help_text, parents=[common],
            epilog=console.EXIT_CODES_POINTER, formatter_class=argparse.RawDescriptionHelpFormatter,
        )  # fmt: skip
        if only is None or name == only:
            importlib.import_module(module).add_arguments(command_parser)
            _common_options_in_actions(command_parser)
    return parser


def _common_options_in_actions(parser: argparse.ArgumentParser) -> None:
    """-v/-q/--repo after a command's action too (`featurestore catalog export --repo DIR`)."""
    for action in parser._actions:  # argparse has no public walk over sub-parsers
        if isinstance(action, argparse._SubParsersAction):
            for nested in dict.fromkeys(action.choices.values()):
                if "-v" not in nested._option_string_actions:
                    console.add_verbosity_options(nested, argparse.SUPPRESS)
                if "--repo" not in nested._option_string_actions:
                    add_repo_option(nested, argparse.SUPPRESS)


def add_repo_option(parser: argparse.ArgumentParser, default: object = None) -> None:
    """``--repo DIR``: the feature repository whose ``featurestore.toml`` holds the settings."""
    parser.add_argument(
        "--repo", default=default, metavar="DIR",
        help=f"the feature repository: its {SETTINGS_FILE} gives the settings no flag or variable sets "
        f"(default: ${REPO_ENV_VAR}, else the working directory)",
    )  # fmt: skip


# a setting -> the attribute of the parsed arguments holding its flag (commands without the flag have none)
SETTING_FLAGS = {
    "redis_url": "redis_url",
    "warehouse": "warehouse",
    "expectations_dir": "expectations",
    "catalog": "catalog",
    "kafka_bootstrap": "bootstrap_servers",
}


def settings_from_args(args: argparse.Namespace, environ: Mapping[str, str] | None = None) -> Settings:
    """The run's settings: the command's flags over the environment over the repository's file."""
    flags = {name: getattr(args, attribute, None) for name, attribute in SETTING_FLAGS.items()}
    return Settings.load(flags, environ=environ, repo=getattr(args, "repo", None))


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

    def run(parsed: argparse.Namespace) -> int:
        # built inside the run: a bad setting is a usage error (exit 2) with the command's conventions
        return int(module.run(parsed, settings_from_args(parsed)))

    return run_command(args.command, run, args, starts_spark=starts_spark)
