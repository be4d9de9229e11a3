"""``featurestore doctor``: Java, Spark, the jars, Redis, the ACL role, the registry, the warehouse,
Kafka, each a line ``ok``/``warn``/``FAIL`` with its fix; the exit code by the worst."""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.ops import doctor
from featurestore.jobs.ops.acl import ROLES


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--redis-url", default=None, help="the Redis to check (default: the settings')")
    parser.add_argument("--warehouse", default=None, help="the warehouse whose source tables to look for")
    parser.add_argument("--catalog", default=None, help="definitions to check instead of the repository's catalog")
    parser.add_argument("--expectations", default=None, metavar="DIR", help="suites folder instead of the repository's")
    parser.add_argument("--bootstrap-servers", default=None, help="the Kafka to reach (default: the settings')")
    parser.add_argument(
        "--role", choices=list(ROLES), default=doctor.DEFAULT_ROLE,
        help="the ACL role the Redis URL's user will play: its commands are checked "
        f"(default: {doctor.DEFAULT_ROLE}, the nightly job's)",
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    results = doctor.run_checks(settings, args.role)
    for result in results:
        for line in doctor.format_result(result):
            echo(line)
    echo(doctor.summary(results))
    return int(doctor.exit_code(results))
