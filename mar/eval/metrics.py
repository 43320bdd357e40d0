"""Sample-quality metrics over feature vectors: Frechet distance, and precision / recall by k-NN manifolds.

Features are (n, f) arrays from any feature network (a classifier trained on the data, or Inception).
"""

import numpy as np
import torch


def feature_statistics(features: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Mean (f,) and covariance (f, f) of features (n, f), in float64."""
    features = np.asarray(features, dtype=np.float64)
    return features.mean(0), np.cov(features, rowvar=False)


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2)): the Frechet distance between two Gaussians (FID's formula).

    tr (S1 S2)^(1/2) is the sum of the square roots of the eigenvalues of S1 S2, which are those of the symmetric
    S1^(1/2) S2 S1^(1/2): two symmetric eigendecompositions (seconds at f = 2048, where scipy's sqrtm of the
    product takes tens), and no singular-product nudge, since a symmetric PSD matrix has real eigenvalues >= 0
    (round-off below zero is clipped).
    """
    values, vectors = np.linalg.eigh(sigma1)
    root1 = (vectors * np.sqrt(np.clip(values, 0, None))) @ vectors.T  # S1^(1/2), (f, f)
    product = root1 @ sigma2 @ root1
    trace_covmean = np.sqrt(np.clip(np.linalg.eigvalsh((product + product.T) / 2), 0, None)).sum()
    return float(((mu1 - mu2) ** 2).sum() + np.trace(sigma1) + np.trace(sigma2) - 2 * trace_covmean)


def fid_from_features(features1: np.ndarray, features2: np.ndarray) -> float:
    return frechet_distance(*feature_statistics(features1), *feature_statistics(features2))


BLOCK = 1024  # query rows per distance block: memory stays (BLOCK, n), so 50k-image sets fit


def _radii(features: torch.Tensor, k: int) -> torch.Tensor:
    """Distance of each point to its k-th nearest other point: (n,)."""
    return torch.cat(
        [
            torch.cdist(block, features).kthvalue(k + 1, dim=1).values  # (b, n): each point is its own 0th neighbour
            for block in features.split(BLOCK)
        ]
    )


def _coverage(manifold: torch.Tensor, radii: torch.Tensor, queries: torch.Tensor) -> float:
    """Share of ``queries`` inside at least one ball (manifold point, its radius)."""
    inside = [(torch.cdist(block, manifold) <= radii[None, :]).any(1) for block in queries.split(BLOCK)]  # (b, n) each
    return torch.cat(inside).float().mean().item()


def precision_recall(real: np.ndarray, fake: np.ndarray, k: int = 3) -> dict:
    """Kynkaanniemi et al. (2019): precision = share of fakes inside the real k-NN manifold, recall the reverse."""
    real_t = torch.as_tensor(np.asarray(real), dtype=torch.float64)
    fake_t = torch.as_tensor(np.asarray(fake), dtype=torch.float64)
    return {
        "precision": _coverage(real_t, _radii(real_t, k), fake_t),
        "recall": _coverage(fake_t, _radii(fake_t, k), real_t),
    }
