"""The walk of one retrain through recsql's modules, as a reader following its calls
would take it: every recsql function in the order it is first called (loops and
repeats counted once), the module each one is in, and from that sequence the visits
(each time the walk moves to another module) and the climbs (each move to a module of
a higher layer than the one it leaves: back up to a caller, or a callback).  Also the
caller -> callee module edges and those that point upwards.  The layers are
tests/test_layout.py's.

    python scripts/walk_retrain.py            # a small generated catalogue on SQLite
    python scripts/walk_retrain.py --backend spark

Prints one line of counts and the climbing edges; the figures are for a plain retrain
with a held-out share (refit on), which takes every step of the path.
"""

from __future__ import annotations

import argparse
import ast
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
PACKAGE = str(ROOT / "recsql")


def layers() -> list[tuple[str, ...]]:
    tree = ast.parse((ROOT / "tests" / "test_layout.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.AnnAssign) and getattr(node.target, "id", "") == "LAYERS":
            return list(ast.literal_eval(node.value))
    raise SystemExit("LAYERS not found in tests/test_layout.py")


def layer_of(module: str, table: list[tuple[str, ...]]) -> int:
    best, found = -1, -1
    for number, prefixes in enumerate(table):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > best:
                best, found = len(prefix), number
    return found


def walk(backend: str) -> tuple[list[str], dict[tuple[str, str], int]]:
    """The modules of the functions in first-call order, and the call edges between modules."""
    import recsql

    edges: dict[tuple[str, str], int] = {}
    order: list[str] = []
    seen: set[object] = set()

    def profile(frame, event, _arg):  # type: ignore[no-untyped-def]
        if event != "call" or not frame.f_code.co_filename.startswith(PACKAGE):
            return  # code a library generated (a dataclass's __init__) is not a module's
        callee = frame.f_globals.get("__name__", "")
        caller = frame.f_back.f_globals.get("__name__", "") if frame.f_back else ""
        if frame.f_code not in seen:
            seen.add(frame.f_code)
            order.append(callee)
        if caller.startswith("recsql") and callee != caller:
            edges[(caller, callee)] = edges.get((caller, callee), 0) + 1

    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/walk.db"
        recsql.upgrade(url)
        engine = recsql.connect(url)
        recsql.generate(engine, ratings=20_000, users=500, movies=300, seed=0)
        options = {"backend": backend} if backend != "local" else {}
        sys.setprofile(profile)
        try:
            recsql.train(engine, samples=0, test_fraction=0.2, **options)
        finally:
            sys.setprofile(None)
        engine.dispose()
    return order, edges


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--backend", default="local", choices=["local", "spark"])
    args = parser.parse_args()
    table = layers()
    order, edges = walk(args.backend)
    path = [m for i, m in enumerate(order) if i == 0 or m != order[i - 1]]
    moves = list(zip(path, path[1:], strict=False))
    climbs = [(a, b) for a, b in moves if layer_of(b, table) > layer_of(a, table)]
    upward = {e: n for e, n in edges.items() if layer_of(e[1], table) > layer_of(e[0], table)}
    print(f"walk: {len(set(order))} modules, {len(moves)} visits, {len(climbs)} climbs back to a higher layer")
    print(f"call edges between modules: {len(edges)}, of which upward (callbacks): {len(upward)}")
    print("path: " + " > ".join(m.removeprefix("recsql.") for m in path))
    for (caller, callee), n in sorted(upward.items()):
        print(f"  upward edge {caller} -> {callee}: {n} calls")


if __name__ == "__main__":
    main()
