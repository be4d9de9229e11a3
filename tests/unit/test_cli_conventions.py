"""CLI conventions without a server: --version, exit codes (documented in --help), URL errors
as one clear line, -v/-q, log records redacted and carrying view/ds/run id, the run's log
file and its tail on a failure, the progress bar only on a terminal."""

from __future__ import annotations

import argparse
import io
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.batch import materialize
from featurestore.jobs.cli import runner
from featurestore.jobs.core import console, interrupts
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.spark import cached_jars
from featurestore.readers.errors import (
    AuthenticationError,
    ClusterDownError,
    ConfigurationError,
    FeatureStoreTimeout,
    GuardRefused,
    JobError,
    PasswordRequiredError,
    PermissionDeniedError,
    ServerUnreachableError,
    UnsupportedServerError,
    ValidationFailed,
    WriteError,
)
from featurestore.readers.settings import ConnectionSettings

PASSWORD = "s3cr3t-Pa55"


@pytest.fixture(autouse=True)
def _isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Log files and server state in a throw-away home; the logging set-up undone afterwards."""
    monkeypatch.setenv("FEATURESTORE_HOME", str(tmp_path / "home"))
    monkeypatch.delenv("FEATURESTORE_REDIS_URL", raising=False)
    yield
    interrupts.reset()
    for logger in (logging.getLogger("featurestore"), logging.getLogger()):
        for handler in [h for h in logger.handlers if getattr(h, "_featurestore_cli", False)]:
            logger.removeHandler(handler)
            handler.close()


def test_version_is_the_distributions(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--version"])
    assert exited.value.code == 0
    out = capsys.readouterr().out.strip()
    assert out == f"featurestore {cli.version()}" and cli.version() != ""


def test_help_documents_every_exit_code(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    for code in ExitCode:
        assert f"\n  {int(code):<4} " in out, code
    assert "usage error" in out and "validation refused" in out and "runtime failure" in out
    with pytest.raises(SystemExit):
        cli.main(["materialize", "--help"])
    assert "exit codes:" in capsys.readouterr().out


def test_exit_codes_are_distinct_and_fixed() -> None:
    assert [int(c) for c in ExitCode] == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 130]
    for code in ExitCode:
        assert f"\n  {int(code):<5}" in console.EXIT_CODES_HELP, code  # each one documented in --help
    assert materialize.EXIT_FAILED == 1 and materialize.EXIT_VALIDATION == 3  # no longer argparse's 2
    assert console.exit_code_for(ValidationFailed("x")) == ExitCode.VALIDATION
    assert console.exit_code_for(ConfigurationError("x")) == ExitCode.USAGE
    assert console.exit_code_for(WriteError("x")) == ExitCode.FAILED
    assert console.exit_code_for(RuntimeError("x")) == ExitCode.FAILED
    assert console.exit_code_for(KeyboardInterrupt()) == ExitCode.INTERRUPTED
    # one code per failure class, the most specific first (all are connection or server errors)
    assert console.exit_code_for(GuardRefused("x")) == ExitCode.GUARD == 4  # a ValidationFailed, but its own code
    assert console.exit_code_for(ServerUnreachableError("x")) == ExitCode.UNREACHABLE == 5
    assert console.exit_code_for(FeatureStoreTimeout("x")) == ExitCode.UNREACHABLE
    assert console.exit_code_for(AuthenticationError("x")) == ExitCode.AUTHENTICATION == 6
    assert console.exit_code_for(PasswordRequiredError("x")) == ExitCode.AUTHENTICATION
    assert console.exit_code_for(PermissionDeniedError("x")) == ExitCode.PERMISSION == 7
    assert console.exit_code_for(UnsupportedServerError("x")) == ExitCode.SERVER_TOO_OLD == 8
    assert console.exit_code_for(ClusterDownError("x")) == ExitCode.CLUSTER_DOWN == 9


def test_a_usage_error_is_argparses_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        cli.main(["materialize", "--view", "user_profile"])  # --ds missing
    assert exited.value.code == ExitCode.USAGE
    assert "--ds" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("url", "message"),
    [
        (f"redis://default:{PASSWORD}@localhost:notaport", "invalid port 'notaport'"),
        ("redis://localhost:99999", "invalid port '99999'"),
        ("redis://localhost:0", "invalid port 0"),
        (f"redis://:{PASSWORD}@localhost:6379/zero", "invalid database 'zero'"),
        ("http://localhost:6379", "unsupported URL scheme 'http'"),
    ],
)
def test_a_malformed_url_is_one_clear_line_without_the_password(
    url: str, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(ConfigurationError, match=message):
        ConnectionSettings.from_url(url)
    assert cli.main(["runs", "--redis-url", url]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert err.startswith("featurestore runs: error: ") and message in err
    assert "Traceback" not in err and PASSWORD not in err and len(err.strip().splitlines()) == 1


def test_valid_urls_still_parse() -> None:
    assert ConnectionSettings.from_url("redis://localhost:6379/0").url == "redis://localhost:6379/0"
    assert ConnectionSettings.from_url("redis://[::1]:6380").url == "redis://[::1]:6380"
    assert ConnectionSettings.from_url("rediss://u:p@h/?cluster=true").cluster


def test_verbosity_levels() -> None:
    assert console.verbosity_level(0, 0) == logging.WARNING
    assert console.verbosity_level(1, 0) == logging.INFO
    assert console.verbosity_level(2, 0) == logging.DEBUG
    assert console.verbosity_level(2, 1) == logging.ERROR  # -q wins


def test_v_and_q_are_accepted_before_and_after_the_command() -> None:
    parser = cli.build_parser(only="runs")
    assert parser.parse_args(["-vv", "runs"]).verbose == 2
    assert parser.parse_args(["runs", "-v"]).verbose == 1
    assert parser.parse_args(["runs", "-q"]).quiet == 1 and parser.parse_args(["runs"]).quiet == 0


def test_log_records_carry_the_run_fields_and_never_a_password(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    log_file = tmp_path / "run.log"
    console.configure_logging(verbose=1, log_file=log_file)
    log = logging.getLogger("featurestore.jobs.batch.materialize")
    fields = materialize.log_fields("user_profile", "2025-06-14", "run-1")
    log.info("writing to %s", f"redis://default:{PASSWORD}@redis:6379", extra=fields)
    log.debug("detail for the file only", extra=fields)
    try:
        raise ConnectionError(f"cannot reach redis://u:{PASSWORD}@h:1")
    except ConnectionError:
        log.warning("failed", exc_info=True)
    err = capsys.readouterr().err
    shown = "featurestore: INFO: writing to redis://default:***@redis:6379"
    assert f"{shown} [view=user_profile ds=2025-06-14 run_id=run-1]" in err
    assert "detail for the file only" not in err  # -v is INFO
    written = log_file.read_text()
    assert "featurestore.jobs.batch.materialize: detail for the file only [view=user_profile" in written
    assert "redis://u:***@h:1" in written  # the traceback too
    assert PASSWORD not in err and PASSWORD not in written


def test_quiet_shows_errors_only(capsys: pytest.CaptureFixture[str]) -> None:
    console.configure_logging(quiet=1)
    logging.getLogger("featurestore.x").warning("a warning")
    logging.getLogger("featurestore.x").error("an error")
    console.note("a note")
    console.echo("a result")
    captured = capsys.readouterr()
    assert captured.out == "a result\n"
    assert "an error" in captured.err and "a warning" not in captured.err and "a note" not in captured.err


def _command(error: BaseException | None, code: int = 0, jvm_lines: tuple[str, ...] = ()):  # type: ignore[no-untyped-def]
    def run(args: argparse.Namespace) -> int:
        from featurestore.jobs.spark import _Output

        if jvm_lines:  # what the JVM would have appended to the run's log file
            assert _Output.jvm_log is not None and _Output.on_launch is not None
            _Output.on_launch(_Output.jvm_log)
            with open(_Output.jvm_log, "a") as log:
                log.write("\n".join(jvm_lines) + "\n")
        if error is not None:
            raise error
        return code

    return run


def test_a_runtime_failure_shows_the_log_files_path_and_tail(capsys: pytest.CaptureFixture[str]) -> None:
    lines = (*(f"26/11/29 WARN line {i}" for i in range(30)), f"java.lang.X: at redis://u:{PASSWORD}@h")
    run = _command(JobError("the job broke"), jvm_lines=lines)
    code = runner.run_command("demo", run, argparse.Namespace(verbose=0, quiet=0), starts_spark=True)
    assert code == ExitCode.FAILED
    err = capsys.readouterr().err
    logs = list((Path(console.featurestore_home()) / "logs").glob("demo-*.log"))
    assert len(logs) == 1
    assert f"featurestore demo: Spark and JVM output go to {logs[0]}" in err
    assert "featurestore demo: error: the job broke" in err
    assert f"last lines of {logs[0]}:" in err and "WARN line 29" in err and "WARN line 5\n" not in err
    assert "redis://u:***@h" in err and PASSWORD not in err
    assert err.strip().splitlines()[-1] == "featurestore demo: error: the job broke"  # ours is the last line


def test_a_validation_failure_is_3_without_the_jvm_tail(capsys: pytest.CaptureFixture[str]) -> None:
    run = _command(ValidationFailed("view 'v' failed validation, nothing was written"), jvm_lines=("noise",))
    assert runner.run_command("demo", run, argparse.Namespace(), starts_spark=True) == ExitCode.VALIDATION
    err = capsys.readouterr().err
    assert "failed validation" in err and "last lines of" not in err


def test_an_unexpected_error_is_one_line_and_its_traceback_goes_to_the_log(capsys: pytest.CaptureFixture[str]) -> None:
    run = _command(RuntimeError("Py4JJavaError: boom\n\tat org.apache.spark.Foo"))
    assert runner.run_command("generate", run, argparse.Namespace(), starts_spark=True) == ExitCode.FAILED
    err = capsys.readouterr().err
    assert "featurestore generate: error: RuntimeError: Py4JJavaError: boom" in err
    assert "Traceback (most recent call last)" in err  # the tail of the log holds it
    assert runner.run_command("runs", run, argparse.Namespace(verbose=0), starts_spark=False) == ExitCode.FAILED
    assert "(run with -v for the traceback)" in capsys.readouterr().err


def test_ctrl_c_is_one_line_and_130(capsys: pytest.CaptureFixture[str]) -> None:
    code = runner.run_command("demo", _command(KeyboardInterrupt()), argparse.Namespace(), starts_spark=True)
    assert code == ExitCode.INTERRUPTED == 130
    assert capsys.readouterr().err.strip().splitlines()[-1] == "featurestore demo: interrupted"


@pytest.mark.parametrize(
    "after", [RuntimeError("Py4JError: io.delta.tables.DeltaTable.isDeltaTable does not exist in the JVM"),
              JobError("the streaming query stopped")],
)  # fmt: skip
def test_an_error_after_ctrl_c_is_the_interrupts_consequence(
    after: Exception, capsys: pytest.CaptureFixture[str]
) -> None:
    """Issue 25 item 1: the JVM's calls fail after the interrupt (Py4J errors): still one line, 130."""

    def run(args: argparse.Namespace) -> int:
        interrupts.note_interrupt()  # what the SIGINT handler (interrupts.on_sigint) notes first
        # py4j logs its failures through the root logger itself, with a traceback
        try:
            raise after
        except Exception:
            logging.getLogger().exception("Exception while sending command.")
        raise after

    code = runner.run_command("materialize", run, argparse.Namespace(verbose=0, quiet=0), starts_spark=True)
    err = capsys.readouterr().err
    assert code == ExitCode.INTERRUPTED
    assert err.strip().splitlines()[-1] == "featurestore materialize: interrupted"
    assert "Traceback" not in err and "Py4J" not in err and "error:" not in err and "last lines of" not in err
    logs = list((Path(console.featurestore_home()) / "logs").glob("materialize-*.log"))
    assert len(logs) == 1 and "Exception while sending command." in logs[0].read_text()  # kept in the log file


def test_the_sigint_handler_notes_the_interrupt_and_raises_keyboard_interrupt() -> None:
    assert not interrupts.interrupted()
    with pytest.raises(KeyboardInterrupt):
        interrupts.on_sigint(2, None)
    assert interrupts.interrupted() and interrupts.caused_by_interrupt(RuntimeError("after"))
    interrupts.reset()
    assert not interrupts.caused_by_interrupt(RuntimeError("before")) and interrupts.caused_by_interrupt(
        KeyboardInterrupt()
    )


def test_a_command_that_never_starts_spark_leaves_no_log_file() -> None:
    assert runner.run_command("generate", _command(None), argparse.Namespace(), starts_spark=True) == 0
    assert not (Path(console.featurestore_home()) / "logs").exists()


def test_old_log_files_are_pruned(tmp_path: Path) -> None:
    folder = tmp_path / "logs"
    folder.mkdir()
    for i in range(console.KEEP_LOG_FILES + 5):
        (folder / f"demo-{i:03}.log").write_text("x")
    console.prepare_log_file(folder / "demo-new.log")
    assert len(list(folder.glob("*.log"))) == console.KEEP_LOG_FILES
    assert (folder / "demo-new.log").exists() and not (folder / "demo-000.log").exists()


def test_progress_is_shown_on_a_terminal_only(capsys: pytest.CaptureFixture[str]) -> None:
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    console.configure_logging()
    terminal = Terminal()
    with console.Steps(2, "demo", stream=terminal, refresh_seconds=0.01) as steps:
        assert steps.shown
        with steps.step("start Spark"):
            logging.getLogger("featurestore.jobs.spark").info("resolving with Ivy at redis://u:%s@h", PASSWORD)
            console.echo("started Spark")
        with steps.step("read back"):
            pass
    assert "demo" in terminal.getvalue() and "start Spark: resolving with Ivy" in terminal.getvalue()
    assert PASSWORD not in terminal.getvalue()
    assert capsys.readouterr().out == "started Spark\n"

    with console.Steps(2, "demo", stream=io.StringIO()) as steps:  # a pipe, CI, a test: no bar at all
        with steps.step("x"):
            console.echo("result")
        assert not steps.shown
    assert capsys.readouterr().out == "result\n"


def test_off_a_terminal_a_long_step_writes_a_heartbeat_line_at_least_every_30_seconds() -> None:
    """Issue 25: a long command printed nothing off a terminal for minutes (the bar is terminal-only)."""
    console.configure_logging()
    now = [1000.0]
    pipe = io.StringIO()
    with console.Steps(3, "demo", stream=pipe, clock=lambda: now[0]) as steps:
        assert steps.heartbeat and not steps.shown and console.HEARTBEAT_SECONDS <= 30
        with steps.step("start Spark"):
            now[0] += 10
            assert not steps.beat() and pipe.getvalue() == ""  # nothing yet: not long enough
        with steps.step("materialize user_transactions"):
            logging.getLogger("featurestore.jobs.batch").info("validate: the GX suite of redis://u:%s@h", PASSWORD)
            now[0] += console.HEARTBEAT_SECONDS
            assert steps.beat()
            assert not steps.beat()  # one line per period, however often the timer asks
            now[0] += console.HEARTBEAT_SECONDS
            assert steps.beat()
            # nested Steps (materialize inside the demo) do not add their own lines
            with console.Steps(2, "materialize user_transactions", stream=pipe, clock=lambda: now[0]) as inner:
                now[0] += 100
                assert not inner.heartbeat and not inner.beat()
    lines = pipe.getvalue().splitlines()
    assert lines == [
        "featurestore demo: 35s in, step 2 of 3: materialize user_transactions "
        "(validate: the GX suite of redis://u:***@h)",
        "featurestore demo: 1m in, step 2 of 3: materialize user_transactions "
        "(validate: the GX suite of redis://u:***@h)",
    ], lines
    assert PASSWORD not in pipe.getvalue()
    assert not steps.beat()  # the command ended: silent

    console.configure_logging(quiet=1)  # -q: no heartbeat either
    quiet = io.StringIO()
    with console.Steps(1, "demo", stream=quiet, clock=lambda: now[0]) as steps:
        now[0] += 1000
        assert not steps.beat()
    assert quiet.getvalue() == ""


@pytest.mark.parametrize(
    ("seconds", "text"),
    [
        (None, "-"),
        (float("nan"), "-"),
        (0, "0s"),
        (0.4, "0s"),
        (42, "42s"),
        (59.6, "1m"),
        (205, "3m25s"),
        (300, "5m"),
        (3599.6, "1h"),
        (4398, "1h13m"),
        (4320, "1h12m"),
        (86_399, "1d"),
        (86_400 + 3 * 3600, "1d3h"),
        (30 * 86_400, "30d"),
        (-90, "-1m30s"),
    ],
)
def test_one_duration_format(seconds: float | None, text: str) -> None:
    """Issue 25: ages printed as `205s`, `73.3m`, `1.2h` in three places; one format now."""
    assert console.format_duration(seconds) == text


def test_recorded_jars_are_reused_only_while_every_file_exists(tmp_path: Path) -> None:
    jar = tmp_path / "delta.jar"
    jar.write_text("")
    manifest = tmp_path / "spark-jars" / "m.txt"
    assert cached_jars(manifest) is None  # not recorded yet: Ivy resolves
    manifest.parent.mkdir()
    manifest.write_text(f"{jar}\n")
    assert cached_jars(manifest) == str(jar)
    jar.unlink()
    assert cached_jars(manifest) is None  # a cleaned Ivy cache: resolve again


def test_redis_start_refuses_an_impossible_port(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["redis", "start", "--port", "70000"]) == ExitCode.USAGE
    assert "--port must be between 1 and 65535" in capsys.readouterr().err


def test_only_the_console_module_prints_and_loggers_are_named_after_their_module() -> None:
    """Library code logs (``logging.getLogger(__name__)``: ``featurestore.<package>.<module>``);
    what a command shows goes through featurestore.jobs.core.console."""
    import ast

    repo = Path(__file__).resolve().parents[2]
    printing, badly_named = [], []
    for root in (repo / "readers" / "featurestore", repo / "jobs" / "featurestore"):
        for path in root.rglob("*.py"):
            for node in ast.walk(ast.parse(path.read_text())):
                if not isinstance(node, ast.Call):
                    continue
                name = node.func.id if isinstance(node.func, ast.Name) else getattr(node.func, "attr", "")
                if name == "print" and path.name != "console.py":
                    printing.append(f"{path.relative_to(repo)}:{node.lineno}")
                if name == "getLogger" and path.name != "console.py":
                    arg = node.args[0] if node.args else None
                    if not (isinstance(arg, ast.Name) and arg.id == "__name__"):
                        badly_named.append(f"{path.relative_to(repo)}:{node.lineno}")
    assert printing == [] and badly_named == []
