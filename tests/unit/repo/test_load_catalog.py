"""Loading a repository's definitions: folder, .py path, dotted module; relative imports; clear errors."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from featurestore.readers import Catalog, CatalogError, load_catalog
from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import SETTINGS_FILE

DEFINITIONS = """\
from featurestore.readers import Catalog, Entity, Feature, FeatureView

from .transforms import spend

customer = Entity("customer", "customer_id")
catalog = Catalog(views=(
    FeatureView("{view}", customer, (Feature("spend_7d", "float64"),), ttl=86400, transform=spend),
))
"""
TRANSFORMS = """\
from featurestore.readers import batch_transform


@batch_transform(sources=["orders"], lookback_days={"orders": 7})
def spend(inputs, as_of):
    return inputs["orders"]
"""


def make_repo(folder: Path, name: str, view: str = "customer_spend", definitions: str | None = None) -> Path:
    folder.mkdir(parents=True)
    (folder / SETTINGS_FILE).write_text(f'name = "{name}"\n')
    (folder / "definitions.py").write_text(definitions if definitions is not None else DEFINITIONS.format(view=view))
    (folder / "transforms.py").write_text(TRANSFORMS)
    return folder


@pytest.fixture(autouse=True)
def _clean_modules() -> object:
    before = set(sys.modules)
    yield None
    for module in set(sys.modules) - before:
        if module.startswith("featurestore_repo_"):
            del sys.modules[module]


def test_a_folder_a_py_path_and_the_discovered_repository_load_the_same_views(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = make_repo(tmp_path / "team", "team_a")
    by_folder = load_catalog(repo)
    assert by_folder.view("customer_spend").source == "orders"
    transform = by_folder.view("customer_spend").transform
    assert transform is not None and transform.sources == ("orders",)
    assert transform.fn.__module__ == "featurestore_repo_team_a.transforms"  # the relative import worked
    assert load_catalog(str(repo / "definitions.py")) is by_folder
    monkeypatch.chdir(repo)
    monkeypatch.delenv("FEATURESTORE_CATALOG", raising=False)
    monkeypatch.delenv("FEATURESTORE_REPO", raising=False)
    assert load_catalog() is by_folder
    assert load_catalog(environ={"FEATURESTORE_REPO": str(repo)}) is by_folder
    assert load_catalog(by_folder) is by_folder
    from featurestore.readers import FeatureReader

    assert FeatureReader("redis://127.0.0.1:1").catalog is by_folder  # the reader finds the same repository


def test_two_repositories_load_side_by_side_and_the_same_name_twice_is_refused(tmp_path: Path) -> None:
    one = load_catalog(make_repo(tmp_path / "one", "team_one", view="view_one"))
    two = load_catalog(make_repo(tmp_path / "two", "team_two", view="view_two"))
    assert [v.name for v in one.views] == ["view_one"] and [v.name for v in two.views] == ["view_two"]
    clash = make_repo(tmp_path / "three", "team_one", view="view_three")
    with pytest.raises(CatalogError) as raised:
        load_catalog(clash)
    assert str(raised.value) == (
        f"two repositories are named 'team_one': {tmp_path / 'one'} is loaded already and {clash} has the same "
        "name; rename one (name = ... in its featurestore.toml)"
    )


def test_the_settings_file_names_the_catalogue(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "named", "named")
    (repo / "definitions.py").rename(repo / "features.py")
    (repo / SETTINGS_FILE).write_text('name = "named"\ncatalog = "features.py"\n')
    assert isinstance(load_catalog(repo), Catalog)


def test_a_syntax_error_names_file_and_line(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "broken", "broken", definitions="x = 1\ncatalog = (\n")
    with pytest.raises(CatalogError) as raised:
        load_catalog(repo)
    assert str(raised.value).startswith(f"{repo / 'definitions.py'}:2: ")


def test_a_definition_error_names_file_and_line(tmp_path: Path) -> None:
    bad = DEFINITIONS.format(view="customer_spend").replace("ttl=86400", "ttl=-1")
    repo = make_repo(tmp_path / "bad", "bad", definitions=bad)
    with pytest.raises(CatalogError) as raised:
        load_catalog(repo)
    line = bad.splitlines().index(next(x for x in bad.splitlines() if "ttl=-1" in x)) + 1
    assert str(raised.value) == (
        f"{repo / 'definitions.py'}:{line}: view 'customer_spend' ttl must be a whole number of seconds >= 1, got -1"
    )
    # fixed in place: the next load sees the fix (the failed module was not kept)
    (repo / "definitions.py").write_text(DEFINITIONS.format(view="customer_spend"))
    assert load_catalog(repo).view("customer_spend")


def test_no_catalog_object_and_missing_file_are_clear(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "empty", "empty", definitions="x = 1\n")
    with pytest.raises(CatalogError, match="must define `catalog = Catalog"):
        load_catalog(repo)
    with pytest.raises(CatalogError, match="catalogue file .*nope.py does not exist"):
        load_catalog(str(tmp_path / "nope.py"))


def test_loading_a_repository_imports_no_heavy_module(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "light", "light")
    code = textwrap.dedent(
        f"""
        import sys
        from featurestore.readers import load_catalog
        load_catalog({str(repo)!r})
        heavy = [m for m in ("pyspark", "great_expectations", "airflow") if m in sys.modules]
        assert not heavy, heavy
        """
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_outside_a_repository_there_is_no_default_catalogue(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """No example stands in for a team's definitions: the error says how to name or create them."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ConfigurationError, match=r"no feature repository: .* featurestore init DIR"):
        load_catalog(None, environ={})
    environ = {"FEATURESTORE_CATALOG": "featurestore.jobs.examples.fraud.definitions"}
    assert "user_profile" in [view.name for view in load_catalog(None, environ=environ).views]
