"""Pictures of a sample mid-way: the tokens drawn so far, decoded, with the ones still masked painted gray."""

import torch

from mar.model.config import MARConfig
from mar.model.tokens import unpatchify
from vae import Tokenizer


@torch.no_grad()
def partial_images(tokens: torch.Tensor, mask: torch.Tensor, config: MARConfig, tokenizer: Tokenizer) -> torch.Tensor:
    """Tokens (b, l, c·p²), zero where not drawn yet, and the mask (b, l), True where masked -> images (b, 3, s, s).

    The tokenizer decodes the tokens as they stand (a masked token is zero: the latent mean), then every pixel of a
    masked token's square is set to 0, mid-gray in [-1, 1], so what shows is exactly what has been drawn.
    """
    grid = config.grid_size
    images = tokenizer.decode_latents(unpatchify(tokens, config.patch_size, grid))  # (b, 3, s, s)
    if images.shape[-1] % grid:
        raise ValueError(f"images of side {images.shape[-1]} do not split into the {grid} x {grid} token grid")
    cell = images.shape[-1] // grid  # pixels per token side: tokenizer stride x patch size
    covered = mask.view(-1, 1, grid, grid).repeat_interleave(cell, 2).repeat_interleave(cell, 3)  # (b, 1, s, s)
    return images.masked_fill(covered, 0.0)
