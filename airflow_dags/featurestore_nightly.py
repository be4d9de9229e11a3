"""featurestore_nightly: every batch view materialized (spark-submit), then checked, each night.

The DAG lives in the package (``featurestore.jobs.airflow_dag``, docs/airflow.md); this file
is all a DAGs folder needs.  Settings: ``FEATURESTORE_*`` in the DAG processor's environment, the
repository by ``FEATURESTORE_REPO`` (a repository's own DAG file passes ``repo=`` instead, docs/airflow.md).
"""

from featurestore.jobs.airflow_dag import build_dag

dag = build_dag()
