"""Intervals over seeds: their coverage on known normal samples, and the verdict lines built on them."""

import math

import numpy as np
import pytest

from mar.eval.intervals import Interval, mean_interval, verdict


@pytest.mark.parametrize("n", [2, 3, 5])
def test_mean_interval_covers_the_true_mean_at_the_stated_rate(n):
    rng = np.random.default_rng(n)
    draws = 4000
    covered = sum(
        interval.low <= 2.0 <= interval.high
        for interval in (mean_interval(rng.normal(2.0, 1.5, n)) for _ in range(draws))
    )
    # 0.95 expected; three binomial standard deviations at 4000 draws are 0.010
    assert abs(covered / draws - 0.95) < 0.010


def test_a_narrower_confidence_covers_less():
    rng = np.random.default_rng(7)
    samples = [rng.normal(0.0, 1.0, 3) for _ in range(4000)]
    rate = (
        sum(mean_interval(s, confidence=0.5).low <= 0 <= mean_interval(s, confidence=0.5).high for s in samples) / 4000
    )
    assert abs(rate - 0.5) < 0.025


def test_interval_is_the_t_interval_by_hand():
    interval = mean_interval([1.0, 2.0, 4.0])
    half = 4.302652729911275 * np.std([1.0, 2.0, 4.0], ddof=1) / math.sqrt(3)  # t(0.975, 2)
    assert interval.mean == pytest.approx(7 / 3) and interval.high - interval.mean == pytest.approx(half)
    assert interval.n == 3


def test_one_value_has_an_unbounded_interval_and_empty_input_is_refused():
    assert mean_interval([3.0]) == Interval(3.0, -math.inf, math.inf, 1)
    with pytest.raises(ValueError, match="non-empty"):
        mean_interval([])


def test_verdict_settles_only_disjoint_intervals():
    low, high, wide = Interval(10, 9, 11, 3), Interval(15, 14, 16, 3), Interval(14, 10.5, 17.5, 3)
    line = verdict("FID", "kl", low, "vq", high, lower_is_better=True)
    assert "kl is better, by more than the intervals" in line and "\n" not in line
    assert "vq is better" in verdict("accuracy", "kl", low, "vq", high, lower_is_better=False)
    assert "not settled" in verdict("FID", "kl", low, "vq", wide, lower_is_better=True)
    assert verdict("accuracy", "kl", low, "vq", low, lower_is_better=False).endswith("tied")
