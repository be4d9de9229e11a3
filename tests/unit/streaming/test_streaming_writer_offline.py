"""The streaming writer without a server (on real servers: tests/integration/streaming/test_streaming_writer.py)."""

from __future__ import annotations

import pytest

from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming.writer import StreamingWriter, writer_for_sink
from featurestore.readers.errors import ConfigurationError, FeatureStoreConnectionError


def test_password_never_appears_in_errors() -> None:
    with pytest.raises(FeatureStoreConnectionError) as info:
        StreamingWriter.connect("redis://app:s3cr3t-pw@127.0.0.1:1", "user_realtime", catalog=catalog, timeout=0.5)
    assert "s3cr3t-pw" not in str(info.value) and "***" in str(info.value)


def test_the_constructor_does_no_io() -> None:
    # nothing listens on port 1: only connecting (or the first write) finds out
    writer = StreamingWriter("redis://127.0.0.1:1", "user_realtime", catalog=catalog, timeout=0.5, retry_seconds=0.5)
    assert not writer.connected and writer.method is None
    assert "method='auto'" in repr(writer)
    with pytest.raises(FeatureStoreConnectionError):
        writer.write(1, {"txn_count_5m": 1})
    assert not writer.connected
    writer.close()


def test_bad_options_are_refused_before_connecting() -> None:
    with pytest.raises(ConfigurationError, match="method"):
        StreamingWriter("redis://127.0.0.1:1", "user_realtime", catalog=catalog, method="hset")
    with pytest.raises(ConfigurationError, match="retry seconds"):
        StreamingWriter("redis://127.0.0.1:1", "user_realtime", catalog=catalog, retry_seconds=0)
    with pytest.raises(ConfigurationError, match="max_pipeline"):
        StreamingWriter("redis://127.0.0.1:1", "user_realtime", catalog=catalog, max_pipeline=0)


def test_the_spark_sink_pickles_without_a_connection() -> None:
    import pickle

    from pyspark import cloudpickle  # what Spark pickles mapInArrow functions with (no session started)

    from featurestore.jobs.examples.fraud.definitions import user_realtime
    from featurestore.jobs.streaming import ForeachBatchSink, StreamingWritePlan

    sink = ForeachBatchSink(
        url="redis://127.0.0.1:1", plan=StreamingWritePlan.build(user_realtime, catalog), id_col="user_id",
        event_time_col="event_time", guard=True, method="hsetex", timeout=1.0, retry_seconds=30.0,
        max_pipeline=100, open_writer=writer_for_sink,
    )  # fmt: skip
    copy = pickle.loads(cloudpickle.dumps(sink))
    assert copy.open_writer is writer_for_sink  # by name: the executor cache key stays the same
    assert copy.plan == sink.plan and copy.retry_seconds == 30.0
    assert copy.feature_columns(["user_id", "event_time", "txn_count_5m"]) == ["txn_count_5m"]
