"""Latent grids <-> token sequences (p x p patches of the latent grid, channels first within a token)."""

import torch
from einops import rearrange


def patchify(latents: torch.Tensor, patch_size: int) -> torch.Tensor:
    """(b, c, h, w) -> (b, l, c p p) with l = (h / p)(w / p), rows first."""
    return rearrange(latents, "b c (h p1) (w p2) -> b (h w) (c p1 p2)", p1=patch_size, p2=patch_size)


def unpatchify(tokens: torch.Tensor, patch_size: int, grid_size: int) -> torch.Tensor:
    """(b, l, c p p) -> (b, c, h, w), the inverse of ``patchify``."""
    return rearrange(
        tokens, "b (h w) (c p1 p2) -> b c (h p1) (w p2)", h=grid_size, w=grid_size, p1=patch_size, p2=patch_size
    )
