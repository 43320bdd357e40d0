"""Whether mirrored images keep their class, decided from the data: the held-out classifier (trained without
mirrored views) judges the held-out images and their mirror images.

Where mirroring keeps the class (photos, shapes, textures without handedness), the classifier keeps most of its
skill on the mirror images; where it makes another class or no class (digits, letters, arrows), its accuracy
falls. Mirrored views are added to training only when the classifier is clearly better than chance and keeps
at least KEPT_SKILL of its skill above chance on the mirror images.
"""

from dataclasses import dataclass

import torch

from mar.eval.classifier import FeatureClassifier, accuracy

KEPT_SKILL = 0.9


@dataclass(frozen=True)
class MirrorDecision:
    flip: bool
    accuracy: float  # on the held-out images
    mirrored_accuracy: float  # on their mirror images
    reason: str


def decide_mirroring(
    classifier: FeatureClassifier, images: torch.Tensor, labels: torch.Tensor, num_classes: int
) -> MirrorDecision:
    """Mirrored views on or off for data whose held-out ``images`` (n, 3, s, s) have classes ``labels`` (n,)."""
    chance = 1 / num_classes
    plain, mirrored = accuracy(classifier, images, labels), accuracy(classifier, images.flip(-1), labels)
    figures = f"held-out classifier accuracy {plain:.3f} on the images, {mirrored:.3f} on their mirror images"
    if plain < (1 + chance) / 2:
        return MirrorDecision(False, plain, mirrored, f"{figures}: too close to chance to tell; off to be safe")
    if mirrored - chance >= KEPT_SKILL * (plain - chance):
        return MirrorDecision(True, plain, mirrored, f"{figures}: mirroring keeps the class")
    return MirrorDecision(False, plain, mirrored, f"{figures}: mirroring changes the class")
