"""``recsql report``: one self-contained HTML page that shows whether a model is good.

The page is a single file (every plot an inline PNG, the style inline, no script and no
network): an admin can mail it, open it offline, or keep one per retrain.  It holds the
plots an admin would rather look at than read (the ratings the model learnt from, its
training curve, the history of runs, a map of the movies' features, its similarity
scores), its metrics against the previous model with better and worse marked, spot
checks of its similar-movie lists, and, once a traffic split has run with it, how its
users responded against the other model's (:mod:`recsql.online`).  matplotlib comes with
the ``plots`` extra.
"""

from __future__ import annotations

import base64
import html
import io
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
from sqlalchemy import Connection, Engine

from recsql import store
from recsql.compare import metric_change
from recsql.data.matrix import RatingMatrix
from recsql.data.ratings import ratings_from_database
from recsql.db.tables import PRUNED
from recsql.errors import InvalidParameter
from recsql.evaluation.tuning import require_matplotlib
from recsql.inspection import ModelInspection, inspect_model
from recsql.online import OnlineMetrics, online_metrics, split_bounds
from recsql.store import read
from recsql.store.catalogue import every_title

LABELLED = 12  # most-rated movies named on the feature map
SPOT_CHECKS = 10  # most-rated movies whose similar movies are listed
SHOWN_METRICS = (
    "test_rmse",
    "test_mae",
    "train_rmse",
    "ndcg_at_10",
    "precision_at_10",
    "recall_at_10",
    "similar_ndcg_at_10",
    "coverage",
    "popularity_lift",
    "gini",
    "novelty",
    "intra_list_diversity",
)


@dataclass(frozen=True)
class Figure:
    title: str
    caption: str
    png: bytes


def write_report(engine: Engine, out: str | Path, model_id: int | None = None) -> Path:
    """Write the report of model ``model_id`` (default: the active one) to ``out``."""
    require_matplotlib()
    inspection = inspect_model(engine, model_id)
    model = inspection.model
    if model.status not in store.COMPLETE:
        raise InvalidParameter(
            f"model {model.model_id} is {model.status}: it stores no lists to report on; "
            "see `recsql models` for the complete ones"
        )
    matrix = ratings_from_database(engine, model.params.get("duplicates", "max"), model.source)
    with engine.connect() as conn:
        movies = store.load_movie_factors(conn, model)
        scores = read.similarity_scores(conn, model.model_id)
        catalogue = every_title(conn)
        spot = _spot_checks(conn, model.model_id, matrix, catalogue)
    history = [m for m in store.list_models(engine) if m.metrics and m.status in (*store.COMPLETE, PRUNED)]
    previous = next((m for m in history if m.model_id < model.model_id), None)
    figures = [
        _ratings_figure(matrix),
        _activity_figure(matrix),
        _training_figure(model),
        _history_figure(sorted(history, key=lambda m: m.model_id)),
        _map_figure(movies.movie_ids, movies.movie_factors, matrix, catalogue),
        _similarity_figure(scores, model.params.get("metric")),
    ]
    page = _page(inspection, previous, [f for f in figures if f is not None], spot, _online(engine, model.model_id))
    path = Path(out)
    path.write_text(page, encoding="utf-8")
    return path


# ---------------------------------------------------------------------- figures


def _png(fig: Any) -> bytes:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return buffer.getvalue()


def _axes(width: float = 6.0, height: float = 3.6, columns: int = 1) -> tuple[Any, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt.subplots(1, columns, figsize=(width, height))


def _ratings_figure(matrix: RatingMatrix) -> Figure:
    values, counts = np.unique(matrix.values, return_counts=True)
    fig, ax = _axes()
    ax.bar(values, counts, width=0.8 * (np.min(np.diff(values)) if len(values) > 1 else 1.0), color="#4c72b0")
    ax.set_xlabel("rating")
    ax.set_ylabel("ratings")
    share = counts / counts.sum()
    return Figure(
        "Rating distribution",
        f"{matrix.nnz:,} ratings; most common {values[np.argmax(counts)]:g} ({share.max():.0%}).",
        _png(fig),
    )


def _activity_figure(matrix: RatingMatrix) -> Figure:
    per_user = np.bincount(matrix.rows, minlength=matrix.n_users)
    per_movie = np.bincount(matrix.cols, minlength=matrix.n_movies)
    fig, (left, right) = _axes(10.0, 3.6, columns=2)
    for ax, counts, who in ((left, per_user, "user"), (right, per_movie, "movie")):
        bins = np.logspace(0, np.log10(max(2, counts.max())) + 0.01, 30)
        ax.hist(counts, bins=bins, color="#55a868")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel(f"ratings per {who}")
        ax.set_ylabel(f"{who}s")
    return Figure(
        "Ratings per user and per movie",
        f"{matrix.n_users:,} users (median {np.median(per_user):g} ratings), {matrix.n_movies:,} movies "
        f"(median {np.median(per_movie):g}); log scales.",
        _png(fig),
    )


def _training_figure(model: store.ModelInfo) -> Figure | None:
    curve = (model.metrics or {}).get("sweep_train_rmse")
    if not curve:
        return None
    fig, ax = _axes()
    ax.plot(np.arange(1, len(curve) + 1), curve, marker="o", color="#c44e52")
    ax.set_xlabel("ALS sweep")
    ax.set_ylabel("train RMSE")
    return Figure(
        "Training curve", f"Train RMSE after each ALS sweep ({len(curve)} sweeps; last {curve[-1]:.4f}).", _png(fig)
    )


def _history_figure(history: list[store.ModelInfo]) -> Figure | None:
    if not history:
        return None
    ids = [m.model_id for m in history]
    rmse = [(m.metrics or {}).get("test_rmse") for m in history]
    coverage = [(m.metrics or {}).get("coverage") for m in history]
    fig, ax = _axes()
    ax.plot(ids, [np.nan if v is None else v for v in rmse], marker="o", color="#4c72b0", label="test RMSE")
    ax.set_xlabel("model")
    ax.set_ylabel("test RMSE")
    other = ax.twinx()
    other.plot(ids, [np.nan if v is None else v for v in coverage], marker="s", color="#dd8452", label="coverage")
    other.set_ylabel("coverage")
    ax.set_xticks(ids)
    fig.legend(loc="upper right")
    return Figure(
        "Model history",
        "Test RMSE (where a run held ratings out) and catalogue coverage of every complete run.",
        _png(fig),
    )


def _map_figure(
    movie_ids: np.ndarray,
    vectors: np.ndarray,
    matrix: RatingMatrix,
    catalogue: dict[int, tuple[str | None, str | None]],
) -> Figure | None:
    if len(movie_ids) < 3 or vectors.shape[1] < 2:
        return None
    centred = vectors - vectors.mean(axis=0)
    _, _, axes = np.linalg.svd(centred, full_matrices=False)
    points = centred @ axes[:2].T
    genres = [((catalogue.get(int(m), (None, None))[1] or "unknown").split("|")[0]) for m in movie_ids]
    counts = np.bincount(matrix.cols, minlength=matrix.n_movies)
    popularity = np.zeros(len(movie_ids))
    rows = np.searchsorted(matrix.movie_ids, movie_ids).clip(0, matrix.n_movies - 1)
    known = matrix.movie_ids[rows] == movie_ids
    popularity[known] = counts[rows[known]]
    fig, ax = _axes(9.0, 6.5)
    names = sorted(set(genres), key=lambda g: -genres.count(g))
    import matplotlib.pyplot as plt

    palette = plt.get_cmap("tab20")
    for i, genre in enumerate(names[:20]):
        chosen = np.array([g == genre for g in genres])
        ax.scatter(points[chosen, 0], points[chosen, 1], s=6, color=palette(i % 20), label=genre, alpha=0.7)
    for row in np.argsort(-popularity, kind="stable")[:LABELLED]:
        title = catalogue.get(int(movie_ids[row]), (None, None))[0] or str(int(movie_ids[row]))
        ax.annotate(title, points[row], fontsize=7, xytext=(3, 3), textcoords="offset points")
    ax.set_xlabel("first principal component")
    ax.set_ylabel("second principal component")
    ax.legend(fontsize=6, markerscale=2, ncol=2, loc="best")
    return Figure(
        "Map of the movies' features",
        f"Each movie's feature vector projected on its two principal components, coloured by its first "
        f"genre; the {LABELLED} most-rated movies named.",
        _png(fig),
    )


def _similarity_figure(scores: np.ndarray, metric: str | None) -> Figure | None:
    if not len(scores):
        return None
    fig, ax = _axes()
    ax.hist(scores, bins=50, color="#8172b2")
    ax.set_xlabel("similarity score" if metric != "l1" else "L1 distance")
    ax.set_ylabel("stored pairs")
    return Figure(
        "Similarity scores",
        f"The {len(scores):,} stored similar-movie scores (median {np.median(scores):.3g}).",
        _png(fig),
    )


def _spot_checks(
    conn: Connection, model_id: int, matrix: RatingMatrix, catalogue: dict[int, tuple[str | None, str | None]]
) -> list[tuple[str, list[str]]]:
    counts = np.bincount(matrix.cols, minlength=matrix.n_movies)
    top = [int(m) for m in matrix.movie_ids[np.argsort(-counts, kind="stable")[:SPOT_CHECKS]]]
    listed = read.similar_pairs(conn, model_id, top, depth=5)

    def name(movie: int) -> str:
        return catalogue.get(movie, (None, None))[0] or str(movie)

    return [(name(movie), [name(s) for m, s in listed if m == movie]) for movie in top]


# ---------------------------------------------------------------------- the page


STYLE = """
body { font-family: system-ui, sans-serif; margin: 2rem auto; max-width: 1000px; color: #222; }
h1 { font-size: 1.5rem; } h2 { font-size: 1.15rem; margin-top: 2rem; }
table { border-collapse: collapse; margin: 0.5rem 0; } td, th { padding: 0.2rem 0.7rem; text-align: left; }
th { border-bottom: 1px solid #999; } td.n { text-align: right; font-variant-numeric: tabular-nums; }
.better { color: #1a7f37; } .worse { color: #b42318; } figure { margin: 1rem 0; }
figcaption { color: #555; font-size: 0.9rem; } img { max-width: 100%; }
"""


def _page(
    inspection: ModelInspection,
    previous: store.ModelInfo | None,
    figures: list[Figure],
    spot: list[tuple[str, list[str]]],
    online: OnlineMetrics | None = None,
) -> str:
    model = inspection.model
    e = html.escape
    parts = [
        "<!DOCTYPE html>",
        "<html lang='en'><head><meta charset='utf-8'>",
        f"<title>recsql model {model.model_id}</title><style>{STYLE}</style></head><body>",
        f"<h1>recsql model {model.model_id} ({e(model.algorithm)}, {e(model.status)})</h1>",
        f"<p>{model.n_ratings or 0:,} ratings of {model.n_users or 0:,} users and {model.n_movies or 0:,} movies; "
        f"trained {model.created_at:%Y-%m-%d %H:%M}; plan: {e(str(model.params.get('plan', '')))}. "
        f"Report written {datetime.now(UTC):%Y-%m-%d %H:%M} UTC.</p>",
        "<h2>Metrics</h2>",
        _metrics_table(model, previous),
    ]
    for figure in figures:
        data = base64.b64encode(figure.png).decode("ascii")
        parts += [
            f"<h2>{e(figure.title)}</h2>",
            "<figure>",
            f"<img alt='{e(figure.title)}' src='data:image/png;base64,{data}'>",
            f"<figcaption>{e(figure.caption)}</figcaption></figure>",
        ]
    parts += [
        "<h2>Spot checks: the most-rated movies' similar movies</h2>",
        "<table>",
        "<tr><th>movie</th><th>its five most similar movies</th></tr>",
    ]
    parts += [f"<tr><td>{e(name)}</td><td>{e('; '.join(similar))}</td></tr>" for name, similar in spot]
    parts += ["</table>", *_online_section(online)]
    parts += [
        "<h2>Storage</h2>",
        "<table>",
        "<tr><th>table</th><th>rows</th><th>bytes (estimated share)</th></tr>",
    ]
    parts += [
        f"<tr><td>{t.table}</td><td class='n'>{t.rows:,}</td>"
        f"<td class='n'>{'' if t.model_bytes is None else f'{t.model_bytes:,}'}</td></tr>"
        for t in inspection.tables
    ]
    parts += ["</table>", "</body></html>"]
    return "\n".join(parts)


def _online(engine: Engine, model_id: int) -> OnlineMetrics | None:
    """The online metrics of the latest traffic split this model took part in, if any."""
    split = next((s for s in store.list_splits(engine) if model_id in (s.model_a, s.model_b)), None)
    if split is None:
        return None
    since, until = split_bounds(split)
    return online_metrics(engine, split.model_a, split.model_b, since=since, until=until)


def _online_section(online: OnlineMetrics | None) -> list[str]:
    if online is None:
        return []
    rows = [
        "<h2 id='online'>Online: what users did with each model's lists</h2>",
        f"<p>Model {online.b.model_id} (B) against model {online.a.model_id} (A); an impression is a movie "
        f"shown to a user, clicked or converted within {online.window:,} seconds; 95 % intervals.</p>",
        "<table id='online-metrics'><tr><th>variant</th><th>model</th><th>impressions</th><th>users</th>"
        "<th>click-through</th><th>95 % interval</th><th>conversion</th><th>95 % interval</th>"
        "<th>clicked movies</th><th>click coverage</th></tr>",
    ]
    for name, v in (("A", online.a), ("B", online.b)):
        ctr, conversion = v.click_through, v.conversion
        rows.append(
            f"<tr><td>{name}</td><td class='n'>{v.model_id}</td><td class='n'>{v.impressions:,}</td>"
            f"<td class='n'>{v.users:,}</td><td class='n'>{ctr.rate:.2%}</td>"
            f"<td class='n'>{ctr.low:.2%} .. {ctr.high:.2%}</td><td class='n'>{conversion.rate:.2%}</td>"
            f"<td class='n'>{conversion.low:.2%} .. {conversion.high:.2%}</td>"
            f"<td class='n'>{v.clicked_movies:,}</td><td class='n'>{v.click_coverage:.2%}</td></tr>"
        )
    diff = online.click_through
    rows += [
        "</table>",
        f"<p id='online-verdict'><strong>{html.escape(online.verdict)}</strong> (B - A click-through "
        f"{diff.difference:+.2%}, 95 % interval {diff.low:+.2%} .. {diff.high:+.2%}, p = {diff.p_value:.2g})</p>",
    ]
    return rows


def _metrics_table(model: store.ModelInfo, previous: store.ModelInfo | None) -> str:
    mine, theirs = model.metrics or {}, (previous.metrics or {}) if previous else {}
    header = f"<th>model {model.model_id}</th>" + (f"<th>model {previous.model_id}</th><th></th>" if previous else "")
    rows = [f"<table><tr><th>metric</th>{header}</tr>"]
    for name in SHOWN_METRICS:
        value = mine.get(name)
        if not isinstance(value, (int, float)):
            continue
        cells = f"<td>{name}</td><td class='n'>{value:.4f}</td>"
        if previous is not None:
            change = metric_change(name, theirs.get(name), value)  # is this model better than the previous?
            word = {True: "better", False: "worse", None: ""}[change.better]
            shown = "" if change.a is None else f"{change.a:.4f}"
            cells += f"<td class='n'>{shown}</td><td><span class='{word}'>{word}</span></td>"
        rows.append(f"<tr>{cells}</tr>")
    rows.append("</table>")
    return "\n".join(rows)
