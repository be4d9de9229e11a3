"""The batch writer: a Spark DataFrame of a view -> Redis, from the executors (docs/writer.md).

:func:`write_view` is the public DataFrame writer (what spark-redis users reach for, see the
README): any DataFrame with the entity's join key and the view's feature columns becomes
per-partition pipelines of ``HSET`` / ``HDEL`` (nulls) / ``EXPIRE`` (/ ``HEXPIRE``) through
the one Redis wire, grouped by shard in a cluster, retried through redirects and failovers.
``featurestore materialize`` writes through the same function after its validation gate.
"""

from .partition_writer import BatchWriteStats, write_view

__all__ = ["BatchWriteStats", "write_view"]
