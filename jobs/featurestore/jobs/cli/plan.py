"""``featurestore plan`` (alias ``validate``): what a run would do with the repository; writes nothing."""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.repo.plan_command import plan_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", default=None, help="definitions to check instead of the repository's catalog")
    parser.add_argument("--expectations", default=None, metavar="DIR", help="suites folder instead of the repository's")
    parser.add_argument("--redis-url", default=None, help="with --connect: the Redis to read (default: the settings')")
    parser.add_argument("--warehouse", default=None, help="with --connect: the warehouse to look at")
    parser.add_argument(
        "--connect", action="store_true",
        help="also read Redis (reachable, registry vs definitions) and the warehouse (source tables); writes nothing",
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    for line in plan_lines(settings, connect=args.connect):
        echo(line)
    return 0
