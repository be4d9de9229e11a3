"""``featurestore executor-env``: the Spark executors' Python environment, packed for ``--archives``.

What runs on an executor is a PySpark Python worker evaluating ``mapInArrow`` (the batch
writer, :mod:`featurestore.jobs.write`, and the streaming sink).  It unpickles the partition
function, which imports ``featurestore.jobs.write`` and ``featurestore.readers`` (so
``redis`` and ``hiredis``), ``numpy`` and ``pyarrow``.  ``pyspark`` itself is not needed in
the environment: Spark puts its own ``$SPARK_HOME/python/lib/pyspark.zip`` (and py4j) on
the worker's ``PYTHONPATH``, which also keeps the Python side at the cluster's Spark version.
Delta, Great Expectations, pandas, tqdm and Airflow run on the driver only.  So the
environment holds the project wheel, its base dependencies and numpy + pyarrow: about
230 MB unpacked and 72 MB packed, against about 1 GB for a venv with ``[jobs]``.

The recipe (Spark's documented "Using Virtualenv" approach, packed like ``venv-pack``):

1. ``python -m venv --without-pip ENV`` with the interpreter the workers will run
   (``--python``, default: this one);
2. this interpreter's pip installs into it (``pip --python ENV/bin/python install
   --no-compile``) the project (``--wheel``, else a wheel built from this checkout, else
   ``redis-feature-store==<this version>`` from the index), numpy, pyarrow and any
   ``--with`` requirement, pinned to the versions this (the driver's) environment runs
   unless ``-c`` constraints are given;
3. ENV's contents go into a ``.tar.gz`` with symlinks kept as symlinks.

``ENV/bin/python`` stays a symlink to the interpreter's absolute path (as with
``venv-pack``): that interpreter, of the driver's Python minor version, must exist at the
same path on every worker.  Submit with::

    spark-submit --archives featurestore-env.tar.gz#env \\
      --conf spark.pyspark.python=./env/bin/python \\
      --conf spark.pyspark.driver.python=python3 ...

Everything but :func:`build` (subprocesses and the tar file) is planning, testable without I/O.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from featurestore.jobs.core import console
from featurestore.readers.errors import JobError
from featurestore.readers.settings import redact_text

__all__ = [
    "DISTRIBUTION",
    "EXECUTOR_PACKAGES",
    "BuiltEnv",
    "EnvPlan",
    "build",
    "driver_pins",
    "source_tree",
    "tree_size",
]

log = logging.getLogger(__name__)

DISTRIBUTION = "redis-feature-store"
# What the executors' Python workers import besides the project: its base dependencies (the wire)
# and the two that mapInArrow hands the writer its rows with.  tests/unit/test_executor_env.py
# checks this list against what importing the executor-side modules loads.
EXECUTOR_PACKAGES: tuple[str, ...] = ("redis", "hiredis", "numpy", "pyarrow")
# Spark picks how to unpack an archive by its name; these two are gzip'd tar files.
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz")
DEFAULT_OUT = "featurestore-env.tar.gz"
DEFAULT_COMPRESS_LEVEL = 6  # gzip's own default; 1 packs about 4x faster for ~13 % more bytes
STEP_TIMEOUT_SECONDS = 1800
# the files the wheel is built from (pyproject.toml's readme, license-files and package dirs)
SOURCE_FILES = ("pyproject.toml", "README.md", "LICENSE", "readers", "jobs")


def source_tree(module_file: str | os.PathLike[str] = __file__) -> Path | None:
    """The checkout this module runs from (it has the project's ``pyproject.toml``), else None.

    ``jobs/featurestore/jobs/deploy/executor_env.py`` → the folder above ``jobs/``; an
    installed wheel has no ``pyproject.toml`` there.
    """
    root = Path(module_file).resolve().parents[4]
    pyproject = root / "pyproject.toml"
    try:
        text = pyproject.read_text(encoding="utf-8")
    except OSError:
        return None
    return root if f'name = "{DISTRIBUTION}"' in text else None


def driver_pins(packages: Sequence[str] = EXECUTOR_PACKAGES) -> tuple[str, ...]:
    """``name==version`` of each package as this interpreter has it installed (unknown ones unpinned).

    The driver pickles the partition function and ships Arrow batches: the executors get the
    same versions, so both sides agree.
    """
    pins = []
    for name in packages:
        try:
            pins.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return tuple(pins)


def tree_size(path: Path) -> int:
    """Bytes of the regular files under ``path`` (symlinks counted as links, never followed)."""
    total = 0
    for folder, _dirs, files in os.walk(path):
        for name in files:
            info = os.lstat(os.path.join(folder, name))
            total += info.st_size if not os.path.islink(os.path.join(folder, name)) else 0
    return total


@dataclass(frozen=True)
class EnvPlan:
    """What :func:`build` will do: every command it runs is one of the methods below."""

    out: Path
    python: str = sys.executable
    wheel: Path | None = None  # the project wheel to install; None: build it from `source`, or use `requirement`
    source: Path | None = None  # a checkout to build the wheel from
    requirement: str | None = None  # e.g. "redis-feature-store==0.1.0" from the index
    extra: tuple[str, ...] = ()  # --with: the user's own packages (a catalogue module, transforms)
    constraints: tuple[Path, ...] = ()  # -c files; none: `pins`
    pins: tuple[str, ...] = ()  # "name==version" constraints when no -c file is given (driver_pins())
    compress_level: int = DEFAULT_COMPRESS_LEVEL
    pip: tuple[str, ...] = (sys.executable, "-m", "pip", "--disable-pip-version-check")

    def venv_command(self, env_dir: Path) -> list[str]:
        # no pip in the environment (~15 MB the workers never use): this interpreter's pip installs into it
        return [self.python, "-m", "venv", "--without-pip", str(env_dir)]

    def wheel_command(self, source: Path, dist: Path) -> list[str]:
        return [*self.pip, "wheel", "--no-deps", "-q", "-w", str(dist), str(source)]

    def install_command(self, env_dir: Path, project: str, pins_file: Path | None) -> list[str]:
        """pip install into the environment, byte-compiling nothing (workers compile what they import)."""
        packages = [name for name in EXECUTOR_PACKAGES if name not in ("redis", "hiredis")]  # the wheel's own deps
        command = [*self.pip, "--python", str(env_dir / "bin" / "python"), "install", "-q", "--no-compile"]
        command += [project, *packages, *self.extra]
        for constraint in self.constraints or ((pins_file,) if pins_file else ()):
            command += ["-c", str(constraint)]
        return command

    def spark_submit_options(self, alias: str = "env") -> list[str]:
        """The spark-submit options that ship this environment (client mode: the driver keeps its own Python)."""
        return [
            "--archives", f"{self.out}#{alias}",
            "--conf", f"spark.pyspark.python=./{alias}/bin/python",
            "--conf", f"spark.pyspark.driver.python={self.python}",
        ]  # fmt: skip


@dataclass(frozen=True)
class BuiltEnv:
    """The packed environment and what was measured while building it."""

    path: Path
    packed_bytes: int
    unpacked_bytes: int
    interpreter: str  # what ENV/bin/python points at: it must exist on every worker
    versions: dict[str, str]  # distribution -> version, as installed in the environment
    seconds: float

    def summary(self) -> str:
        mb = 1024 * 1024
        installed = ", ".join(f"{name} {version}" for name, version in sorted(self.versions.items()))
        return (
            f"wrote {self.path}: {self.packed_bytes / mb:.1f} MiB packed, {self.unpacked_bytes / mb:.1f} MiB unpacked, "
            f"in {self.seconds:.0f} s ({installed})"
        )


# the caller's module path must not leak in: with a checkout on PYTHONPATH, pip would take the
# project for installed already (its egg-info) and leave it out of the environment
_NOT_INHERITED = ("PYTHONPATH", "PYTHONHOME", "PYTHONSTARTUP", "PIP_TARGET", "PIP_PREFIX", "PIP_USER")


def _run(command: list[str], what: str, cwd: Path) -> None:
    log.info("%s: %s", what, " ".join(command))
    env = {k: v for k, v in os.environ.items() if k not in _NOT_INHERITED}
    try:
        done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=STEP_TIMEOUT_SECONDS)
    except FileNotFoundError as exc:
        raise JobError(f"{what}: cannot run {command[0]!r}: {exc.strerror}") from None
    except subprocess.TimeoutExpired:
        raise JobError(f"{what}: no result after {STEP_TIMEOUT_SECONDS} s") from None
    if done.returncode != 0:
        lines = (done.stderr.strip() or done.stdout.strip()).splitlines()[-15:]
        raise JobError(redact_text(f"{what} failed (exit {done.returncode}):\n  " + "\n  ".join(lines)))


def _copy_source(source: Path, into: Path) -> Path:
    """The files the wheel is built from, copied: a stale ``build/`` of the checkout cannot leak in."""
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", "build", "*.egg-info")
    into.mkdir(parents=True)
    for name in SOURCE_FILES:
        origin = source / name
        if origin.is_dir():
            shutil.copytree(origin, into / name, ignore=ignore)
        elif origin.exists():
            shutil.copy2(origin, into / name)
    return into


def _pack(env_dir: Path, out: Path, level: int) -> None:
    """ENV's contents at the archive's root, symlinks as symlinks, written whole or not at all."""

    def no_bytecode(info: tarfile.TarInfo) -> tarfile.TarInfo | None:
        return None if "__pycache__" in Path(info.name).parts else info

    partial = out.with_name(out.name + ".partial")
    try:
        with tarfile.open(partial, "w:gz", compresslevel=level) as tar:
            for child in sorted(env_dir.iterdir()):
                tar.add(child, arcname=child.name, recursive=True, filter=no_bytecode)
        os.replace(partial, out)
    finally:
        partial.unlink(missing_ok=True)


def _installed_versions(env_dir: Path) -> dict[str, str]:
    sites = sorted(env_dir.glob("lib/python*/site-packages"))
    return {d.metadata["Name"]: d.version for d in metadata.distributions(path=[str(s) for s in sites])}


def build(plan: EnvPlan, steps: console.Steps | None = None) -> BuiltEnv:
    """Build the environment of ``plan`` in a temporary folder and pack it to ``plan.out``."""
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="featurestore-executor-env-") as scratch:
        work = Path(scratch)
        env_dir = work / "env"

        def step(name: str) -> AbstractContextManager[None]:
            return steps.step(name) if steps is not None else nullcontext()

        with step("create the venv"):
            _run(plan.venv_command(env_dir), "python -m venv", work)
        if plan.wheel is not None:
            project = str(plan.wheel)
        elif plan.source is not None:
            with step("build the project wheel"):
                source = _copy_source(plan.source, work / "src")
                _run(plan.wheel_command(source, work / "dist"), "pip wheel", work)
                project = str(next((work / "dist").glob("*.whl")))
        else:
            assert plan.requirement is not None
            project = plan.requirement
        pins_file = None
        if not plan.constraints and plan.pins:
            pins_file = work / "driver-pins.txt"
            pins_file.write_text("\n".join(plan.pins) + "\n", encoding="utf-8")
        with step("install the executor packages"):
            _run(plan.install_command(env_dir, project, pins_file), "pip install", work)
        with step("pack"):
            _pack(env_dir, plan.out, plan.compress_level)
        return BuiltEnv(
            path=plan.out,
            packed_bytes=plan.out.stat().st_size,
            unpacked_bytes=tree_size(env_dir),
            interpreter=_interpreter(env_dir),
            versions=_installed_versions(env_dir),
            seconds=time.monotonic() - started,
        )


def _interpreter(env_dir: Path) -> str:
    """Where ``ENV/bin/python`` leads: through the env's own relative links (``python ->
    python3.11`` in a venv made from a venv) to the interpreter's absolute path."""
    path = env_dir / "bin" / "python"
    for _ in range(5):
        if not path.is_symlink():
            break
        target = os.readlink(path)
        if os.path.isabs(target):
            return target
        path = path.parent / target
    return str(path)
