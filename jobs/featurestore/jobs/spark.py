"""Building the SparkSession: the one place that does (helpers get the session passed in).

Entry points (the CLI commands, ``materialize_job.py``, the demo) get a session from
:func:`session` or :func:`build_session` and hand it down; library code never creates one.

**The Delta jars, fetched once.**  ``FEATURESTORE_SPARK_JARS`` (comma-separated local jar
files) wins.  Otherwise the first session resolves ``spark.jars.packages`` with Ivy
(downloads into ``~/.ivy2.5.2`` on first use) and records the resolved files in
``$FEATURESTORE_HOME/spark-jars/<pyspark version>-<package>.txt``; every later session
starts from those files with ``spark.jars`` — no Ivy resolution, no network, no report —
as long as they all still exist.  ``python -m featurestore.jobs.spark --fetch-jars`` (run
by ``scripts/bootstrap``) does the first resolution ahead of time.

**The JVM's output.**  ``build_session(jvm_log=PATH)`` (or :func:`send_jvm_output_to`, which
the CLI calls for the commands that start Spark) launches the JVM with its stdout and stderr
appended to ``PATH``: Ivy's report, log4j, Spark's warnings and the Python workers' output
land there instead of on the terminal.  Without it, and always under ``spark-submit`` (the
JVM is already running), the JVM writes where it always does.

The settings are read through :mod:`featurestore.jobs.core.settings`; this module only *sets* the
defaults Spark's JVM and Python workers need before they start.
"""

from __future__ import annotations

import functools
import logging
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from featurestore.jobs import jvm
from featurestore.jobs.core import interrupts
from featurestore.jobs.core.settings import DEFAULT_SPARK_MASTER, Settings, featurestore_home
from featurestore.jobs.core.settings import JARS_ENV_VAR as JARS_ENV_VAR
from featurestore.readers.errors import ConfigurationError

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

log = logging.getLogger(__name__)

DELTA_PACKAGE = "io.delta:delta-spark_4.1_2.13:4.3.1"  # what delta-spark 4.3.1 asks for on Spark 4.1


class _Output:
    jvm_log: Path | None = None  # where sessions built by this process send the JVM's output
    on_launch: Callable[[Path], None] | None = None


def send_jvm_output_to(path: str | os.PathLike[str] | None, on_launch: Callable[[Path], None] | None = None) -> None:
    """Make every session this process builds send the JVM's stdout/stderr to ``path`` (None: inherit).

    ``on_launch(path)`` is called just before a JVM is launched that way (the CLI shows the path then).
    """
    _Output.jvm_log = Path(path) if path is not None else None
    _Output.on_launch = on_launch if path is not None else None


def prepare_environment() -> None:
    """Settings Spark needs before its JVM starts (loopback, this Python on executors)."""
    os.environ.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)
    os.environ.setdefault("PYSPARK_DRIVER_PYTHON", sys.executable)
    os.environ.setdefault("GX_ANALYTICS_ENABLED", "False")
    os.environ.setdefault("PYARROW_IGNORE_TIMEZONE", "1")


@functools.cache
def require_java() -> None:
    """Refuse, in one line, a Java older than Spark needs, before a JVM starts (once per process)."""
    problem = jvm.java_problem()
    if problem:
        raise ConfigurationError(problem)


# --- the Delta jars ----------------------------------------------------------------------


def jars_manifest(home: Path | None = None) -> Path:
    """Where the resolved jar files of :data:`DELTA_PACKAGE` are recorded (per pyspark version)."""
    import pyspark

    name = f"pyspark-{pyspark.__version__}-{DELTA_PACKAGE.replace(':', '_')}.txt"
    return (home or featurestore_home()) / "spark-jars" / name


def cached_jars(manifest: Path | None = None) -> str | None:
    """The recorded jar files as a ``spark.jars`` value, or None if unrecorded or any is gone."""
    manifest = manifest or jars_manifest()
    try:
        files = [line.strip() for line in manifest.read_text().splitlines() if line.strip()]
    except OSError:
        return None
    if not files or not all(Path(f).is_file() for f in files):
        return None
    return ",".join(files)


def record_jars(spark: SparkSession, manifest: Path | None = None, skip: Sequence[str] = ()) -> Path | None:
    """Record the jar files Ivy resolved for this session (``spark.jars``, less ``skip``) for the next sessions."""
    manifest = manifest or jars_manifest()
    resolved = spark.sparkContext.getConf().get("spark.jars", "") or ""
    files = [entry.removeprefix("file://") for entry in resolved.split(",") if entry]
    files = [f for f in files if f not in skip]
    if not files or not all(Path(f).is_file() for f in files):
        return None
    try:
        manifest.parent.mkdir(parents=True, exist_ok=True)
        manifest.write_text("\n".join(files) + "\n")
    except OSError as exc:  # a read-only home only costs the next session an Ivy resolution
        log.debug("could not record the resolved jars in %s: %s", manifest, exc)
        return None
    return manifest


# --- the session -------------------------------------------------------------------------


def build_session(
    app_name: str = "featurestore",
    master: str | None = None,
    shuffle_partitions: int = 4,
    *,
    jvm_log: str | os.PathLike[str] | None = None,
    extra_jars: Sequence[str | os.PathLike[str]] = (),
    conf: Mapping[str, str] | None = None,
    settings: Settings | None = None,
) -> SparkSession:
    """A SparkSession with Delta Lake enabled.

    ``master`` defaults to ``$SPARK_MASTER`` or ``local[2]``; under ``spark-submit`` the
    submitter's master wins.  ``jvm_log`` (default: :func:`send_jvm_output_to`'s) receives
    the JVM's output when this call starts the JVM.  ``extra_jars`` (local files, e.g. the
    Kafka source's from :mod:`featurestore.jobs.maven`) are added to ``spark.jars``; ``conf``
    sets more options (a job's own, e.g. the streaming job's Python worker timeouts), over the
    settings' ``spark_conf`` (the repository's ``[spark_conf]`` table).
    ``settings``: the run's (the command line passes its own: flags, environment, repository
    file); a library caller without any gets the environment's.
    """
    env = settings if settings is not None else Settings.from_env()
    if not env.under_spark_submit:  # under spark-submit the JVM is already running
        require_java()
    prepare_environment()
    options: dict[str, str] = {
        "spark.app.name": app_name,
        "spark.sql.extensions": "io.delta.sql.DeltaSparkSessionExtension",
        "spark.sql.catalog.spark_catalog": "org.apache.spark.sql.delta.catalog.DeltaCatalog",
        "spark.sql.shuffle.partitions": str(shuffle_partitions),
        "spark.sql.session.timeZone": "UTC",
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.execution.arrow.pyspark.enabled": "true",
        "spark.driver.memory": env.driver_memory,
    }
    if master or env.spark_master or not env.under_spark_submit:
        options["spark.master"] = master or env.spark_master or DEFAULT_SPARK_MASTER
    where = options.get("spark.master", "spark-submit's master")
    # under spark-submit the JVM runs already: its --jars/--packages are what counts
    jars = env.spark_jars or (None if env.under_spark_submit else cached_jars())
    if jars:
        options["spark.jars"] = jars
        log.info("starting Spark (%s) with %d local Delta jars", where, len(jars.split(",")))
    else:
        options["spark.jars.packages"] = DELTA_PACKAGE
        log.info("starting Spark (%s), resolving %s with Ivy", where, DELTA_PACKAGE)
    extra = [str(Path(j).absolute()) for j in extra_jars]
    if extra:
        options["spark.jars"] = ",".join([*filter(None, [options.get("spark.jars")]), *extra])
    options.update(env.spark_conf)  # the repository's [spark_conf] (or $FEATURESTORE_SPARK_CONF)
    options.update(conf or {})
    target = Path(jvm_log) if jvm_log is not None else _Output.jvm_log
    if target is not None and not env.under_spark_submit:
        _launch_jvm(options, target)
    from pyspark.sql import SparkSession

    builder = SparkSession.builder
    for key, value in options.items():
        builder = builder.config(key, value)
    spark = builder.getOrCreate()
    # PySpark's SIGINT handler calls the JVM from inside the handler and turns Ctrl-C into a
    # Py4JError: ours only notes the interrupt and raises KeyboardInterrupt (core/interrupts.py)
    interrupts.take_over_sigint()
    if not jars and not env.under_spark_submit:
        record_jars(spark, skip=extra)
    return spark


def _launch_jvm(options: dict[str, str], log_file: Path) -> None:
    """Start the JVM (unless one runs) with its stdout and stderr appended to ``log_file``.

    pyspark's own ``launch_gateway`` takes the ``Popen`` arguments for exactly this
    ("capturing stdout/stderr"); the SparkContext built on that gateway is the one
    ``SparkSession.builder.getOrCreate()`` then finds.  The file is opened in append mode,
    so the JVM and the Python logging handler can share it.
    """
    from pyspark import SparkConf
    from pyspark.core.context import SparkContext
    from pyspark.java_gateway import launch_gateway

    if SparkContext._gateway is not None or "PYSPARK_GATEWAY_PORT" in os.environ:
        return  # a JVM runs already (started earlier by this process, or spark-submit's): pyspark reuses it
    conf = SparkConf(loadDefaults=False).setAll(list(options.items()))
    log_file.parent.mkdir(parents=True, exist_ok=True)
    log.debug("JVM output goes to %s", log_file)
    if _Output.on_launch is not None:
        _Output.on_launch(log_file)
    with open(log_file, "ab") as output:
        gateway: Any = launch_gateway(conf, popen_kwargs={"stdout": output, "stderr": output})  # type: ignore[no-untyped-call]
    SparkContext(conf=conf, gateway=gateway)


def session(spark: SparkSession | None, app_name: str, settings: Settings | None = None) -> tuple[SparkSession, bool]:
    """The given or already active session (not ours to stop), else a new one (ours: stop it).

    For entry points: ``spark, own = session(None, "featurestore-x")`` ... ``if own: spark.stop()``.
    """
    if spark is not None:
        return spark, False
    from pyspark.sql import SparkSession

    active = SparkSession.getActiveSession()
    if active is not None:  # e.g. called in-process by a notebook or a test
        return active, False
    return build_session(app_name, settings=settings), True


def main(argv: list[str] | None = None) -> int:
    """``python -m featurestore.jobs.spark --fetch-jars``: resolve the Delta jars now."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m featurestore.jobs.spark")
    parser.add_argument(
        "--fetch-jars", action="store_true",
        help="start a session once so Ivy fetches the Delta jars, and record them for the next sessions",
    )  # fmt: skip
    args = parser.parse_args(argv)
    if args.fetch_jars:
        from featurestore.jobs.core import console

        manifest = jars_manifest()
        if cached_jars(manifest):
            console.echo(f"Delta jars already fetched: {manifest}")
            return 0
        log_file = console.new_log_file("fetch-jars")
        console.note(f"resolving {DELTA_PACKAGE} with Ivy (output: {log_file})")
        spark = build_session("featurestore-fetch-jars", master="local[1]", jvm_log=log_file)
        try:
            spark.range(1).count()
        finally:
            spark.stop()
        if not cached_jars(manifest):
            console.echo(f"could not record the Delta jars; see {log_file}", err=True)
            return int(console.ExitCode.FAILED)
        console.echo(f"Delta jars fetched and recorded in {manifest}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())


def run_entry(
    prog: str,
    app_name: str,
    run: Callable[[SparkSession, Settings], int],
    load_settings: Callable[[], Settings] = Settings.from_env,
    check: Callable[[Settings], object] | None = None,
) -> int:
    """The body of a ``spark-submit`` entry file (``materialize_job.py``, ``audit_job.py``):
    load the settings, build the session with them, ``run(spark, settings)``, turn a
    :class:`FeatureStoreError` (a bad setting too) into its exit code with a redacted message,
    and always stop the session.  ``check(settings)`` runs before the session is built: a
    configuration error (a typo, a missing suite) then exits 2 before Spark starts."""
    from featurestore.jobs.core import console
    from featurestore.readers.errors import FeatureStoreError
    from featurestore.readers.settings import redact_text

    try:
        settings = load_settings()
        if check is not None:
            check(settings)
    except FeatureStoreError as exc:
        console.echo(f"{prog}: error: {redact_text(str(exc))}", err=True)
        return console.exit_code_for(exc)
    interrupts.reset()
    try:
        spark = build_session(app_name, settings=settings)
    except KeyboardInterrupt:
        console.echo(f"{prog}: interrupted", err=True)
        return int(console.ExitCode.INTERRUPTED)
    try:
        return run(spark, settings)
    except KeyboardInterrupt:
        console.echo(f"{prog}: interrupted", err=True)
        return int(console.ExitCode.INTERRUPTED)
    except FeatureStoreError as exc:
        if interrupts.interrupted():  # failed as Spark went away after Ctrl-C: the interrupt is the news
            console.echo(f"{prog}: interrupted", err=True)
            return int(console.ExitCode.INTERRUPTED)
        console.echo(f"{prog}: error: {redact_text(str(exc))}", err=True)
        return console.exit_code_for(exc)
    finally:
        try:
            spark.stop()
        except Exception:
            if not interrupts.interrupted():
                raise
