"""The three least-privilege ACL roles (featurestore.jobs.ops.acl) against a real Redis 8:
each role does its whole job — with no refused command left in the server's ACL LOG — and
is refused outside it, with an error naming the user and the command (never the password).

The batch writer writes through the real writer without Spark (``PartitionWriter`` on Arrow
batches, what each Spark task runs), publishes the registry entry and the run record,
and runs the post-load check the nightly DAG runs with the same credentials.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import pyarrow as pa
import pytest
import redis

from featurestore.jobs import cli
from featurestore.jobs.batch.transforms import transform_for
from featurestore.jobs.core import control_plane, run_records
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.run_records import latest_run, record_run
from featurestore.jobs.core.settings import REDIS_URL_ENV_VAR
from featurestore.jobs.examples.fraud.definitions import catalog as example_catalog
from featurestore.jobs.ops.acl import BATCH_WRITER, READER, STREAMING_WRITER, Role, apply, setuser_line
from featurestore.jobs.ops.post_load_check import check_view
from featurestore.jobs.streaming import StreamingWriter
from featurestore.jobs.write.commands import BatchWritePlan
from featurestore.jobs.write.partition_writer import PartitionWriter, WriterOptions, preflight
from featurestore.readers import FeatureReader, FeatureStatus, PermissionDeniedError, codec
from featurestore.readers.settings import ConnectionSettings
from featurestore.readers.wire import redis_client
from tests.helpers import acl as acl_helpers
from tests.helpers.acl import role_users
from tests.helpers.batch import make_run_record
from tests.helpers.reader import now_ms, scores, test_catalog, write_view

PASSWORD = "r0le-Pa55word"  # never in a message
DS = "2024-05-31"


def user_url(url: str, user: str, password: str = PASSWORD) -> str:
    return acl_helpers.user_url(url, user, password)


@pytest.fixture
def admin(redis_url: str) -> Iterator[Any]:
    """The server's default user (no password), the three role users created with ``apply``."""
    with role_users(redis_url, PASSWORD) as client:
        client.execute_command("ACL", "LOG", "RESET")
        yield client


def refusals(admin: Any, role: Role) -> list[str]:
    """What the server refused to the role's user since the last reset (its ACL LOG)."""
    entries = admin.execute_command("ACL", "LOG")
    found = []
    for entry in entries:
        fields = dict(zip(entry[::2], entry[1::2])) if isinstance(entry, list) else entry
        user = fields.get(b"username", fields.get("username"))
        if user in (role.default_user, role.default_user.encode()):
            found.append(str(fields.get(b"object", fields.get("object"))))
    return found


def refused(call: Any, role: Role, command: str) -> PermissionDeniedError:
    with pytest.raises(PermissionDeniedError) as failure:
        call()
    error = failure.value
    assert error.user == role.default_user and error.command == command, str(error)
    message = str(error)
    assert f"ACL user {role.default_user!r}" in message and f"'{command}'" in message
    assert "featurestore acl --role" in message and PASSWORD not in message
    return error


def test_reader_reads_a_vector_and_nothing_else(redis_url: str, admin: Any) -> None:
    write_view(redis.Redis.from_url(redis_url), test_catalog, scores, {1: {"n_orders": 7, "embedding": [1, 2, 3]}})
    url = user_url(redis_url, READER.default_user)
    with FeatureReader.connect(url, catalog=test_catalog) as reader:  # the registry check at start-up
        vector = reader.get(1, ["n_orders", "embedding"])
        assert vector["embedding"] == (1.0, 2.0, 3.0) and vector["n_orders"] == 7
        assert reader.get_many([1, 2], ["n_orders"]).to_list() == [[7], [0]]
    assert refusals(admin, READER) == []  # the whole job, not one command refused (CLIENT SETINFO included)

    client = redis_client(ConnectionSettings.from_url(url))
    try:
        refused(lambda: client.hset(b"fs:user:{1}", "n_orders", 8), READER, "hset")
        refused(lambda: client.xadd(run_records.RUNS_KEY, {"record": "{}"}), READER, "xadd")
        refused(lambda: client.flushall(), READER, "flushall")
    finally:
        client.close()
    with pytest.raises(PermissionDeniedError, match="ACL user 'fs_reader'"):
        StreamingWriter.connect(url, "live", catalog=test_catalog)
    assert redis.Redis.from_url(redis_url).hget(b"fs:user:{1}", "n_orders") == b"7"


def arrow_rows(ids: list[int]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict(
        {
            "user_id": pa.array(ids, pa.int64()),
            "n_orders": pa.array([i * 10 for i in ids], pa.int64()),
            "spend": pa.array([i + 0.5 for i in ids], pa.float64()),
            "ratio": pa.array([0.25] * len(ids), pa.float32()),
            "segment": pa.array(["gold"] * len(ids), pa.string()),
            "is_vip": pa.array([True] * len(ids), pa.bool_()),
            "embedding": pa.array([[float(i), 0.0, 1.0] for i in ids], pa.list_(pa.float32())),
        }
    )


def test_batch_writer_writes_publishes_records_and_checks(redis_url: str, admin: Any) -> None:
    url = user_url(redis_url, BATCH_WRITER.default_user)
    settings = control_plane.job_settings(url)
    plan = BatchWritePlan.build(test_catalog, scores)
    ids = list(range(1, 201))
    started = now_ms()
    # what `featurestore materialize` does, in order, minus Spark
    client = control_plane.connect(settings)  # PING
    try:
        assert latest_run(client, "scores", status="succeeded") is None  # XREVRANGE fs:runs
        preflight(plan, ConnectionSettings.from_url(url), 5.0, 5.0)  # PING (+ HEXPIRE probe when needed)
        client.hset(codec.REGISTRY_KEY, "scores", codec.registry_entry(scores, started, "run-acl"))
        stats = PartitionWriter(plan, WriterOptions(url, computed_at_ms=started, pipeline_rows=64)).write(
            [arrow_rows(ids[:120]), arrow_rows(ids[120:])]
        )
        assert stats.fatal is None and stats.written == len(ids) and stats.failed == 0
        record = make_run_record(1, "scores", DS)
        record.run_id, record.rows_written, record.rows_out, record.entities_written = "run-acl", 200, 200, 200
        record_run(client, record)  # XADD fs:runs
    finally:
        client.close()
    report = check_view(url, "scores", DS, catalog=test_catalog, sample_size=20)  # SCAN, HGETALL, HMGET
    assert report.run is not None and report.run.run_id == "run-acl"
    assert report.sample is not None and report.sample.carriers == 20
    assert refusals(admin, BATCH_WRITER) == []

    with FeatureReader.connect(user_url(redis_url, READER.default_user), catalog=test_catalog) as reader:
        assert reader.get(42, ["n_orders", "embedding"]).to_list() == [420, (42.0, 0.0, 1.0)]

    client = redis_client(ConnectionSettings.from_url(url))
    try:
        refused(lambda: client.execute_command("FUNCTION", "FLUSH"), BATCH_WRITER, "function|flush")
        refused(lambda: client.execute_command("CONFIG", "SET", "maxmemory", "1"), BATCH_WRITER, "config|set")
        with pytest.raises(PermissionDeniedError, match="key outside its key patterns"):
            client.hset("other:{1}", "x", 1)
    finally:
        client.close()
    with pytest.raises(PermissionDeniedError, match="'info' command to ACL user 'fs_batch_writer'"):  # the probe
        StreamingWriter.connect(url, "live", catalog=test_catalog)


@pytest.mark.parametrize("guard", [True, False])
def test_streaming_writer_writes_events_and_nothing_else(redis_url: str, admin: Any, guard: bool) -> None:
    url = user_url(redis_url, STREAMING_WRITER.default_user)
    with StreamingWriter.connect(url, "live", catalog=test_catalog, guard=guard) as writer:  # INFO, FUNCTION LOAD, HSET
        assert writer.write(5, {"clicks_1m": 3}, event_time=now_ms())  # FCALL (HGET + HSETEX inside) or HSETEX
        assert writer.write_many([(6, {"clicks_1m": 4}, now_ms()), (5, {"clicks_1m": None}, None)]).written == 2
    assert refusals(admin, STREAMING_WRITER) == []
    plain = redis.Redis.from_url(redis_url)
    assert plain.hget(b"fs:user:{6}", "clicks_1m") == b"4" and plain.hget(b"fs:user:{5}", "clicks_1m") is None
    assert 0 < plain.execute_command("HTTL", b"fs:user:{6}", "FIELDS", 1, "clicks_1m")[0] <= 60
    with FeatureReader.connect(user_url(redis_url, READER.default_user), catalog=test_catalog) as reader:
        assert reader.get(6, "live").status("clicks_1m") is FeatureStatus.PRESENT

    client = redis_client(ConnectionSettings.from_url(url))
    try:
        refused(lambda: client.xadd(run_records.RUNS_KEY, {"record": "{}"}), STREAMING_WRITER, "xadd")
        refused(lambda: client.expire(b"fs:user:{6}", 1), STREAMING_WRITER, "expire")  # never the key TTL
        refused(lambda: client.execute_command("FUNCTION", "DELETE", "x"), STREAMING_WRITER, "function|delete")
    finally:
        client.close()


def test_a_refused_command_inside_the_guard_is_a_permission_error(redis_url: str, admin: Any) -> None:
    """Functions run with the caller's ACL: without HGET the guard itself is refused."""
    admin.execute_command("ACL", "SETUSER", STREAMING_WRITER.default_user, "-hget")
    url = user_url(redis_url, STREAMING_WRITER.default_user)
    with (
        StreamingWriter.connect(url, "live", catalog=test_catalog) as w,
        pytest.raises(PermissionDeniedError) as failure,
    ):
        w.write(1, {"clicks_1m": 1})
    assert failure.value.command == "hget" and "ACL user 'fs_streaming_writer'" in str(failure.value)


def test_acl_command_prints_and_applies_without_showing_a_password(
    redis_url: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = redis.Redis.from_url(redis_url)
    assert cli.main(["acl", "--role", "reader", "--user", "svc_ro"]) == 0
    printed = capsys.readouterr().out
    assert setuser_line(READER, "svc_ro") in printed and "+hmget" in printed and "<password>" in printed

    monkeypatch.setenv("FEATURESTORE_ACL_PASSWORD", "cl1-Secret")
    try:
        assert cli.main(["acl", "--role", "reader", "--user", "svc_ro", "--apply", "--redis-url", redis_url]) == 0
        out, err = capsys.readouterr()
        assert "cl1-Secret" not in out + err and "svc_ro" in err
        described: Any = admin.acl_getuser("svc_ro")  # passwords: their SHA-256, as --apply sent them
        assert "+hmget" in described["commands"] and "+hset" not in described["commands"]
        assert described["passwords"] == [hashlib.sha256(b"cl1-Secret").hexdigest()]
        with FeatureReader(user_url(redis_url, "svc_ro", "cl1-Secret"), catalog=test_catalog) as reader:
            assert reader.get(1, ["n_orders"]).to_list() == [0]
        assert cli.main(["acl", "--apply", "--redis-url", redis_url]) == 2  # one user per --apply: --role
    finally:
        admin.execute_command("ACL", "DELUSER", "svc_ro")


def test_roles_on_a_cluster(cluster_url: str) -> None:
    """ACL users are per node: --apply sets every node; the reader and the batch writer's
    control plane (redis-py's cluster client: CLUSTER SLOTS, COMMAND) work with their roles."""
    settings = ConnectionSettings.from_url(cluster_url)
    admin = redis_client(settings)
    try:
        for role in (READER, BATCH_WRITER):
            apply(admin, role, role.default_user, PASSWORD, cluster=True)
        writer_url = user_url(cluster_url, BATCH_WRITER.default_user)
        client = control_plane.connect(control_plane.job_settings(writer_url))
        try:
            client.hset(codec.REGISTRY_KEY, "scores", codec.registry_entry(scores, now_ms(), "run-c"))
            record_run(client, make_run_record(1, "scores", DS))
            assert latest_run(client, "scores").run_id == "r1"  # type: ignore[union-attr]
        finally:
            client.close()
        with FeatureReader.connect(user_url(cluster_url, READER.default_user), catalog=test_catalog) as reader:
            assert reader.get_many(list(range(50)), ["n_orders"]).to_list() == [[0]] * 50
    finally:
        for role in (READER, BATCH_WRITER):
            admin.execute_command("ACL", "DELUSER", role.default_user, target_nodes="all")
        admin.close()


def test_materialize_as_a_reader_is_told_it_needs_the_batch_writer_role(
    redis_url: str, admin: Any, tmp_path: Any, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25 item 10: the reader role has no PING; materialize checks Redis before Spark starts and
    must say what the user needs (the batch-writer role, and the command that grants it), not only
    that `ping` was refused with a list of all three roles to pick from."""
    monkeypatch.setenv(REDIS_URL_ENV_VAR, user_url(redis_url, READER.default_user))
    for table in transform_for(example_catalog.view("user_profile")).sources:  # passes the warehouse check
        (tmp_path / table / "_delta_log").mkdir(parents=True)
    code = cli.main(["materialize", "--view", "user_profile", "--ds", DS, "--warehouse", str(tmp_path)])
    assert code == ExitCode.PERMISSION
    last = capsys.readouterr().err.strip().splitlines()[-1]
    assert last.startswith(
        "featurestore materialize: error: featurestore materialize needs the ACL role 'batch-writer'"
    )
    assert "the 'ping' command to ACL user 'fs_reader'" in last
    assert "`featurestore acl --role batch-writer --user fs_reader`" in last
    assert "reader|batch-writer|streaming-writer" not in last and PASSWORD not in last
    assert admin.dbsize() == 0  # nothing written, not even a run record
