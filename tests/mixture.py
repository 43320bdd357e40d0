"""A known 2-D mixture per condition, and a small diffusion head trained on it: the data the head tests sample against."""
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


def train_head() -> DiffLoss:
    """A one-hot-conditioned head fitted to the mixture (about a minute on one CPU thread)."""
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
