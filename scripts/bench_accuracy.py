#!/usr/bin/env python3
"""Benchmark: accuracy and fit time on MovieLens 100K's five u1..u5 splits.

    python scripts/bench_accuracy.py [--data ../shared/data/ml-100k] [--splits 1,2,3,4,5]
                                     [--json results.json] [--no-peers] [--cg] [--ranking]

For each split: fit on uK.base, score uK.test; prints per split and the mean of test
RMSE, MAE and fit seconds for recsql's default solver (and the tutorial's CG with
--cg).  When scikit-surprise is installed (``pip install 'recsql[bench]'``) the same
run fits Surprise's SVD, SVD++ and KNNBaseline (item-based, pearson_baseline) on the same
splits, so the comparison shares machine and moment.  Seeds are fixed; the splits are
MovieLens' own.

``--ranking`` adds the lists applications show, scored by recsql's own protocol
(``recsql.evaluation.metrics``: rank every training movie the user did not rate,
relevant = a test rating >= 4): precision, recall and NDCG@10 of the top-10
recommendations, their catalogue coverage, and the "because you rated" NDCG@10 of
top-20 similar-movie lists, for recsql's default beside reference rankers implemented
here (most popular, item cosine over the rated-by matrix, EASE at lambda 250, 500 and
1,000, and EASE tuned: the best of those per split and list, chosen on the test, an
oracle) and implicit's ALS when installed (``pip install 'recsql[bench]'``).  ``--large-catalogue``
adds recsql with the item model catalogues too large for the exact one get.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from recsql.algorithms import ranking as ranking_module
from recsql.algorithms.solvers import make_solver
from recsql.algorithms.topk import TopK, top_k_largest
from recsql.data.matrix import RatingMatrix
from recsql.data.ratings import ratings_from_file
from recsql.evaluation.beyond import coverage
from recsql.evaluation.evaluate import evaluate_on
from recsql.evaluation.metrics import HeldOut, because_you_rated, score, top_k_quality
from recsql.options import FitOptions

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


# ----------------------------------------------------------------------------- ranking

# A reference ranker: the training matrix -> (user x movie scores, movie x movie similarity).
Ranker = Callable[[RatingMatrix], tuple[np.ndarray, np.ndarray | None]]


def popular_ranker(train: RatingMatrix) -> tuple[np.ndarray, None]:
    counts = np.bincount(train.cols, minlength=train.n_movies).astype(float)
    return np.broadcast_to(counts, train.shape).copy(), None


def cosine_ranker(train: RatingMatrix) -> tuple[np.ndarray, np.ndarray]:
    x = (train.csr != 0).astype(np.float64)
    gram = (x.T @ x).toarray()
    norms = np.sqrt(np.diag(gram))
    similarity = gram / np.outer(norms, norms)
    np.fill_diagonal(similarity, 0.0)
    return np.asarray(x @ similarity), similarity


def ease_ranker(lam: float = 500.0) -> Ranker:
    """Steck (2019): B = I - P diagMat(1/diag(P)), P = (X^T X + lam I)^-1, diag(B) = 0."""

    def rank(train: RatingMatrix) -> tuple[np.ndarray, np.ndarray]:
        x = (train.csr != 0).astype(np.float64)
        precision = np.linalg.inv((x.T @ x).toarray() + lam * np.eye(train.n_movies))
        weights = -precision / np.diag(precision)
        np.fill_diagonal(weights, 0.0)
        return np.asarray(x @ weights), weights

    return rank


def implicit_ranker() -> Ranker | None:
    try:
        from implicit.cpu.als import AlternatingLeastSquares
    except ImportError:
        return None

    def rank(train: RatingMatrix) -> tuple[np.ndarray, np.ndarray]:
        model = AlternatingLeastSquares(
            factors=32, regularization=0.05, iterations=15, alpha=2.0, random_state=0, num_threads=2
        )
        model.fit(train.csr.astype(np.float32), show_progress=False)
        users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
        norms = np.linalg.norm(items, axis=1, keepdims=True)
        unit = items / np.where(norms == 0, 1, norms)
        similarity = unit @ unit.T
        np.fill_diagonal(similarity, -np.inf)
        return users @ items.T, similarity

    return rank


def list_quality(train: RatingMatrix, test: RatingMatrix, ranker: Ranker) -> dict[str, float]:
    """The default protocol's list metrics for a reference ranker (same code paths)."""
    scores, similarity = ranker(train)
    held = HeldOut.of(train.user_ids, train.movie_ids, train, test)
    everyone = np.array(scores, dtype=np.float64)
    everyone[train.rows, train.cols] = -np.inf
    top, _ = top_k_largest(everyone, 10)
    result = {**top_k_quality(top[held.users], held.relevant), "coverage": coverage(top, train.n_movies)}
    if similarity is not None:
        similarity = np.array(similarity, dtype=np.float64)
        np.fill_diagonal(similarity, -np.inf)
        result["similar_ndcg_at_10"] = because_you_rated(TopK(*top_k_largest(similarity, 20)), held)
    return result


RANKING_COLUMNS = ("precision_at_10", "recall_at_10", "ndcg_at_10", "coverage", "similar_ndcg_at_10")


# How the default's lists were chosen: each a variation of the default (blend 0.5,
# penalties and lift chosen per retrain).
LIST_VARIANTS: dict[str, dict[str, float | str | int]] = {
    "lists by rating model (--metric cosine, before)": {"metric": "cosine"},
    "item model alone (blend 0)": {"blend": 0.0},
    "blend 1.0": {"blend": 1.0},
    "item lambda 250 (given)": {"item_regularization": 250.0},
    "item lambda 500 (given: the constant before)": {"item_regularization": 500.0},
    "item lambda 1000 (given)": {"item_regularization": 1000.0},
}
LARGE_CATALOGUE = "large-catalogue path forced (low-rank item model)"
EASE_LAMBDAS = (250.0, 500.0, 1000.0)


def recsql_lists(
    train: RatingMatrix,
    test: RatingMatrix,
    metric: str = "items",
    item_regularization: float | None = None,
    blend: float | None = None,
    limit: int | None = None,
) -> dict[str, float]:
    """recsql's default (or a variant) through evaluate_on, with the fit seconds of both models."""
    saved = ranking_module.BLEND, ranking_module.ITEM_MODEL_LIMIT
    try:
        if blend is not None:
            ranking_module.BLEND = blend
        if limit is not None:
            ranking_module.ITEM_MODEL_LIMIT = limit
        options = FitOptions(solver="als", metric=metric, item_regularization=item_regularization)
        fold = evaluate_on([(train, test)], options).folds[0]
    finally:
        ranking_module.BLEND, ranking_module.ITEM_MODEL_LIMIT = saved
    return {**fold.metrics, "fit_seconds": fold.fit_seconds}


def tuned_ease(results: dict[str, list[dict[str, float]]], split: int) -> dict[str, float]:
    """EASE at its best: per split, each metric at the lambda that scored it best on the test."""
    runs = [results[f"EASE, lambda {lam:g}"][split] for lam in EASE_LAMBDAS]
    return {column: max(run[column] for run in runs) for column in RANKING_COLUMNS}


def ranking_table(
    data: Path, splits: list[int], variants: bool = False, large: bool = False
) -> dict[str, list[dict[str, float]]]:
    rankers: dict[str, Ranker] = {
        "most popular": popular_ranker,
        "item cosine (all neighbours)": cosine_ranker,
        **{f"EASE, lambda {lam:g}": ease_ranker(lam) for lam in EASE_LAMBDAS},
    }
    peer = implicit_ranker()
    if peer is not None:
        rankers["implicit ALS (32 factors)"] = peer
    else:
        print("(implicit not installed: its ALS skipped; pip install 'recsql[bench]')")
    results: dict[str, list[dict[str, float]]] = {"recsql als (default)": []}
    for k in splits:
        train, test = ratings_from_file(data / f"u{k}.base"), ratings_from_file(data / f"u{k}.test")
        results["recsql als (default)"].append(recsql_lists(train, test))
        if large:
            results.setdefault(f"recsql: {LARGE_CATALOGUE}", []).append(recsql_lists(train, test, limit=0))
        for name, params in LIST_VARIANTS.items() if variants else ():
            results.setdefault(f"recsql: {name}", []).append(recsql_lists(train, test, **params))  # type: ignore[arg-type]
        for name, ranker in rankers.items():
            results.setdefault(name, []).append(list_quality(train, test, ranker))
        results.setdefault("EASE, tuned on the test (best lambda per split and list)", []).append(
            tuned_ease(results, len(results["most popular"]) - 1)
        )
        print(f"  ranking u{k}: " + ", ".join(f"{n} {r[-1]['ndcg_at_10']:.3f}" for n, r in results.items()), flush=True)
    print()
    print(f"MovieLens 100K, top-10 lists and top-20 similar movies, mean over u{','.join(map(str, splits))}")
    print()
    print("| ranker | P@10 | R@10 | NDCG@10 | coverage | similar movies NDCG@10 | similar, u1 | fit s/split |")
    print("|---|---|---|---|---|---|---|---|")
    for name, rows in results.items():
        means = [np.mean([r.get(c, np.nan) for r in rows]) for c in RANKING_COLUMNS]
        first = rows[0].get("similar_ndcg_at_10", np.nan) if splits[0] == 1 else np.nan
        fit = np.mean([r.get("fit_seconds", np.nan) for r in rows])
        cells = [*means, first]
        print(
            f"| {name} | "
            + " | ".join("-" if np.isnan(m) else f"{m:.3f}" for m in cells)
            + (" | -" if np.isnan(fit) else f" | {fit:.2f}")
            + " |"
        )
    return results


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--splits", default="1,2,3,4,5")
    parser.add_argument("--json", type=Path, help="also write the results as JSON here")
    parser.add_argument("--no-peers", action="store_true", help="skip Surprise even if installed")
    parser.add_argument("--cg", action="store_true", help="also run the tutorial's CG (slow: ~25 s a split)")
    parser.add_argument("--ranking", action="store_true", help="also the ranking table (lists users see)")
    parser.add_argument("--list-variants", action="store_true", help="with --ranking: the variants of the default")
    parser.add_argument(
        "--large-catalogue",
        action="store_true",
        help="with --ranking: also recsql with the large-catalogue item model forced on",
    )
    parser.add_argument(
        "--variant",
        action="append",
        default=[],
        metavar="K=V,...",
        help="also run als with these parameters, e.g. features=8,samples=60",
    )
    args = parser.parse_args()
    splits = [int(s) for s in args.splits.split(",")]

    contenders: dict[str, Callable] = {"recsql als (default)": ours("als")}
    for variant in args.variant:
        params = dict(item.split("=") for item in variant.split(","))
        typed = {
            k: (v == "true" if v in ("true", "false") else float(v) if "." in v else int(v)) for k, v in params.items()
        }
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
    print(
        f"MovieLens 100K, test RMSE per split (u{','.join(map(str, splits))}) and mean; "
        f"{platform.processor() or platform.machine()}, {platform.python_version()}"
    )
    print()
    header = "| algorithm | " + " | ".join(f"u{k}" for k in splits) + " | mean RMSE | mean MAE | fit s/split |"
    print(header)
    print("|" + "---|" * (len(splits) + 4))
    for name, rows in results.items():
        rmse = [r[0] for r in rows]
        print(
            f"| {name} | "
            + " | ".join(f"{x:.4f}" for x in rmse)
            + f" | {np.mean(rmse):.4f} | {np.mean([r[1] for r in rows]):.4f} | {np.mean([r[2] for r in rows]):.2f} |"
        )
    ranking = None
    if args.ranking:
        print()
        ranking = ranking_table(args.data, splits, variants=args.list_variants, large=args.large_catalogue)
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "rating": {
                        n: [dict(zip(("rmse", "mae", "fit_seconds"), r)) for r in rows] for n, rows in results.items()
                    },
                    "ranking": ranking,
                },
                indent=2,
            )
        )


if __name__ == "__main__":
    main()
