"""The console's feature-log reader (no Spark) on Delta tables written by hand, and the history's page model.

tests/spark/ui reads a log that Spark wrote (batch runs, a re-run, streaming appends, a checkpoint)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.ui import pages
from featurestore.jobs.ui.log_history import FeatureLogReader, History, LogRow
from tests.helpers.reader import live, scores
from tests.helpers.ui import log_checkpoint, log_commit, log_file, log_row

T = 1_717_300_000_000
DAY = 86_400_000


@pytest.fixture
def settings(tmp_path: Path) -> LogSettings:
    return LogSettings.resolve(tmp_path, tmp_path / "log")


def test_an_entitys_rows_newest_first_without_removed_files(settings: LogSettings) -> None:
    table = settings.path(scores)
    day1 = log_file(table, scores, "2024-06-01", [log_row(scores, i, "run1", T, n_orders=i) for i in (1, 42, 50)])
    log_commit(table, 0, day1)
    first = log_file(table, scores, "2024-06-02", [log_row(scores, 42, "run2", T + DAY, n_orders=7)])
    log_commit(table, 1, first)
    # a re-run of 2024-06-02 replaces its partition (replaceWhere): the first file is removed
    again = log_file(table, scores, "2024-06-02", [log_row(scores, 42, "run3", T + DAY + 5, n_orders=8, ratio=0.1)])
    log_commit(table, 2, {"remove": {"path": first["path"], "dataChange": True}}, again)
    history = FeatureLogReader(settings).history(scores, 42)
    assert [(r.ds, r.run_id, r.values["n_orders"]) for r in history.rows] == [
        ("2024-06-02", "run3", 8),
        ("2024-06-01", "run1", 42),
    ]
    assert history.exists and history.complete and not history.more
    assert history.rows[0].kind == "batch" and history.rows[0].fields is None
    assert history.rows[0].values["ratio"] == pytest.approx(0.1)  # float32 as Arrow reads it
    assert FeatureLogReader(settings).history(scores, 999).rows == []


def test_pages_of_rows_and_the_newest_write_first_within_a_day(settings: LogSettings) -> None:
    table = settings.path(live)
    events = [
        log_row(live, 42, f"stream-{i}", T + i * 1000, clicks_1m=i, _fields=["clicks_1m"]) for i in range(7)
    ]  # fmt: skip
    log_commit(table, 0, log_file(table, live, "2024-06-01", events[:4]))
    log_commit(table, 1, log_file(table, live, "2024-06-01", events[4:]))
    reader = FeatureLogReader(settings)
    first = reader.history(live, 42, offset=0, limit=3)
    assert [r.values["clicks_1m"] for r in first.rows] == [6, 5, 4] and first.more
    last = reader.history(live, 42, offset=6, limit=3)
    assert [r.values["clicks_1m"] for r in last.rows] == [0] and not last.more
    assert first.rows[0].fields == ("clicks_1m",) and first.rows[0].kind == "streaming"


def test_files_whose_ids_exclude_the_entity_are_not_read(settings: LogSettings) -> None:
    table = settings.path(scores)
    low = log_file(table, scores, "2024-06-02", [log_row(scores, i, "r", T) for i in (1, 2)])
    high = log_file(table, scores, "2024-06-01", [log_row(scores, i, "r", T) for i in (40, 45)])
    unknown = log_file(table, scores, "2024-05-31", [log_row(scores, 42, "old", T)], stats=False)
    log_commit(table, 0, low, high, unknown)
    history = FeatureLogReader(settings).history(scores, 42)
    # low (ids 1..2) is skipped; high (40..45) may hold 42 and is read; a file without statistics is read
    assert history.files_read == 2 and [(r.ds, r.run_id) for r in history.rows] == [("2024-05-31", "old")]
    assert FeatureLogReader(settings).history(scores, 45).rows[0].ds == "2024-06-01"
    assert FeatureLogReader(settings).history(scores, 1).files_read == 2  # low and the file without statistics


def test_a_search_stops_after_its_file_budget_and_says_so(settings: LogSettings) -> None:
    table = settings.path(scores)
    adds = [log_file(table, scores, f"2024-06-{d:02d}", [log_row(scores, 1, f"r{d}", T)]) for d in range(1, 6)]
    log_commit(table, 0, *adds)
    history = FeatureLogReader(settings, file_budget=3).history(scores, 1, limit=10)
    assert not history.complete and history.files_read == 3
    assert [r.ds for r in history.rows] == ["2024-06-05", "2024-06-04", "2024-06-03"]
    model = pages.history_model(scores, "1", history)
    assert "stopped after 3 files" in model.note and "training-set" in model.note


def test_a_table_needing_reader_features_it_does_not_know_is_refused(settings: LogSettings) -> None:
    table = settings.path(scores)
    protocol = {"minReaderVersion": 3, "minWriterVersion": 7, "readerFeatures": ["deletionVectors"]}
    log_commit(table, 0, log_file(table, scores, "2024-06-01", [log_row(scores, 1, "r", T)]), protocol=protocol)
    history = FeatureLogReader(settings).history(scores, 1)
    assert history.exists and history.rows == [] and "deletionVectors" in history.problem
    assert "featurestore training-set" in pages.history_model(scores, "1", history).note


def test_a_missing_commit_is_refused_and_no_table_is_not_an_error(settings: LogSettings) -> None:
    table = settings.path(scores)
    assert not FeatureLogReader(settings).history(scores, 1).exists
    log_commit(table, 0, log_file(table, scores, "2024-06-01", [log_row(scores, 1, "r", T)]))
    log_commit(table, 2, log_file(table, scores, "2024-06-02", [log_row(scores, 1, "r", T)]))
    assert "commit 1 is missing" in FeatureLogReader(settings).history(scores, 1).problem


def test_the_file_list_is_rebuilt_when_a_commit_arrives(settings: LogSettings) -> None:
    table = settings.path(scores)
    log_commit(table, 0, log_file(table, scores, "2024-06-01", [log_row(scores, 1, "r1", T)]))
    reader = FeatureLogReader(settings)
    assert [r.run_id for r in reader.history(scores, 1).rows] == ["r1"]
    log_commit(table, 1, log_file(table, scores, "2024-06-02", [log_row(scores, 1, "r2", T + DAY)]))
    assert [r.run_id for r in reader.history(scores, 1).rows] == ["r2", "r1"]


def test_the_history_model_shows_values_as_logged() -> None:
    batch = LogRow("2024-06-02", "batch", "run3", T - 1000, T, None,
                   {"n_orders": 8, "spend": None, "ratio": 0.10000000149011612, "segment": "gold", "is_vip": True,
                    "embedding": [0.5, 0.20000000298023224, 1.0]})  # fmt: skip
    model = pages.history_model(scores, "42", History("scores", "/log/scores", True, [batch], more=True))
    assert model.features == [f.name for f in scores.features]
    (row,) = model.rows
    assert row.values == ["8", "null", "0.1", '"gold"', "true", "[0.5, 0.2, 1.0]"]
    assert (row.ds, row.run_id, row.written_at, row.computed_at) == (
        "2024-06-02", "run3", "2024-06-02 03:46:40", "2024-06-02 03:46:39",
    )  # fmt: skip
    assert model.next_offset == 1 and model.first == 1 and model.note == ""
    event = LogRow("2024-06-02", "streaming", "stream-1", T, T, ("clicks_1m",), {"clicks_1m": None})
    assert pages.history_model(live, "42", History("live", "/t", True, [event])).rows[0].values == ["null"]
    untouched = LogRow("2024-06-02", "streaming", "stream-1", T, T, (), {"clicks_1m": None})
    assert pages.history_model(live, "42", History("live", "/t", True, [untouched])).rows[0].values == [
        pages.NOT_WRITTEN
    ]


def test_the_history_model_says_why_there_is_nothing() -> None:
    assert "No feature log is configured" in pages.history_model(scores, "42", None).note
    missing = pages.history_model(scores, "42", History("scores", "/log/scores", False))
    assert "no Delta table at /log/scores" in missing.note
    empty = pages.history_model(scores, "42", History("scores", "/log/scores", True))
    assert empty.note == "No logged rows of scores for id 42." and empty.next_offset is None and empty.first == 0


@pytest.mark.parametrize("hint", [True, False], ids=["_last_checkpoint", "listing"])
def test_the_newest_checkpoint_and_the_commits_after_it(settings: LogSettings, hint: bool) -> None:
    table = settings.path(scores)
    adds = [log_file(table, scores, f"2024-06-0{d}", [log_row(scores, 1, f"r{d}", T + d * DAY)]) for d in (1, 2, 3)]
    for version, add in enumerate(adds):
        log_commit(table, version, add)
    log_checkpoint(table, 2, adds[1:], hint=hint)  # r1's file was removed before the checkpoint
    for version in (0, 1):  # the log's cleanup deletes the commits a checkpoint covers
        (table / "_delta_log" / f"{version:020d}.json").unlink()
    log_commit(table, 3, log_file(table, scores, "2024-06-04", [log_row(scores, 1, "r4", T + 4 * DAY)]))
    assert [r.run_id for r in FeatureLogReader(settings).history(scores, 1).rows] == ["r4", "r3", "r2"]


def test_a_table_written_anew_is_read_anew(settings: LogSettings) -> None:
    table = settings.path(scores)
    log_commit(table, 0, log_file(table, scores, "2024-06-01", [log_row(scores, 1, "first", T)]))
    log_commit(table, 1, log_file(table, scores, "2024-06-02", [log_row(scores, 1, "second", T + DAY)]))
    reader = FeatureLogReader(settings)
    assert len(reader.history(scores, 1).rows) == 2
    shutil.rmtree(table)
    log_commit(table, 0, log_file(table, scores, "2024-06-03", [log_row(scores, 1, "anew", T + 2 * DAY)]))
    assert [r.run_id for r in reader.history(scores, 1).rows] == ["anew"]
