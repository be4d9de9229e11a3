"""featurestore.toml: each key flag > environment > file > default, paths relative to the file, errors verbatim."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.jobs.core.settings import SPECS, DagSettings, Settings
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import SETTINGS_FILE

# one valid file value per key (a path key is relative to the file's folder)
FILE_VALUES: dict[str, str] = {
    "redis_url": '"redis://file:6379"',
    "warehouse": '"data/wh"',
    "expectations_dir": '"suites"',
    "feature_log": '"data/log"',
    "feature_log_retention_days": "30",
    "catalog": '"features.py"',
    "checkpoints": '"data/ckpt"',
    "kafka_bootstrap": '"file:9092"',
    "spark_jars": '"/jars/a.jar"',
    "spark_master": '"local[1]"',
    "driver_memory": '"3g"',
    "metrics_textfile_dir": '"metrics"',
    "pushgateway_url": '"http://file:9091"',
}
ENV_VALUES = {"feature_log_retention_days": "40", "spark_conf": '{"spark.x": "env"}'}


def write(folder: Path, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_FILE).write_text(text)
    return folder


def test_every_key_takes_the_flag_then_the_environment_then_the_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "team", "\n".join(f"{k} = {v}" for k, v in FILE_VALUES.items()) + "\n")
    in_file = Settings.load(environ={}, repo=folder)
    for spec in SPECS:
        if spec.name not in FILE_VALUES:
            continue
        value = getattr(in_file, spec.name)
        assert in_file.source_of(spec.name) == f"{folder / SETTINGS_FILE}: {spec.name}", spec.name
        if spec.path:
            assert value == str(folder / FILE_VALUES[spec.name].strip('"')), spec.name
        assert spec.env is not None
        from_env = ENV_VALUES.get(spec.name, "/env/value")
        by_env = Settings.load(environ={spec.env: from_env}, repo=folder)
        assert by_env.source_of(spec.name) == spec.env, spec.name
        if spec.flag:
            flagged = Settings.load({spec.name: "/flag/value"}, environ={spec.env: from_env}, repo=folder)
            assert getattr(flagged, spec.name) == "/flag/value" and flagged.source_of(spec.name) == spec.flag


def test_in_a_repository_the_defaults_are_its_folders(tmp_path: Path) -> None:
    folder = write(tmp_path / "recs", "")
    settings = Settings.load(environ={}, repo=folder)
    assert settings.name == "recs" and settings.catalog == str(folder)
    assert settings.expectations_dir == str(folder / "expectations")
    assert settings.warehouse == str(folder / ".featurestore" / "warehouse")
    assert settings.checkpoints == str(folder / ".featurestore" / "checkpoints")
    assert settings.source_of("warehouse") == "default (recs/)"
    assert Settings.load(environ={}, repo=write(tmp_path / "x", 'catalog = "team.defs"\n')).catalog == "team.defs"


def test_spark_conf_is_a_table_in_the_file_and_json_in_the_environment(tmp_path: Path) -> None:
    folder = write(tmp_path, '[spark_conf]\n"spark.sql.shuffle.partitions" = "4"\n"spark.ui.enabled" = false\n')
    assert dict(Settings.load(environ={}, repo=folder).spark_conf) == {
        "spark.sql.shuffle.partitions": "4",
        "spark.ui.enabled": "false",
    }
    env = {"FEATURESTORE_SPARK_CONF": '{"spark.sql.shuffle.partitions": 8}'}
    assert dict(Settings.load(environ=env, repo=folder).spark_conf) == {"spark.sql.shuffle.partitions": "8"}
    with pytest.raises(ConfigurationError, match=r"FEATURESTORE_SPARK_CONF='\[1\]' is not a table"):
        Settings.load(environ={"FEATURESTORE_SPARK_CONF": "[1]"}, repo=folder)


def test_the_password_comes_from_the_environment_and_joins_the_url(tmp_path: Path) -> None:
    folder = write(tmp_path, 'redis_url = "redis://app@db:6379/0"\n')
    settings = Settings.load(environ={"FEATURESTORE_REDIS_PASSWORD": "p@ss"}, repo=folder)
    assert settings.redis_url == "redis://app:p%40ss@db:6379/0"
    assert "p@ss" not in repr(settings) and "p%40ss" not in repr(settings)
    whole = {"FEATURESTORE_REDIS_URL": "redis://other:6379", "FEATURESTORE_REDIS_PASSWORD": "x"}
    assert Settings.load(environ=whole, repo=folder).redis_url == "redis://other:6379"  # set as a whole


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("redis = 'x'", "{file}: unknown setting 'redis' (did you mean 'redis_url'?)"),
        (
            "feature_log_retention_days = 'a week'",
            "{file}: feature_log_retention_days = 'a week' is not a whole number",
        ),
        (
            "redis_url = 'redis://:s3cret@host:6379'",
            "{file}: redis_url holds a password: set FEATURESTORE_REDIS_PASSWORD (or the whole URL in "
            "FEATURESTORE_REDIS_URL), never the settings file",
        ),
        (
            "redis_password = 's3cret'",
            "{file}: redis_password is a secret: set FEATURESTORE_REDIS_PASSWORD, never the settings file",
        ),
        (
            "name = 'Bad Name'",
            "{file}: name = 'Bad Name' is not a valid name (a lowercase letter, then up to 40 "
            "lowercase letters, digits or '_')",
        ),
        ("warehouse = 3", "{file}: warehouse = 3 is not a text"),
        (
            "a = 1\nb c = 2",
            "{file}: not valid TOML: Expected '=' after a key in a key/value pair (at line 2, column 3)",
        ),
    ],
)
def test_errors_name_the_file_and_the_key(tmp_path: Path, text: str, message: str) -> None:
    folder = write(tmp_path, text + "\n")
    with pytest.raises(ConfigurationError) as raised:
        Settings.load(environ={}, repo=folder)
    assert str(raised.value) == message.format(file=folder / SETTINGS_FILE)
    assert "s3cret" not in str(raised.value)


def test_the_dag_reads_its_keys_from_the_same_file(tmp_path: Path) -> None:
    folder = write(tmp_path / "recs", 'name = "recs"\nschedule = "0 3 * * *"\nretries = 5\nwarehouse = "wh"\n')
    dag = DagSettings.load(repo=folder, environ={})
    assert (dag.dag_id, dag.schedule, dag.retries) == ("featurestore_recs", "0 3 * * *", 5)
    assert dag.repo == str(folder) and dag.warehouse == str(folder / "wh") and dag.catalog == str(folder)
    assert DagSettings.load(repo=folder, environ={"FEATURESTORE_SCHEDULE": "@daily"}).schedule == "@daily"
    (folder / SETTINGS_FILE).write_text('name = "recs"\ndag_id = "recs_nightly"\n')
    assert DagSettings.load(repo=folder, environ={}).dag_id == "recs_nightly"
    with pytest.raises(ConfigurationError, match=r"featurestore.toml: retries = 'x' is not a whole number"):
        DagSettings.load(repo=write(tmp_path / "bad", "retries = 'x'\n"), environ={})
