"""A timm transformer block evaluated at some rows only, every row still attending to all of them.

The decoder's last block is the only one whose outputs nobody else reads: when only some positions' z are wanted
(the tokens a sampling step draws), its queries, attention output and MLP run on those rows alone, while the keys and
values still come from every row. The result equals ``block(x)`` at those rows up to float rounding.

Axis letters: b = batch, s = rows in, m = rows out, h = attention heads, e = head width, d = width.
"""

import torch
import torch.nn.functional as F
from timm.models.vision_transformer import Block


def block_at_rows(block: Block, x: torch.Tensor, rows: torch.Tensor) -> torch.Tensor:
    """x (b, s, d), rows (b, s) bool with the same count m in every row -> block(x) at those rows (b, m, d)."""
    b, s, d = x.shape
    attn = block.attn
    heads, width = attn.num_heads, attn.head_dim
    inner = heads * width
    normed = block.norm1(x)  # (b, s, d)
    picked_x, picked = x[rows].reshape(b, -1, d), normed[rows].reshape(b, -1, d)  # (b, m, d)
    q_weight, kv_weight = attn.qkv.weight.split([inner, 2 * inner])
    q_bias, kv_bias = attn.qkv.bias.split([inner, 2 * inner]) if attn.qkv.bias is not None else (None, None)
    q = F.linear(picked, q_weight, q_bias).unflatten(-1, (heads, width)).transpose(1, 2)  # (b, h, m, e)
    k, v = (
        F.linear(normed, kv_weight, kv_bias).reshape(b, s, 2, heads, width).permute(2, 0, 3, 1, 4)
    )  # 2 x (b, h, s, e)
    q, k = attn.q_norm(q), attn.k_norm(k)
    out = F.scaled_dot_product_attention(q, k, v, dropout_p=attn.attn_drop.p if attn.training else 0.0)  # (b, h, m, e)
    out = out.transpose(1, 2).flatten(2)  # (b, m, h·e)
    if getattr(attn, "norm", None) is not None:  # timm >= 1.0: the attention output's norm (an Identity by default)
        out = attn.norm(out)
    if getattr(attn, "gate", None) is not None:  # timm's gated attention
        out = out * attn.gate(picked).sigmoid()
    out = picked_x + block.drop_path1(block.ls1(attn.proj_drop(attn.proj(out))))
    return out + block.drop_path2(block.ls2(block.mlp(block.norm2(out))))
