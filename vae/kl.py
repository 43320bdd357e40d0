"""KLTokenizer: a diffusers ``AutoencoderKL`` with the latent shift and scale that make its latents unit-sized.

Images are (b, 3, s, s) in [-1, 1]; latents are (b, c, s / stride, s / stride), already shifted and scaled.
"""
import json
from pathlib import Path

import torch
from diffusers import AutoencoderKL
from torch import nn

TOKENIZER_FILE = "tokenizer.json"


def small_autoencoder(latent_channels: int = 4, stride: int = 4, width: int = 64) -> AutoencoderKL:
    """A compact AutoencoderKL that trains on a CPU in minutes: one ResNet layer per level, ``log2(stride)`` downsamples."""
    levels = stride.bit_length()  # stride 4 -> 3 levels, two of which downsample
    if stride < 1 or 2 ** (levels - 1) != stride:
        raise ValueError(f"tokenizer stride {stride} must be a power of two")
    channels = tuple(min(width, 32 * 2**i) for i in range(levels))
    return AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * levels,
        up_block_types=("UpDecoderBlock2D",) * levels,
        block_out_channels=channels,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,  # with one channel per group, GroupNorm would erase flat colours outright
    )


class KLTokenizer(nn.Module):
    def __init__(self, autoencoder: AutoencoderKL, scale: float = 1.0, shift: float = 0.0):
        super().__init__()
        self.autoencoder = autoencoder
        self.scale, self.shift = float(scale), float(shift)

    @property
    def stride(self) -> int:
        return 2 ** (len(self.autoencoder.config.block_out_channels) - 1)

    @property
    def channels(self) -> int:
        return self.autoencoder.config.latent_channels

    def moments(self, images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The posterior's mean and std, unscaled: 2 x (b, c, h, w)."""
        posterior = self.autoencoder.encode(images).latent_dist
        return posterior.mean, posterior.std

    def scale_latents(self, mean: torch.Tensor, std: torch.Tensor | None = None, generator=None) -> torch.Tensor:
        """A draw from the posterior (its mean when ``std`` is None), shifted and scaled."""
        if std is not None:
            mean = mean + std * torch.randn(mean.shape, device=mean.device, dtype=mean.dtype, generator=generator)
        return (mean - self.shift) * self.scale

    def encode(self, images: torch.Tensor, sample: bool = False, generator=None) -> torch.Tensor:
        mean, std = self.moments(images)
        return self.scale_latents(mean, std if sample else None, generator)

    def decode(self, latents: torch.Tensor) -> torch.Tensor:
        return self.autoencoder.decode(latents / self.scale + self.shift).sample.clamp(-1, 1)

    @torch.no_grad()
    def fit_scale(self, images: torch.Tensor, batch_size: int = 256) -> None:
        """Sets shift and scale so that posterior draws over ``images`` have mean 0 and std 1."""
        draws = torch.cat([self.autoencoder.encode(chunk).latent_dist.sample() for chunk in images.split(batch_size)])
        self.shift, self.scale = draws.mean().item(), 1.0 / draws.std().item()

    def identity(self) -> dict:
        """Everything needed to rebuild the tokenizer, weights aside (JSON-serialisable)."""
        return {"kind": "kl", "autoencoder": dict(self.autoencoder.config), "scale": self.scale, "shift": self.shift}

    @classmethod
    def from_identity(cls, identity: dict) -> "KLTokenizer":
        return cls(AutoencoderKL.from_config(identity["autoencoder"]), identity["scale"], identity["shift"])

    def save(self, directory: str | Path) -> None:
        """A diffusers model folder plus ``tokenizer.json`` with the latent scale and shift."""
        directory = Path(directory)
        self.autoencoder.save_pretrained(directory)
        (directory / TOKENIZER_FILE).write_text(json.dumps({"scale": self.scale, "shift": self.shift}, indent=2))

    @classmethod
    def load(cls, directory: str | Path) -> "KLTokenizer":
        """From a folder written by ``save``, or any diffusers AutoencoderKL folder (then scale 1, shift 0)."""
        directory = Path(directory)
        if not (directory / "config.json").exists():
            raise FileNotFoundError(
                f"tokenizer folder {directory} has no config.json; pass a folder written by train.py "
                "(runs/<name>/tokenizer) or a diffusers AutoencoderKL folder"
            )
        latent = json.loads((directory / TOKENIZER_FILE).read_text()) if (directory / TOKENIZER_FILE).exists() else {}
        autoencoder = AutoencoderKL.from_pretrained(directory, low_cpu_mem_usage=False)
        return cls(autoencoder, latent.get("scale", 1.0), latent.get("shift", 0.0))
