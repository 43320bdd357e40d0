"""Frechet distance and k-NN precision / recall on sets with known answers."""

import numpy as np
from scipy import linalg

from mar.eval.metrics import feature_statistics, fid_from_features, frechet_distance, precision_recall


def test_a_set_against_itself_scores_zero_and_a_shifted_set_more():
    features = np.random.default_rng(0).normal(size=(2000, 8))
    assert abs(fid_from_features(features, features)) < 1e-8
    shifted = features + 0.5
    assert abs(fid_from_features(features, shifted) - 8 * 0.5**2) < 1e-6  # a shift adds only |mu1 - mu2|^2
    assert fid_from_features(features, shifted) < fid_from_features(features, features + 1.0)


def test_frechet_distance_matches_the_closed_form_for_two_gaussians():
    rng = np.random.default_rng(1)
    a, b = rng.normal(size=(4, 4)), rng.normal(size=(4, 4))
    sigma1, sigma2 = a @ a.T + np.eye(4), b @ b.T + np.eye(4)
    mu1, mu2 = rng.normal(size=4), rng.normal(size=4)
    root = linalg.sqrtm(sigma1)  # tr (S1 S2)^(1/2) = tr (S1^(1/2) S2 S1^(1/2))^(1/2), a symmetric root
    expected = (
        ((mu1 - mu2) ** 2).sum() + np.trace(sigma1 + sigma2) - 2 * np.trace(linalg.sqrtm(root @ sigma2 @ root)).real
    )
    assert abs(frechet_distance(mu1, sigma1, mu2, sigma2) - expected) < 1e-8
    diagonal = frechet_distance(np.zeros(2), np.diag([1.0, 4.0]), np.zeros(2), np.diag([4.0, 9.0]))
    assert abs(diagonal - ((1 - 2) ** 2 + (2 - 3) ** 2)) < 1e-10  # for diagonal covariances: sum (s1 - s2)^2


def test_statistics_are_the_mean_and_covariance():
    features = np.random.default_rng(2).normal(size=(500, 3))
    mu, sigma = feature_statistics(features)
    assert np.allclose(mu, features.mean(0)) and np.allclose(sigma, np.cov(features.T))


def test_precision_and_recall_separate_quality_from_coverage():
    rng = np.random.default_rng(3)
    real = rng.normal(size=(600, 2))
    same = rng.normal(size=(600, 2))
    collapsed = rng.normal(size=(600, 2)) * 0.2  # inside the real manifold but covering only its core
    off = rng.normal(size=(600, 2)) + 6.0  # nowhere near it
    full = precision_recall(real, same)
    assert full["precision"] > 0.9 and full["recall"] > 0.9
    narrow = precision_recall(real, collapsed)
    assert narrow["precision"] > 0.95 and narrow["recall"] < 0.5
    assert precision_recall(real, off) == {"precision": 0.0, "recall": 0.0}
