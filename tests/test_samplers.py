"""The head's samplers: DDPM, DDIM and DPM-Solver++ recover the known mixture, their knobs behave, and DDIM is the
DDIM recursion on the schedule DDPM walks."""

import pytest
import torch

from diffloss import DiffLoss, DiffLossConfig, GaussianDiffusion
from diffloss.diffusion import Posterior
from diffloss.samplers import solver_timesteps

from .mixture import MODES, exact_denoiser, expected_moments, sample

SAMPLERS = ["ddpm", "ddim", "dpm++"]
RECOMMENDED_STEPS = {"ddpm": 50, "ddim": 50, "dpm++": 15}


def responsive_head(seed: int = 0) -> DiffLoss:
    """An untrained head whose zero-initialised layers are perturbed, so its output depends on x, t and z."""
    torch.manual_seed(seed)
    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=32, depth=2, num_sampling_steps=8))
    with torch.no_grad():
        for p in head.parameters():
            if not torch.any(p != 0):
                p.normal_(std=0.1)
    return head.eval()


def conditions(n: int = 32, seed: int = 5) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, generator=generator), torch.randn(n, 3, generator=generator)


def assert_moments(x: torch.Tensor, k: int) -> None:
    """The tolerances of test_diffloss's moment test, at its 3000 draws."""
    mean, cov = expected_moments(k)
    assert torch.allclose(x.mean(0), mean, atol=0.08), (x.mean(0), mean)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.06), (torch.cov(x.T), cov)


def exact_draws(sampler: str, k: int, n: int = 3000, **kwargs) -> torch.Tensor:
    """Draws for condition k from the mixture's exact noise predictor, with DDPM's fixed posterior variance."""
    diffusion = GaussianDiffusion(learn_sigma=False)
    z = torch.nn.functional.one_hot(torch.full((n,), k), 3).float()
    return diffusion.sample(
        exact_denoiser(diffusion.scheduler.alphas_cumprod),
        z,
        2,
        num_steps=RECOMMENDED_STEPS[sampler],
        generator=torch.Generator().manual_seed(1),
        sampler=sampler,
        **kwargs,
    )


@pytest.mark.parametrize("sampler", SAMPLERS)
@pytest.mark.parametrize("k", [0, 1, 2])
def test_each_sampler_recovers_the_mixture_from_its_exact_denoiser(sampler, k):
    """With the exact noise predictor only the solver's own error is left, at the recommended step counts."""
    assert_moments(exact_draws(sampler, k), k)


@pytest.mark.slow
@pytest.mark.parametrize("sampler", ["ddim", "dpm++"])
def test_deterministic_samplers_place_the_trained_heads_draws(trained_head, sampler):
    """Means and the mixture's split, not covariances: on this briefly trained head the ODE solvers' covariances are
    off by up to ~0.2 at any step count (DDPM's by 0.02), because a deterministic solver carries the noise
    predictor's error at high noise through to the end, where DDPM re-randomises it. Their own accuracy is checked
    above, on the exact denoiser."""
    for k in range(3):
        x = sample(trained_head, k, sampler=sampler, num_steps=RECOMMENDED_STEPS[sampler])
        assert torch.allclose(x.mean(0), expected_moments(k)[0], atol=0.08), (k, x.mean(0))
    nearest = torch.cdist(x, MODES).argmin(1)  # condition 2: the two-mode mixture
    assert abs(nearest.float().mean().item() - 0.5) < 0.06


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_temperature_shrinks_and_widens_the_spread_for_every_sampler(sampler):
    spread = {t: torch.cov(exact_draws(sampler, 0, n=1000, temperature=t).T).trace().item() for t in (0.5, 1.0, 1.3)}
    assert spread[0.5] < 0.8 * spread[1.0]
    assert spread[1.3] > 1.15 * spread[1.0]


@pytest.mark.parametrize("sampler", SAMPLERS)
def test_cfg_one_equals_unguided_exactly_and_seeds_repeat(sampler):
    head = responsive_head()
    z, z_uncond = conditions()

    def draw(**kwargs):
        return head.sample(z, num_steps=6, generator=torch.Generator().manual_seed(3), sampler=sampler, **kwargs)

    unguided = draw()
    assert torch.equal(unguided, draw())
    assert not torch.equal(
        unguided, head.sample(z, num_steps=6, generator=torch.Generator().manual_seed(4), sampler=sampler)
    )
    assert torch.equal(draw(cfg=1.0, z_uncond=z_uncond), unguided)
    guided = draw(cfg=3.0, z_uncond=z_uncond)
    assert torch.equal(guided, draw(cfg=3.0, z_uncond=z_uncond)) and not torch.allclose(guided, unguided, atol=1e-3)


def test_ddim_is_the_ddim_recursion_on_the_schedule_ddpm_walks():
    """Exact up to float rounding: from x_T = temperature * noise, ddim steps down ``solver_timesteps`` as
    x_s = sqrt(a_s) x0 + sqrt(1 - a_s) eps, where a is the alpha_bar the head was trained on, eps the guided noise and
    x0 = (x_t - sqrt(1 - a_t) eps) / sqrt(a_t); after the last timestep it returns that x0. The last step is DDPM's
    too: the posterior mean of a one-step chain (alpha_bar_prev = 1, so no noise is added) is the same x0."""
    head = responsive_head()
    z, z_uncond = conditions()
    steps, temperature, cfg = 6, 0.7, 2.5
    drawn = head.sample(
        z,
        temperature=temperature,
        cfg=cfg,
        z_uncond=z_uncond,
        num_steps=steps,
        generator=torch.Generator().manual_seed(3),
        sampler="ddim",
    )

    acp = head.diffusion.scheduler.alphas_cumprod  # (1000,) float32, the training schedule
    timesteps = solver_timesteps(steps)
    assert timesteps[0] == 990 and timesteps[-1] == 165 and len(set(timesteps)) == steps
    x = temperature * torch.randn(len(z), 2, generator=torch.Generator().manual_seed(3))
    with torch.no_grad():
        for i, t in enumerate(timesteps):
            t_row = torch.full((len(z),), t)
            eps_c, eps_u = head.net(x, t_row, z)[:, :2], head.net(x, t_row, z_uncond)[:, :2]
            eps = eps_c + (cfg - 1) * (eps_c - eps_u)
            x0 = (x - (1 - acp[t]).sqrt() * eps) / acp[t].sqrt()
            if i == len(timesteps) - 1:
                last_chain = Posterior.from_alphas_cumprod(torch.tensor([t]), acp[[t]])
                ddpm_mean = head.diffusion.posterior_mean(x, eps, torch.zeros(len(z), dtype=torch.long), last_chain)
                x = x0
            else:
                s = timesteps[i + 1]
                x = acp[s].sqrt() * x0 + (1 - acp[s]).sqrt() * eps
    assert torch.allclose(drawn, x, atol=1e-4), (drawn - x).abs().max()
    assert torch.equal(ddpm_mean, x)


def test_samplers_reject_unknown_names_and_steps_out_of_range():
    head = responsive_head()
    z = torch.randn(4, 3)
    with pytest.raises(ValueError, match="unknown head sampler 'euler'; choose one of ddpm, ddim, dpm\\+\\+"):
        head.sample(z, sampler="euler")
    for sampler, bad in [("ddpm", 0), ("ddpm", 1000), ("ddim", 0), ("ddim", 991), ("dpm++", 991)]:
        with pytest.raises(ValueError, match=f"diffusion steps {bad} must lie in"):
            head.sample(z, num_steps=bad, sampler=sampler)
