"""featurestore_nightly — materialize every batch view of the catalogue, then check the load.

One task group per batch view, generated from the catalogue (``$FEATURESTORE_CATALOG``):

    <view>.materialize      spark-submit featurestore/jobs/materialize_job.py --view <view> --ds {{ ds }}
          |
    <view>.post_load_check  sampled entities present, _ts:<view> fresh, run record counts add up
          |
    <view>.audit            spark-submit featurestore/jobs/audit_job.py: Redis against the feature log
                            (docs/training-data.md); skipped when the log is off

Views are independent: one view failing does not hold back the others, and the run ends
failed if any view fails.  A failed validation writes nothing, so the previous values
keep serving until their TTL; the task fails at once instead of retrying (the data would
fail the same way again).  A failed post-load check fails the run the same way.

This module ships in the wheel (``pip install "redis-feature-store[jobs,airflow]"``); a DAG
file is two lines (``airflow_dags/featurestore_nightly.py`` is that file)::

    from featurestore.jobs.airflow_dag import build_dag

    dag = build_dag()                      # or build_dag(repo="/srv/features/recs")

A feature repository's ``dags/featurestore_dag.py`` (written by ``featurestore init``) calls
``build_dag(repo=<its folder>)``: the DAG's keys (``dag_id``, ``schedule``, ``*_conn_id`` ...)
come from its ``featurestore.toml`` and every task gets ``--repo``.

:func:`build_dag` reads the settings each time it is called, so every parse of the DAG
file sees the DAG processor's current environment.

Settings (docs/airflow.md has the full table):

* parse time, from the environment of the DAG processor and the workers:
  ``FEATURESTORE_CATALOG``, ``FEATURESTORE_SPARK_CONN_ID`` (default ``featurestore_spark``),
  ``FEATURESTORE_REDIS_CONN_ID`` (default ``featurestore_redis``), ``FEATURESTORE_SCHEDULE``,
  ``FEATURESTORE_WAREHOUSE``, ``FEATURESTORE_EXPECTATIONS`` (default: the
  repository's ``expectations_dir``), ``FEATURESTORE_JOB_FILE``, ``FEATURESTORE_RETRIES``,
  ``FEATURESTORE_RETRY_DELAY_SECONDS``, ``FEATURESTORE_MATERIALIZE_TIMEOUT_MINUTES``,
  ``FEATURESTORE_CHECK_TIMEOUT_MINUTES``;
* run time, Airflow Variables (else the same name upper-cased in the environment):
  ``featurestore_check_sample`` and ``featurestore_check_max_age_seconds`` (a number, or
  a JSON object ``{"<view>": seconds}``); the executors' environment (``featurestore
  executor-env``): ``featurestore_spark_archives`` (spark-submit's ``--archives``) and
  ``featurestore_spark_conf`` (a JSON object of Spark properties), else the keys
  ``archives`` and ``conf`` of the Spark connection's extra.

Importing this module or building the DAG imports neither pyspark nor great_expectations
and touches no server: connections and variables are read only when a task runs.
"""

from __future__ import annotations

import json
import logging
import os
import sys
from datetime import UTC, datetime, timedelta
from importlib.util import find_spec
from typing import Any, NamedTuple
from urllib.parse import quote

from airflow.providers.apache.spark.operators.spark_submit import SparkSubmitOperator
from airflow.sdk import DAG, BaseHook, CronDataIntervalTimetable, TaskGroup, Variable, task
from airflow.sdk.exceptions import AirflowException, AirflowFailException

from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR, DagSettings, env_value
from featurestore.jobs.ops.post_load_check import DEFAULT_SAMPLE, check_view, connection_url, latest_run_record
from featurestore.jobs.spark import DELTA_PACKAGE
from featurestore.readers.repository import load_catalog

__all__ = [
    "AuditOperator",
    "ExecutorEnvironment",
    "MaterializeOperator",
    "build_dag",
    "executor_environment",
    "post_load_check",
    "store_status",
]

log = logging.getLogger(__name__)


def default_job_file(module: str = "featurestore.jobs.materialize_job") -> str:
    """The installed ``featurestore/jobs/materialize_job.py`` (or another job's file): spark-submit's application."""
    # find_spec locates the file without importing it (the job imports pyspark).
    spec = find_spec(module)
    if spec is None or spec.origin is None:
        return module.rsplit(".", 1)[-1] + ".py"  # the operator then fails with spark-submit's "file not found"
    return os.path.realpath(spec.origin)


# --- run time: connections and variables are resolved here, never at parse time -----


def redis_url(conn_id: str) -> str:
    """The Redis URL of an Airflow connection, registered with the log masker first."""
    from airflow.sdk.log import mask_secret

    conn = BaseHook.get_connection(conn_id)
    url = connection_url(
        host=conn.host, port=conn.port, login=conn.login, password=conn.password,
        schema=conn.schema, extra=conn.extra_dejson, conn_type=conn.conn_type,
    )  # fmt: skip
    if conn.password:
        # Airflow masks the raw password; the URL holds it percent-encoded too.
        mask_secret(quote(conn.password, safe=""))
    return url


def _variable(name: str, default: str | None) -> str | None:
    value = Variable.get(name, default=None)
    return value if value not in (None, "") else (env_value(name.upper()) or default)


def _for_view(raw: str | None, view: str, what: str) -> int | None:
    """A threshold given as one number, or as a JSON object with one number per view."""
    if raw is None:
        return None
    try:
        value = json.loads(raw)
        if isinstance(value, dict):
            value = value.get(view)
        return None if value is None else int(value)
    except (TypeError, ValueError):
        raise AirflowFailException(
            f"{what}={raw!r} is neither a number nor a JSON object of numbers by view name"
        ) from None


ARCHIVES_VARIABLE = "featurestore_spark_archives"
CONF_VARIABLE = "featurestore_spark_conf"


def _spark_conf(raw: Any, where: str) -> dict[str, str]:
    """Spark properties given as a JSON object (a Variable's text, or an object in a connection's extra)."""
    if raw in (None, ""):
        return {}
    try:
        value = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        value = None
    if not isinstance(value, dict):
        raise AirflowFailException(f"{where} must be a JSON object of Spark properties, got {str(raw)[:200]!r}")
    return {str(key): str(item) for key, item in value.items()}


class ExecutorEnvironment(NamedTuple):
    """What ships the executors' Python environment with a submission."""

    archives: str | None  # spark-submit --archives, e.g. "hdfs:///envs/featurestore-env.tar.gz#env"
    conf: dict[str, str]  # extra Spark properties, e.g. {"spark.pyspark.python": "./env/bin/python"}
    deploy_mode: str | None  # the Spark connection's "deploy-mode"


def executor_environment(spark_conn_id: str) -> ExecutorEnvironment:
    """The ``--archives`` and extra Spark properties that ship the executors' environment.

    Each from its Airflow Variable (else the upper-cased environment variable), else from the
    Spark connection's extra (``archives``, ``conf``); the Variable's properties override the
    connection's one by one.  Read when the task runs, never when the DAG is parsed.
    """
    try:
        extra = BaseHook.get_connection(spark_conn_id).extra_dejson
    except Exception as exc:  # no such connection: spark-submit's own fallback applies, and says so
        log.info("Spark connection %r not readable (%s): no executor environment from its extra", spark_conn_id, exc)
        extra = {}
    archives = _variable(ARCHIVES_VARIABLE, None) or extra.get("archives") or None
    conf = {
        **_spark_conf(extra.get("conf"), f"the extra 'conf' of the Spark connection {spark_conn_id!r}"),
        **_spark_conf(_variable(CONF_VARIABLE, None), f"the Variable {CONF_VARIABLE}"),
    }
    return ExecutorEnvironment(archives, conf, extra.get("deploy-mode"))


class MaterializeOperator(SparkSubmitOperator):
    """spark-submit of the materialize job, with the Redis URL passed through the environment.

    The URL (password included) is built from the Redis connection when the task runs,
    so it never appears in the command line, the DAG's serialized form or the rendered
    template fields.  A run that the job recorded as a failed validation fails the task
    without retrying.  The executors' environment (:func:`executor_environment`) is added
    when the task runs too.
    """

    def __init__(self, *, view: str, redis_conn_id: str, repo: str | None = None, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.view = view
        self.redis_conn_id = redis_conn_id
        self.repo = repo  # the feature repository (its settings file), as the job gets it with --repo

    def apply_executor_environment(self) -> None:
        """Add the ``--archives`` and Spark properties of :func:`executor_environment` to this submission.

        With ``spark.pyspark.python`` set (``./env/bin/python`` of the archive) and no
        ``spark.pyspark.driver.python``, a client-mode driver would look for ``./env`` in the
        worker's working directory: it keeps ``$PYSPARK_DRIVER_PYTHON``, else this worker's
        interpreter (which has the package installed, since it runs this DAG).
        """
        found = executor_environment(self._conn_id)
        # SparkSubmitOperator keeps its --archives in `_archives` and builds its hook from it in execute()
        self._archives = self._archives or found.archives
        merged = {**(self.conf or {}), **found.conf}
        client_mode = (self._deploy_mode or found.deploy_mode) != "cluster"
        if client_mode and "spark.pyspark.python" in merged and "spark.pyspark.driver.python" not in merged:
            merged["spark.pyspark.driver.python"] = env_value("PYSPARK_DRIVER_PYTHON") or sys.executable
        self.conf = merged

    def execute(self, context: Any) -> None:
        self.apply_executor_environment()
        url = redis_url(self.redis_conn_id)
        self.env_vars = {**(self.env_vars or {}), REDIS_URL_ENV_VAR: url}
        try:
            super().execute(context)
        except AirflowException as exc:
            refusal = _validation_failure(url, self.view, context["ds"])
            if refusal:
                status, reason = refusal
                what = "a guard refused the data" if status == "refused_by_guard" else "validation failed"
                raise AirflowFailException(
                    f"view {self.view!r}: {what} for ds {context['ds']}, nothing was written and the "
                    f"previous values keep serving until their TTL: {reason}"
                ) from exc
            raise


class AuditOperator(MaterializeOperator):
    """``spark-submit`` of ``audit_job.py`` for one view and ``{{ ds }}`` (a failing audit is not retried).

    The Redis URL and the executors' environment are added when the task runs, as for
    :class:`MaterializeOperator`.  With the feature log off (``FEATURESTORE_FEATURE_LOG=off``
    in the worker's environment) there is nothing to compare: the task ends without
    starting Spark.
    """

    def execute(self, context: Any) -> None:
        from featurestore.jobs.core.feature_log import LogSettings
        from featurestore.jobs.core.settings import Settings

        # the worker's environment and repository file, as the job will see them
        settings = Settings.load(repo=self.repo)
        if not LogSettings.from_settings(settings.warehouse or ".", settings).enabled:
            log.info("view %r: the feature log is off, nothing to audit", self.view)
            return
        self.apply_executor_environment()
        self.env_vars = {**(self.env_vars or {}), REDIS_URL_ENV_VAR: redis_url(self.redis_conn_id)}
        try:
            SparkSubmitOperator.execute(self, context)
        except AirflowException as exc:
            raise AirflowFailException(
                f"view {self.view!r}: the audit of ds {context['ds']} failed: Redis does not serve what the "
                "feature log says (the task log has the mismatch rate per feature and examples)"
            ) from exc


def _validation_failure(url: str, view: str, ds: str) -> tuple[str, str] | None:
    """(status, what failed) when the newest run of ``view`` for ``ds`` was refused before writing
    (``failed_validation`` or ``refused_by_guard``: not worth a retry); None otherwise."""
    try:
        record = latest_run_record(url, view, ds)
    except Exception as exc:  # the job's own failure is the story; this lookup only refines it
        log.warning("could not read the run record of view %r: %s", view, exc)
        return None
    if record is None or record.status not in ("failed_validation", "refused_by_guard"):
        return None
    return record.status, "; ".join(record.failures) or record.error or f"run {record.run_id}"


@task
def post_load_check(
    view: str, catalog: str | None = None, redis_conn_id: str = "featurestore_redis", ds: str | None = None
) -> dict[str, Any]:
    """Fail loudly unless the view's fresh values are in Redis as the run record says."""
    assert ds is not None  # filled in from the run's context
    sample = int(_variable("featurestore_check_sample", str(DEFAULT_SAMPLE)) or DEFAULT_SAMPLE)
    max_age = _for_view(_variable("featurestore_check_max_age_seconds", None), view, "max age")
    report = check_view(
        redis_url(redis_conn_id), view, ds, catalog=catalog, sample_size=sample, max_age_seconds=max_age
    )
    for line in report.summary().splitlines():
        (log.info if report.ok else log.error)(line)
    if not report.ok:
        raise AirflowFailException(report.summary())
    return report.to_dict()


@task  # after every check passed (a leaf that ran after a failure would turn the DAG run green)
def store_status(catalog: str | None = None, redis_conn_id: str = "featurestore_redis") -> list[dict[str, Any]]:
    """Every view's verdict (``featurestore status``); fail loudly if any is stale or failing.

    Its metrics go where ``$FEATURESTORE_METRICS_TEXTFILE_DIR`` / ``$FEATURESTORE_PUSHGATEWAY_URL``
    say, so the dashboard's freshness panel is fed every night.
    """
    import time

    from featurestore.jobs.core.control_plane import connect
    from featurestore.jobs.core.job_metrics import MetricsTarget, publish_quietly
    from featurestore.jobs.ops.status import UNHEALTHY, collect, format_table, status_samples

    sample = int(_variable("featurestore_check_sample", str(DEFAULT_SAMPLE)) or DEFAULT_SAMPLE)
    client = connect(redis_url(redis_conn_id))
    try:
        statuses = collect(client, load_catalog(catalog), sample, int(time.time() * 1000))
    finally:
        client.close()
    for line in format_table(statuses).splitlines():
        log.info(line)
    publish_quietly(status_samples(statuses), MetricsTarget.from_env(), "status", {"source": "status"})
    unhealthy = [s for s in statuses if s.verdict in UNHEALTHY]
    if unhealthy:
        raise AirflowFailException("; ".join(s.headline() for s in unhealthy))
    return [s.to_dict() for s in statuses]


def application_args(view: str, settings: DagSettings, audit: bool = False) -> list[str]:
    """The job's arguments: the view, the run's date, and the settings given (never the Redis URL);
    ``audit=True``: those of the audit job (no suites, it recomputes with the recorded versions)."""
    args = ["--view", view, "--ds", "{{ ds }}"] + (["--recompute"] if audit else [])
    for flag, value in (
        ("--repo", settings.repo),
        ("--catalog", settings.catalog),
        ("--warehouse", settings.warehouse),
        ("--expectations", None if audit else settings.expectations_dir),
    ):
        if value:
            args += [flag, value]
    return args


def build_dag(settings: DagSettings | None = None, *, repo: str | os.PathLike[str] | None = None) -> DAG:
    """The nightly DAG for ``settings`` (default: ``DagSettings.load(repo=repo)``, read now: the
    environment over the feature repository's settings file, found by ``repo``, else
    ``$FEATURESTORE_REPO``, else the working directory).  With a repository, every task gets
    ``--repo`` so the jobs read the same settings file."""
    settings = settings or DagSettings.load(repo=repo)
    catalog = load_catalog(settings.catalog)
    job_file = settings.job_file or default_job_file()
    retries = settings.retries
    materialize_timeout = timedelta(minutes=settings.materialize_timeout_minutes)
    check_timeout = timedelta(minutes=settings.check_timeout_minutes)
    jars = settings.spark_jars
    with DAG(
        dag_id=settings.dag_id,
        description="Materialize every batch feature view into Redis, then check each load",
        schedule=CronDataIntervalTimetable(settings.schedule, timezone="UTC"),
        start_date=datetime(2024, 1, 1, tzinfo=UTC),
        catchup=False,  # a missed night is not worth replaying: the next run computes fresher values
        max_active_runs=1,  # two runs of one view would race on the same keys
        dagrun_timeout=(materialize_timeout + check_timeout) * (retries + 1),
        default_args={
            "owner": "featurestore",
            "retries": retries,
            "retry_delay": timedelta(seconds=settings.retry_delay_seconds),
            "retry_exponential_backoff": 2.0,
            "max_retry_delay": timedelta(hours=1),
        },
        tags=["featurestore"],
        doc_md=__doc__,
    ) as dag:
        checks = []
        for view in catalog.batch_views:
            with TaskGroup(group_id=view.name, tooltip=view.description or view.name):
                materialize = MaterializeOperator(
                    task_id="materialize",
                    view=view.name,
                    redis_conn_id=settings.redis_conn_id,
                    repo=settings.repo,
                    conn_id=settings.spark_conn_id,
                    application=job_file,
                    application_args=application_args(view.name, settings),
                    name=f"featurestore-{view.name}",
                    conf={"spark.log.level": settings.spark_log_level},
                    packages=None if jars else DELTA_PACKAGE,
                    jars=jars,
                    execution_timeout=materialize_timeout,
                )
                check = post_load_check.override(execution_timeout=check_timeout)(
                    view.name, catalog=settings.catalog, redis_conn_id=settings.redis_conn_id
                )
                audit = AuditOperator(
                    task_id="audit",
                    view=view.name,
                    redis_conn_id=settings.redis_conn_id,
                    repo=settings.repo,
                    conn_id=settings.spark_conn_id,
                    application=default_job_file("featurestore.jobs.audit_job"),
                    application_args=application_args(view.name, settings, audit=True),
                    name=f"featurestore-audit-{view.name}",
                    conf={"spark.log.level": settings.spark_log_level},
                    packages=None if jars else DELTA_PACKAGE,
                    jars=jars,
                    execution_timeout=check_timeout * 3,
                )
                materialize >> check >> audit  # a leaf: a failing audit fails the run, not the others' checks
                checks.append(check)
        status = store_status.override(execution_timeout=check_timeout)
        checks >> status(catalog=settings.catalog, redis_conn_id=settings.redis_conn_id)
    return dag
