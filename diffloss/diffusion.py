"""Gaussian diffusion over single tokens: the schedule, the posterior algebra and the training loss.

The noise schedule (betas, cumulative alphas, the respaced timesteps) comes from diffusers' ``DDPMScheduler``; what
lives here is the posterior algebra that diffusers' ``step`` does not expose: the learned variance, the posterior mean
that the DDPM sampler steps with, and the variational bound term that trains the variance (Nichol & Dhariwal's
hybrid loss, as in MAR). The reverse-time solvers live in ``samplers``.

Two conventions of the official MAR code are options here (``mar.configs.COMPAT`` turns them on together):
- respacing: ``SPACINGS`` "leading" (diffusers', 0, 10, ..., 990 for 100 steps; ours) or "iddpm" (improved DDPM's
  ``space_timesteps(1000, "100")``: 0 ... 999 at a stride of 999 / 99, rounded; the official code's). A chain through
  999 multiplies the noise-prediction error there ~350 times in its first step, so it suits only a head that predicts
  the noise of pure-noise input almost exactly (benchmarks/compat.py: it ruins the heads trained here);
- the loss at t = 0: the continuous Gaussian likelihood of x0 (ours) or, with ``discretized_decoder``, the likelihood of
  x0's bin of width 2 / 255 on [-1, 1], open-ended at both edges (improved DDPM's image decoder; the official code's).
"""

import math
from dataclasses import dataclass
from functools import partial

import torch

from . import samplers

SPACINGS = ("leading", "iddpm")


@dataclass(frozen=True)
class Posterior:
    """Coefficients of q(x_{i-1} | x_i, x_0) for a (possibly respaced) chain of timesteps, indexed by step."""

    timesteps: torch.Tensor  # (S,) original training timesteps, ascending
    alphas_cumprod: torch.Tensor  # (S,)
    betas: torch.Tensor  # (S,)
    log_variance_clipped: torch.Tensor  # (S,)
    coef_x0: torch.Tensor  # (S,)
    coef_xt: torch.Tensor  # (S,)

    @classmethod
    def from_alphas_cumprod(cls, timesteps: torch.Tensor, alphas_cumprod: torch.Tensor) -> "Posterior":
        acp = alphas_cumprod.double()
        acp_prev = torch.cat([acp.new_ones(1), acp[:-1]])
        betas = 1 - acp / acp_prev
        variance = betas * (1 - acp_prev) / (1 - acp)
        # The variance at the first step is 0; the log takes the next one instead, as in improved DDPM. A one-step
        # chain has no next one: it takes its beta (the sampler never adds noise at the first step, so it is unused).
        log_variance = torch.log(torch.cat([variance[1:2] if len(acp) > 1 else betas, variance[1:]]))
        return cls(
            timesteps=timesteps,
            alphas_cumprod=acp.float(),
            betas=betas.float(),
            log_variance_clipped=log_variance.float(),
            coef_x0=(betas * acp_prev.sqrt() / (1 - acp)).float(),
            coef_xt=((1 - acp_prev) * (1 - betas).sqrt() / (1 - acp)).float(),
        )

    def to(self, device: torch.device) -> "Posterior":
        return Posterior(**{name: value.to(device) for name, value in self.__dict__.items()})


def extract(values: torch.Tensor, index: torch.Tensor) -> torch.Tensor:
    """values[index] shaped (n, 1) to broadcast over token channels."""
    return values[index][:, None]


def normal_kl(mean1, log_var1, mean2, log_var2) -> torch.Tensor:
    return 0.5 * (
        -1.0 + log_var2 - log_var1 + torch.exp(log_var1 - log_var2) + (mean1 - mean2) ** 2 * torch.exp(-log_var2)
    )


def gaussian_nll(x, mean, log_var) -> torch.Tensor:
    return 0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))


def approx_normal_cdf(x: torch.Tensor) -> torch.Tensor:
    """The standard normal CDF by the tanh approximation improved DDPM uses (absolute error below 2e-4)."""
    return 0.5 * (1.0 + torch.tanh(math.sqrt(2.0 / math.pi) * (x + 0.044715 * x**3)))


def discretized_gaussian_nll(x, mean, log_var) -> torch.Tensor:
    """-log P(the bin of x) under N(mean, exp(log_var)): bins of width 2 / 255 centred on x, the edge bins of [-1, 1]
    (x below -0.999 or above 0.999) extended to infinity; probabilities floored at 1e-12."""
    inv_std = torch.exp(-0.5 * log_var)
    upper = approx_normal_cdf(inv_std * (x - mean + 1 / 255))  # P(X < upper edge)
    lower = approx_normal_cdf(inv_std * (x - mean - 1 / 255))  # P(X < lower edge)
    probability = torch.where(x < -0.999, upper, torch.where(x > 0.999, 1 - lower, upper - lower))
    return -torch.log(probability.clamp(min=1e-12))


def spaced_timesteps(num_train_timesteps: int, num_steps: int) -> list[int]:
    """Improved DDPM's ``space_timesteps(T, "n")``, ascending: n timesteps from 0 to T - 1 at a stride of
    (T - 1) / (n - 1), accumulated in floating point and rounded half to even, as there."""
    if not 1 <= num_steps <= num_train_timesteps:
        raise ValueError(f"diffusion steps {num_steps} must lie in [1, {num_train_timesteps}] for the iddpm spacing")
    stride = (num_train_timesteps - 1) / (num_steps - 1) if num_steps > 1 else 1
    position, timesteps = 0.0, []
    for _ in range(num_steps):
        timesteps.append(round(position))
        position += stride
    return timesteps


class GaussianDiffusion:
    """Cosine-schedule DDPM over vectors of ``channels`` values, trained at ``num_train_timesteps`` steps."""

    def __init__(self, num_train_timesteps: int = 1000, learn_sigma: bool = True, discretized_decoder: bool = False):
        self.learn_sigma = learn_sigma
        self.discretized_decoder = discretized_decoder  # the loss at t = 0: x0's bin (official), or its density
        from diffusers import DDPMScheduler  # imported here: see docs/architecture.md#imports

        self.scheduler = DDPMScheduler(
            num_train_timesteps=num_train_timesteps,
            beta_schedule="squaredcos_cap_v2",
            # "leading" respacing starts the reverse chain at t = 990 for 100 steps, not at 999: the cosine
            # schedule's capped last beta leaves alpha_bar(999) ~ 2e-9, and a first step from there multiplies the
            # noise-prediction error by ~350; at 990 the input is still pure noise (alpha_bar ~ 2e-4).
            timestep_spacing="leading",
            clip_sample=False,
            prediction_type="epsilon",
        )
        self.num_train_timesteps = num_train_timesteps
        self._chains: dict[tuple[int, str, str], Posterior] = {}  # (steps, spacing, device) -> chain, built once
        self.solvers: dict = {}  # (steps, order, device) -> the deterministic solver, set up once (samplers.py)

    def sampling_chain(self, num_steps: int, device="cpu", spacing: str = "leading") -> Posterior:
        """The chain respaced to ``num_steps`` timesteps from 0: "leading" 0, 10, ..., 990 for 100 steps, "iddpm"
        0, 10, ..., 989, 999 (the official code's, through the capped last timestep)."""
        if spacing not in SPACINGS:
            raise ValueError(f"unknown spacing {spacing!r}; choose one of {', '.join(SPACINGS)}")
        if spacing == "leading" and not 1 <= num_steps < self.num_train_timesteps:
            raise ValueError(
                f"diffusion steps {num_steps} must lie in [1, {self.num_train_timesteps - 1}]: a chain through the "
                "last training timestep amplifies the noise-prediction error hundreds of times"
            )
        return self._chain(num_steps, device, spacing)

    def train_chain(self, device) -> Posterior:
        """Every training timestep, for the loss."""
        return self._chain(self.num_train_timesteps, device, "leading")

    def _chain(self, num_steps: int, device, spacing: str) -> Posterior:
        key = (num_steps, spacing, str(device))
        if key not in self._chains:
            if spacing == "iddpm":
                timesteps = torch.tensor(spaced_timesteps(self.num_train_timesteps, num_steps))
            else:
                self.scheduler.set_timesteps(num_steps)
                timesteps = self.scheduler.timesteps.flip(0).long()  # ascending
            chain = Posterior.from_alphas_cumprod(timesteps, self.scheduler.alphas_cumprod[timesteps])
            self._chains[key] = chain.to(device)
        return self._chains[key]

    def split_output(self, output: torch.Tensor, x_t: torch.Tensor, step: torch.Tensor, chain: Posterior):
        """The denoiser's output -> (predicted noise, log variance of p(x_{i-1} | x_i)), each (n, c)."""
        channels = x_t.shape[-1]
        eps = output[:, :channels]
        if self.learn_sigma:
            fraction = (output[:, channels:] + 1) / 2  # the net interpolates between the two bounds
            log_var = fraction * torch.log(extract(chain.betas, step)) + (1 - fraction) * extract(
                chain.log_variance_clipped, step
            )
        else:
            log_var = extract(chain.log_variance_clipped, step).expand_as(x_t)
        return eps, log_var

    def posterior_mean(self, x_t, eps, step, chain: Posterior) -> torch.Tensor:
        acp = extract(chain.alphas_cumprod, step)
        x0 = (x_t - (1 - acp).sqrt() * eps) / acp.sqrt()
        return extract(chain.coef_x0, step) * x0 + extract(chain.coef_xt, step) * x_t

    def training_loss(self, denoiser, x0: torch.Tensor, z: torch.Tensor, generator=None) -> torch.Tensor:
        """Per-row loss (n,): noise MSE, plus the variational bound when the variance is learned."""
        n = x0.shape[0]
        t = torch.randint(0, self.num_train_timesteps, (n,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = self.scheduler.add_noise(x0, noise, t)
        output = denoiser(x_t, t, z)  # (n, c) or (n, 2c)
        eps = output[:, : x0.shape[-1]]
        loss = ((eps - noise) ** 2).mean(dim=-1)
        if self.learn_sigma:
            loss = loss + self.variational_bound(output, x0, x_t, t)
        return loss

    def variational_bound(self, output, x0, x_t, t) -> torch.Tensor:
        """The bound term in bits per channel; it trains only the variance (the mean is detached)."""
        chain = self.train_chain(x0.device)
        channels = x0.shape[-1]
        frozen = torch.cat([output[:, :channels].detach(), output[:, channels:]], dim=-1)
        eps, log_var = self.split_output(frozen, x_t, t, chain)
        mean = self.posterior_mean(x_t, eps, t, chain)
        true_mean = extract(chain.coef_x0, t) * x0 + extract(chain.coef_xt, t) * x_t
        kl = normal_kl(true_mean, extract(chain.log_variance_clipped, t), mean, log_var).mean(dim=-1)
        decoder_nll = discretized_gaussian_nll if self.discretized_decoder else gaussian_nll
        nll = decoder_nll(x0, mean, log_var).mean(dim=-1)  # at t = 0 the decoder term replaces the KL
        return torch.where(t == 0, nll, kl) / math.log(2.0)

    @torch.no_grad()
    def sample(
        self,
        denoiser,
        z: torch.Tensor,
        channels: int,
        num_steps: int = 100,
        temperature: float = 1.0,
        cfg: float = 1.0,
        z_uncond: torch.Tensor | None = None,
        generator: torch.Generator | None = None,
        sampler: str = "ddpm",
        spacing: str = "leading",
    ) -> torch.Tensor:
        """Draws one token per row of z (n, d) -> (n, channels) with ``sampler`` ("ddpm", "ddim" or "dpm++").

        With ``z_uncond`` the predicted noise is guided, eps = eps_c + (cfg - 1)(eps_c - eps_u), on one trajectory
        for both halves; cfg = 1 reproduces unguided sampling exactly. ``temperature`` multiplies the noise added at
        each step for "ddpm", and the starting noise x_T for the deterministic "ddim" and "dpm++" (``samplers``).
        ``spacing`` picks the timesteps of the "ddpm" chain (``SPACINGS``); the other two keep their own.
        """
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"unknown head sampler {sampler!r}; choose one of {', '.join(samplers.SAMPLERS)}")
        solve = samplers.SAMPLERS[sampler]
        if sampler == "ddpm":
            solve = partial(solve, spacing=spacing)
        return solve(self, denoiser, z, channels, num_steps, temperature, cfg, z_uncond, generator)
