"""The failure path of a materialization, without Spark or a server: the first failure is
never hidden by a failure while cleaning up, and a run that failed after it started
publishing is still recorded — or, when the record itself cannot be stored, the outcome
says so and why (with a real read-only ACL user: tests/integration/ops/test_acl_roles.py).

The Spark stages are replaced by stand-ins returning what the real ones return; the
Redis client is a recorder whose commands fail the way the wire's translated client
fails (:class:`PermissionDeniedError`).
"""

from __future__ import annotations

import json
import logging
from datetime import date
from types import SimpleNamespace
from typing import Any

import pytest

from featurestore.jobs.batch import materialize, validation
from featurestore.jobs.batch.guards import GuardVerdict
from featurestore.jobs.batch.materialize import (
    MaterializeRequest,
    RunOutcome,
    execute,
    prepare,
    raise_for_outcome,
    store_record,
    summary,
)
from featurestore.jobs.batch.validation import DRIFT_CHECK, Failure
from featurestore.jobs.core import interrupts
from featurestore.jobs.core.console import ExitCode
from featurestore.readers.errors import GuardRefused, JobError, PermissionDeniedError
from tests.helpers.batch import make_run_record

URL = "redis://fs_ro:s3cret-pw@127.0.0.1:1"


def denied(command: str) -> PermissionDeniedError:
    return PermissionDeniedError(
        f"{command.upper()} fs:x: Redis at redis://fs_ro:***@127.0.0.1:1 refused the {command!r} command to "
        f"ACL user 'fs_ro' (NOPERM User fs_ro has no permissions to run the {command!r} command)",
        user="fs_ro",
        command=command,
    )


class Recorder:
    """A control-plane client: every call is remembered; the commands in ``refuse`` fail."""

    def __init__(self, *refuse: str, close_fails: bool = False) -> None:
        self.refuse = set(refuse)
        self.close_fails = close_fails
        self.calls: list[str] = []
        self.stored: list[dict[str, Any]] = []

    def _call(self, command: str) -> None:
        self.calls.append(command)
        if command in self.refuse:
            raise denied(command)

    def xrevrange(self, *args: Any, **kwargs: Any) -> list[Any]:
        self._call("xrevrange")
        return []

    def hset(self, *args: Any) -> int:
        self._call("hset")
        return 1

    def xadd(self, key: str, fields: dict[str, Any], **kwargs: Any) -> bytes:
        self._call("xadd")
        self.stored.append(fields)
        return b"1-0"

    def close(self) -> None:
        self.calls.append("close")
        if self.close_fails:
            raise RuntimeError("socket already closed")


@pytest.fixture
def stages(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """The Spark stages as stand-ins: a snapshot of 5 rows, features of 5 rows, a passing validation."""
    released: list[bool] = []
    snapshot = SimpleNamespace(
        primary=SimpleNamespace(version=3, table="users"), rows_read=5, rows_in_ds=5,
        versions={"users": 3}, partitions={"users": "ds=2024-05-31"},
    )  # fmt: skip
    features = SimpleNamespace(
        checks=SimpleNamespace(rows=5, nan_as_null={}), ignored_columns=(), frame=None, stats={},
        release=lambda: released.append(True),
    )  # fmt: skip
    monkeypatch.setattr(materialize, "read_snapshot", lambda spark, request, transform: snapshot)
    monkeypatch.setattr(materialize, "input_guard", lambda snapshot, job, history: GuardVerdict())  # nothing to compare
    monkeypatch.setattr(materialize, "compute_features", lambda snapshot, view, transform: features)
    monkeypatch.setattr(materialize, "validate", lambda *args: SimpleNamespace(raise_if_failed=lambda: None))
    return {"released": released, "features": features}


def job() -> materialize.PreparedRun:
    return prepare(MaterializeRequest(view="user_profile", ds=date(2024, 5, 31), redis_url=URL, run_id="run-1"))


def test_a_refused_publish_is_recorded_with_its_own_error(stages: dict[str, Any]) -> None:
    client = Recorder("hset")
    outcome = execute(None, job(), client)  # type: ignore[arg-type]  # the stages need no Spark here
    assert client.calls == ["xrevrange", "hset", "xadd", "close"]
    assert outcome.record.status == "failed" and outcome.exit_code == ExitCode.PERMISSION  # 7: its own code
    assert "'hset' command" in str(outcome.record.error) and "fs_ro" in str(outcome.record.error)
    assert outcome.not_recorded is None and len(client.stored) == 1  # the failed run is in fs:runs
    assert '"status":"failed"' in client.stored[0]["record"] and "'hset' command" in client.stored[0]["record"]
    assert stages["released"] == [True]


def test_a_record_that_cannot_be_stored_never_hides_the_first_failure(
    stages: dict[str, Any], caplog: pytest.LogCaptureFixture
) -> None:
    client = Recorder("hset", "xadd", close_fails=True)  # the read-only user of issue 10
    with caplog.at_level(logging.WARNING, logger="featurestore"):
        outcome = execute(None, job(), client)  # type: ignore[arg-type]
    # the first failure is the run's error; the record's failure comes second, and why
    assert "'hset' command" in str(outcome.record.error) and "xadd" not in str(outcome.record.error)
    assert outcome.not_recorded is not None
    assert "run run-1 could not be recorded in fs:runs" in outcome.not_recorded and "'xadd'" in outcome.not_recorded
    error = str(outcome.error)
    assert error.index("'hset' command") < error.index("could not be recorded")
    assert outcome.exit_code == ExitCode.PERMISSION  # the first failure's class decides
    assert "record   run run-1 could not be recorded" in summary(outcome)
    with pytest.raises(PermissionDeniedError) as raised:  # the first failure itself, the record's as a note
        raise_for_outcome(outcome)
    assert "; and ".join([str(raised.value), *raised.value.__notes__]) == error  # the command's error line
    # still recorded somewhere: the whole record is in the job's log, without the password
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert '"run_id":"run-1"' in logged and '"status":"failed"' in logged
    assert "closing the Redis connection failed: RuntimeError: socket already closed" in logged
    assert "s3cret-pw" not in logged + error


def test_an_unexpected_error_is_raised_as_is_with_the_unstored_record_as_a_note(
    stages: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken_read(*args: Any) -> None:
        raise RuntimeError("Delta log is corrupt")

    monkeypatch.setattr(materialize, "read_snapshot", broken_read)
    client = Recorder("xadd", close_fails=True)
    with pytest.raises(RuntimeError, match="Delta log is corrupt") as raised:
        execute(None, job(), client)  # type: ignore[arg-type]
    assert any("could not be recorded in fs:runs" in note for note in raised.value.__notes__)
    assert client.calls[-1] == "close"


def test_a_succeeded_run_without_its_record_fails_the_command(
    stages: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    stats = SimpleNamespace(rows=5, entities=5, written=5, failed=0, retries=0, seconds=1.0, failures=())
    monkeypatch.setattr(materialize, "write", lambda client, job, features, run_id: stats)
    outcome = execute(None, job(), Recorder("xadd"))  # type: ignore[arg-type]
    assert outcome.record.status == "succeeded" and outcome.record.error is None
    assert outcome.exit_code == 1 and "could not be recorded" in str(outcome.error)
    with pytest.raises(JobError, match="could not be recorded in fs:runs"):  # what `featurestore materialize` raises
        raise_for_outcome(outcome)


def test_store_record_never_raises() -> None:
    assert store_record(Recorder(), make_run_record(1, "v", "2024-05-31")) is None
    why = store_record(Recorder("xadd"), make_run_record(2, "v", "2024-05-31"))
    assert why is not None and why.startswith("run r2 could not be recorded in fs:runs: XADD")
    assert RunOutcome(make_run_record(3, "v", "2024-05-31")).exit_code == 0


@pytest.fixture
def no_interrupt() -> Any:
    yield
    interrupts.reset()


@pytest.mark.parametrize("after_interrupt", [False, True])
def test_ctrl_c_is_recorded_as_an_interrupted_run_and_re_raised(
    stages: dict[str, Any], monkeypatch: pytest.MonkeyPatch, no_interrupt: None, after_interrupt: bool
) -> None:
    """Issue 25 item 1: Ctrl-C in a stage, or a Py4J error raised after it as the JVM goes away."""

    def interrupted_read(*args: Any) -> None:
        if after_interrupt:
            interrupts.note_interrupt()  # the SIGINT handler ran; then the JVM call failed
            raise RuntimeError("Py4JError: io.delta.tables.DeltaTable.isDeltaTable does not exist in the JVM")
        raise KeyboardInterrupt

    monkeypatch.setattr(materialize, "read_snapshot", interrupted_read)
    client = Recorder()
    with pytest.raises(KeyboardInterrupt):
        execute(None, job(), client)  # type: ignore[arg-type]
    assert client.calls[-2:] == ["xadd", "close"]  # recorded, then closed
    record = json.loads(client.stored[0]["record"])
    assert record["status"] == "interrupted" and "Py4J" not in record["error"]
    assert record["error"].startswith("interrupted (Ctrl-C")
    # the next run in the same process (a notebook): an error is its own again, not the old interrupt's
    monkeypatch.setattr(materialize, "read_snapshot", lambda *args: (_ for _ in ()).throw(RuntimeError("Delta")))
    with pytest.raises(RuntimeError, match="Delta"):
        execute(None, job(), client)  # type: ignore[arg-type]
    assert json.loads(client.stored[1]["record"])["status"] == "failed"


def _guard_failure(feature: str = "credit_limit") -> Failure:
    return Failure(DRIFT_CHECK, f"feature {feature!r}: mean 1 -> 10 since the last successful run")


@pytest.mark.parametrize(
    ("failures", "status", "code"),
    [([_guard_failure()], "refused_by_guard", ExitCode.GUARD),
     ([_guard_failure(), Failure("expect_column_values_to_be_between", "credit_limit: 1 value below 0")],
      "failed_validation", ExitCode.VALIDATION)],
)  # fmt: skip
def test_a_refusal_by_a_guard_alone_is_recorded_and_reported_as_such(
    stages: dict[str, Any], monkeypatch: pytest.MonkeyPatch, failures: list[Failure], status: str, code: int
) -> None:
    """Issue 25 item 11: the suite passed and only the drift guard refused: refused_by_guard, exit 4,
    a message naming the guard (not "failed validation"); with a suite failure too: failed_validation, 3."""
    prepared = job()
    report = validation.ValidationReport(prepared.view, "user_profile.json", tuple(failures))
    monkeypatch.setattr(materialize, "validate", lambda *args: report)
    client = Recorder()
    outcome = execute(None, prepared, client)  # type: ignore[arg-type]
    assert (outcome.record.status, outcome.exit_code) == (status, code)
    assert f'"status":"{status}"' in client.stored[0]["record"] and "hset" not in client.calls  # nothing written
    error = str(outcome.record.error)
    if status == "refused_by_guard":
        assert error.startswith("view 'user_profile' was refused by the drift guard, nothing was written")
        assert "(suite user_profile.json and built-in checks passed)" in error and "failed validation" not in error
        assert "--accept-drift FEATURE with --reason TEXT" in error
        with pytest.raises(GuardRefused):
            raise_for_outcome(outcome)
    else:
        assert error.startswith("view 'user_profile' failed validation, nothing was written: 2 check(s) failed")
    assert f"{status.upper()}" in summary(outcome)
