"""torch.compile of the blocks: the compiled generator samples like the eager one, up to float rounding."""

import copy

import pytest
import torch

from diffloss import DiffLossConfig
from mar import MARConfig, MARGenerator, sample_latents

SMALL = MARConfig(
    width=64,
    encoder_depth=1,
    decoder_depth=1,
    num_heads=2,
    buffer_size=2,
    num_classes=3,
    latent_channels=4,
    latent_size=4,
    patch_size=1,
    head=DiffLossConfig(width=64, depth=2),
    attn_dropout=0.1,
    proj_dropout=0.1,
)
TOLERANCE = 1e-4  # fp32; compiled kernels fuse and reorder sums, so results differ from eager by rounding only


@pytest.mark.slow
def test_compiled_blocks_sample_like_eager():
    torch.manual_seed(0)
    eager = MARGenerator(SMALL).eval()
    for param in eager.parameters():  # away from the zero initialisation, so the head's blocks matter
        param.data.add_(0.05 * torch.randn_like(param))
    compiled = copy.deepcopy(eager).compile_blocks()
    assert compiled.state_dict().keys() == eager.state_dict().keys()
    labels = torch.tensor([0, 1, 2, 1])
    for sampler, steps in (("ddpm", 4), ("dpm++", 3)):  # every step has another visible count: dynamic shapes
        options = {
            "num_iter": 4,
            "cfg": 2.0,
            "cfg_schedule": "linear",
            "temperature": 1.0,
            "head_sampler": sampler,
            "diffusion_steps": steps,
        }
        want = sample_latents(eager, labels, generator=torch.Generator().manual_seed(1), **options)
        got = sample_latents(compiled, labels, generator=torch.Generator().manual_seed(1), **options)
        assert torch.allclose(got, want, atol=TOLERANCE, rtol=TOLERANCE), (got - want).abs().max()
