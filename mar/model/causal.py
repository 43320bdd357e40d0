"""CausalBackbone: a decoder-only transformer for autoregression over continuous tokens (the paper's Table 1 AR rows).

The sequence is the class's buffer tokens followed by the tokens in generation order; attention is causal, so the z
of the k-th token in the order depends on the class and on the k - 1 tokens before it, nothing else. Each input also
carries a learned embedding of the position that comes next in the order, which tells a random-order model what to
predict (docs/architecture.md). With no MAE encoder, the blocks are encoder_depth + decoder_depth deep, so the
parameters stay those of the bidirectional model of the same size.

Axis letters: b = batch, l = token positions, n = buffer tokens, s = sequence (n + l - 1), c = token channels,
d = width, h = attention heads, e = width per head.
"""

from functools import partial

import torch
import torch.nn.functional as F
from einops import rearrange, repeat
from timm.layers import Mlp
from torch import nn
from torch.utils.checkpoint import checkpoint

from mar.model.conditioning import ClassConditioned
from mar.model.config import MARConfig
from mar.model.masking import raster_orders


class KeyValueCache:
    """Per block, the keys and values of the sequence so far: (b, h, s, e) each, grown one step at a time."""

    def __init__(self, depth: int):
        self.keys: list[torch.Tensor | None] = [None] * depth
        self.values: list[torch.Tensor | None] = [None] * depth

    def extend(self, index: int, k: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.keys[index] is not None:
            k, v = torch.cat([self.keys[index], k], dim=2), torch.cat([self.values[index], v], dim=2)
        self.keys[index], self.values[index] = k, v
        return k, v


class CausalAttention(nn.Module):
    def __init__(self, width: int, num_heads: int, attn_drop: float = 0.0, proj_drop: float = 0.0):
        super().__init__()
        self.num_heads, self.attn_drop = num_heads, attn_drop
        self.qkv = nn.Linear(width, 3 * width)
        self.proj = nn.Linear(width, width)
        self.proj_drop = nn.Dropout(proj_drop)

    def forward(self, x: torch.Tensor, cache: KeyValueCache | None = None, index: int = 0) -> torch.Tensor:
        """x (b, s, d) -> (b, s, d). With ``cache``, x is the sequence's next elements and attends to all before."""
        q, k, v = rearrange(self.qkv(x), "b s (three h e) -> three b h s e", three=3, h=self.num_heads)
        causal = True
        if cache is not None:
            first = cache.keys[index] is None
            k, v = cache.extend(index, k, v)
            causal = first  # later steps add one element, which sees every cached one
        dropout = self.attn_drop if self.training else 0.0
        x = F.scaled_dot_product_attention(q, k, v, dropout_p=dropout, is_causal=causal)  # (b, h, s, e)
        return self.proj_drop(self.proj(rearrange(x, "b h s e -> b s (h e)")))


class CausalBlock(nn.Module):
    """A pre-norm transformer block with causal attention, timm's Block in layout, plus a key/value cache."""

    def __init__(self, config: MARConfig):
        super().__init__()
        width, norm = config.width, partial(nn.LayerNorm, eps=1e-6)
        self.norm1, self.norm2 = norm(width), norm(width)
        self.attn = CausalAttention(width, config.num_heads, config.attn_dropout, config.proj_dropout)
        self.mlp = Mlp(width, int(width * config.mlp_ratio), drop=config.proj_dropout)

    def forward(self, x: torch.Tensor, cache: KeyValueCache | None = None, index: int = 0) -> torch.Tensor:
        x = x + self.attn(self.norm1(x), cache, index)
        return x + self.mlp(self.norm2(x))


class CausalBackbone(ClassConditioned):
    def __init__(self, config: MARConfig):
        super().__init__()
        self.config = config
        self.grad_checkpointing = False  # trade compute for memory in training (train.py --grad-checkpointing)
        width, n = config.width, config.buffer_size
        self.class_embed = nn.Embedding(config.num_classes + 1, width)  # the last row is the null class
        self.token_proj = nn.Linear(config.token_dim, width)
        self.buffer_pos = nn.Parameter(torch.zeros(1, n, width))
        self.token_pos = nn.Parameter(torch.zeros(1, config.seq_len, width))  # where an input token sits
        self.next_pos = nn.Parameter(torch.zeros(1, config.seq_len, width))  # the position to predict next
        self.blocks = nn.ModuleList(CausalBlock(config) for _ in range(config.encoder_depth + config.decoder_depth))
        self.norm = nn.LayerNorm(width, eps=1e-6)
        self.initialize_weights([self.class_embed.weight, self.buffer_pos, self.token_pos, self.next_pos])

    def all_blocks(self) -> list[nn.Module]:
        return list(self.blocks)

    def buffer(self, labels: torch.Tensor) -> torch.Tensor:
        """The class's buffer tokens: (b, n, d)."""
        return repeat(self.class_embed(labels), "b d -> b n d", n=self.config.buffer_size) + self.buffer_pos

    def token_inputs(self, tokens: torch.Tensor, positions: torch.Tensor) -> torch.Tensor:
        """Tokens (b, k, c) sitting at ``positions`` (b, k) -> their inputs (b, k, d)."""
        pos = self.token_pos.expand(tokens.shape[0], -1, -1)
        return self.token_proj(tokens) + torch.gather(pos, 1, positions[..., None].expand(-1, -1, pos.shape[-1]))

    def next_inputs(self, positions: torch.Tensor) -> torch.Tensor:
        """The embeddings of the positions predicted next, (b, k) -> (b, k, d)."""
        pos = self.next_pos.expand(positions.shape[0], -1, -1)
        return torch.gather(pos, 1, positions[..., None].expand(-1, -1, pos.shape[-1]))

    def run_blocks(self, x: torch.Tensor, cache: KeyValueCache | None = None) -> torch.Tensor:
        for index, block in enumerate(self.blocks):
            if self.grad_checkpointing and self.training and cache is None:
                x = checkpoint(block, x, use_reentrant=False)
            else:
                x = block(x, cache, index)
        return self.norm(x)

    def forward(self, tokens: torch.Tensor, labels: torch.Tensor, order: torch.Tensor | None = None) -> torch.Tensor:
        """Teacher-forced: tokens (b, l, c), labels (b,), order (b, l) (raster when None) -> z (b, l, d), position order.

        The z of position order[:, k] depends on the class and on the tokens at order[:, :k] only.
        """
        b, n, length = tokens.shape[0], self.config.buffer_size, self.config.seq_len
        order = raster_orders(b, length, tokens.device) if order is None else order
        seen = torch.gather(tokens, 1, order[:, :-1, None].expand(-1, -1, tokens.shape[-1]))  # (b, l - 1, c)
        x = torch.cat([self.buffer(labels), self.token_inputs(seen, order[:, :-1])], dim=1)  # (b, s, d)
        asks = torch.cat([x.new_zeros(b, n - 1, x.shape[-1]), self.next_inputs(order)], dim=1)  # (b, s, d)
        x = x + asks  # element n - 1 + k asks for order[:, k]
        z = self.run_blocks(x)[:, n - 1 :]  # (b, l, d) in generation order
        return torch.empty_like(z).scatter_(1, order[..., None].expand(-1, -1, z.shape[-1]), z)

    def start(self, labels: torch.Tensor, first: torch.Tensor) -> tuple[torch.Tensor, KeyValueCache]:
        """Sampling's first step: the buffer through the blocks, filling a cache; z (b, d) of positions ``first`` (b,)."""
        cache = KeyValueCache(len(self.blocks))
        x = self.buffer(labels)  # (b, n, d)
        x = torch.cat([x[:, :-1], x[:, -1:] + self.next_inputs(first[:, None])], dim=1)
        return self.run_blocks(x, cache)[:, -1], cache

    def step(
        self, cache: KeyValueCache, drawn: torch.Tensor, at: torch.Tensor, following: torch.Tensor
    ) -> torch.Tensor:
        """One more element: the token ``drawn`` (b, c) at positions ``at`` (b,), asking for ``following`` (b,) next;
        z (b, d) there. Costs one element's work against the cached keys and values."""
        x = self.token_inputs(drawn[:, None], at[:, None]) + self.next_inputs(following[:, None])  # (b, 1, d)
        return self.run_blocks(x, cache)[:, 0]
