"""The declared dependency ranges, the reader's and ``[jobs]``', are the tested ones (issue 9, item 3).

The main run tests the top of each range (constraints.txt pins it); scripts/test-lowest, run
by .ci/run, installs the bottom (tests.helpers.dependency_bounds: derived from pyproject here, no
copy to drift) and runs the reader's tests and a set of jobs tests.
"""

from __future__ import annotations

import ast
import sys

from packaging.utils import canonicalize_name
from packaging.version import Version

from tests.helpers.dependency_bounds import (
    JOBS_TESTS,
    LOWEST_TESTS,
    READER_TESTS,
    ROOT,
    exact_version,
    jobs_requirements,
    lowest_pin,
    lowest_requirements,
    lowest_version,
    pins,
    runtime_requirements,
)


def test_every_runtime_dependency_has_a_tested_lowest_and_a_ceiling() -> None:
    for requirement in runtime_requirements():
        operators = {spec.operator for spec in requirement.specifier}
        assert {">=", "<"} <= operators, f"{requirement}: declare the lowest tested version and a ceiling"


def test_the_main_run_pins_a_version_inside_each_range() -> None:
    """constraints.txt is what scripts/bootstrap installs: the highest version the suite runs on."""
    pinned = pins()
    for requirement in runtime_requirements():
        version = pinned[canonicalize_name(requirement.name)]
        assert requirement.specifier.contains(version), f"constraints.txt pins {requirement.name}=={version}"
        assert Version(version) > Version(lowest_version(requirement))  # two ends, two runs


def test_the_side_environment_installs_each_lower_bound() -> None:
    wanted = lowest_requirements()
    for requirement in runtime_requirements():
        assert f"{requirement.name}=={lowest_version(requirement)}" in wanted
    assert any(line.startswith("pytest==") for line in wanted)
    script = (ROOT / "scripts" / "test-lowest").read_text()
    assert "tests.helpers.dependency_bounds" in script and "LOWEST_TESTS" in script
    assert "scripts/test-lowest" in (ROOT / ".ci" / "run").read_text()


def test_every_jobs_dependency_is_pinned_or_has_a_tested_lowest() -> None:
    for requirement in jobs_requirements():
        if exact_version(requirement) is None:
            lowest_version(requirement)  # raises without a `>=`


def test_the_main_run_pins_the_top_of_each_jobs_range() -> None:
    pinned = pins()
    for requirement in jobs_requirements():
        if exact_version(requirement) is not None:
            continue
        version = pinned.get(canonicalize_name(requirement.name))
        assert version, f"constraints.txt pins no {requirement.name}: the main run would test whatever resolves"
        assert requirement.specifier.contains(version), f"constraints.txt pins {requirement.name}=={version}"
        assert Version(version) > Version(lowest_version(requirement))


def test_the_side_environment_installs_jobs_at_its_floors_and_pins() -> None:
    wanted = lowest_requirements()
    for requirement in jobs_requirements():
        assert lowest_pin(requirement) in wanted  # the extras too: pyspark[sql]'s own floors must agree
    assert "pandas==" + lowest_version(next(r for r in jobs_requirements() if r.name == "pandas")) in wanted
    names = [canonicalize_name(line.split("[")[0].split("==")[0]) for line in wanted]
    assert len(names) == len(set(names)), f"one version per distribution: {wanted}"  # numpy: the floor, not the tool


def test_the_lowest_run_covers_the_reader_and_the_jobs_and_every_test_exists() -> None:
    assert LOWEST_TESTS == READER_TESTS + JOBS_TESTS
    for test in LOWEST_TESTS:
        path = ROOT / test.split("::")[0]
        assert path.exists(), test
        if "::" in test:
            name = test.split("::")[1].split("[")[0]
            assert f"def {name}(" in path.read_text(), test


def test_the_reader_imports_exactly_its_declared_dependencies() -> None:
    """Nothing is a runtime dependency that the reader does not import, and it imports nothing undeclared."""
    imported = set()
    for path in (ROOT / "readers").rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Import):
                imported |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                imported.add(node.module.split(".")[0])
    third_party = {name for name in imported if name not in sys.stdlib_module_names and name != "featurestore"}
    # imported only when asked, saying so if missing: numpy by FeatureBatch.to_numpy(), prometheus_client
    # by ReaderMetrics (the [metrics] extra)
    optional = {"numpy", "prometheus_client"}
    assert third_party - optional == {canonicalize_name(r.name) for r in runtime_requirements()}
