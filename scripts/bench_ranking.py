#!/usr/bin/env python3
"""Benchmark: the stored lists' quality at catalogue sizes MovieLens 100K cannot show.

    python scripts/bench_ranking.py                                   # 1 M ratings, 10k movies
    python scripts/bench_ranking.py --sizes 1000000:6500:10000,5000000:32500:30000
    python scripts/bench_ranking.py --sizes 5000000:32500:30000 --no-ials
    python scripts/bench_ranking.py --sizes 25000000:162541:60000 --no-ease --ials-regs 50,500 --ials-alphas 10

Each size is RATINGS:USERS:MOVIES of the taste-following synthetic catalogue
(``recsql generate``'s, seed 0: which movies users rate follows their hidden tastes,
so who-rated-what holds more than popularity).  One random 80/20 split (seed 0); the
protocol is recsql's own (:mod:`recsql.evaluation.metrics`): every training movie the
user did not rate is ranked, relevant = a test rating >= 4, NDCG@10 of the top 10, and
top-20 similar-movie lists scored "because you rated".

Rows: recsql's default (through ``evaluate_on``, what ``recsql train`` would store, its
fit seconds), most popular, dense EASE where its movies x movies inverse fits
(``--ease-limit``, default 12,000 movies) at each lambda of ``--ease-lambdas`` and the
best of them per list chosen on the test (an oracle), and implicit's iALS (when
installed: ``pip install 'recsql[bench]'``) over a small grid, again its best per list
on the test.  Reference rankers score a block of users at a time, so no dense users x
movies array is held.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable

import numpy as np
import scipy.sparse as sp

from recsql.algorithms.quality import because_you_rated_top, top_k_quality
from recsql.algorithms.ranking import ExactItemItem, FactorChoice, dense_gram, ease_weights, rated_by
from recsql.algorithms.topk import TopK
from recsql.data.matrix import RatingMatrix
from recsql.data.synthetic import synthetic_ratings
from recsql.evaluation.baselines import ranked
from recsql.evaluation.evaluate import evaluate_on
from recsql.evaluation.metrics import HeldOut
from recsql.evaluation.splits import split_random
from recsql.options import FitOptions

# A reference ranker: rows of users' 0/1 training patterns -> their scores of every movie.
Scores = Callable[[sp.csr_matrix, np.ndarray], np.ndarray]


def catalogue(ratings: int, users: int, movies: int) -> tuple[RatingMatrix, RatingMatrix]:
    frame = synthetic_ratings(ratings, users, movies, seed=0).ratings
    matrix = RatingMatrix.from_triples(frame.user_id.to_numpy(), frame.movie_id.to_numpy(), frame.value.to_numpy())
    return split_random(matrix, 0.2, seed=0)


def quality(held: HeldOut, scores: Scores, similar: TopK | None) -> dict[str, float]:
    """NDCG@10 of the top 10 by ``scores`` and, given lists, of "because you rated"."""
    rated = held.rated[held.users]
    top = ranked(scores, rated, 10, users=held.users)
    result = {"ndcg": top_k_quality(top, held.relevant)["ndcg_at_10"]}
    if similar is not None:
        result["similar"] = top_k_quality(because_you_rated_top(similar, rated), held.relevant)["ndcg_at_10"]
    return result


def popular(train: RatingMatrix, held: HeldOut) -> dict[str, float]:
    counts = np.bincount(train.cols, minlength=train.n_movies).astype(np.float32)
    return quality(held, lambda rows, users: np.broadcast_to(counts, (rows.shape[0], len(counts))), None)


def ease(train: RatingMatrix, held: HeldOut, lam: float) -> dict[str, float]:
    model = ExactItemItem(ease_weights(dense_gram(rated_by(train.csr)), lam), lam, similar_blend=0.0)
    lists = model.similar_movies(20, np.zeros(train.n_movies))
    return quality(held, lambda rows, users: model.choice_scores(users, rows), lists)


def ials(train: RatingMatrix, held: HeldOut, factors: int, regularization: float, alpha: float) -> dict[str, float]:
    from implicit.cpu.als import AlternatingLeastSquares  # type: ignore[import-untyped]

    model = AlternatingLeastSquares(
        factors=factors, regularization=regularization, alpha=alpha, iterations=15, random_state=0
    )
    model.fit(rated_by(train.csr), show_progress=False)
    users, items = np.asarray(model.user_factors), np.asarray(model.item_factors)
    unit = items / np.maximum(np.linalg.norm(items, axis=1, keepdims=True), 1e-12)
    lists = FactorChoice(users, unit).similar_movies(20, np.zeros(train.n_movies))  # cosine, no lift
    return quality(held, lambda rows, rows_users: users[rows_users] @ items.T, lists)


def best(runs: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each list's best over a grid (chosen on the test: an oracle), and where it was."""
    out: dict[str, float] = {}
    for column in ("ndcg", "similar"):
        name = max(runs, key=lambda n: runs[n][column])
        out[column], out[f"{column}_at"] = runs[name][column], name  # type: ignore[assignment]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sizes", default="1000000:6500:10000", help="RATINGS:USERS:MOVIES,...")
    parser.add_argument("--ease-limit", type=int, default=12_000)
    parser.add_argument("--ease-lambdas", default="250,500,1000,2000")
    parser.add_argument("--no-ials", action="store_true")
    parser.add_argument("--no-ease", action="store_true")
    parser.add_argument("--ials-regs", default="0.5,5,50,500", help="iALS penalties of the grid")
    parser.add_argument("--ials-alphas", default="2,10", help="iALS confidence weights of the grid")
    args = parser.parse_args()
    for size in args.sizes.split(","):
        ratings, users, movies = (int(x) for x in size.split(":"))
        started = time.perf_counter()
        train, test = catalogue(ratings, users, movies)
        took = time.perf_counter() - started
        print(f"\n{ratings:,} ratings, {users:,} users, {movies:,} movies (generated in {took:.0f} s)")
        held = HeldOut.of(train.user_ids, train.movie_ids, train, test)
        rows: dict[str, dict[str, float]] = {}
        started = time.perf_counter()
        fold = evaluate_on([(train, test)], FitOptions()).folds[0]
        rows["recsql default"] = {
            "ndcg": fold.metrics["ndcg_at_10"],
            "similar": fold.metrics["similar_ndcg_at_10"],
            "seconds": time.perf_counter() - started,
        }
        print(f"  recsql default: {rows['recsql default']}", flush=True)
        rows["most popular"] = popular(train, held)
        if train.n_movies <= args.ease_limit and not args.no_ease:
            grid = {f"lambda {lam}": ease(train, held, float(lam)) for lam in args.ease_lambdas.split(",")}
            for name, run in grid.items():
                print(f"  EASE {name}: {run}", flush=True)
            rows["EASE (best lambda per list, on the test)"] = best(grid)
        if not args.no_ials:
            try:
                grid = {
                    f"{f} factors, reg {r}, alpha {a}": ials(train, held, f, r, a)
                    for f in (128,)
                    for r in (float(x) for x in args.ials_regs.split(","))
                    for a in (float(x) for x in args.ials_alphas.split(","))
                }
            except ImportError:
                print("  (implicit not installed: iALS skipped; pip install 'recsql[bench]')")
            else:
                for name, run in grid.items():
                    print(f"  iALS {name}: {run}", flush=True)
                rows["implicit iALS (best per list, on the test)"] = best(grid)
        base = rows["most popular"]["ndcg"]
        print()
        print("| ranker | NDCG@10 | x most popular | similar movies NDCG@10 | seconds |")
        print("|---|---|---|---|---|")
        for name, row in rows.items():
            similar = f"{row['similar']:.3f}" if "similar" in row else "-"
            seconds = f"{row['seconds']:.1f}" if "seconds" in row else "-"
            print(f"| {name} | {row['ndcg']:.3f} | {row['ndcg'] / base:.2f} | {similar} | {seconds} |")


if __name__ == "__main__":
    main()
