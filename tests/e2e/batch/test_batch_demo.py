"""`featurestore demo` end to end (small sizes): embedded Redis 8, sample warehouse, every view, read back."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.dev import local_redis


def test_demo_runs_end_to_end(batch_spark: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        assert cli.main(["demo", "--users", "60", "--workdir", str(tmp_path), "--keep", "--stream-seconds", "3"]) == 0
        out = capsys.readouterr().out
        assert re.search(r"started Redis 8 at redis://127\.0\.0\.1:\d+", out)
        assert "generated the sample warehouse" in out
        for view in ("user_transactions", "user_profile", "merchant_risk"):
            assert re.search(rf"materialize {view} ds=\d{{4}}-\d\d-\d\d: SUCCEEDED", out), view
        # read back with the reader: values and each view's age
        # the streaming half: real-time features beside the batch views, in the same hashes
        assert re.search(r"streamed [\d,]+ events .* served values match the stream: True", out)
        assert re.search(
            r"user 1  \[user_transactions \d+s old, user_profile \d+s old, user_realtime (\d+s old|no values)\]", out
        )
        assert re.search(r"txn_count_30d=\d+", out) and "home_country='" in out
        assert re.search(r"merchant m0001  \[merchant_risk \d+s old\]", out) and "merchant_category='" in out
        assert re.search(r"loaded [\d,]+ entities of 3 views in [\d.]+s of writing \([\d,]+ entities/s", out)
        # --keep: the server is still up, with the features, and the output says how to stop it
        server = local_redis.load_state(tmp_path / "redis")
        assert server is not None and server.client().exists("fs:user:{1}", "fs:merchant:{m0001}") == 2
        assert f"stop it with: featurestore redis stop --workdir {tmp_path / 'redis'}" in out
        assert (tmp_path / "warehouse" / "transactions" / "_delta_log").is_dir()
        assert batch_spark.range(1).count() == 1  # the caller's session is still usable
    finally:
        local_redis.stop(tmp_path / "redis")
