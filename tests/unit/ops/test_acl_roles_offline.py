"""The ACL roles as data and `featurestore acl` without a server (against Redis:
tests/integration/ops/test_acl_roles.py): the rules, the password never printed, the
documentation in step with the code."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.ops.acl import BATCH_WRITER, READER, ROLES, STREAMING_WRITER, role, setuser_line, setuser_rules

DOCS = Path(__file__).resolve().parents[3] / "docs" / "security.md"


def test_rules_reset_the_user_and_hash_the_password() -> None:
    rules = setuser_rules(BATCH_WRITER, "pa55-word")
    assert rules[:3] == ["reset", "on", "#" + hashlib.sha256(b"pa55-word").hexdigest()]
    assert "pa55-word" not in " ".join(rules)
    assert rules[3:6] == ["~fs:*", "resetchannels", "-@all"]
    assert rules[6:] == [f"+{name}" for name in BATCH_WRITER.command_names]


def test_reader_is_read_only_and_the_streaming_writer_never_touches_key_ttl_or_runs() -> None:
    assert READER.keys == ("%R~fs:*",)
    writes = {"hset", "hdel", "expire", "hexpire", "hsetex", "xadd", "fcall", "function|load", "multi"}
    assert not writes & set(READER.command_names)
    assert not {"expire", "xadd", "xrevrange", "scan"} & set(STREAMING_WRITER.command_names)
    assert not {"function|load", "fcall", "info"} & set(BATCH_WRITER.command_names)
    for r in ROLES.values():  # no command twice, nothing dangerous
        assert len(set(r.command_names)) == len(r.command_names)
        assert not {"flushall", "flushdb", "config", "keys", "del", "@all"} & set(r.command_names)
    with pytest.raises(ValueError, match="reader, batch-writer, streaming-writer"):
        role("admin")


def test_the_documentation_shows_the_roles_as_the_code_defines_them() -> None:
    text = DOCS.read_text()
    for r in ROLES.values():
        assert setuser_line(r) in text, f"docs/security.md is out of date for role {r.name!r}"


def test_acl_prints_every_role_with_a_placeholder(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("FEATURESTORE_ACL_PASSWORD", "never-printed")
    assert cli.main(["acl"]) == 0
    out = capsys.readouterr().out
    for r in ROLES.values():
        assert setuser_line(r) in out and f"# {r.name}: " in out
    assert "><password>" in out and "never-printed" not in out
    assert cli.main(["acl", "--role", "streaming-writer", "--user", "kafka_sink"]) == 0
    out = capsys.readouterr().out
    assert "ACL SETUSER kafka_sink reset on ><password> ~fs:* " in out and "fs_reader" not in out
    assert "#   +function|load " in out  # each command with why


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["acl", "--user", "x"], "--user names the user of one role: add --role"),
        (["acl", "--apply"], "--apply creates one user: choose it with --role"),
        (["acl", "--apply", "--role", "reader", "--redis-url", "redis://127.0.0.1:1"], "FEATURESTORE_ACL_PASSWORD"),
        (["acl", "--role", "admin"], "invalid choice: 'admin'"),
    ],
)
def test_acl_usage_errors(
    argv: list[str], message: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.delenv("FEATURESTORE_ACL_PASSWORD", raising=False)
    if "admin" in argv:  # argparse's own usage error
        with pytest.raises(SystemExit) as exited:
            cli.main(argv)
        assert exited.value.code == 2
    else:
        assert cli.main(argv) == 2
    assert message in capsys.readouterr().err
