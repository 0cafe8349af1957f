"""The steps every run takes after reading, on any backend: fit -> item model -> lists
-> metrics.  A retrain (:mod:`recsql.train`) takes them and then writes and activates;
an evaluation (:mod:`recsql.evaluation.evaluate`) takes them and writes nothing, so
what is measured is what would be stored.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from recsql.algorithms.factors import Factors
from recsql.algorithms.outputs import ListMetric, ModelOutputs, Recommended, popularity
from recsql.algorithms.ranking import ItemItem, ItemPenalty
from recsql.algorithms.topk import TopK, block_count
from recsql.backends import Compute
from recsql.data.matrix import RatingMatrix
from recsql.evaluation.metrics import accuracy_metrics, list_metrics
from recsql.progress import Phases

Scale = tuple[float, float] | None  # the rating scale predictions are clipped to; None: the data's


@dataclass(frozen=True)
class Lists:
    """What a run lists: ``similar_k`` similar movies per movie ordered by ``metric``
    (its item-item model penalised by ``item_regularization``), ``recommend_n``
    recommendations per user."""

    similar_k: int
    metric: ListMetric
    item_regularization: ItemPenalty
    recommend_n: int = 10


@dataclass(frozen=True)
class Fitted:
    """A fit, what it was fitted to, the ratings it is scored on (None: none) and the
    scale its predictions are clipped to."""

    matrix: RatingMatrix
    test: RatingMatrix | None
    factors: Factors
    items: ItemItem | None
    scale: Scale = None

    @property
    def clipped(self) -> Factors:
        """The factors predicting within the rating scale (not just the data's range)."""
        if self.scale is not None and self.factors.clip is not None:
            return replace(self.factors, clip=self.scale)
        return self.factors


@dataclass(frozen=True)
class Listed:
    """A fit's stored lists."""

    similar: TopK
    recommended: Recommended


def fit(
    compute: Compute,
    matrix: RatingMatrix,
    test: RatingMatrix | None,
    lists: Lists,
    phase: Phases,
    steps: int | None,
    *,
    scale: Scale = None,
    prefix: str = "",
) -> Fitted:
    """The rating model (phase ``fit``, ``steps`` long) and the lists' item model
    (phase ``items``) of ``matrix``; ``prefix`` names a second fit's phases (``refit``)."""
    with phase(prefix.strip() or "fit", total=steps) as step:
        factors = compute.fit(matrix, step)
    with phase(f"{prefix}items"):
        items = compute.items(matrix, lists.metric, lists.item_regularization)
    return Fitted(matrix, test, factors, items, scale)


def listed(compute: Compute, fitted: Fitted, lists: Lists, phase: Phases, prefix: str = "") -> Listed:
    """The similar movies and recommendations a fit would store."""
    matrix, factors, items = fitted.matrix, fitted.clipped, fitted.items
    with phase(f"{prefix}similarities", total=block_count(matrix.n_movies, matrix.n_movies)) as step:
        similar = compute.similar(factors, items, lists.similar_k, lists.metric, step)
    with phase(f"{prefix}recommendations", total=block_count(matrix.n_users, matrix.n_movies)) as step:
        recommended = compute.recommended(factors, items, matrix, lists.recommend_n, step)
    return Listed(similar, recommended)


def scored(fitted: Fitted, lists: Lists, out: Listed, phase: Phases) -> dict[str, float]:
    """A fit's accuracy on its held-out ratings and its lists' quality (phase ``evaluate``)."""
    with phase("evaluate"):
        factors = fitted.clipped
        return {
            **accuracy_metrics(factors, fitted.matrix, fitted.test),
            **list_metrics(
                factors,
                fitted.matrix,
                fitted.test,
                out.similar,
                out.recommended.indices,
                larger_is_similar=lists.metric != "l1",
            ),
        }


def fit_facts(fitted: Fitted) -> dict[str, Any]:
    """What the solver reported about its fit, stored beside a retrain's metrics."""
    factors = fitted.factors
    return {
        **{k: v for k, v in factors.info.items() if isinstance(v, (int, float, bool, list))},
        "stored_features": int(factors.movie_factors.shape[1]),
    }


def run_metrics(fitted: Fitted, lists: Lists, out: Listed, phase: Phases) -> dict[str, Any]:
    """What a run stores as its metrics: :func:`scored` and :func:`fit_facts`."""
    return {**scored(fitted, lists, out, phase), **fit_facts(fitted)}


def stored_outputs(fitted: Fitted, out: Listed) -> ModelOutputs:
    """Everything a run writes of a fit: its factors (clipped to the scale), its lists
    and the popular movies of the ratings it was fitted to."""
    return ModelOutputs(fitted.clipped, out.similar, out.recommended, popularity(fitted.matrix), fitted.matrix.nnz)
