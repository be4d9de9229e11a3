"""Ctrl-C during ``featurestore materialize`` (issue 25, item 1): a real CLI subprocess, real Spark.

A terminal's Ctrl-C sends SIGINT to the whole foreground process group: the CLI, the JVM it
launched and Spark's Python workers.  The test does the same (the command runs in its own
session, and the signal goes to that group) once the run is inside Spark work (its log file
shows a stage started), then checks what the user sees and what is recorded:

* exit 130 and one line, ``featurestore materialize: interrupted``: no traceback, no Py4J
  error from the JVM going away after the interrupt;
* ``fs:runs`` records the run as ``interrupted`` (not ``failed``), and ``featurestore status``
  does not call the view failing because of it.
"""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from featurestore.jobs.core import control_plane, run_records
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.ops import status
from tests.helpers.batch import DS

VIEW = "user_transactions"
STARTED_SPARK_WORK = re.compile(r"INFO featurestore\.jobs\.batch\.materialize: (read|transform):")


def _in_spark_work(log_file: Path) -> bool:
    return log_file.exists() and bool(STARTED_SPARK_WORK.search(log_file.read_text("utf-8", "replace")))


def _lines(stream: Any, into: list[str]) -> None:
    for raw in iter(stream.readline, b""):
        into.append(raw.decode("utf-8", "replace"))


def test_ctrl_c_during_materialize_exits_130_and_records_an_interrupted_run(
    warehouse: Any, redis_url: str, tmp_path: Path
) -> None:
    env = dict(os.environ, **{REDIS_URL_ENV_VAR: redis_url})
    env.pop("FEATURESTORE_TEST_ENGINE", None)
    command = [sys.executable, "-m", "featurestore.jobs.cli", "materialize", "--view", VIEW, "--ds", str(DS),
               "--warehouse", str(warehouse.path), "--run-id", "interrupted-1"]  # fmt: skip
    proc = subprocess.Popen(
        command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, start_new_session=True, cwd=tmp_path
    )
    out: list[str] = []
    err: list[str] = []
    streams = ((proc.stdout, out), (proc.stderr, err))
    readers = [threading.Thread(target=_lines, args=(s, t), daemon=True) for s, t in streams]
    for reader in readers:
        reader.start()
    try:
        log_file = None
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            if log_file is None:
                found = [re.search(r"output go to (\S+\.log)", line) for line in err]
                log_file = next((Path(m.group(1)) for m in found if m), None)
            if log_file is not None and _in_spark_work(log_file):
                break
            time.sleep(0.2)
        assert proc.poll() is None, f"the run ended before it could be interrupted: {''.join(err)}"
        assert log_file is not None, "".join(err)
        time.sleep(1.0)  # well inside the Spark job now
        os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
        code = proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    for reader in readers:
        reader.join(timeout=10)
    output = "".join(out) + "".join(err)
    assert code == 130, output
    assert "Traceback" not in output and "Py4J" not in output and "py4j" not in output, output
    assert [line for line in "".join(err).splitlines() if "interrupted" in line] == [
        "featurestore materialize: interrupted"
    ], output

    client = control_plane.connect(control_plane.job_settings(redis_url))
    try:
        record = run_records.latest_run(client, VIEW)
        assert record is not None and record.run_id == "interrupted-1", record
        assert record.status == "interrupted" and record.rows_written == 0, record
        statuses = status.collect(client, catalog, 10, int(time.time() * 1000))
    finally:
        client.close()
    mine = next(s for s in statuses if s.view == VIEW)
    assert mine.verdict != status.FAILING and mine.last_failure_run is None, mine
