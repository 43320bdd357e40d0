"""Masked autoregressive sampling: K steps on a cosine schedule in a random order per image."""
from collections.abc import Callable

import torch

from .configs import COMPAT
from .generator import MARGenerator
from .masking import annealed_steps, cfg_at, mask_from_orders, random_orders, unmasked_fraction, unmasking_schedule
from .tokens import unpatchify


@torch.no_grad()
def sample_latents(
    model: MARGenerator,
    labels: torch.Tensor,
    num_iter: int = 16,
    temperature: float = 1.0,
    cfg: float = 1.0,
    cfg_schedule: str = "linear",
    diffusion_steps: int | None = None,
    diffusion_steps_last: int | None = None,
    head_sampler: str = "ddpm",
    compat: str | None = None,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    known_tokens: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
    cfg_refresh: int = 1,
) -> torch.Tensor:
    """Class ids (b,) -> latents (b, c, h, w).

    Each step runs the backbone on the tokens drawn so far, then the head draws the tokens that the schedule
    unmasks at this step; every token is drawn exactly once. With cfg != 1 the backbone also runs with the null
    class and the head is guided at a scale given by ``cfg_schedule``.

    The diffusion head draws with ``head_sampler`` ("ddpm", "ddim" or "dpm++") in ``diffusion_steps`` steps (the
    model's default when None); with ``diffusion_steps_last`` the steps fall linearly from ``diffusion_steps`` at the
    first step to ``diffusion_steps_last`` at the last. The categorical head ignores both.

    ``compat`` "official" samples as the official MAR code: the ddpm chain respaced as improved DDPM's
    ``space_timesteps`` (0 ... 999) and the linear guidance scale of the last step read from a clamped count
    (``unmasked_fraction``); "default" is this library's way; None takes the model config's.

    ``on_step(step, tokens, mask)``, when given, is called after each step k = 1 ... K with copies of the tokens
    (b, l, c·p²), zero where not yet drawn, and the mask (b, l), True where still masked; it sees the loop, it cannot
    change it.

    ``known_tokens`` (b, l, c·p²) with ``known`` (b, l) bool completes images (inpainting): the known tokens are kept as
    given and visible from the first step, and the K steps draw only the others, whose count must be the same in every
    row and at least K. Without them (or with ``known`` all False) the draws are those of plain sampling.

    ``cfg_refresh`` N > 1 trades exactness for speed under guidance: the unconditional half of the backbone runs only
    at steps 1, N + 1, 2N + 1, ...; at the steps between, the unconditional z of a position is its conditional z minus
    the difference of the two at the last step that ran both (an approximation; 1, the default, is exact).
    """
    config, backbone, head = model.config, model.backbone, model.head
    compat = config.compat if compat is None else compat
    if compat not in COMPAT:
        raise ValueError(f"unknown compat {compat!r}; choose one of {', '.join(COMPAT)}")
    official = compat == "official"
    head_options = {"spacing": "iddpm" if official else "leading"} if config.head == "diffusion" else {}
    if labels.min() < 0 or labels.max() >= config.num_classes:
        bad = labels[(labels < 0) | (labels >= config.num_classes)][0].item()
        raise ValueError(f"class id {bad} is out of range: the model has {config.num_classes} classes (0-{config.num_classes - 1})")
    b, seq_len, device = labels.shape[0], config.seq_len, labels.device
    tokens = torch.zeros(b, seq_len, config.token_dim, device=device)
    mask = torch.ones(b, seq_len, dtype=torch.bool, device=device)
    if known is not None:
        to_complete = (~known).sum(dim=1)  # (b,)
        if not torch.all(to_complete == to_complete[0]):
            raise ValueError(f"every row must leave the same number of tokens to draw; unknown counts are {to_complete.tolist()}")
        tokens[known], mask = known_tokens[known].to(tokens.dtype), ~known
    orders = random_orders(b, seq_len, generator=generator, device=device, last=known)
    if cfg_refresh < 1:
        raise ValueError(f"cfg_refresh {cfg_refresh} must be at least 1 (1 runs the unconditional half at every step)")
    guided = cfg != 1.0
    null = torch.full_like(labels, backbone.null_class)
    schedule = unmasking_schedule(int(mask[0].sum()), num_iter)
    if diffusion_steps_last is None:
        head_steps = [diffusion_steps] * num_iter
    else:
        first = config.num_sampling_steps if diffusion_steps is None else diffusion_steps
        head_steps = annealed_steps(first, diffusion_steps_last, num_iter)
    difference = None  # (b, l, d): z - z_uncond at the positions masked when both halves last ran (cfg_refresh > 1)
    for step, (remaining, steps) in enumerate(zip(schedule, head_steps), start=1):
        next_mask = mask_from_orders(orders, remaining).bool()
        to_draw = mask & ~next_mask  # (b, l): the same count in every row
        both = guided and (step - 1) % cfg_refresh == 0
        # Only the drawn positions' z are computed, except where later steps will reuse this step's difference.
        wanted = mask if both and cfg_refresh > 1 else to_draw
        if both:
            z, z_uncond = backbone(tokens.repeat(2, 1, 1), torch.cat([labels, null]), mask.repeat(2, 1),
                                   wanted.repeat(2, 1)).chunk(2)  # 2 x (b, m, d)
            if cfg_refresh > 1:
                difference = torch.zeros(b, seq_len, z.shape[-1], device=device, dtype=z.dtype)
                difference[mask] = (z - z_uncond).flatten(0, 1)
            drawn = to_draw[wanted].view(b, -1)  # (b, m): which of the computed positions are drawn now
            z, z_uncond = z[drawn], z_uncond[drawn]  # (n, d)
        else:
            z = backbone(tokens, labels, mask, to_draw).flatten(0, 1)  # (n, d)
            z_uncond = z - difference[to_draw] if guided else None
        tokens[to_draw] = head.sample(
            z,
            temperature=temperature,
            cfg=cfg_at(cfg, cfg_schedule, unmasked_fraction(remaining, seq_len, official)),
            z_uncond=z_uncond,
            num_steps=steps,
            generator=generator,
            sampler=head_sampler,
            **head_options,
        ).to(tokens.dtype)  # under autocast a head may answer in bf16
        mask = next_mask
        if on_step is not None:
            on_step(step, tokens.clone(), mask.clone())
    return unpatchify(tokens, config.patch_size, config.grid_size)
