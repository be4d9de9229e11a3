"""Feast 0.67 in a side virtualenv, and a small Feast repository on our online store.

Feast pins its own redis-py (< 8), protobuf and pandas, so it never enters the project's venv:
:func:`feast_python` builds a side venv once and reuses it (keyed by :data:`FEAST_PINS` and the
Python version, under ``$FEATURESTORE_FEAST_VENV`` or the temp folder), installing Feast from
PyPI with pip.  Our code is not installed there: the subprocesses get this checkout's source
roots on ``PYTHONPATH`` (:func:`feast_env`), as an editable install would.

:func:`write_repo` writes the repository the tests drive with Feast's own CLI and SDK
(``feast apply``, ``materialize``, ``push``, ``get_online_features``): one ``driver`` entity, a
batch view over a parquet file and a pushed view; its ``feature_store.yaml`` differs from a Feast
Redis repository only in the ``online_store`` block.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
# Feast 0.67 (the release the plug-in is written for) with its Redis extra, and the C parser our
# reader needs (a base dependency of ours: pip install redis-feature-store[feast] brings it)
FEAST_PINS = ("feast[redis]==0.67.*", "hiredis>=3.0,<4")
DRIVER = Path(__file__).resolve().parents[1] / "integration" / "feast" / "feast_driver.py"


def venv_path() -> Path:
    """Where the side venv lives: ``$FEATURESTORE_FEAST_VENV``, else a folder named by the pins."""
    if os.environ.get("FEATURESTORE_FEAST_VENV"):
        return Path(os.environ["FEATURESTORE_FEAST_VENV"])
    key = hashlib.sha256(json.dumps([FEAST_PINS, sys.version_info[:2]]).encode()).hexdigest()[:12]
    return Path(tempfile.gettempdir()) / f"featurestore-feast-venv-{key}"


def _works(python: Path) -> bool:
    probe = [str(python), "-c", "import feast, redis, hiredis; assert feast.__version__.startswith('0.67')"]
    return python.exists() and subprocess.run(probe, capture_output=True).returncode == 0


def feast_python(venv: Path | None = None) -> tuple[Path, float]:
    """The side venv's python (built if needed) and the seconds building it took (0: reused).

    Built in a sibling folder and renamed into place, so an interrupted build is never reused.
    Raises ``RuntimeError`` with pip's last words when Feast cannot be installed (no network)."""
    venv = venv or venv_path()
    python = venv / "bin" / "python"
    if _works(python):
        return python, 0.0
    started = time.monotonic()
    building = venv.with_name(venv.name + f".building-{os.getpid()}")
    shutil.rmtree(building, ignore_errors=True)
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    steps = [
        [str(base if base.exists() else sys.executable), "-m", "venv", str(building)],
        [str(building / "bin" / "python"), "-m", "pip", "install", "-q", "--disable-pip-version-check", *FEAST_PINS],
    ]
    for step in steps:
        done = subprocess.run(step, capture_output=True, text=True)
        if done.returncode != 0:
            shutil.rmtree(building, ignore_errors=True)
            raise RuntimeError(f"building the Feast side venv failed: {' '.join(step)}: {done.stderr[-800:]}")
    shutil.rmtree(venv, ignore_errors=True)
    building.rename(venv)  # the venv's scripts name their folder: fix the shebangs of the two we run
    for script in ("feast", "pip"):
        path = venv / "bin" / script
        if path.exists():
            path.write_text(path.read_text().replace(str(building), str(venv)))
    if not _works(python):
        raise RuntimeError(f"Feast is not importable in {venv} after installing {FEAST_PINS}")
    return python, time.monotonic() - started


def feast_env() -> dict[str, str]:
    """The environment of a Feast subprocess: this checkout's code importable, no telemetry."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "readers"), str(ROOT / "jobs")])
    env["FEAST_USAGE"] = "False"
    env.pop("VIRTUAL_ENV", None)
    return env


DEFINITIONS = '''
"""A Feast repository as a Feast user writes it: nothing in it knows redis-feature-store."""
import os
from datetime import timedelta

from feast import Entity, FeatureView, Field, FileSource, PushSource, ValueType
from feast.types import Array, Bool, Bytes, Float32, Float64, Int64, String

driver = Entity(name="driver", join_keys=["driver_id"], value_type=ValueType.INT64)
stats_source = FileSource(
    name="driver_stats_source", path="data/driver_stats.parquet", timestamp_field="event_timestamp"
)
driver_stats = FeatureView(
    name="driver_stats",
    entities=[driver],
    ttl=timedelta(days=1),
    schema=[
        Field(name="conv_rate", dtype=Float32),
        Field(name="acc_rate", dtype=Float64),
        Field(name="trips", dtype=Int64),
        Field(name="city", dtype=String),
        Field(name="active", dtype=Bool),
        Field(name="embedding", dtype=Array(Float32), vector_length=3),
    ],
    source=stats_source,
    online=True,
)
driver_push = PushSource(
    name="driver_push",
    batch_source=FileSource(
        name="driver_live_source", path="data/driver_live.parquet", timestamp_field="event_timestamp"
    ),
)
driver_live = FeatureView(
    name="driver_live",
    entities=[driver],
    ttl=timedelta(seconds=LIVE_TTL),
    schema=[Field(name="speed", dtype=Float64), Field(name="zone", dtype=String)],
    source=driver_push,
    online=True,
)
if os.environ.get("FS_FEAST_FRESH"):  # Feast's quickstart pattern: a pushed copy of a batch view
    driver_stats_fresh = FeatureView(
        name="driver_stats_fresh",
        entities=[driver],
        ttl=timedelta(days=1),
        schema=[Field(name="trips", dtype=Int64)],
        source=driver_push,
        online=True,
    )
if os.environ.get("FS_FEAST_UNSUPPORTED"):
    driver_blobs = FeatureView(
        name="driver_blobs",
        entities=[driver],
        ttl=timedelta(days=1),
        schema=[Field(name="photo", dtype=Bytes)],
        source=stats_source,
        online=True,
    )
'''

STORE_YAML = """project: fs_feast_test
registry: data/registry.db
provider: local
online_store:
  type: featurestore.feast.FeatureStoreOnlineStore
  connection_string: {url}
offline_store:
  type: file
entity_key_serialization_version: 3
"""
# what a Feast Redis repository has instead (docs/feast.md shows both)
FEAST_REDIS_BLOCK = """online_store:
  type: redis
  connection_string: localhost:6379
"""


def write_repo(
    folder: Path, url: str, stats: dict[str, list[Any]], live_ttl_seconds: int = 3, layout: str | None = None
) -> Path:
    """The Feast repository in ``folder`` (``stats``: the batch source's columns, as JSON: :data:`PARQUET`
    makes the parquet file with the side venv's pandas); ``layout`` adds that key to the store's block."""
    (folder / "data").mkdir(parents=True, exist_ok=True)
    block = STORE_YAML.format(url=url)
    if layout is not None:
        block = block.replace(f"  connection_string: {url}\n", f"  connection_string: {url}\n  layout: {layout}\n")
    (folder / "feature_store.yaml").write_text(block)
    (folder / "definitions.py").write_text(DEFINITIONS.replace("LIVE_TTL", str(live_ttl_seconds)))
    (folder / "data" / "driver_stats.json").write_text(json.dumps(stats))
    return folder


PARQUET = """
import json, sys
import pandas as pd
folder = sys.argv[1]
stats = pd.DataFrame(json.load(open(folder + "/data/driver_stats.json")))
stats["event_timestamp"] = pd.to_datetime(stats["event_timestamp"], utc=True)
stats["conv_rate"] = stats["conv_rate"].astype("float32")
stats.to_parquet(folder + "/data/driver_stats.parquet")
live = pd.DataFrame({
    "driver_id": pd.Series([], dtype="int64"),
    "speed": pd.Series([], dtype="float64"),
    "zone": pd.Series([], dtype="object"),
    "event_timestamp": pd.to_datetime(pd.Series([], dtype="int64"), utc=True),
})
live.to_parquet(folder + "/data/driver_live.parquet")
"""


STATS = ["conv_rate", "acc_rate", "trips", "city", "active", "embedding"]  # driver_stats' features
LIVE = ["speed", "zone"]  # driver_live's (pushed)


def stats_rows() -> dict[str, list[Any]]:
    """The batch source's rows: driver 1 fresh, 2 with a null conv_rate, 3 older than the view's ttl."""
    now = datetime.now(UTC)
    fresh, old = (now - timedelta(hours=1)).isoformat(), (now - timedelta(days=2)).isoformat()
    return {
        "driver_id": [1, 2, 3],
        "conv_rate": [0.5, None, 0.25],  # driver 2: a null
        "acc_rate": [0.1, 0.2, 0.3],
        "trips": [10, 20, 30],
        "city": ["Paris", "Lyon", "Nice"],
        "active": [True, False, True],
        "embedding": [[1.0, 2.0, 3.0], [0.5, 0.25, -1.0], [0.0, 0.0, 0.0]],
        "event_timestamp": [fresh, fresh, old],  # driver 3: older than the view's ttl (1 day): stale
    }


def online_step(features: list[str], full: bool, is_async: bool, ids: list[int]) -> dict[str, Any]:
    """A ``get_online_features`` step of :data:`DRIVER`."""
    rows = [{"driver_id": i} for i in ids]
    return {"op": "online", "rows": rows, "features": features, "full": full, "async": is_async}


def materialize_step() -> dict[str, Any]:
    """A ``materialize`` step of :data:`DRIVER` over the last three days."""
    now = datetime.now(UTC)
    return {"op": "materialize", "start": (now - timedelta(days=3)).isoformat(), "end": now.isoformat()}


def by_feature(answer: dict[str, Any], view: str) -> tuple[dict[str, list[Any]], dict[str, list[str]]]:
    """Values and statuses by bare feature name (whichever full_feature_names was)."""
    bare = {name: name.split("__", 1)[1] if name.startswith(f"{view}__") else name for name in answer["names"]}
    values = {bare[n]: v for n, v in answer["values"].items() if n != "driver_id"}
    statuses = {bare[n]: s for n, s in answer["statuses"].items() if n != "driver_id"}
    return values, statuses


def run(
    python: Path, args: list[str], cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """A command of the side venv (``feast ...`` or a script), with our code on its path."""
    full = {**feast_env(), **(env or {})}
    return subprocess.run([str(python), *args], cwd=cwd, env=full, capture_output=True, text=True, timeout=300)


def feast_cli(
    python: Path, repo: Path, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """Feast's own CLI (``python -m feast.cli``... is not a module in 0.67: the ``feast`` script)."""
    return run(python, [str(python.parent / "feast"), "-c", str(repo), *args], repo, env)


def drive(
    python: Path, repo: Path, steps: list[dict[str, Any]], env: dict[str, str] | None = None
) -> list[dict[str, Any]]:
    """Run :data:`DRIVER`'s steps in one Feast process (``env`` added to its environment); their answers."""
    done = drive_process(python, repo, steps, env)
    if done.returncode != 0:
        raise AssertionError(f"feast driver failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}")
    answers: list[dict[str, Any]] = json.loads(done.stdout.strip().splitlines()[-1])
    return answers


def drive_process(
    python: Path, repo: Path, steps: list[dict[str, Any]], env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """:func:`drive`'s process as it ended (for steps expected to fail)."""
    return run(python, [str(DRIVER), str(repo), json.dumps(steps)], repo, env)


@contextlib.contextmanager
def serving(python: Path, repo: Path, seconds: float = 120, env: dict[str, str] | None = None) -> Iterator[str]:
    """``feast serve`` (Feast's HTTP feature server) on a free loopback port, until the block ends;
    its base URL once ``/health`` answers.  The process is ours: stopped by its pid."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    log = (repo / "serve.log").open("w")
    command = [str(python), str(python.parent / "feast"), "-c", str(repo), "serve", "-h", "127.0.0.1", "-p", str(port)]
    server = subprocess.Popen(
        command, cwd=repo, env={**feast_env(), **(env or {})}, stdout=log, stderr=subprocess.STDOUT
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + seconds
        while True:
            if server.poll() is not None:
                raise AssertionError(f"feast serve exited: {(repo / 'serve.log').read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(base + "/health", timeout=2) as answer:
                    if answer.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"feast serve did not answer in {seconds} s: {(repo / 'serve.log').read_text()[-3000:]}"
                )
            time.sleep(0.5)
        yield base
    finally:
        server.terminate()
        try:
            server.wait(timeout=20)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
        log.close()


def post_json(url: str, body: dict[str, Any]) -> Any:
    """POST ``body`` as JSON; the decoded answer."""
    request = urllib.request.Request(url, data=json.dumps(body).encode(), headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=60) as answer:
        return json.loads(answer.read())


if __name__ == "__main__":  # scripts/bootstrap pre-builds the venv: python -m tests.helpers.feast
    built, took = feast_python()
    how = f"built in {took:.0f} s" if took else "already there"
    print(f"Feast side venv: {built.parent.parent} ({how})")
