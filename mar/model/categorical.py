"""CategoricalHead: the discrete baselines' token head, logits over a codebook with cross-entropy.

It has DiffLoss's interface: ``loss(z, target, mask)`` and ``sample(z, temperature, cfg, z_uncond, ...)`` take and
return token vectors, so the backbone and the sampler serve both heads unchanged. A token of p x p latent
positions holds p^2 code vectors; the head predicts p^2 indices, and targets are mapped to indices through the
codebook (exactly, as target vectors are codes). Within a token the layout is patchify's, channels first:
(e g). Axis letters: n tokens, d condition width, g = p^2 codes per token, k codebook entries, e code dimension.
"""

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from einops import rearrange
from torch import nn

from vae import nearest_code


@dataclass(frozen=True)
class CategoricalConfig:
    width: int = 1024
    codebook_size: int = 0  # the discrete tokenizer's number of codes
    cond_channels: int = 768  # set by MARConfig: the backbone's width
    codes_per_token: int = 1  # set by MARConfig: p^2 for patch size p


class CategoricalHead(nn.Module):
    def __init__(self, config: CategoricalConfig, codebook: torch.Tensor):
        super().__init__()
        self.config = config
        self.register_buffer("codebook", codebook.detach().clone())  # (k, e): maps indices to token vectors and back
        k, g = codebook.shape[0], config.codes_per_token
        self.net = nn.Sequential(
            nn.LayerNorm(config.cond_channels),
            nn.Linear(config.cond_channels, config.width),
            nn.SiLU(),
            nn.Linear(config.width, g * k),
        )

    def logits(self, z: torch.Tensor) -> torch.Tensor:
        """(n, d) -> (n, g, k)."""
        return rearrange(self.net(z), "n (g k) -> n g k", g=self.config.codes_per_token)

    def indices(self, tokens: torch.Tensor) -> torch.Tensor:
        """Token vectors (n, e * g) -> code indices (n, g)."""
        codes = rearrange(tokens, "n (e g) -> (n g) e", g=self.config.codes_per_token)
        return nearest_code(codes.float(), self.codebook.float()).view(tokens.shape[0], -1)

    def loss(
        self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, generator=None
    ) -> torch.Tensor:
        """Mean cross-entropy over the tokens where mask is 1; z (n, d), target token vectors (n, e * g), mask (n,)."""
        logits = self.logits(z).float()  # (n, g, k)
        loss = F.cross_entropy(rearrange(logits, "n g k -> n k g"), self.indices(target), reduction="none").mean(
            1
        )  # (n,)
        if mask is None:
            return loss.mean()
        return (loss * mask).sum() / mask.sum()

    def sample(
        self,
        z: torch.Tensor,
        temperature: float = 1.0,
        cfg: float = 1.0,
        z_uncond: torch.Tensor | None = None,
        num_steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: str | None = None,
    ) -> torch.Tensor:
        """z (n, d) -> token vectors (n, e * g): a draw from softmax(logits / temperature), greedy at temperature 0.

        Guidance acts on the logits: u + cfg (c - u) with u from ``z_uncond``. ``num_steps`` and ``sampler`` (the
        diffusion head's steps and solver) are unused.
        """
        logits = self.logits(z).float()  # (n, g, k)
        if z_uncond is not None and cfg != 1.0:
            uncond = self.logits(z_uncond).float()
            logits = uncond + cfg * (logits - uncond)
        if temperature == 0:
            picks = logits.argmax(-1)
        else:
            probs = torch.softmax(logits / temperature, dim=-1).flatten(0, 1)  # (n g, k)
            picks = torch.multinomial(probs, 1, generator=generator).view(logits.shape[:2])
        return rearrange(self.codebook[picks], "n g e -> n (e g)").to(z.dtype)
