"""The package's shape: layers that only point down, no import cycles, pieces small enough to
read in one sitting.

The import graph is grimp's (every import statement, including those inside functions and
under ``TYPE_CHECKING``), so a lazy import that hides a cycle still counts as one.
"""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("qcheck", "converters")
MAX_FUNCTION_LINES = 60
MAX_CLASS_LINES = 150


@pytest.fixture(scope="module")
def graph():  # type: ignore[no-untyped-def]
    grimp = pytest.importorskip("grimp")
    return grimp.build_graph(*PACKAGES, cache_dir=None)


def test_converters_import_nothing_from_qcheck(graph) -> None:  # type: ignore[no-untyped-def]
    offending = [
        (module, imported)
        for module in graph.find_children("converters") | {"converters"}
        for imported in graph.find_modules_directly_imported_by(module)
        if imported == "qcheck" or imported.startswith("qcheck.")
    ]
    assert offending == []


def test_no_import_cycles(graph) -> None:  # type: ignore[no-untyped-def]
    modules = sorted(graph.modules)
    index = {name: i for i, name in enumerate(modules)}
    rows, cols = [], []
    for module in modules:
        for imported in graph.find_modules_directly_imported_by(module):
            if imported in index:
                rows.append(index[module])
                cols.append(index[imported])
    adjacency = csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(len(modules),) * 2)
    count, labels = connected_components(adjacency, directed=True, connection="strong")
    cycles = [sorted(m for m in modules if labels[index[m]] == label)
              for label in range(count) if np.sum(labels == label) > 1]
    assert cycles == []


def _definitions() -> list[tuple[str, str, int]]:
    found = []
    for package in PACKAGES:
        for path in sorted((ROOT / package).rglob("*.py")):
            tree = ast.parse(path.read_text(encoding="utf-8"))
            for node in ast.walk(tree):
                if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
                    assert node.end_lineno is not None
                    lines = node.end_lineno - node.lineno + 1
                    where = f"{path.relative_to(ROOT)}:{node.lineno} {node.name}"
                    found.append((type(node).__name__, where, lines))
    return found


def test_functions_and_classes_fit_on_a_screen_or_two() -> None:
    too_long = [(where, lines) for kind, where, lines in _definitions()
                if lines > (MAX_CLASS_LINES if kind == "ClassDef" else MAX_FUNCTION_LINES)]
    assert too_long == []
