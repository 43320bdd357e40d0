"""Finite scalar quantisation (Mentzer et al., 2023): each channel is bounded and rounded to one of L_i levels.

The codebook is implicit, the product grid of the levels; codes are normalised to [-1, 1]. Axis letters: b batch,
d channels (one per level), h and w the latent grid.
"""

from dataclasses import dataclass

import torch
from einops import rearrange
from torch import nn

from .vq import Quantized, straight_through

# Levels the FSQ paper recommends for a target codebook size.
RECOMMENDED_LEVELS = {
    2**8: (8, 6, 5),
    2**10: (8, 5, 5, 5),
    2**12: (7, 5, 5, 5, 5),
    2**14: (8, 8, 8, 6, 5),
    2**16: (8, 8, 8, 5, 5, 5),
}


@dataclass(frozen=True)
class FSQConfig:
    levels: tuple[int, ...] = (8, 5, 5, 5)

    def __post_init__(self):
        if not self.levels or min(self.levels) < 2:
            raise ValueError(f"FSQ levels {self.levels} must be a non-empty list of integers >= 2")


def round_ste(x: torch.Tensor) -> torch.Tensor:
    return straight_through(x, x.round())


class FSQ(nn.Module):
    def __init__(self, config: FSQConfig, eps: float = 1e-3):
        super().__init__()
        self.config, self.eps = config, eps
        levels = torch.tensor(config.levels)
        self.register_buffer("levels", levels, persistent=False)
        self.register_buffer("basis", torch.cumprod(torch.tensor((1,) + config.levels[:-1]), 0), persistent=False)
        self.register_buffer("half_width", levels // 2, persistent=False)

    @property
    def dim(self) -> int:
        return len(self.config.levels)

    @property
    def codebook_size(self) -> int:
        return int(self.levels.prod())

    def bound(self, z: torch.Tensor) -> torch.Tensor:
        """Maps (..., d) into ranges that round to exactly L_i integers: [-L/2, L/2 - 1] for even L, [-(L-1)/2, (L-1)/2] for odd."""
        half = (self.levels - 1) * (1 + self.eps) / 2
        offset = (self.levels % 2 == 0).float() * 0.5
        shift = torch.atanh(offset / half)
        return torch.tanh(z + shift) * half - offset

    def quantize(self, z: torch.Tensor) -> torch.Tensor:
        """(..., d) -> grid points normalised to [-1, 1], with straight-through gradients."""
        return round_ste(self.bound(z)) / self.half_width

    def codes_to_indices(self, codes: torch.Tensor) -> torch.Tensor:
        """(..., d) normalised grid points -> (...,) integers in [0, codebook_size)."""
        digits = (codes * self.half_width + self.half_width).round().long()
        return (digits * self.basis).sum(-1)

    def indices_to_codes(self, indices: torch.Tensor) -> torch.Tensor:
        """(...,) -> (..., d) normalised grid points."""
        digits = (indices[..., None] // self.basis) % self.levels
        return (digits - self.half_width) / self.half_width

    def implicit_codebook(self) -> torch.Tensor:
        """Every code, in index order: (codebook_size, d)."""
        return self.indices_to_codes(torch.arange(self.codebook_size, device=self.levels.device))

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """(b, h, w) -> (b, d, h, w)."""
        return rearrange(self.indices_to_codes(indices), "b h w d -> b d h w")

    def forward(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> Quantized:
        """latents (b, d, h, w) -> codes (b, d, h, w), indices (b, h, w), zero loss (FSQ has no auxiliary loss)."""
        codes = self.quantize(rearrange(latents, "b d h w -> b h w d").float())  # (b, h, w, d)
        return Quantized(
            rearrange(codes, "b h w d -> b d h w").to(latents.dtype),
            self.codes_to_indices(codes),
            latents.new_zeros(()),
        )
