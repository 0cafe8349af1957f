"""How sure an online comparison is: a proportion's confidence interval, the test of two
proportions, and how many more trials would settle it.

Pure arithmetic on counts (scipy's normal quantiles), so the online metrics
(:mod:`recsql.online`) and their tests share one definition of each:

- :func:`wilson`: the Wilson score interval of a proportion, which stays inside [0, 1]
  and keeps its coverage for the small rates clicks have (a Wald interval around 2 %
  from a few hundred trials reaches below zero);
- :func:`two_proportions`: B's rate minus A's with its Wald interval, and the two-sided
  p-value of the pooled z-test of "no difference";
- :func:`trials_needed`: the trials per arm a test at level ``alpha`` needs to detect
  the observed difference with probability ``power``, at the arms' current ratio.

Every impression is taken as an independent trial.  Impressions of one user are not
quite independent (a user who clicks much clicks much in both lists), so with few users
the intervals are somewhat too narrow; a split over thousands of users makes this small.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy.stats import norm

Z95 = float(norm.ppf(0.975))


@dataclass(frozen=True)
class Proportion:
    """``successes`` of ``trials``, its rate and 95 % Wilson interval (all 0 without trials)."""

    successes: int
    trials: int
    rate: float
    low: float
    high: float


@dataclass(frozen=True)
class Difference:
    """B's rate minus A's, its 95 % interval, and the two-sided p-value that they are equal."""

    difference: float
    low: float
    high: float
    z: float
    p_value: float


def wilson(successes: int, trials: int, z: float = Z95) -> Proportion:
    """The proportion and its Wilson score interval."""
    if trials <= 0:
        return Proportion(successes, trials, 0.0, 0.0, 0.0)
    rate = successes / trials
    z2 = z * z
    centre = (rate + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z * math.sqrt(rate * (1 - rate) / trials + z2 / (4 * trials * trials)) / (1 + z2 / trials)
    low = 0.0 if successes == 0 else max(0.0, centre - half)  # exactly 0, not a rounding error's 1e-17
    high = 1.0 if successes == trials else min(1.0, centre + half)
    return Proportion(successes, trials, rate, low, high)


def two_proportions(a: Proportion, b: Proportion, z: float = Z95) -> Difference:
    """B's rate minus A's with its Wald interval; the pooled z-test's two-sided p-value
    (1 where either arm has no trials, or neither has any success: nothing to tell)."""
    difference = b.rate - a.rate
    if a.trials == 0 or b.trials == 0:
        return Difference(difference, -1.0, 1.0, 0.0, 1.0)
    spread = math.sqrt(a.rate * (1 - a.rate) / a.trials + b.rate * (1 - b.rate) / b.trials)
    pooled = (a.successes + b.successes) / (a.trials + b.trials)
    under_null = math.sqrt(pooled * (1 - pooled) * (1 / a.trials + 1 / b.trials))
    if under_null == 0:
        return Difference(difference, difference - z * spread, difference + z * spread, 0.0, 1.0)
    statistic = difference / under_null
    return Difference(
        difference, difference - z * spread, difference + z * spread, statistic, float(2 * norm.sf(abs(statistic)))
    )


def trials_needed(
    rate_a: float, rate_b: float, ratio: float = 1.0, alpha: float = 0.05, power: float = 0.8
) -> tuple[int, int] | None:
    """Trials of A and of B (B = ``ratio`` x A) for a two-sided test at ``alpha`` to find
    a true difference of ``rate_b - rate_a`` with probability ``power``; None when the
    rates are equal (no difference to find)."""
    difference = rate_b - rate_a
    if difference == 0 or ratio <= 0:
        return None
    pooled = (rate_a + ratio * rate_b) / (1 + ratio)
    z_alpha, z_power = float(norm.ppf(1 - alpha / 2)), float(norm.ppf(power))
    root = z_alpha * math.sqrt(pooled * (1 - pooled) * (1 + 1 / ratio)) + z_power * math.sqrt(
        rate_a * (1 - rate_a) + rate_b * (1 - rate_b) / ratio
    )
    n_a = math.ceil(root * root / (difference * difference))
    return n_a, math.ceil(ratio * n_a)
