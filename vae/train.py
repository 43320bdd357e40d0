"""Training any tokenizer here (KL, VQ or FSQ) with one loop, and measuring it: PSNR, codebook usage, perplexity."""

import math

import torch
from tqdm import tqdm

from .kl import KLTokenizer


def psnr(reconstructions: torch.Tensor, images: torch.Tensor) -> float:
    """Peak signal-to-noise ratio in dB for images in [-1, 1]."""
    mse = ((reconstructions - images) / 2).pow(2).mean().item()
    return 10 * math.log10(1.0 / max(mse, 1e-12))


@torch.no_grad()
def reconstruct(tokenizer, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    return torch.cat([tokenizer.decode(tokenizer.encode(chunk)) for chunk in images.split(batch_size)])


def reconstruction_psnr(tokenizer, images: torch.Tensor, batch_size: int = 256) -> float:
    return psnr(reconstruct(tokenizer, images, batch_size), images)


def code_statistics(indices: torch.Tensor, codebook_size: int) -> dict:
    """Share of codes used at least once, and perplexity exp(entropy) of the code frequencies (codebook_size at most)."""
    counts = torch.bincount(indices.flatten(), minlength=codebook_size).double()
    p = counts / counts.sum()
    entropy = -(p[p > 0] * p[p > 0].log()).sum().item()
    return {"usage": (counts > 0).double().mean().item(), "perplexity": math.exp(entropy)}


@torch.no_grad()
def evaluate_tokenizer(tokenizer, images: torch.Tensor, batch_size: int = 256) -> dict:
    """PSNR on ``images``, plus codebook usage and perplexity over them for a discrete tokenizer."""
    metrics = {"psnr": reconstruction_psnr(tokenizer, images, batch_size)}
    if tokenizer.discrete:
        indices = torch.cat([tokenizer.encode(chunk) for chunk in images.split(batch_size)])
        metrics |= code_statistics(indices, tokenizer.codebook_size)
    return metrics


def train_tokenizer(
    tokenizer,
    images: torch.Tensor,
    steps: int,
    batch_size: int = 32,
    lr: float = 1e-3,
    warmup_steps: int = 0,
    precision: torch.dtype | None = None,
    generator: torch.Generator | None = None,
    progress: bool = True,
):
    """Trains ``tokenizer`` on ``images`` (N, 3, s, s) in [-1, 1] with its own ``training_loss``; returns it in eval mode.

    AdamW with a linear warmup, then a cosine decay to 0. A KL tokenizer then fits its latent shift and scale on
    up to 2048 of the images. With ``precision`` (e.g. torch.bfloat16) the forward pass runs under autocast;
    float16 adds a gradient scaler.
    """
    tokenizer.to(images.device).train()
    optimizer = torch.optim.AdamW([p for p in tokenizer.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)

    def factor(step: int) -> float:
        if step < warmup_steps:
            return (step + 1) / warmup_steps
        return 0.5 * (1 + math.cos(math.pi * (step - warmup_steps) / max(1, steps - warmup_steps)))

    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, factor)
    scaler = torch.amp.GradScaler(images.device.type, enabled=precision == torch.float16)
    bar = tqdm(range(steps), desc=f"{tokenizer.kind} tokenizer", disable=not progress)
    for _ in bar:
        batch = images[torch.randint(0, len(images), (batch_size,), generator=generator, device=images.device)]
        with torch.autocast(images.device.type, dtype=precision or torch.float32, enabled=precision is not None):
            loss, logs = tokenizer.training_loss(batch, generator)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
        schedule.step()
        bar.set_postfix({k: f"{v:.4f}" for k, v in logs.items()})
    tokenizer.eval().requires_grad_(False)
    if isinstance(tokenizer, KLTokenizer):
        tokenizer.fit_scale(images[:2048])
    return tokenizer


def train_and_measure(tokenizer, images: torch.Tensor, held_out: int, **training) -> dict:
    """Trains on all but the last ``held_out`` images and measures on those; returns the metrics."""
    train_tokenizer(tokenizer, images[:-held_out], **training)
    return evaluate_tokenizer(tokenizer, images[-held_out:])
