"""An exponential moving average of a model's weights, kept as a module of the same class so it samples like one.

The decay warms up as min(decay, (1 + step) / (10 + step)), as diffusers' EMAModel does: with a fixed 0.999 an
EMA after 1,000 steps would still hold 0.999^1000 = 37% of the random initial weights, and short runs sampled
noise from it.
"""

import copy

import torch
from torch import nn


class EMA(nn.Module):
    def __init__(self, model: nn.Module, decay: float):
        super().__init__()
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay {decay} must lie in [0, 1)")
        self.decay = decay
        self.module = copy.deepcopy(model).eval().requires_grad_(False)

    def decay_at(self, step: int) -> float:
        return min(self.decay, (1 + step) / (10 + step))

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """ema <- d * ema + (1 - d) * model after optimizer step ``step`` (0-based), d = ``decay_at(step)``; buffers are copied."""
        ema_params = list(self.module.parameters())
        torch._foreach_lerp_(ema_params, [p.detach() for p in model.parameters()], 1.0 - self.decay_at(step))
        for ema_buffer, buffer in zip(self.module.buffers(), model.buffers()):
            ema_buffer.copy_(buffer)
