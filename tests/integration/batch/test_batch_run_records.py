"""Run records in the `fs:runs` stream, on a standalone server and a Cluster, and `featurestore runs`
(without a server: tests/unit/batch/test_batch_run_records.py)."""

from __future__ import annotations

import json
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core import control_plane, run_records
from featurestore.jobs.core.run_records import latest_run, list_runs, record_run
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from tests.helpers.batch import make_run_record


def fill(client: Any) -> None:
    record_run(client, make_run_record(1, "user_profile", "2024-05-30"))
    record_run(client, make_run_record(2, "merchant_risk", "2024-05-30"))
    record_run(client, make_run_record(3, "user_profile", "2024-05-31", "failed_validation"))
    record_run(client, make_run_record(4, "user_profile", "2024-05-31", "failed"))


@pytest.mark.parametrize("url_fixture", ["redis_url", "cluster_url"])
def test_record_list_and_latest(url_fixture: str, request: pytest.FixtureRequest) -> None:
    client = control_plane.connect(request.getfixturevalue(url_fixture))
    try:
        fill(client)
        assert [r.run_id for r in list_runs(client)] == ["r4", "r3", "r2", "r1"]
        assert [r.run_id for r in list_runs(client, view="user_profile", limit=2)] == ["r4", "r3"]
        assert list_runs(client, view="nope") == []
        assert latest_run(client, "user_profile").run_id == "r4"  # type: ignore[union-attr]
        assert latest_run(client, "user_profile", status="succeeded").run_id == "r1"  # type: ignore[union-attr]
        assert latest_run(client, "user_profile", ds="2024-05-31", status="failed_validation").run_id == "r3"  # type: ignore[union-attr]
        assert latest_run(client, "merchant_risk", ds="2024-05-31") is None
        stored = client.xrange(run_records.RUNS_KEY, count=1)[0][1]
        assert set(stored) == {b"record"}
        data = json.loads(stored[b"record"])
        required = set(
            [
                "run_id",
                "view",
                "ds",
                "source_table",
                "source_version",
                "status",
                "rows_read",
                "rows_written",
                "rows_failed",
                "entities_written",
                "retries",
                "started_at",
                "finished_at",
                "durations",
                "error",
            ]
        )
        assert required <= set(data) and data["durations"] == {
            "read": 1.0,
            "transform": 2.0,
            "validate": 3.0,
            "write": 4.0,
        }
    finally:
        client.close()


def test_paging_through_many_runs_finds_an_old_one(redis_url: str) -> None:
    client = control_plane.connect(redis_url)
    try:
        record_run(client, make_run_record(0, "merchant_risk", "2024-01-01"))
        for i in range(1, 450):  # more than two pages of XREVRANGE
            record_run(client, make_run_record(i, "user_profile", "2024-05-31"))
        assert latest_run(client, "merchant_risk").run_id == "r0"  # type: ignore[union-attr]
        assert len(list_runs(client, view="user_profile", limit=1000)) == 449
    finally:
        client.close()


def test_featurestore_runs_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = control_plane.connect(redis_url)
    fill(client)
    client.close()
    monkeypatch.setenv(REDIS_URL_ENV_VAR, redis_url)  # no --redis-url: taken from the env
    assert cli.main(["runs", "--view", "user_profile"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["finished_at", "view", "ds", "status", "rows_read", "written", "failed", "source",
                                "seconds", "run_id"]  # fmt: skip
    assert [line.split()[3] for line in lines[1:4]] == ["failed", "failed_validation", "succeeded"]
    assert "transactions@v4" in lines[1] and lines[1].endswith("r4")
    assert cli.main(["runs", "--redis-url", redis_url, "--json", "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "r4"


def test_recent_runs_are_the_guards_baseline_and_keep_their_numbers(redis_url: str) -> None:
    client = control_plane.connect(redis_url)
    try:
        fill(client)
        guarded = make_run_record(5, "user_profile", "2024-06-01")
        guarded.input_rows = {"users": {"all": 143}}
        guarded.feature_stats = {"credit_limit": {"rows": 120.0, "null_share": 0.0, "mean": 4275.0, "std": 3120.4}}
        guarded.notes = ["input guard: first run"]
        guarded.overrides = [{"guard": "drift", "target": "credit_limit", "by": "alice", "reason": "r", "failure": "f"}]
        record_run(client, guarded)
        recent = run_records.recent_runs(client, "user_profile", "succeeded", limit=7)
        assert [r.run_id for r in recent] == ["r5", "r1"]  # newest first, failed runs left out
        assert recent[0] == guarded  # the guards' fields survive the round trip
        assert [r.run_id for r in run_records.recent_runs(client, "user_profile", limit=2)] == ["r5", "r4"]
        with pytest.raises(run_records.ConfigurationError, match="status must be one of"):
            run_records.recent_runs(client, "user_profile", "ok")
    finally:
        client.close()
