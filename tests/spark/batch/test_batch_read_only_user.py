"""Issue 10: `featurestore materialize` run with a read-only ACL user, end to end (real Delta
warehouse, local Spark, Redis 8).  The registry HSET is refused, then the run record's
XADD: the command still ends with its own error line naming the first failure, then why
the run could not be recorded — no traceback, exit 7 (permission denied), nothing written, no password shown.
"""

from __future__ import annotations

from typing import Any

import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.jobs.dev.sample_data import GeneratedWarehouse
from tests.helpers.batch import DS

PASSWORD = "r3ad-0nly-pw"


def test_a_read_only_user_gets_the_clis_own_error_naming_both_refusals(
    batch_spark: Any, warehouse: GeneratedWarehouse, redis_url: str,
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str],
) -> None:  # fmt: skip
    admin = redis.Redis.from_url(redis_url)
    admin.execute_command("ACL", "SETUSER", "reader_ro", "reset", "on", f">{PASSWORD}", "~fs:*", "+@read", "+ping")
    try:
        monkeypatch.setenv(REDIS_URL_ENV_VAR, f"redis://reader_ro:{PASSWORD}@{redis_url.split('//')[1]}")
        code = cli.main(["materialize", "--view", "user_profile", "--ds", str(DS), "--warehouse", str(warehouse.path)])
    finally:
        admin.execute_command("ACL", "DELUSER", "reader_ro")
    err = capsys.readouterr().err
    assert code == ExitCode.PERMISSION  # 7: permission denied has its own exit code
    last = err.strip().splitlines()[-1]
    assert last.startswith("featurestore materialize: error: ")
    # the first failure first, then the record's, each naming the user and the command
    assert last.index("the 'hset' command to ACL user 'reader_ro'") < last.index("could not be recorded in fs:runs")
    assert "'xadd'" in last and "featurestore acl --role" in last
    assert "Traceback" not in err and PASSWORD not in err
    assert '"status":"failed"' in err  # the record, in the job's log since fs:runs refused it
    assert admin.dbsize() == 0  # refused at the registry: not one row written
