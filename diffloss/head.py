"""DiffLoss: the token head that models p(x | z) with a small diffusion model."""

from dataclasses import dataclass

import torch
from einops import repeat
from torch import nn

from .denoiser import Denoiser
from .diffusion import GaussianDiffusion


@dataclass(frozen=True)
class DiffLossConfig:
    token_channels: int = 16
    cond_channels: int = 768
    width: int = 1024
    depth: int = 6
    num_train_timesteps: int = 1000
    num_sampling_steps: int = 100
    diffusion_batch_mul: int = 4
    learn_sigma: bool = True
    discretized_decoder: bool = False  # the loss at t = 0 on x0's bin, as the official code trains (diffusion.py)


class DiffLoss(nn.Module):
    """``loss(z, target, mask)`` trains the denoiser; ``sample(z, ...)`` draws tokens given z.

    Axis letters: n = tokens (batch and positions flattened), c = token channels, d = condition width.
    """

    def __init__(self, config: DiffLossConfig):
        super().__init__()
        self.config = config
        self.net = Denoiser(config.token_channels, config.cond_channels, config.width, config.depth, config.learn_sigma)
        self.diffusion = GaussianDiffusion(config.num_train_timesteps, config.learn_sigma, config.discretized_decoder)

    def loss(self, z: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, generator=None):
        """Mean loss over the tokens where mask is 1; z (n, d), target (n, c), mask (n,).

        Each z is trained at ``diffusion_batch_mul`` timesteps: z and target are repeated, not recomputed.
        """
        mul = self.config.diffusion_batch_mul
        z = repeat(self.net.cond_embed(z), "n w -> (r n) w", r=mul)  # embedded once, not once per timestep
        target = repeat(target, "n c -> (r n) c", r=mul)
        loss = self.diffusion.training_loss(self.net.from_embedded, target, z, generator=generator)  # (r n,)
        if mask is None:
            return loss.mean()
        mask = repeat(mask.to(loss.dtype), "n -> (r n)", r=mul)
        return (loss * mask).sum() / mask.sum()

    def sample(
        self,
        z: torch.Tensor,
        temperature: float = 1.0,
        cfg: float = 1.0,
        z_uncond: torch.Tensor | None = None,
        num_steps: int | None = None,
        generator: torch.Generator | None = None,
        sampler: str = "ddpm",
        spacing: str = "leading",
    ) -> torch.Tensor:
        """z (n, d) -> tokens (n, c); guided by ``z_uncond`` (n, d) at scale ``cfg`` when given.

        ``sampler`` is "ddpm" (ancestral, ``temperature`` scales each added noise), "ddim" or "dpm++" (deterministic,
        ``temperature`` scales the starting noise); ``num_steps`` defaults to the config's for every sampler.
        ``spacing`` is the "ddpm" chain's respacing: "leading" (ours) or "iddpm" (the official code's).
        """
        embed = self.net.cond_embed  # once per draw, not once per denoising step
        return self.diffusion.sample(
            self.net.from_embedded,
            embed(z),
            self.config.token_channels,
            num_steps=self.config.num_sampling_steps if num_steps is None else num_steps,
            temperature=temperature,
            cfg=cfg,
            z_uncond=None if z_uncond is None else embed(z_uncond),
            generator=generator,
            sampler=sampler,
            spacing=spacing,
        )
