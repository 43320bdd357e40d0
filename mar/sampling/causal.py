"""Causal autoregressive sampling: one token per step in the model's order (random per image, or raster).

Each step feeds the token drawn last through the blocks against cached keys and values, so a step costs one
element's work, not the whole prefix's; ``recompute=True`` runs the whole teacher-forced forward at every step
instead (the reference the cache is tested and timed against). Guidance runs the null class as a second half of the
batch, with its own cache; its scale follows ``cfg_schedule`` over the fraction of tokens drawn.
Axis letters: b = batch, l = positions, c = token channels, d = width; the batch doubles under guidance.
"""

from collections.abc import Callable

import torch

from mar.model.generator import MARGenerator
from mar.model.masking import cfg_at, orders_for, unmasked_fraction
from mar.model.tokens import unpatchify
from mar.sampling.config import SamplingConfig
from mar.sampling.head_settings import head_plan


@torch.no_grad()
def sample_causal(
    model: MARGenerator,
    labels: torch.Tensor,
    sampling: SamplingConfig,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    recompute: bool = False,
    head=None,
) -> torch.Tensor:
    """Class ids (b,) -> latents (b, c, h, w); ``on_step(step, tokens, mask)`` after each of the l steps. ``head``
    draws (the model's by default, or a guided head)."""
    config, backbone = model.config, model.backbone
    head = model.head if head is None else head
    b, length, device = labels.shape[0], config.seq_len, labels.device
    official, head_options, head_steps = head_plan(config, sampling, length)
    orders = orders_for(config.order, b, length, generator, device)  # (b, l)
    guided = sampling.cfg != 1.0
    halves = 2 if guided else 1
    classes = torch.cat([labels, torch.full_like(labels, backbone.null_class)]) if guided else labels  # (hb,)
    tokens = torch.zeros(b, length, config.token_dim, device=device)
    mask = torch.ones(b, length, dtype=torch.bool, device=device)
    rows = torch.arange(b, device=device)
    cache = None
    for k in range(length):
        position = orders[:, k]  # (b,)
        if recompute:
            z = backbone(tokens.repeat(halves, 1, 1), classes, orders.repeat(halves, 1))  # (hb, l, d)
            z = z[torch.arange(halves * b, device=device), position.repeat(halves)]  # (hb, d)
        elif cache is None:
            z, cache = backbone.start(classes, position.repeat(halves))
        else:
            previous = orders[:, k - 1]
            z = backbone.step(
                cache, tokens[rows, previous].repeat(halves, 1), previous.repeat(halves), position.repeat(halves)
            )
        z, z_uncond = z.chunk(2) if guided else (z, None)  # (b, d) each
        remaining = length - k - 1
        tokens[rows, position] = head.sample(
            z,
            temperature=sampling.temperature,
            cfg=cfg_at(sampling.cfg, sampling.cfg_schedule, unmasked_fraction(remaining, length, official)),
            z_uncond=z_uncond,
            num_steps=head_steps[k],
            generator=generator,
            sampler=sampling.head_sampler,
            **head_options,
        ).to(tokens.dtype)
        mask[rows, position] = False
        if on_step is not None:
            on_step(k + 1, tokens.clone(), mask.clone())
    return unpatchify(tokens, config.patch_size, config.grid_size)
