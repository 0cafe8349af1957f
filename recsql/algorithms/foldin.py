"""Folding a user into a trained model without retraining, and explaining a prediction.

Given the movie factors and biases of a model, a user's vector follows from their
ratings by the same closed-form solve one ALS half-step uses:

    x = [p, b] = (F^T F + lambda n I)^-1 F^T t,   F = [q_j, 1] for the n rated movies j,
                                                 t_j = r_j - mean - b_j

That makes the user's predicted rating for movie i a sum over the rated movies,

    prediction(i) = mean + b_i + sum_j c_j,   c_j = [q_i, 1]^T (F^T F + lambda n I)^-1 [q_j, 1] t_j

so c_j is how much rated movie j pushed the prediction up or down: the explanation.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from recsql.algorithms.factors import Factors

# The fold-in penalty (times the number of ratings).  Chosen by evaluation on MovieLens
# 100K (users held out of training, folded in from their first 10 ratings, scored on the
# rest): 0.1 / 0.3 / 1.0 / 3.0 gave RMSE 1.033 / 1.007 / 1.002 / 1.012 with the default
# model.  Stronger than the training penalty, because 10 ratings say less than 100.
DEFAULT_REGULARIZATION = 1.0


@dataclass(frozen=True)
class FoldedUser:
    """A user solved against fixed movie factors, with what an explanation needs."""

    factors: np.ndarray  # k
    bias: float
    system: np.ndarray  # (k+1) x (k+1): F^T F + lambda n I
    partners: np.ndarray  # n x (k+1): [q_j, 1]
    targets: np.ndarray  # n: r_j - mean - b_j

    def contributions(self, movie_factors: np.ndarray) -> np.ndarray:
        """c_j for a target movie: each rated movie's share of p.q_i + b_u (they sum to it)."""
        target = np.append(movie_factors, 1.0)
        weights = np.linalg.solve(self.system, target)  # the system is symmetric
        return (self.partners @ weights) * self.targets

    def scored_by(self, model: Factors) -> Factors:
        """``model``'s movies with this user as its only user (row 0)."""
        return model.with_users(np.array([-1]), self.factors[None, :], np.array([self.bias]))


def fold_in(
    model: Factors,
    movie_rows: np.ndarray,
    ratings: np.ndarray,
    regularization: float = DEFAULT_REGULARIZATION,
) -> FoldedUser:
    """A new user's vector and bias from their ratings of the given movies (rows of ``model``)."""
    movie_factors = model.movie_factors[movie_rows]
    partners = np.hstack([movie_factors, np.ones((len(movie_factors), 1))])
    targets = np.asarray(ratings, dtype=np.float64) - model.global_mean - model.movie_bias_or_zero[movie_rows]
    system = partners.T @ partners + regularization * len(targets) * np.eye(partners.shape[1])
    solution = np.linalg.solve(system, partners.T @ targets)
    return FoldedUser(solution[:-1], float(solution[-1]), system, partners, targets)
