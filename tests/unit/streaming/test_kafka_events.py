"""Kafka events without a broker: the configured schema, parsing and dead letters, the lag of a
query's progress, the progress report and its Redis fields, the commands' arguments.
(The broker end to end: tests/integration/streaming/test_kafka_consumer.py and
tests/e2e/streaming/test_kafka_stream.py.)"""

from __future__ import annotations

import json
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.job_metrics import STREAM_METRICS, HistogramSample, Sample, stream_progress_samples
from featurestore.jobs.dev.kafka_command import BAD_RECORDS
from featurestore.jobs.dev.local_kafka import server_properties
from featurestore.jobs.examples.fraud.definitions import catalog
from featurestore.jobs.streaming.events import (
    EventSchema,
    Rejected,
    StreamStats,
    dead_letter,
    lag_of_progress,
    parse_event,
    percentile,
    progress_fields,
    progress_line,
)
from featurestore.jobs.streaming.kafka_consumer import LastValues
from featurestore.readers.errors import ConfigurationError

NEEDED_FIELDS = {"amount": "double", "country": "string"}  # what user_realtime's last values read

DEFAULT_EVENT_SCHEMA = "user_id long, amount double, country string, event_time timestamp"  # the example's
SCHEMA = EventSchema.parse(DEFAULT_EVENT_SCHEMA)


def test_a_good_event_is_typed_with_its_time_in_epoch_ms() -> None:
    got = parse_event(b'{"user_id": 7, "amount": 12, "country": "FR", "event_time": "2026-01-01T00:00:01.5Z"}', SCHEMA)
    assert got == {"user_id": 7, "amount": 12.0, "country": "FR", "event_time": 1767225601500}
    assert isinstance(got["amount"], float)
    # epoch ms, a naive ISO time (UTC), extra fields ignored, absent optional fields null
    assert parse_event('{"user_id": 1, "event_time": 1767225600000, "x": [1]}', SCHEMA) == {
        "user_id": 1, "amount": None, "country": None, "event_time": 1767225600000,
    }  # fmt: skip
    naive = parse_event('{"user_id": 1, "event_time": "2026-01-01T00:00:00"}', SCHEMA)
    assert isinstance(naive, dict) and naive["event_time"] == 1767225600000


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (None, "unparseable"),
        (b"{not json", "unparseable"),
        (b"\xff\xfe", "unparseable"),
        (b'["a", "list"]', "not_an_object"),
        (b"42", "not_an_object"),
        (b'{"amount": 1.5, "event_time": 1}', "missing_id"),
        (b'{"user_id": null, "event_time": 1}', "missing_id"),
        (b'{"user_id": 7, "amount": 1.5}', "missing_event_time"),
        (b'{"user_id": "seven", "event_time": 1}', "wrong_type"),
        (b'{"user_id": 7.5, "event_time": 1}', "wrong_type"),
        (b'{"user_id": true, "event_time": 1}', "wrong_type"),
        (b'{"user_id": 7, "amount": "12.5", "event_time": 1}', "wrong_type"),
        (b'{"user_id": 7, "amount": true, "event_time": 1}', "wrong_type"),
        (b'{"user_id": 7, "country": 3, "event_time": 1}', "wrong_type"),
        (b'{"user_id": 7, "event_time": "yesterday"}', "wrong_type"),
        (b'{"user_id": 99999999999999999999, "event_time": 1}', "wrong_type"),
    ],
)
def test_a_bad_record_is_rejected_with_its_reason_never_raised(value: bytes | None, reason: str) -> None:
    got = parse_event(value, SCHEMA)
    assert isinstance(got, Rejected) and got.reason == reason, got


def test_the_demo_producers_bad_records_are_all_rejected() -> None:
    reasons = [parse_event(v, SCHEMA) for v in BAD_RECORDS]
    assert [r.reason for r in reasons if isinstance(r, Rejected)] == [
        "unparseable", "not_an_object", "missing_id", "wrong_type", "missing_event_time",
    ]  # fmt: skip


def test_the_schema_is_configured_not_hard_coded() -> None:
    schema = EventSchema.parse("account string, amt float, country string, ts bigint", "account", "ts")
    assert schema.types == {"account": "string", "amt": "double", "country": "string", "ts": "long"}
    assert parse_event('{"account": "a-1", "amt": 3, "ts": 5}', schema) == {
        "account": "a-1", "amt": 3.0, "country": None, "ts": 5,
    }  # fmt: skip
    with pytest.raises(ConfigurationError, match="need a double field 'amount'"):
        schema.require(NEEDED_FIELDS)
    SCHEMA.require(NEEDED_FIELDS)
    for ddl, message in [
        ("user_id long amount double", "expected 'name type'"),
        ("user_id long, amount decimal, event_time timestamp", "has type 'decimal'"),
        ("user_id long, user_id long, event_time timestamp", "appears twice"),
        ("user_id double, event_time timestamp", "id field 'user_id' must be a long or string"),
        ("user_id long, event_time string", "time field 'event_time' must be a timestamp or long"),
        ("user-id long, event_time timestamp", "not a valid field name"),
    ]:
        with pytest.raises(ConfigurationError, match=message):
            EventSchema.parse(ddl)


def test_a_dead_letter_says_why_and_where_from_and_keeps_the_value() -> None:
    record = json.loads(
        dead_letter(b"{oops", Rejected("unparseable", "not JSON"), topic="t", partition=1, offset=42, timestamp_ms=9)
    )
    assert record == {
        "reason": "unparseable", "detail": "not JSON", "topic": "t", "partition": 1, "offset": 42,
        "timestamp_ms": 9, "value": "{oops",
    }  # fmt: skip
    assert json.loads(dead_letter(None, Rejected("unparseable", "x"), topic="t", partition=0, offset=0,
                                  timestamp_ms=None))["value"] is None  # fmt: skip


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0 and percentile(values, 99) == 99.0 and percentile(values, 100) == 100.0
    assert percentile([], 50) is None and percentile([3.0], 99) == 3.0


def test_lag_is_latest_minus_end_per_partition() -> None:
    progress: dict[str, Any] = {
        "sources": [
            {
                "description": "KafkaV2[Subscribe[t]]",
                "startOffset": {"t": {"0": 10, "1": 5}},
                "endOffset": json.dumps({"t": {"0": 40, "1": 5}}),  # pyspark gives JSON text
                "latestOffset": {"t": {"0": 100, "1": 7}},
            }
        ]
    }
    assert lag_of_progress(progress) == 60 + 2
    assert lag_of_progress({"sources": [{"endOffset": None, "latestOffset": None}]}) is None
    assert lag_of_progress({}) is None


def test_a_report_gives_rates_and_percentiles_since_the_last_one() -> None:
    stats = StreamStats(started=100.0)
    stats.events, stats.written, stats.skipped, stats.dead_letters, stats.lag = 1000, 900, 100, 3, 12
    stats.add_latencies([0.1] * 98 + [2.0, 3.0])
    first = stats.report(110.0)
    assert first["events_per_second"] == pytest.approx(100.0)
    assert first["latency_p50_seconds"] == pytest.approx(0.1) and first["latency_p99_seconds"] == pytest.approx(2.0)
    stats.events += 50
    second = stats.report(115.0)
    assert second["events_per_second"] == pytest.approx(10.0) and second["latency_p50_seconds"] is None
    line = progress_line(first)
    assert "1000 events (100/s)" in line and "p99 2000 ms" in line and "3 dead letters" in line and "lag 12" in line
    fields = progress_fields(first, "spark:t", 123)
    assert fields["latency_p99_ms"] == "2000.0" and fields["lag"] == "12" and fields["source"] == "spark:t"
    assert "latency_p50_ms" not in progress_fields(second, "x", 1)
    samples = stream_progress_samples("v", first)
    assert {s.name for s in samples} <= set(STREAM_METRICS)
    # the latency as a histogram of raw counts since the start (no quantile gauges): 98 of 100 within 0.1 s
    (histogram,) = [s for s in samples if isinstance(s, HistogramSample)]
    assert histogram.name == "featurestore_stream_latency_seconds" and histogram.count == 100
    buckets = dict(histogram.buckets)
    assert (buckets[0.05], buckets[0.1], buckets[2.5], buckets[5.0]) == (0, 98, 99, 100)
    assert histogram.sum == pytest.approx(0.1 * 98 + 5.0)
    assert not any(s.name.endswith("_per_second") for s in samples)  # a rate is the query's work: rate()
    by_name = {s.name: s.value for s in samples if isinstance(s, Sample)}
    assert by_name["featurestore_stream_events_total"] == 1000
    assert by_name["featurestore_stream_dead_letters_total"] == 3
    # the histogram keeps counting across reports (the p50/p99 of the progress line restart with each)
    stats.add_latencies([0.02])
    assert dict(stats.report(120.0)["latency_buckets"])[0.1] == 99


def test_the_consumers_mapping_is_the_views_last_values() -> None:
    event = {"user_id": 3, "amount": 1.5, "country": "DE", "event_time": 77}
    view = catalog.view("user_realtime")
    last_values = LastValues.of(view, ["last_amount", "last_country"])
    assert last_values(event, SCHEMA) == (3, {"last_amount": 1.5, "last_country": "DE"}, 77)
    with pytest.raises(ConfigurationError) as refused:  # windowed features need the Spark job's state
        LastValues.of(view)
    assert str(refused.value) == (
        "view 'user_realtime' has windowed features (txn_count_5m, seconds_since_prev_txn): the plain consumer "
        "keeps no state; run featurestore stream --view user_realtime, or pass --features last_amount,last_country "
        "to write only its last values"
    )
    with pytest.raises(ConfigurationError, match="'txn_count_5m' needs state"):
        LastValues.of(view, ["last_amount", "txn_count_5m"])


def test_the_broker_runs_kraft_on_loopback_only(tmp_path: Any) -> None:
    text = server_properties(tmp_path, "127.0.0.1", 9092, 9093, 2)
    assert "process.roles=broker,controller" in text and "zookeeper" not in text
    assert "listeners=PLAINTEXT://127.0.0.1:9092,CONTROLLER://127.0.0.1:9093" in text


def test_stream_consume_and_kafka_command_arguments() -> None:
    args = cli.build_parser(only="stream").parse_args(
        ["stream", "--topic", "tx", "--checkpoint", "/cp", "--available-now", "--max-offsets-per-trigger", "100"]
    )
    assert (args.topic, args.checkpoint, args.available_now, args.max_offsets_per_trigger) == ("tx", "/cp", True, 100)
    assert args.view == [] and args.starting_offsets == "earliest"  # no --view: every view declared with stream=
    args = cli.build_parser(only="stream").parse_args(["stream", "--view", "a", "--view", "b"])
    assert args.view == ["a", "b"] and args.topic is None
    args = cli.build_parser(only="consume").parse_args(
        ["consume", "--view", "v", "--group", "g", "--until-caught-up", "--features", "x,y"]
    )
    assert (args.view, args.group, args.until_caught_up, args.topic, args.features) == ("v", "g", True, None, "x,y")
    args = cli.build_parser(only="kafka").parse_args(["kafka", "produce-demo", "--events", "10", "--bad-share", "0.1"])
    assert (args.action, args.events, args.bad_share) == ("produce-demo", 10, 0.1)


def test_stream_without_kafka_or_redis_says_what_to_set(monkeypatch: pytest.MonkeyPatch, capsys: Any) -> None:
    monkeypatch.delenv("FEATURESTORE_KAFKA_BOOTSTRAP", raising=False)
    monkeypatch.delenv("FEATURESTORE_REDIS_URL", raising=False)
    assert cli.main(["stream"]) == 2
    assert "no Kafka: pass --bootstrap-servers or set FEATURESTORE_KAFKA_BOOTSTRAP" in capsys.readouterr().err
    assert cli.main(["stream", "--bootstrap-servers", "h:1"]) == 2
    assert "no Redis: pass --redis-url or set FEATURESTORE_REDIS_URL" in capsys.readouterr().err


def test_status_prints_a_streams_progress() -> None:
    from featurestore.jobs.ops.status import stream_line

    progress = progress_fields(
        {"events": 10, "events_per_second": 1233.4, "written": 9, "skipped": 1, "dead_letters": 53, "batches": 2,
         "latency_p50_seconds": 0.412, "latency_p99_seconds": 0.98, "lag": 0},
        "spark:transactions", 1_000,
    )  # fmt: skip
    line = stream_line("user_realtime", progress, 4_000)
    assert line == (
        "  user_realtime: stream spark:transactions: 1233 events/s, event->Redis p50 412.0 ms p99 980.0 ms, "
        "lag 0, 53 dead letters (reported 3s ago)"
    )
    # the Spark job of a declared view also reports its late and ignored events
    report = {"events": 10, "events_per_second": 1.0, "written": 9, "skipped": 1, "dead_letters": 0, "batches": 2,
              "lag": 0, "late": 4, "ignored": 1}  # fmt: skip
    windowed = progress_fields(report, "spark:transactions", 1_000)
    assert windowed["late"] == "4" and windowed["ignored"] == "1"
    assert stream_line("user_realtime", windowed, 4_000).endswith("0 dead letters, 4 late, 1 ignored (reported 3s ago)")
    samples = {s.name: s.value for s in stream_progress_samples("user_realtime", report)}
    assert samples["featurestore_stream_late_events_total"] == 4.0
    assert samples["featurestore_stream_ignored_events_total"] == 1.0


def test_stream_takes_the_repositorys_checkpoints_and_feature_log(tmp_path: Any) -> None:
    """A repository's `checkpoints` and `feature_log` reach `featurestore stream` (the flag still wins)."""
    import dataclasses

    from featurestore.jobs.cli import stream
    from featurestore.jobs.core.settings import Settings

    settings = dataclasses.replace(Settings.load(environ={}), checkpoints=str(tmp_path / "cp"), feature_log=None)
    args = cli.build_parser(only="stream").parse_args(["stream"])
    assert stream.config_from_args(args, "b:9092", settings).checkpoint == str(tmp_path / "cp")
    assert stream._feature_log(args, settings) is None  # a stream logs only when asked
    flagged = cli.build_parser(only="stream").parse_args(["stream", "--checkpoint", "/x", "--feature-log", "/log"])
    assert stream.config_from_args(flagged, "b:9092", settings).checkpoint == "/x"
    assert str(stream._feature_log(flagged, settings).root) == "/log"  # type: ignore[union-attr]
    logged = dataclasses.replace(settings, feature_log=str(tmp_path / "log"))
    assert str(stream._feature_log(args, logged).root) == str(tmp_path / "log")  # type: ignore[union-attr]
    assert stream._feature_log(args, dataclasses.replace(settings, feature_log="off")) is None
