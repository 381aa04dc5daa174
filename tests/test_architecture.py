"""The package's shape: layers that only point down, no import cycles, pieces small enough to
read in one sitting.

The import graph is grimp's (every import statement, including those inside functions and
under ``TYPE_CHECKING``), so a lazy import that hides a cycle still counts as one. Importing
``a.b.c`` also runs ``a.b``'s ``__init__``, so each import counts as an import of the imported
module's parent packages too (the root facades ``qcheck`` and ``converters`` excepted: Python
has run them before anything else). ``docs/architecture.md`` explains the layers.
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


# Top to bottom. A package may import its own modules and any package of a lower layer, never
# one above; packages sharing a layer are independent of each other. A new top-level module
# must be placed here (the test says so).
LAYERS: tuple[tuple[str, ...], ...] = (
    ("qcheck.cli",),
    ("qcheck.zoo",),
    ("qcheck.api",),
    ("qcheck.pipeline",),
    ("qcheck.handlers",),  # what workers do with jobs; loaded by name at worker start-up
    ("qcheck.planner",),
    ("qcheck.advise",),
    ("qcheck.report",),
    ("qcheck.assess",),
    ("qcheck.readiness",),
    ("qcheck.analyze",),
    ("qcheck.session",),
    ("qcheck.references",),
    ("qcheck.config", "qcheck.compare"),
    ("qcheck.settings", "qcheck.load", "qcheck.validate"),
    ("qcheck.results", "qcheck.outputs", "qcheck.keys", "qcheck.runners", "qcheck.workers"),
    ("qcheck.limits", "qcheck.types", "qcheck.store", "qcheck.quiet"),
    ("qcheck.errors", "qcheck.workdir", "qcheck.version", "qcheck.memory", "qcheck.serialize",
     "qcheck.cache", "qcheck.jobs", "qcheck.stats", "qcheck.numerics", "qcheck.samples",
     "qcheck.named"),
    ("converters",),
)
ROOTS = ("qcheck", "converters")


def _package(module: str) -> str:
    parts = module.split(".")
    return ".".join(parts[:2]) if parts[0] == "qcheck" and len(parts) > 1 else parts[0]


def import_edges(graph) -> set[tuple[str, str]]:  # type: ignore[no-untyped-def]
    """(importer, imported) for every import, each imported module's parent packages
    included."""
    edges = set()
    for module in graph.modules:
        for imported in graph.find_modules_directly_imported_by(module):
            parts = imported.split(".")
            for depth in range(1, len(parts) + 1):
                target = ".".join(parts[:depth])
                # A package the importer is inside of has already run its ``__init__``.
                inside = module == target or module.startswith(target + ".")
                if target not in ROOTS and not inside:
                    edges.add((module, target))
    return edges


def layer_violations(edges: set[tuple[str, str]],
                     layers: tuple[tuple[str, ...], ...] = LAYERS) -> list[str]:
    """Every import that points up or sideways across the layers (empty: the contract holds)."""
    tier = {package: index for index, layer in enumerate(layers) for package in layer}
    found = []
    for importer, imported in sorted(edges):
        a, b = _package(importer), _package(imported)
        if a == b or importer in ROOTS:
            continue
        if a not in tier or b not in tier:
            found.append(f"{a if a not in tier else b} is in no layer (place it in LAYERS)")
        elif tier[b] <= tier[a]:
            found.append(f"{importer} -> {imported} ({'sideways' if tier[a] == tier[b] else 'up'})")
    return sorted(set(found))


def test_layers_only_point_down(graph) -> None:  # type: ignore[no-untyped-def]
    assert layer_violations(import_edges(graph)) == []


def test_the_layer_check_catches_an_upward_import(graph) -> None:  # type: ignore[no-untyped-def]
    """The contract is not vacuous: one planted upward (or lazy, parent-package) import is
    named."""
    planted = import_edges(graph) | {("qcheck.compare.metrics", "qcheck.analyze.stats")}
    assert layer_violations(planted) == ["qcheck.compare.metrics -> qcheck.analyze.stats (up)"]


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
    for module, imported in import_edges(graph):
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
