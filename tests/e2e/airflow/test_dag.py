"""The nightly DAG as Airflow sees it: a real DagBag, a real metadata DB, real connections."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from featurestore.jobs.core.run_records import RunRecord, record_run
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.readers import DType, FeatureView
from featurestore.readers.repository import load_catalog
from tests.helpers.airflow import DAG_ID, DAGS_FOLDER, REPO, SPARK_CONN, load_dag, task_states, write_view


def test_the_dagbag_loads_one_task_group_per_batch_view(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dag(monkeypatch)
    batch = [v.name for v in catalog.batch_views]
    assert batch == ["user_transactions", "user_profile", "merchant_risk"]
    expected = [f"{v}.{t}" for v in batch for t in ("materialize", "post_load_check", "audit")] + ["store_status"]
    assert sorted(dag.task_dict) == sorted(expected)
    status = dag.get_task("store_status")
    assert status.upstream_task_ids == {f"{v}.post_load_check" for v in batch}
    assert status.trigger_rule == "all_success"  # a leaf run after a failure would turn the run green
    for view in batch:
        materialize, check = dag.get_task(f"{view}.materialize"), dag.get_task(f"{view}.post_load_check")
        assert materialize.downstream_task_ids == {check.task_id}
        assert check.upstream_task_ids == {materialize.task_id}
        # the audit runs after the post-load check, as a leaf of its own (docs/training-data.md)
        audit = dag.get_task(f"{view}.audit")
        assert check.downstream_task_ids == {audit.task_id, "store_status"} and audit.downstream_task_ids == set()
        assert audit.application.endswith("audit_job.py") and not audit.env_vars
        assert audit.application_args[:5] == ["--view", view, "--ds", "{{ ds }}", "--recompute"]
        assert "--expectations" not in audit.application_args
        assert materialize.task_group.group_id == view
        # the job gets the view and the run's date; the Redis URL is not in its arguments
        args = materialize.application_args
        assert args[:4] == ["--view", view, "--ds", "{{ ds }}"]
        assert materialize._conn_id == "featurestore_spark"
        assert not any("redis" in str(a) for a in args) and not materialize.env_vars
        assert materialize.application.endswith("materialize_job.py")
    # streaming views are written by the streaming hook, not by this DAG
    assert not any(t.startswith("user_realtime") for t in dag.task_dict)


def test_the_dag_is_safe_to_schedule(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dag(monkeypatch)
    assert dag.catchup is False
    assert dag.max_active_runs == 1
    assert dag.dagrun_timeout is not None and dag.dagrun_timeout <= timedelta(hours=12)
    for task in dag.tasks:
        assert task.retries == 2
        assert task.retry_exponential_backoff == 2.0
        assert task.max_retry_delay == timedelta(hours=1)
        assert task.execution_timeout is not None
    assert dag.get_task("user_profile.materialize").execution_timeout == timedelta(hours=2)
    assert dag.get_task("user_profile.post_load_check").execution_timeout == timedelta(minutes=10)
    # ds is the day that closed: the run at 02:00 on day D+1 has logical date D
    from airflow.serialization.encoders import coerce_to_core_timetable

    timetable = coerce_to_core_timetable(dag.timetable)
    interval = timetable.infer_manual_data_interval(run_after=datetime(2025, 6, 15, 2, 0, tzinfo=UTC))
    assert (interval.start, interval.end) == (
        datetime(2025, 6, 14, 2, tzinfo=UTC),
        datetime(2025, 6, 15, 2, tzinfo=UTC),
    )


def test_settings_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    dag = load_dag(
        monkeypatch, catalog="tests.e2e.airflow.one_view_catalog", spark_conn_id="spark_prod", retries="0",
        warehouse="/data/warehouse", materialize_timeout_minutes="30", expectations="/data/suites",
    )  # fmt: skip
    one = load_catalog("tests.e2e.airflow.one_view_catalog")
    assert sorted(dag.task_dict) == [
        f"{one.batch_views[0].name}.audit",
        f"{one.batch_views[0].name}.materialize",
        f"{one.batch_views[0].name}.post_load_check",
        "store_status",
    ]
    assert dag.get_task("orders.audit").application_args == [
        "--view", "orders", "--ds", "{{ ds }}", "--recompute", "--catalog", "tests.e2e.airflow.one_view_catalog",
        "--warehouse", "/data/warehouse",
    ]  # fmt: skip
    materialize = dag.get_task("orders.materialize")
    assert materialize._conn_id == "spark_prod"
    assert materialize.retries == 0 and materialize.execution_timeout == timedelta(minutes=30)
    assert materialize.application_args == [
        "--view", "orders", "--ds", "{{ ds }}", "--catalog", "tests.e2e.airflow.one_view_catalog",
        "--warehouse", "/data/warehouse", "--expectations", "/data/suites",
    ]  # fmt: skip


def _submit_command(task: Any) -> list[str]:
    """The spark-submit command line the task would run (the provider's own hook builds it)."""
    return list(task._get_hook()._build_spark_submit_command(task.application))


def _after(command: list[str], flag: str) -> list[str]:
    return [command[i + 1] for i, arg in enumerate(command[:-1]) if arg == flag]


def test_the_executor_env_comes_from_the_spark_connections_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    """`featurestore executor-env`'s archive, from the Spark connection: resolved when the task runs, not parsed."""
    conf = {"spark.pyspark.python": "./env/bin/python"}
    extra = {"archives": "hdfs:///envs/featurestore-env.tar.gz#env", "conf": conf}
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_SPARK", json.dumps({**json.loads(SPARK_CONN), "extra": extra}))
    monkeypatch.setenv("PYSPARK_DRIVER_PYTHON", "/opt/airflow/venv/bin/python")
    materialize = load_dag(monkeypatch).get_task("user_profile.materialize")
    assert materialize.conf == {"spark.log.level": "WARN"}  # parsing reads no connection

    materialize.apply_executor_environment()  # what execute() does first

    command = _submit_command(materialize)
    assert _after(command, "--archives") == ["hdfs:///envs/featurestore-env.tar.gz#env"]
    conf = _after(command, "--conf")
    assert "spark.pyspark.python=./env/bin/python" in conf and "spark.log.level=WARN" in conf
    # client mode: the driver on the Airflow worker keeps its own interpreter, not ./env of its cwd
    assert "spark.pyspark.driver.python=/opt/airflow/venv/bin/python" in conf
    assert command[-len(materialize.application_args) - 1] == materialize.application


def test_airflow_variables_override_the_connections_executor_env(monkeypatch: pytest.MonkeyPatch) -> None:
    extra = {"archives": "/old/env.tar.gz#env", "conf": {"spark.pyspark.python": "./env/bin/python", "a.b": "1"}}
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_SPARK", json.dumps({**json.loads(SPARK_CONN), "extra": extra}))
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_SPARK_ARCHIVES", "/envs/featurestore-env.tar.gz#env")
    conf = {"spark.pyspark.driver.python": "/usr/bin/python3.11", "spark.executorEnv.TZ": "UTC", "a.b": "2"}
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_SPARK_CONF", json.dumps(conf))
    materialize = load_dag(monkeypatch).get_task("merchant_risk.materialize")
    materialize.apply_executor_environment()

    command = _submit_command(materialize)
    assert _after(command, "--archives") == ["/envs/featurestore-env.tar.gz#env"]
    assert sorted(_after(command, "--conf")) == sorted([
        "spark.log.level=WARN", "spark.pyspark.python=./env/bin/python", "a.b=2",
        "spark.pyspark.driver.python=/usr/bin/python3.11", "spark.executorEnv.TZ=UTC",
    ])  # fmt: skip


def test_without_an_executor_env_the_submission_is_unchanged(monkeypatch: pytest.MonkeyPatch) -> None:
    materialize = load_dag(monkeypatch).get_task("user_profile.materialize")
    materialize.apply_executor_environment()
    command = _submit_command(materialize)
    assert "--archives" not in command and _after(command, "--conf") == ["spark.log.level=WARN"]


def test_a_malformed_spark_conf_variable_fails_the_task_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk.exceptions import AirflowFailException

    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_SPARK_CONF", "spark.pyspark.python=./env/bin/python")
    materialize = load_dag(monkeypatch).get_task("user_profile.materialize")
    with pytest.raises(AirflowFailException, match="featurestore_spark_conf must be a JSON object"):
        materialize.apply_executor_environment()


def test_the_dag_is_importable_from_the_package_and_the_dag_file_only_builds_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from featurestore.jobs.airflow_dag import build_dag
    from featurestore.jobs.core.settings import DagSettings

    dag = build_dag(DagSettings(dag_id="nightly_orders", catalog="tests.e2e.airflow.one_view_catalog"))
    assert dag.dag_id == "nightly_orders"
    assert sorted(dag.task_dict) == ["orders.audit", "orders.materialize", "orders.post_load_check", "store_status"]
    # the DAGs folder's file is the two lines a user copies; Airflow files the DAG under it
    body = ast.parse((DAGS_FOLDER / f"{DAG_ID}.py").read_text()).body
    code = [ast.unparse(node) for node in body if not isinstance(node, ast.Expr)]  # all but the docstring
    assert code == ["from featurestore.jobs.airflow_dag import build_dag", "dag = build_dag()"]
    assert load_dag(monkeypatch).fileloc == str(DAGS_FOLDER / f"{DAG_ID}.py")


def test_a_broken_catalogue_is_an_import_error_naming_the_module(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.dag_processing.dagbag import DagBag

    monkeypatch.setenv("FEATURESTORE_CATALOG", "no_such_catalogue_module")
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    [error] = bag.import_errors.values()
    assert "cannot import catalogue module 'no_such_catalogue_module'" in error


_PARSE = """
import json, socket, sys
connects = []
sys.addaudithook(lambda event, args: connects.append(repr(args)) if event == "socket.connect" else None)
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "great_expectations", "delta"))
print(json.dumps({"errors": bag.import_errors, "dags": sorted(bag.dag_ids), "heavy": heavy, "connects": connects}))
"""


def test_parsing_imports_no_spark_nor_gx_and_touches_no_server() -> None:
    # a fresh interpreter, as the DAG processor would be; the Redis connection points at a
    # live-looking address so any connection attempt at parse time would show up
    # (this checkout's source roots first, as pytest's `pythonpath`, whatever is installed)
    path = os.pathsep.join(str(p) for p in (REPO / "readers", REPO / "jobs", REPO))
    env = {**os.environ, "AIRFLOW_CONN_FEATURESTORE_REDIS": "redis://:pw@127.0.0.1:1/0", "PYTHONPATH": path}
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(DAGS_FOLDER)], capture_output=True, text=True, env=env, timeout=120
    )
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {} and report["dags"] == [DAG_ID]
    assert report["heavy"] == []
    assert report["connects"] == []


def test_checks_pass_on_a_good_load_and_fail_loudly_past_a_threshold_set_as_a_variable(
    airflow_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Loads written beforehand (the Spark tasks are marked done): the checks alone decide the run."""
    ds = "2025-06-14"
    client = redis.Redis.from_url(redis_url)
    written_at = int(time.time() * 1000) - 3_600_000  # an hour ago
    for view in catalog.batch_views:
        ids = range(1, 31) if view.entity.id_dtype == "int64" else [f"m{i:04d}" for i in range(1, 31)]
        write_view(client, catalog, view, {i: sample_values(view) for i in ids}, written_at)
        record_run(client, RunRecord(
            run_id=f"{view.name}-{ds}-test", view=view.name, ds=ds, source_table=view.source or "", source_version=0,
            status="succeeded", rows_read=30, rows_out=30, rows_written=30, entities_written=30,
            started_at=datetime.fromtimestamp(written_at / 1000 - 60, UTC).isoformat(),
        ))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_REDIS", redis_url)
    # a stricter freshness limit for one view only, as an Airflow Variable (set through the environment)
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_CHECK_MAX_AGE_SECONDS", '{"user_profile": 600}')
    monkeypatch.setenv("AIRFLOW_VAR_FEATURESTORE_CHECK_SAMPLE", "20")
    dag = load_dag(monkeypatch, retry_delay_seconds="1")
    before = {key: client.hgetall(key) for key in client.scan_iter(match="fs:*:{*")}

    run = dag.test(logical_date=datetime(2025, 6, 14, 2, tzinfo=UTC), mark_success_pattern=r".*\.materialize")

    states = task_states(run)
    assert str(getattr(run.state, "value", run.state)) == "failed"
    assert states["user_transactions.post_load_check"] == "success"
    assert states["merchant_risk.post_load_check"] == "success"
    assert states["user_profile.post_load_check"] == "failed"
    assert states["store_status"] == "upstream_failed"
    [check] = [ti for ti in run.get_task_instances() if ti.task_id == "user_profile.post_load_check"]
    assert check.try_number == 1  # a failed check is not retried
    assert {key: client.hgetall(key) for key in client.scan_iter(match="fs:*:{*")} == before  # read only


def sample_values(view: FeatureView) -> dict[str, object]:
    """One valid value per feature, derived from the definitions."""
    by_dtype = {"int64": 3, "float64": 1.5, "float32": 0.25, "string": "standard", "bool": True}
    return {f.name: by_dtype[DType(f.dtype).value] for f in view.features}


def test_store_status_fails_loudly_naming_a_stale_or_failing_view(
    airflow_db: str, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The DAG's last task: every view's verdict (``featurestore status``), a failure if any is unhealthy."""
    from airflow.sdk.exceptions import AirflowFailException

    from featurestore.jobs.airflow_dag import store_status

    client = redis.Redis.from_url(redis_url)
    now = time.time()
    for view, age_hours in (("user_profile", 1), ("merchant_risk", 24 * 3)):  # merchant_risk: max_age 2 days
        finished = datetime.fromtimestamp(now - age_hours * 3600, UTC).isoformat()
        record_run(client, RunRecord(
            run_id=f"{view}-r", view=view, ds="2025-06-14", source_table="t", source_version=0, status="succeeded",
            entities_written=30, finished_at=finished,
        ))  # fmt: skip
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_REDIS", redis_url)
    stale = r"view 'merchant_risk' is stale \(\d+[smhd](\d+[smh])? old, max_age 2d\)"  # 42s, 3m25s, 1h12m, 2d3h
    with pytest.raises(AirflowFailException, match=stale):
        store_status.function()
    record_run(client, RunRecord(
        run_id="merchant_risk-new", view="merchant_risk", ds="2025-06-16", source_table="t", source_version=0,
        status="succeeded", finished_at=datetime.fromtimestamp(now, UTC).isoformat(),
    ))  # fmt: skip
    verdicts = {s["view"]: s["verdict"] for s in store_status.function()}
    assert verdicts == {"user_transactions": "never materialized", "user_profile": "fresh", "merchant_risk": "fresh",
                        "user_realtime": "never written"}  # fmt: skip
