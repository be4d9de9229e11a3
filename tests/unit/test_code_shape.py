"""The shape of the code: no function outside the tests longer than 80 lines (issue 19).

A longer function is split along its seams (parsing, each stage, reporting) rather than
allowed here; nested functions count on their own and inside their parent.
"""

from __future__ import annotations

import ast
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
CHECKED = ("readers", "jobs", "airflow_dags", "benchmarks")
MAX_LINES = 80


def _function_lengths(path: Path) -> list[tuple[str, int]]:
    """(qualified name, lines from ``def`` to the last line of its body) of every function."""
    found: list[tuple[str, int]] = []

    def visit(node: ast.AST, prefix: str) -> None:
        for child in ast.iter_child_nodes(node):
            if isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef)):
                assert child.end_lineno is not None
                found.append((prefix + child.name, child.end_lineno - child.lineno + 1))
                visit(child, f"{prefix}{child.name}.")
            elif isinstance(child, ast.ClassDef):
                visit(child, f"{prefix}{child.name}.")
            else:
                visit(child, prefix)

    visit(ast.parse(path.read_text(), filename=str(path)), "")
    return found


def test_no_function_is_longer_than_80_lines() -> None:
    sources = sorted(p for folder in CHECKED for p in (REPO / folder).rglob("*.py"))
    assert sources, "no sources found: is REPO right?"
    too_long = [
        f"{path.relative_to(REPO).as_posix()}:{name}:{lines}"
        for path in sources
        for name, lines in _function_lengths(path)
        if lines > MAX_LINES
    ]
    assert not too_long, f"functions over {MAX_LINES} lines (file:function:lines), split them: {too_long}"


def test_the_length_counts_from_def_to_the_last_line(tmp_path: Path) -> None:
    path = tmp_path / "probe.py"
    path.write_text(
        "def f():\n    x = 1\n\n    return x\n\n\nclass C:\n    def m(self):\n        def inner():\n            pass\n"
    )
    assert _function_lengths(path) == [("f", 4), ("C.m", 3), ("C.m.inner", 2)]
