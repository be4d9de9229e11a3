"""The example feature repositories shipped in the wheel: ``fraud`` and ``recommendations``.

Each example is a complete feature repository (docs/examples.md): ``featurestore.toml``,
``definitions.py`` (``catalog = Catalog(...)``), ``transforms.py``, ``expectations/<view>.json``,
``dags/featurestore_dag.py``, ``sample_data.py`` (the ``generate``/``events`` hooks of the dev
commands) and a README.  They are regular packages so that tests and the demo can import them;
``featurestore init --example NAME`` copies one into a folder of the team's own.  Production
modules never import them (tests/unit/test_no_example_names.py, tests/unit/test_layout.py).
"""

from __future__ import annotations

from importlib.resources import files
from importlib.resources.abc import Traversable

EXAMPLES = ("fraud", "recommendations")


def example_path(name: str) -> Traversable:
    """The folder of the example ``name`` (a ``Path`` for an installed or checked-out package)."""
    if name not in EXAMPLES:
        raise ValueError(f"no example {name!r}: the examples are {', '.join(EXAMPLES)}")
    return files(f"{__name__}.{name}")


def example_module(name: str, module: str) -> str:
    """The dotted name of one module of an example, e.g. ``example_module("fraud", "definitions")``."""
    example_path(name)  # the same error for an unknown example
    return f"{__name__}.{name}.{module}"
