"""Scoring image sets in a feature classifier's space: generated samples and tokenizer reconstructions.

Samples get FID against a reference set of real images, precision / recall by k-NN manifolds, and the share the
classifier assigns to the class they were drawn for. A tokenizer gets PSNR and rFID (reconstructions of the
reference images against the images themselves), plus codebook usage when discrete.
"""

from dataclasses import dataclass

import numpy as np
import torch

from mar.eval.classifier import FeatureClassifier, predict
from mar.eval.metrics import feature_statistics, frechet_distance, precision_recall
from vae import code_statistics, psnr
from vae.train import reconstruct


@dataclass
class Reference:
    """Real images, their features (n, f) and the features' mean and covariance."""

    images: torch.Tensor
    features: np.ndarray
    mu: np.ndarray
    sigma: np.ndarray


def reference_set(classifier: FeatureClassifier, images: torch.Tensor) -> Reference:
    features = predict(classifier, images)[0].numpy()
    return Reference(images, features, *feature_statistics(features))


def sample_metrics(
    classifier: FeatureClassifier, reference: Reference, images: torch.Tensor, labels: torch.Tensor
) -> dict:
    """FID, class accuracy, precision and recall of ``images`` (n, 3, s, s) drawn for classes ``labels`` (n,)."""
    features, predicted = predict(classifier, images)
    features = features.numpy()
    return {
        "fid": frechet_distance(*feature_statistics(features), reference.mu, reference.sigma),
        "accuracy": (predicted == labels.cpu()).float().mean().item(),
        **precision_recall(reference.features, features),
    }


@torch.no_grad()
def tokenizer_metrics(tokenizer, classifier: FeatureClassifier, reference: Reference) -> dict:
    """PSNR and rFID over the reference images; codebook usage and perplexity for a discrete tokenizer."""
    device = next(tokenizer.parameters()).device
    images = reference.images.to(device)
    reconstructions = reconstruct(tokenizer, images)  # once, for both PSNR and rFID
    features = predict(classifier, reconstructions)[0].numpy()
    metrics = {
        "psnr": psnr(reconstructions, images),
        "rfid": frechet_distance(*feature_statistics(features), reference.mu, reference.sigma),
    }
    if tokenizer.discrete:
        metrics |= code_statistics(
            torch.cat([tokenizer.encode(chunk) for chunk in images.split(256)]), tokenizer.codebook_size
        )
    return metrics
