"""Orders, the mask-ratio law and the step schedules: pure functions of their arguments and a generator."""

import math

import torch


def random_orders(
    batch: int, seq_len: int, generator=None, device=None, last: torch.Tensor | None = None
) -> torch.Tensor:
    """A random permutation of positions per sample: (b, l) long.

    ``last`` (b, l) bool puts those positions at the end of each order (in random order among themselves), the same
    draw deciding the rest: with ``last`` all False the orders equal those drawn without it.
    """
    scores = torch.rand(batch, seq_len, generator=generator, device=device)  # (b, l) in [0, 1)
    if last is not None:
        scores = scores + last.to(scores.dtype)  # known positions score in [1, 2): after every other one
    return torch.argsort(scores, dim=1)


def raster_orders(batch: int, seq_len: int, device=None) -> torch.Tensor:
    """Row-major order (the token order of patchify) for every sample: (b, l) long."""
    return torch.arange(seq_len, device=device).expand(batch, -1)


def orders_for(order: str, batch: int, seq_len: int, generator=None, device=None) -> torch.Tensor:
    """A causal model's generation order: "random" (``random_orders``) or "raster" (``raster_orders``), (b, l) long."""
    if order == "raster":
        return raster_orders(batch, seq_len, device)
    return random_orders(batch, seq_len, generator=generator, device=device)


def mask_from_orders(orders: torch.Tensor, num_masked: int) -> torch.Tensor:
    """1 at the first ``num_masked`` positions of each order, 0 elsewhere: (b, l) float."""
    mask = torch.zeros(orders.shape, device=orders.device)
    return mask.scatter_(1, orders[:, :num_masked], 1.0)


def draw_mask_ratio(generator=None, mean=1.0, std=0.25, low=0.7, high=1.0) -> float:
    """One draw of the training mask ratio from a normal law truncated to [low, high].

    The uniform variate comes from ``generator`` and is mapped through scipy's inverse CDF, so the draw repeats
    under a seed on any device.
    """
    from scipy import stats  # imported here: see docs/architecture.md#imports

    u = torch.rand((), generator=generator, device=generator.device if generator is not None else None).item()
    law = stats.truncnorm((low - mean) / std, (high - mean) / std, loc=mean, scale=std)
    return float(law.ppf(u))


def num_masked_for_ratio(ratio: float, seq_len: int) -> int:
    """Tokens masked at this ratio: at least one, at most all."""
    return min(seq_len, max(1, math.ceil(seq_len * ratio)))


def unmasking_schedule(seq_len: int, num_steps: int) -> list[int]:
    """Tokens still masked after each of K steps on the cosine schedule, ending at 0.

    Each step unmasks at least one token, so K may be any value in [1, seq_len].
    """
    if not 1 <= num_steps <= seq_len:
        raise ValueError(f"number of steps K={num_steps} must lie in [1, {seq_len}] (the token count)")
    remaining, counts = seq_len, []
    for step in range(num_steps):
        target = math.floor(seq_len * math.cos(math.pi / 2 * (step + 1) / num_steps))
        steps_left = num_steps - step - 1
        remaining = max(steps_left, min(remaining - 1, target))  # room for one token in each later step
        counts.append(remaining)
    return counts


def annealed_steps(first: int, last: int, num_steps: int) -> list[int]:
    """Diffusion steps for the head at each of K autoregressive steps: linear from ``first`` at the first step to
    ``last`` at the last, rounded half up; both ends must be at least 1, so every entry is."""
    if first < 1 or last < 1:
        raise ValueError(f"diffusion steps must be at least 1, got {first} at the first step and {last} at the last")
    if num_steps < 1:
        raise ValueError(f"number of steps K={num_steps} must be at least 1")
    if num_steps == 1:
        return [first]
    return [math.floor(first + (last - first) * k / (num_steps - 1) + 0.5) for k in range(num_steps)]


def unmasked_fraction(remaining: int, seq_len: int, official: bool = False) -> float:
    """The fraction of tokens unmasked after a step, as the linear guidance schedule reads it.

    The official code reads the count still masked after clamping it to at least one, so on the last step, where every
    token is drawn, it reads (L - 1) / L, and the linear scale is 1 + (cfg - 1)(L - 1) / L instead of cfg.
    """
    return 1 - (max(remaining, 1) if official else remaining) / seq_len


def cfg_at(cfg: float, schedule: str, fraction_unmasked: float) -> float:
    """The guidance scale for a step: constant, or rising linearly from 1 with the fraction of tokens unmasked."""
    if schedule == "constant":
        return cfg
    if schedule == "linear":
        return 1.0 + (cfg - 1.0) * fraction_unmasked
    raise ValueError(f"unknown cfg schedule {schedule!r}; use 'constant' or 'linear'")
