"""Issue 25, items 4 and 5, with real Redis 8 servers from the wheel (featurestore.jobs.dev.local_redis):

* `featurestore demo` run twice with the same --workdir said "run featurestore redis stop first";
  doing exactly that answered "no server running from <home>/redis" and the demo refused again.
  Now every hint is the exact command that works (with --workdir), `redis stop`/`status` name
  the servers started elsewhere, and the demo replaces the server it left itself.
* the README's reader quick start failed after the demo (it assumed localhost:6379): the demo
  now prints the lines with its URL, and those lines, pasted into a shell, read the features.
"""

from __future__ import annotations

import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.jobs.core.settings import Settings
from featurestore.jobs.dev import demo, local_redis, started_servers
from featurestore.jobs.examples import example_module
from featurestore.readers import DType, FeatureView
from featurestore.readers.repository import load_catalog
from tests.helpers.reader import write_view

REPO = Path(__file__).resolve().parents[3]


@pytest.fixture
def home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    """A throw-away $FEATURESTORE_HOME for this process and the commands it runs."""
    folder = tmp_path / "home"
    monkeypatch.setenv("FEATURESTORE_HOME", str(folder))
    return folder


def _environment(**extra: str) -> dict[str, str]:
    env = dict(os.environ, **extra)
    # this checkout's code, and its Python as `python`, whatever the editable install points at
    env["PYTHONPATH"] = os.pathsep.join([str(REPO / "readers"), str(REPO / "jobs"), env.get("PYTHONPATH", "")])
    env["PATH"] = os.pathsep.join([str(Path(sys.executable).parent), env.get("PATH", "")])
    return env


def featurestore(command: str, *, cwd: Path) -> subprocess.CompletedProcess[str]:
    """A `featurestore ...` command line as a user types it (this checkout's CLI), from ``cwd``."""
    argv = shlex.split(command)
    assert argv[0] == "featurestore", command
    return subprocess.run(
        [sys.executable, "-m", "featurestore.jobs.cli", *argv[1:]],
        cwd=cwd, env=_environment(), capture_output=True, text=True, timeout=120,
    )  # fmt: skip


def _hinted_command(text: str) -> str:
    """The command between the backticks of an error message (`run `featurestore ...` first`)."""
    return text.split("`")[1]


def test_the_hint_of_a_busy_work_dir_is_the_command_that_stops_it(tmp_path: Path, home: Path) -> None:
    workdir = tmp_path / "demo" / "redis"  # where `featurestore demo --workdir demo` starts its Redis
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    server = local_redis.start(workdir)
    try:
        with pytest.raises(local_redis.LocalRedisError, match="already has a running server") as refused:
            local_redis.start(workdir)
        hint = _hinted_command(str(refused.value))
        assert hint == f"featurestore redis stop --workdir {workdir}"
        # the plain `featurestore redis stop` (the old hint) names it and the command that works
        plain = featurestore("featurestore redis stop", cwd=elsewhere)
        assert plain.returncode == 0 and plain.stdout == f"no server running from {home / 'redis'}\n"
        assert f"featurestore redis stop --workdir {workdir}" in plain.stderr, plain.stderr
        status = featurestore("featurestore redis status", cwd=elsewhere)
        assert status.returncode == 1 and f"featurestore redis status --workdir {workdir}" in status.stderr
        assert local_redis.running(workdir) is not None  # neither stopped it
        stopped = featurestore(hint, cwd=elsewhere)  # exactly what the message said
        assert stopped.returncode == 0 and stopped.stdout == "stopped\n", stopped.stdout + stopped.stderr
        with pytest.raises(redis.ConnectionError):
            server.client().ping()
        assert started_servers.remembered("redis") == []
    finally:
        local_redis.stop(workdir)


def test_stop_all_stops_the_servers_started_anywhere(tmp_path: Path, home: Path) -> None:
    started = featurestore(f"featurestore redis start --workdir {tmp_path / 'a'}", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert f"stop it with: featurestore redis stop --workdir {tmp_path / 'a'}" in started.stderr
    assert featurestore("featurestore redis start", cwd=tmp_path).returncode == 0  # the default work dir
    try:
        both = featurestore("featurestore redis stop --all", cwd=tmp_path)
        assert both.returncode == 0 and both.stdout.count("stopped redis://127.0.0.1:") == 2, both.stdout
        assert local_redis.running(tmp_path / "a") is None and local_redis.running(home / "redis") is None
    finally:
        local_redis.stop(tmp_path / "a")
        local_redis.stop(home / "redis")


def test_the_demo_replaces_the_server_it_left_on_the_same_port(tmp_path: Path, home: Path) -> None:
    redis_dir = tmp_path / "demo" / "redis"
    first = demo.start_own_redis(redis_dir)  # a `featurestore demo --workdir demo --keep`
    try:
        first.client().set("left-by-the-first-run", 1)
        second = demo.start_own_redis(redis_dir)  # the second run with the same --workdir
        assert second.url == first.url  # a URL exported after the first run still works
        assert first.alive_pids() == [] and second.alive_pids()
        assert second.client().get("left-by-the-first-run") is None  # a fresh server
    finally:
        local_redis.stop(redis_dir)
    # a server that is not the demo's kind is left alone, and the error says how to stop it
    other = local_redis.start(redis_dir, password="not-the-demos")
    try:
        with pytest.raises(local_redis.LocalRedisError, match="the demo did not start") as refused:
            demo.start_own_redis(redis_dir)
        assert _hinted_command(str(refused.value)) == f"featurestore redis stop --workdir {redis_dir}"
        assert other.alive_pids()
    finally:
        local_redis.stop(redis_dir)


def _row(view: FeatureView) -> dict[str, Any]:
    values: dict[DType, Any] = {DType.INT64: 3, DType.FLOAT32: 0.5, DType.FLOAT64: 12.5, DType.STRING: "FR"}
    row: dict[str, Any] = {}
    for feature in view.features:
        if feature.dtype == DType.VECTOR:
            row[feature.name] = [0.25] * (feature.dim or 1)
        else:
            row[feature.name] = values.get(feature.dtype, True)
    return row


def test_the_reader_quick_start_the_demo_prints_works_when_pasted(tmp_path: Path, home: Path) -> None:
    catalog_module = example_module("fraud", "definitions")
    catalog = load_catalog(catalog_module)
    settings = Settings.load({"catalog": catalog_module}, environ={})
    server = demo.start_own_redis(tmp_path / "demo" / "redis")  # on a free port, not localhost:6379
    try:
        samples = {"user": [1, 2, 3], "merchant": ["m0001"]}  # the fraud example's SAMPLE_IDS
        client = server.client()
        for view in catalog.batch_views:  # what materialize writes, with the batch job's commands
            ids = samples[view.entity.name]
            write_view(client, catalog, view, {ids[0]: _row(view)})
        lines = demo.reader_quick_start(server.url, settings, catalog, samples)
        assert lines[0] == f"export FEATURESTORE_REDIS_URL={server.url}"
        assert lines[1] == f"export FEATURESTORE_CATALOG={catalog_module}"
        # a fresh shell: no catalogue, URL or repository from the test's environment
        env = _environment()
        for name in ("CATALOG", "REDIS_URL", "REPO", "EXPECTATIONS"):
            env.pop(f"FEATURESTORE_{name}", None)
        pasted = subprocess.run(
            ["bash", "-e", "-c", "\n".join(f"  {line}" for line in lines)],  # as printed: two spaces in
            cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert pasted.returncode == 0, pasted.stderr
        assert "'txn_count_7d': 3" in pasted.stdout, pasted.stdout
    finally:
        server.stop()
