"""The real images a dataset's samples are scored against, and its feature classifier, trained once and kept.

For the embedded glyph set the held-out images are glyphs rendered from the next seed; for an ImageFolder a seeded
draw is split into training and held-out images. The classifier is kept under ``<cache dir>/classifiers/``, one
folder per dataset, image size and training length, so train.py and mar compare train it once and reuse it.
"""

import hashlib
import json
from pathlib import Path

import torch

from mar.data.glyphs import glyph_dataset
from mar.eval.classifier import FeatureClassifier, classifier_for

CLASSIFIER_STEPS = 1500  # 600 reached 1.000 on held-out glyphs but 0.949 on rotated shapes; 1500: 0.998 (34 s)
CLASSIFIER_SEED = 0  # one classifier per dataset, whatever the seed of the run it scores
REFERENCE_IMAGES = 1000


def held_out_sets(args, dataset, train_images: int, reference_images: int, seed: int = 0) -> tuple[tuple, tuple]:
    """((train images, labels), (held-out images, labels)) for the data arguments ``args``.

    Glyphs: the rendered set itself, and ``reference_images`` glyphs of seed ``--data-seed + 1``. An ImageFolder:
    a draw seeded by ``seed`` of up to train + reference images, of which the last fifth at most is held out.
    """
    if args.data_path is None:
        reference = glyph_dataset(
            reference_images, args.image_size, args.data_seed + 1, cache_dir=args.cache_dir
        ).tensors
        return dataset.tensors, reference
    count = min(len(dataset), train_images + reference_images)
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count].tolist()
    images, labels = zip(
        *(item for item in (dataset[i] for i in picks) if item is not None)
    )  # None: skipped unreadable
    images, labels = torch.stack(images), torch.as_tensor(labels)
    split = count - min(reference_images, count // 5)
    return (images[:split], labels[:split]), (images[split:], labels[split:])


def classifier_folder(cache_dir: str | Path, dataset: str, image_size: int, steps: int) -> Path:
    """``<cache_dir>/classifiers/<data kind>-<hash of dataset, size and steps>``."""
    key = hashlib.sha256(json.dumps([dataset, image_size, steps, CLASSIFIER_SEED]).encode()).hexdigest()[:12]
    return Path(cache_dir) / "classifiers" / f"{dataset.split('(')[0]}-{key}"


def dataset_classifier(
    args,
    dataset,
    dataset_name: str,
    num_classes: int,
    device: torch.device,
    steps: int = CLASSIFIER_STEPS,
    reference_images: int = REFERENCE_IMAGES,
    train_images: int = 10_000,
    progress: bool = True,
) -> tuple[FeatureClassifier, dict, tuple, tuple]:
    """(classifier, its info, training set, held-out set): the kept classifier of this data, or one trained now."""
    train_set, reference = held_out_sets(args, dataset, train_images, reference_images)
    folder = classifier_folder(args.cache_dir, dataset_name, args.image_size, steps)
    classifier, info = classifier_for(
        folder, train_set, reference, dataset_name, num_classes, steps, device, seed=CLASSIFIER_SEED, progress=progress
    )
    return classifier, info | {"folder": str(folder)}, train_set, reference
