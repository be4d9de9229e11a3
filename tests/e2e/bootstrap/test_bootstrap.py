"""scripts/bootstrap from the system interpreter into a throwaway venv (issue 9, item 1).

On a stock Debian 12 / Ubuntu 24 the system ``python3`` refuses ``pip install`` (PEP 668), so
bootstrap makes a virtualenv and installs into that.  These tests run the real script with
``PYTHON`` = the system interpreter (``/usr/bin/python3`` where there is one) and
``FEATURESTORE_VENV`` = a temporary folder; ``FEATURESTORE_PIP_ARGS="--no-deps -e ."`` keeps
the install to the project itself (the full ``.[dev]`` install is what CI's own bootstrap did
before this test ran), and ``--no-apt --no-jars --no-feast`` leave the machine, ~/.ivy2 and the
Feast side venv alone.
"""

from __future__ import annotations

import os
import shutil
import stat
import subprocess
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[3]
SYSTEM_PYTHON = "/usr/bin/python3" if Path("/usr/bin/python3").exists() else shutil.which("python3") or "python3"
LEAN = "--no-deps -e ."


def bootstrap(venv: Path, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
    environment = {
        **os.environ,
        "PYTHON": SYSTEM_PYTHON,
        "FEATURESTORE_VENV": str(venv),
        "FEATURESTORE_PIP_ARGS": LEAN,
        **env,
    }
    return subprocess.run(
        ["bash", str(ROOT / "scripts" / "bootstrap"), "--no-apt", "--no-jars", "--no-feast", *args],
        env=environment,
        capture_output=True,
        text=True,
        timeout=600,
    )


@pytest.mark.slow
def test_a_venv_from_the_system_python_then_a_quick_rerun(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    first = bootstrap(venv)
    assert first.returncode == 0, first.stdout + first.stderr
    assert f"create the virtualenv {venv}" in first.stdout
    assert f"install into {venv}: pip install {LEAN}" in first.stdout

    python = venv / "bin" / "python"
    base = subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print(sys.base_prefix)"], capture_output=True, text=True)
    probe = "import sys, featurestore.jobs.jvm as m; print(sys.base_prefix); print(m.__file__)"
    made = subprocess.run([python, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    # made from the system Python; the project installed editable, from this checkout
    assert made == [base.stdout.strip(), str(ROOT / "jobs" / "featurestore" / "jobs" / "jvm.py")]
    assert (venv / "bin" / "featurestore").exists()  # the console script
    assert subprocess.run([python, "-m", "featurestore.jobs.jvm"]).returncode == 0  # this machine's Java is 17+

    started = time.monotonic()
    again = bootstrap(venv)
    took = time.monotonic() - started
    assert again.returncode == 0, again.stdout + again.stderr
    assert again.stdout.splitlines()[-1] == f"bootstrap: up to date ({venv})"
    assert "install into" not in again.stdout
    assert took < 15, f"a re-run took {took:.1f} s"

    # the stamp holds what was installed: other pip arguments mean another install
    changed = bootstrap(venv, "--dry-run", FEATURESTORE_PIP_ARGS="--no-deps .")
    assert changed.returncode == 0, changed.stderr
    assert changed.stdout.splitlines() == [f"bootstrap: would install into {venv}: pip install --no-deps ."]


def test_a_dry_run_says_what_it_would_do_and_does_nothing(tmp_path: Path) -> None:
    venv = tmp_path / "venv"
    done = bootstrap(venv, "--dry-run", FEATURESTORE_PIP_ARGS="-c constraints.txt -e .[dev]")
    assert done.returncode == 0, done.stderr
    lines = [line for line in done.stdout.splitlines() if "(--no-apt)" not in line]
    assert lines == [
        f"bootstrap: would create the virtualenv {venv} ({SYSTEM_PYTHON} -m venv, Python "
        + subprocess.run([SYSTEM_PYTHON, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                         capture_output=True, text=True).stdout.strip() + ")",
        f"bootstrap: would install into {venv}: pip install -c constraints.txt -e .[dev]",
    ]  # fmt: skip
    assert not venv.exists()


def test_java_11_is_refused_in_one_line_before_anything_is_installed(tmp_path: Path) -> None:
    java = tmp_path / "jdk11" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text('#!/bin/sh\necho \'openjdk version "11.0.21" 2023-10-17\' >&2\necho "OpenJDK Runtime" >&2\n')
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    venv = tmp_path / "venv"
    done = bootstrap(venv, JAVA_HOME=str(tmp_path / "jdk11"))
    assert done.returncode == 1
    assert done.stderr.splitlines() == [
        f"bootstrap: error: Java 11 found ({java}), Spark needs Java 17 or newer: "
        "apt-get install openjdk-17-jre-headless, or point JAVA_HOME at a Java 17+"
    ]
    assert not venv.exists()
