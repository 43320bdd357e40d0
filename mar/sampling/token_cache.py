"""The token cache (opt-in, approximate): the backbone's keys and values kept between sampling steps.

At a refresh step (step 1, then every ``refresh`` steps, and with ``growth`` g > 0 also at each step that sees g
times the visible tokens of the last refresh) the backbone runs on every row and each block's keys and values are
kept, per position. Step 1 sees no token, so under the "first-step" saving it runs once per class (``seed``) and each
image's rows are copied from its class's. A step between refreshes runs
- the encoder on the buffer and on the tokens that became visible since the cache was last written (the tokens drawn
  at the step before), their queries attending to the kept keys and values of the older visible tokens;
- the decoder on the buffer, those tokens and the positions wanted now (the ones to draw), attending to the kept keys
  and values of every other position.
With ``keep_buffer`` the buffer's rows are kept like the older tokens' between refreshes: a step between refreshes
then runs only the newly visible tokens in the encoder and those and the wanted positions in the decoder (the buffer
is most of a local step's rows when a step draws few tokens).
Each step writes the rows it ran back into the cache. The other rows' keys and values are stale: they were computed
when fewer tokens were visible; that is the approximation (LazyMAR and ReCAP make the same bet, that a row changes
little from one step to the next). With ``refresh`` 1 every step is a refresh and the result is the exact backbone's
up to float rounding. A row's staleness grows with how much of its context is new since it was computed, which is
most early on: the first token drawn is the whole of what step 2 sees. A refresh by growth follows that: with g = 2
and one token a step it refreshes at steps 2, 3, 5, 9 (1, 2, 4 and 8 tokens visible); a refresh every N steps spends
as many refreshes late, where little changes, as early (docs/sampling.md#speed-settings).

The cache holds the batch it last ran: when guidance stops running its unconditional half (``cfg_refresh`` > 1) the
conditional half of the cache is kept; when the batch grows again, that step refreshes.
Axis letters: b = batch (both guidance halves when they run), l = positions, n = buffer, v = visible, q = newly
visible, m = wanted, r = n + l rows, h = heads, e = head width, d = width.
"""

import torch

from mar.model.backbone import MARBackbone
from mar.model.block_rows import block_at_rows, block_with_cache
from mar.model.rows import gather_rows, positions_of


class TokenCache:
    def __init__(self, backbone: MARBackbone, refresh: int, keep_buffer: bool = False, growth: float = 0.0):
        self.backbone, self.refresh, self.keep_buffer, self.growth = backbone, refresh, keep_buffer, growth
        self.encoder_kv: list[tuple[torch.Tensor, torch.Tensor]] = []  # per block: 2 x (b, r, h·e)
        self.decoder_kv: list[tuple[torch.Tensor, torch.Tensor]] = []
        self.seen = None  # (b, r) bool: the encoder rows whose keys are kept (buffer and visible tokens)
        self.visible_count = 0
        self.refreshed_at = 0  # the visible tokens at the last refresh

    def __call__(self, step: int, tokens: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor, wanted):
        """``MARBackbone.at_positions`` (tokens (b, l, c) shared by the halves of labels (b·h,), visible (b, v),
        wanted (b, m), ascending) -> z (b·h, m, d), from the cache between refreshes."""
        batch = labels.shape[0]
        kept = 0 if self.seen is None else self.seen.shape[0]
        if kept > batch:  # guidance's unconditional half stopped running: keep the conditional half
            self.keep_first(batch)
        if self.due(step, visible.shape[1]) or kept < batch:
            return self.full(tokens, labels, visible, wanted)
        return self.local(tokens, labels, visible, wanted)

    def seed(self, tokens: torch.Tensor, classes: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
        """Step 1 once per class: tokens (1, l, c) with none visible, classes (u,) -> every position's z (u, l, d);
        the cache then holds, for each of its rows (b·h,), the class row ``rows`` names, as ``full`` over the
        images would have written it."""
        seq_len = self.backbone.config.seq_len
        nothing = torch.zeros(1, 0, dtype=torch.long, device=tokens.device)
        table = self.full(tokens, classes, nothing, torch.arange(seq_len, device=tokens.device)[None])  # (u, l, d)
        self.encoder_kv = [(k[rows], v[rows]) for k, v in self.encoder_kv]  # 2 x (b·h, r, h·e)
        self.decoder_kv = [(k[rows], v[rows]) for k, v in self.decoder_kv]
        self.seen = self.seen[rows]
        return table

    def due(self, step: int, visible: int) -> bool:
        """Whether step ``step``, seeing ``visible`` tokens, refreshes: by the interval, or by the growth."""
        grown = self.growth > 0 and visible >= self.growth * self.refreshed_at and visible > self.refreshed_at
        return (step - 1) % self.refresh == 0 or grown

    def keep_first(self, batch: int) -> None:
        self.encoder_kv = [(k[:batch], v[:batch]) for k, v in self.encoder_kv]
        self.decoder_kv = [(k[:batch], v[:batch]) for k, v in self.decoder_kv]
        self.seen = self.seen[:batch]

    def empty_kv(self, batch: int, like: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Zero keys and values for one block, 2 x (b, r, h·e): a row per position, written whole."""
        rows = self.backbone.config.buffer_size + self.backbone.config.seq_len
        shape = (batch, rows, self.backbone.config.width)
        return like.new_zeros(shape), like.new_zeros(shape)

    def full(self, tokens, labels, visible, wanted) -> torch.Tensor:
        """Every row, keeping every block's keys and values."""
        backbone, n = self.backbone, self.backbone.config.buffer_size
        halves, batch = labels.shape[0] // tokens.shape[0], labels.shape[0]
        x = backbone.encoder_input(tokens, labels, visible)  # (b, n + v, d)
        encoder_rows = self.buffer_and(visible.repeat(halves, 1) + n)  # (b, n + v)
        self.seen = torch.zeros(batch, n + backbone.config.seq_len, dtype=torch.bool, device=x.device)
        self.seen.scatter_(1, encoder_rows, True)
        self.visible_count = self.refreshed_at = visible.shape[1]
        self.encoder_kv = [self.empty_kv(batch, x) for _ in backbone.encoder_blocks]
        for block, (keys, values) in zip(backbone.encoder_blocks, self.encoder_kv):
            x = block_with_cache(block, x, encoder_rows, keys, values, self.seen)
        x = backbone.decoder_input(backbone.encoder_norm(x), visible.repeat(halves, 1))  # (b, r, d)
        every_row = torch.arange(x.shape[1], device=x.device).expand(batch, -1)  # (b, r)
        self.decoder_kv = [self.empty_kv(batch, x) for _ in backbone.decoder_blocks]
        *blocks, last = backbone.decoder_blocks
        for block, (keys, values) in zip(blocks, self.decoder_kv):
            x = block_with_cache(block, x, every_row, keys, values)
        wanted = wanted.repeat(halves, 1)
        # the last block's outputs only where z is wanted; its keys and values for every row, for the local steps
        return backbone.z_at(block_at_rows(last, x, wanted + n, kept=self.decoder_kv[-1]), wanted)  # (b, m, d)

    def local(self, tokens, labels, visible, wanted) -> torch.Tensor:
        """The buffer (unless it is kept), the newly visible tokens and the wanted positions only, against the kept
        rows."""
        backbone, n = self.backbone, self.backbone.config.buffer_size
        halves, batch = labels.shape[0] // tokens.shape[0], labels.shape[0]
        is_visible = torch.zeros_like(self.seen[: tokens.shape[0], n:]).scatter_(1, visible, True)  # (b, l)
        new = positions_of(is_visible & ~self.seen[: tokens.shape[0], n:], visible.shape[1] - self.visible_count)
        self.visible_count = visible.shape[1]
        new, wanted = new.repeat(halves, 1), wanted.repeat(halves, 1)  # (b·h, q), (b·h, m)
        x = backbone.encoder_input(tokens, labels, new[: tokens.shape[0]])  # (b, n + q, d)
        if self.keep_buffer:
            x, encoder_rows = x[:, n:], new + n  # (b, q, d): the buffer's rows stay as the last refresh left them
        else:
            encoder_rows = self.buffer_and(new + n)  # (b, n + q)
        self.seen.scatter_(1, encoder_rows, True)
        for block, (keys, values) in zip(backbone.encoder_blocks, self.encoder_kv):
            x = block_with_cache(block, x, encoder_rows, keys, values, self.seen)
        masked = backbone.mask_token.to(x.dtype).expand(batch, wanted.shape[1], -1)  # (b, m, d)
        decoder_rows = torch.cat([encoder_rows, wanted + n], dim=1)  # (b, [n +] q + m)
        x = torch.cat([backbone.decoder_embed(backbone.encoder_norm(x)), masked], dim=1)
        x = x + gather_rows(backbone.decoder_pos.expand(batch, -1, -1), decoder_rows)
        for block, (keys, values) in zip(backbone.decoder_blocks, self.decoder_kv):
            x = block_with_cache(block, x, decoder_rows, keys, values)
        return backbone.z_at(x[:, -wanted.shape[1] :], wanted)

    def buffer_and(self, rows: torch.Tensor) -> torch.Tensor:
        """The buffer's rows, then ``rows`` (b, p) -> (b, n + p)."""
        n = self.backbone.config.buffer_size
        return torch.cat([torch.arange(n, device=rows.device).expand(rows.shape[0], -1), rows], dim=1)
