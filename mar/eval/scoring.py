"""Inception FID, IS and precision / recall of an image set on disk (a folder of images or an .npz), streamed.

Features are torch-fidelity's ``inception-v3-compat`` (the TF-FID Inception, from a local weights file; nothing is
downloaded): the 2048-d pool for FID and precision / recall, the 1008 unbiased logits for IS. Images go through it
in batches; FID needs only the running sum and sum of outer products of the pool features (float64), so memory is
flat in N. IS keeps the logits (N x 1008) and precision / recall the pool features (N x 2048), in float32.

A reference .npz in ADM's format holds ``mu`` and ``sigma``; precision / recall also need its activations, taken
from ``activations`` (n, 2048) when present (``write_reference`` stores them) or computed from ``arr_0`` (its
images, as ADM's reference batches hold them).
"""

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from mar.eval.inception import check_inception, open_extractor, reference_statistics
from mar.eval.metrics import frechet_distance, precision_recall
from mar.eval.npz import npz_shape, read_npz_rows

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".webp", ".bmp")


def image_files(folder: Path) -> list[Path]:
    return sorted(
        p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".")
    )


def count_images(source: str | Path) -> int:
    source = Path(source)
    return len(image_files(source)) if source.is_dir() else npz_shape(source)[0]


def image_blocks(source: str | Path, batch: int) -> Iterator[np.ndarray]:
    """uint8 (b, h, w, 3) blocks of a folder's images (in name order) or of an .npz's ``arr_0``."""
    source = Path(source)
    if not source.is_dir():
        yield from read_npz_rows(source, batch)
        return
    files = image_files(source)
    for start in range(0, len(files), batch):
        pictures = [np.asarray(Image.open(path).convert("RGB")) for path in files[start : start + batch]]
        if len({p.shape for p in pictures}) > 1:
            raise ValueError(
                f"images in {source} differ in size ({sorted({p.shape[:2] for p in pictures})}); "
                "resize them to one size first"
            )
        yield np.stack(pictures)


@dataclass
class InceptionFeatures:
    count: int
    mu: np.ndarray  # (2048,) float64
    sigma: np.ndarray  # (2048, 2048) float64
    logits: torch.Tensor  # (n, 1008) float32
    pool: torch.Tensor | None  # (n, 2048) float32, when kept


@torch.no_grad()
def inception_features(
    source, extractor, device: torch.device, batch: int = 100, keep_pool: bool = False
) -> InceptionFeatures:
    total, outer, count = torch.zeros(2048, dtype=torch.float64), torch.zeros(2048, 2048, dtype=torch.float64), 0
    logits, pools = [], []
    for block in image_blocks(source, batch):
        pixels = torch.from_numpy(block).permute(0, 3, 1, 2).to(device)  # (b, 3, h, w) uint8; resized to 299 inside
        pool, logit = extractor(pixels)  # (b, 2048), (b, 1008)
        pool = pool.double().cpu()
        total += pool.sum(0)
        outer += pool.T @ pool  # (2048, 2048)
        count += len(pool)
        logits.append(logit.float().cpu())
        if keep_pool:
            pools.append(pool.float())
    if count < 2:
        raise ValueError(f"{source} holds {count} image(s); FID needs at least 2")
    mu = total / count
    sigma = (outer - count * torch.outer(mu, mu)) / (count - 1)
    return InceptionFeatures(
        count, mu.numpy(), sigma.numpy(), torch.cat(logits), torch.cat(pools) if keep_pool else None
    )


@dataclass
class Reference:
    """A reference .npz's statistics, and where precision / recall get its activations (None: nowhere)."""

    mu: np.ndarray  # (2048,) float64
    sigma: np.ndarray  # (2048, 2048) float64
    activations: torch.Tensor | None  # (n, 2048), stored in the file
    images: Path | None  # the file itself when its arr_0 holds the images to compute them from


def open_reference(path, need_activations: bool) -> Reference:
    """Reads ``mu`` and ``sigma`` (InceptionUnavailable with the fix when missing) and finds the activations' source."""
    mu, sigma = reference_statistics(path)
    with np.load(path) as reference:
        keys = set(reference.files)
        stored = (
            torch.from_numpy(reference["activations"]).float() if need_activations and "activations" in keys else None
        )
    images = Path(path) if need_activations and stored is None and "arr_0" in keys else None
    return Reference(mu, sigma, stored, images)


def score(
    source, reference_npz, weights_path, device: torch.device, batch: int = 100, with_precision_recall: bool = True
) -> dict:
    """Inception FID and IS of the images at ``source``, and precision / recall when the reference has activations.

    Every file is checked before the extractor is built: a missing one costs nothing.
    """
    _, isc_features_to_metric = check_inception(weights_path)
    reference = open_reference(reference_npz, with_precision_recall)
    extractor = open_extractor(weights_path, device)
    activations = reference.activations
    if reference.images is not None:
        activations = inception_features(reference.images, extractor, device, batch, keep_pool=True).pool
    features = inception_features(source, extractor, device, batch, keep_pool=activations is not None)
    splits = max(1, min(10, features.count // 2))  # torch-fidelity's 10, two images each at least
    isc = isc_features_to_metric(features.logits, splits=splits)
    result = {
        "images": features.count,
        "inception_fid": frechet_distance(features.mu, features.sigma, reference.mu, reference.sigma),
        "inception_score": isc["inception_score_mean"],
        "inception_score_std": isc["inception_score_std"],
    }
    if activations is not None:
        result |= precision_recall(activations.numpy(), features.pool.numpy())
    return result


def write_reference(source, path, weights_path, device: torch.device, batch: int = 100) -> Path:
    """``mu``, ``sigma`` and the pool ``activations`` of the images at ``source`` as a reference .npz."""
    features = inception_features(source, open_extractor(weights_path, device), device, batch, keep_pool=True)
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp.npz")
    np.savez(tmp, mu=features.mu, sigma=features.sigma, activations=features.pool.numpy())
    tmp.replace(path)
    return path
