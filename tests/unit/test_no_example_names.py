"""Production code never names an example: no example view or feature name, topic or table in it.

The examples (``featurestore.jobs.examples``) are repositories like a team's own; production
modules (everything under ``readers/featurestore/readers/`` and ``jobs/featurestore/jobs/`` but
``dev/`` and ``examples/``) must work for any catalogue, so their full text, docstrings and
comments included, holds none of the examples' names (docs/examples.md).
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

from featurestore.jobs.examples import EXAMPLES, example_module
from featurestore.readers import Catalog, load_catalog

REPO = Path(__file__).resolve().parents[2]
PRODUCTION_ROOTS = (
    REPO / "readers" / "featurestore" / "readers",
    REPO / "jobs" / "featurestore" / "jobs",
    REPO / "jobs" / "featurestore" / "feast",
)
# dev tooling runs the examples; the examples and the skeleton `featurestore init` copies are repositories
EXEMPT = tuple(REPO / "jobs" / "featurestore" / "jobs" / part for part in ("dev", "examples", "repo/skeleton"))

# Files that may still name an example (file, names): none; the list must only shrink.
ALLOWED: dict[str, set[str]] = {}
ALLOWED_CONSTANTS: set[str] = set()


def _catalogs() -> dict[str, Catalog]:
    return {name: load_catalog(example_module(name, "definitions")) for name in EXAMPLES}


def _names(catalogs: dict[str, Catalog]) -> set[str]:
    names: set[str] = set()
    for catalog in catalogs.values():
        for view in catalog.views:
            names.add(view.name)
            names.update(view.feature_names)
    return names


def _production_files() -> list[Path]:
    return sorted(
        path
        for root in PRODUCTION_ROOTS
        for path in root.rglob("*.py")
        if not any(path.is_relative_to(exempt) for exempt in EXEMPT)
    )


def _offenders(pattern: re.Pattern[str]) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for path in _production_files():
        hits = set(pattern.findall(path.read_text(encoding="utf-8")))
        if hits:
            found[str(path.relative_to(REPO))] = hits
    return found


def test_the_examples_have_names_to_look_for() -> None:
    catalogs = _catalogs()
    assert set(catalogs) == {"fraud", "recommendations"}
    names = _names(catalogs)
    assert {"user_transactions", "txn_count_5m", "item_popularity", "ui_affinity_30d"} <= names
    assert len(_production_files()) > 50  # the scan is not vacuous


def test_no_production_module_names_an_example_view_or_feature() -> None:
    names = _names(_catalogs())
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    found = _offenders(pattern)
    unexpected = {
        path: sorted(hits - ALLOWED.get(path, set())) for path, hits in found.items() if hits - ALLOWED.get(path, set())
    }
    assert unexpected == {}, "production code names example views/features (rename them to a neutral example)"


def test_the_allow_list_only_holds_what_is_still_there() -> None:
    """An allowed name that is gone must leave the list too, so the list only ever shrinks."""
    names = _names(_catalogs())
    pattern = re.compile(r"\b(" + "|".join(sorted(map(re.escape, names), key=len, reverse=True)) + r")\b")
    found = _offenders(pattern)
    stale = {path: sorted(allowed - found.get(path, set())) for path, allowed in ALLOWED.items()}
    assert {path: hits for path, hits in stale.items() if hits} == {}


def _sources_and_topics(catalogs: dict[str, Catalog]) -> set[str]:
    values: set[str] = set()
    for catalog in catalogs.values():
        for view in catalog.views:
            if view.source:
                values.add(view.source)
            if view.transform is not None:
                values.update(view.transform.sources)
            if view.stream is not None:
                values.add(view.stream.topic)
    return values


def _module_constants(path: Path) -> dict[str, str]:
    """Module-level ``NAME = "text"`` (and annotated) assignments of a file."""
    constants: dict[str, str] = {}
    for node in ast.parse(path.read_text(encoding="utf-8")).body:
        targets: list[ast.expr] = []
        if isinstance(node, ast.Assign):
            targets, value = node.targets, node.value
        elif isinstance(node, ast.AnnAssign) and node.value is not None:
            targets, value = [node.target], node.value
        else:
            continue
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            for target in targets:
                if isinstance(target, ast.Name):
                    constants[target.id] = value.value
    return constants


@pytest.mark.parametrize("example", EXAMPLES)
def test_the_examples_declare_their_tables_and_topics(example: str) -> None:
    assert _sources_and_topics({example: load_catalog(example_module(example, "definitions"))})


def test_no_module_level_constant_is_an_example_topic_or_table() -> None:
    """Catches ``DEFAULT_TOPIC = "transactions"``: a default that only fits one example."""
    values = _sources_and_topics(_catalogs())
    offenders = {
        f"{path.relative_to(REPO)}: {name}": text
        for path in _production_files()
        for name, text in _module_constants(path).items()
        if text in values
    }
    assert {k: v for k, v in offenders.items() if k not in ALLOWED_CONSTANTS} == {}
    assert set(offenders) >= ALLOWED_CONSTANTS, "an allowed constant is gone: take it off ALLOWED_CONSTANTS"
