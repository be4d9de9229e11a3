"""The jobs' settings: the one module under ``featurestore.jobs`` that reads the environment.

One :class:`Settings` object is built once — by the command line from its flags, by an
entry point (``materialize_job.py``, the DAG's tasks) with :meth:`Settings.from_env` — and
passed down; domain modules take typed values, never the environment.  Each setting comes
from the first of (flag > environment > file > default):

1. its flag (``--redis-url``), when the command has one and it is given;
2. its environment variable (``$FEATURESTORE_REDIS_URL``; an empty value counts as unset);
3. the repository's settings file, ``featurestore.toml`` in the folder given by ``--repo``,
   else ``$FEATURESTORE_REPO``, else the working directory: flat ``key = value`` lines
   named after the attributes below (``redis_url``, ``warehouse``, ``feature_log`` ...;
   a relative path is relative to the file's folder).  Secrets never come from the file:
   ``acl_password`` and a ``redis_url`` with a password in it are refused;
4. the default.

A bad value raises a :class:`~featurestore.readers.errors.ConfigurationError` naming the
setting and its source (``FEATURESTORE_FEATURE_LOG_RETENTION_DAYS='a week'``, or
``/repo/featurestore.toml: feature_log_retention_days = 'a week'``).  Nothing is read at
import time and nothing heavy is imported (the DAG processor imports this module):
:class:`DagSettings` holds the DAG file's parse-time settings.

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

``FEATURESTORE_FEATURE_LOG``    the feature log's folder, or ``off`` (default ``<warehouse>/_feature_log``)
``FEATURESTORE_CATALOG``        the catalogue module (also read by
                                :func:`featurestore.readers.definitions.load_catalog` for the reader)
"""

from __future__ import annotations

import os
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import CATALOG_ENV_VAR
from featurestore.readers.settings import redact_text

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


SETTINGS_FILE = "featurestore.toml"
REPO_ENV_VAR = "FEATURESTORE_REPO"
FEATURE_LOG_ENV_VAR = "FEATURESTORE_FEATURE_LOG"
RETENTION_ENV_VAR = "FEATURESTORE_FEATURE_LOG_RETENTION_DAYS"


@dataclass(frozen=True)
class _Spec:
    """One setting: its attribute (also its key in the settings file), its variable, its flag."""

    name: str
    env: str
    flag: str | None = None
    number: bool = False
    path: bool = False  # a relative path in the settings file is relative to the file's folder
    in_file: bool = True  # False: a secret, only ever from the environment (or a flag)


SPECS: tuple[_Spec, ...] = (
    _Spec("redis_url", REDIS_URL_ENV_VAR, "--redis-url"),
    _Spec("warehouse", WAREHOUSE_ENV_VAR, "--warehouse", path=True),
    _Spec("expectations_dir", EXPECTATIONS_ENV_VAR, "--expectations", path=True),
    _Spec("feature_log", FEATURE_LOG_ENV_VAR, "--feature-log", path=True),
    _Spec("feature_log_retention_days", RETENTION_ENV_VAR, number=True),
    _Spec("catalog", CATALOG_ENV_VAR, "--catalog"),
    _Spec("kafka_bootstrap", KAFKA_BOOTSTRAP_ENV_VAR, "--bootstrap-servers"),
    _Spec("spark_jars", JARS_ENV_VAR),
    _Spec("spark_master", SPARK_MASTER_ENV_VAR),
    _Spec("driver_memory", DRIVER_MEMORY_ENV_VAR),
    _Spec("metrics_textfile_dir", METRICS_TEXTFILE_DIR_ENV_VAR, "--metrics-textfile", path=True),
    _Spec("pushgateway_url", PUSHGATEWAY_URL_ENV_VAR, "--pushgateway"),
    _Spec("acl_password", ACL_PASSWORD_ENV_VAR, in_file=False),
)
_BY_NAME = {spec.name: spec for spec in SPECS}


@dataclass(frozen=True)
class Settings:
    """The jobs' settings: one object, built once by the command line or an entry point
    (:meth:`load`) and passed down; no other module reads the environment.

    Each value comes from the first of: a flag (``--redis-url``), the environment
    (``$FEATURESTORE_REDIS_URL``), the repository's settings file (``featurestore.toml``,
    key ``redis_url``), the default.  :attr:`sources` says which, per setting.
    """

    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    warehouse: str | None = None
    expectations_dir: str | None = None
    feature_log: str | None = None  # None: <warehouse>/_feature_log; "off": no log
    feature_log_retention_days: int | None = None  # None: the feature log's default
    catalog: str | None = None  # None: the reader library's default catalogue
    kafka_bootstrap: str | None = None  # `featurestore stream` / `consume`: Kafka's bootstrap servers
    spark_jars: str | None = None
    spark_master: str | None = None  # None: local[2], unless spark-submit chose the master
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    metrics_textfile_dir: str | None = None  # the jobs' Prometheus metrics, for node_exporter's textfile collector
    pushgateway_url: str | None = field(default=None, repr=False)  # ... or pushed there
    acl_password: str | None = field(default=None, repr=False)  # featurestore acl --apply; never shown
    under_spark_submit: bool = False
    user: str | None = None  # who runs the job: recorded with a guard override (``--accept-drift``)
    repo: Path | None = None  # the repository folder whose settings file was read, if any
    sources: Mapping[str, str] = field(default_factory=dict, repr=False, compare=False)

    @classmethod
    def load(
        cls,
        flags: Mapping[str, object] | None = None,
        *,
        environ: Mapping[str, str] | None = None,
        repo: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """The settings from ``flags`` (attribute -> value; ``None`` = not given), the environment
        (``os.environ`` by default) and the settings file of the repository ``repo`` (``--repo``),
        else ``$FEATURESTORE_REPO``, else the working directory (where a missing file is no error).

        A bad value raises a :class:`ConfigurationError` naming the setting and where it came from.
        """
        env = os.environ if environ is None else environ
        given = {name: value for name, value in (flags or {}).items() if value is not None and value != ""}
        unknown = sorted(set(given) - set(_BY_NAME))
        if unknown:
            raise ConfigurationError(f"unknown settings {unknown}: known are {sorted(_BY_NAME)}")
        folder, explicit = _repo_folder(repo, env)
        from_file = _read_file(folder / SETTINGS_FILE, required=explicit)
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for spec in SPECS:
            if spec.name in given:
                raw, source = given[spec.name], spec.flag or spec.name
            elif _value(env, spec.env) is not None:
                raw, source = _value(env, spec.env), spec.env
            elif spec.name in from_file:
                raw, source = from_file[spec.name], f"{folder / SETTINGS_FILE}: {spec.name}"
                if spec.path and isinstance(raw, str) and raw and not Path(raw).expanduser().is_absolute():
                    raw = str(folder / raw)
            else:
                continue
            values[spec.name] = _parsed(spec, raw, source)
            sources[spec.name] = source
        return cls(
            **values,
            # spark-submit passes its settings to the Python driver through these two
            under_spark_submit="spark.master" in env.get("PYSPARK_SUBMIT_ARGS", "")
            or bool(env.get("SPARK_ENV_LOADED")),
            user=_value(env, "USER") or _value(env, "LOGNAME"),
            repo=folder if from_file else None,
            sources=sources,
        )

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> Settings:
        """:meth:`load` without flags: for an entry point that has none (the DAG's tasks, spark-submit)."""
        return cls.load(environ=environ)

    def source_of(self, name: str) -> str:
        """Where setting ``name`` came from: its flag, its variable, ``<file>: <key>``, or ``default``."""
        return self.sources.get(name, "default")

    def require_redis_url(self, given: str | None = None) -> str:
        """``given`` (a ``--redis-url``), else the setting (``$FEATURESTORE_REDIS_URL``, the settings
        file's ``redis_url``), else a ConfigurationError."""
        url = given or self.redis_url
        if not url:
            raise ConfigurationError(
                f"no Redis URL: pass --redis-url or set {REDIS_URL_ENV_VAR} (or redis_url in {SETTINGS_FILE})"
            )
        return url


def _repo_folder(repo: str | os.PathLike[str] | None, env: Mapping[str, str]) -> tuple[Path, bool]:
    """The repository folder and whether it was named (``--repo``, ``$FEATURESTORE_REPO``)."""
    chosen = str(repo) if repo else _value(env, REPO_ENV_VAR)
    if chosen:
        return Path(chosen).expanduser().absolute(), True
    return Path.cwd(), False


def _read_file(path: Path, *, required: bool) -> dict[str, Any]:
    """The settings file's keys (none if it does not exist and was not asked for)."""
    if not path.is_file():
        if required:
            raise ConfigurationError(f"no settings file {path} (the repository comes from --repo or {REPO_ENV_VAR})")
        return {}
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigurationError(f"{path}: not a readable TOML file: {exc}") from None
    for key, value in data.items():
        spec = _BY_NAME.get(key)
        if spec is None:
            raise ConfigurationError(f"{path}: unknown setting {key!r} (known: {', '.join(sorted(_BY_NAME))})")
        if not spec.in_file:
            raise ConfigurationError(f"{path}: {key} is a secret: set {spec.env}, never the settings file")
        if key == "redis_url" and isinstance(value, str) and redact_text(value) != value:
            raise ConfigurationError(f"{path}: redis_url holds a password: put the URL in {spec.env} instead")
    return data


def _parsed(spec: _Spec, raw: object, source: str) -> object:
    """One value of ``spec`` from ``source``, checked: a whole number or a non-empty text."""
    if spec.number:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(str(raw)) if isinstance(raw, str) else _bad(spec, raw, source)
        except ValueError:
            return _bad(spec, raw, source)
    if not isinstance(raw, str):
        raise ConfigurationError(f"{_where(source, raw)} is not a text (setting {spec.name})")
    return raw


def _bad(spec: _Spec, raw: object, source: str) -> int:
    raise ConfigurationError(f"{_where(source, raw)} is not a whole number (setting {spec.name})")


def _where(source: str, raw: object) -> str:
    """``$VAR='value'`` style: the source and the value, as the user wrote it."""
    if source.startswith("-"):
        return f"{source} {raw!r}"
    if ": " in source:
        return f"{source} = {raw!r}"
    return f"{source}={raw!r}"


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
