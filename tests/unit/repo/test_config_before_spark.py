"""Issue 25 item 3: a mistyped --warehouse is a configuration error found before Spark starts.

Exit 2 (usage/configuration), the error said once, nothing recorded: the check runs before the
run reaches Redis (the URL below has nothing listening: reaching it would exit 5, unreachable).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from featurestore.jobs.core.console import ExitCode

NOWHERE = "redis://127.0.0.1:1"


def materialize(
    tmp_path: Path, warehouse: Path, command: tuple[str, ...] = ("materialize", "--ds", "2024-05-31")
) -> tuple[subprocess.CompletedProcess[str], float]:
    # the session's settings out, but the example catalogue and suites (tests/conftest.py)
    kept = ("FEATURESTORE_CATALOG", "FEATURESTORE_EXPECTATIONS")
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_") or k in kept}
    env["FEATURESTORE_HOME"] = str(tmp_path / "home")
    args = [*command, "--view", "user_profile", "--warehouse", str(warehouse)]
    if command[0] != "backfill":  # backfill writes the feature log only: no Redis
        args += ["--redis-url", NOWHERE]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "featurestore.jobs.cli", *args],
        capture_output=True, text=True, env=env, cwd=tmp_path, timeout=120,
    )  # fmt: skip
    return done, time.monotonic() - started


COMMANDS = {
    "materialize": ("materialize", "--ds", "2024-05-31"),
    "backfill": ("backfill", "--from", "2024-05-01", "--to", "2024-05-31"),
    "audit": ("audit", "--ds", "2024-05-31", "--recompute"),
}


@pytest.mark.parametrize("command", sorted(COMMANDS))
@pytest.mark.parametrize("case", ["missing folder", "missing table"])
def test_a_mistyped_warehouse_exits_2_before_spark_and_says_so_once(tmp_path: Path, case: str, command: str) -> None:
    warehouse = tmp_path / "warehuose"
    if case == "missing table":
        warehouse.mkdir()
    done, seconds = materialize(tmp_path, warehouse, COMMANDS[command])
    assert done.returncode == ExitCode.USAGE, done.stderr
    expected = (
        f"warehouse {warehouse} does not exist"
        if case == "missing folder"
        else f"source table 'users' not found: no Delta table {warehouse / 'users'} in warehouse {warehouse}"
    )
    errors = [line for line in done.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and errors[0].startswith(f"featurestore {command}: error: {expected}"), done.stderr
    assert "Spark" not in done.stderr.replace("featurestore generate", "")  # no log file announced: no JVM
    assert "pyspark" not in done.stderr and seconds < 30
