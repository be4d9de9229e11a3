"""Packaging of the jobs for a cluster: the executors' Python environment (``featurestore executor-env``)."""
