"""A local Redis with a password: its password appears in no log record and no CLI output
(issue 25, item 8: stopping it logged ``redis://default:<password>@127.0.0.1:...``).

The log records are read through pytest's own handler (caplog), not the CLI's redacting
formatter: a library's records reach whatever handlers the application configured.
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest

from featurestore.jobs.dev import local_redis

REPO = Path(__file__).resolve().parents[3]
SECRET = "s3cr3t-Pa55+word"  # the secured_redis fixture's password


def _featurestore(*args: str, home: Path) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, FEATURESTORE_HOME=str(home))
    # this checkout's code, whatever the editable install points at
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "readers"), str(REPO / "jobs"), env.get("PYTHONPATH", "")])
    return subprocess.run(
        [sys.executable, "-m", "featurestore.jobs.cli", "redis", *args],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _logged(caplog: pytest.LogCaptureFixture) -> str:
    return caplog.text + "\n".join(r.getMessage() for r in caplog.records)


def test_start_and_stop_log_no_password(
    tmp_path: Path, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG, logger="featurestore")
    workdir = tmp_path / "secured"
    server = local_redis.start(workdir, password=SECRET)
    try:
        assert server.client().ping()  # the password is in force
        with pytest.raises(local_redis.LocalRedisError) as refused:
            local_redis.start(workdir, password=SECRET)  # already running
        assert SECRET not in str(refused.value) and "default:***@" in str(refused.value)
        assert SECRET not in repr(server)
    finally:
        assert local_redis.stop(workdir)
    logged = _logged(caplog)
    assert "started redis at redis://default:***@127.0.0.1:" in logged
    assert "stopped the redis server at redis://default:***@127.0.0.1:" in logged
    captured = capsys.readouterr()
    assert SECRET not in logged + captured.out + captured.err


def test_cli_output_shows_no_password(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="featurestore")
    workdir, home = str(tmp_path / "secured"), tmp_path / "home"
    local_redis.start(workdir, password=SECRET)
    outputs = []
    try:
        for action in ("status", "url", "start"):
            result = _featurestore(action, "--workdir", workdir, "-vv", home=home)
            assert result.returncode == (1 if action == "start" else 0), result.stderr  # start: already running
            outputs.append(result.stdout + result.stderr)
        assert "already has a running server (redis://default:***@127.0.0.1:" in outputs[-1]
    finally:
        stopped = _featurestore("stop", "--workdir", workdir, "-vv", home=home)
        outputs.append(stopped.stdout + stopped.stderr)
        if stopped.returncode != 0:
            local_redis.stop(workdir)
    assert stopped.returncode == 0 and "stopped" in stopped.stdout, stopped.stderr
    assert local_redis.running(workdir) is None
    for text in [*outputs, _logged(caplog)]:
        assert SECRET not in text
