"""KLTokenizer: a diffusers ``AutoencoderKL`` with the latent shift and scale that make its latents unit-sized.

Images are (b, 3, s, s) in [-1, 1]; latents are (b, c, s / stride, s / stride), already shifted and scaled.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from torch import nn

from .levels import level_channels
from .pixel_loss import pixel_loss

if TYPE_CHECKING:
    from diffusers import AutoencoderKL

TOKENIZER_FILE = "tokenizer.json"


def small_autoencoder(
    latent_channels: int = 4, stride: int = 4, width: int = 64, initial_logvar: float = 0.0
) -> AutoencoderKL:
    """A compact AutoencoderKL that trains on a CPU in minutes: one ResNet layer per level, ``log2(stride)`` downsamples.

    ``initial_logvar`` starts the posterior's log-variance there (the bias of the moments' last convolution; 0 is
    diffusers' own start, unit noise on latents that begin near 0). It changes only the start, not the format.
    """
    from diffusers import AutoencoderKL  # imported here: see docs/architecture.md#imports

    channels = level_channels(stride, width)
    autoencoder = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(channels),
        up_block_types=("UpDecoderBlock2D",) * len(channels),
        block_out_channels=channels,
        layers_per_block=1,
        latent_channels=latent_channels,
        norm_num_groups=8,  # with one channel per group, GroupNorm would erase flat colours outright
    )
    with torch.no_grad():  # quant_conv's 2c outputs are the posterior's mean, then its log-variance
        autoencoder.quant_conv.bias[latent_channels:] += initial_logvar
    return autoencoder


class KLTokenizer(nn.Module):
    kind = "kl"
    discrete = False
    codebook_size = None

    def __init__(
        self,
        autoencoder: AutoencoderKL,
        scale: float = 1.0,
        shift: float = 0.0,
        kl_weight: float = 1e-4,
        pixel_loss: str = "l1",
    ):
        super().__init__()
        self.autoencoder = autoencoder
        self.scale, self.shift = float(scale), float(shift)
        # training settings of ``training_loss``, not saved: the KL term's weight and the pixel term ("l1" or "mse")
        self.kl_weight, self.pixel_loss = kl_weight, pixel_loss

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

    decode_latents = decode  # the generator's latents are this tokenizer's latents

    def training_loss(
        self, images: torch.Tensor, generator: torch.Generator | None = None
    ) -> tuple[torch.Tensor, dict]:
        """The pixel loss of a posterior draw's reconstruction plus ``kl_weight`` x the KL to N(0, I) per latent value."""
        posterior = self.autoencoder.encode(images).latent_dist
        recon = self.autoencoder.decode(posterior.sample(generator)).sample
        pixels = pixel_loss(recon, images, self.pixel_loss)
        kl = posterior.kl().float().mean() / posterior.mean[0].numel()
        return pixels + self.kl_weight * kl, {self.pixel_loss: pixels.item(), "kl": kl.item()}

    @torch.no_grad()
    def fit_scale(self, images: torch.Tensor, batch_size: int = 256) -> None:
        """Sets shift and scale so that posterior draws over ``images`` have mean 0 and std 1."""
        draws = torch.cat([self.autoencoder.encode(chunk).latent_dist.sample() for chunk in images.split(batch_size)])
        self.shift, self.scale = draws.mean().item(), 1.0 / draws.std().item()

    def identity(self) -> dict:
        """Everything needed to rebuild the tokenizer, weights aside (JSON-serialisable)."""
        architecture = {
            k: v
            for k, v in self.autoencoder.config.items()
            if not k.startswith("_") and k not in ("scaling_factor", "shift_factor")
        }
        return {"kind": self.kind, "autoencoder": architecture, "scale": self.scale, "shift": self.shift}

    @classmethod
    def from_identity(cls, identity: dict) -> KLTokenizer:
        from diffusers import AutoencoderKL  # imported here: see docs/architecture.md#imports

        return cls(AutoencoderKL.from_config(identity["autoencoder"]), identity["scale"], identity["shift"])

    def save(self, directory: str | Path) -> None:
        """A diffusers model folder whose config carries the scale and shift, plus ``tokenizer.json`` naming the kind."""
        directory = Path(directory)
        self.autoencoder.register_to_config(scaling_factor=self.scale, shift_factor=self.shift)
        self.autoencoder.save_pretrained(directory)
        (directory / TOKENIZER_FILE).write_text(
            json.dumps({"kind": self.kind, "scale": self.scale, "shift": self.shift}, indent=2)
        )

    @classmethod
    def from_autoencoder(cls, autoencoder: AutoencoderKL) -> KLTokenizer:
        """Scale and shift from the diffusers config (``scaling_factor``, ``shift_factor``), as diffusers pipelines use them."""
        return cls(autoencoder, autoencoder.config.scaling_factor, autoencoder.config.shift_factor or 0.0)
