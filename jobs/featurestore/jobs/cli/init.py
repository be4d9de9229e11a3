"""``featurestore init DIR [--example NAME] [--name NAME]``: scaffold a feature repository."""

from __future__ import annotations

import argparse

from featurestore.jobs.core.console import echo
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.repo.init_command import available_examples, init_repository
from featurestore.readers.errors import ConfigurationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "dir", nargs="?", metavar="DIR", help="the new repository's folder (must not exist, or be empty)"
    )
    parser.add_argument("--example", default=None, metavar="NAME", help="copy an example repository (--list-examples)")
    parser.add_argument("--name", default=None, help="the repository's name (default: the folder's)")
    parser.add_argument("--list-examples", action="store_true", help="list the example repositories and exit")


def run(args: argparse.Namespace, settings: Settings) -> int:
    if args.list_examples:
        echo(", ".join(available_examples()) or "(no example repositories are installed)")
        return 0
    if not args.dir:
        raise ConfigurationError("featurestore init needs DIR: the folder of the new repository")
    made = init_repository(args.dir, example=args.example, name=args.name)
    echo(f"created feature repository {made.name!r} in {made.folder}:")
    for relative in made.files:
        echo(f"  {relative}")
    echo(f"next: cd {args.dir} && featurestore plan")
    return 0
