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

    def encode(self, tokens: torch.Tensor, labels: torch.Tensor, keep: torch.Tensor) -> torch.Tensor:
        b, _, d = tokens.shape[0], tokens.shape[1], self.config.width
        x = self.token_proj(tokens)  # (b, l, d)
        buffer = repeat(self.class_embed(labels), "b d -> b n d", n=self.config.buffer_size)
        x = self.token_proj_norm(torch.cat([buffer, x], dim=1) + self.encoder_pos)  # (b, n + l, d)
        x = x[keep].reshape(b, -1, d)  # (b, n + v, d): only the buffer and the visible tokens
        return self.encoder_norm(self.run_blocks(self.encoder_blocks, x))

    def decode(self, x: torch.Tensor, keep: torch.Tensor, wanted: torch.Tensor | None = None) -> torch.Tensor:
        x = self.decoder_embed(x)  # (b, n + v, d)
        b, d = keep.shape[0], x.shape[-1]
        full = self.mask_token.to(x.dtype).expand(b, keep.shape[1], -1).clone()  # (b, n + l, d)
        full[keep] = x.reshape(-1, d)
        if wanted is None:
            x = self.run_blocks(self.decoder_blocks, full + self.decoder_pos)
            return self.decoder_norm(x)[:, self.config.buffer_size :] + self.head_pos  # (b, l, d)
        x = self.run_blocks(self.decoder_blocks[:-1], full + self.decoder_pos)
        rows = torch.cat([torch.zeros_like(keep[:, : self.config.buffer_size]), wanted], dim=1)  # (b, n + l)
        x = block_at_rows(self.decoder_blocks[-1], x, rows)  # (b, m, d)
        return self.decoder_norm(x) + self.head_pos.expand(b, -1, -1)[wanted].reshape(b, -1, d)

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
        buffer = torch.ones(mask.shape[0], self.config.buffer_size, dtype=torch.bool, device=mask.device)
        keep = torch.cat([buffer, mask == 0], dim=1)  # (b, n + l)
        return self.decode(self.encode(tokens, labels, keep), keep, wanted)
