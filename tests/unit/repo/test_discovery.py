"""Finding the feature repository: --repo > $FEATURESTORE_REPO > the working directory (no parent search)."""

from __future__ import annotations

from pathlib import Path

import pytest

from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import SETTINGS_FILE, find_repository, require_repository


def _repo(folder: Path) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / SETTINGS_FILE).write_text('name = "team"\n')
    return folder


def test_the_flag_wins_over_the_variable_and_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    flag, env, cwd = _repo(tmp_path / "flag"), _repo(tmp_path / "env"), _repo(tmp_path / "cwd")
    monkeypatch.chdir(cwd)
    environ = {"FEATURESTORE_REPO": str(env)}
    assert find_repository(flag, environ) == flag
    assert find_repository(None, environ) == env
    assert find_repository(None, {}) == cwd
    assert find_repository(flag / SETTINGS_FILE, {}) == flag  # the settings file itself names its folder


def test_a_relative_repo_is_taken_from_the_working_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo(tmp_path / "team")
    monkeypatch.chdir(tmp_path)
    assert find_repository("team", {}) == tmp_path / "team"


def test_no_parent_search_and_no_repository_is_none(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _repo(tmp_path)
    (tmp_path / "sub").mkdir()
    monkeypatch.chdir(tmp_path / "sub")
    assert find_repository(None, {}) is None
    with pytest.raises(ConfigurationError) as raised:
        require_repository(None, {})
    assert str(raised.value) == (
        f"no feature repository: {tmp_path / 'sub'} has no featurestore.toml; pass --repo DIR, set "
        "FEATURESTORE_REPO (or name the definitions with --catalog, $FEATURESTORE_CATALOG), or create one with: "
        "featurestore init DIR (featurestore init DIR --example fraud for the example)"
    )


def test_a_named_folder_without_settings_file_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigurationError) as raised:
        find_repository(tmp_path, {})
    assert str(raised.value) == f"--repo {tmp_path}: no featurestore.toml there"
    with pytest.raises(ConfigurationError) as raised:
        find_repository(None, {"FEATURESTORE_REPO": str(tmp_path / "nope")})
    assert str(raised.value) == f"FEATURESTORE_REPO={tmp_path / 'nope'}: no such folder"
