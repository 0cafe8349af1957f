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
    ("recsql.algorithms",),
    ("recsql.spark",),  # Apache Spark
    ("recsql.backends", "recsql.options"),  # where a fit runs (local, Spark), and what it is
    ("recsql.evaluation",),
    ("recsql.store",),
    ("recsql.train", "recsql.serving"),
    (
        "recsql.inspection",
        "recsql.compare",
        "recsql.online",
        "recsql.report",
    ),  # the admin's view, over serving and the store
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
        for module, targets in GRAPH.items()
        for target in targets
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
                circles.append(" -> ".join(path[path.index(target) :] + [target]))
            elif target not in state:
                visit(target, path + [target])
        state[module] = "done"

    for module in sorted(GRAPH):
        if module not in state:
            visit(module, [module])
    assert circles == []


def test_the_check_finds_circles_and_upward_imports(monkeypatch):
    """The two checks above can fail: a planted circle and a planted upward import."""
    assert layer("recsql.algorithms.factors") < layer("recsql.store.read")
    assert "recsql.algorithms.factors" in GRAPH["recsql.store.read"]
    planted = {**GRAPH, "recsql.algorithms.factors": GRAPH["recsql.algorithms.factors"] | {"recsql.store.read"}}
    monkeypatch.setitem(globals(), "GRAPH", planted)
    for check in (test_every_module_has_a_layer_and_imports_only_downwards, test_no_import_circles):
        try:
            check()
        except AssertionError:
            continue
        raise AssertionError(f"{check.__name__} missed the planted import")


def _adds_the_mean(node: ast.AST) -> bool:
    def is_mean(side: ast.AST) -> bool:
        # The mean goes by two names: Factors' global_mean, and mu inside the solvers.
        return (isinstance(side, ast.Name) and side.id in ("global_mean", "mu")) or (
            isinstance(side, ast.Attribute) and side.attr in ("global_mean", "mu")
        )

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
    assert len(places) == 1 and places[0].startswith("recsql.algorithms.factors:"), places


# Only these execute SQL: the database edge, the store of model versions, and the two
# readers of ratings (recsql's own reader with its source mappings, and Spark's).
SQL_MODULES = ("recsql.db", "recsql.store", "recsql.data.ratings", "recsql.data.source", "recsql.spark.read")
SQL_BUILDERS = {"select", "text", "insert", "update", "delete", "func", "literal_column", "table", "column"}
SQL_CALLS = {
    "execute",
    "exec_driver_sql",
    "scalar",
    "scalars",
    "scalar_one",
    "scalar_one_or_none",
    "read_sql",
    "read_sql_query",
    "read_sql_table",
    "executemany",
}


def sql_uses(source: str) -> list[str]:
    """Where ``source`` builds or runs SQL: SQLAlchemy's statement builders imported, or
    a statement executed."""
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ImportFrom) and (node.module or "").startswith("sqlalchemy"):
            found += [f"imports {a.name}:{node.lineno}" for a in node.names if a.name in SQL_BUILDERS]
        elif isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr in SQL_CALLS:
            found.append(f"calls {node.func.attr}:{node.lineno}")
    return found


def test_only_the_database_edge_and_the_store_execute_sql():
    offenders = {
        module: uses
        for module, path in MODULES.items()
        if not any(module == m or module.startswith(m + ".") for m in SQL_MODULES)
        and (uses := sql_uses(path.read_text()))
    }
    assert offenders == {}


def test_the_sql_check_finds_sql():
    assert sql_uses("from sqlalchemy import select\nconn.execute(select(t))") == ["imports select:1", "calls execute:2"]
    assert sql_uses("from sqlalchemy import Engine\nengine.dispose()") == []


def _classes_in(package: str) -> set[str]:
    return {
        node.name
        for module, path in MODULES.items()
        if module == package or module.startswith(package + ".")
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, ast.ClassDef)
    }


def test_train_never_asks_which_backend_it_has():
    """A retrain runs the backend contract's hooks (recsql.backends.base) and nothing
    else: it names no backend's own class and imports nothing of Spark's."""
    contract = _classes_in("recsql.backends.base")
    own = (_classes_in("recsql.backends") | _classes_in("recsql.spark")) - contract
    tree = ast.parse(MODULES["recsql.train"].read_text())
    named = {node.id for node in ast.walk(tree) if isinstance(node, ast.Name)}
    named |= {
        alias.asname or alias.name
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom)
        for alias in node.names
    }
    assert {"SparkBackend", "LocalBackend", "SparkALS"} <= own
    assert named & own == set()
    assert not {m for m in GRAPH["recsql.train"] if m.startswith("recsql.spark") or m == "recsql.backends.spark"}


MAX_MODULE_LINES, MAX_FUNCTION_LINES = 500, 60


def test_modules_and_functions_are_short():
    """No module above 500 lines, no function above 60 (its def line to its last)."""
    long_modules = {m: n for m, p in MODULES.items() if (n := len(p.read_text().splitlines())) > MAX_MODULE_LINES}
    long_functions = [
        f"{module}.{node.name}: {node.end_lineno - node.lineno + 1} lines"
        for module, path in MODULES.items()
        for node in ast.walk(ast.parse(path.read_text()))
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef))
        and node.end_lineno is not None
        and node.end_lineno - node.lineno + 1 > MAX_FUNCTION_LINES
    ]
    assert long_modules == {} and long_functions == []
