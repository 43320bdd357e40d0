"""Means over seeds with 95% intervals, and one-line verdicts on whether two variants differ by more than them.

A comparison trains each variant with a few seeds; a metric then has one value per seed. Its interval is
Student's t interval for the mean (n - 1 degrees of freedom), which covers the true mean at the stated rate when
the seed values are normal. A claim "A is better than B" is settled only when the two intervals are disjoint.
"""

import math
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Interval:
    mean: float
    low: float
    high: float
    n: int

    def __str__(self) -> str:
        return f"{self.mean:.3f} [{self.low:.3f}, {self.high:.3f}]"


def mean_interval(values, confidence: float = 0.95) -> Interval:
    """The mean of ``values`` and its Student-t interval; a single value gets an infinite interval."""
    values = np.asarray(values, dtype=np.float64)
    if values.ndim != 1 or len(values) == 0:
        raise ValueError(f"need a non-empty 1-D list of values, got shape {values.shape}")
    mean = float(values.mean())
    if len(values) == 1:
        return Interval(mean, -math.inf, math.inf, 1)
    from scipy import stats  # imported here: see docs/architecture.md#imports

    half = stats.t.ppf(0.5 + confidence / 2, len(values) - 1) * values.std(ddof=1) / math.sqrt(len(values))
    return Interval(mean, mean - half, mean + half, len(values))


def verdict(metric: str, first: str, a: Interval, second: str, b: Interval, lower_is_better: bool) -> str:
    """One line: which of two variants is better on ``metric``, and whether the difference exceeds the intervals."""
    better = first if (a.mean < b.mean) == lower_is_better else second
    if a.mean == b.mean:
        outcome = "tied"
    elif a.high < b.low or b.high < a.low:
        outcome = f"{better} is better, by more than the intervals (disjoint)"
    else:
        outcome = f"{better} is ahead by {abs(a.mean - b.mean):.3f}, within the intervals (overlapping): not settled"
    return f"{metric}: {first} {a} vs {second} {b}: {outcome}"
