"""recsql in a notebook: evaluate on your own split against the baselines, plot, then
save the model into SQLite for the application to read with SQL.

Each ``# %%`` is a notebook cell (Jupyter, VS Code and Spyder run them one by one);
run whole, it is a script, and ``tests/test_notebook_example.py`` runs it so this page
never stops working:

    python docs/examples/notebook.py PATH/TO/ml-100k OUT_DIR

MovieLens 100K: https://grouplens.org/datasets/movielens/100k/ (``u.data``, ``u.item``).
"""

# %% Load the ratings into a DataFrame: any columns, mapped by name.
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")  # a file, not a window (drop this line in a notebook)
import matplotlib.pyplot as plt
import pandas as pd
import sqlalchemy

import recsql

ml100k = Path(sys.argv[1] if len(sys.argv) > 1 else "ml-100k")
out = Path(sys.argv[2] if len(sys.argv) > 2 else ".")
ratings = pd.read_csv(ml100k / "u.data", sep="\t", names=["userId", "movieId", "rating", "timestamp"])
columns = {"user": "userId", "movie": "movieId", "rating": "rating", "time": "timestamp"}
print(f"{len(ratings):,} ratings of {ratings.userId.nunique()} users and {ratings.movieId.nunique()} movies")

# %% Evaluate as the application will be used: fit on the past, score the latest 20 %,
# beside the most popular movies and EASE on the same split.
result = recsql.evaluate(train=ratings, columns=columns, split="time", test_fraction=0.2, baselines=("popular", "ease"))
scores = pd.DataFrame({"recsql": result.mean, **{name: result.baseline_mean(name) for name in result.baselines}}).T[
    ["ndcg_at_10", "similar_ndcg_at_10", "coverage"]
]
print(scores.round(3))
scores.to_csv(out / "evaluation.csv")
print(f"recsql's predicted ratings: RMSE {result.mean['test_rmse']:.3f} on the latest 20 %")

# %% Plot: NDCG@10 of the recommendations and of the "because you rated" similar lists.
shown = scores.rename(columns={"ndcg_at_10": "recommendations", "similar_ndcg_at_10": "similar movies"})
axes = shown[["recommendations", "similar movies"]].plot.bar(rot=0, figsize=(6, 3.5))
axes.set_ylabel("NDCG@10 (time split, latest 20 %)")
axes.set_title("MovieLens 100K")
plt.tight_layout()
plt.savefig(out / "evaluation.png", dpi=100)

# %% Fit on every rating and look at the model in memory.
model = recsql.fit(ratings, columns=columns)
titles = pd.read_csv(
    ml100k / "u.item", sep="|", encoding="latin-1", header=None, usecols=[0, 1], names=["movieId", "title"]
).set_index("movieId")["title"]
star_wars = model.similar([50], k=5)
print("like Star Wars:", ", ".join(titles[star_wars.similar_movie_id]))
print(model.predict([1, 1], [50, 99999]))  # an unknown movie: the mean, known=False
new_user = model.recommend_for_ratings({50: 5, 181: 5, 1: 2}, n=5)  # someone the model has never seen
print(new_user.merge(titles, left_on="movie_id", right_index=True)[["rank", "title", "predicted_rating"]])

# %% Save it into SQLite: a new model version, active at once, read back with plain SQL.
database = f"sqlite:///{out / 'recsql.db'}"
model_id = model.save(database)
engine = sqlalchemy.create_engine(database)
with engine.connect() as conn:
    rows = conn.execute(
        sqlalchemy.text("SELECT rank, similar_movie_id, score FROM similar_movies WHERE movie_id = 50 ORDER BY rank")
    ).all()
print(f"model {model_id} is active; similar_movies for 50:", [r.similar_movie_id for r in rows[:5]])
engine.dispose()
