"""Vector quantisation: nearest code by squared distance, straight-through gradients, two ways to learn the codebook.

Axis letters: b batch, d code dimension, h and w the latent grid, n = b * h * w vectors, k codebook entries.
"""

from dataclasses import dataclass
from typing import NamedTuple

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn


@dataclass(frozen=True)
class VQConfig:
    codebook_size: int = 512
    dim: int = 8
    beta: float = 0.25  # weight of the commitment loss
    update: str = "loss"  # "loss": codebook loss on the codes; "ema": codes follow running means of their vectors
    decay: float = 0.99  # of the EMA updates and of the usage counts that find dead codes
    dead_usage: float = 0.03  # a code whose running count of vectors per step falls below this is restarted

    def __post_init__(self):
        if self.update not in ("loss", "ema"):
            raise ValueError(f"VQ update {self.update!r} is not one of 'loss', 'ema'")


class Quantized(NamedTuple):
    codes: torch.Tensor  # (b, d, h, w), straight-through: forward values are codes, gradients flow to the input
    indices: torch.Tensor  # (b, h, w)
    loss: torch.Tensor  # scalar: commitment (+ codebook) loss


def nearest_code(vectors: torch.Tensor, codebook: torch.Tensor) -> torch.Tensor:
    """Index of the nearest code for each vector: (n, d), (k, d) -> (n,), via |x|^2 - 2 x.e + |e|^2 in one matmul."""
    distances = vectors.pow(2).sum(1, keepdim=True) - 2 * vectors @ codebook.T + codebook.pow(2).sum(1)  # (n, k)
    return distances.argmin(1)


def straight_through(inputs: torch.Tensor, outputs: torch.Tensor) -> torch.Tensor:
    """``outputs`` in the forward pass, the identity's gradient to ``inputs`` in the backward pass."""
    return inputs + (outputs - inputs).detach()


class VectorQuantizer(nn.Module):
    def __init__(self, config: VQConfig):
        super().__init__()
        self.config = config
        k, d = config.codebook_size, config.dim
        self.codebook = nn.Parameter(torch.randn(k, d) / d**0.5, requires_grad=config.update == "loss")
        # running count of vectors per step assigned to each code; starting at the threshold, every code unused in
        # the first step is restarted on an encoder output, which initialises the codebook from data
        self.register_buffer("usage", torch.full((k,), config.dead_usage))
        if config.update == "ema":
            self.register_buffer("ema_count", torch.ones(k))
            self.register_buffer("ema_sum", self.codebook.detach().clone())

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    def lookup(self, indices: torch.Tensor) -> torch.Tensor:
        """Code vectors of ``indices`` (b, h, w) -> (b, d, h, w)."""
        return rearrange(F.embedding(indices, self.codebook), "b h w d -> b d h w")

    def forward(self, latents: torch.Tensor, generator: torch.Generator | None = None) -> Quantized:
        """latents (b, d, h, w) -> codes (b, d, h, w), indices (b, h, w), loss."""
        b, _, h, w = latents.shape
        vectors = rearrange(latents, "b d h w -> (b h w) d").float()
        indices = nearest_code(vectors.detach(), self.codebook.detach())  # (n,)
        codes = self.codebook[indices]  # (n, d)
        commitment = F.mse_loss(vectors, codes.detach())
        if self.config.update == "loss":
            loss = F.mse_loss(codes, vectors.detach()) + self.config.beta * commitment
        else:
            loss = self.config.beta * commitment
        if self.training:
            self._update(vectors.detach(), indices, generator)
        codes = rearrange(straight_through(vectors, codes), "(b h w) d -> b d h w", b=b, h=h, w=w)
        return Quantized(codes.to(latents.dtype), indices.view(b, h, w), loss)

    @torch.no_grad()
    def _update(self, vectors: torch.Tensor, indices: torch.Tensor, generator: torch.Generator | None) -> None:
        """Running usage, EMA codebook (when selected), and restart of codes nobody uses."""
        decay = self.config.decay
        counts = torch.bincount(indices, minlength=self.codebook_size).float()  # (k,)
        self.usage.mul_(decay).add_(counts, alpha=1 - decay)
        if self.config.update == "ema":
            sums = torch.zeros_like(self.ema_sum).index_add_(0, indices, vectors)  # (k, d)
            self.ema_count.mul_(decay).add_(counts, alpha=1 - decay)
            self.ema_sum.mul_(decay).add_(sums, alpha=1 - decay)
            total = self.ema_count.sum()  # Laplace smoothing keeps rare codes from dividing by ~0
            smoothed = (self.ema_count + 1e-5) / (total + self.codebook_size * 1e-5) * total
            self.codebook.copy_(self.ema_sum / smoothed[:, None])
        dead = (self.usage < self.config.dead_usage).nonzero().squeeze(1)
        if len(dead):
            picks = torch.randint(0, len(vectors), (len(dead),), generator=generator, device=vectors.device)
            self.codebook[dead] = vectors[picks]
            self.usage[dead] = 1.0
            if self.config.update == "ema":
                self.ema_count[dead] = 1.0
                self.ema_sum[dead] = vectors[picks]
