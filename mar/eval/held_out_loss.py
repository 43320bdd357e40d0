"""A generator's training loss on images it never trained on: what a recipe sweep ranks learning rates by.

Each head is ranked by its own loss (the diffusion loss for a diffusion head, cross-entropy for a categorical
one), so recipes compare within a variant, never across heads. The masks, timesteps and noise come from one
seeded generator, so every candidate recipe is scored on the same draws.
"""

import torch

from mar.data.latents import encode_views, latent_set


@torch.no_grad()
def held_out_latents(tokenizer, images: torch.Tensor, labels: torch.Tensor, batch_size: int = 256):
    """The LatentSet (KL) or CodeSet (VQ, FSQ) of ``images`` (n, 3, s, s), one view each, as a latent cache holds them."""
    device = next(tokenizer.parameters()).device
    parts = [encode_views(tokenizer, chunk.to(device), flips=False) for chunk in images.split(batch_size)]
    return latent_set({key: torch.cat([p[key] for p in parts]) for key in parts[0]} | {"labels": labels.to(device)})


@torch.no_grad()
def held_out_loss(model, tokenizer, latents, passes: int = 4, batch_size: int = 250, seed: int = 0) -> float:
    """Mean loss of ``model`` (eval mode: no label dropout) over ``passes`` seeded draws of masks and noise per image."""
    model.eval()
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(seed)
    total, count = 0.0, 0
    for _ in range(passes):
        for index in torch.arange(len(latents), device=device).split(batch_size):
            tokens, labels = latents.draw(tokenizer, index, generator)  # (b, c, h, w), (b,)
            total += model.loss(tokens, labels, generator).item() * len(index)
            count += len(index)
    return total / count
