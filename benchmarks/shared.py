"""What several benchmarks share (a module, not a script): the official code's configuration mirrored, data
geometries, and a timer that counts GPU time."""

import contextlib
import time
from dataclasses import dataclass

import torch

from diffloss import DiffLossConfig
from mar import MARConfig

# The official code's default model shape at a small scale: 64 tokens of 16 channels, 64 buffer tokens.
OFFICIAL_MIRROR = MARConfig(
    width=256,
    encoder_depth=4,
    decoder_depth=4,
    num_heads=4,
    buffer_size=64,
    attn_dropout=0.1,
    proj_dropout=0.1,
    num_classes=10,
    latent_channels=16,
    latent_size=8,
    patch_size=1,
    head=DiffLossConfig(width=256, depth=3, diffusion_batch_mul=4),
)
# Data geometry: classes, latent channels, latent side, patch size.
GEOMETRIES = {"glyphs32": (10, 4, 8, 2), "glyphs64": (10, 4, 16, 2), "imagenet256": (1000, 16, 16, 1)}


@dataclass
class Timer:
    """Accumulates wall time of the wrapped calls, synchronising the device so GPU time is counted."""

    device: torch.device
    seconds: float = 0.0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self):
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.seconds += time.perf_counter() - start
