"""The jobs' settings: the one module under ``featurestore.jobs`` that reads the environment.

One :class:`Settings` object is built once — by the command line from its flags, by an
entry point (``materialize_job.py``, the DAG's tasks) with :meth:`Settings.from_env` — and
passed down; domain modules take typed values, never the environment.  Each setting comes
from the first of (flag > environment > file > default):

1. its flag (``--redis-url``), when the command has one and it is given;
2. its environment variable (``$FEATURESTORE_REDIS_URL``; an empty value counts as unset);
3. the repository's settings file, ``featurestore.toml`` in the folder given by ``--repo``,
   else ``$FEATURESTORE_REPO``, else the working directory (found and read by
   :mod:`featurestore.readers.repository`): flat ``key = value`` lines named after the
   attributes below (``redis_url``, ``warehouse``, ``feature_log`` ...; a relative path is
   relative to the file's folder) and the ``[spark_conf]`` table; the DAG's keys are read
   by :meth:`DagSettings.load`.  Secrets never come from the file: ``acl_password``,
   ``redis_password`` and a ``redis_url`` with a password in it are refused;
4. the default; in a repository, its folders (``expectations/``, ``.featurestore/warehouse``,
   ``.featurestore/checkpoints``) and its definitions (docs/feature-repository.md).

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
``FEATURESTORE_EXPECTATIONS``   folder of the GX suites (default: the repository's ``expectations/``)
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
``FEATURESTORE_CATALOG``        the catalogue: a module, a ``.py`` file or a repository folder (also
                                read by :func:`featurestore.readers.repository.load_catalog`)
``FEATURESTORE_CHECKPOINTS``    ``featurestore stream``'s checkpoints folder
``FEATURESTORE_SPARK_CONF``     Spark properties of the sessions the jobs build (a JSON object)
``FEATURESTORE_REDIS_PASSWORD`` joined into the Redis URL (never in the settings file)
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import (
    CATALOG_ENV_VAR,
    NAME_PATTERN,
    SETTINGS_FILE,
    find_repository,
    read_settings_file,
    repository_name,
)

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


FEATURE_LOG_ENV_VAR = "FEATURESTORE_FEATURE_LOG"
RETENTION_ENV_VAR = "FEATURESTORE_FEATURE_LOG_RETENTION_DAYS"
CHECKPOINTS_ENV_VAR = "FEATURESTORE_CHECKPOINTS"
SPARK_CONF_ENV_VAR = "FEATURESTORE_SPARK_CONF"
REDIS_PASSWORD_ENV_VAR = "FEATURESTORE_REDIS_PASSWORD"
# In a repository, what a setting defaults to (relative to its folder); outside one, the commands' defaults.
REPOSITORY_DEFAULTS = {
    "expectations_dir": "expectations",
    "warehouse": ".featurestore/warehouse",
    "checkpoints": ".featurestore/checkpoints",
}


@dataclass(frozen=True)
class _Spec:
    """One setting: its attribute (also its key in the settings file), its variable, its flag."""

    name: str
    env: str | None  # None: the settings file only
    flag: str | None = None
    number: bool = False
    path: bool = False  # a relative path in the settings file is relative to the file's folder
    in_file: bool = True  # False: a secret, only ever from the environment (or a flag)
    table: bool = False  # a TOML table of text values (in the environment: a JSON object)


SPECS: tuple[_Spec, ...] = (
    _Spec("name", None),
    _Spec("redis_url", REDIS_URL_ENV_VAR, "--redis-url"),
    _Spec("redis_password", REDIS_PASSWORD_ENV_VAR, in_file=False),
    _Spec("warehouse", WAREHOUSE_ENV_VAR, "--warehouse", path=True),
    _Spec("expectations_dir", EXPECTATIONS_ENV_VAR, "--expectations", path=True),
    _Spec("feature_log", FEATURE_LOG_ENV_VAR, "--feature-log", path=True),
    _Spec("feature_log_retention_days", RETENTION_ENV_VAR, number=True),
    _Spec("catalog", CATALOG_ENV_VAR, "--catalog", path=True),
    _Spec("checkpoints", CHECKPOINTS_ENV_VAR, "--checkpoint", path=True),
    _Spec("kafka_bootstrap", KAFKA_BOOTSTRAP_ENV_VAR, "--bootstrap-servers"),
    _Spec("spark_jars", JARS_ENV_VAR),
    _Spec("spark_master", SPARK_MASTER_ENV_VAR),
    _Spec("driver_memory", DRIVER_MEMORY_ENV_VAR),
    _Spec("spark_conf", SPARK_CONF_ENV_VAR, table=True),
    _Spec("metrics_textfile_dir", METRICS_TEXTFILE_DIR_ENV_VAR, "--metrics-textfile", path=True),
    _Spec("pushgateway_url", PUSHGATEWAY_URL_ENV_VAR, "--pushgateway"),
    _Spec("acl_password", ACL_PASSWORD_ENV_VAR, in_file=False),
)
_BY_NAME = {spec.name: spec for spec in SPECS}
# keys of the settings file read by DagSettings.load (the DAG factory), not by Settings
DAG_KEYS = (
    "dag_id",
    "schedule",
    "spark_conn_id",
    "redis_conn_id",
    "job_file",
    "retries",
    "retry_delay_seconds",
    "materialize_timeout_minutes",
    "check_timeout_minutes",
    "spark_log_level",
)
FILE_KEYS = frozenset(_BY_NAME) | frozenset(DAG_KEYS)


@dataclass(frozen=True)
class Settings:
    """The jobs' settings: one object, built once by the command line or an entry point
    (:meth:`load`) and passed down; no other module reads the environment.

    Each value comes from the first of: a flag (``--redis-url``), the environment
    (``$FEATURESTORE_REDIS_URL``), the repository's settings file (``featurestore.toml``,
    key ``redis_url``), the default.  :attr:`sources` says which, per setting.
    """

    redis_url: str | None = field(default=None, repr=False)  # may hold a password
    name: str | None = None  # the repository's name (its settings file's `name`, else its folder's)
    redis_password: str | None = field(default=None, repr=False)  # merged into redis_url; never shown
    warehouse: str | None = None
    expectations_dir: str | None = None
    feature_log: str | None = None  # None: <warehouse>/_feature_log; "off": no log
    feature_log_retention_days: int | None = None  # None: the feature log's default
    catalog: str | None = None  # None: the reader library's default; in a repository: the repository
    checkpoints: str | None = None  # `featurestore stream`: the folder of the queries' checkpoints
    kafka_bootstrap: str | None = None  # `featurestore stream` / `consume`: Kafka's bootstrap servers
    spark_jars: str | None = None
    spark_master: str | None = None  # None: local[2], unless spark-submit chose the master
    driver_memory: str = DEFAULT_DRIVER_MEMORY
    spark_conf: Mapping[str, str] = field(default_factory=dict)  # extra Spark properties of the sessions built
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
        folder = find_repository(repo, env)
        from_file = read_settings_file(folder, FILE_KEYS) if folder is not None else {}
        values: dict[str, Any] = {}
        sources: dict[str, str] = {}
        for spec in SPECS:
            if spec.name in given:
                raw, source = given[spec.name], spec.flag or spec.name
            elif spec.env is not None and _value(env, spec.env) is not None:
                raw, source = _value(env, spec.env), spec.env
            elif folder is not None and spec.name in from_file:
                raw, source = from_file[spec.name], f"{folder / SETTINGS_FILE}: {spec.name}"
                if spec.path and isinstance(raw, str) and raw:
                    raw = _in_folder(folder, raw, module_allowed=spec.name == "catalog")
            elif folder is not None and spec.name in REPOSITORY_DEFAULTS:
                raw, source = str(folder / REPOSITORY_DEFAULTS[spec.name]), f"default ({folder.name}/)"
            elif folder is not None and spec.name in ("catalog", "name"):
                # the repository itself: load_catalog reads its `catalog` key (default definitions.py)
                raw = str(folder) if spec.name == "catalog" else _folder_name(folder)
                source = f"default ({folder.name}/)"
            else:
                continue
            values[spec.name] = _parsed(spec, raw, source)
            sources[spec.name] = source
        password = values.pop("redis_password", None)
        if password and values.get("redis_url") and sources.get("redis_url") != REDIS_URL_ENV_VAR:
            values["redis_url"] = with_password(values["redis_url"], password)
        return cls(
            **values,
            redis_password=password,
            # spark-submit passes its settings to the Python driver through these two
            under_spark_submit="spark.master" in env.get("PYSPARK_SUBMIT_ARGS", "")
            or bool(env.get("SPARK_ENV_LOADED")),
            user=_value(env, "USER") or _value(env, "LOGNAME"),
            repo=folder,
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


def _in_folder(folder: Path, raw: str, *, module_allowed: bool = False) -> str:
    """A path of the settings file, relative to its folder (a dotted module name stays as it is)."""
    if module_allowed and not raw.endswith(".py") and "/" not in raw and os.sep not in raw:
        return raw
    path = Path(raw).expanduser()
    return str(path if path.is_absolute() else folder / path)


def _folder_name(folder: Path) -> str:
    return repository_name(folder, {})


def with_password(url: str, password: str) -> str:
    """``url`` with ``password`` in it (``$FEATURESTORE_REDIS_PASSWORD``), unless it holds one already."""
    parts = urlsplit(url)
    if parts.password is not None or not parts.hostname:
        return url
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit(parts._replace(netloc=f"{user}:{quote(password, safe='')}@{host}"))


def _parsed(spec: _Spec, raw: object, source: str) -> object:
    """One value of ``spec`` from ``source``, checked: a whole number, a table or a non-empty text."""
    if spec.number:
        if isinstance(raw, int) and not isinstance(raw, bool):
            return raw
        try:
            return int(str(raw)) if isinstance(raw, str) else _bad(spec, raw, source)
        except ValueError:
            return _bad(spec, raw, source)
    if spec.table:
        return _table(spec, raw, source)
    if not isinstance(raw, str):
        raise ConfigurationError(f"{_where(source, raw)} is not a text{_setting(spec, source)}")
    if spec.name == "name" and not NAME_PATTERN.match(raw):
        raise ConfigurationError(
            f"{_where(source, raw)} is not a valid name (a lowercase letter, then up to 40 lowercase letters, "
            "digits or '_')"
        )
    return raw


def _table(spec: _Spec, raw: object, source: str) -> dict[str, str]:
    """A table of text values: a TOML table in the file, a JSON object in the environment."""
    given = raw
    if isinstance(raw, str):
        try:
            raw = json.loads(raw)
        except ValueError as exc:
            raise ConfigurationError(f"{_where(source, given)} is not a JSON object: {exc}") from None
    if not isinstance(raw, Mapping):
        raise ConfigurationError(f"{_where(source, given)} is not a table of text values{_setting(spec, source)}")
    table: dict[str, str] = {}
    for key, value in raw.items():
        if isinstance(value, bool):
            value = "true" if value else "false"
        if not isinstance(value, str | int | float):
            raise ConfigurationError(f"{source}: {key!r} = {value!r} is not a text value{_setting(spec, source)}")
        table[str(key)] = str(value)
    return table


def _setting(spec: _Spec, source: str) -> str:
    """`` (setting x)`` unless the source names the key already (``<file>: x``)."""
    return "" if source.endswith(f": {spec.name}") else f" (setting {spec.name})"


def _bad(spec: _Spec, raw: object, source: str) -> int:
    raise ConfigurationError(f"{_where(source, raw)} is not a whole number{_setting(spec, source)}")


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
    catalog: str | None = None  # None: the repository's (featurestore.readers.load_catalog)
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

    repo: str | None = None  # the feature repository: passed to every task as --repo

    @classmethod
    def load(cls, repo: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> DagSettings:
        """The DAG's settings: the environment (``FEATURESTORE_<NAME>``) over the repository's settings
        file (``repo``, else ``$FEATURESTORE_REPO``, else the working directory; its ``dag_id``,
        ``schedule``, ``*_conn_id`` ... keys) over the defaults.  Light: no heavy import."""
        env = os.environ if environ is None else environ
        folder = find_repository(repo, env)
        if folder is None:
            return cls.from_env(env)
        data = read_settings_file(folder, FILE_KEYS)
        settings_file = folder / SETTINGS_FILE
        merged = dict(env)
        for key in DAG_KEYS:
            if key in data and not _value(env, ENV_PREFIX + key.upper()):
                value = data[key]
                number = isinstance(getattr(cls(), key), int)
                if number and (isinstance(value, bool) or not isinstance(value, int)):
                    raise ConfigurationError(f"{settings_file}: {key} = {value!r} is not a whole number")
                if not number and not isinstance(value, str):
                    raise ConfigurationError(f"{settings_file}: {key} = {value!r} is not a text")
                merged[ENV_PREFIX + key.upper()] = str(value)
        # what the tasks need at parse time; the tasks themselves read the file again through --repo
        for key, variable in (("warehouse", WAREHOUSE_ENV_VAR), ("expectations_dir", EXPECTATIONS_ENV_VAR)):
            if not _value(env, variable):
                raw = data.get(key, REPOSITORY_DEFAULTS.get(key))
                if isinstance(raw, str):
                    merged[variable] = _in_folder(folder, raw)
        if not _value(env, CATALOG_ENV_VAR):
            raw = data.get("catalog")
            merged[CATALOG_ENV_VAR] = (
                _in_folder(folder, raw, module_allowed=True) if isinstance(raw, str) else str(folder)
            )
        if not _value(merged, ENV_PREFIX + "DAG_ID"):
            merged[ENV_PREFIX + "DAG_ID"] = f"featurestore_{repository_name(folder, data)}"
        return replace(cls.from_env(merged), repo=str(folder))

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
