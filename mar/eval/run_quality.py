"""How good a training run is, on any data: class accuracy and feature FID of its samples, judged by the data's own
held-out classifier (reference_data.py), during training and at its end; and whether its tokenizer is the limit.

The FID is computed in the classifier's feature space against the held-out real images; its floor is the FID of
as many real training images against the same held-out set, so a run's FID reads as a multiple of what real images
score. Samples are scored as the PNGs hold them (rounded to 8 bits).
"""

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mar.data.images import from_uint8, to_uint8
from mar.eval.classifier import FeatureClassifier, accuracy, predict
from mar.eval.metrics import feature_statistics, frechet_distance
from mar.eval.quality import Reference, reference_set
from mar.sampling.config import SamplingConfig
from mar.sampling.grids import class_samples
from vae import psnr
from vae.train import reconstruct

TOKENIZER_LIMIT = 0.05  # reconstructions losing more class accuracy than this make the tokenizer the limit


@dataclass
class QualityJudge:
    """The held-out classifier, its reference features and the real-image FID floor."""

    classifier: FeatureClassifier
    reference: Reference
    classifier_accuracy: float  # on the held-out images
    fid_floor: float

    @classmethod
    def of(cls, classifier: FeatureClassifier, info: dict, train_set: tuple, held_out: tuple, count: int):
        """The judge of a run that scores ``count`` samples at a time: its floor is the FID of ``count`` real
        training images (FID grows as the sample shrinks, so the floor is measured at the same size)."""
        reference = reference_set(classifier, held_out[0])
        judge = cls(classifier, reference, info["test_accuracy"], fid_floor=float("nan"))
        judge.fid_floor = judge.score(train_set[0][:count], train_set[1][:count])["fid"]
        return judge

    def score(self, images: torch.Tensor, labels: torch.Tensor) -> dict:
        """Class accuracy and FID of ``images`` (n, 3, s, s) drawn for ``labels``, as 8-bit PNGs hold them."""
        features, predicted = predict(self.classifier, from_uint8(to_uint8(images)))
        hits = (predicted == labels.cpu()).sum().item()
        fid = frechet_distance(*feature_statistics(features.numpy()), self.reference.mu, self.reference.sigma)
        return {"accuracy": hits / len(labels), "fid": fid, "count": len(labels)}


def sample_quality(
    judge: QualityJudge,
    model,
    tokenizer,
    num_classes: int,
    count: int,
    sampling: SamplingConfig,
    seed: int,
    save_to: Path | None = None,
) -> dict:
    """``count`` samples (at least one per class, as many of each class as fit) scored by ``judge``; with ``save_to``,
    the images (n, s, s, 3) uint8 and labels are kept there as an .npz that the figures can be checked against."""
    model.eval()
    device = next(model.parameters()).device
    per_class = max(1, count // num_classes)
    images, labels = class_samples(
        model,
        tokenizer,
        list(range(num_classes)),
        per_class,
        sampling,
        generator=torch.Generator(device).manual_seed(seed),
    )
    if save_to is not None:
        save_to.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(save_to, images=to_uint8(images).numpy(), labels=labels.cpu().numpy())
    return judge.score(images, labels.cpu())


def tokenizer_check(tokenizer, judge: QualityJudge, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """PSNR of the held-out ``images`` through ``tokenizer``, and the classifier's accuracy on the reconstructions
    beside its accuracy on the images; ``limit`` is True when the reconstructions lose more than TOKENIZER_LIMIT."""
    device = next(tokenizer.parameters()).device
    reconstructions = reconstruct(tokenizer, images.to(device)).cpu()
    on_reconstructions = accuracy(judge.classifier, from_uint8(to_uint8(reconstructions)), labels)
    on_images = judge.classifier_accuracy  # measured on these held-out images when the classifier was trained
    return {
        "psnr": psnr(reconstructions, images),
        "accuracy_reconstructed": on_reconstructions,
        "accuracy_real": on_images,
        "limit": on_reconstructions < on_images - TOKENIZER_LIMIT,
    }
