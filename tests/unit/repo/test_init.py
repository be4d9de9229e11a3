"""`featurestore init`: the skeleton (or an example) in a new folder, never over existing files; `plan` passes on it."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from featurestore.jobs import cli
from featurestore.jobs.core.console import ExitCode
from featurestore.jobs.core.settings import Settings
from featurestore.jobs.repo.init_command import init_repository
from featurestore.jobs.repo.plan_command import plan_lines
from featurestore.readers import load_catalog
from featurestore.readers.errors import ConfigurationError

SKELETON_FILES = (
    ".gitignore",
    "README.md",
    "dags/featurestore_dag.py",
    "definitions.py",
    "expectations/customer_orders_30d.json",
    "featurestore.toml",
)


@pytest.fixture(autouse=True)
def _clean(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    for name in [n for n in os.environ if n.startswith("FEATURESTORE_")]:
        monkeypatch.delenv(name)
    before = set(sys.modules)
    yield
    for module in set(sys.modules) - before:
        if module.startswith("featurestore_repo_"):
            del sys.modules[module]


def _files(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def test_init_writes_the_skeleton_with_its_name_and_plan_passes_writing_nothing(tmp_path: Path) -> None:
    made = init_repository(tmp_path / "recs-team")
    assert made.name == "recs_team" and made.files == SKELETON_FILES
    assert 'name = "recs_team"' in (made.folder / "featurestore.toml").read_text()
    assert ".featurestore/" in (made.folder / ".gitignore").read_text().splitlines()
    catalog = load_catalog(made.folder)
    batch, stream = catalog.view("customer_orders_30d"), catalog.view("customer_activity")
    assert batch.transform is not None and batch.source == "orders"
    assert stream.stream is not None and stream.stream.topic == "orders"
    lines = plan_lines(Settings.load(environ={}, repo=made.folder))
    assert lines[0] == f"repository recs_team  {made.folder / 'featurestore.toml'}"
    assert any(line.startswith("batch  customer_orders_30d") and "suite 3 expectations" in line for line in lines)
    assert any("orders_1h" in line and "sliding 1h every 5m" in line and "ttl 1h2m (derived)" in line for line in lines)
    assert lines[-1] == "ok: nothing was written (plan --connect also checks Redis and the warehouse)"
    assert _files(made.folder) == list(SKELETON_FILES)  # no __pycache__, no .featurestore/


def test_init_refuses_a_folder_that_is_not_empty_and_names_it(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(ConfigurationError) as raised:
        init_repository(tmp_path)
    assert str(raised.value) == f"{tmp_path} exists and is not empty: init never overwrites; pick a new folder"
    assert _files(tmp_path) == ["notes.txt"]
    init_repository(tmp_path / "empty", name="chosen")  # an empty folder is fine
    with pytest.raises(ConfigurationError, match="--name 'Bad' is not a valid name"):
        init_repository(tmp_path / "other", name="Bad")


def test_an_unknown_example_lists_the_available_ones(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError, match=r"--example nope: no such example \(available: "):
        init_repository(tmp_path / "x", example="nope")
    assert not (tmp_path / "x").exists()


def test_the_commands_init_then_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    target = tmp_path / "team"
    assert cli.main(["init", str(target), "--name", "team"]) == ExitCode.OK
    out = capsys.readouterr().out
    assert f"created feature repository 'team' in {target}:" in out and "  definitions.py" in out
    assert out.rstrip().endswith(f"next: cd {target} && featurestore plan")
    assert cli.main(["init", str(target)]) == ExitCode.USAGE
    monkeypatch.chdir(target)
    assert cli.main(["plan"]) == ExitCode.OK
    assert cli.main(["validate", "--repo", str(target)]) == ExitCode.OK
    assert cli.main(["--repo", str(target), "plan"]) == ExitCode.OK
    monkeypatch.chdir(tmp_path)  # every command finds it by --repo, also after a command's action
    capsys.readouterr()
    assert cli.main(["catalog", "export", "--repo", str(target)]) == ExitCode.OK
    assert '"customer_orders_30d"' in capsys.readouterr().out
    monkeypatch.chdir(target)
    # a bad setting: exit 2 and the error names the file and the key
    settings_file = target / "featurestore.toml"
    settings_file.write_text(settings_file.read_text().replace("redis_url =", "redis_ulr ="))
    assert cli.main(["plan"]) == ExitCode.USAGE
    err = capsys.readouterr().err
    assert f"{settings_file}: unknown setting 'redis_ulr' (did you mean 'redis_url'?)" in err


def test_plan_outside_a_repository_says_how_to_get_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert cli.main(["plan"]) == ExitCode.USAGE
    assert "no feature repository: " in capsys.readouterr().err


def test_the_skeleton_ships_as_package_data() -> None:
    """setuptools' package-data globs name every skeleton file (a file they miss would not be in the wheel)."""
    import fnmatch
    import tomllib

    repo = Path(__file__).resolve().parents[3]
    globs = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "featurestore.jobs.repo"
    ]
    skeleton = repo / "jobs" / "featurestore" / "jobs" / "repo" / "skeleton"
    shipped = [
        str(p.relative_to(skeleton.parent)) for p in skeleton.rglob("*") if p.is_file() and "__pycache__" not in p.parts
    ]
    assert shipped and all(any(fnmatch.fnmatch(f, g) and f.count("/") == g.count("/") for g in globs) for f in shipped)


def test_listing_examples_works_without_any(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["init", "--list-examples"]) == ExitCode.OK
    assert capsys.readouterr().out.strip()
