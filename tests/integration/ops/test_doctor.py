"""``featurestore doctor`` against the session's real Redis 8: the ACL user against its role (a
wrong role is exit 7 with the command that gives the right one), a missing warehouse table (exit 2,
naming it), an unreachable server (exit 5), a wrong password (exit 6); and nothing written."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from featurestore.jobs import cli
from featurestore.jobs.batch.transforms import transform_for
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.examples.fraud.definitions import catalog as example_catalog
from tests.helpers import acl as acl_helpers
from tests.helpers.acl import role_users

PASSWORD = "d0ctor-Pa55word"  # never in the output
TABLES = sorted({t for view in example_catalog.batch_views for t in transform_for(view).sources})


def user_url(url: str, user: str, password: str = PASSWORD) -> str:
    return acl_helpers.user_url(url, user, password)


@pytest.fixture
def admin(redis_url: str) -> Iterator[Any]:
    with role_users(redis_url, PASSWORD) as client:
        yield client


def warehouse_with(folder: Path, tables: list[str]) -> str:
    """A warehouse folder holding ``tables`` as Delta tables, as far as the check looks (``_delta_log``)."""
    for table in tables:
        (folder / table / "_delta_log").mkdir(parents=True)
    return str(folder)


def doctor(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, dict[str, str], str]:
    """The exit code, each check's line (by check name) and the whole output."""
    code = cli.main(["doctor", *argv])
    out = capsys.readouterr().out
    lines = {
        line.split()[1]: line for line in out.splitlines() if line.split() and line.split()[0] in ("ok", "warn", "FAIL")
    }
    return code, lines, out


def test_a_batch_writer_with_every_table_is_healthy_and_nothing_is_written(
    redis_url: str, admin: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES)
    keys_before = admin.dbsize()
    url = user_url(redis_url, "fs_batch_writer")
    code, lines, out = doctor(capsys, "--redis-url", url, "--warehouse", warehouse, "--role", "batch-writer")
    assert code == ExitCode.OK, out
    for check in ("definitions", "redis", "acl", "registry", "warehouse", "kafka"):
        assert lines[check].startswith("ok "), lines[check]
    assert "may run every command of the batch-writer role" in lines["acl"]
    assert all(table in lines["warehouse"] for table in TABLES)
    assert out.splitlines()[-1].startswith("doctor: ") and "0 FAIL" in out.splitlines()[-1]
    assert PASSWORD not in out
    assert admin.dbsize() == keys_before  # the probes changed nothing (no key made)


def test_a_user_of_the_wrong_role_is_told_the_role_and_the_command_that_fixes_it(
    redis_url: str, admin: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES)
    url = user_url(redis_url, "fs_reader")
    code, lines, out = doctor(capsys, "--redis-url", url, "--warehouse", warehouse, "--role", "batch-writer")
    assert code == ExitCode.PERMISSION, out
    assert lines["acl"].startswith("FAIL ") and "'fs_reader' may not run" in lines["acl"]
    assert "hset" in lines["acl"] and "xadd" in lines["acl"] and "the batch-writer role needs them" in lines["acl"]
    assert "fix: connect as a batch-writer user" in out
    assert "`featurestore acl --role batch-writer --user fs_reader`" in out
    assert lines["redis"].startswith("ok ")  # reachable: the user is refused commands, not the connection
    # the same user, for the role it has: healthy (no Spark needed by an inference service)
    code, lines, out = doctor(capsys, "--redis-url", url, "--warehouse", warehouse, "--role", "reader")
    assert code == ExitCode.OK, out
    assert "java" not in lines and lines["acl"].startswith("ok ")
    assert lines["server"].startswith("warn ")  # INFO is not the reader's: the version is not readable
    assert PASSWORD not in out


def test_a_missing_warehouse_table_is_a_configuration_failure_naming_it(
    redis_url: str, admin: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = TABLES[0]
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES[1:])
    code, lines, out = doctor(capsys, "--redis-url", redis_url, "--warehouse", warehouse)
    assert code == ExitCode.USAGE, out
    assert lines["warehouse"].startswith("FAIL ") and repr(missing) in lines["warehouse"]
    assert "fix: create the sample warehouse with `featurestore generate --warehouse DIR`" in out
    assert lines["acl"].startswith("warn ")  # the default user: no ACL user in the URL
    assert lines["registry"].startswith("ok ")


def test_an_unreachable_server_and_a_wrong_password_have_their_own_exit_codes(
    redis_url: str, admin: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES)
    code, lines, out = doctor(capsys, "--redis-url", "redis://127.0.0.1:1", "--warehouse", warehouse)
    assert code == ExitCode.UNREACHABLE, out
    assert (
        lines["redis"].startswith("FAIL ") and "cannot reach Redis" in lines["redis"] and "fix: start the server" in out
    )
    assert lines["registry"].startswith("warn ") and "not reachable" in lines["registry"]
    wrong = user_url(redis_url, "fs_batch_writer", "not-the-password")
    code, lines, out = doctor(capsys, "--redis-url", wrong, "--warehouse", warehouse)
    assert code == ExitCode.AUTHENTICATION, out
    assert lines["redis"].startswith("FAIL ") and "not-the-password" not in out


def test_a_cluster_is_checked_on_its_nodes(
    cluster_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES)
    for role in ("batch-writer", "streaming-writer", "reader"):
        code, lines, out = doctor(capsys, "--redis-url", cluster_url, "--warehouse", warehouse, "--role", role)
        assert code == ExitCode.OK, out
        assert "reachable (cluster)" in lines["redis"] and lines["server"].startswith("ok ")
        assert "may run every command of the" in lines["acl"]  # the default user: a warn, not a failure


def test_valkey_is_named_as_itself(valkey_url: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    warehouse = warehouse_with(tmp_path / "warehouse", TABLES)
    code, lines, out = doctor(capsys, "--redis-url", valkey_url, "--warehouse", warehouse, "--role", "streaming-writer")
    assert code == ExitCode.OK, out
    assert lines["server"].startswith("ok ") and "Valkey 9." in lines["server"] and "HSETEX" in lines["server"]
