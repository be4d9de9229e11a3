"""A repository's own DAG file (written by `featurestore init`) parses in a real DagBag, lightly.

build_dag(repo=<the repository>): the DAG's id and schedule come from its featurestore.toml, every
task gets --repo, and parsing imports neither Spark nor GX (a fresh interpreter, as the DAG processor).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from featurestore.jobs.repo.init_command import init_repository
from tests.helpers.airflow import REPO

_PARSE = """
import json, sys
from airflow.dag_processing.dagbag import DagBag
bag = DagBag(dag_folder=sys.argv[1])
heavy = sorted(m for m in sys.modules if m.split(".")[0] in ("pyspark", "py4j", "great_expectations", "delta"))
dag = bag.dags.get("featurestore_nightly_team")
tasks = {t.task_id: list(getattr(t, "application_args", []) or []) for t in dag.tasks} if dag else {}
schedule = str(getattr(dag.timetable, "expression", "")) if dag else ""
print(json.dumps({"errors": bag.import_errors, "dags": sorted(bag.dag_ids), "heavy": heavy, "tasks": tasks,
                  "schedule": schedule}))
"""


def test_the_repository_dag_parses_with_its_settings_and_passes_repo(tmp_path: Path) -> None:
    made = init_repository(tmp_path / "team", name="team")
    settings_file = made.folder / "featurestore.toml"
    settings_file.write_text('dag_id = "featurestore_nightly_team"\n' + settings_file.read_text())
    path = os.pathsep.join(str(p) for p in (REPO / "readers", REPO / "jobs", REPO))
    env = {k: v for k, v in os.environ.items() if not k.startswith("FEATURESTORE_")}
    env["PYTHONPATH"] = path
    result = subprocess.run(
        [sys.executable, "-c", _PARSE, str(made.folder / "dags")],
        capture_output=True, text=True, env=env, timeout=180, cwd=tmp_path,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr[-3000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["errors"] == {} and report["dags"] == ["featurestore_nightly_team"]
    assert report["heavy"] == []
    assert report["schedule"] == "0 2 * * *"
    materialize = report["tasks"]["customer_orders_30d.materialize"]
    assert materialize[materialize.index("--repo") + 1] == str(made.folder)
    assert "customer_activity.materialize" not in report["tasks"]  # streaming views are not materialized
