"""The jobs' settings from the environment: the one module under ``featurestore.jobs`` that reads it.

Every other module asks :meth:`JobEnvironment.from_env` (the jobs, the CLI, the Spark
session builder) or :meth:`DagSettings.from_env` (the Airflow DAG file).  Both read the
mapping they are given — ``os.environ`` by default, a plain dict in a test — when they are
called, never at import time, and import nothing heavy (the DAG processor imports this
module).  An empty value counts as unset.

==============================  ==========================================================
``FEATURESTORE_REDIS_URL``      target Redis of ``materialize``, ``runs``, ``check``,
                                ``stream`` when ``--redis-url`` is not given
``FEATURESTORE_KAFKA_BOOTSTRAP`` Kafka's bootstrap servers of ``stream`` and ``consume`` when
                                ``--bootstrap-servers`` is not given
``FEATURESTORE_WAREHOUSE``      folder of the Delta tables (default ``.featurestore/warehouse``)
``FEATURESTORE_EXPECTATIONS``   folder of the GX suites (default: the example suites in the package)
``FEATURESTORE_SPARK_JARS``     local Delta jars (comma-separated) instead of ``spark.jars.packages``
``FEATURESTORE_DRIVER_MEMORY``  ``spark.driver.memory`` of sessions the jobs build (default ``2g``)
``FEATURESTORE_HOME``           per-user state of the CLI: ``redis/`` (the server of ``featurestore
                                redis start``), ``logs/`` (Spark/JVM output of each command),
                                ``spark-jars/`` (the resolved Delta jars); default
                                ``$XDG_CACHE_HOME/featurestore`` or ``~/.cache/featurestore``
``FEATURESTORE_ACL_PASSWORD``   the new user's password for ``featurestore acl --apply``
``SPARK_MASTER``                master of sessions the jobs build (default ``local[2]``, or
                                ``spark-submit``'s own when running under it)
``USER`` / ``LOGNAME``          who runs ``materialize``: recorded with a guard override when
                                ``--by`` is not given
==============================  ==========================================================

``FEATURESTORE_CATALOG`` is read by :func:`featurestore.readers.definitions.load_catalog`
(the reader library resolves its own default); the jobs pass ``--catalog`` through.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

from featurestore.readers.definitions import CATALOG_ENV_VAR
from featurestore.readers.errors import ConfigurationError

ENV_PREFIX = "FEATURESTORE_"
REDIS_URL_ENV_VAR = "FEATURESTORE_REDIS_URL"
WAREHOUSE_ENV_VAR = "FEATURESTORE_WAREHOUSE"
KAFKA_BOOTSTRAP_ENV_VAR = "FEATURESTORE_KAFKA_BOOTSTRAP"
EXPECTATIONS_ENV_VAR = "FEATURESTORE_EXPECTATIONS"
JARS_ENV_VAR = "FEATURESTORE_SPARK_JARS"
DRIVER_MEMORY_ENV_VAR = "FEATURESTORE_DRIVER_MEMORY"
HOME_ENV_VAR = "FEATURESTORE_HOME"
ACL_PASSWORD_ENV_VAR = "FEATURESTORE_ACL_PASSWORD"
METRICS_TEXTFILE_DIR_ENV_VAR = "FEATURESTORE_METRICS_TEXTFILE_DIR"
PUSHGATEWAY_URL_ENV_VAR = "FEATURESTORE_PUSHGATEWAY_URL"
SPARK_MASTER_ENV_VAR = "SPARK_MASTER"
DEFAULT_DRIVER_MEMORY = "2g"
DEFAULT_SPARK_MASTER = "local[2]"


def _value(environ: Mapping[str, str], name: str) -> str | None:
    return environ.get(name) or None


def _whole_number(environ: Mapping[str, str], name: str, default: int) -> int:
    value = _value(environ, name)
    try:
        return default if value is None else int(value)
    except ValueError:
        raise ConfigurationError(f"{name}={value!r} is not a whole number") from None


def env_value(name: str, environ: Mapping[str, str] | None = None) -> str | None:
    """One variable by its full name (``None`` when unset or empty): for settings with a computed name."""
    return _value(os.environ if environ is None else environ, name)


def featurestore_home(environ: Mapping[str, str] | None = None) -> Path:
    """The per-user state folder (absolute, whatever the working directory): ``$FEATURESTORE_HOME``,
    else ``$XDG_CACHE_HOME/featurestore``, else ``~/.cache/featurestore``.  Not created here."""
    env = os.environ if environ is None else environ
    explicit = _value(env, HOME_ENV_VAR)
    if explicit:
        return Path(explicit).expanduser().absolute()
    cache = _value(env, "XDG_CACHE_HOME")
    base = Path(cache).expanduser() if cache else Path(_value(env, "HOME") or Path.home()) / ".cache"
    return (base / "featurestore").absolute()


@dataclass(frozen=True)
class JobEnvironment:
    """What the batch jobs and the Spark session builder take from the environment."""

    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    warehouse: str | None = None
    expectations_dir: str | None = None
    spark_jars: str | None = None
    spark_master: str | None = None  # None: local[2], unless spark-submit chose the master
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    under_spark_submit: bool = False
    acl_password: str | None = field(default=None, repr=False)  # featurestore acl --apply; never shown
    metrics_textfile_dir: str | None = None  # the jobs' Prometheus metrics, for node_exporter's textfile collector
    pushgateway_url: str | None = field(default=None, repr=False)  # ... or pushed there
    user: str | None = None  # who runs the job: recorded with a guard override (``--accept-drift``)
    kafka_bootstrap: str | None = None  # `featurestore stream` / `consume`: Kafka's bootstrap servers

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> JobEnvironment:
        env = os.environ if environ is None else environ
        return cls(
            redis_url=_value(env, REDIS_URL_ENV_VAR),
            warehouse=_value(env, WAREHOUSE_ENV_VAR),
            expectations_dir=_value(env, EXPECTATIONS_ENV_VAR),
            spark_jars=_value(env, JARS_ENV_VAR),
            spark_master=_value(env, SPARK_MASTER_ENV_VAR),
            driver_memory=_value(env, DRIVER_MEMORY_ENV_VAR) or DEFAULT_DRIVER_MEMORY,
            # spark-submit passes its settings to the Python driver through these two
            under_spark_submit="spark.master" in env.get("PYSPARK_SUBMIT_ARGS", "")
            or bool(env.get("SPARK_ENV_LOADED")),
            acl_password=_value(env, ACL_PASSWORD_ENV_VAR),
            metrics_textfile_dir=_value(env, METRICS_TEXTFILE_DIR_ENV_VAR),
            pushgateway_url=_value(env, PUSHGATEWAY_URL_ENV_VAR),
            user=_value(env, "USER") or _value(env, "LOGNAME"),
            kafka_bootstrap=_value(env, KAFKA_BOOTSTRAP_ENV_VAR),
        )

    def require_redis_url(self, given: str | None = None) -> str:
        """``given`` (a ``--redis-url``), else ``$FEATURESTORE_REDIS_URL``, else a ConfigurationError."""
        url = given or self.redis_url
        if not url:
            raise ConfigurationError(f"no Redis URL: pass --redis-url or set {REDIS_URL_ENV_VAR}")
        return url


def redis_url(given: str | None = None, environ: Mapping[str, str] | None = None) -> str:
    """Shorthand of ``JobEnvironment.from_env(environ).require_redis_url(given)``."""
    return JobEnvironment.from_env(environ).require_redis_url(given)


@dataclass(frozen=True)
class DagSettings:
    """Parse-time settings of the nightly Airflow DAG (``FEATURESTORE_<NAME>``; docs/airflow.md)."""

    dag_id: str = "featurestore_nightly"
    catalog: str | None = None  # None: the reader library's default catalogue
    spark_conn_id: str = "featurestore_spark"
    redis_conn_id: str = "featurestore_redis"
    # 02:00 UTC over a daily data interval: the run for ds=D starts once day D is complete.
    schedule: str = "0 2 * * *"
    job_file: str | None = None  # None: the installed featurestore/jobs/materialize_job.py
    warehouse: str | None = None
    expectations_dir: str | None = None
    retries: int = 2
    retry_delay_seconds: int = 300
    materialize_timeout_minutes: int = 120
    check_timeout_minutes: int = 10
    # Spark's INFO output is thousands of lines per run: too much for a task log.
    spark_log_level: str = "WARN"
    spark_jars: str | None = None

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> DagSettings:
        env = os.environ if environ is None else environ
        default = cls()

        def text(name: str, fallback: str) -> str:
            return _value(env, ENV_PREFIX + name) or fallback

        def number(name: str, fallback: int) -> int:
            return _whole_number(env, ENV_PREFIX + name, fallback)

        return cls(
            dag_id=text("DAG_ID", default.dag_id),
            catalog=_value(env, CATALOG_ENV_VAR),
            spark_conn_id=text("SPARK_CONN_ID", default.spark_conn_id),
            redis_conn_id=text("REDIS_CONN_ID", default.redis_conn_id),
            schedule=text("SCHEDULE", default.schedule),
            job_file=_value(env, ENV_PREFIX + "JOB_FILE"),
            warehouse=_value(env, WAREHOUSE_ENV_VAR),
            expectations_dir=_value(env, EXPECTATIONS_ENV_VAR),
            retries=number("RETRIES", default.retries),
            retry_delay_seconds=number("RETRY_DELAY_SECONDS", default.retry_delay_seconds),
            materialize_timeout_minutes=number("MATERIALIZE_TIMEOUT_MINUTES", default.materialize_timeout_minutes),
            check_timeout_minutes=number("CHECK_TIMEOUT_MINUTES", default.check_timeout_minutes),
            spark_log_level=text("SPARK_LOG_LEVEL", default.spark_log_level),
            spark_jars=_value(env, JARS_ENV_VAR),
        )
