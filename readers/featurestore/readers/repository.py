"""The user's feature repository: finding it, reading its settings file, loading its definitions.

A feature repository is a folder holding ``featurestore.toml`` (the settings: no secrets),
``definitions.py`` (``catalog = Catalog(...)``: entities, views, batch transforms, streaming
features) and ``expectations/`` (one Great Expectations suite per batch view); docs/feature-repository.md.

One discovery rule for the CLI, the spark-submit entries, the DAG factory and the reader:
``--repo DIR`` (``repo=``), else ``$FEATURESTORE_REPO``, else the working directory *if* it
holds ``featurestore.toml`` (no search of parent folders: that would surprise under Airflow
and spark-submit).

The definitions of a repository are imported as the synthetic package
``featurestore_repo_<name>`` (``__path__`` = the folder), so ``definitions.py`` can import its
neighbours relatively (``from .transforms import spend``) and two repositories never collide
on a module named ``definitions``.  Only what ``definitions.py`` imports is loaded: no tree walk.

Standard library only (``tomllib``, ``importlib``): the reader imports this module.
"""

from __future__ import annotations

import difflib
import importlib
import importlib.machinery
import importlib.util
import os
import re
import sys
import tomllib
import traceback
from collections.abc import Collection, Mapping
from pathlib import Path
from types import ModuleType
from typing import Any

from .definitions import Catalog
from .errors import CatalogError, ConfigurationError, DefinitionError
from .settings import redact_text

SETTINGS_FILE = "featurestore.toml"
REPO_ENV_VAR = "FEATURESTORE_REPO"
CATALOG_ENV_VAR = "FEATURESTORE_CATALOG"
DEFAULT_DEFINITIONS = "definitions.py"
PACKAGE_PREFIX = "featurestore_repo_"
# a repository's name names its package (featurestore_repo_<name>) and its DAG
NAME_PATTERN = re.compile(r"^[a-z][a-z0-9_]{0,40}$")

__all__ = [
    "CATALOG_ENV_VAR",
    "REPO_ENV_VAR",
    "SETTINGS_FILE",
    "find_repository",
    "load_catalog",
    "load_module",
    "package_name",
    "read_settings_file",
    "repository_name",
    "require_repository",
]


def _env(environ: Mapping[str, str] | None) -> Mapping[str, str]:
    return os.environ if environ is None else environ


def find_repository(
    repo: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None
) -> Path | None:
    """The repository folder (absolute): ``repo``, else ``$FEATURESTORE_REPO``, else the working
    directory if it holds ``featurestore.toml``; ``None`` when none is found.

    A folder that was named (``repo`` or the variable) but has no settings file is an error:
    ``--repo /x: no featurestore.toml there``.  ``repo`` may also name the settings file itself.
    """
    env = _env(environ)
    if repo is not None and str(repo) != "":
        chosen, what = str(repo), f"--repo {repo}"
    elif env.get(REPO_ENV_VAR):
        chosen, what = env[REPO_ENV_VAR], f"{REPO_ENV_VAR}={env[REPO_ENV_VAR]}"
    else:
        here = Path.cwd()
        return here if (here / SETTINGS_FILE).is_file() else None
    folder = Path(chosen).expanduser().absolute()
    if folder.name == SETTINGS_FILE and folder.is_file():
        folder = folder.parent
    if not (folder / SETTINGS_FILE).is_file():
        reason = "no such folder" if not folder.exists() else f"no {SETTINGS_FILE} there"
        raise ConfigurationError(f"{what}: {reason}")
    return folder


def require_repository(repo: str | os.PathLike[str] | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """:func:`find_repository`, or the error that says how to name or create one."""
    found = find_repository(repo, environ)
    if found is None:
        raise ConfigurationError(
            f"no feature repository: {Path.cwd()} has no {SETTINGS_FILE}; pass --repo DIR, set "
            f"{REPO_ENV_VAR} (or name the definitions with --catalog, $FEATURESTORE_CATALOG), or create one with: "
            "featurestore init DIR (featurestore init DIR --example fraud for the example)"
        )
    return found


def read_settings_file(folder: Path, known: Collection[str] | None = None) -> dict[str, Any]:
    """The keys of ``<folder>/featurestore.toml``, with the file-level checks: valid TOML, no
    password, and (when ``known`` is given) no unknown key, with a did-you-mean suggestion.

    Values are returned as written (the jobs' settings check their types and resolve paths).
    """
    path = folder / SETTINGS_FILE
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigurationError(f"{path}: cannot be read: {exc}") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigurationError(f"{path}: not valid TOML: {exc}") from None
    for key, value in data.items():
        if known is not None and key not in known:
            close = difflib.get_close_matches(key, list(known), n=1, cutoff=0.5)
            hint = f" (did you mean {close[0]!r}?)" if close else f" (known: {', '.join(sorted(known))})"
            raise ConfigurationError(f"{path}: unknown setting {key!r}{hint}")
        if isinstance(value, str) and key.endswith("url") and redact_text(value) != value:
            env = f"FEATURESTORE_{key.upper()}"
            instead = f"FEATURESTORE_REDIS_PASSWORD (or the whole URL in {env})" if key == "redis_url" else env
            raise ConfigurationError(f"{path}: {key} holds a password: set {instead}, never the settings file")
        if "password" in key or "secret" in key:
            raise ConfigurationError(
                f"{path}: {key} is a secret: set FEATURESTORE_{key.upper()}, never the settings file"
            )
    return data


def repository_name(folder: Path, settings: Mapping[str, Any] | None = None) -> str:
    """The repository's ``name`` (the settings file's, else the folder's, made a valid name)."""
    data = read_settings_file(folder) if settings is None else settings
    name = data.get("name")
    if name is None:
        cleaned = re.sub(r"[^a-z0-9_]", "_", folder.name.lower()).strip("_") or "repo"
        return cleaned if cleaned[0].isalpha() else f"r_{cleaned}"
    if not isinstance(name, str) or not NAME_PATTERN.match(name):
        raise ConfigurationError(
            f"{folder / SETTINGS_FILE}: name = {name!r} is not a valid name "
            "(a lowercase letter, then up to 40 lowercase letters, digits or '_')"
        )
    return name


def package_name(name: str) -> str:
    """The synthetic package a repository named ``name`` is imported as."""
    return PACKAGE_PREFIX + name


def _repository_package(folder: Path, name: str) -> str:
    """Register (once) the synthetic package of the repository in ``folder``; its name."""
    package = package_name(name)
    loaded = sys.modules.get(package)
    if loaded is not None:
        where = list(getattr(loaded, "__path__", []))
        if where == [str(folder)]:
            return package
        if where and Path(where[0]).is_dir():
            raise CatalogError(
                f"two repositories are named {name!r}: {where[0]} is loaded already and {folder} has the same "
                f"name; rename one (name = ... in its {SETTINGS_FILE})"
            )
        # the first one's folder is gone (a temporary folder): forget it and its modules
        for stale in [m for m in sys.modules if m == package or m.startswith(package + ".")]:
            del sys.modules[stale]
    spec = importlib.machinery.ModuleSpec(package, None, is_package=True)
    spec.submodule_search_locations = [str(folder)]
    created = importlib.util.module_from_spec(spec)
    created.__path__ = [str(folder)]
    sys.modules[package] = created
    return package


def load_module(folder: Path, name: str, relative: str) -> ModuleType:
    """Import ``relative`` (``definitions.py`` or ``definitions``) of the repository ``name`` in ``folder``.

    A syntax error or a definition error is raised as a :class:`CatalogError` prefixed with the
    file and line at fault (``/r/definitions.py:41: view 'x' ...``).
    """
    folder = folder.absolute()
    package = _repository_package(folder, name)
    stem = relative[:-3] if relative.endswith(".py") else relative
    dotted = f"{package}.{stem.replace('/', '.').replace(os.sep, '.')}"
    try:
        return importlib.import_module(dotted)
    except SyntaxError as exc:
        where = f"{exc.filename}:{exc.lineno}" if exc.filename else str(folder / relative)
        raise CatalogError(f"{where}: {exc.msg}") from exc
    except Exception as exc:
        where = _innermost_frame_in(folder, exc) or str(folder / relative)
        if isinstance(exc, DefinitionError):
            raise CatalogError(f"{where}: {exc}") from exc
        raise CatalogError(f"{where}: cannot load the definitions: {type(exc).__name__}: {exc}") from exc


def _innermost_frame_in(folder: Path, exc: BaseException) -> str | None:
    """``file:line`` of the deepest traceback frame inside ``folder`` (the user's line at fault)."""
    found = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if frame.filename and Path(frame.filename).is_relative_to(folder):
            found = f"{frame.filename}:{frame.lineno}"
    return found


def _catalog_of(module: ModuleType, what: str) -> Catalog:
    catalog = getattr(module, "catalog", None)
    if not isinstance(catalog, Catalog):
        raise CatalogError(
            f"catalogue module {what} must define `catalog = Catalog(views=(...))`, found {type(catalog).__name__}"
        )
    return catalog


def _catalog_of_repository(folder: Path) -> Catalog:
    """The catalogue a repository's settings name (``catalog``, default ``definitions.py``)."""
    settings = read_settings_file(folder)
    ref = settings.get("catalog") or DEFAULT_DEFINITIONS
    if not isinstance(ref, str):
        raise ConfigurationError(f"{folder / SETTINGS_FILE}: catalog = {ref!r} is not a text")
    if ref.endswith(".py") or "/" in ref or os.sep in ref:
        return _catalog_from_file(folder / Path(ref).expanduser(), settings)
    return _catalog_from_module(ref)


def _catalog_from_file(path: Path, settings: Mapping[str, Any] | None = None) -> Catalog:
    """A ``.py`` file's catalogue, imported as a module of its folder's repository package."""
    path = path.absolute()
    if not path.is_file():
        raise CatalogError(f"catalogue file {path} does not exist")
    folder = path.parent
    if settings is None and (folder / SETTINGS_FILE).is_file():
        settings = read_settings_file(folder)
    name = repository_name(folder, settings or {})
    module = load_module(folder, name, path.name)
    return _catalog_of(module, str(path))


def _catalog_from_module(name: str) -> Catalog:
    try:
        loaded = importlib.import_module(name)
    except ImportError as exc:
        raise CatalogError(f"cannot import catalogue module {name!r}: {exc}") from exc
    return _catalog_of(loaded, repr(name))


def load_catalog(
    ref: str | os.PathLike[str] | Catalog | None = None, *, environ: Mapping[str, str] | None = None
) -> Catalog:
    """The catalogue ``ref`` names: a :class:`Catalog` (returned as is), a repository folder
    (the ``catalog`` its settings name, default ``definitions.py``), a ``.py`` file, or a dotted
    module on ``sys.path`` (a module-level ``catalog`` object).

    ``None``: ``$FEATURESTORE_CATALOG``, else the repository found by :func:`find_repository`
    (``$FEATURESTORE_REPO``, else the working directory), else a :class:`ConfigurationError`
    that says how to name or create a repository: there is no default catalogue.
    """
    if isinstance(ref, Catalog):
        return ref
    env = _env(environ)
    if ref is None or str(ref) == "":
        named = env.get(CATALOG_ENV_VAR)
        if named:
            return load_catalog(named, environ=environ)
        return _catalog_of_repository(require_repository(None, env))
    text = str(ref)
    path = Path(text).expanduser()
    if path.is_dir():
        if (path / SETTINGS_FILE).is_file():
            return _catalog_of_repository(path.absolute())
        return _catalog_from_file(path / DEFAULT_DEFINITIONS)
    if text.endswith(".py") or path.is_file() or os.sep in text or "/" in text:
        return _catalog_from_file(path)
    return _catalog_from_module(text)
