"""End-to-end tier: whole flows (Airflow DAG runs, the demos, spark-submit to a standalone master)."""
