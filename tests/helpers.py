"""Helpers shared by several test modules (fixtures live in conftest.py)."""

from __future__ import annotations

import re

import numpy as np

from recsql.data.matrix import RatingMatrix
from tests.conftest import ROOT


def low_rank_ratings(n_users=30, n_movies=20, k=3, density=0.5, seed=1) -> RatingMatrix:
    """A random exactly-rank-k rating matrix, ``density`` of it known, with offset ids."""
    rng = np.random.default_rng(seed)
    truth = rng.normal(size=(n_users, k)) @ rng.normal(size=(k, n_movies))
    mask = rng.random(truth.shape) < density
    rows, cols = np.nonzero(mask)
    return RatingMatrix.from_triples(rows + 100, cols + 500, truth[rows, cols])


def readme_sql() -> dict[str, str]:
    """The README's SQL examples by their first-line comment."""
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```sql\n(.*?)```", readme, flags=re.S)
    return {block.splitlines()[0].removeprefix("-- ").strip(): block for block in blocks}
