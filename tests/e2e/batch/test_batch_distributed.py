"""The job on a distributed engine: `spark-submit --master spark://...` into a Redis Cluster.

A standalone Spark master and one worker are started from the pyspark install on
loopback (free ports), the entry file `jobs/featurestore/jobs/materialize_job.py` is submitted to them, and
the features must land on all three masters of the local Redis Cluster.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.batch import run_records
from featurestore.jobs.dev.local_redis import LocalRedis
from featurestore.jobs.dev.sample_data import GeneratedWarehouse
from featurestore.jobs.spark import DELTA_PACKAGE, JARS_ENV_VAR
from featurestore.readers.example_catalog import catalog
from featurestore.readers.reader import FeatureReader
from tests.helpers.batch import DS

JOB = Path(__file__).resolve().parents[3] / "jobs" / "featurestore" / "jobs" / "materialize_job.py"


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
    return env


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
def spark_master(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
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
            # a new session: the daemon and whatever it forks form one group we can stop
            procs.append(
                subprocess.Popen([spark_class, *args], env=environment(), stdout=log, stderr=subprocess.STDOUT,
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
        yield url
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


@pytest.mark.slow
@pytest.mark.cluster
def test_spark_submit_to_a_standalone_master_writes_to_all_cluster_masters(
    spark_master: str, warehouse: GeneratedWarehouse, redis_cluster: LocalRedis, cluster_url: str
) -> None:
    jars = os.environ.get(JARS_ENV_VAR)
    command = [
        str(spark_home() / "bin" / "spark-submit"), "--master", spark_master,
        *(["--jars", jars] if jars else ["--packages", DELTA_PACKAGE]),
        "--conf", "spark.executor.memory=1g", "--conf", "spark.executor.cores=1",
        "--conf", f"spark.pyspark.python={sys.executable}",
        "--conf", "spark.sql.shuffle.partitions=2", "--conf", "spark.databricks.delta.snapshotPartitions=2",
        "--conf", "spark.ui.enabled=false",
        str(JOB), "--view", "user_profile", "--ds", str(DS), "--warehouse", str(warehouse.path),
    ]  # fmt: skip
    env = environment()
    env[run_records.REDIS_URL_ENV_VAR] = cluster_url  # not on the command line
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=480)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-5000:]
    assert "materialize user_profile ds=2024-05-31: SUCCEEDED" in done.stdout

    per_master = {port: redis_cluster.client(port).dbsize() for port in redis_cluster.primary_ports()}
    assert all(count > 0 for count in per_master.values()), per_master
    client = run_records.connect(cluster_url)
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
