"""The conditions z a sampling step feeds the head: the class's, and under guidance the null class's too.

Exact guidance runs the backbone on both halves at every step. With ``refresh`` N > 1 (approximate, faster) the
unconditional half runs only at steps 1, N + 1, 2N + 1, ...; between them, a position's unconditional z is its
conditional z minus the difference of the two at the last step that ran both.

Two exact savings (``SamplingConfig.reuse``; each equal to the plain computation up to float rounding):
- "first-step": before any token is drawn, z depends on the class alone, so step 1 runs the backbone once per class
  in the batch (and once for the null class), not once per image;
- "halves": the two guidance halves see the same tokens, so the tokens are projected once for both.
With ``token_cache`` the backbone runs through mar/sampling/token_cache.py (approximate between its refreshes); the
"first-step" saving then fills the cache per class, so it stays exact there too.
Every position is given by index (b, ·) long, never by a boolean mask, so no step waits on the host.
Axis letters: b = batch, l = positions, v = visible, m = masked, n = drawn at this step, u = classes, d = width.
"""

import torch

from mar.model.backbone import MARBackbone
from mar.model.rows import ascending, gather_rows, scatter_rows
from mar.sampling.token_cache import TokenCache


class Conditions:
    def __init__(
        self,
        backbone: MARBackbone,
        labels: torch.Tensor,
        cfg: float,
        refresh: int = 1,
        share_halves: bool = True,
        by_class: tuple[torch.Tensor, torch.Tensor] | None = None,
        token_cache: int = 0,
        cache_buffer: bool = False,
        cache_growth: float = 0.0,
    ):
        """``refresh`` >= 1, as SamplingConfig checks it. ``by_class`` (classes (u,), each label's index among them
        (b,)), from ``torch.unique``, runs step 1 once per class; it is for a first step with no token visible.
        ``token_cache`` N > 0 runs the backbone through a TokenCache refreshed every N steps, and also once the
        visible tokens have grown ``cache_growth`` times when it is not 0, keeping the buffer's rows too with
        ``cache_buffer``."""
        self.backbone, self.labels, self.refresh = backbone, labels, refresh
        self.cache = TokenCache(backbone, token_cache, cache_buffer, cache_growth) if token_cache else None
        self.guided, self.share_halves, self.by_class = cfg != 1.0, share_halves, by_class
        self.null = torch.full_like(labels, backbone.null_class)
        self.difference = None  # (b, l, d): z - z_uncond where both halves last ran

    def __call__(self, step: int, tokens: torch.Tensor, visible: torch.Tensor, to_draw: torch.Tensor, masked):
        """tokens (b, l, c) and positions: visible (b, v) and to_draw (b, n) ascending, still masked (b, m) in any
        order -> z (b·n, d) at ``to_draw``, and its unconditional z (b·n, d), or None when unguided."""
        if step == 1 and self.by_class is not None:
            return self.class_only(tokens, to_draw)
        if self.guided and (step - 1) % self.refresh == 0:
            return self.both_halves(step, tokens, visible, to_draw, masked)
        z = self.run(step, tokens, self.labels, visible, to_draw).flatten(0, 1)  # (b·n, d)
        return z, (z - gather_rows(self.difference, to_draw).flatten(0, 1) if self.guided else None)

    def class_only(self, tokens: torch.Tensor, to_draw: torch.Tensor):
        """Step 1 with nothing visible: every position's z for each class once, then picked per image."""
        classes, inverse = self.by_class
        if self.guided:
            classes = torch.cat([classes, self.null[:1]])
        if self.cache is None:
            table = self.backbone.at_positions(tokens[:1], classes, to_draw[:1, :0])  # (u, l, d); nothing visible
        else:
            halves = [inverse, torch.full_like(inverse, len(classes) - 1)] if self.guided else [inverse]
            table = self.cache.seed(tokens[:1], classes, torch.cat(halves))  # the null class's row is the last
        z = table[inverse]  # (b, l, d)
        if not self.guided:
            return gather_rows(z, to_draw).flatten(0, 1), None
        z_uncond = table[-1:].expand_as(z)
        if self.refresh > 1:
            self.difference = z - z_uncond
        return gather_rows(z, to_draw).flatten(0, 1), gather_rows(z_uncond, to_draw).flatten(0, 1)

    def run(self, step: int, tokens, labels, visible, wanted) -> torch.Tensor:
        """The backbone's z at ``wanted`` (``MARBackbone.at_positions``), through the token cache when there is one."""
        if self.cache is None:
            return self.backbone.at_positions(tokens, labels, visible, wanted)
        return self.cache(step, tokens, labels, visible, wanted)

    def both_halves(self, step: int, tokens, visible: torch.Tensor, to_draw: torch.Tensor, masked: torch.Tensor):
        """Both halves in one backbone pass; under refresh at every masked position, to keep their difference."""
        wanted = ascending(masked) if self.refresh > 1 else to_draw  # (b, m): the positions computed
        labels = torch.cat([self.labels, self.null])
        if not self.share_halves:
            tokens, visible, wanted = tokens.repeat(2, 1, 1), visible.repeat(2, 1), wanted.repeat(2, 1)
        z, z_uncond = self.run(step, tokens, labels, visible, wanted).chunk(2)  # 2 x (b, m, d)
        if self.refresh == 1:
            return z.flatten(0, 1), z_uncond.flatten(0, 1)
        b, length, d = len(self.labels), tokens.shape[1], z.shape[-1]
        self.difference = scatter_rows(z.new_zeros(b, length, d), wanted[:b], z - z_uncond)  # (b, l, d)
        z, z_uncond = (
            gather_rows(scatter_rows(z.new_zeros(b, length, d), wanted[:b], half), to_draw) for half in (z, z_uncond)
        )
        return z.flatten(0, 1), z_uncond.flatten(0, 1)  # 2 x (b·n, d)
