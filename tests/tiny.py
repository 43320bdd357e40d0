"""The tiny generator many unit tests build (a helper module, not a test file): 16 tokens of 16 channels, 5 classes."""

from dataclasses import replace

import torch

from diffloss import DiffLossConfig
from mar import MARGenerator, named_config

TINY = named_config(
    "mar-tiny",
    num_classes=5,
    latent_channels=4,
    latent_size=8,
    patch_size=2,
    width=64,
    num_heads=4,
    encoder_depth=2,
    decoder_depth=2,
    buffer_size=4,
    head=DiffLossConfig(width=64, depth=2, num_sampling_steps=10),
)


def tiny_model(seed: int = 0, **overrides) -> MARGenerator:
    torch.manual_seed(seed)
    return MARGenerator(replace(TINY, **overrides))


def untrained_but_responsive(seed: int = 0) -> MARGenerator:
    """A tiny model whose zero-initialised layers are perturbed, so its samples depend on z and the class."""
    model = tiny_model(seed)
    with torch.no_grad():
        for p in model.parameters():
            if not torch.any(p != 0):
                p.normal_(std=0.05)
    return model.eval()
