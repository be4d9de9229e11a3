"""The streaming hook: real-time features with their own per-field TTL (docs/streaming.md).

* :mod:`.plan` — what a write sends (pure: event times, value encoders, the commands);
* :mod:`.guard` — the out-of-order guard, a Redis function (Lua text and names);
* :mod:`.writer` — :class:`StreamingWriter`: server probe, method, guard loading,
  registry, and writes through the one Redis wire;
* :mod:`.spark_sink` — :class:`ForeachBatchSink` for Spark Structured Streaming.
"""

from .guard import GUARD_FUNCTION, GUARD_LIBRARY
from .plan import HSET_HEXPIRE, HSETEX, METHODS, StreamingWritePlan, WriteStats, event_time_ms
from .spark_sink import ForeachBatchSink
from .writer import ServerCapabilities, StreamingWriter, choose_method

__all__ = [
    "GUARD_FUNCTION",
    "GUARD_LIBRARY",
    "HSETEX",
    "HSET_HEXPIRE",
    "METHODS",
    "ForeachBatchSink",
    "ServerCapabilities",
    "StreamingWritePlan",
    "StreamingWriter",
    "WriteStats",
    "choose_method",
    "event_time_ms",
]
