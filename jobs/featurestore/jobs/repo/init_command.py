"""``featurestore init DIR [--example NAME] [--name NAME]``: scaffold a feature repository.

It copies the skeleton shipped in the package (``featurestore/jobs/repo/skeleton/``: settings,
definitions with one batch view and one streaming view, a suite, a DAG file, README and
.gitignore) or an example repository (package ``featurestore.jobs.examples.<NAME>``), and
writes the repository's ``name`` into its settings file.  It never overwrites: a folder that
exists and is not empty is refused.
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Iterator
from dataclasses import dataclass
from importlib.resources import files
from importlib.resources.abc import Traversable
from pathlib import Path

from featurestore.readers.errors import ConfigurationError
from featurestore.readers.repository import NAME_PATTERN, SETTINGS_FILE, repository_name

SKELETON_PACKAGE = "featurestore.jobs.repo"
SKELETON_FOLDER = "skeleton"
EXAMPLES_PACKAGE = "featurestore.jobs.examples"
# package data cannot hold a file named .gitignore reliably (globs skip dot files): renamed on copy
RENAMED = {"gitignore": ".gitignore"}
SKIPPED = {"__init__.py", "__pycache__"}
_NAME_LINE = re.compile(r"^name\s*=.*$", re.MULTILINE)


@dataclass(frozen=True)
class Scaffolded:
    """What ``init`` wrote: the repository folder, its name and the files (relative, sorted)."""

    folder: Path
    name: str
    files: tuple[str, ...]


def available_examples() -> tuple[str, ...]:
    """The example repositories shipped in the package (none until ``featurestore.jobs.examples`` exists)."""
    if importlib.util.find_spec(EXAMPLES_PACKAGE) is None:
        return ()
    package = importlib.import_module(EXAMPLES_PACKAGE)
    declared = getattr(package, "EXAMPLES", None)
    if declared is not None:
        return tuple(declared)
    root = files(EXAMPLES_PACKAGE)
    return tuple(sorted(p.name for p in root.iterdir() if p.is_dir() and p.joinpath(SETTINGS_FILE).is_file()))


def template(example: str | None = None) -> Traversable:
    """The folder to copy: the skeleton, or the example ``example`` (an error lists the available ones)."""
    if example is None:
        return files(SKELETON_PACKAGE).joinpath(SKELETON_FOLDER)
    known = available_examples()
    if example not in known:
        listed = ", ".join(known) if known else "none are installed"
        raise ConfigurationError(f"--example {example}: no such example (available: {listed})")
    return files(f"{EXAMPLES_PACKAGE}.{example}")


def _walk(folder: Traversable, prefix: str = "") -> Iterator[tuple[str, Traversable]]:
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name in SKIPPED or entry.name.endswith(".pyc"):
            continue
        relative = f"{prefix}{RENAMED.get(entry.name, entry.name)}"
        if entry.is_dir():
            yield from _walk(entry, relative + "/")
        else:
            yield relative, entry


def init_repository(folder: str | Path, *, example: str | None = None, name: str | None = None) -> Scaffolded:
    """Write a new feature repository into ``folder`` (created; refused if it exists and is not empty)."""
    target = Path(folder).expanduser().absolute()
    if target.exists() and (not target.is_dir() or any(target.iterdir())):
        raise ConfigurationError(f"{target} exists and is not empty: init never overwrites; pick a new folder")
    if name is not None and not NAME_PATTERN.match(name):
        raise ConfigurationError(
            f"--name {name!r} is not a valid name (a lowercase letter, then up to 40 lowercase letters, digits or '_')"
        )
    chosen = name or repository_name(target, {})
    source = template(example)
    written: list[str] = []
    target.mkdir(parents=True, exist_ok=True)
    for relative, entry in _walk(source):
        path = target / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        data = entry.read_bytes()
        if relative == SETTINGS_FILE:
            text = data.decode("utf-8")
            line = f'name = "{chosen}"'
            text = _NAME_LINE.sub(line, text, count=1) if _NAME_LINE.search(text) else f"{line}\n{text}"
            data = text.encode("utf-8")
        path.write_bytes(data)
        written.append(relative)
    if SETTINGS_FILE not in written:
        raise ConfigurationError(f"the template {source} has no {SETTINGS_FILE}: the package is broken")
    return Scaffolded(target, chosen, tuple(sorted(written)))
