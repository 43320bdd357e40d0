"""A known 2-D mixture per condition, its exact noise predictor, and a small diffusion head trained on it: the data the
head tests sample against."""

import math

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


def components(k: int) -> list[tuple[float, torch.Tensor, torch.Tensor]]:
    """Condition k's law as (weight, mean, covariance) per Gaussian component."""
    if k < 2:
        return [(1.0, MEANS[k], COVS[k])]
    return [(0.5, mode, MODE_STD**2 * torch.eye(2)) for mode in MODES]


def exact_denoiser(alphas_cumprod: torch.Tensor):
    """The noise predictor that is exact for the mixture: (x_t (n, 2), t (n,) or () shared, one-hot z (n, 3)) ->
    E[eps | x_t] (n, 2).

    For a component N(mu, S), x_t is N(sqrt(a) mu, a S + (1 - a) I) and E[x_0 | x_t] = mu + sqrt(a) S V^-1 (x_t -
    sqrt(a) mu); components are weighted by their posterior responsibilities. Computed in float64.
    """

    def denoise(x: torch.Tensor, t: torch.Tensor, z: torch.Tensor) -> torch.Tensor:
        a = alphas_cumprod[t].double().reshape(-1, 1, 1).expand(len(x), 1, 1)  # (n, 1, 1)
        x64, eye = x.double(), torch.eye(2, dtype=torch.float64)
        x0 = torch.zeros_like(x64)
        for k in range(3):
            rows = z.argmax(1) == k
            log_weights, means = [], []
            for weight, mu, cov in components(k):
                v = a[rows] * cov.double() + (1 - a[rows]) * eye  # (m, 2, 2)
                d = x64[rows] - a[rows, 0].sqrt() * mu.double()  # (m, 2)
                solved = torch.linalg.solve(v, d)  # (m, 2): V^-1 d
                log_weights.append(math.log(weight) - 0.5 * (d * solved).sum(1) - 0.5 * torch.logdet(v))
                means.append(mu.double() + a[rows, 0].sqrt() * solved @ cov.double())  # S symmetric: (S V^-1 d)^T
            responsibility = torch.softmax(torch.stack(log_weights), dim=0)  # (components, m)
            x0[rows] = (responsibility[..., None] * torch.stack(means)).sum(0)
        return ((x64 - a[:, 0].sqrt() * x0) / (1 - a[:, 0]).sqrt()).to(x.dtype)

    return denoise


def train_head() -> DiffLoss:
    """A one-hot-conditioned head fitted to the mixture (about 15 s on two CPU cores)."""
    torch.manual_seed(0)
    head = DiffLoss(
        DiffLossConfig(
            token_channels=2, cond_channels=3, width=64, depth=3, diffusion_batch_mul=4, num_sampling_steps=50
        )
    )
    optimizer = torch.optim.AdamW(head.parameters(), lr=4e-3)
    generator = torch.Generator().manual_seed(0)
    steps = 1000
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: 1 - s / steps)
    for _ in range(steps):
        condition = torch.randint(0, 3, (256,), generator=generator)
        loss = head.loss(
            torch.nn.functional.one_hot(condition, 3).float(), draw_targets(condition, generator), generator=generator
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        schedule.step()
    return head.eval()


def sample(head: DiffLoss, k: int, n: int = 3000, seed: int = 1, **kwargs) -> torch.Tensor:
    z = torch.nn.functional.one_hot(torch.full((n,), k), 3).float()
    return head.sample(z, generator=torch.Generator().manual_seed(seed), **kwargs)
