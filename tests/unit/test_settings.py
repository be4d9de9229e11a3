"""The jobs' settings: one object from flags, environment and the repository file, in that order."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.settings import SETTINGS_FILE, Settings
from featurestore.readers.errors import ConfigurationError


def repo(tmp_path: Path, text: str) -> Path:
    (tmp_path / SETTINGS_FILE).write_text(text)
    return tmp_path


def test_a_flag_beats_the_environment_beats_the_file_beats_the_default(tmp_path: Path) -> None:
    folder = repo(tmp_path, 'redis_url = "redis://file:6379"\nwarehouse = "data/warehouse"\ndriver_memory = "4g"\n')
    env = {"FEATURESTORE_REDIS_URL": "redis://env:6379", "FEATURESTORE_WAREHOUSE": "/env/warehouse"}
    flags = {"redis_url": "redis://flag:6379", "warehouse": None}
    settings = Settings.load(flags, environ=env, repo=folder)
    assert settings.redis_url == "redis://flag:6379" and settings.source_of("redis_url") == "--redis-url"
    assert settings.warehouse == "/env/warehouse" and settings.source_of("warehouse") == "FEATURESTORE_WAREHOUSE"
    assert (
        settings.driver_memory == "4g"
        and settings.source_of("driver_memory") == f"{folder / SETTINGS_FILE}: driver_memory"
    )
    assert settings.spark_master is None and settings.source_of("spark_master") == "default"
    assert settings.repo == folder
    # a relative path in the file is relative to the file's folder
    assert Settings.load(environ={}, repo=folder).warehouse == str(folder / "data" / "warehouse")


def test_the_repository_comes_from_the_flag_else_the_environment_else_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "named").mkdir()
    named = repo(tmp_path / "named", 'warehouse = "/named"\n')
    monkeypatch.chdir(repo(tmp_path, 'warehouse = "/cwd"\n'))
    assert Settings.load(environ={}).warehouse == "/cwd"
    assert Settings.load(environ={"FEATURESTORE_REPO": str(named)}).warehouse == "/named"
    with pytest.raises(ConfigurationError, match=rf"--repo {tmp_path / 'nowhere'}: no such folder"):
        Settings.load(environ={}, repo=tmp_path / "nowhere")  # a named repository must have its file
    (tmp_path / SETTINGS_FILE).unlink()  # the working directory without a file is no error
    assert Settings.load(environ={}).warehouse is None


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "feature_log_retention_days = 'a week'",
            r"featurestore.toml: feature_log_retention_days = 'a week' is not a whole number",
        ),
        ("wherehouse = '/x'", r"featurestore.toml: unknown setting 'wherehouse'"),
        ("acl_password = 's3cret'", r"acl_password is a secret: set FEATURESTORE_ACL_PASSWORD"),
        (
            "redis_url = 'redis://:s3cret@host:6379'",
            r"redis_url holds a password: set FEATURESTORE_REDIS_PASSWORD \(or the whole URL in "
            r"FEATURESTORE_REDIS_URL\), never the settings file",
        ),
        ("warehouse = 3", r"featurestore.toml: warehouse = 3 is not a text"),
        ("warehouse = ", r"featurestore.toml: not valid TOML: Invalid value \(at line 1, column 13\)"),
    ],
)
def test_a_bad_value_in_the_file_names_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    with pytest.raises(ConfigurationError, match=message) as error:
        Settings.load(environ={}, repo=repo(tmp_path, text + "\n"))
    assert "s3cret" not in str(error.value)


def test_a_bad_value_in_the_environment_names_the_variable(tmp_path: Path) -> None:
    env = {"FEATURESTORE_FEATURE_LOG_RETENTION_DAYS": "a week"}
    with pytest.raises(
        ConfigurationError, match=r"FEATURESTORE_FEATURE_LOG_RETENTION_DAYS='a week' is not a whole number"
    ):
        Settings.load(environ=env, repo=repo(tmp_path, "feature_log_retention_days = 30\n"))
    assert Settings.load(environ={}, repo=tmp_path).feature_log_retention_days == 30


def test_the_command_line_reads_the_repository_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("FEATURESTORE_REDIS_URL", raising=False)
    folder = repo(tmp_path, 'redis_url = "redis://127.0.0.1:1"\n')  # nothing listens on port 1
    assert cli.main(["runs", "--repo", str(folder)]) == ExitCode.UNREACHABLE
    assert cli.main(["--repo", str(folder), "runs"]) == ExitCode.UNREACHABLE
    monkeypatch.setenv("FEATURESTORE_REPO", str(folder))
    assert cli.main(["runs"]) == ExitCode.UNREACHABLE
    repo(tmp_path, "feature_log_retention_days = 'a week'\n")
    assert cli.main(["runs"]) == ExitCode.USAGE  # a bad setting is a usage error, with the command's conventions
