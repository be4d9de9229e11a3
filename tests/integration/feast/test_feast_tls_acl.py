"""The real Feast 0.67 (side venv) over TLS and as least-privilege ACL users (featurestore.jobs.ops.acl).

Feast has one ``connection_string`` per repository, so the user is chosen by the environment:
``rediss://${FS_FEAST_USER}:${FS_FEAST_PASSWORD}@host:port?ssl_ca_certs=...`` in
``feature_store.yaml`` (Feast expands ``${VAR}`` in the whole file), one process with the
batch writer's credentials (``feast apply``, ``materialize``), another with the reader's
(``get_online_features``, ``feast serve``), a third with the streaming writer's (``store.push``).
Each role does its Feast operations with nothing refused in the server's ACL LOG, is refused
outside them with an error naming the user and the command, and the password appears in no file,
output or error.

The TLS server is Debian's Redis 7.0 (the Redis 8 wheels are built without TLS): it has neither
HSETEX nor HEXPIRE, so over TLS the batch path (apply, materialize, sync/async reads, ``feast
serve``) runs, and a push is refused naming the version it needs; pushes as the streaming writer
run on Redis 8 (plain TCP).
"""

from __future__ import annotations

import dataclasses
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from featurestore.jobs.ops.acl import BATCH_WRITER, READER, ROLES, STREAMING_WRITER, Role, apply
from featurestore.readers import codec
from tests.helpers import feast as fh

pytestmark = pytest.mark.slow

PASSWORD = "Feast-r0le-Pa55word"  # must never appear in a file, an output or an error
USER_VARIABLES = "${FS_FEAST_USER}:${FS_FEAST_PASSWORD}"


def as_role(chosen: Role, password: str = PASSWORD) -> dict[str, str]:
    """The environment of a Feast process running as ``chosen``'s user."""
    return {"FS_FEAST_USER": chosen.default_user, "FS_FEAST_PASSWORD": password}


def acl_refusals(admin: Any) -> list[tuple[str, str]]:
    """(user, command or key) of every refusal in the server's ACL LOG since the last reset."""
    found = []
    for entry in admin.execute_command("ACL", "LOG"):
        fields = dict(zip(entry[::2], entry[1::2])) if isinstance(entry, list) else entry
        fields = {(k.decode() if isinstance(k, bytes) else k): v for k, v in fields.items()}
        user, what = fields.get("username"), fields.get("object")
        found.append(
            (
                user.decode() if isinstance(user, bytes) else str(user),
                what.decode() if isinstance(what, bytes) else str(what),
            )
        )
    return found


def known_to(admin: Any, chosen: Role) -> Role:
    """``chosen`` without the commands the server does not know: Redis 7.0 refuses ``+hexpire`` or
    ``+client|setinfo`` in ``ACL SETUSER`` (it has neither, so no client can send them there)."""
    known = []
    for command in chosen.commands:
        try:
            admin.execute_command("ACL", "SETUSER", "fs_probe", f"+{command.name}")
            known.append(command)
        except redis.ResponseError:
            continue
    admin.execute_command("ACL", "DELUSER", "fs_probe")
    return dataclasses.replace(chosen, commands=tuple(known))


@pytest.fixture
def tls_repo_url(tls_server: Any) -> Iterator[tuple[Any, str]]:
    """The TLS server emptied, the three role users created; the admin client and the repository's URL."""
    server, tls_port, ca = tls_server
    admin = server.client()
    admin.flushall()
    for chosen in ROLES.values():
        apply(admin, known_to(admin, chosen), chosen.default_user, PASSWORD, cluster=False)
    admin.execute_command("ACL", "LOG", "RESET")
    yield admin, f"rediss://{USER_VARIABLES}@localhost:{tls_port}?ssl_ca_certs={ca}"
    for chosen in ROLES.values():
        admin.execute_command("ACL", "DELUSER", chosen.default_user)
    admin.close()


@pytest.fixture
def acl_repo_url(redis_url: str) -> Iterator[tuple[Any, str]]:
    """The same on our Redis 8 (plain TCP), which has HSETEX for pushes."""
    admin = redis.Redis.from_url(redis_url)
    for chosen in ROLES.values():
        apply(admin, chosen, chosen.default_user, PASSWORD, cluster=False)
    admin.execute_command("ACL", "LOG", "RESET")
    yield admin, redis_url.replace("redis://", f"redis://{USER_VARIABLES}@", 1)
    for chosen in ROLES.values():
        admin.execute_command("ACL", "DELUSER", chosen.default_user)
    admin.close()


def _made_repo(feast_python: Path, folder: Path, url: str) -> Path:
    repo = fh.write_repo(folder, url, fh.stats_rows(), live_ttl_seconds=600)
    made = fh.run(feast_python, ["-c", fh.PARQUET, str(repo)], repo)
    assert made.returncode == 0, made.stderr
    assert PASSWORD not in (repo / "feature_store.yaml").read_text()
    return repo


def _output(done: subprocess.CompletedProcess[str]) -> str:
    return done.stdout + done.stderr


def test_feast_over_tls_as_the_batch_writer_then_the_reader(
    feast_python: Path, tls_repo_url: tuple[Any, str], tmp_path: Path
) -> None:
    admin, url = tls_repo_url
    assert url.startswith("rediss://")
    repo = _made_repo(feast_python, tmp_path / "repo", url)
    outputs: list[str] = []

    # the batch writer: feast apply (the registry entries) and materialize (HSET/HDEL/EXPIRE)
    applied = fh.feast_cli(feast_python, repo, "apply", env=as_role(BATCH_WRITER))
    outputs.append(_output(applied))
    assert applied.returncode == 0, outputs[-1]
    assert set(admin.hkeys(codec.REGISTRY_KEY)) == {b"driver_stats", b"driver_live"}
    loaded = fh.drive_process(feast_python, repo, [fh.materialize_step()], env=as_role(BATCH_WRITER))
    outputs.append(_output(loaded))
    assert loaded.returncode == 0, outputs[-1]
    assert admin.hget("fs:driver:{1}", "trips") == b"10" and 0 < admin.ttl("fs:driver:{1}") <= 86400

    # the reader: get_online_features sync and async, and feast serve, over TLS
    features = [f"driver_stats:{f}" for f in fh.STATS]
    answers = fh.drive(
        feast_python,
        repo,
        [
            fh.online_step(features, full=False, is_async=False, ids=[1, 2, 9]),
            fh.online_step(features, full=True, is_async=True, ids=[1, 2, 9]),
        ],
        env=as_role(READER),
    )
    for answer in answers:
        values, statuses = fh.by_feature(answer, "driver_stats")
        assert (values["trips"], values["city"], values["conv_rate"]) == (
            [10, 20, None],
            ["Paris", "Lyon", None],
            [0.5, None, None],
        )
        assert statuses["conv_rate"] == ["PRESENT", "NULL_VALUE", "NOT_FOUND"]
    with fh.serving(feast_python, repo, env=as_role(READER)) as base:
        served = fh.post_json(
            base + "/get-online-features", {"features": ["driver_stats:trips"], "entities": {"driver_id": [1, 9]}}
        )
    outputs.append((repo / "serve.log").read_text())
    assert served["results"][1]["values"] == [10, None]
    assert acl_refusals(admin) == []  # each role did its whole part: nothing refused

    # outside its role: the reader cannot apply, the batch writer cannot push; user and command named
    refused = fh.feast_cli(feast_python, repo, "apply", env=as_role(READER))
    outputs.append(_output(refused))
    assert refused.returncode != 0 and "ACL user 'fs_reader'" in outputs[-1] and "'hset'" in outputs[-1], outputs[-1]
    push = {
        "op": "push",
        "source": "driver_push",
        "rows": {"driver_id": [1], "speed": [1.5], "zone": ["A"], "event_timestamp": ["now"]},
    }
    refused = fh.drive_process(feast_python, repo, [push], env=as_role(BATCH_WRITER))
    outputs.append(_output(refused))
    assert refused.returncode != 0 and "ACL user 'fs_batch_writer'" in outputs[-1], outputs[-1]
    # the streaming writer may push, but Redis 7.0 has no per-field TTL: refused, naming the version
    refused = fh.drive_process(feast_python, repo, [push], env=as_role(STREAMING_WRITER))
    outputs.append(_output(refused))
    assert refused.returncode != 0 and "HEXPIRE (Redis >= 7.4)" in outputs[-1], outputs[-1]
    # a wrong password: refused, and neither password is shown
    refused = fh.feast_cli(feast_python, repo, "apply", env=as_role(BATCH_WRITER, password="Wr0ng-Pa55word"))
    outputs.append(_output(refused))
    assert refused.returncode != 0
    assert all(PASSWORD not in text and "Wr0ng-Pa55word" not in text for text in outputs)
    assert admin.hget("fs:driver:{1}", "speed") is None  # nothing was pushed


def test_feast_push_as_the_streaming_writer_and_teardown_as_the_batch_writer(
    feast_python: Path, acl_repo_url: tuple[Any, str], tmp_path: Path
) -> None:
    admin, url = acl_repo_url
    repo = _made_repo(feast_python, tmp_path / "repo", url)
    outputs: list[str] = []
    applied = fh.feast_cli(feast_python, repo, "apply", env=as_role(BATCH_WRITER))
    outputs.append(_output(applied))
    assert applied.returncode == 0, outputs[-1]

    push = {
        "op": "push",
        "source": "driver_push",
        "rows": {"driver_id": [1], "speed": [1.5], "zone": ["A"], "event_timestamp": ["now"]},
    }
    pushed = fh.drive_process(feast_python, repo, [push], env=as_role(STREAMING_WRITER))
    outputs.append(_output(pushed))
    assert pushed.returncode == 0, outputs[-1]
    assert admin.hget("fs:driver:{1}", "speed") == b"1.5" and admin.ttl("fs:driver:{1}") == -1  # per-field TTL only
    answer = fh.drive(
        feast_python,
        repo,
        [fh.online_step(["driver_live:speed", "driver_live:zone"], full=False, is_async=True, ids=[1])],
        env=as_role(READER),
    )[0]
    assert answer["values"]["speed"] == [1.5] and answer["statuses"]["zone"] == ["PRESENT"]
    assert acl_refusals(admin) == []

    # the reader may not push (the streaming writer's first command, INFO, is refused)
    refused = fh.drive_process(feast_python, repo, [push], env=as_role(READER))
    outputs.append(_output(refused))
    assert refused.returncode != 0 and "ACL user 'fs_reader'" in outputs[-1], outputs[-1]
    # feast teardown (SCAN + HDEL on every entity hash, HDEL fs:registry): the batch writer's commands
    down = fh.feast_cli(feast_python, repo, "teardown", env=as_role(BATCH_WRITER))
    outputs.append(_output(down))
    assert down.returncode == 0, outputs[-1]
    assert admin.hkeys(codec.REGISTRY_KEY) == [] and admin.hget("fs:driver:{1}", "speed") is None
    assert all(PASSWORD not in text for text in outputs)
