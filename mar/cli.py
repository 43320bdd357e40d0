"""Shared pieces of the command-line scripts: one-line errors, device choice, the sample grid."""
import argparse
import sys
from pathlib import Path

import torch

from vae import Tokenizer

from .data import GLYPH_CLASSES, ImageFolderDataset, glyph_dataset
from .generator import MARGenerator
from .images import save_grid
from .sampling import sample_latents


class HelpFormatter(argparse.RawDescriptionHelpFormatter, argparse.ArgumentDefaultsHelpFormatter):
    """Keeps the docstring's example lines as written and adds each option's default to its help."""


def fail(message: str) -> None:
    """Exits with a one-line error instead of a traceback."""
    print(f"error: {message}", file=sys.stderr)
    raise SystemExit(2)


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        fail(f"device {name} was asked for but CUDA is not available here; use --device cpu")
    return device


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument("--data-path", default=None, help="ImageFolder root (one sub-folder per class); default: the embedded glyph set")
    data.add_argument("--image-size", type=int, default=32, help="image side in pixels")
    data.add_argument("--num-images", type=int, default=10_000, help="size of the embedded glyph set")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the embedded glyph set")
    data.add_argument("--cache-dir", default="data_cache", help="where the rendered glyph set is kept")


def open_dataset(args: argparse.Namespace):
    """(dataset of (image (3, s, s) in [-1, 1], label), class names) from the data arguments; one-line errors."""
    try:
        if args.data_path is None:
            return glyph_dataset(args.num_images, args.image_size, args.data_seed, cache_dir=args.cache_dir), list(GLYPH_CLASSES)
        dataset = ImageFolderDataset(args.data_path, args.image_size, flip=False)
        return dataset, dataset.classes
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))


def dataset_name(args: argparse.Namespace) -> str:
    """Names the data a latent cache was made from, so a cache of other data is refused."""
    if args.data_path is None:
        return f"glyphs(n={args.num_images}, seed={args.data_seed})"
    return f"folder({Path(args.data_path).resolve()})"


def image_sample(dataset, count: int, seed: int) -> torch.Tensor:
    """Up to ``count`` images of ``dataset`` (the first ones of the glyph set, a seeded draw otherwise): (n, 3, s, s)."""
    if hasattr(dataset, "tensors"):
        return dataset.tensors[0][:count]
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack([dataset[i][0] for i in picks.tolist()])


@torch.no_grad()
def render_samples(
    model: MARGenerator, tokenizer: Tokenizer, class_names: list[str], per_class: int, path: str | Path,
    class_ids: list[int] | None = None, batch_size: int = 256, **sampling,
) -> Path:
    """Samples ``per_class`` images of each class (all classes by default) into a grid, one row per class."""
    class_ids = list(range(len(class_names))) if class_ids is None else class_ids
    device = next(model.parameters()).device
    labels = torch.tensor(class_ids, device=device).repeat_interleave(per_class)
    images = torch.cat([
        tokenizer.decode_latents(sample_latents(model, chunk, **sampling)) for chunk in labels.split(batch_size)
    ])  # (classes * per_class, 3, s, s)
    return save_grid(images, [class_names[k] for k in class_ids], path)
