"""A small image classifier trained on the dataset itself, the feature network of the offline metrics.

Inception features mean little for 32-pixel glyphs or a user's small dataset; a classifier that knows the classes
gives features in which FID, precision and recall measure what matters there, and its predictions give the class
accuracy of conditional samples. It is trained once per dataset and image size and kept in a folder
(``classifier.safetensors`` + ``classifier.json``, which records its test accuracy) for every later comparison.
"""

import json
import math
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import torch
import torch.nn.functional as F
from safetensors.torch import load_file, save_file
from torch import nn
from tqdm import tqdm

WEIGHTS, INFO = "classifier.safetensors", "classifier.json"


@dataclass(frozen=True)
class ClassifierConfig:
    num_classes: int
    image_size: int
    width: int = 16
    feature_dim: int = 64


def conv_block(channels_in: int, channels_out: int) -> nn.Sequential:
    """3x3 convolution, GroupNorm and SiLU, then a stride-2 downsample."""
    return nn.Sequential(
        nn.Conv2d(channels_in, channels_out, 3, padding=1),
        nn.GroupNorm(8, channels_out),
        nn.SiLU(),
        nn.Conv2d(channels_out, channels_out, 3, stride=2, padding=1),
        nn.GroupNorm(8, channels_out),
        nn.SiLU(),
    )


class FeatureClassifier(nn.Module):
    """Three conv blocks, global average pooling, a feature layer and the class logits."""

    def __init__(self, config: ClassifierConfig):
        super().__init__()
        self.config = config
        w = config.width
        self.trunk = nn.Sequential(conv_block(3, w), conv_block(w, 2 * w), conv_block(2 * w, 4 * w))
        self.embed = nn.Sequential(nn.Linear(4 * w, config.feature_dim), nn.LayerNorm(config.feature_dim), nn.SiLU())
        self.logits = nn.Linear(config.feature_dim, config.num_classes)

    def features(self, images: torch.Tensor) -> torch.Tensor:
        """(b, 3, s, s) in [-1, 1] -> (b, feature_dim)."""
        return self.embed(self.trunk(images).mean(dim=(2, 3)))  # (b, 4w) pooled -> (b, f)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        """(b, 3, s, s) -> logits (b, num_classes)."""
        return self.logits(self.features(images))


def shift_augment(images: torch.Tensor, generator: torch.Generator, max_shift: int = 1) -> torch.Tensor:
    """Each batch moved by one random translation of up to ``max_shift`` pixels (edges replicated)."""
    dx, dy = torch.randint(-max_shift, max_shift + 1, (2,), generator=generator).tolist()
    padded = F.pad(images, [max_shift] * 4, mode="replicate")
    s = images.shape[-1]
    return padded[..., max_shift + dy : max_shift + dy + s, max_shift + dx : max_shift + dx + s]


@torch.no_grad()
def predict(
    classifier: FeatureClassifier, images: torch.Tensor, batch_size: int = 512
) -> tuple[torch.Tensor, torch.Tensor]:
    """(features (n, f), predicted classes (n,)) of images (n, 3, s, s), on the classifier's device."""
    classifier.eval()
    device = next(classifier.parameters()).device
    features = torch.cat([classifier.features(chunk.to(device)).float() for chunk in images.split(batch_size)])
    return features.cpu(), classifier.logits(features.to(device)).argmax(-1).cpu()


def accuracy(classifier: FeatureClassifier, images: torch.Tensor, labels: torch.Tensor) -> float:
    return (predict(classifier, images)[1] == labels.cpu()).float().mean().item()


def train_classifier(
    classifier: FeatureClassifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    steps: int,
    batch_size: int = 64,
    lr: float = 2e-3,
    seed: int = 0,
    progress: bool = True,
) -> FeatureClassifier:
    """AdamW with a cosine decay and random shifts; images (n, 3, s, s) and labels (n,) on the training device."""
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.AdamW(classifier.parameters(), lr=lr, weight_decay=0.05)
    classifier.train()
    for step in tqdm(range(steps), desc="classifier", disable=not progress):
        for group in optimizer.param_groups:
            group["lr"] = lr * 0.5 * (1 + math.cos(math.pi * step / steps))
        index = torch.randint(0, len(images), (batch_size,), generator=generator).to(images.device)
        loss = F.cross_entropy(classifier(shift_augment(images[index], generator)), labels[index])
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return classifier.eval().requires_grad_(False)


def save_classifier(classifier: FeatureClassifier, directory: str | Path, info: dict) -> dict:
    """Weights, then the JSON (config and ``info``: data name, test accuracy, ...) written last, by rename; returns the JSON."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    save_file({k: v.detach().contiguous().cpu() for k, v in classifier.state_dict().items()}, directory / WEIGHTS)
    tmp = directory / f".{INFO}.tmp-{os.getpid()}"
    info = {"config": asdict(classifier.config), **info}
    tmp.write_text(json.dumps(info, indent=2))
    os.replace(tmp, directory / INFO)
    return info


def load_classifier(directory: str | Path, expect: dict) -> tuple[FeatureClassifier, dict] | None:
    """(classifier, info) saved in ``directory`` when its info matches every key of ``expect``, else None."""
    directory = Path(directory)
    if not (directory / INFO).is_file() or not (directory / WEIGHTS).is_file():
        return None
    info = json.loads((directory / INFO).read_text())
    if any(info.get(key) != value for key, value in expect.items()):
        return None
    classifier = FeatureClassifier(ClassifierConfig(**info["config"]))
    classifier.load_state_dict(load_file(directory / WEIGHTS))
    return classifier.eval().requires_grad_(False), info


def classifier_for(
    directory: str | Path,
    train_set: tuple[torch.Tensor, torch.Tensor],
    test_set: tuple[torch.Tensor, torch.Tensor],
    dataset: str,
    num_classes: int,
    steps: int,
    device: torch.device,
    seed: int = 0,
    progress: bool = True,
) -> tuple[FeatureClassifier, dict]:
    """The classifier kept in ``directory`` for this data, image size and training length, else one trained now.

    Returns it on ``device`` with its info, which holds ``test_accuracy`` on ``test_set``.
    """
    image_size = train_set[0].shape[-1]
    expect = {"dataset": dataset, "image_size": image_size, "num_classes": num_classes, "steps": steps, "seed": seed}
    found = load_classifier(directory, expect)
    if found is not None:
        return found[0].to(device), found[1]
    torch.manual_seed(seed)  # the initial weights
    classifier = FeatureClassifier(ClassifierConfig(num_classes, image_size)).to(device)
    train_classifier(classifier, train_set[0].to(device), train_set[1].to(device), steps, seed=seed, progress=progress)
    info = expect | {
        "train_images": len(train_set[1]),
        "test_images": len(test_set[1]),
        "test_accuracy": accuracy(classifier, *test_set),
    }
    return classifier, save_classifier(classifier, directory, info)
