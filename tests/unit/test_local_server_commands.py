"""`featurestore redis|kafka`: real sub-command groups, one wording of "nothing running", the work dirs
remembered wherever a server was started, and the exit-code table in the top-level --help only (issue 25)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core import console
from featurestore.jobs.dev import started_servers


@pytest.fixture(autouse=True)
def _home(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    home = tmp_path / "home"
    monkeypatch.setenv("FEATURESTORE_HOME", str(home))
    yield home


def _help(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    with pytest.raises(SystemExit) as exited:
        cli.main([*argv, "--help"])
    assert exited.value.code == 0
    return capsys.readouterr().out


def test_each_action_has_its_own_options(capsys: pytest.CaptureFixture[str]) -> None:
    stop = _help(capsys, "kafka", "stop")
    assert "--workdir" in stop and "--all" in stop
    for produce_only in ("--rate", "--events", "--seconds", "--bad-share", "--topic", "--partitions", "--port"):
        assert produce_only not in stop, produce_only
    produce = _help(capsys, "kafka", "produce")
    assert "--rate" in produce and "--events" in produce and "--partitions" not in produce
    assert "--partitions" in _help(capsys, "kafka", "start")
    redis_stop = _help(capsys, "redis", "stop")
    assert "--cluster" not in redis_stop and "--engine" not in redis_stop and "--port" not in redis_stop
    redis_start = _help(capsys, "redis", "start")
    assert "--cluster" in redis_start and "--engine" in redis_start and "--port" in redis_start
    group = _help(capsys, "redis")
    assert all(action in group for action in ("start", "stop", "status", "url"))
    with pytest.raises(SystemExit) as exited:  # an option of another action is a usage error
        cli.main(["kafka", "stop", "--rate", "5"])
    assert exited.value.code == 2
    # -v/-q/--repo after the action too, and the old alias still parses
    args = cli.build_parser(only="kafka").parse_args(["kafka", "produce-demo", "-q", "--events", "3"])
    assert (args.action, args.quiet, args.events) == ("produce-demo", 1, 3)


def test_nothing_running_is_worded_and_streamed_the_same_by_redis_and_kafka(
    capsys: pytest.CaptureFixture[str], _home: Path
) -> None:
    for kind in ("redis", "kafka"):
        assert cli.main([kind, "stop"]) == 0
        out, err = capsys.readouterr()
        assert out == f"no server running from {_home / kind}\n" and err == "", (kind, out, err)
        assert cli.main([kind, "status"]) == 1
        out, err = capsys.readouterr()
        assert out == f"no server running from {_home / kind}\n" and err == "", (kind, out, err)
        assert cli.main([kind, "url"]) == 1  # URL=$(featurestore redis url): nothing on stdout then
        out, err = capsys.readouterr()
        assert out == "" and err == f"no server running from {_home / kind}\n", (kind, out, err)
        assert cli.main([kind, "stop", "--all"]) == 0
        assert capsys.readouterr().out == f"no server running from {_home / kind}\n"


def test_the_exit_code_table_is_in_the_top_level_help_only(capsys: pytest.CaptureFixture[str]) -> None:
    """Every sub-command's --help repeated the 12-line table; now they point at the one in `featurestore --help`."""
    table_line = "  130  interrupted (Ctrl-C)"
    assert table_line in _help(capsys)
    for command in cli.COMMANDS:
        text = _help(capsys, command)
        assert table_line not in text and console.EXIT_CODES_POINTER in text, command
    for nested in (("redis", "start"), ("kafka", "stop"), ("kafka", "produce")):
        text = _help(capsys, *nested)
        assert table_line not in text and console.EXIT_CODES_POINTER in text, nested


def test_work_dirs_are_remembered_and_the_stop_command_names_them(tmp_path: Path, _home: Path) -> None:
    elsewhere = tmp_path / "demo dir" / "redis"
    assert started_servers.stop_command("redis", _home / "redis") == "featurestore redis stop"
    assert started_servers.stop_command("redis", elsewhere) == f"featurestore redis stop --workdir '{elsewhere}'"
    assert started_servers.stop_command("kafka", _home / "kafka") == "featurestore kafka stop"
    assert started_servers.remembered("redis") == []
    started_servers.remember("redis", elsewhere)
    started_servers.remember("redis", elsewhere)  # once per work dir
    started_servers.remember("kafka", tmp_path / "k")
    assert started_servers.remembered("redis") == [elsewhere]
    assert started_servers.remembered("kafka") == [tmp_path / "k"]
    started_servers.forget("redis", elsewhere)
    assert started_servers.remembered("redis") == []


def test_every_long_command_reports_progress_through_steps() -> None:
    """Off a terminal only Steps writes the heartbeat line: each command that starts Spark (minutes of
    start-up, Ivy on a first run) and `kafka produce` must run its long part under one."""
    import importlib
    import inspect

    # where a command's Steps live when not in its own module
    delegated = {"materialize": "featurestore.jobs.batch.materialize"}
    long_commands = [name for name, (_, _, starts_spark) in cli.COMMANDS.items() if starts_spark] + ["kafka"]
    assert "demo" in long_commands and "stream" in long_commands
    for name in long_commands:
        module = importlib.import_module(delegated.get(name, cli.COMMANDS[name][0]))
        assert "Steps(" in inspect.getsource(module), name


def test_the_demo_says_how_to_read_its_redis(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 25: the README's reader quick start assumed localhost:6379 while the demo picks a free port."""
    from featurestore.jobs.core.settings import Settings
    from featurestore.jobs.dev import demo
    from featurestore.jobs.examples import example_module
    from featurestore.readers.repository import load_catalog

    module = example_module("fraud", "definitions")
    settings, catalog = Settings.load({"catalog": module}, environ={}), load_catalog(module)
    samples = {"user": [1, 2, 3], "merchant": ["m0001"]}
    kept = demo._Services(url="redis://127.0.0.1:24817", server=object())
    demo._how_to_read(kept, settings, catalog, samples, keep=True)
    assert capsys.readouterr().out.splitlines() == [
        "read it from Python (paste into a shell; the README's reader quick start):",
        "  export FEATURESTORE_REDIS_URL=redis://127.0.0.1:24817",
        f"  export FEATURESTORE_CATALOG={module}",
        "  python -c 'import os; from featurestore.readers import FeatureReader; "
        'reader = FeatureReader.connect(os.environ["FEATURESTORE_REDIS_URL"]); '
        'print(reader.get(1, "user_transactions").to_dict())\'',
    ]
    demo._how_to_read(kept, settings, catalog, samples, keep=False)  # its own server was stopped
    assert "featurestore demo --keep" in capsys.readouterr().out
    # --redis-url with a password: never printed, the line says which URL to export
    given = demo._Services(url="redis://default:s3cr3t@10.0.0.5:6379")
    demo._how_to_read(given, settings, catalog, samples, keep=False)
    out = capsys.readouterr().out
    assert "s3cr3t" not in out and "<the --redis-url you gave, with its password>" in out


def test_kafka_stop_names_a_broker_started_elsewhere(
    tmp_path: Path, _home: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """The same finding as for Redis (tests/integration/dev), without a JVM: a process whose command line
    names its work dir stands for the broker (LocalKafka.alive checks exactly that), stopped by SIGTERM."""
    import json
    import subprocess
    import sys

    from featurestore.jobs.dev import local_kafka

    workdir = tmp_path / "demo" / "kafka"
    workdir.mkdir(parents=True)
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", str(workdir)])
    try:
        state = local_kafka.LocalKafka(str(workdir), "127.0.0.1", 40123, 40124, process.pid)
        (workdir / "state.json").write_text(json.dumps(state.__dict__))
        started_servers.remember("kafka", workdir)
        assert cli.main(["kafka", "stop"]) == 0
        out, err = capsys.readouterr()
        assert out == f"no server running from {_home / 'kafka'}\n"
        assert f"runs at 127.0.0.1:40123: featurestore kafka stop --workdir {workdir}" in err
        assert cli.main(["kafka", "url"]) == 1
        assert f"featurestore kafka url --workdir {workdir}" in capsys.readouterr().err
        assert cli.main(["kafka", "stop", "--workdir", str(workdir)]) == 0  # the command it named
        assert capsys.readouterr().out == "stopped\n"
        assert process.wait(10) is not None and started_servers.remembered("kafka") == []
    finally:
        process.kill()
        process.wait()
