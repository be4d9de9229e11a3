"""The nightly DAG of this repository: every batch view materialized, then checked (docs/airflow.md).

Copy (or symlink) this file into Airflow's DAGs folder; parsing it imports neither pyspark nor GX.
"""

from pathlib import Path

from featurestore.jobs.airflow_dag import build_dag

dag = build_dag(repo=Path(__file__).resolve().parents[1])
