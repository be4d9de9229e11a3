"""TLS (rediss://) with an ACL user, against Debian's redis-server (built with TLS).

The Redis 8 and Valkey wheels are built without TLS, so this test uses the system
server; the reader only needs HMGET/HGETALL, which 7.0 has.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import redis

from featurestore.jobs import local_redis
from featurestore.readers import FeatureReader, FeatureStoreError
from tests.reader.conftest import scores, test_catalog, write_view


def _make_certs(directory: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], check=True, capture_output=True, cwd=directory)

    openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=test-ca",
            "-keyout", "ca.key", "-out", "ca.crt")  # fmt: skip
    openssl(
        "req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"
    )
    (directory / "san.ext").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
            "-days", "2", "-extfile", "san.ext", "-out", "server.crt")  # fmt: skip


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
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


def test_rediss_with_acl_user(tls_server) -> None:  # type: ignore[no-untyped-def]
    server, tls_port, ca = tls_server
    admin = server.client()
    admin.flushall()
    admin.execute_command("ACL", "SETUSER", "svc", "on", ">tls-s3cret", "~fs:*", "+hmget", "+hgetall")
    write_view(admin, test_catalog, scores, {1: {"n_orders": 3, "segment": "tls"}})
    url = f"rediss://svc:tls-s3cret@localhost:{tls_port}?ssl_ca_certs={ca}"
    reader = FeatureReader(url, catalog=test_catalog)
    assert reader.settings.tls
    assert reader.get(1, ["n_orders", "segment"]).to_list() == [3, "tls"]
    assert reader.get_many([1, 2], ["n_orders"]).to_list() == [[3], [0]]
    assert "tls-s3cret" not in repr(reader)
    # the server really refuses plain TCP on the TLS port, and a client that does not trust the CA
    with pytest.raises(redis.ConnectionError):
        redis.Redis(host="localhost", port=tls_port, socket_timeout=1).ping()
    with pytest.raises(FeatureStoreError) as failure:
        FeatureReader(f"rediss://svc:tls-s3cret@localhost:{tls_port}", catalog=test_catalog)
    assert "tls-s3cret" not in str(failure.value)
