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

# The fold-in penalty (times the number of ratings).  Chosen by evaluation on MovieLens
# 100K (users held out of training, folded in from their first 10 ratings, scored on the
# rest): 0.1 / 0.3 / 1.0 / 3.0 gave RMSE 1.033 / 1.007 / 1.002 / 1.012 with the default
# model.  Stronger than the training penalty, because 10 ratings say less than 100.
DEFAULT_REGULARIZATION = 1.0


@dataclass(frozen=True)
class FoldedUser:
    factors: np.ndarray  # k
    bias: float
    system: np.ndarray  # (k+1) x (k+1): F^T F + lambda n I
    partners: np.ndarray  # n x (k+1): [q_j, 1]
    targets: np.ndarray  # n: r_j - mean - b_j


def fold_in(
    movie_factors: np.ndarray,
    movie_bias: np.ndarray,
    global_mean: float,
    ratings: np.ndarray,
    regularization: float = DEFAULT_REGULARIZATION,
) -> FoldedUser:
    """A new user's vector and bias from their ratings of the given movies (rows)."""
    partners = np.hstack([movie_factors, np.ones((len(movie_factors), 1))])
    targets = np.asarray(ratings, dtype=np.float64) - global_mean - movie_bias
    system = partners.T @ partners + regularization * len(ratings) * np.eye(partners.shape[1])
    solution = np.linalg.solve(system, partners.T @ targets)
    return FoldedUser(solution[:-1], float(solution[-1]), system, partners, targets)


def contributions(user: FoldedUser, movie_factors: np.ndarray) -> np.ndarray:
    """c_j for the target movie: each rated movie's share of p.q_i + b_u (they sum to it)."""
    target = np.append(movie_factors, 1.0)
    weights = np.linalg.solve(user.system, target)  # system is symmetric
    return (user.partners @ weights) * user.targets
