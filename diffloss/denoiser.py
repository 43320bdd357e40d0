"""The denoiser eps_theta(x_t | t, z): an MLP of residual blocks modulated by adaLN.

Axis letters: n = tokens flattened over the batch, c = token channels, w = MLP width, d = condition width.
"""

import math

import torch
from torch import nn


def modulate(x: torch.Tensor, shift: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return x * (1 + scale) + shift


class TimestepEmbedder(nn.Module):
    """Sinusoidal features of the (integer) timestep followed by a two-layer MLP."""

    def __init__(self, width: int, frequency_dim: int = 256, max_period: float = 10000.0):
        super().__init__()
        half = frequency_dim // 2
        freqs = torch.exp(-math.log(max_period) * torch.arange(half, dtype=torch.float32) / half)
        self.register_buffer("freqs", freqs, persistent=False)
        self.mlp = nn.Sequential(nn.Linear(frequency_dim, width), nn.SiLU(), nn.Linear(width, width))

    def forward(self, t: torch.Tensor) -> torch.Tensor:
        """t (n,), one timestep per row -> (n, w); or t (), one timestep for every row (sampling) -> (1, w), which
        broadcasts against the rows."""
        angles = t.reshape(-1).float()[:, None] * self.freqs[None]  # (n or 1, frequency_dim / 2)
        return self.mlp(torch.cat([torch.cos(angles), torch.sin(angles)], dim=-1))


class ResBlock(nn.Module):
    """x + gate * MLP(modulate(LN(x))), with shift, scale and gate predicted from the condition."""

    def __init__(self, width: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.mlp = nn.Sequential(nn.Linear(width, width), nn.SiLU(), nn.Linear(width, width))
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 3 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale, gate = self.modulation(cond).chunk(3, dim=-1)  # 3 x (n, w)
        return x + gate * self.mlp(modulate(self.norm(x), shift, scale))


class FinalLayer(nn.Module):
    def __init__(self, width: int, out_channels: int):
        super().__init__()
        self.norm = nn.LayerNorm(width, elementwise_affine=False, eps=1e-6)
        self.linear = nn.Linear(width, out_channels)
        self.modulation = nn.Sequential(nn.SiLU(), nn.Linear(width, 2 * width))

    def forward(self, x: torch.Tensor, cond: torch.Tensor) -> torch.Tensor:
        shift, scale = self.modulation(cond).chunk(2, dim=-1)
        return self.linear(modulate(self.norm(x), shift, scale))  # (n, out_channels)


GUIDANCE_FEATURE_SCALE = 100.0  # (w - 1) in [0, 9] times this spans the timestep embedder's range, [0, 900]


class Denoiser(nn.Module):
    """Predicts the noise (and, with ``learn_sigma``, the variance interpolation) of a noisy token.

    ``forward(x_t (n, c), t (n,) or () shared, z (n, d)) -> (n, c)`` or ``(n, 2c)`` when the variance is learned.
    With ``guidance_input`` it also takes the guidance scale w, () shared or (n,), embedded like a timestep and added
    to z's embedding (diffloss/guided_head.py); that embedding starts at zero, so the net starts as the unguided one.
    """

    def __init__(
        self,
        token_channels: int,
        cond_channels: int,
        width: int,
        depth: int,
        learn_sigma: bool = True,
        guidance_input: bool = False,
    ):
        super().__init__()
        self.token_channels = token_channels
        self.learn_sigma = learn_sigma
        self.time_embed = TimestepEmbedder(width)
        self.guidance_embed = TimestepEmbedder(width) if guidance_input else None
        self.cond_embed = nn.Linear(cond_channels, width)
        self.input_proj = nn.Linear(token_channels, width)
        self.blocks = nn.ModuleList(ResBlock(width) for _ in range(depth))
        self.final = FinalLayer(width, token_channels * (2 if learn_sigma else 1))
        self.initialize_weights()

    def initialize_weights(self) -> None:
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)
        for linear in (self.time_embed.mlp[0], self.time_embed.mlp[2]):
            nn.init.normal_(linear.weight, std=0.02)
        # Zero modulation and output: every block starts as the identity and the head predicts zero noise.
        for block in self.blocks:
            nn.init.zeros_(block.modulation[-1].weight)
            nn.init.zeros_(block.modulation[-1].bias)
        for linear in (self.final.modulation[-1], self.final.linear):
            nn.init.zeros_(linear.weight)
            nn.init.zeros_(linear.bias)
        if self.guidance_embed is not None:
            nn.init.normal_(self.guidance_embed.mlp[0].weight, std=0.02)
            nn.init.zeros_(self.guidance_embed.mlp[2].weight)

    def forward(self, x_t: torch.Tensor, t: torch.Tensor, z: torch.Tensor, guidance=None) -> torch.Tensor:
        return self.from_embedded(x_t, t, self.embed(z, guidance))

    def embed(self, z: torch.Tensor, guidance: torch.Tensor | None = None) -> torch.Tensor:
        """The condition's embedding (n, w): ``cond_embed(z)``, plus the guidance scale's (() or (n,)) with
        ``guidance_input``; once for the rows or steps that share them."""
        embedded = self.cond_embed(z)
        if self.guidance_embed is None:
            return embedded
        return embedded + self.guidance_embed((guidance - 1) * GUIDANCE_FEATURE_SCALE)  # (n or 1, w) broadcasts

    def from_embedded(self, x_t: torch.Tensor, t: torch.Tensor, z_embedded: torch.Tensor) -> torch.Tensor:
        """``forward`` with the condition's embedding (n, w) computed by the caller (``embed``)."""
        cond = self.time_embed(t) + z_embedded  # (n, w)
        x = self.input_proj(x_t)  # (n, w)
        for block in self.blocks:
            x = block(x, cond)
        return self.final(x, cond)
