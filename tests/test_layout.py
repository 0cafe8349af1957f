"""The package's floor plan holds: data flows one way through its layers, no module
imports a higher layer, there is no import circle (imports inside functions count), and
the rating formula is written once."""

from __future__ import annotations

import ast
from pathlib import Path

from tests.conftest import ROOT

PACKAGE = ROOT / "recsql"

# Lowest first.  A module may import its own layer or lower ones, never a higher one.
LAYERS: list[tuple[str, ...]] = [
    ("recsql.errors", "recsql.progress", "recsql.logs", "recsql.threads"),
    ("recsql.db",),
    ("recsql.data",),
    ("recsql.model",),
    ("recsql.spark", "recsql.engines"),  # the Spark engine; which engine fits
    ("recsql.evaluation",),
    ("recsql.store",),
    ("recsql.train", "recsql.serving"),
    ("recsql.inspection", "recsql.compare", "recsql.report"),  # the admin's view, over serving and the store
    ("recsql.demo",),
    ("recsql",),  # the public API (recsql/__init__.py)
    ("recsql.cli", "recsql.__main__"),
    ("recsql.cron",),  # the cron jobs parse `train`'s options with the CLI's command
]


def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


MODULES = {module_name(path): path for path in PACKAGE.rglob("*.py")}


def layer(module: str) -> int:
    best, found = -1, None
    for number, prefixes in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), number
    assert found is not None, f"{module} is in no layer; add it to LAYERS"
    return found


def imports(module: str) -> set[str]:
    """The recsql modules ``module`` imports, anywhere in its file."""
    found = set()
    for node in ast.walk(ast.parse(MODULES[module].read_text())):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            # `from recsql.db import bulk` imports the module recsql.db.bulk;
            # `from recsql.store import ModelInfo`, the module recsql.store.
            names = [f"{node.module}.{alias.name}" for alias in node.names]
        else:
            continue
        for name in names:
            if name.split(".")[0] != "recsql":
                continue
            while name not in MODULES:
                name = name.rsplit(".", 1)[0]
            if name != module:
                found.add(name)
    return found


GRAPH = {module: imports(module) for module in MODULES}


def test_every_module_has_a_layer_and_imports_only_downwards():
    upward = [
        f"{module} (layer {layer(module)}) imports {target} (layer {layer(target)})"
        for module, targets in GRAPH.items() for target in targets
        if layer(target) > layer(module)
    ]
    assert upward == []


def test_no_import_circles():
    state: dict[str, str] = {}
    circles = []

    def visit(module: str, path: list[str]) -> None:
        state[module] = "open"
        for target in sorted(GRAPH[module]):
            if state.get(target) == "open":
                circles.append(" -> ".join(path[path.index(target):] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_check_finds_circles_and_upward_imports(monkeypatch):
    """The two checks above can fail: a planted circle and a planted upward import."""
    assert layer("recsql.model.factors") < layer("recsql.store")
    assert "recsql.model.factors" in GRAPH["recsql.store"]
    planted = {**GRAPH, "recsql.model.factors": GRAPH["recsql.model.factors"] | {"recsql.store"}}
    monkeypatch.setitem(globals(), "GRAPH", planted)
    for check in (test_every_module_has_a_layer_and_imports_only_downwards, test_no_import_circles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed the planted import")


def _adds_the_mean(node: ast.AST) -> bool:
    def is_mean(side: ast.AST) -> bool:
        return (isinstance(side, ast.Name) and side.id == "global_mean") or (
            isinstance(side, ast.Attribute) and side.attr == "global_mean")

    if isinstance(node, ast.AugAssign):  # x += global_mean
        return isinstance(node.op, ast.Add) and is_mean(node.value)
    return isinstance(node, ast.BinOp) and isinstance(node.op, ast.Add) and (is_mean(node.left) or is_mean(node.right))


def test_the_rating_formula_is_written_once():
    """mean + user bias + movie bias + p.q is assembled in one place, Factors.user_terms
    (with Factors.movie_terms): the only code in recsql that adds the global mean to
    anything.  Predictions, rankings, serving and evaluation all go through it."""
    places = [
        f"{module}:{node.lineno}"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if _adds_the_mean(node)
    ]
    assert len(places) == 1 and places[0].startswith("recsql.model.factors:"), places
