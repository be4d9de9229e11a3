"""Run records in the `fs:runs` stream, on a standalone server and a Cluster, and `featurestore runs`."""

from __future__ import annotations

import json
from typing import Any

import pytest

from featurestore.jobs import cli, run_records
from featurestore.jobs.run_records import RunRecord, latest_run, list_runs, record_run
from featurestore.readers.errors import ConfigurationError


def make(i: int, view: str, ds: str, status: str = "succeeded") -> RunRecord:
    return RunRecord(
        run_id=f"r{i}", view=view, ds=ds, source_table="transactions", source_version=i, status=status,
        rows_read=100 * i, rows_written=10 * i, entities_written=10 * i,
        started_at="2024-06-01T02:00:00.000Z", finished_at="2024-06-01T02:01:00.000Z",
        durations={"read": 1.0, "transform": 2.0, "validate": 3.0, "write": 4.0},
    )  # fmt: skip


def fill(client: Any) -> None:
    record_run(client, make(1, "user_profile", "2024-05-30"))
    record_run(client, make(2, "merchant_risk", "2024-05-30"))
    record_run(client, make(3, "user_profile", "2024-05-31", "failed_validation"))
    record_run(client, make(4, "user_profile", "2024-05-31", "failed"))


@pytest.mark.parametrize("url_fixture", ["redis_url", "cluster_url"])
def test_record_list_and_latest(url_fixture: str, request: pytest.FixtureRequest) -> None:
    client = run_records.connect(request.getfixturevalue(url_fixture))
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
    client = run_records.connect(redis_url)
    try:
        record_run(client, make(0, "merchant_risk", "2024-01-01"))
        for i in range(1, 450):  # more than two pages of XREVRANGE
            record_run(client, make(i, "user_profile", "2024-05-31"))
        assert latest_run(client, "merchant_risk").run_id == "r0"  # type: ignore[union-attr]
        assert len(list_runs(client, view="user_profile", limit=1000)) == 449
    finally:
        client.close()


def test_bad_status_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="status 'ok'"):
        make(1, "v", "2024-01-01", status="ok").to_json()


def test_featurestore_runs_command(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    client = run_records.connect(redis_url)
    fill(client)
    client.close()
    monkeypatch.setenv(run_records.REDIS_URL_ENV_VAR, redis_url)  # no --redis-url: taken from the env
    assert cli.main(["runs", "--view", "user_profile"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["finished_at", "view", "ds", "status", "rows_read", "written", "failed", "source",
                                "seconds", "run_id"]  # fmt: skip
    assert [line.split()[3] for line in lines[1:4]] == ["failed", "failed_validation", "succeeded"]
    assert "transactions@v4" in lines[1] and lines[1].endswith("r4")
    assert cli.main(["runs", "--redis-url", redis_url, "--json", "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["run_id"] == "r4"


def test_runs_command_without_a_url_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(run_records.REDIS_URL_ENV_VAR, raising=False)
    assert cli.main(["runs"]) == 1
    assert "pass --redis-url or set FEATURESTORE_REDIS_URL" in capsys.readouterr().err


def test_unreachable_redis_is_reported_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runs", "--redis-url", "redis://default:s3cret@127.0.0.1:1"]) == 1
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://default:***@127.0.0.1:1" in err and "s3cret" not in err
