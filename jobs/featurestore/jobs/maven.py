"""JVM jars from Maven Central, resolved once with the Ivy jar that pyspark ships.

Two pinned sets, each resolved with its dependencies into a folder of its own under
``$FEATURESTORE_HOME/jars/<set>/`` and recorded in ``<set>/manifest.txt``:

* ``spark-kafka`` — ``org.apache.spark:spark-sql-kafka-0-10_2.13:4.1.1``, Spark's Kafka
  source and sink (kafka-clients 3.9.1, commons-pool2 ...), less the jars Spark itself
  ships; the streaming job's session adds them to ``spark.jars``;
* ``kafka-broker`` — ``org.apache.kafka:kafka_2.13:4.1.1``, the broker that
  ``featurestore kafka start`` runs in KRaft mode, with a log4j binding for its log.

Ivy runs with settings of its own (Maven Central only, a cache under
``$FEATURESTORE_HOME/jars/ivy-cache``): nothing in ``~/.m2`` or ``~/.ivy2*`` can shadow a jar
with a lone POM (docs/streaming.md).  No ``mvn`` needed: Java and pyspark are enough.
``python -m featurestore.jobs.maven --fetch`` (run by ``scripts/bootstrap``) resolves both
sets ahead of time; afterwards nothing here touches the network.
"""

from __future__ import annotations

import argparse
import logging
import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

from featurestore.jobs.core.settings import env_value, featurestore_home
from featurestore.readers.errors import ConfigurationError, FeatureStoreError

log = logging.getLogger(__name__)

MAVEN_CENTRAL = "https://repo1.maven.org/maven2/"
MAVEN_REPO_ENV_VAR = "FEATURESTORE_MAVEN_REPO"  # a mirror of Maven Central, if any
SPARK_KAFKA = "spark-kafka"
KAFKA_BROKER = "kafka-broker"
# set -> the modules resolved (with their runtime dependencies) into it; pinned
JAR_SETS: dict[str, tuple[tuple[str, str, str], ...]] = {
    SPARK_KAFKA: (("org.apache.spark", "spark-sql-kafka-0-10_2.13", "4.1.1"),),
    KAFKA_BROKER: (
        ("org.apache.kafka", "kafka_2.13", "4.1.1"),
        ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.24.3"),  # the broker's slf4j 1.x -> log4j 2
    ),
}
_MANIFEST = "manifest.txt"
_SETTINGS = """<ivysettings>
  <settings defaultResolver="central"/>
  <resolvers>
    <ibiblio name="central" m2compatible="true" root="{root}"/>
  </resolvers>
</ivysettings>
"""


class JarResolutionError(FeatureStoreError):
    """The jars could not be resolved from Maven Central."""


def jars_dir(name: str, home: Path | None = None) -> Path:
    """``$FEATURESTORE_HOME/jars/<name>``: where a set's jar files go."""
    if name not in JAR_SETS:
        raise ConfigurationError(f"unknown jar set {name!r}: one of {', '.join(JAR_SETS)}")
    return (home or featurestore_home()) / "jars" / name


def _manifest_key(name: str) -> str:
    return " ".join(":".join(module) for module in JAR_SETS[name])


def cached(name: str, home: Path | None = None) -> list[Path] | None:
    """The recorded jar files of a set, or None if unresolved, changed or any file is gone."""
    manifest = jars_dir(name, home) / _MANIFEST
    try:
        lines = [line.strip() for line in manifest.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    if not lines or lines[0] != f"# {_manifest_key(name)}":
        return None
    files = [Path(line) for line in lines[1:]]
    return files if files and all(f.is_file() for f in files) else None


def ivy_jar() -> Path:
    """The Ivy jar pyspark ships (``pyspark/jars/ivy-*.jar``)."""
    try:
        import pyspark
    except ImportError:
        raise ConfigurationError(
            'resolving JVM jars needs pyspark (its Ivy jar): pip install "redis-feature-store[jobs]"'
        ) from None
    found = sorted((Path(pyspark.__file__).parent / "jars").glob("ivy-*.jar"))
    if not found:
        raise JarResolutionError(f"no ivy-*.jar in {Path(pyspark.__file__).parent / 'jars'}")
    return found[-1]


def _spark_jar_names() -> set[str]:
    """File names of the jars Spark ships (those need not be added twice)."""
    try:
        import pyspark
    except ImportError:
        return set()
    return {p.name for p in (Path(pyspark.__file__).parent / "jars").glob("*.jar")}


def resolve(name: str, home: Path | None = None, java: str = "java") -> list[Path]:
    """The jar files of a set: recorded ones, else resolved now with Ivy (network) and recorded."""
    files = cached(name, home)
    if files is not None:
        return files
    folder = jars_dir(name, home)
    retrieved = folder / "lib"
    folder.mkdir(parents=True, exist_ok=True)
    settings = folder.parent / "ivysettings.xml"
    settings.write_text(_SETTINGS.format(root=env_value(MAVEN_REPO_ENV_VAR) or MAVEN_CENTRAL))
    cache = folder.parent / "ivy-cache"
    log_file = folder / "ivy.log"
    java_home = env_value("JAVA_HOME")
    java_bin = os.path.join(java_home, "bin", "java") if java_home else java
    with open(log_file, "w") as output:
        for org, module, version in JAR_SETS[name]:
            log.info("resolving %s:%s:%s with Ivy (log: %s)", org, module, version, log_file)
            command = [
                java_bin, "-jar", str(ivy_jar()), "-settings", str(settings), "-cache", str(cache),
                "-dependency", org, module, version, "-confs", "default",
                "-retrieve", f"{retrieved}/[organisation]_[artifact]-[revision](-[classifier]).[ext]",
            ]  # fmt: skip
            try:
                done = subprocess.run(command, stdout=output, stderr=subprocess.STDOUT, timeout=900)
            except (OSError, subprocess.TimeoutExpired) as exc:
                raise JarResolutionError(f"could not run Ivy for {org}:{module}:{version}: {exc}") from None
            if done.returncode != 0:
                raise JarResolutionError(
                    f"Ivy could not resolve {org}:{module}:{version} from Maven Central (see {log_file})"
                )
    skip = _spark_jar_names() if name == SPARK_KAFKA else set()
    files = sorted(p.absolute() for p in retrieved.glob("*.jar") if p.name.partition("_")[2] not in skip)
    if not files:
        raise JarResolutionError(f"Ivy retrieved no jar for {name} (see {log_file})")
    (folder / _MANIFEST).write_text("\n".join([f"# {_manifest_key(name)}", *map(str, files)]) + "\n")
    return files


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m featurestore.jobs.maven --fetch [SET ...]``: resolve the jar sets now."""
    parser = argparse.ArgumentParser(prog="python -m featurestore.jobs.maven", description=__doc__.splitlines()[0])
    parser.add_argument("--fetch", nargs="*", metavar="SET", help=f"sets to fetch (default all: {', '.join(JAR_SETS)})")
    args = parser.parse_args(argv)
    if args.fetch is None:
        parser.print_usage(sys.stderr)
        return 2
    from featurestore.jobs.core import console

    console.configure_logging(verbose=1)
    for name in args.fetch or list(JAR_SETS):
        try:
            files = resolve(name)
        except FeatureStoreError as exc:
            console.echo(f"{name}: {exc}", err=True)
            return 1
        console.echo(f"{name}: {len(files)} jars in {jars_dir(name)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
