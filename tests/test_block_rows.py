"""A block at some rows only, and the backbone's z at wanted positions, equal the full computation there."""

from functools import partial

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn

from mar.model.backbone import MARBackbone
from mar.model.block_rows import block_at_rows, block_with_cache
from mar.model.rows import positions_of

from .tiny import TINY


def rows_with_count(b: int, s: int, count: int, generator) -> torch.Tensor:
    """(b, s) bool with ``count`` random True positions per row."""
    picks = torch.rand(b, s, generator=generator).argsort(dim=1)[:, :count]
    return torch.zeros(b, s, dtype=torch.bool).scatter_(1, picks, True)


@pytest.mark.parametrize("qkv_bias", [True, False])
def test_block_at_rows_equals_the_block_at_those_rows(qkv_bias):
    g = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    block = Block(64, 4, 4.0, qkv_bias=qkv_bias, norm_layer=partial(nn.LayerNorm, eps=1e-6)).eval()
    x = torch.randn(5, 12, 64, generator=g)
    rows = rows_with_count(5, 12, 3, g)
    with torch.no_grad():
        expected = block(x)[rows].reshape(5, 3, 64)
        got = block_at_rows(block, x, positions_of(rows, 3))
    assert got.shape == (5, 3, 64)
    torch.testing.assert_close(got, expected, atol=1e-5, rtol=1e-5)
    kept, written = (torch.zeros(5, 12, 64), torch.zeros(5, 12, 64)), (torch.zeros(5, 12, 64), torch.zeros(5, 12, 64))
    with torch.no_grad():
        keeping = block_at_rows(block, x, positions_of(rows, 3), kept=kept)  # the token cache's full pass
        block_with_cache(block, x, torch.arange(12).expand(5, -1), *written)  # every row through the cache
    torch.testing.assert_close(keeping, got)
    for ours, cache in zip(kept, written):  # every row's keys and values, as the cache writes them
        torch.testing.assert_close(ours, cache, atol=1e-6, rtol=1e-6)


@pytest.mark.parametrize("count", [1, 5, 16])
def test_backbone_z_at_wanted_positions_equals_the_full_z_there(count):
    torch.manual_seed(0)
    backbone = MARBackbone(TINY).eval()
    with torch.no_grad():
        for p in backbone.parameters():
            p.normal_(std=0.1)
    g = torch.Generator().manual_seed(1)
    b, l = 4, TINY.seq_len
    tokens, labels = torch.randn(b, l, TINY.token_dim, generator=g), torch.arange(b) % TINY.num_classes
    mask = rows_with_count(b, l, 10, g)
    wanted = rows_with_count(b, l, count, g)
    with torch.no_grad():
        full, picked = backbone(tokens, labels, mask), backbone(tokens, labels, mask, wanted)
    assert picked.shape == (b, count, TINY.width)
    torch.testing.assert_close(picked, full[wanted].reshape(b, count, TINY.width), atol=1e-5, rtol=1e-5)
