"""`featurestore plan --connect`: Redis reached and its registry compared as the reader does, the
warehouse's source tables looked up; nothing written (a real Redis 8)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.repo.init_command import init_repository


@pytest.fixture
def team(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in [n for n in os.environ if n.startswith("FEATURESTORE_") and n != "FEATURESTORE_HOME"]:
        monkeypatch.delenv(name)
    yield init_repository(tmp_path / "team", name="team_connect").folder
    for module in [m for m in sys.modules if m.startswith("featurestore_repo_team_connect")]:
        del sys.modules[module]


def test_plan_connect_reads_redis_and_the_warehouse_and_writes_nothing(
    team: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    (team / ".featurestore" / "warehouse" / "orders" / "_delta_log").mkdir(parents=True)
    before = redis.Redis.from_url(redis_url).dbsize()
    assert cli.main(["plan", "--connect", "--repo", str(team), "--redis-url", redis_url]) == ExitCode.OK
    out = capsys.readouterr().out.splitlines()
    assert any(line.startswith("redis ") and "customer_orders_30d not materialized" in line for line in out)
    assert any(line.startswith("warehouse ") and "Delta tables orders found" in line for line in out)
    assert out[-1] == "ok: nothing was written"
    assert redis.Redis.from_url(redis_url).dbsize() == before == 0


def test_plan_connect_without_the_source_tables_exits_2(
    team: Path, redis_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert cli.main(["plan", "--connect", "--repo", str(team), "--redis-url", redis_url]) == ExitCode.USAGE
    assert "featurestore plan: error: warehouse " in capsys.readouterr().err
