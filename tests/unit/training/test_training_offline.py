"""Training data without Spark: the log's settings, backfill's day and version plan, the audit's comparisons."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from featurestore.jobs.core.feature_log import LogSettings
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.training.audit import AuditReport, FeatureAudit, compare_recomputed, compare_served
from featurestore.jobs.training.backfill import days_between, plan_versions, version_as_of
from featurestore.readers.errors import ConfigurationError
from tests.helpers.training import TXN


def test_log_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("FEATURESTORE_FEATURE_LOG", raising=False)
    monkeypatch.delenv("FEATURESTORE_FEATURE_LOG_RETENTION_DAYS", raising=False)
    default = LogSettings.from_settings(tmp_path, Settings.from_env())
    assert default.root == tmp_path / "_feature_log" and default.path(TXN) == tmp_path / "_feature_log" / "txn"
    assert default.retention_days == 400
    monkeypatch.setenv("FEATURESTORE_FEATURE_LOG", str(tmp_path / "elsewhere"))
    monkeypatch.setenv("FEATURESTORE_FEATURE_LOG_RETENTION_DAYS", "30")
    assert LogSettings.from_settings(tmp_path, Settings.from_env()) == LogSettings(tmp_path / "elsewhere", 30)
    assert LogSettings.from_settings(tmp_path, Settings.from_env(), tmp_path / "given").root == tmp_path / "given"
    monkeypatch.setenv("FEATURESTORE_FEATURE_LOG", "off")
    off = LogSettings.from_settings(tmp_path, Settings.from_env())
    assert not off.enabled
    with pytest.raises(ConfigurationError, match="feature log is off"):
        off.path(TXN)
    monkeypatch.setenv("FEATURESTORE_FEATURE_LOG_RETENTION_DAYS", "a week")
    with pytest.raises(ConfigurationError, match="FEATURESTORE_FEATURE_LOG_RETENTION_DAYS='a week'"):
        LogSettings.from_settings(tmp_path, Settings.from_env())


def test_backfill_reads_each_day_at_the_version_its_nightly_run_would_have_read() -> None:
    def at(day: int, hour: int) -> datetime:
        return datetime(2024, 5, day, hour, tzinfo=UTC)

    history = [(0, at(1, 12)), (1, at(3, 1)), (2, at(3, 3))]
    assert version_as_of(history, at(3, 2)) == (1, True)  # 02:00 on the 3rd: the run of the 2nd
    assert version_as_of(history, at(3, 3)) == (2, True)  # a commit at the very moment counts
    assert version_as_of(history, at(1, 0)) == (0, False)  # before the table existed: its oldest version
    days = days_between(date(2024, 4, 30), date(2024, 5, 3))
    plan, notes = plan_versions({"t": history}, days, timedelta(hours=2))
    assert [plan[d]["t"] for d in days] == [0, 0, 1, 2]
    assert notes == [
        "table 't' did not exist yet on 1 of the days (2024-04-30..2024-04-30): read at its oldest version"
    ]
    with pytest.raises(ConfigurationError, match="before --from"):
        days_between(date(2024, 5, 2), date(2024, 5, 1))


def test_audit_comparisons_name_the_entity_and_both_sides() -> None:
    expected = {
        1: {"count": 3, "count__status": "present", "mean": 0.1, "mean__status": "present"},
        2: {"count": 0, "count__status": "stale", "mean": None, "mean__status": "stale"},
    }
    served = [
        (1, {"count": 3, "mean": 0.10000000149011612}, {"count": "present", "mean": "present"}),  # the same float32
        (2, {"count": 0, "mean": None}, {"count": "missing", "mean": "stale"}),
        (3, {"count": 0, "mean": None}, {"count": "missing", "mean": "missing"}),  # not in the log
    ]
    audits = compare_served(TXN, served, expected)
    assert (audits["count"].mismatches, audits["count"].compared) == (2, 3)
    assert audits["count"].examples[0] == "user 2: Redis 0 (missing), log 0 (stale)"
    assert audits["mean"].mismatches == 1
    again = compare_recomputed(TXN, {1: {"count": 3, "mean": 1.0}}, {1: {"count": 4, "mean": 1.0 + 1e-9}})
    assert (again["count"].mismatches, again["mean"].mismatches) == (1, 0)  # floats within 1e-6, relative
    report = AuditReport("txn", "2024-05-31", "now", 3, 0.5, served=audits)
    assert report.worst_rate == pytest.approx(2 / 3) and not report.ok
    assert '"ok":false' in report.to_json() and "user 2: Redis 0 (missing)" in report.summary()
    assert FeatureAudit().rate == 0.0
