"""The generic streaming job's pure parts, without Spark or Kafka: which views it runs (and the
refusal of a hook view), the checkpoint per fingerprint, the Kafka records' parsing (mapInArrow's
function, on Arrow batches) with dead letters keyed by record id, and when the last timers are due
(the Spark path: tests/spark/streaming/test_generic_stream.py)."""

from __future__ import annotations

import json
from datetime import timedelta

import pyarrow as pa
import pytest

from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming.events import EventSchema, record_id
from featurestore.jobs.streaming.kafka_job import (
    KafkaStreamConfig,
    ViewStream,
    _ParseJob,
    _timers_due,
    parsed_schema,
    streamed_views,
)
from featurestore.jobs.streaming.windows import ViewProgram
from featurestore.readers import Catalog, Feature, FeatureView
from featurestore.readers.errors import ConfigurationError


def test_the_job_runs_the_declared_views_and_refuses_a_hook_view() -> None:
    assert [v.name for v in streamed_views(catalog)] == ["user_realtime"]  # the default: every stream= view
    assert [v.name for v in streamed_views(catalog, ["user_realtime", "user_realtime"])] == ["user_realtime"]
    hook = FeatureView("hook_view", catalog.entity("user"), (Feature("hook_score", "float32"),), kind="streaming",
                       ttl=timedelta(hours=1))  # fmt: skip
    with_hook = Catalog(views=(*catalog.views, hook))
    with pytest.raises(ConfigurationError) as refused:
        streamed_views(with_hook, ["hook_view"])
    assert "view 'hook_view' has no stream= declaration" in str(refused.value)
    assert "StreamingWriter" in str(refused.value)
    with pytest.raises(ConfigurationError, match="has no stream="):
        streamed_views(with_hook, ["user_profile"])


def test_each_view_has_its_checkpoint_per_fingerprint_and_its_topics() -> None:
    view = catalog.view("user_realtime")
    stream = ViewStream.of(view, KafkaStreamConfig("h:1", "/cp"))
    assert stream.checkpoint.as_posix() == f"/cp/user_realtime/{ViewProgram.of(view).fingerprint[:8]}"
    assert (stream.topic, stream.dead_letters) == ("transactions", "transactions.dead-letters")
    other = ViewStream.of(view, KafkaStreamConfig("h:1", "/cp", topic="tx2"))
    assert (other.topic, other.dead_letters) == ("tx2", "tx2.dead-letters")
    assert other.checkpoint == stream.checkpoint  # the topic override is the operator's: same definition


def test_records_are_parsed_for_the_view_and_bad_ones_keyed_by_record_id() -> None:
    view = catalog.view("user_realtime")
    program = ViewProgram.of(view)
    assert parsed_schema(program) == (
        "user_id long, amount double, country string, event_time long, kafka_ms long, record_id string, "
        "dead_letter binary"
    )
    job = _ParseJob(EventSchema.of(view.stream), "user_realtime", tuple(program.needed_fields.items()))
    batch = pa.RecordBatch.from_pydict(
        {
            "value": [b'{"user_id": 4, "amount": 2.5, "country": "FR", "event_time": 1000}', b"not json"],
            "topic": ["transactions", "transactions"],
            "partition": [0, 1],
            "offset": [10, 11],
            "kafka_ms": [5, 6],
        }
    )
    (out,) = list(job([batch]))
    rows = out.to_pylist()
    assert rows[0] == {"user_id": 4, "amount": 2.5, "country": "FR", "event_time": 1000, "kafka_ms": 5,
                       "record_id": None, "dead_letter": None}  # fmt: skip
    assert (
        rows[1]["record_id"] == record_id("user_realtime", "transactions", 1, 11) == "user_realtime/transactions/1/11"
    )
    letter = json.loads(rows[1]["dead_letter"])
    assert letter["record_id"] == rows[1]["record_id"] and letter["view"] == "user_realtime"
    assert letter["reason"] == "unparseable" and letter["offset"] == 11


def test_the_last_timers_are_due_when_a_data_batch_moved_the_watermark() -> None:
    lateness = int(timedelta(minutes=1).total_seconds() * 1000)
    moved = {
        "numInputRows": 3,
        "eventTime": {"max": "2026-01-01T00:05:00.000Z", "watermark": "2026-01-01T00:00:00.000Z"},
    }
    assert _timers_due(moved, lateness)
    same = {
        "numInputRows": 3,
        "eventTime": {"max": "2026-01-01T00:01:00.000Z", "watermark": "2026-01-01T00:00:00.000Z"},
    }
    assert not _timers_due(same, lateness)
    assert not _timers_due({"numInputRows": 0, "eventTime": {"watermark": "2026-01-01T00:04:00.000Z"}}, lateness)


def test_stream_refuses_a_view_without_stream_before_starting_spark(capsys: pytest.CaptureFixture[str]) -> None:
    from featurestore.jobs import cli

    argv = ["stream", "--bootstrap-servers", "127.0.0.1:1", "--redis-url", "redis://127.0.0.1:1", "--view"]
    assert cli.main([*argv, "user_profile"]) == 2
    err = capsys.readouterr().err
    assert "view 'user_profile' has no stream= declaration" in err and "StreamingWriter" in err
    assert cli.main([*argv, "no_such_view"]) != 0
    assert "no_such_view" in capsys.readouterr().err


def test_the_consumers_last_values_follow_their_where() -> None:
    from featurestore.jobs.streaming.kafka_consumer import LastValues
    from featurestore.readers import Aggregate, Entity, LastValue, StreamSource

    item = Entity("item", join_key="item_id", id_dtype="string")
    source = StreamSource("clicks", "item_id string, kind string, user_id long, ts long", id_field="item_id",
                          time_field="ts")  # fmt: skip
    view = FeatureView(
        "item_live", item,
        (LastValue("last_buyer", "user_id", where={"kind": "buy"}), LastValue("last_kind", "kind"),
         Aggregate("views_1h", "count", where={"kind": "view"}, window=3600)),
        kind="streaming", ttl=timedelta(hours=2), stream=source,
    )  # fmt: skip
    schema = EventSchema.of(source)
    last_values = LastValues.of(view, ["last_buyer", "last_kind"])
    assert last_values({"item_id": "i", "kind": "buy", "user_id": 7, "ts": 5}, schema) == (
        "i", {"last_buyer": 7, "last_kind": "buy"}, 5,
    )  # fmt: skip
    viewed = {"item_id": "i", "kind": "view", "user_id": 8, "ts": 6}
    assert last_values(viewed, schema) == ("i", {"last_kind": "view"}, 6)
    assert LastValues.of(view, ["last_buyer"])(viewed, schema) is None  # nothing to write
    refusal = r"has windowed features \(views_1h\).*--features last_buyer,last_kind"
    with pytest.raises(ConfigurationError, match=refusal):
        LastValues.of(view)
