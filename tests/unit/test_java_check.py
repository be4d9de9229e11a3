"""The Java check that scripts/bootstrap and the SparkSession builder run before any JVM starts."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from featurestore.jobs import jvm, spark
from featurestore.readers.errors import ConfigurationError

OPENJDK_17 = """openjdk version "17.0.15" 2025-04-15
OpenJDK Runtime Environment (build 17.0.15+6-Debian-1deb12u1)
OpenJDK 64-Bit Server VM (build 17.0.15+6-Debian-1deb12u1, mixed mode, sharing)
"""
OPENJDK_21 = """openjdk version "21" 2023-09-19
OpenJDK Runtime Environment (build 21+35-2513)
"""
OPENJDK_11 = """Picked up JAVA_TOOL_OPTIONS: -Xmx1g
openjdk version "11.0.21" 2023-10-17
OpenJDK Runtime Environment (build 11.0.21+9-post-Debian-1deb11u1)
"""
ORACLE_8 = """java version "1.8.0_292"
Java(TM) SE Runtime Environment (build 1.8.0_292-b10)
"""


@pytest.mark.parametrize(
    ("output", "major"),
    [(OPENJDK_17, 17), (OPENJDK_21, 21), (OPENJDK_11, 11), (ORACLE_8, 8), ('openjdk version "25-ea" 2025-09-16', 25)],
)
def test_the_major_version_is_read_from_java_version_output(output: str, major: int) -> None:
    assert jvm.parse_java_major(output) == major


def test_output_without_a_version_reads_as_none() -> None:
    assert jvm.parse_java_major("Error: could not create the Java Virtual Machine.") is None


def fake_java_home(tmp_path: Path, output: str) -> dict[str, str]:
    """A JAVA_HOME whose bin/java prints ``output`` on stderr, as ``java -version`` does."""
    java = tmp_path / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text(f"#!/bin/sh\ncat >&2 <<'EOF'\n{output}EOF\n")
    java.chmod(java.stat().st_mode | stat.S_IXUSR)
    return {"JAVA_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"}


def test_java_11_is_refused_in_one_line_naming_both_versions(tmp_path: Path) -> None:
    problem = jvm.java_problem(fake_java_home(tmp_path, OPENJDK_11))
    assert problem is not None and "\n" not in problem
    assert problem.startswith(f"Java 11 found ({tmp_path}/bin/java), Spark needs Java 17 or newer")
    assert "openjdk-17-jre-headless" in problem


@pytest.mark.parametrize("output", [OPENJDK_17, OPENJDK_21])
def test_java_17_and_21_are_fine(tmp_path: Path, output: str) -> None:
    assert jvm.java_problem(fake_java_home(tmp_path, output)) is None


def test_java_home_wins_over_path_as_in_sparks_launcher(tmp_path: Path) -> None:
    env = fake_java_home(tmp_path, OPENJDK_11)
    assert jvm.find_java(env) == f"{tmp_path}/bin/java"
    assert jvm.find_java({"PATH": str(tmp_path / "bin")}) == f"{tmp_path}/bin/java"


def test_no_java_and_a_wrong_java_home_are_one_line_errors(tmp_path: Path) -> None:
    missing = jvm.java_problem({"PATH": str(tmp_path)})
    assert missing is not None and missing.startswith("no Java found") and "Java 17" in missing
    wrong = jvm.java_problem({"JAVA_HOME": str(tmp_path / "nowhere"), "PATH": "/usr/bin"})
    assert wrong is not None and wrong.startswith("JAVA_HOME has no bin/java") and "\n" not in wrong


def test_the_session_builder_refuses_java_11_before_starting_spark(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name, value in fake_java_home(tmp_path, OPENJDK_11).items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("PYSPARK_SUBMIT_ARGS", raising=False)
    monkeypatch.delenv("SPARK_ENV_LOADED", raising=False)
    spark.require_java.cache_clear()
    try:
        with pytest.raises(ConfigurationError, match="Java 11 found .* needs Java 17 or newer"):
            spark.build_session("never-started")
    finally:
        spark.require_java.cache_clear()
