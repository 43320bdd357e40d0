"""MARBackbone: an MAE-style bidirectional transformer that predicts a condition z for every position.

Axis letters: b = batch, l = token positions, n = buffer tokens, v = visible positions, c = token channels,
d = width. Class ids run over [0, num_classes); the id ``num_classes`` is the learned null class used when the
label is dropped (training) and for the unconditional half of classifier-free guidance (sampling).
"""

from functools import partial

import torch
from einops import repeat
from timm.models.vision_transformer import Block
from torch import nn
from torch.utils.checkpoint import checkpoint

from mar.model.block_rows import block_at_rows
from mar.model.conditioning import ClassConditioned
from mar.model.config import MARConfig
from mar.model.rows import gather_rows, positions_of, scatter_rows


class MARBackbone(ClassConditioned):
    def __init__(self, config: MARConfig):
        super().__init__()
        self.config = config
        self.grad_checkpointing = False  # trade compute for memory in training (train.py --grad-checkpointing)
        width, positions = config.width, config.buffer_size + config.seq_len

        def blocks(depth: int) -> nn.ModuleList:
            return nn.ModuleList(
                Block(
                    width,
                    config.num_heads,
                    config.mlp_ratio,
                    qkv_bias=True,
                    proj_drop=config.proj_dropout,
                    attn_drop=config.attn_dropout,
                    norm_layer=partial(nn.LayerNorm, eps=1e-6),
                )
                for _ in range(depth)
            )

        self.class_embed = nn.Embedding(config.num_classes + 1, width)  # the last row is the null class
        self.token_proj = nn.Linear(config.token_dim, width)
        self.token_proj_norm = nn.LayerNorm(width, eps=1e-6)
        self.encoder_pos = nn.Parameter(torch.zeros(1, positions, width))
        self.encoder_blocks = blocks(config.encoder_depth)
        self.encoder_norm = nn.LayerNorm(width, eps=1e-6)

        self.decoder_embed = nn.Linear(width, width)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, width))
        self.decoder_pos = nn.Parameter(torch.zeros(1, positions, width))
        self.decoder_blocks = blocks(config.decoder_depth)
        self.decoder_norm = nn.LayerNorm(width, eps=1e-6)
        self.head_pos = nn.Parameter(torch.zeros(1, config.seq_len, width))  # position of z for the head
        self.initialize_weights(
            [self.class_embed.weight, self.encoder_pos, self.mask_token, self.decoder_pos, self.head_pos]
        )

    def all_blocks(self) -> list[nn.Module]:
        return [*self.encoder_blocks, *self.decoder_blocks]

    def run_blocks(self, blocks: nn.ModuleList, x: torch.Tensor) -> torch.Tensor:
        """The blocks in turn; with ``grad_checkpointing`` in training, activations are recomputed in the backward pass."""
        for block in blocks:
            x = checkpoint(block, x, use_reentrant=False) if self.grad_checkpointing and self.training else block(x)
        return x

    def encoder_input(self, tokens: torch.Tensor, labels: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The encoder's rows before its blocks: the buffer, then the tokens at ``positions`` (b, p) of tokens
        (b, l, c) -> (b·h, n + p, d) for labels (b·h,).

        The h halves of the labels (classifier-free guidance) share the tokens; only their class differs, so the
        tokens are projected once and repeated.
        """
        n, halves = self.config.buffer_size, labels.shape[0] // tokens.shape[0]
        x = self.token_proj(gather_rows(tokens, positions)).repeat(halves, 1, 1)  # (b·h, p, d)
        at = self.encoder_pos.expand(labels.shape[0], -1, -1)
        buffer = repeat(self.class_embed(labels), "b d -> b n d", n=n) + at[:, :n]
        x = torch.cat([buffer, x + gather_rows(at[:, n:], positions.repeat(halves, 1))], dim=1)  # (b·h, n + p, d)
        return self.token_proj_norm(x)

    def encode(self, tokens: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """tokens (b, l, c), visible (b, v) -> (b·h, n + v, d) for labels (b·h,): the buffer, then the visible tokens."""
        return self.encoder_norm(self.run_blocks(self.encoder_blocks, self.encoder_input(tokens, labels, visible)))

    def decoder_input(self, x: torch.Tensor, visible: torch.Tensor) -> torch.Tensor:
        """x (b, n + v, d) from ``encode`` -> the decoder's rows before its blocks (b, n + l, d): the mask token at
        every position not visible."""
        n, l = self.config.buffer_size, self.config.seq_len
        x = self.decoder_embed(x)  # (b, n + v, d)
        full = self.mask_token.to(x.dtype).expand(x.shape[0], n + l, -1).clone()  # (b, n + l, d)
        full[:, :n] = x[:, :n]
        return scatter_rows(full, visible + n, x[:, n:]) + self.decoder_pos

    def decode(self, x: torch.Tensor, visible: torch.Tensor, wanted: torch.Tensor | None = None) -> torch.Tensor:
        """x (b, n + v, d) from ``encode`` -> z (b, l, d), or (b, m, d) at the positions ``wanted`` (b, m)."""
        n = self.config.buffer_size
        x = self.decoder_input(x, visible)  # (b, n + l, d)
        if wanted is None:
            return self.decoder_norm(self.run_blocks(self.decoder_blocks, x))[:, n:] + self.head_pos  # (b, l, d)
        return self.z_at(
            block_at_rows(self.decoder_blocks[-1], self.run_blocks(self.decoder_blocks[:-1], x), wanted + n), wanted
        )

    def z_at(self, rows: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """The decoder's last rows (b, m, d) at ``positions`` (b, m) -> their z (b, m, d)."""
        return self.decoder_norm(rows) + gather_rows(self.head_pos.expand(rows.shape[0], -1, -1), positions)

    def forward(
        self, tokens: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor, wanted: torch.Tensor | None = None
    ) -> torch.Tensor:
        """tokens (b, l, c), labels (b,), mask (b, l) with 1 = masked -> z (b, l, d).

        Every sample must mask the same number of tokens (the encoder packs the visible ones into one tensor). With
        ``wanted`` (b, l) bool, the same count m in every row, only those positions' z are computed: (b, m, d), in
        position order, equal to the full z there up to float rounding (the last decoder block runs on them alone).
        """
        visible = (mask == 0).sum(dim=1)
        if not torch.all(visible == visible[0]):
            raise ValueError(f"every sample must mask the same number of tokens; visible counts are {visible.tolist()}")
        visible = positions_of(mask == 0, int(visible[0]))  # (b, v)
        if wanted is not None:
            wanted = positions_of(wanted, int(wanted[0].sum()))  # (b, m)
        return self.at_positions(tokens, labels, visible, wanted)

    def at_positions(
        self, tokens: torch.Tensor, labels: torch.Tensor, visible: torch.Tensor, wanted: torch.Tensor | None = None
    ) -> torch.Tensor:
        """``forward`` by positions, with no host synchronisation: visible (b, v) and wanted (b, m) long, each
        ascending in every row -> z (b·h, l, d), or (b·h, m, d) at ``wanted``.

        labels may be h·b long (h guidance halves over the same tokens): the halves share ``tokens`` (b, l, c),
        ``visible`` and ``wanted``, and z stacks them half after half.
        """
        halves = labels.shape[0] // tokens.shape[0]
        if wanted is not None:
            wanted = wanted.repeat(halves, 1)
        return self.decode(self.encode(tokens, labels, visible), visible.repeat(halves, 1), wanted)
