#!/usr/bin/env python3
"""Benchmark: accuracy and fit time on MovieLens 100K's five u1..u5 splits.

    python scripts/bench_accuracy.py [--data ../shared/data/ml-100k] [--splits 1,2,3,4,5]
                                     [--json results.json] [--no-peers] [--cg]

For each split: fit on uK.base, score uK.test; prints per split and the mean of test
RMSE, MAE and fit seconds for recsql's default solver (and the tutorial's CG with
--cg).  When scikit-surprise is installed (``pip install 'recsql[bench]'``) the same
run fits Surprise's SVD, SVD++ and KNNBaseline (item-based, pearson_baseline) on the same
splits, so the comparison shares machine and moment.  Seeds are fixed; the splits are
MovieLens' own.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsql.data.ratings import ratings_from_file
from recsql.evaluation.metrics import score
from recsql.model.solvers import make_solver

DEFAULT_DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "ml-100k"


def ours(solver: str, **params) -> Callable[[Path, Path], tuple[float, float, float]]:
    def run(train: Path, test: Path) -> tuple[float, float, float]:
        train_m, test_m = ratings_from_file(train), ratings_from_file(test)
        started = time.perf_counter()
        factors = make_solver(solver, **params).fit(train_m)
        fit = time.perf_counter() - started
        s = score(factors, test_m)
        return s.rmse, s.mae, fit

    return run


def surprise(name: str) -> Callable[[Path, Path], tuple[float, float, float]] | None:
    try:
        import surprise as sp
    except ImportError:
        return None
    algorithms = {
        "Surprise SVD": lambda: sp.SVD(random_state=0),
        "Surprise SVD++": lambda: sp.SVDpp(random_state=0),
        "Surprise KNNBaseline": lambda: sp.KNNBaseline(
            sim_options={"name": "pearson_baseline", "user_based": False}, verbose=False
        ),
    }

    def run(train: Path, test: Path) -> tuple[float, float, float]:
        reader = sp.Reader("ml-100k")
        folds = sp.Dataset.load_from_folds([(str(train), str(test))], reader)
        trainset, testset = next(sp.model_selection.PredefinedKFold().split(folds))
        algo = algorithms[name]()
        started = time.perf_counter()
        algo.fit(trainset)
        fit = time.perf_counter() - started
        predictions = algo.test(testset)
        return sp.accuracy.rmse(predictions, verbose=False), sp.accuracy.mae(predictions, verbose=False), fit

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", default="1,2,3,4,5")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-peers", action="store_true", help="skip Surprise even if installed")
    parser.add_argument("--cg", action="store_true", help="also run the tutorial's CG (slow: ~25 s a split)")
    parser.add_argument("--variant", action="append", default=[], metavar="K=V,...",
                        help="also run als with these parameters, e.g. features=8,samples=60")
    args = parser.parse_args()
    splits = [int(s) for s in args.splits.split(",")]

    contenders: dict[str, Callable] = {"recsql als (default)": ours("als")}
    for variant in args.variant:
        params = dict(item.split("=") for item in variant.split(","))
        typed = {k: (v == "true" if v in ("true", "false") else float(v) if "." in v else int(v))
                 for k, v in params.items()}
        contenders[f"recsql als {variant}"] = ours("als", **typed)
    if args.cg:
        contenders["recsql cg (tutorial)"] = ours("cg")
    if not args.no_peers:
        for name in ("Surprise SVD", "Surprise SVD++", "Surprise KNNBaseline"):
            runner = surprise(name)
            if runner is None:
                print("(scikit-surprise not installed: peers skipped; pip install 'recsql[bench]')")
                break
            contenders[name] = runner

    results: dict[str, list[tuple[float, float, float]]] = {}
    for name, runner in contenders.items():
        results[name] = []
        for k in splits:
            results[name].append(runner(args.data / f"u{k}.base", args.data / f"u{k}.test"))
            rmse, mae, fit = results[name][-1]
            print(f"  {name:<24} u{k}: RMSE {rmse:.4f}  MAE {mae:.4f}  fit {fit:.2f} s", flush=True)

    print()
    print(f"MovieLens 100K, test RMSE per split (u{','.join(map(str, splits))}) and mean; "
          f"{platform.processor() or platform.machine()}, {platform.python_version()}")
    print()
    header = "| algorithm | " + " | ".join(f"u{k}" for k in splits) + " | mean RMSE | mean MAE | fit s/split |"
    print(header)
    print("|" + "---|" * (len(splits) + 4))
    for name, rows in results.items():
        rmse = [r[0] for r in rows]
        print(f"| {name} | " + " | ".join(f"{x:.4f}" for x in rmse)
              + f" | {np.mean(rmse):.4f} | {np.mean([r[1] for r in rows]):.4f} | {np.mean([r[2] for r in rows]):.2f} |")
    if args.json:
        args.json.write_text(json.dumps({n: [dict(zip(("rmse", "mae", "fit_seconds"), r)) for r in rows]
                                         for n, rows in results.items()}, indent=2))


if __name__ == "__main__":
    main()
