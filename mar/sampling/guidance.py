"""The conditions z a sampling step feeds the head: the class's, and under guidance the null class's too.

Exact guidance runs the backbone on both halves at every step. With ``refresh`` N > 1 (approximate, faster) the
unconditional half runs only at steps 1, N + 1, 2N + 1, ...; between them, a position's unconditional z is its
conditional z minus the difference of the two at the last step that ran both.
Axis letters: b = batch, l = positions, m = positions computed at a step, d = width, n = tokens drawn at a step.
"""

import torch

from mar.model.backbone import MARBackbone


class Conditions:
    def __init__(self, backbone: MARBackbone, labels: torch.Tensor, cfg: float, refresh: int = 1):
        """``refresh`` >= 1, as SamplingConfig checks it."""
        self.backbone, self.labels, self.refresh = backbone, labels, refresh
        self.guided = cfg != 1.0
        self.null = torch.full_like(labels, backbone.null_class)
        self.difference = None  # (b, l, d): z - z_uncond at the positions masked when both halves last ran

    def __call__(self, step: int, tokens: torch.Tensor, mask: torch.Tensor, to_draw: torch.Tensor):
        """z (n, d) at the positions ``to_draw`` (b, l), and their unconditional z (n, d), or None when unguided."""
        if self.guided and (step - 1) % self.refresh == 0:
            return self.both_halves(tokens, mask, to_draw)
        z = self.backbone(tokens, self.labels, mask, to_draw).flatten(0, 1)  # (n, d)
        return z, (z - self.difference[to_draw] if self.guided else None)

    def both_halves(self, tokens: torch.Tensor, mask: torch.Tensor, to_draw: torch.Tensor):
        """Both halves in one backbone pass; under refresh at every masked position, to keep their difference."""
        b = tokens.shape[0]
        wanted = mask if self.refresh > 1 else to_draw  # (b, l): the positions computed
        z, z_uncond = self.backbone(
            tokens.repeat(2, 1, 1), torch.cat([self.labels, self.null]), mask.repeat(2, 1), wanted.repeat(2, 1)
        ).chunk(2)  # 2 x (b, m, d)
        if self.refresh > 1:
            self.difference = torch.zeros(b, mask.shape[1], z.shape[-1], device=z.device, dtype=z.dtype)
            self.difference[mask] = (z - z_uncond).flatten(0, 1)
        drawn = to_draw[wanted].view(b, -1)  # (b, m): which of the computed positions are drawn now
        return z[drawn], z_uncond[drawn]  # 2 x (n, d)
