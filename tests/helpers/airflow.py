"""Helpers of the Airflow and post-load-check tests (tests/e2e/airflow/conftest.py holds the Airflow
fixtures and environment)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.readers import Catalog, FeatureView, codec

REPO = Path(__file__).resolve().parents[2]
DAGS_FOLDER = REPO / "airflow_dags"
DAG_ID = "featurestore_nightly"
SPARK_CONN = '{"conn_type": "spark", "host": "local[2]"}'


def load_dag(monkeypatch: pytest.MonkeyPatch, **settings: str) -> Any:
    """Parse the DAG folder with ``FEATURESTORE_*`` settings (a fresh parse each call)."""
    from airflow.dag_processing.dagbag import DagBag

    for name, value in settings.items():
        monkeypatch.setenv(f"FEATURESTORE_{name.upper()}", value)
    bag = DagBag(dag_folder=str(DAGS_FOLDER))
    assert bag.import_errors == {}, bag.import_errors
    return bag.dags[DAG_ID]  # get_dag() would consult the metadata DB


def task_states(dag_run: Any) -> dict[str, str]:
    return {ti.task_id: str(getattr(ti.state, "value", ti.state)) for ti in dag_run.get_task_instances()}


def write_view(
    client: Any, catalog: Catalog, view: FeatureView, rows: dict[object, dict[str, Any]], at_ms: int
) -> None:
    """Write rows with the batch writer's own commands, then publish the view in the registry."""
    plan = BatchWritePlan.build(catalog, view)
    for entity_id, values in rows.items():
        for command in plan.commands(entity_id, values, at_ms):
            client.execute_command(*command)
    client.hset(codec.REGISTRY_KEY, view.name, codec.registry_entry(view, at_ms, "test"))
