"""The diffusion head alone: it learns a known 2-D mixture per condition, and its sampling knobs behave."""

import pytest
import torch

from diffloss import DiffLoss, DiffLossConfig

from .mixture import MODES, expected_moments, sample


@pytest.mark.slow
@pytest.mark.parametrize("k", [0, 1, 2])
def test_learns_mean_and_covariance_per_condition(trained_head, k):
    x = sample(trained_head, k)
    mean, cov = expected_moments(k)
    assert torch.allclose(x.mean(0), mean, atol=0.08), (x.mean(0), mean)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.06), (torch.cov(x.T), cov)


@pytest.mark.slow
def test_mixture_condition_splits_between_its_modes(trained_head):
    x = sample(trained_head, 2)
    nearest = torch.cdist(x, MODES).argmin(1)
    assert abs(nearest.float().mean().item() - 0.5) < 0.06


@pytest.mark.slow
def test_temperature_shrinks_and_widens_the_spread(trained_head):
    spread = {t: torch.cov(sample(trained_head, 0, temperature=t).T).trace().item() for t in (0.5, 1.0, 1.3)}
    assert spread[0.5] < 0.8 * spread[1.0]
    assert spread[1.3] > 1.15 * spread[1.0]


@pytest.mark.slow
def test_cfg_one_equals_unguided_and_seeds_repeat(trained_head):
    z = torch.nn.functional.one_hot(torch.arange(64) % 3, 3).float()
    uncond_a, uncond_b = torch.zeros_like(z), torch.rand(z.shape, generator=torch.Generator().manual_seed(5))

    def draw(**kwargs):
        return trained_head.sample(z, generator=torch.Generator().manual_seed(3), num_steps=20, **kwargs)

    unguided = draw()
    assert torch.equal(unguided, draw())
    # At scale 1 the unconditional branch has no influence at all...
    assert torch.equal(draw(cfg=1.0, z_uncond=uncond_a), draw(cfg=1.0, z_uncond=uncond_b))
    # ...and matches the unguided draw (the only difference is the batch size of the denoiser's matmuls).
    assert torch.allclose(draw(cfg=1.0, z_uncond=uncond_a), unguided, atol=1e-5)
    assert not torch.allclose(draw(cfg=3.0, z_uncond=uncond_a), unguided, atol=1e-3)


def test_masked_loss_ignores_unmasked_rows():
    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=16, depth=1))
    z, target = torch.randn(8, 3), torch.randn(8, 2)
    mask = torch.tensor([1, 1, 0, 0, 1, 0, 1, 0.0])
    poisoned = target.clone()
    poisoned[mask == 0] = 1e3
    draws = dict(generator=torch.Generator().manual_seed(0))
    first = head.loss(z, target, mask, **draws)
    draws = dict(generator=torch.Generator().manual_seed(0))
    assert torch.equal(first, head.loss(z, poisoned, mask, **draws))


def test_sampling_chain_is_respaced_from_the_training_schedule():
    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=16, depth=1))
    diffusion = head.diffusion
    chain = diffusion.sampling_chain(100)
    assert torch.equal(chain.timesteps, torch.arange(0, 1000, 10))
    assert torch.allclose(chain.alphas_cumprod, diffusion.scheduler.alphas_cumprod[chain.timesteps].float())
    full = diffusion.sampling_chain(999)  # every training timestep but the capped last one
    assert torch.allclose(full.betas, diffusion.scheduler.betas[:999].float(), atol=1e-5)
    with pytest.raises(ValueError, match="diffusion steps 1000"):
        diffusion.sampling_chain(1000)


def test_a_one_step_chain_samples():
    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=16, depth=1))
    chain = head.diffusion.sampling_chain(1)
    assert chain.timesteps.tolist() == [0] and torch.isfinite(chain.log_variance_clipped).all()
    x = head.sample(torch.randn(4, 3), num_steps=1, generator=torch.Generator().manual_seed(0))
    assert x.shape == (4, 2) and torch.isfinite(x).all()
