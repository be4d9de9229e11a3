"""The whole suite in two pytest processes side by side ("lanes"), then the 15 slowest tests of both.

``scripts/test`` without arguments runs this (``python -m tests.helpers.lanes``); with arguments (a
tier, a file, ``-k``...) it runs one plain pytest, and ``FEATURESTORE_TEST_LANES=1`` runs the whole
suite in one.  The e2e tier runs in one lane and the other tiers in the other (about equal halves of
the suite's time).  Each lane is an ordinary pytest session: its own session fixtures (one Spark
session, one set of servers, one Kafka broker, on free ports), its own ``--basetemp``; nothing is
shared between them.  The idea: the end-to-end tests spend much of their time waiting on processes
of their own (spark-submit, Kafka drivers, ``dag.test()``'s tasks, pip).  Measured on the 2-core
machine (2026-12-05): quiet (load 0.0 before), the two lanes took 8 min 00 s where one process took
11 min 58 s (load 3.4 -> 2.6); busy (other test runs beside it, load 5-9) 15-18 min.

The lanes' output goes to log files (printed when the lane ends); their JUnit XML reports give the
counts of the closing line (like pytest's: ``N passed, M failed...``) and the durations (setup +
call + teardown) from which the suite's 15 slowest tests are printed.  Arguments go to both pytest
processes.  The exit status is the first non-zero one of the lanes.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import xml.etree.ElementTree as ElementTree
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# about equal halves (one process, low load: e2e ~7 min; unit + integration + spark ~5.5 min)
LANES = (("tests/e2e",), ("tests/unit", "tests/integration", "tests/spark"))
SLOWEST = 15


def slowest(reports: list[Path], count: int = SLOWEST) -> list[tuple[float, str]]:
    """The ``count`` longest tests of the JUnit XML ``reports`` (seconds, node id), longest first."""
    timings = []
    for report in reports:
        if not report.is_file():
            continue
        for case in ElementTree.parse(report).iter("testcase"):
            module = case.get("classname", "").replace(".", "/")
            timings.append((float(case.get("time", 0)), f"{module}.py::{case.get('name')}"))
    return sorted(timings, reverse=True)[:count]


def outcomes(reports: list[Path]) -> dict[str, int]:
    """Tests per outcome (passed, failed, errors, skipped) over the JUnit XML ``reports``."""
    counts = {"passed": 0, "failed": 0, "errors": 0, "skipped": 0}
    for report in reports:
        if not report.is_file():
            continue
        for suite in ElementTree.parse(report).iter("testsuite"):
            failed, errors, skipped = (int(suite.get(key, 0)) for key in ("failures", "errors", "skipped"))
            counts["passed"] += int(suite.get("tests", 0)) - failed - errors - skipped
            counts["failed"] += failed
            counts["errors"] += errors
            counts["skipped"] += skipped
    return counts


def closing_line(counts: dict[str, int], missing: int, seconds: float) -> str:
    """pytest's closing line for the whole suite: ``===== 620 passed, 1 failed in 481.0s =====``."""
    parts = [f"{number} {outcome}" for outcome, number in counts.items() if number or outcome == "passed"]
    if missing:
        parts.append(f"{missing} lane(s) without a report")
    return f"===== {', '.join(parts)} in {seconds:.1f}s ({len(LANES)} lanes) ====="


def main(argv: list[str]) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="featurestore-lanes-"))
    started = time.monotonic()
    lanes = []
    for number, paths in enumerate(LANES, 1):
        log = workdir / f"lane{number}.log"
        command = [
            sys.executable, "-m", "pytest", *paths, "-p", "no:cacheprovider", f"--basetemp={workdir / f'tmp{number}'}",
            f"--junitxml={workdir / f'lane{number}.xml'}", "-o", "junit_duration_report=total",
            "-o", "junit_family=xunit1", *argv,
        ]  # fmt: skip
        print(f"lane {number}: {' '.join(paths)} (output: {log})", flush=True)
        with open(log, "wb") as output:
            lanes.append((number, log, subprocess.Popen(command, cwd=ROOT, stdout=output, stderr=subprocess.STDOUT)))
    codes: dict[int, int] = {}
    try:
        while len(codes) < len(lanes):
            for number, log, process in lanes:
                if number not in codes and process.poll() is not None:
                    codes[number] = process.returncode
                    minutes, seconds = divmod(round(time.monotonic() - started), 60)
                    print(f"\n===== lane {number} ended ({process.returncode}) after {minutes}m{seconds:02d}s =====")
                    print(log.read_text(errors="replace"), flush=True)
            time.sleep(0.5)
    except KeyboardInterrupt:
        for _, _, process in lanes:
            if process.poll() is None:
                process.send_signal(signal.SIGINT)
        for _, _, process in lanes:
            process.wait()
        raise
    for number, _, _ in lanes:  # the lanes' temp dirs (warehouses, checkpoints: large); the logs stay
        shutil.rmtree(workdir / f"tmp{number}", ignore_errors=True)
    print(f"===== the {SLOWEST} slowest tests of the suite (setup + call + teardown) =====")
    for took, node in slowest([workdir / f"lane{number}.xml" for number, _, _ in lanes]):
        print(f"{took:8.2f}s  {node}")
    reports = [workdir / f"lane{number}.xml" for number, _, _ in lanes]
    failed = [code for _, code in sorted(codes.items()) if code != 0]
    print(f"(the lanes' logs: {workdir})")
    missing = sum(not report.is_file() for report in reports)
    print(closing_line(outcomes(reports), missing, time.monotonic() - started), flush=True)
    return failed[0] if failed else 0


if __name__ == "__main__":
    os.chdir(ROOT)
    sys.exit(main(sys.argv[1:]))
