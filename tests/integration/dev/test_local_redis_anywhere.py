"""`featurestore redis start|status|url|stop` as a user runs them: separate processes, from
different working directories, the state in the per-user folder ($FEATURESTORE_HOME/redis)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis

from featurestore.jobs.dev import local_redis

REPO = Path(__file__).resolve().parents[3]


def featurestore(*args: str, cwd: Path, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FEATURESTORE_HOME=str(home))
    # this checkout's code, whatever the editable install points at
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "readers"), str(REPO / "jobs"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "featurestore.jobs.cli", "redis", *args],
        cwd=cwd, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def test_start_in_one_folder_status_and_stop_from_another(tmp_path: Path) -> None:
    home, one, two = tmp_path / "home", tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    port = local_redis._free_ports("127.0.0.1", 1, cluster=False)[0]

    assert featurestore("status", cwd=two, home=home).returncode == 1  # nothing yet
    started = featurestore("start", "--port", str(port), cwd=one, home=home)
    assert started.returncode == 0, started.stderr
    url = f"redis://127.0.0.1:{port}"
    assert started.stdout.strip() == url  # only the URL on stdout: URL=$(featurestore redis start)
    try:
        assert redis.Redis.from_url(url).ping()
        status = featurestore("status", cwd=two, home=home)
        assert status.returncode == 0, status.stderr
        assert f"running: {url}" in status.stdout and "Redis 8." in status.stdout
        assert "(1 of 1 running)" in status.stdout and str(home / "redis") in status.stdout
        assert featurestore("url", cwd=two, home=home).stdout.strip() == url
        again = featurestore("start", cwd=two, home=home)
        assert again.returncode == 1 and "already has a running server" in again.stderr
    finally:
        stopped = featurestore("stop", cwd=two, home=home)
    assert stopped.returncode == 0 and stopped.stdout.strip() == "stopped"
    with pytest.raises(redis.ConnectionError):
        redis.Redis.from_url(url, socket_connect_timeout=1).ping()
    after = featurestore("status", cwd=one, home=home)
    assert after.returncode == 1 and "no server running" in after.stdout
    assert list(one.iterdir()) == [] and list(two.iterdir()) == []  # nothing in the working directories


def test_a_server_that_died_counts_as_not_running_and_is_replaced(tmp_path: Path) -> None:
    workdir = tmp_path / "srv"
    server = local_redis.start(workdir)
    os.kill(server.pids[0], signal.SIGKILL)
    deadline = time.monotonic() + 10
    while server.alive_pids() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert local_redis.load_state(workdir) is not None and local_redis.running(workdir) is None
    status = featurestore("status", "--workdir", str(workdir), cwd=tmp_path, home=tmp_path / "home")
    assert status.returncode == 1
    replacement = local_redis.start(workdir)  # the stale state does not block a start
    try:
        assert replacement.client().ping()
    finally:
        assert local_redis.stop(workdir)


def test_a_taken_port_is_refused_clearly(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = featurestore("start", "--port", str(port), cwd=tmp_path, home=tmp_path / "home")
    assert result.returncode == 1
    assert f"port {port} on 127.0.0.1 is in use" in result.stderr and "Traceback" not in result.stderr
    assert local_redis.load_state(tmp_path / "home" / "redis") is None
