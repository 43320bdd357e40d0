"""The pixel term every tokenizer here trains with: L1 (the default, as LDM's autoencoders) or mean squared error.

On the procedural textures L1 left the KL tokenizer near the PSNR of each image's mean colour (docs/experiments/
2026-12-03-texture-tokenizers-and-l1-plateau.md); MSE, the term PSNR itself measures, moved it off that plateau.
"""

import torch

PIXEL_LOSSES = ("l1", "mse")


def pixel_loss(reconstructions: torch.Tensor, images: torch.Tensor, kind: str) -> torch.Tensor:
    """Mean L1 or squared error between (b, 3, s, s) images, computed in fp32 (autocast may hand bf16 in)."""
    error = reconstructions.float() - images
    if kind == "l1":
        return error.abs().mean()
    if kind == "mse":
        return error.pow(2).mean()
    raise ValueError(f"pixel loss {kind!r} is not one of {', '.join(PIXEL_LOSSES)}")
