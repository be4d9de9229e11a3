"""A repository's own DAG file (written by `featurestore init`) parses in a real DagBag, and the
recommendations example's DAG runs with ``dag.test()``.

build_dag(repo=<the repository>): the DAG's id and schedule come from its featurestore.toml, every
task gets --repo, and parsing imports neither Spark nor GX (a fresh interpreter, as the DAG processor).
The tests' fraud catalogue and suites (FEATURESTORE_CATALOG / FEATURESTORE_EXPECTATIONS, set by
tests/conftest.py) are taken out: the environment outranks a repository's settings file.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.jobs.repo.init_command import init_repository
from tests.helpers.airflow import REPO, task_states

_PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "great_expectations", "delta"))
dag = bag.dags.get(sys.argv[2])
tasks = {t.task_id: list(getattr(t, "application_args", []) or []) for t in dag.tasks} if dag else {}
schedule = str(getattr(dag.timetable, "expression", "")) if dag else ""
print(json.dumps({"errors": bag.import_errors, "dags": sorted(bag.dag_ids), "heavy": heavy, "tasks": tasks,
                  "schedule": schedule}))
"""
_TESTS_ONLY = ("FEATURESTORE_CATALOG", "FEATURESTORE_EXPECTATIONS")


@pytest.mark.parametrize(
    ("example", "dag_id", "batch_views", "streaming_views"),
    [
        (None, "featurestore_nightly_team", ("customer_orders_30d",), ("customer_activity",)),
        (
            "recommendations",
            "featurestore_recommendations",
            ("item_stats", "user_item_affinity"),
            ("item_popularity", "user_recent"),
        ),
    ],
    ids=["skeleton", "recommendations"],
)
def test_the_repository_dag_parses_with_its_settings_and_passes_repo(
    tmp_path: Path, example: str | None, dag_id: str, batch_views: tuple[str, ...], streaming_views: tuple[str, ...]
) -> None:
    made = init_repository(tmp_path / "team", example=example, name="team")
    settings_file = made.folder / "featurestore.toml"
    if example is None:  # the skeleton names no dag_id: the default is featurestore_nightly
        settings_file.write_text(f'dag_id = "{dag_id}"\n' + settings_file.read_text())
    path = os.pathsep.join(str(p) for p in (REPO / "readers", REPO / "jobs", REPO))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = path
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(made.folder / "dags"), dag_id],
        capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {} and report["dags"] == [dag_id]
    assert report["heavy"] == []
    assert report["schedule"] == "0 2 * * *"
    assert sorted(report["tasks"]) == sorted(
        [f"{v}.{t}" for v in batch_views for t in ("materialize", "post_load_check", "audit")] + ["store_status"]
    )  # streaming views are not materialized
    for view in batch_views:
        materialize = report["tasks"][f"{view}.materialize"]
        assert materialize[materialize.index("--repo") + 1] == str(made.folder)
        # the repository's paths, resolved against its folder
        assert materialize[materialize.index("--warehouse") + 1] == str(made.folder / ".featurestore" / "warehouse")
        assert materialize[materialize.index("--expectations") + 1] == str(made.folder / "expectations")
    assert not any(task.startswith(streaming_views) for task in report["tasks"])


@pytest.mark.slow
def test_the_recommendations_dag_test_loads_a_view_through_spark_submit(
    airflow_db: str, redis_url: str, spark: Any, ds: date, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``dag.test()`` of the DAG file of a copy of the recommendations example, with its own warehouse
    (its ``generate`` hook) and settings: item_stats (two sources, string ids) through spark-submit, the
    suite, the post-load check, the audit (a no-op with the tests' feature log off) and store_status;
    user_item_affinity's tasks are marked done (every view's spark-submit is the same command with other
    arguments; it materializes in tests/e2e/examples)."""
    from airflow.dag_processing.dagbag import DagBag

    from featurestore.jobs.core.run_records import latest_run
    from featurestore.jobs.dev.sample_data import sample_module
    from featurestore.readers import FeatureReader, FeatureStatus
    from featurestore.readers.repository import load_catalog

    repo = init_repository(tmp_path / "recs", example="recommendations").folder
    module = sample_module(None, repo)
    generated = module.generate(spark, repo / ".featurestore" / "warehouse", end_date=ds, days=8, scale=0.1, seed=5)
    for name in _TESTS_ONLY:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AIRFLOW_CONN_FEATURESTORE_REDIS", redis_url)
    monkeypatch.setenv("FEATURESTORE_RETRY_DELAY_SECONDS", "1")
    # dag.test() runs a DAG that a configured bundle holds (it serializes it from there): the repository's
    # dags/ folder is the bundle, as a deployment would configure it
    bundle = {"name": "recommendations", "classpath": "airflow.dag_processing.bundles.local.LocalDagBundle",
              "kwargs": {"path": str(repo / "dags")}}  # fmt: skip
    monkeypatch.setenv("AIRFLOW__DAG_PROCESSOR__DAG_BUNDLE_CONFIG_LIST", json.dumps([bundle]))
    bag = DagBag(dag_folder=str(repo / "dags"))
    assert bag.import_errors == {}, bag.import_errors
    dag = bag.dags["featurestore_recommendations"]  # the dag_id of the repository's featurestore.toml
    started = time.time()

    run = dag.test(logical_date=datetime(ds.year, ds.month, ds.day, 2, tzinfo=UTC),
                   mark_success_pattern=r"user_item_affinity\..*")  # fmt: skip

    states = task_states(run)
    assert str(getattr(run.state, "value", run.state)) == "success", states
    assert set(states.values()) == {"success"} and len(states) == 7  # 2 x (materialize, check, audit), status
    client = redis.Redis.from_url(redis_url)
    record = latest_run(client, "item_stats", ds=ds.isoformat())
    assert record is not None and record.status == "succeeded", record
    assert record.entities_written > 0 and record.rows_failed == 0
    assert latest_run(client, "user_item_affinity", ds=ds.isoformat()) is None  # marked done, not run
    items = [module.item_id(i) for i in range(1, generated.rows["items"] + 1)]
    with FeatureReader.connect(redis_url, catalog=load_catalog(repo)) as reader:  # checks the registry
        assert reader.registry_status["item_stats"] == "ok"
        batch = reader.get_many(items, "item_stats")
        loaded = [v for v in batch if v.age("item_stats") is not None]
        assert len(loaded) == record.entities_written  # what the run says it wrote, fresh
        assert all(v.age("item_stats") < time.time() - started + 5 for v in loaded)
        assert all(v.status("item_category") is FeatureStatus.PRESENT and v["item_category"] for v in loaded)
