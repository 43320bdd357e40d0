"""Class sample grids: N samples of each class, one row per class, decoded to images and saved as a PNG."""

from pathlib import Path

import torch

from mar.data.images import save_grid
from mar.model.generator import MARGenerator
from mar.sampling.config import SamplingConfig
from mar.sampling.loop import sample_latents
from vae import Tokenizer


@torch.no_grad()
def class_samples(
    model: MARGenerator,
    tokenizer: Tokenizer,
    class_ids: list[int],
    per_class: int,
    sampling: SamplingConfig | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    guided_head=None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(images (classes * per_class, 3, s, s), their class ids): ``per_class`` samples of each class, class by class;
    ``guided_head`` as ``sample_latents`` takes it."""
    device = next(model.parameters()).device
    labels = torch.tensor(class_ids, device=device).repeat_interleave(per_class)  # (n,)
    images = torch.cat(
        [
            tokenizer.decode_latents(sample_latents(model, chunk, sampling, generator=generator, head=guided_head))
            for chunk in labels.split(batch_size)
        ]
    )
    return images, labels


def render_samples(
    model: MARGenerator,
    tokenizer: Tokenizer,
    class_names: list[str],
    per_class: int,
    path: str | Path,
    sampling: SamplingConfig | None = None,
    class_ids: list[int] | None = None,
    batch_size: int = 256,
    generator: torch.Generator | None = None,
    guided_head=None,
) -> Path:
    """Samples ``per_class`` images of each class (all classes by default) into a grid, one row per class."""
    class_ids = list(range(len(class_names))) if class_ids is None else class_ids
    images, _ = class_samples(model, tokenizer, class_ids, per_class, sampling, batch_size, generator, guided_head)
    return save_grid(images, [class_names[k] for k in class_ids], path)
