"""The nightly DAG of this feature repository: put this file in Airflow's dags folder (or link it).

Parsing it imports neither pyspark nor Great Expectations; every task gets --repo <this repository>.
"""

from pathlib import Path

from featurestore.jobs.airflow_dag import build_dag

dag = build_dag(repo=Path(__file__).resolve().parent.parent)
