"""Which Java Spark will start, and whether it is new enough (Spark 4.1 needs Java 17).

Spark's launcher runs ``$JAVA_HOME/bin/java`` when ``JAVA_HOME`` is set, else ``java`` from
``PATH``; this module asks that same binary for ``-version``.  An older Java would otherwise
get through until the first SparkSession and die there in a long Py4J traceback; here it is
one line naming the version found and the version needed.

Standard library only: ``scripts/bootstrap`` runs this file with the bare system Python
(``python3 jobs/featurestore/jobs/jvm.py``) before anything is installed, and
:func:`featurestore.jobs.spark.build_session` calls :func:`java_problem` before Spark starts.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping

REQUIRED_JAVA = 17
INSTALL_HINT = "apt-get install openjdk-17-jre-headless, or point JAVA_HOME at a Java 17+"

# `openjdk version "17.0.15" 2025-04-15`, `java version "1.8.0_292"`, `openjdk version "21" 2023-09-19`
_VERSION = re.compile(r'version "(\d+)(?:\.(\d+))?[^"]*"')


def parse_java_major(output: str) -> int | None:
    """The major version in ``java -version`` output (``1.8`` is Java 8), or None if there is none.

    Other lines (``Picked up JAVA_TOOL_OPTIONS: ...``, the runtime and VM lines) are skipped.
    """
    found = _VERSION.search(output)
    if found is None:
        return None
    major = int(found.group(1))
    if major == 1 and found.group(2) is not None:  # the old scheme: 1.8.0_292 is Java 8
        major = int(found.group(2))
    return major


def find_java(environ: Mapping[str, str] | None = None) -> str | None:
    """The java binary Spark's launcher would run: ``$JAVA_HOME/bin/java``, else ``java`` on PATH."""
    env = os.environ if environ is None else environ
    java_home = env.get("JAVA_HOME")
    if java_home:
        return os.path.join(java_home, "bin", "java")
    return shutil.which("java", path=env.get("PATH"))


def java_problem(environ: Mapping[str, str] | None = None, required: int = REQUIRED_JAVA) -> str | None:
    """None if Spark's Java is at least ``required``; otherwise a one-line explanation."""
    need = f"Spark needs Java {required} or newer: {INSTALL_HINT}"
    java = find_java(environ)
    if java is None:
        return f"no Java found (no java on PATH, JAVA_HOME not set); {need}"
    if not os.path.isfile(java):
        return f"JAVA_HOME has no bin/java ({java}); {need}"
    try:
        env = None if environ is None else dict(environ)
        done = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=60, env=env)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"cannot run {java} -version ({exc}); {need}"
    major = parse_java_major(done.stderr + done.stdout)  # java -version prints to stderr
    if major is None:
        return f"cannot tell the Java version of {java}; {need}"
    if major < required:
        return f"Java {major} found ({java}), {need}"
    return None


def main() -> int:
    """``python3 jobs/featurestore/jobs/jvm.py``: exit 0 if Spark's Java will do, else say why (one line) and exit 1."""
    problem = java_problem()
    if problem:
        sys.stderr.write(problem + "\n")  # run by scripts/bootstrap with a bare system Python: no console module
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
