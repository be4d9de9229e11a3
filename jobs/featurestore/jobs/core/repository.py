"""The user's feature repository on the Spark side: its modules travel to the executors by value.

A repository's definitions are imported as the synthetic package ``featurestore_repo_<name>``
(:mod:`featurestore.readers.repository`), which exists only in the driver's ``sys.modules``:
an executor (or the Python worker Spark starts to check a schema) cannot import it.  So a UDF
or a ``BatchTransform`` defined in a repository is pickled *by value* (``cloudpickle``), with
the repository's functions it calls: the repository never has to be on the executors' path.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path
from types import ModuleType

from featurestore.jobs.core.settings import Settings
from featurestore.readers.definitions import Catalog
from featurestore.readers.repository import PACKAGE_PREFIX, load_catalog, require_repository

log = logging.getLogger(__name__)
_registered: set[str] = set()


def repository_packages() -> list[ModuleType]:
    """The repository packages loaded in this process (top-level ``featurestore_repo_*``)."""
    return [
        module
        for name, module in list(sys.modules.items())
        if name.startswith(PACKAGE_PREFIX) and "." not in name and module is not None
    ]


def prepare_for_spark() -> list[str]:
    """Register every loaded repository package with ``cloudpickle.register_pickle_by_value``
    (idempotent; call it before Spark pickles a function of a repository).  The names registered."""
    packages = [m for m in repository_packages() if m.__name__ not in _registered]
    if not packages:
        return []
    from pyspark import cloudpickle

    for module in packages:
        cloudpickle.register_pickle_by_value(module)  # type: ignore[no-untyped-call]
        _registered.add(module.__name__)
        log.debug("repository package %s is pickled by value", module.__name__)
    return [m.__name__ for m in packages]


def repository_catalog(settings: Settings) -> tuple[Path, Catalog]:
    """The repository's folder and its definitions (``--catalog`` first), loaded without writing
    anything, not even the definitions' ``__pycache__`` (``featurestore plan`` and ``doctor``)."""
    folder = require_repository(settings.repo)
    writes_bytecode = sys.dont_write_bytecode
    sys.dont_write_bytecode = True
    try:
        return folder, load_catalog(settings.catalog or folder)
    finally:
        sys.dont_write_bytecode = writes_bytecode
