"""``featurestore plan`` (alias ``validate``): what a run would do with the repository; writes nothing."""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.repo.plan_command import plan_lines


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--catalog", default=None, help="definitions to check instead of the repository's catalog")
    parser.add_argument("--expectations", default=None, metavar="DIR", help="suites folder instead of the repository's")


def run(args: argparse.Namespace, settings: Settings) -> int:
    for line in plan_lines(settings):
        echo(line)
    return 0
