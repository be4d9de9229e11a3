"""Run records without a server: a bad status, `featurestore runs` without a URL or Redis
(with real servers: tests/integration/batch/test_batch_run_records.py)."""

from __future__ import annotations

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.readers.errors import ConfigurationError
from tests.helpers.batch import make_run_record


def test_bad_status_is_refused() -> None:
    with pytest.raises(ConfigurationError, match="status 'ok'"):
        make_run_record(1, "v", "2024-01-01", status="ok").to_json()


def test_runs_command_without_a_url_says_how_to_give_one(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv(REDIS_URL_ENV_VAR, raising=False)
    assert cli.main(["runs"]) == 2  # a usage error
    assert "pass --redis-url or set FEATURESTORE_REDIS_URL" in capsys.readouterr().err


def test_unreachable_redis_is_reported_without_the_password(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["runs", "--redis-url", "redis://default:s3cret@127.0.0.1:1"]) == ExitCode.UNREACHABLE
    err = capsys.readouterr().err
    assert "cannot reach Redis at redis://default:***@127.0.0.1:1" in err and "s3cret" not in err
