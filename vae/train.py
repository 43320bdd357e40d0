"""Training a KL tokenizer on images: L1 reconstruction plus a weighted KL to the unit Gaussian."""
import math

import torch
from tqdm import tqdm

from .kl import KLTokenizer, small_autoencoder


def psnr(reconstructions: torch.Tensor, images: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1]."""
    mse = ((reconstructions - images) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def reconstruction_psnr(tokenizer: KLTokenizer, images: torch.Tensor, batch_size: int = 256) -> float:
    recon = torch.cat([tokenizer.decode(tokenizer.encode(chunk)) for chunk in images.split(batch_size)])
    return psnr(recon, images)


def train_kl_tokenizer(
    images: torch.Tensor,
    steps: int,
    latent_channels: int = 4,
    stride: int = 4,
    width: int = 64,
    batch_size: int = 64,
    lr: float = 1e-3,
    kl_weight: float = 1e-4,
    precision: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
) -> KLTokenizer:
    """Trains a small AutoencoderKL on ``images`` (N, 3, s, s) in [-1, 1] and fits its latent shift and scale.

    The learning rate decays on a cosine from ``lr`` to 0; the KL term is a mean per latent value. With
    ``precision`` (e.g. torch.bfloat16) the forward pass runs under autocast.
    """
    autoencoder = small_autoencoder(latent_channels, stride, width).to(images.device)
    optimizer = torch.optim.AdamW(autoencoder.parameters(), lr=lr, weight_decay=0.0)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 0.5 * (1 + math.cos(math.pi * step / steps)))
    bar = tqdm(range(steps), desc="tokenizer", disable=not progress)
    for _ in bar:
        batch = images[torch.randint(0, len(images), (batch_size,), generator=generator, device=images.device)]
        with torch.autocast(images.device.type, dtype=precision or torch.float32, enabled=precision is not None):
            posterior = autoencoder.encode(batch).latent_dist
            recon = autoencoder.decode(posterior.sample(generator)).sample
        l1 = (recon.float() - batch).abs().mean()
        kl = posterior.kl().float().mean() / posterior.mean[0].numel()
        loss = l1 + kl_weight * kl
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        schedule.step()
        bar.set_postfix(l1=f"{l1.item():.4f}", kl=f"{kl.item():.3f}")
    autoencoder.eval().requires_grad_(False)
    tokenizer = KLTokenizer(autoencoder)
    tokenizer.fit_scale(images[:2048])
    return tokenizer
