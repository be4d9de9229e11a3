"""Failures that say what happened, against real servers: wrong password, missing password,
permission denied, connection refused, cluster down and a server too old each surface as
their own class of the one error tree — from the reader (sync and asyncio), the jobs'
control-plane client and the streaming writer alike — naming the user (never the
password), what was refused and the fix.  (Without a server: tests/unit/wire/.)
"""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import redis

from featurestore.jobs.core import run_records
from featurestore.jobs.core.control_plane import connect as job_connect
from featurestore.jobs.dev import local_redis
from featurestore.jobs.streaming import StreamingWriter
from featurestore.readers import (
    AsyncFeatureReader,
    AuthenticationError,
    ClusterDownError,
    FeatureReader,
    FeatureStoreConnectionError,
    FeatureStoreError,
    PasswordRequiredError,
    PermissionDeniedError,
    ServerError,
    ServerUnreachableError,
    UnsupportedServerError,
)
from tests.helpers.reader import test_catalog

SECRET = "s3cr3t-Pa55+word"  # the secured_redis fixture's password
# Every failure here is a prompt reply from a live server: the timeout only has to outlast a busy
# machine (1 s once ran out on a 2-core box at load 8, turning CLUSTERDOWN into a timeout).
TIMEOUT = 5.0


def with_auth(url: str, auth: str | None) -> str:
    """``url`` with ``user:password`` (None: no credentials at all)."""
    host_port = url.split("//", 1)[1].rsplit("@", 1)[-1]
    return f"redis://{auth}@{host_port}" if auth else f"redis://{host_port}"


def read(url: str) -> None:
    FeatureReader.connect(url, catalog=test_catalog, timeout=TIMEOUT).close()


def read_async(url: str) -> None:
    async def go() -> None:
        await (await AsyncFeatureReader.connect(url, catalog=test_catalog, timeout=TIMEOUT)).close()

    asyncio.run(go())


def control_plane(url: str) -> None:
    """What a job does first: reach Redis (PING), then look up the view's last good run."""
    client = job_connect(url, timeout=TIMEOUT)
    try:
        run_records.latest_run(client, "scores", status="succeeded")
    finally:
        client.close()


def stream(url: str) -> None:
    StreamingWriter.connect(url, "live", catalog=test_catalog, timeout=TIMEOUT, retry_seconds=1.0).close()


CLIENTS: dict[str, Callable[[str], None]] = {
    "reader": read,
    "async reader": read_async,
    "control plane": control_plane,
    "streaming writer": stream,
}


def failure(call: Callable[[str], None], url: str) -> FeatureStoreError:
    started = time.monotonic()
    with pytest.raises(FeatureStoreError) as raised:
        call(url)
    assert time.monotonic() - started < 10  # no retrying what no retry fixes
    return raised.value


@pytest.mark.parametrize("client", list(CLIENTS))
def test_wrong_password(secured_url: str, client: str) -> None:
    error = failure(CLIENTS[client], with_auth(secured_url, "default:not-the-password"))
    assert type(error) is AuthenticationError, repr(error)
    assert isinstance(error, FeatureStoreConnectionError)  # old `except` clauses still catch it
    message = str(error)
    assert "ACL user 'default'" in message and "WRONGPASS" in message and "ACL GETUSER default" in message
    assert "not-the-password" not in message and SECRET not in message and "cannot reach" not in message
    assert error.user == "default"


@pytest.mark.parametrize("client", list(CLIENTS))
def test_missing_password(secured_url: str, client: str) -> None:
    error = failure(CLIENTS[client], with_auth(secured_url, None))
    assert type(error) is PasswordRequiredError, repr(error)
    assert isinstance(error, AuthenticationError)
    message = str(error)
    assert "requires a password and the URL gives none (NOAUTH)" in message and "redis://USER:PASSWORD@" in message
    assert "cannot reach" not in message


@pytest.mark.parametrize("client", list(CLIENTS))
def test_permission_denied_names_user_and_command(redis_url: str, client: str) -> None:
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "nobody_ro", "reset", "on", ">n0body-pw", "~fs:*", "+ping")
    try:
        error = failure(CLIENTS[client], with_auth(redis_url, "nobody_ro:n0body-pw"))
    finally:
        admin.execute_command("ACL", "DELUSER", "nobody_ro")
    assert type(error) is PermissionDeniedError, repr(error)
    assert error.user == "nobody_ro" and error.command in {"hgetall", "info", "xrevrange", "ping"}
    message = str(error)
    assert f"refused the {error.command!r} command to ACL user 'nobody_ro'" in message
    assert "featurestore acl --role" in message and "n0body-pw" not in message


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])  # closed again: nothing listens there


@pytest.mark.parametrize("client", list(CLIENTS))
def test_connection_refused(client: str) -> None:
    url = f"redis://app:pw-not-shown@127.0.0.1:{closed_port()}"
    error = failure(CLIENTS[client], url)
    assert isinstance(error, ServerUnreachableError), repr(error)
    message = str(error)
    assert "cannot reach Redis at redis://app:***@127.0.0.1" in message and "connection refused" in message
    assert "start the server, or correct the host and port" in message and "pw-not-shown" not in message


@pytest.fixture
def cluster_down(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A one-node Redis Cluster that lost a slot: `cluster_state:fail`, every command CLUSTERDOWN."""
    workdir: Path = tmp_path_factory.mktemp("cluster-down")
    server = local_redis.start(workdir, extra_args=["--cluster-enabled", "yes", "--cluster-announce-ip", "127.0.0.1"])
    try:
        node = server.client()
        node.execute_command("CLUSTER", "ADDSLOTSRANGE", 0, 16383)
        node.execute_command("CLUSTER", "DELSLOTS", 0)  # full coverage required (the default): the cluster is down
        deadline = time.monotonic() + 10
        while b"cluster_state:fail" not in node.execute_command("CLUSTER", "INFO"):
            assert time.monotonic() < deadline, "the cluster did not report its state"
            time.sleep(0.05)
        yield server.url + "?cluster=true"
    finally:
        local_redis.stop(workdir)


@pytest.mark.parametrize("client", ["reader", "async reader", "control plane"])
def test_cluster_down(cluster_down: str, client: str) -> None:
    def call(url: str) -> None:
        if client == "control plane":  # redis-py's cluster client, through the translation
            connection = job_connect(url, timeout=TIMEOUT)
            try:
                connection.hgetall("fs:registry")
            finally:
                connection.close()
        else:
            CLIENTS[client](url)

    error = failure(call, cluster_down)
    assert type(error) is ClusterDownError, repr(error)
    assert "is down" in str(error) and "CLUSTER INFO" in str(error)


def test_server_too_old(redis7_url: str) -> None:
    error = failure(stream, redis7_url)
    assert type(error) is UnsupportedServerError and isinstance(error, ServerError)
    assert "Redis 7.0." in str(error) and "HSETEX" in str(error)


@pytest.mark.parametrize("client", ["reader", "async reader", "control plane"])
def test_an_unknown_user_on_a_cluster(cluster_url: str, client: str) -> None:
    """The same class from a cluster's slot-map load (and redis-py's cluster client start-up)."""
    error = failure(CLIENTS[client], with_auth(cluster_url, "ghost:no-such-user-pw"))
    assert type(error) is AuthenticationError, repr(error)
    assert "ACL user 'ghost'" in str(error) and "no-such-user-pw" not in str(error)
