"""The diffusion head alone: it learns a known 2-D mixture per condition, and its sampling knobs behave."""
import pytest
import torch

from diffloss import DiffLoss, DiffLossConfig

# Three conditions: two Gaussians with different means and covariances, and a two-component mixture.
MEANS = [torch.tensor([1.5, 0.0]), torch.tensor([-1.0, 1.0])]
COVS = [torch.tensor([[0.20, 0.0], [0.0, 0.05]]), torch.tensor([[0.15, 0.08], [0.08, 0.12]])]
MODES = torch.tensor([[1.0, -1.0], [-1.0, -1.0]])  # third condition: equal mixture, std 0.15 per axis
MODE_STD = 0.15


def draw_targets(condition: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    noise = torch.randn(len(condition), 2, generator=generator)
    out = torch.empty(len(condition), 2)
    for k in range(2):
        rows = condition == k
        out[rows] = MEANS[k] + noise[rows] @ torch.linalg.cholesky(COVS[k]).T
    rows = condition == 2
    mode = torch.randint(0, 2, (int(rows.sum()),), generator=generator)
    out[rows] = MODES[mode] + MODE_STD * noise[rows]
    return out


def expected_moments(k: int) -> tuple[torch.Tensor, torch.Tensor]:
    if k < 2:
        return MEANS[k], COVS[k]
    mean = MODES.mean(0)
    spread = (MODES - mean).T @ (MODES - mean) / 2
    return mean, spread + MODE_STD**2 * torch.eye(2)


@pytest.fixture(scope="module")
def trained_head() -> DiffLoss:
    torch.manual_seed(0)
    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=128, depth=3, diffusion_batch_mul=4, num_sampling_steps=50))
    optimizer = torch.optim.AdamW(head.parameters(), lr=2e-3)
    generator = torch.Generator().manual_seed(0)
    steps = 1500
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    for _ in range(steps):
        condition = torch.randint(0, 3, (256,), generator=generator)
        loss = head.loss(torch.nn.functional.one_hot(condition, 3).float(), draw_targets(condition, generator), generator=generator)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return head.eval()


def sample(head: DiffLoss, k: int, n: int = 3000, seed: int = 1, **kwargs) -> torch.Tensor:
    z = torch.nn.functional.one_hot(torch.full((n,), k), 3).float()
    return head.sample(z, generator=torch.Generator().manual_seed(seed), **kwargs)


@pytest.mark.parametrize("k", [0, 1, 2])
def test_learns_mean_and_covariance_per_condition(trained_head, k):
    x = sample(trained_head, k)
    mean, cov = expected_moments(k)
    assert torch.allclose(x.mean(0), mean, atol=0.08), (x.mean(0), mean)
    assert torch.allclose(torch.cov(x.T), cov, atol=0.06), (torch.cov(x.T), cov)


def test_mixture_condition_splits_between_its_modes(trained_head):
    x = sample(trained_head, 2)
    nearest = torch.cdist(x, MODES).argmin(1)
    assert abs(nearest.float().mean().item() - 0.5) < 0.06


def test_temperature_shrinks_and_widens_the_spread(trained_head):
    spread = {t: torch.cov(sample(trained_head, 0, temperature=t).T).trace().item() for t in (0.5, 1.0, 1.3)}
    assert spread[0.5] < 0.8 * spread[1.0]
    assert spread[1.3] > 1.15 * spread[1.0]


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
