"""Optional Inception FID and Inception Score through torch-fidelity, fully offline.

Nothing is downloaded: the caller passes torch-fidelity's Inception weights file and a reference batch .npz holding
the 2048-d feature statistics ``mu`` (2048,) and ``sigma`` (2048, 2048), as ADM's reference batches do
(e.g. VIRTUAL_imagenet256_labeled.npz). Anything missing raises ``InceptionUnavailable`` with a one-line fix.
"""

from pathlib import Path

import numpy as np
import torch

from mar.data.images import to_uint8
from mar.eval.metrics import feature_statistics, frechet_distance

WEIGHTS_NAME = "weights-inception-2015-12-05-6726825d.pth"


class InceptionUnavailable(RuntimeError):
    """Inception metrics cannot run here: torch-fidelity, its weights or the reference statistics are missing."""


def reference_statistics(reference_npz) -> tuple[np.ndarray, np.ndarray]:
    """``mu`` (f,) and ``sigma`` (f, f) from a reference batch .npz."""
    if reference_npz is None or not Path(reference_npz).is_file():
        raise InceptionUnavailable(
            f"reference statistics {reference_npz} not found: pass a reference batch .npz with arrays 'mu' and "
            "'sigma' (e.g. ADM's VIRTUAL_imagenet256_labeled.npz), downloaded beforehand"
        )
    with np.load(reference_npz) as reference:
        if not {"mu", "sigma"} <= set(reference.files):
            raise InceptionUnavailable(
                f"reference statistics {reference_npz} hold arrays {sorted(reference.files)}, not 'mu' and 'sigma': "
                "pass an ADM-style reference batch .npz (e.g. VIRTUAL_imagenet256_labeled.npz)"
            )
        return reference["mu"].astype(np.float64), reference["sigma"].astype(np.float64)


def check_inception(weights_path):
    """(torch-fidelity's Inception extractor class, its IS function) when both the package and ``weights_path`` exist."""
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
        from torch_fidelity.metric_isc import isc_features_to_metric
    except ImportError as error:
        raise InceptionUnavailable(f"torch_fidelity is not importable ({error}): pip install torch-fidelity") from None
    if weights_path is None or not Path(weights_path).is_file():
        raise InceptionUnavailable(
            f"Inception weights {weights_path} not found: pass torch-fidelity's {WEIGHTS_NAME}, downloaded "
            "beforehand (nothing is fetched here)"
        )
    return FeatureExtractorInceptionV3, isc_features_to_metric


def open_extractor(weights_path, device) -> torch.nn.Module:
    """torch-fidelity's TF-FID Inception from ``weights_path``, answering (2048-d pool, 1008 unbiased logits), in eval mode."""
    extractor_class, _ = check_inception(weights_path)
    return (
        extractor_class(
            name="inception-v3-compat",
            features_list=["2048", "logits_unbiased"],
            feature_extractor_weights_path=str(weights_path),
        )
        .to(device)
        .eval()
    )


def inception_metrics(images: torch.Tensor, weights_path, reference_npz, batch_size: int = 64, device=None) -> dict:
    """Inception FID against ``reference_npz`` and Inception Score of images (n, 3, s, s) in [-1, 1].

    ``weights_path`` is torch-fidelity's ``weights-inception-2015-12-05-6726825d.pth``; ``device`` defaults to the
    images' device. The Inception Score is torch-fidelity's estimator, over 10 splits, or n // 2 when n < 20.
    """
    extractor_class, isc_features_to_metric = check_inception(weights_path)
    mu_ref, sigma_ref = reference_statistics(reference_npz)
    device = torch.device(device) if device is not None else images.device

    extractor = open_extractor(weights_path, device)
    pixels = to_uint8(images).permute(0, 3, 1, 2)  # (n, 3, s, s) uint8; the extractor resizes to 299 itself
    pools, logits = [], []
    with torch.no_grad():
        for batch in pixels.split(batch_size):
            pool, logit = extractor(batch.to(device))  # (b, 2048), (b, 1008)
            pools.append(pool.cpu())
            logits.append(logit.cpu())
    pools, logits = torch.cat(pools), torch.cat(logits)  # (n, 2048), (n, 1008)

    fid = frechet_distance(*feature_statistics(pools.double().numpy()), mu_ref, sigma_ref)
    splits = max(1, min(10, len(logits) // 2))  # torch-fidelity's 10, two images each at least: one alone scores 1
    isc = isc_features_to_metric(logits, splits=splits)
    return {
        "inception_fid": fid,
        "inception_score": isc["inception_score_mean"],
        "inception_score_std": isc["inception_score_std"],
    }
