"""``featurestore generate``: an example's (or a repository's) sample warehouse, as Delta tables.

The data itself comes from the ``sample_data.py`` hooks of a repository (docs/examples.md):
``generate(spark, warehouse, *, end_date, days, scale, seed) -> GeneratedWarehouse`` writes the
tables, ``events(n, now_ms, *, seed, late_share) -> [(topic, key, event)]`` makes stream events.
The module is found by ``--example NAME`` (an example shipped in the package), else the
repository of the settings (``--repo``/``$FEATURESTORE_REPO``) if it has a ``sample_data.py``,
else the fraud example.

``featurestore generate [--example NAME] --warehouse PATH [--days D] [--end-date YYYY-MM-DD]
[--scale X | --users N] [--seed S]``
"""

from __future__ import annotations

import argparse
import hashlib
import importlib
import importlib.util
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from types import ModuleType
from typing import Any

from featurestore.jobs.batch.sources import DEFAULT_WAREHOUSE, PARTITION_COLUMN, parse_date
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.spark import session
from featurestore.readers.errors import ConfigurationError

DEFAULT_EXAMPLE = "fraud"
EXAMPLES_PACKAGE = "featurestore.jobs.examples"
SAMPLE_MODULE = "sample_data"


@dataclass(frozen=True)
class GeneratedWarehouse:
    """Where the tables went and how many rows each has (what a ``generate`` hook returns)."""

    path: Path
    rows: dict[str, int]
    first_day: date
    last_day: date
    seconds: float


def write_table(df: Any, path: Path, *, partitioned: bool, mode: str = "overwrite") -> None:
    """Write a sample table as Delta (``partitioned``: by ``ds``, one file per partition)."""
    if partitioned:
        # one file per ds partition keeps small warehouses from becoming thousands of files
        df = df.repartition(PARTITION_COLUMN)
    writer = df.write.format("delta").mode(mode).option("overwriteSchema", "true")
    if partitioned:
        writer = writer.partitionBy(PARTITION_COLUMN)
    writer.save(str(path))


def sample_module(example: str | None = None, repo: str | Path | None = None) -> ModuleType:
    """The ``sample_data`` module of ``example``, else of the repository folder ``repo``, else of fraud."""
    if example is None and repo is not None:
        path = Path(repo) / f"{SAMPLE_MODULE}.py"
        if path.is_file():
            return _load_file(path)
    name = example or DEFAULT_EXAMPLE
    from featurestore.jobs.examples import EXAMPLES  # dev sits with the examples (tests/unit/test_layout.py)

    if name not in EXAMPLES:
        raise ConfigurationError(f"--example {name}: no such example (the examples are {', '.join(EXAMPLES)})")
    return importlib.import_module(f"{EXAMPLES_PACKAGE}.{name}.{SAMPLE_MODULE}")


def _load_file(path: Path) -> ModuleType:
    """A repository's ``sample_data.py``, imported under a name of its own (the folder's hash)."""
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    spec = importlib.util.spec_from_file_location(f"featurestore_sample_{digest}", path)
    if spec is None or spec.loader is None:
        raise ConfigurationError(f"{path}: cannot be imported")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    for hook in ("generate", "events"):
        if not callable(getattr(module, hook, None)):
            raise ConfigurationError(f"{path}: has no {hook}() hook (docs/examples.md, 'Sample data hooks')")
    return module


def add_example_argument(parser: argparse.ArgumentParser) -> None:
    """``--example NAME``: whose sample data (shared by generate, kafka produce and the demo)."""
    parser.add_argument(
        "--example", default=None, metavar="NAME",
        help="the example whose sample data to use: fraud or recommendations "
        "(default: the repository's sample_data.py, else fraud)",
    )  # fmt: skip


# --- `featurestore generate` -----------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    add_example_argument(parser)
    parser.add_argument("--warehouse", default=str(DEFAULT_WAREHOUSE), help="folder of the Delta tables")
    parser.add_argument(
        "--days", type=int, default=None, help="days of data, ending at --end-date (default: the example's)"
    )
    parser.add_argument("--end-date", default=None, help="last ds partition, YYYY-MM-DD (default: yesterday UTC)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--scale", type=float, default=None, help="size relative to the example's default (1.0)")
    size.add_argument("--users", type=int, default=None, help="number of users: scale = USERS / the example's default")
    parser.add_argument("--seed", type=int, default=7)


def hook_arguments(module: ModuleType, args: argparse.Namespace) -> dict[str, Any]:
    """The keyword arguments of the ``generate`` hook from the command line (unset ones: the hook's defaults)."""
    options: dict[str, Any] = {"seed": args.seed}
    if args.end_date:
        options["end_date"] = parse_date(args.end_date, "--end-date")
    if args.days is not None:
        if args.days < 1:
            raise ConfigurationError(f"--days must be >= 1, got {args.days}")
        options["days"] = args.days
    if args.users is not None:
        if args.users < 1:
            raise ConfigurationError(f"--users must be >= 1, got {args.users}")
        options["scale"] = args.users / int(getattr(module, "USERS_PER_SCALE", 1000))
    elif args.scale is not None:
        if args.scale <= 0:
            raise ConfigurationError(f"--scale must be > 0, got {args.scale}")
        options["scale"] = args.scale
    return options


def run(args: argparse.Namespace, settings: Settings) -> int:
    from featurestore.jobs.core import console

    module = sample_module(args.example, settings.repo)
    options = hook_arguments(module, args)  # argument errors before Spark starts
    with console.Steps(2, "generate") as steps:
        with steps.step("start Spark"):
            spark, own_session = session(None, "featurestore-generate", settings)
        try:
            with steps.step("write the Delta tables"):
                result: GeneratedWarehouse = module.generate(spark, args.warehouse, **options)
        finally:
            if own_session:
                spark.stop()
    counts = ", ".join(f"{table} {count:,}" for table, count in result.rows.items())
    console.echo(
        f"wrote {result.path} ({counts} rows; ds {result.first_day}..{result.last_day}) in {result.seconds:.1f}s"
    )
    return console.ExitCode.OK
