"""Spark tier: the local SparkSession (and usually Redis)."""
