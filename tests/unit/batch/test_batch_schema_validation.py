"""Schema derivation, loading GX suites and the collapse guard, without Spark (the cast, row checks and
suites on Spark frames: tests/spark/batch/test_batch_schema_validation.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.jobs import spark_types
from featurestore.jobs.batch import validation
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.examples.fraud.definitions import catalog as example
from featurestore.readers.errors import ConfigurationError
from tests.helpers.batch import ITEM_STATS as VIEW
from tests.helpers.batch import write_suite


def test_view_schema_is_derived_from_the_definitions() -> None:
    assert spark_types.view_schema(VIEW).simpleString() == (
        "struct<item_id:bigint,clicks:bigint,ctr:double,score:float,title:string,active:boolean,embedding:array<float>>"
    )
    merchant = example.view("merchant_risk")
    assert spark_types.view_schema(merchant).fields[0].dataType.simpleString() == "string"


@pytest.mark.slow  # importing Great Expectations takes 6-8 s: `-m 'not slow'` skips it
def test_every_example_suite_loads_and_builds_every_expectation() -> None:
    import great_expectations as gx

    for view in example.batch_views:
        suite = validation.load_suite(validation.suite_path(view), view)
        built = gx.ExpectationSuite(name=view.name, expectations=suite["expectations"])
        assert len(built.expectations) == len(suite["expectations"]) > 3, view.name
        columns = {e["kwargs"].get("column") for e in suite["expectations"]} - {None}
        assert columns <= {view.entity.join_key, *view.feature_names}, view.name


def test_malformed_suites_are_refused_naming_the_view(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match="view 'item_stats': expectation suite .* not found"):
        validation.load_suite(tmp_path / "missing.json", VIEW)
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ConfigurationError, match="not valid JSON"):
        validation.load_suite(tmp_path / "bad.json", VIEW)
    path = write_suite(tmp_path, [{"kwargs": {}}])
    with pytest.raises(ConfigurationError, match="expectation #1 has no 'type'"):
        validation.load_suite(path, VIEW)


def test_suites_come_from_the_flag_else_the_environment_else_the_repository(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    view = example.view("user_profile")
    monkeypatch.setenv(validation.EXPECTATIONS_ENV_VAR, str(tmp_path / "from_env"))
    from_env = Settings.from_env().expectations_dir  # the command line's settings (flag > environment > file)
    assert str(validation.suite_path(view, from_env)) == str(tmp_path / "from_env" / "user_profile.json")
    assert str(validation.suite_path(view)) == str(tmp_path / "from_env" / "user_profile.json")  # the Python API
    assert str(validation.suite_path(view, tmp_path / "flag")) == str(tmp_path / "flag" / "user_profile.json")
    monkeypatch.delenv(validation.EXPECTATIONS_ENV_VAR)
    repo = tmp_path / "repo"
    (repo / "expectations").mkdir(parents=True)
    (repo / "featurestore.toml").write_text('name = "shop"\n')
    monkeypatch.chdir(repo)
    assert str(validation.suite_path(view)) == str(repo / "expectations" / "user_profile.json")


def test_without_a_repository_or_a_folder_there_are_no_suites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No default folder: the example's suites are never picked for a user's views."""
    monkeypatch.delenv(validation.EXPECTATIONS_ENV_VAR, raising=False)
    monkeypatch.delenv("FEATURESTORE_REPO", raising=False)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError) as raised:
        validation.suite_path(VIEW)
    assert str(raised.value) == (
        "view 'item_stats': no folder of expectation suites: pass --expectations DIR, set "
        "FEATURESTORE_EXPECTATIONS=DIR or expectations_dir in featurestore.toml (a repository's expectations/ "
        "is the default: featurestore init DIR makes one)"
    )
    with pytest.raises(ConfigurationError, match=f"{tmp_path}/item_stats.json' not found"):
        validation.load_suite(validation.suite_path(VIEW, tmp_path), VIEW)


def test_collapse_guard() -> None:
    previous = {"rows": 1000, "rows_read": 50_000}
    assert validation.collapse_failures({"rows": 600, "rows_read": 30_000}, previous, 0.5) == []
    failures = validation.collapse_failures({"rows": 400, "rows_read": 50_000}, previous, 0.5, "run-1 (ds 2024-05-30)")
    assert [str(f) for f in failures] == [
        "featurestore:row_count_not_collapsed: rows fell to 400 from 1000 in the last successful run "
        "run-1 (ds 2024-05-30) (40%; the guard needs at least 50%, --min-row-ratio)"
    ]
    assert validation.collapse_failures({"rows": 1, "rows_read": 1}, previous, 0.0) == []  # disabled
    assert validation.collapse_failures({"rows": 1, "rows_read": 1}, None, 0.5) == []  # first run
    with pytest.raises(ConfigurationError, match="min-row-ratio"):
        validation.collapse_failures({"rows": 1}, previous, 1.5)
