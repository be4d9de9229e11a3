"""Deploying the jobs to a cluster: the executors' Python environment (``featurestore executor-env``)."""
