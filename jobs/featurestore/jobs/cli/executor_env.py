"""``featurestore executor-env``: pack the Spark executors' Python environment
(:mod:`featurestore.jobs.deploy.executor_env`)."""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from collections.abc import Callable
from importlib import metadata
from pathlib import Path

from featurestore.jobs.core import console
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.deploy.executor_env import (
    ARCHIVE_SUFFIXES,
    DEFAULT_COMPRESS_LEVEL,
    DEFAULT_OUT,
    DISTRIBUTION,
    EXECUTOR_PACKAGES,
    EnvPlan,
    build,
    driver_pins,
    source_tree,
)
from featurestore.readers.errors import ConfigurationError


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--out", default=DEFAULT_OUT, metavar="FILE.tar.gz",
        help=f"the archive to write (default {DEFAULT_OUT}); ship it with --archives FILE.tar.gz#env",
    )  # fmt: skip
    parser.add_argument(
        "--wheel", metavar="WHL",
        help="the project wheel to install (default: built from this checkout, else "
        f"{DISTRIBUTION}==<this version> from the package index)",
    )  # fmt: skip
    parser.add_argument(
        "-c", "--constraint", action="append", default=[], metavar="FILE",
        help="pip constraints file (repeatable; e.g. the project's constraints.txt); default: pin "
        f"{', '.join(EXECUTOR_PACKAGES)} to the versions this environment runs",
    )  # fmt: skip
    parser.add_argument(
        "--with", dest="extra", action="append", default=[], metavar="REQUIREMENT",
        help="one more requirement for the executors (repeatable): e.g. the package holding your catalogue",
    )  # fmt: skip
    parser.add_argument(
        "--python", default=sys.executable, metavar="PATH",
        help="the interpreter of the environment; it must exist at this path on every worker, with the "
        "driver's Python version (default: this interpreter)",
    )  # fmt: skip
    parser.add_argument(
        "--compress-level", type=int, default=DEFAULT_COMPRESS_LEVEL, choices=range(1, 10), metavar="1-9",
        help=f"gzip level (default {DEFAULT_COMPRESS_LEVEL}; 1 packs about 4x faster, ~13%% larger)",
    )  # fmt: skip


def _installed_version() -> str | None:
    try:
        return metadata.version(DISTRIBUTION)
    except metadata.PackageNotFoundError:
        return None


def plan_from_args(
    args: argparse.Namespace,
    *,
    checkout: Callable[[], Path | None] = source_tree,
    installed_version: Callable[[], str | None] = _installed_version,
) -> EnvPlan:
    """The plan for the parsed options; a ConfigurationError names the option at fault.

    Without ``--wheel``: the wheel is built from ``checkout()`` (this checkout), else
    ``installed_version()`` of the distribution is installed from the index.
    """
    out = Path(args.out).expanduser().absolute()
    if not out.name.endswith(ARCHIVE_SUFFIXES):
        raise ConfigurationError(
            f"--out {args.out!r} must end in {' or '.join(ARCHIVE_SUFFIXES)}: Spark picks how to unpack an "
            "archive by its name"
        )
    if not out.parent.is_dir():
        raise ConfigurationError(f"--out {args.out!r}: the folder {str(out.parent)!r} does not exist")
    python = shutil.which(args.python)
    if python is None:
        raise ConfigurationError(f"--python {args.python!r} is not an executable")
    constraints = tuple(Path(c).expanduser().absolute() for c in args.constraint)
    for constraint in constraints:
        if not constraint.is_file():
            raise ConfigurationError(f"--constraint {str(constraint)!r} is not a file")
    wheel = requirement = source = None
    if args.wheel:
        wheel = Path(args.wheel).expanduser().absolute()
        if wheel.suffix != ".whl" or not wheel.is_file():
            raise ConfigurationError(f"--wheel {args.wheel!r} is not a wheel file")
    else:
        source = checkout()
        if source is None:
            version = installed_version()
            if not version:
                raise ConfigurationError(
                    f"cannot tell which {DISTRIBUTION} to install: not a checkout, and not installed; pass --wheel"
                )
            requirement = f"{DISTRIBUTION}=={version}"
    return EnvPlan(
        out=out, python=os.path.abspath(python), wheel=wheel, source=source,
        requirement=requirement, extra=tuple(args.extra), constraints=constraints,
        pins=() if constraints else driver_pins(), compress_level=args.compress_level,
    )  # fmt: skip


def run(args: argparse.Namespace, settings: Settings) -> int:
    plan = plan_from_args(args)
    total = 4 if plan.source is not None else 3
    with console.Steps(total, "executor-env") as steps:
        built = build(plan, steps)
    console.echo(f"featurestore executor-env: {built.summary()}")
    console.echo(f"  env/bin/python -> {built.interpreter}: this interpreter must exist at that path on every worker")
    console.echo("  ship it with: spark-submit " + " ".join(plan.spark_submit_options()) + " ...")
    return console.ExitCode.OK
