#!/usr/bin/env python3
"""Simulator: two models in a traffic split, users played from held-out MovieLens ratings.

    python scripts/simulate_split.py [--data ../shared/data/ml-100k/u.data]
        [--database-url URL] [--share 0.5] [--visits 3] [--seed 0]

End to end, through what an application would use: each user's ratings are split at
random (``--holdout`` of them held out, seeded); the rest are imported and trained on
(model A: ``recsql train`` with its defaults); model B is the most-popular baseline
(each user's ten most-rated movies they have not rated), stored as a model version
beside it.  Both lists are scored offline (NDCG@10 against the held-out ratings of 4
or more).  Then ``recsql models split A B --share`` runs, and every user visits
``--visits`` times: their list is read from the ``recommended_movies`` view (which
names the serving model), the ten movies are logged as ``shown`` events, and the user
examines rank r with probability 1/log2(r + 1) and clicks a movie they rated 4 or more
in the held-out data (then rates it: a conversion).  ``recsql models online`` must
pick the model with the better offline lists at p < 0.01; the script prints both and
exits 1 when it does not.  Without ``--database-url``, a SQLite file in a temporary
folder.  Seeded: the same run gives the same figures.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd
from sqlalchemy import insert, select, text

import recsql
from recsql.db.bulk import insert_columns
from recsql.db.tables import Model
from recsql.store.write import now

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT.parent / "shared" / "data" / "ml-100k" / "u.data"
N = 10


def read_ratings(path: Path) -> pd.DataFrame:
    return pd.read_csv(path, sep="\t", names=["user_id", "movie_id", "value", "at"])


def holdout(ratings: pd.DataFrame, share: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    held = np.random.default_rng(seed).random(len(ratings)) < share
    return ratings[~held], ratings[held]


def store_popular(engine, train: pd.DataFrame, like: int) -> int:
    """Model B: each user's N most-rated movies they have not rated, stored as a retired
    (complete, not active) version that copies model ``like``'s factors, so that every
    reader of a version finds what it expects."""
    counts = train.groupby("movie_id").size().sort_values(ascending=False, kind="stable")
    means = train.groupby("movie_id")["value"].mean()  # its "predicted rating": the movie's mean
    ranked = counts.index.to_numpy()
    rated = train.groupby("user_id")["movie_id"].apply(set)
    users, ranks, movies = [], [], []
    for user, seen in rated.items():
        top = [m for m in ranked[: N + len(seen)] if m not in seen][:N]
        users += [user] * len(top)
        ranks += list(range(1, len(top) + 1))
        movies += top
    with engine.begin() as conn:
        source = conn.execute(select(Model).where(Model.id == like)).one()
        fields = {c: getattr(source, c) for c in Model.__table__.columns.keys() if c != "id"}
        model_b = conn.execute(
            insert(Model)
            .values({**fields, "status": "retired", "algorithm": "popular", "activated_at": None, "created_at": now()})
            .returning(Model.id)
        ).scalar_one()
        for table in (
            "user_features",
            "movie_features",
            "user_biases",
            "movie_biases",
            "movie_similarities",
            "movie_popularity",
        ):
            columns = [c for c in conn.execute(text(f"SELECT * FROM {table} WHERE 1 = 0")).keys() if c != "model_id"]
            names = ", ".join(columns)
            conn.execute(
                text(
                    f"INSERT INTO {table} (model_id, {names}) SELECT {model_b}, {names} FROM {table} "
                    f"WHERE model_id = {like}"
                )
            )
        scores = np.array([N + 1 - r for r in ranks], dtype=np.float64)
        insert_columns(
            conn,
            "user_recommendations",
            {
                "model_id": np.full(len(users), model_b),
                "user_id": np.array(users),
                "rank": np.array(ranks),
                "movie_id": np.array(movies),
                "predicted_rating": means.reindex(movies).to_numpy(),
                "score": scores,
            },
        )
    return model_b


def stored_lists(engine, model_id: int) -> dict[int, list[int]]:
    with engine.connect() as conn:
        rows = conn.execute(
            text("SELECT user_id, movie_id FROM user_recommendations WHERE model_id = :m ORDER BY user_id, rank"),
            {"m": model_id},
        ).all()
    lists: dict[int, list[int]] = {}
    for user, movie in rows:
        lists.setdefault(user, []).append(movie)
    return lists


def ndcg(lists: dict[int, list[int]], liked: dict[int, set[int]]) -> float:
    """Mean NDCG@10 over users with a liked held-out movie (binary relevance)."""
    discounts = 1 / np.log2(np.arange(2, N + 2))
    scores = []
    for user, relevant in liked.items():
        gains = np.array([m in relevant for m in lists.get(user, [])[:N]], dtype=np.float64)
        ideal = discounts[: min(len(relevant), N)].sum()
        scores.append(float((gains * discounts[: len(gains)]).sum() / ideal))
    return float(np.mean(scores))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA, help="MovieLens u.data (tab-separated)")
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--share", type=float, default=0.5, help="B's share of the users")
    parser.add_argument("--visits", type=int, default=3, help="visits per user")
    parser.add_argument("--holdout", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()

    folder = tempfile.TemporaryDirectory()
    url = args.database_url or f"sqlite:///{Path(folder.name) / 'simulate.db'}"
    engine = recsql.connect(url)
    ratings = read_ratings(args.data)
    train, held = holdout(ratings, args.holdout, args.seed)
    path = Path(folder.name) / "train.csv"
    train[["user_id", "movie_id", "value", "at"]].rename(columns={"at": "rated_at"}).to_csv(path, index=False)
    recsql.import_ratings(engine, path, columns="user=user_id,movie=movie_id,rating=value,time=rated_at")
    model_a = recsql.train(engine, seed=args.seed).model_id
    model_b = store_popular(engine, train, model_a)

    liked_rows = held[held.value >= 4]
    liked = liked_rows.groupby("user_id")["movie_id"].apply(set).to_dict()
    rating_of = {(u, m): v for u, m, v in zip(held.user_id, held.movie_id, held.value)}
    offline = {m: ndcg(stored_lists(engine, m), liked) for m in (model_a, model_b)}
    print(
        f"offline NDCG@10 on the held-out ratings of 4 or more: model {model_a} (recsql, A) {offline[model_a]:.3f}, "
        f"model {model_b} (most popular, B) {offline[model_b]:.3f}"
    )

    recsql.split_traffic(engine, model_a, model_b, share=args.share)
    rng = np.random.default_rng(args.seed)
    users = sorted(train.user_id.unique())
    examine = 1 / np.log2(np.arange(2, N + 2))
    clock = int(time.time())
    served = text("SELECT movie_id, rank, model_id FROM recommended_movies WHERE user_id = :u ORDER BY rank LIMIT 10")
    events: list[tuple] = []
    checkpoints = []  # the clock every 25 visits: when could the split have been called?
    with engine.connect() as conn:
        for _visit in range(args.visits):
            for user in rng.permutation(users):
                clock += 1
                if clock % 25 == 0:
                    checkpoints.append(clock)
                shown = conn.execute(served, {"u": int(user)}).all()
                events += [("shown", int(user), m, clock, model, "recommended", rank, None) for m, rank, model in shown]
                for movie, rank, _ in shown:
                    if movie in liked.get(user, ()) and rng.random() < examine[rank - 1]:
                        events.append(("clicked", int(user), movie, clock + 5, None, None, None, None))
                        events.append(
                            ("rated", int(user), movie, clock + 60, None, None, None, rating_of[(user, movie)])
                        )
    frame = pd.DataFrame(events, columns=["kind", "user_id", "movie_id", "at", "model_id", "list", "rank", "value"])
    recsql.log_events(engine, frame)

    online = recsql.online_metrics(engine)
    for name, v in (("A", online.a), ("B", online.b)):
        ctr = v.click_through
        print(
            f"model {v.model_id} ({name}): {v.impressions:,} impressions of {v.users:,} users; click-through "
            f"{ctr.rate:.2%} ({ctr.low:.2%} .. {ctr.high:.2%}); conversion {v.conversion.rate:.2%}; "
            f"click coverage {v.click_coverage:.2%}"
        )
    print(f"verdict: {online.verdict}")
    better_offline = max(offline, key=offline.get)
    better_online = online.b.model_id if online.click_through.difference > 0 else online.a.model_id
    told = online.click_through.p_value < 0.01 and better_online == better_offline
    total = online.a.impressions + online.b.impressions
    print(
        f"{'agrees' if told else 'DOES NOT agree'} with the offline lists: model {better_offline} is better offline; "
        f"online p = {online.click_through.p_value:.2g} from {total:,} impressions"
    )
    for checkpoint in checkpoints:
        early = recsql.online_metrics(engine, model_a, model_b, until=checkpoint)
        winner = early.b.model_id if early.click_through.difference > 0 else early.a.model_id
        if early.click_through.p_value < 0.01 and winner == better_offline:
            print(
                f"first told apart at p < 0.01 after {early.a.impressions + early.b.impressions:,} impressions "
                f"(p = {early.click_through.p_value:.2g}, {early.a.users + early.b.users:,} users; looked at every "
                "25 visits, so optimistic: each look is another chance, and one user's impressions are not independent)"
            )
            break
    engine.dispose()
    return 0 if told else 1


if __name__ == "__main__":
    sys.exit(main())
