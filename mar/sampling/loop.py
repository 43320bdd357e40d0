"""sample_latents: MAR's K steps on a cosine schedule in a random order per image (here), or one token per step for a
causal model (mar/sampling/causal.py); docs/sampling.md."""

from collections.abc import Callable
from dataclasses import replace

import torch

from mar.model.generator import MARGenerator
from mar.model.masking import cfg_at, random_orders, unmasked_fraction, unmasking_schedule
from mar.model.rows import ascending, scatter_rows
from mar.model.tokens import unpatchify
from mar.sampling.causal import sample_causal
from mar.sampling.completion import starting_tokens
from mar.sampling.config import SamplingConfig
from mar.sampling.guidance import Conditions
from mar.sampling.head_settings import drawing_head, head_plan


def sampling_steps(config, num_iter: int) -> int:
    """The steps ``sample_latents`` takes for a model of ``config``: K, or one per token for a causal model."""
    return config.seq_len if config.attention == "causal" else num_iter


@torch.no_grad()
def sample_latents(
    model: MARGenerator,
    labels: torch.Tensor,
    sampling: SamplingConfig | None = None,
    *,
    generator: torch.Generator | None = None,
    on_step: Callable[[int, torch.Tensor, torch.Tensor], None] | None = None,
    known_tokens: torch.Tensor | None = None,
    known: torch.Tensor | None = None,
    head=None,
    **overrides,
) -> torch.Tensor:
    """Class ids (b,) -> latents (b, c, h, w), drawn as ``sampling`` (SamplingConfig's defaults when None) says.

    Keyword ``overrides`` replace fields of ``sampling``: ``sample_latents(model, labels, cfg=3.0, num_iter=8)``.

    A causal model draws one token per step with a key/value cache (mar/sampling/causal.py; ``num_iter`` does not
    apply). Otherwise each step runs the backbone on the tokens drawn so far, then the head draws the tokens that the schedule
    unmasks at this step; every token is drawn exactly once. With cfg != 1 the backbone also runs with the null
    class (mar/sampling/guidance.py) and the head is guided at a scale given by ``cfg_schedule``. The categorical
    head ignores the head-step options. ``compat`` "official" samples as the official MAR code: the ddpm chain
    respaced as improved DDPM's ``space_timesteps`` and the last step's linear guidance scale read from a clamped
    count (``unmasked_fraction``).

    ``on_step(step, tokens, mask)``, when given, is called after each step k = 1 ... K with copies of the tokens
    (b, l, c·p²), zero where not yet drawn, and the mask (b, l), True where still masked; it cannot change the loop.

    ``known_tokens`` (b, l, c·p²) with ``known`` (b, l) bool completes images (mar/sampling/completion.py): the known
    tokens are kept and visible from the first step; the K steps draw the others, at least K in every row.
    """
    sampling = replace(sampling or SamplingConfig(), **overrides)
    config = model.config
    if labels.min() < 0 or labels.max() >= config.num_classes:
        bad = labels[(labels < 0) | (labels >= config.num_classes)][0].item()
        raise ValueError(
            f"class id {bad} is out of range: the model has {config.num_classes} classes (0-{config.num_classes - 1})"
        )
    head = drawing_head(model, sampling, head)
    if config.attention == "causal":
        if known is not None:
            raise ValueError("completing known tokens needs a bidirectional model; this one is causal")
        return sample_causal(model, labels, sampling, generator, on_step, head=head)
    return sample_masked(model, labels, sampling, generator, on_step, known_tokens, known, head)


def sample_masked(
    model: MARGenerator,
    labels: torch.Tensor,
    sampling: SamplingConfig,
    generator: torch.Generator | None,
    on_step: Callable | None,
    known_tokens: torch.Tensor | None,
    known: torch.Tensor | None,
    head,
) -> torch.Tensor:
    """MAR's loop: K steps, each drawing the set of tokens the cosine schedule unmasks, in a random order; ``head``
    (the model's, or a guided head) draws them.

    The checks and counts come first (they read tensors on the host); ``draw_steps`` then runs with no host
    synchronisation."""
    config = model.config
    tokens, count = starting_tokens(
        labels.shape[0], config.seq_len, config.token_dim, labels.device, known_tokens, known
    )  # (b, l, c), the tokens to draw per row
    by_class = None
    if "first-step" in sampling.reused() and count == config.seq_len:
        classes, inverse = torch.unique(labels, return_inverse=True)
        halves = 2 if sampling.cfg != 1.0 else 1
        if len(classes) + halves - 1 < halves * labels.shape[0]:  # fewer rows than the images' own
            by_class = (classes, inverse)
    conditions = Conditions(
        model.backbone,
        labels,
        sampling.cfg,
        sampling.cfg_refresh,
        "halves" in sampling.reused(),
        by_class,
        sampling.token_cache,
        sampling.cache_buffer,
        sampling.cache_growth,
    )
    orders = random_orders(labels.shape[0], config.seq_len, generator=generator, device=labels.device, last=known)
    return draw_steps(model, head, conditions, sampling, tokens, orders, count, generator, on_step)


def draw_steps(
    model: MARGenerator,
    head,
    conditions: Conditions,
    sampling: SamplingConfig,
    tokens: torch.Tensor,
    orders: torch.Tensor,
    count: int,
    generator: torch.Generator | None,
    on_step: Callable | None,
) -> torch.Tensor:
    """The K steps from tokens (b, l, c) whose first ``count`` positions in ``orders`` (b, l) are still to draw;
    positions go by index, so nothing here waits on the host."""
    config = model.config
    b, seq_len = tokens.shape[0], config.seq_len
    schedule = unmasking_schedule(count, sampling.num_iter)
    official, head_options, head_steps = head_plan(config, sampling, sampling.num_iter)
    masked = count  # orders[:, :masked] are still to draw
    for step, (remaining, steps) in enumerate(zip(schedule, head_steps), start=1):
        visible = ascending(orders[:, masked:])  # (b, v)
        to_draw = ascending(orders[:, remaining:masked])  # (b, n): the same count in every row
        z, z_uncond = conditions(step, tokens, visible, to_draw, orders[:, :masked])  # (b·n, d) each
        drawn = head.sample(
            z,
            temperature=sampling.temperature,
            cfg=cfg_at(sampling.cfg, sampling.cfg_schedule, unmasked_fraction(remaining, seq_len, official)),
            z_uncond=z_uncond,
            num_steps=steps,
            generator=generator,
            sampler=sampling.head_sampler,
            **head_options,
        )  # (b·n, c); under autocast a head may answer in bf16
        scatter_rows(tokens, to_draw, drawn.view(b, masked - remaining, -1))
        masked = remaining
        if on_step is not None:
            mask = torch.zeros(b, seq_len, dtype=torch.bool, device=tokens.device)
            on_step(step, tokens.clone(), mask.scatter_(1, orders[:, :masked], True))
    return unpatchify(tokens, config.patch_size, config.grid_size)
