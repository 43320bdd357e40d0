"""Shared pieces of the command-line scripts: one-line errors, device choice, the sample grid."""
import argparse
import sys
from pathlib import Path

import torch

from vae import KLTokenizer

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


@torch.no_grad()
def render_samples(
    model: MARGenerator, tokenizer: KLTokenizer, class_names: list[str], per_class: int, path: str | Path,
    class_ids: list[int] | None = None, batch_size: int = 256, **sampling,
) -> Path:
    """Samples ``per_class`` images of each class (all classes by default) into a grid, one row per class."""
    class_ids = list(range(len(class_names))) if class_ids is None else class_ids
    device = next(model.parameters()).device
    labels = torch.tensor(class_ids, device=device).repeat_interleave(per_class)
    images = torch.cat([
        tokenizer.decode(sample_latents(model, chunk, **sampling)) for chunk in labels.split(batch_size)
    ])  # (classes * per_class, 3, s, s)
    return save_grid(images, [class_names[k] for k in class_ids], path)
