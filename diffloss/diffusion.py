"""Gaussian diffusion over single tokens: the schedule, the posterior algebra and the training loss.

The noise schedule (betas, cumulative alphas, the respaced timesteps) comes from diffusers' ``DDPMScheduler``; what
lives here is the posterior algebra that diffusers' ``step`` does not expose: the learned variance, the posterior mean
that the DDPM sampler steps with, and the variational bound term that trains the variance (Nichol & Dhariwal's
hybrid loss, as in MAR). The reverse-time solvers live in ``samplers``.
"""
import math
from dataclasses import dataclass

import torch
from diffusers import DDPMScheduler

from . import samplers


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
    return 0.5 * (-1.0 + log_var2 - log_var1 + torch.exp(log_var1 - log_var2) + (mean1 - mean2) ** 2 * torch.exp(-log_var2))


def gaussian_nll(x, mean, log_var) -> torch.Tensor:
    return 0.5 * (math.log(2 * math.pi) + log_var + (x - mean) ** 2 * torch.exp(-log_var))


class GaussianDiffusion:
    """Cosine-schedule DDPM over vectors of ``channels`` values, trained at ``num_train_timesteps`` steps."""

    def __init__(self, num_train_timesteps: int = 1000, learn_sigma: bool = True):
        self.learn_sigma = learn_sigma
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
        self._chains: dict[tuple[int, str], Posterior] = {}  # (steps, device) -> chain, built once

    def train_chain(self, device) -> Posterior:
        """Every training timestep, for the loss."""
        return self._chain(self.num_train_timesteps, device)

    def sampling_chain(self, num_steps: int, device="cpu") -> Posterior:
        """The chain respaced to ``num_steps`` evenly spaced timesteps from 0: 0, 10, ..., 990 for 100."""
        if not 1 <= num_steps < self.num_train_timesteps:
            raise ValueError(
                f"diffusion steps {num_steps} must lie in [1, {self.num_train_timesteps - 1}]: a chain through the "
                "last training timestep amplifies the noise-prediction error hundreds of times"
            )
        return self._chain(num_steps, device)

    def _chain(self, num_steps: int, device) -> Posterior:
        key = (num_steps, str(device))
        if key not in self._chains:
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
        nll = gaussian_nll(x0, mean, log_var).mean(dim=-1)  # at t = 0 the decoder term replaces the KL
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
    ) -> torch.Tensor:
        """Draws one token per row of z (n, d) -> (n, channels) with ``sampler`` ("ddpm", "ddim" or "dpm++").

        With ``z_uncond`` the predicted noise is guided, eps = eps_c + (cfg - 1)(eps_c - eps_u), on one trajectory
        for both halves; cfg = 1 reproduces unguided sampling exactly. ``temperature`` multiplies the noise added at
        each step for "ddpm", and the starting noise x_T for the deterministic "ddim" and "dpm++" (``samplers``).
        """
        if sampler not in samplers.SAMPLERS:
            raise ValueError(f"unknown head sampler {sampler!r}; choose one of {', '.join(samplers.SAMPLERS)}")
        return samplers.SAMPLERS[sampler](self, denoiser, z, channels, num_steps, temperature, cfg, z_uncond, generator)
