"""scripts/test's two lanes (tests.helpers.lanes): together they run exactly the suite, and the
15 slowest tests come from both lanes' reports."""

from __future__ import annotations

import tomllib
from pathlib import Path

from tests.helpers.lanes import LANES, ROOT, SLOWEST, closing_line, outcomes, slowest


def test_the_lanes_run_every_tier_once() -> None:
    testpaths = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]["testpaths"]
    in_lanes = [path for lane in LANES for path in lane]
    assert sorted(in_lanes) == sorted(testpaths) and len(set(in_lanes)) == len(in_lanes)


def test_the_slowest_tests_of_both_reports_longest_first(tmp_path: Path) -> None:
    def report(name: str, cases: dict[str, float]) -> Path:
        rows = "".join(
            f'<testcase classname="tests.e2e.test_x" name="{test}" time="{seconds}" />'
            for test, seconds in cases.items()
        )
        path = tmp_path / name
        path.write_text(f'<?xml version="1.0"?><testsuites><testsuite name="pytest">{rows}</testsuite></testsuites>')
        return path

    first = report("a.xml", {f"test_a{i}": float(i) for i in range(10)})
    second = report("b.xml", {f"test_b{i}[p]": i + 0.5 for i in range(10)})
    top = slowest([first, second, tmp_path / "missing.xml"])  # a lane that died before writing its report
    assert len(top) == SLOWEST == 15
    assert top[:3] == [(9.5, "tests/e2e/test_x.py::test_b9[p]"), (9.0, "tests/e2e/test_x.py::test_a9"),
                       (8.5, "tests/e2e/test_x.py::test_b8[p]")]  # fmt: skip
    assert [seconds for seconds, _ in top] == sorted((seconds for seconds, _ in top), reverse=True)


def test_the_closing_line_counts_both_lanes_like_pytest(tmp_path: Path) -> None:
    first, second = tmp_path / "a.xml", tmp_path / "b.xml"
    first.write_text('<testsuites><testsuite tests="10" failures="1" errors="0" skipped="2" /></testsuites>')
    second.write_text('<testsuites><testsuite tests="5" failures="0" errors="1" skipped="0" /></testsuites>')
    counts = outcomes([first, second, tmp_path / "missing.xml"])
    assert counts == {"passed": 11, "failed": 1, "errors": 1, "skipped": 2}
    line = closing_line(counts, missing=1, seconds=481.04)
    assert line == (
        "===== 11 passed, 1 failed, 1 errors, 2 skipped, 1 lane(s) without a report in 481.0s (2 lanes) ====="
    )
    all_passed = closing_line({"passed": 3, "failed": 0, "errors": 0, "skipped": 0}, 0, 2)
    assert all_passed == "===== 3 passed in 2.0s (2 lanes) ====="
