"""A timm transformer block evaluated at some rows only.

- ``block_at_rows``: the decoder's last block is the only one whose outputs nobody else reads: when only some
  positions' z are wanted (the tokens a sampling step draws), its queries, attention output and MLP run on those rows
  alone, while the keys and values still come from every row. The result equals ``block(x)`` at those rows up to
  float rounding.
  The token cache's full pass uses it too, keeping every row's keys and values.
- ``block_with_cache``: the rows given attend to kept keys and values of the other rows (the token cache,
  mar/sampling/token_cache.py).

Axis letters: b = batch, s = rows in, m = rows out, h = attention heads, e = head width, d = width.
"""

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block

from mar.model.rows import gather_rows


def block_at_rows(
    block: Block, x: torch.Tensor, rows: torch.Tensor, kept: tuple[torch.Tensor, torch.Tensor] | None = None
) -> torch.Tensor:
    """x (b, s, d), rows (b, m) long (row indices) -> block(x) at those rows (b, m, d). With ``kept``, keys and
    values (b, s, h·e) of a token cache, every row's keys and values are written into them too."""
    b, s, d = x.shape
    attn = block.attn
    heads, width = attn.num_heads, attn.head_dim
    inner = heads * width
    normed = block.norm1(x)  # (b, s, d)
    picked_x, picked = gather_rows(x, rows), gather_rows(normed, rows)  # (b, m, d)
    q_weight, kv_weight = attn.qkv.weight.split([inner, 2 * inner])
    q_bias, kv_bias = attn.qkv.bias.split([inner, 2 * inner]) if attn.qkv.bias is not None else (None, None)
    q = F.linear(picked, q_weight, q_bias).unflatten(-1, (heads, width)).transpose(1, 2)  # (b, h, m, e)
    k, v = (
        F.linear(normed, kv_weight, kv_bias).reshape(b, s, 2, heads, width).permute(2, 0, 3, 1, 4)
    )  # 2 x (b, h, s, e)
    q, k = attn.q_norm(q), attn.k_norm(k)
    if kept is not None:
        for cache, computed in zip(kept, (k, v)):
            cache.copy_(computed.transpose(1, 2).reshape(b, s, inner))
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)  # (b, h, m, e)
    return after_attention(block, out, picked_x, picked)


def after_attention(block: Block, out: torch.Tensor, x: torch.Tensor, normed: torch.Tensor) -> torch.Tensor:
    """The rest of the block from its attention (b, h, m, e) at rows x (b, m, d), whose ``norm1`` is ``normed``."""
    attn = block.attn
    out = out.transpose(1, 2).flatten(2)  # (b, m, h·e)
    if getattr(attn, "norm", None) is not None:  # timm >= 1.0: the attention output's norm (an Identity by default)
        out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:  # timm's gated attention
        out = out * attn.gate(normed).sigmoid()
    x = x + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(out))))
    return x + block.drop_path2(block.ls2(block.mlp(block.norm2(x))))


def block_with_cache(
    block: Block,
    x: torch.Tensor,
    rows: torch.Tensor,
    keys: torch.Tensor,
    values: torch.Tensor,
    attend: torch.Tensor | None = None,
) -> torch.Tensor:
    """x (b, s, d), the rows ``rows`` (b, s) long of a longer sequence whose keys and values (b, r, h·e) are kept
    -> block(x) (b, s, d), its queries attending to every kept row (or to those where ``attend`` (b, r) is True).

    The rows' own keys and values are written into ``keys`` and ``values`` first (in place, whole rows by flat
    index), so the cache holds the newest of each row. With every row of the sequence given, this is ``block``
    itself up to float rounding.
    """
    b, s, _ = x.shape
    attn = block.attn
    heads, width, kept = attn.num_heads, attn.head_dim, keys.shape[1]
    normed = block.norm1(x)
    q, k, v = attn.qkv(normed).reshape(b, s, 3, heads, width).unbind(2)  # (b, s, h, e) each
    q, k = attn.q_norm(q), attn.k_norm(k)
    at = (rows + kept * torch.arange(b, device=rows.device)[:, None]).flatten()  # (b·s,) rows of the flat cache
    keys.view(b * kept, -1).index_copy_(0, at, k.reshape(b * s, -1).to(keys.dtype))
    values.view(b * kept, -1).index_copy_(0, at, v.reshape(b * s, -1).to(values.dtype))
    keys, values = (kv.view(b, kept, heads, width).transpose(1, 2).to(q.dtype) for kv in (keys, values))
    mask = None if attend is None else attend[:, None, None, :]  # (b, 1, 1, r)
    out = F.scaled_dot_product_attention(q.transpose(1, 2), keys, values, attn_mask=mask)  # (b, h, s, e)
    return after_attention(block, out, x, normed)
