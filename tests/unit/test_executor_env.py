"""``featurestore executor-env``: the plan (pure), the packing (a small tree), and the claim behind
the package list: the executors' Python workers need nothing but what the environment holds.

The whole recipe, run for real and used by executors, is tests/e2e/batch/test_batch_distributed.py.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tarfile
from importlib import metadata
from pathlib import Path

import pytest

from featurestore.jobs.cli import executor_env as executor_env_command
from featurestore.jobs.cli.executor_env import plan_from_args
from featurestore.jobs.deploy import executor_env
from featurestore.jobs.deploy.executor_env import DISTRIBUTION, EXECUTOR_PACKAGES, EnvPlan
from featurestore.readers.errors import ConfigurationError

REPO = Path(__file__).resolve().parents[2]


def args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    executor_env_command.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_by_default_the_wheel_is_built_from_this_checkout(tmp_path: Path) -> None:
    assert executor_env.source_tree() == REPO
    plan = plan_from_args(args("--out", str(tmp_path / "env.tar.gz")))
    assert plan.source == REPO and plan.wheel is None and plan.requirement is None
    assert plan.out == tmp_path / "env.tar.gz" and plan.python == os.path.abspath(sys.executable)


def test_an_installed_copy_installs_its_own_version_from_the_index(tmp_path: Path) -> None:
    site = tmp_path / "lib" / "python3.11" / "site-packages" / "featurestore" / "jobs" / "deploy"
    assert executor_env.source_tree(site / "executor_env.py") is None  # no pyproject.toml above an install
    plan = plan_from_args(
        args("--out", str(tmp_path / "e.tgz")), checkout=lambda: None, installed_version=lambda: "1.2.3"
    )
    assert plan.requirement == f"{DISTRIBUTION}==1.2.3" and plan.source is None


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--out", "env.zip"], "--out 'env.zip' must end in .tar.gz or .tgz"),
        (["--out", "/no/such/folder/env.tar.gz"], "the folder '/no/such/folder' does not exist"),
        (["--wheel", "/no/such.whl"], "--wheel '/no/such.whl' is not a wheel file"),
        (["-c", "/no/constraints.txt"], "--constraint '/no/constraints.txt' is not a file"),
        (["--python", "/no/python3"], "--python '/no/python3' is not an executable"),
    ],
)
def test_bad_options_name_the_option(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, argv: list[str], message: str
) -> None:
    monkeypatch.chdir(tmp_path)  # the default --out lands here
    with pytest.raises(ConfigurationError, match=message.replace(".", r"\.")):
        plan_from_args(args(*argv))


def test_neither_a_checkout_nor_installed_says_to_pass_a_wheel(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="pass --wheel"):
        plan_from_args(args("--out", str(tmp_path / "e.tar.gz")), checkout=lambda: None, installed_version=lambda: None)


def test_the_install_adds_only_what_executors_import_pinned_to_the_drivers_versions(tmp_path: Path) -> None:
    plan = EnvPlan(out=tmp_path / "e.tar.gz", extra=("my-catalogue==2.0",), pins=executor_env.driver_pins())
    env = tmp_path / "env"
    command = plan.install_command(env, "/dist/redis_feature_store-0.1.0-py3-none-any.whl", tmp_path / "pins.txt")
    assert command[command.index("--python") + 1] == str(env / "bin" / "python")
    assert "--no-compile" in command
    install = command[command.index("-q") + 2 :]
    # redis and hiredis come with the wheel (its base dependencies); nothing driver-only
    assert install == [
        "/dist/redis_feature_store-0.1.0-py3-none-any.whl", "numpy", "pyarrow", "my-catalogue==2.0",
        "-c", str(tmp_path / "pins.txt"),
    ]  # fmt: skip
    assert set(EXECUTOR_PACKAGES) == {"redis", "hiredis", "numpy", "pyarrow"}
    assert sorted(plan.pins) == sorted(f"{name}=={metadata.version(name)}" for name in EXECUTOR_PACKAGES)
    assert plan.venv_command(env) == [plan.python, "-m", "venv", "--without-pip", str(env)]
    assert plan_from_args(args("--out", str(tmp_path / "e.tar.gz"))).pins == plan.pins


def test_given_constraints_replace_the_drivers_pins(tmp_path: Path) -> None:
    constraints = tmp_path / "constraints.txt"
    plan = EnvPlan(out=tmp_path / "e.tar.gz", constraints=(constraints,))
    command = plan.install_command(tmp_path / "env", "x.whl", tmp_path / "pins.txt")
    assert command[-2:] == ["-c", str(constraints)] and str(tmp_path / "pins.txt") not in command


def test_the_spark_submit_options_ship_the_archive_and_keep_the_drivers_python(tmp_path: Path) -> None:
    plan = EnvPlan(out=tmp_path / "e.tar.gz", python="/usr/bin/python3.11")
    assert plan.spark_submit_options() == [
        "--archives", f"{tmp_path / 'e.tar.gz'}#env",
        "--conf", "spark.pyspark.python=./env/bin/python",
        "--conf", "spark.pyspark.driver.python=/usr/bin/python3.11",
    ]  # fmt: skip


def test_packing_keeps_symlinks_drops_bytecode_and_puts_the_env_at_the_root(tmp_path: Path) -> None:
    env = tmp_path / "env"
    (env / "bin").mkdir(parents=True)
    (env / "lib" / "pkg" / "__pycache__").mkdir(parents=True)
    (env / "bin" / "python").symlink_to(sys.executable)
    (env / "lib64").symlink_to("lib")
    (env / "lib" / "pkg" / "__init__.py").write_text("x = 1\n")
    (env / "lib" / "pkg" / "__pycache__" / "__init__.cpython-311.pyc").write_bytes(b"\0" * 100)
    out = tmp_path / "env.tar.gz"

    executor_env._pack(env, out, level=1)

    with tarfile.open(out) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["bin/python"].issym() and members["bin/python"].linkname == sys.executable
    assert members["lib64"].issym() and members["lib64"].linkname == "lib"
    assert "lib/pkg/__init__.py" in members
    assert not any("__pycache__" in name for name in members)
    assert not (tmp_path / "env.tar.gz.partial").exists()
    assert executor_env.tree_size(env) == len("x = 1\n") + 100  # links count as links, not their targets


# the modules the executor-side code imports inside its functions, and the streaming sink's job
RUN_TIME_IMPORTS = ("featurestore.jobs.write.bulk_encoder", "pyarrow.compute", "featurestore.jobs.streaming.spark_sink")
# An interpreter that sees only what an executor has: the standard library, the environment's
# packages, and Spark's own pyspark + py4j; any other top-level import fails as it would there.
_UNPICKLE = """
import importlib, importlib.abc, json, pickle, sys
allowed = set(sys.argv[1].split(","))
refused = set()

class OnlyTheEnvironment(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        top = name.split(".")[0]
        if top in sys.stdlib_module_names or top in allowed or top.startswith("_"):
            return None
        refused.add(top)
        raise ModuleNotFoundError(f"No module named {name!r} (not in the executor env)", name=name)

sys.meta_path.insert(0, OnlyTheEnvironment())
before = set(sys.modules)
pickle.loads(sys.stdin.buffer.read())
for module in sys.argv[2].split(","):  # what the writer imports when it runs (lazily)
    importlib.import_module(module)
loaded = {m.split(".")[0] for m in set(sys.modules) - before} - set(sys.stdlib_module_names)
print(json.dumps({"loaded": sorted(loaded), "refused": sorted(refused)}))
"""


def test_the_executors_partition_function_loads_with_the_env_packages_and_sparks_own_pyspark() -> None:
    """What Spark ships to an executor for the batch write unpickles, and the modules it imports when
    it runs import, in an interpreter that can import only the environment's packages and Spark's
    own (pyspark, py4j); optional imports that fail there are tolerated, as on a real executor."""
    from pyspark import cloudpickle

    from featurestore.jobs.examples.fraud.definitions import catalog
    from featurestore.jobs.write.commands import BatchWritePlan
    from featurestore.jobs.write.partition_writer import WriterOptions, _partition_function

    view = catalog.batch_views[0]
    function = _partition_function(BatchWritePlan.build(catalog, view), WriterOptions("redis://127.0.0.1:1", 0))
    payload = cloudpickle.dumps(function)
    path = os.pathsep.join(str(REPO / root) for root in ("readers", "jobs"))
    allowed = ",".join(("featurestore", *EXECUTOR_PACKAGES, "pyspark", "py4j"))
    done = subprocess.run(
        [sys.executable, "-c", _UNPICKLE, allowed, ",".join(RUN_TIME_IMPORTS)], input=payload,
        capture_output=True, timeout=120, env={**os.environ, "PYTHONPATH": path}, cwd=REPO,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()[-3000:]
    report = json.loads(done.stdout.decode().strip().splitlines()[-1])
    assert {"featurestore", "redis", "hiredis", "numpy", "pyarrow"} <= set(report["loaded"]), report
    # pyarrow's and redis-py's optional imports (pandas, cryptography ...) were refused, and nothing failed
    assert not {"pandas", "great_expectations", "delta", "airflow", "tqdm"} & set(report["loaded"]), report
