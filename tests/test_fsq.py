"""Finite scalar quantisation: the implicit codebook, the grid, and straight-through rounding."""

import math

import pytest
import torch

from vae import FSQ, RECOMMENDED_LEVELS, FSQConfig


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (8, 6, 5), (7, 5, 5, 5, 5), (2, 3)])
def test_indices_codes_indices_is_the_identity_over_the_whole_codebook(levels):
    fsq = FSQ(FSQConfig(levels))
    assert fsq.codebook_size == math.prod(levels)
    indices = torch.arange(fsq.codebook_size)
    codes = fsq.indices_to_codes(indices)
    assert torch.equal(fsq.codes_to_indices(codes), indices)
    assert codes.unique(dim=0).shape[0] == fsq.codebook_size  # every index has its own code
    assert codes.min() >= -1 and codes.max() <= 1


@pytest.mark.parametrize("levels", [(8, 5, 5, 5), (6, 7)])
def test_quantized_values_lie_on_the_grid_and_reach_every_level(levels):
    fsq = FSQ(FSQConfig(levels))
    z = 4 * torch.randn(20000, len(levels), generator=torch.Generator().manual_seed(0))
    steps = fsq.quantize(z) * fsq.half_width  # integer grid positions
    assert torch.equal(steps, steps.round())
    for channel, level in enumerate(levels):
        expected = torch.arange(level) - level // 2  # e.g. 8 -> -4..3, 5 -> -2..2
        assert torch.equal(steps[:, channel].unique(), expected.float())


def test_rounding_passes_gradients_straight_through():
    fsq = FSQ(FSQConfig((8, 5, 5, 5)))
    z = torch.randn(64, 4, generator=torch.Generator().manual_seed(1), requires_grad=True)
    fsq.quantize(z).sum().backward()
    bound_grad = torch.autograd.functional.jacobian(lambda x: fsq.bound(x).sum(), z.detach())
    assert torch.allclose(z.grad, bound_grad / fsq.half_width)


def test_forward_returns_consistent_codes_and_indices():
    fsq = FSQ(FSQConfig(RECOMMENDED_LEVELS[2**10]))
    latents = torch.randn(2, 4, 3, 3, generator=torch.Generator().manual_seed(2))
    out = fsq(latents)
    assert out.codes.shape == latents.shape and out.indices.shape == (2, 3, 3)
    assert torch.allclose(fsq.lookup(out.indices), out.codes)
