"""`featurestore status` against real servers: a standalone Redis 8 and the local Cluster
(the verdict rules alone: tests/unit/ops/test_status.py)."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.run_records import record_run
from featurestore.jobs.examples.fraud.definitions import catalog, merchant_risk, user_profile
from featurestore.jobs.streaming import StreamingWriter
from tests.helpers.post_load_check import ok_run
from tests.helpers.reader import client_for, write_view

USERS = range(1, 41)


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat()


def load_the_store(url: str) -> None:
    """user_profile loaded 2 h ago; merchant_risk's newest run failed validation; user_transactions
    never ran; user_realtime gets live events."""
    client = client_for(url)
    now = int(time.time() * 1000)
    profile = {"account_age_days": 3, "home_country": "DE", "account_type": "standard", "credit_limit": 1.0,
               "kyc_verified": True}  # fmt: skip
    write_view(client, catalog, user_profile, dict.fromkeys(USERS, profile), now - 2 * 3_600_000)
    record_run(client, ok_run(run_id="p1", entities_written=40, finished_at=iso(now - 2 * 3_600_000)))
    merchants = {f"m{i:04d}": dict.fromkeys(merchant_risk.feature_names) for i in range(1, 6)}
    write_view(client, catalog, merchant_risk, merchants, now - 26 * 3_600_000)
    record_run(client, ok_run(run_id="m1", view="merchant_risk", finished_at=iso(now - 26 * 3_600_000)))
    failed = ok_run(run_id="m2", view="merchant_risk", status="failed_validation", finished_at=iso(now - 3_600_000),
                    failures=["merchant_fraud_rate_30d: 2 values above 1"])  # fmt: skip
    record_run(client, failed)
    with StreamingWriter.connect(url, "user_realtime", catalog=catalog) as writer:
        for i in (1, 2, 3):
            writer.write(i, {"txn_count_5m": i, "last_amount": 9.5, "last_country": "SE"}, now - 1000)


@pytest.mark.parametrize("target", ["redis_url", "cluster_url"])
def test_status_shows_every_view_and_fails_when_one_is_failing(
    target: str, request: pytest.FixtureRequest, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    url = request.getfixturevalue(target)
    load_the_store(url)

    assert cli.main(["status", "--redis-url", url, "--json"]) == 1  # merchant_risk is failing
    statuses = {s["view"]: s for s in map(json.loads, capsys.readouterr().out.splitlines())}
    assert {v: s["verdict"] for v, s in statuses.items()} == {
        "user_transactions": "never materialized", "user_profile": "fresh", "merchant_risk": "failing",
        "user_realtime": "fresh",
    }  # fmt: skip
    profile = statuses["user_profile"]
    assert (profile["last_success_run"], profile["entities_written"]) == ("p1", 40)
    assert 7_150 <= profile["age_seconds"] <= 7_300
    assert (profile["keys_sampled"], profile["keys_with_view"]) == (40, 40)  # every key, on every primary
    assert profile["memory_per_entity_bytes"] > 50
    merchant = statuses["merchant_risk"]
    assert merchant["last_failure_run"] == "m2" and "merchant_fraud_rate_30d" in merchant["last_failure_reason"]
    realtime = statuses["user_realtime"]
    assert realtime["keys_with_view"] == 3 and realtime["newest_write_age_seconds"] < 60

    metrics_dir = tmp_path / "textfile"
    assert cli.main(["status", "--redis-url", url, "--metrics-textfile", str(metrics_dir)]) == 1
    table = capsys.readouterr().out
    # the same verdicts as Prometheus metrics, for node_exporter's textfile collector
    prom = (metrics_dir / "featurestore_status.prom").read_text()
    assert 'featurestore_view_verdict{verdict="failing",view="merchant_risk"} 1.0' in prom
    assert 'featurestore_view_healthy{view="merchant_risk"} 0.0' in prom
    assert 'featurestore_view_healthy{view="user_profile"} 1.0' in prom
    assert table.splitlines()[0].split()[:3] == ["view", "kind", "verdict"]
    assert "merchant_risk: run m2 failed: merchant_fraud_rate_30d: 2 values above 1" in table

    # the failure fixed by a new successful run: healthy, exit 0
    record_run(client_for(url), ok_run(run_id="m3", view="merchant_risk", finished_at=iso(int(time.time() * 1000))))
    assert cli.main(["status", "--redis-url", url, "--json"]) == 0
    assert {json.loads(line)["view"]: json.loads(line)["verdict"] for line in capsys.readouterr().out.splitlines()}[
        "merchant_risk"
    ] == "fresh"


def test_status_of_an_unreachable_store_is_one_clear_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["status", "--redis-url", "redis://:s3cret@127.0.0.1:1"]) == ExitCode.UNREACHABLE
    err = capsys.readouterr().err
    assert "127.0.0.1:1" in err and "s3cret" not in err and "Traceback" not in err


def test_a_dead_stream_is_stale_and_unhealthy_in_status_and_its_metrics(
    redis_url: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    """Issue 25 item 2: the stream wrote for a while and died; an hour later its values have expired
    (per-field TTL), and its last progress report is all that is left.  The clock is injected."""
    from featurestore.jobs.cli import build_parser, settings_from_args
    from featurestore.jobs.cli import status as status_command

    with StreamingWriter.connect(redis_url, "user_realtime", catalog=catalog) as writer:
        writer.record_progress({"events": 900, "events_per_second": 15.0, "written": 900}, source="spark:events")
    metrics_dir = tmp_path / "textfile"
    argv = ["status", "--redis-url", redis_url, "--json", "--metrics-textfile", str(metrics_dir)]

    def status_at(clock: float) -> tuple[int, dict[str, str]]:
        args = build_parser().parse_args(argv)
        code = status_command.run(args, settings_from_args(args), clock=lambda: clock)
        statuses = {s["view"]: s["verdict"] for s in map(json.loads, capsys.readouterr().out.splitlines())}
        return code, statuses

    code, verdicts = status_at(time.time() + 5)  # the stream is alive: fresh
    assert verdicts["user_realtime"] == "fresh" and code == 0
    code, verdicts = status_at(time.time() + 3_600 + 120)  # an hour after the last write (max_age: 1 h)
    assert verdicts["user_realtime"] == "stale" and code == 1
    prom = (metrics_dir / "featurestore_status.prom").read_text()
    assert 'featurestore_view_healthy{view="user_realtime"} 0.0' in prom
    assert 'featurestore_view_verdict{verdict="stale",view="user_realtime"} 1.0' in prom
