"""The layout: one import root in two source roots, curated public APIs, no forbidden imports."""

from __future__ import annotations

import ast
import importlib
import itertools
import tomllib
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
ROOTS = {"featurestore.readers": REPO / "readers", "featurestore.jobs": REPO / "jobs"}
PRODUCTION = ("core", "cli", "batch", "write", "streaming", "ops", "deploy", "training", "ui")
# The layers, bottom to top (docs/layout.md, "Layers"): a module imports only from its own group or
# from a lower layer, at module level or inside a function alike; the groups of one layer (streaming,
# training, deploy) do not import each other.  A module is in the group of its longest matching prefix.
LAYERS: tuple[dict[str, tuple[str, ...]], ...] = (
    {"readers": ("featurestore.readers",)},
    {
        "core": (
            "featurestore.jobs.core",
            "featurestore.jobs.spark",
            "featurestore.jobs.spark_types",
            "featurestore.jobs.jvm",
            "featurestore.jobs.maven",
        )
    },
    {"write": ("featurestore.jobs.write",)},
    {"batch": ("featurestore.jobs.batch",)},
    {
        "streaming": ("featurestore.jobs.streaming",),
        "training": ("featurestore.jobs.training",),
        "deploy": ("featurestore.jobs.deploy",),
    },
    # the Feast online store reuses the batch and streaming writers' command builders (docs/feast.md)
    {"ops": ("featurestore.jobs.ops",), "repo": ("featurestore.jobs.repo",), "feast": ("featurestore.feast",)},
    {"ui": ("featurestore.jobs.ui",)},  # the web console: on ops (status, inspect), below the CLI
    {"cli": ("featurestore.jobs.cli",)},
    {
        "entries": (
            "featurestore.jobs.materialize_job",
            "featurestore.jobs.audit_job",
            "featurestore.jobs.stream_job",
        ),
        "airflow_dag": ("featurestore.jobs.airflow_dag",),
    },
    # the top: the dev tooling and the example repositories it runs (generate, kafka produce, the demo);
    # an example's DAG file uses the DAG factory like any repository's
    {"dev": ("featurestore.jobs.dev", "featurestore.jobs.examples")},
    # the files `featurestore init` copies: a user's repository, on top of everything
    {"repo_skeleton": ("featurestore.jobs.repo.skeleton",)},
)


def test_the_package_list_matches_the_folders() -> None:
    config = tomllib.loads((REPO / "pyproject.toml").read_text())["tool"]["setuptools"]
    found = sorted(
        ".".join(init.parent.relative_to(root).parts) for root in ROOTS.values() for init in root.rglob("__init__.py")
    )
    assert sorted(config["packages"]) == found
    assert not (REPO / "readers" / "__init__.py").exists() and not (REPO / "jobs" / "__init__.py").exists()
    assert not (REPO / "readers" / "featurestore" / "__init__.py").exists()  # a namespace package


def test_bare_source_roots_are_not_importable_as_our_packages() -> None:
    with pytest.raises(ImportError):
        importlib.import_module("readers.errors")
    with pytest.raises(ImportError):
        importlib.import_module("jobs.cli")


@pytest.mark.parametrize(
    "module",
    ["featurestore.readers", "featurestore.readers.wire", "featurestore.jobs.streaming", "featurestore.jobs.write"],
)
def test_exported_members_are_exactly_the_public_api(module: str) -> None:
    """httpx's habit: everything public is in ``__all__``, and ``__all__`` names only real things."""
    package = importlib.import_module(module)
    exported = {
        name
        for name, value in vars(package).items()
        if not name.startswith("_") and getattr(value, "__module__", "").startswith("featurestore.")
    }
    assert exported <= set(package.__all__), "public but not exported"
    assert all(hasattr(package, name) for name in package.__all__), "exported but missing"
    assert list(package.__all__) == sorted(package.__all__, key=lambda n: (not n.isupper(), n))


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return names


def test_production_code_imports_nothing_from_dev() -> None:
    jobs = REPO / "jobs" / "featurestore" / "jobs"
    files = [p for sub in PRODUCTION for p in (jobs / sub).rglob("*.py")]
    files += [
        jobs / "spark.py",
        jobs / "materialize_job.py",
        jobs / "audit_job.py",
        jobs / "airflow_dag.py",
    ]
    files += [jobs / "stream_job.py", jobs / "maven.py"]
    dev = ("featurestore.jobs.dev", "featurestore.jobs.examples")
    offenders = {str(p.relative_to(REPO)): sorted(m for m in _imports(p) if m.startswith(dev)) for p in files}
    # the CLI dispatches to dev commands by module *name* (a string), importing them only when run
    assert {k: v for k, v in offenders.items() if v} == {}


def test_the_reader_never_imports_the_jobs() -> None:
    readers = REPO / "readers" / "featurestore" / "readers"
    for path in readers.rglob("*.py"):
        assert not any(m.startswith("featurestore.jobs") for m in _imports(path)), path


def test_only_the_wire_touches_sockets() -> None:
    """Every Redis byte goes through featurestore.readers.wire: no other module does socket I/O."""
    roots = [REPO / "readers" / "featurestore" / "readers", REPO / "jobs" / "featurestore" / "jobs"]
    offenders = []
    for root in roots:
        for path in root.rglob("*.py"):
            if "wire" in path.parts or "dev" in path.parts:
                continue
            text = path.read_text()
            for needle in ("._sock", "recv_into(", ".sendall(", "nodes_manager", "slots_cache", "send_packed_command"):
                if needle in text:
                    offenders.append(f"{path.relative_to(REPO)}: {needle}")
    assert offenders == []


def _module_name(path: Path) -> str:
    for root in ROOTS.values():
        if path.is_relative_to(root):
            parts = path.relative_to(root).with_suffix("").parts
            return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
    raise AssertionError(path)


def _import_graph() -> dict[str, set[str]]:
    """Every module of ours -> the modules of ours it imports: at module level, inside functions and
    under ``TYPE_CHECKING`` alike (a lazy import hides a dependency from the import system, not from
    the design).  ``from package import module`` counts as an import of the module."""
    modules = {_module_name(path): path for root in ROOTS.values() for path in root.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for name, path in modules.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    anchor = package.rsplit(".", node.level - 1)[0] if node.level > 1 else package
                    base = f"{anchor}.{base}" if base else anchor
                for alias in node.names:
                    edges.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
            elif isinstance(node, ast.Import):
                edges.update(alias.name for alias in node.names)
        graph[name] = {e for e in edges if e in modules and e != name}
    return graph


def _layer_of(module: str) -> tuple[int, str] | None:
    """(layer index, group) of a module: its longest matching prefix in :data:`LAYERS`."""
    best: tuple[int, int, str] | None = None
    for index, groups in enumerate(LAYERS):
        for group, prefixes in groups.items():
            for prefix in prefixes:
                if (module == prefix or module.startswith(prefix + ".")) and (best is None or len(prefix) > best[0]):
                    best = (len(prefix), index, group)
    return None if best is None else (best[1], best[2])


def test_every_module_has_a_layer() -> None:
    unplaced = sorted(m for m in _import_graph() if _layer_of(m) is None and m != "featurestore.jobs")
    assert unplaced == [], "add these modules to LAYERS (and to docs/layout.md)"


def test_no_module_imports_a_module_of_a_higher_layer() -> None:
    """Counting function-level imports: a lazy import for a heavy dependency is fine, but between
    our modules it must point down (or stay in the module's own group)."""
    offenders = []
    for module, targets in sorted(_import_graph().items()):
        here = _layer_of(module)
        for target in sorted(targets):
            there = _layer_of(target)
            if here is None or there is None or there[1] == here[1]:
                continue
            if there[0] > here[0]:
                offenders.append(f"{module} ({here[1]}) imports {target} ({there[1]}), a higher layer")
            elif there[0] == here[0]:
                offenders.append(f"{module} ({here[1]}) imports {target} ({there[1]}), a sibling of its layer")
    assert offenders == []


def test_the_layers_hold_the_known_edges() -> None:
    """The check above is not vacuous: the layer order is what the code does."""
    graph = _import_graph()
    assert "featurestore.jobs.core.run_records" in graph["featurestore.jobs.core.job_metrics"]
    assert "featurestore.jobs.batch.materialize" in graph["featurestore.jobs.cli.materialize"]
    assert _layer_of("featurestore.jobs.spark") == (1, "core")
    assert _layer_of("featurestore.jobs.cli.runner")[0] > _layer_of("featurestore.jobs.ops.status")[0]  # type: ignore[index]


def test_no_import_cycles_between_modules() -> None:
    """Function-level imports count too: a lazy import may defer loading, never hide a circle."""
    graph = _import_graph()
    # a package's __init__ importing its own submodules is not a cycle worth reporting
    seen: dict[str, int] = {}

    def visit(node: str, stack: list[str]) -> None:
        seen[node] = 1
        for nxt in sorted(graph[node]):
            if nxt.startswith(node + "."):
                continue
            if seen.get(nxt) == 1:
                cycle = [*stack[stack.index(nxt) :], nxt] if nxt in stack else [node, nxt]
                if not all(b.startswith(a + ".") or a.startswith(b + ".") for a, b in itertools.pairwise(cycle)):
                    raise AssertionError("import cycle: " + " -> ".join(cycle))
            elif nxt not in seen:
                visit(nxt, [*stack, nxt])
        seen[node] = 2

    for name in sorted(graph):
        if name not in seen:
            visit(name, [name])


def test_no_module_next_to_the_job_file_shadows_an_installed_top_level_module() -> None:
    """spark-submit runs ``materialize_job.py`` as a script, so its folder is ``sys.path[0]``: a
    sibling named like an installed top-level module (``packaging``, say) hides that module from
    the driver, and Great Expectations then fails to import ``packaging.version``."""
    from importlib.metadata import packages_distributions

    folder = REPO / "jobs" / "featurestore" / "jobs"
    siblings = {p.stem for p in folder.iterdir() if p.suffix == ".py" or (p / "__init__.py").is_file()}
    assert "materialize_job" in siblings and "write" in siblings
    assert sorted(siblings & set(packages_distributions())) == []
