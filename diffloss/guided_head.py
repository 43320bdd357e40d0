"""GuidedHead: a copy of a trained head that takes both conditions and the guidance scale, so one evaluation gives
the guided output.

Classifier-free guidance evaluates the head twice per denoising step: eps_c from the class's z, eps_u from the null
class's. The guided head is distilled from the trained head (the teacher) to predict eps_c + (w - 1)(eps_c - eps_u)
from both z side by side and w, as the first stage of Meng et al. 2023 ("On distillation of guided diffusion
models") distils the scale into one network; here it also sees the null class's z, which the backbone computes anyway
(or approximates, under the guidance refresh), so it need not guess it from the class's. Sampling with it evaluates
the head once per step on half the rows. Its variance channels learn the conditional half's, which guidance leaves as
they are. It samples with the teacher's solvers and temperature rules unchanged (samplers.py);
docs/sampling.md#the-guided-head.

Axis letters: n = tokens, c = token channels, d = condition width.
"""

import torch
from torch import nn

from .denoiser import Denoiser
from .diffusion import GaussianDiffusion
from .head import DiffLoss, DiffLossConfig


class GuidedHead(nn.Module):
    """``distillation_loss`` trains it from a teacher DiffLoss; ``sample(z, temperature, cfg, z_uncond, ...)`` as
    DiffLoss's. Its denoiser's condition is [z, z_uncond] (n, 2d)."""

    def __init__(self, config: DiffLossConfig):
        super().__init__()
        self.config = config
        self.net = Denoiser(
            config.token_channels, 2 * config.cond_channels, config.width, config.depth, config.learn_sigma, True
        )
        self.diffusion = GaussianDiffusion(config.num_train_timesteps, config.learn_sigma, config.discretized_decoder)

    @classmethod
    def from_teacher(cls, teacher: DiffLoss) -> "GuidedHead":
        """A guided head equal to the teacher's unguided output at the start: its weights, with zero weights for the
        null class's z and a zero guidance input."""
        student = cls(teacher.config).to(next(teacher.parameters()).device)
        weights = teacher.net.state_dict()
        weights["cond_embed.weight"] = torch.cat(
            [weights["cond_embed.weight"], torch.zeros_like(weights["cond_embed.weight"])], 1
        )
        missing, unexpected = student.net.load_state_dict(weights, strict=False)
        assert not unexpected and all(name.startswith("guidance_embed.") for name in missing)
        return student

    def distillation_loss(
        self,
        teacher: DiffLoss,
        z: torch.Tensor,
        z_uncond: torch.Tensor,
        x0: torch.Tensor,
        max_cfg: float,
        generator=None,
    ) -> torch.Tensor:
        """Squared error to the teacher's guided output, z and z_uncond (n, d) and tokens x0 (n, c), at one random
        training timestep and one guidance scale in [1, max_cfg] per row.

        A row's error is divided by 1 + (w - 1)^2, the growth of guidance's own size with w: unweighted, the largest
        scales dominate the loss and the head gets worse at the small ones it samples with most."""
        n, channels = x0.shape
        t = torch.randint(0, self.diffusion.num_train_timesteps, (n,), device=x0.device, generator=generator)
        noise = torch.randn(x0.shape, device=x0.device, dtype=x0.dtype, generator=generator)
        x_t = self.diffusion.scheduler.add_noise(x0, noise, t)
        w = 1 + (max_cfg - 1) * torch.rand(n, device=x0.device, generator=generator)  # (n,)
        with torch.no_grad():
            out_c, out_u = teacher.net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([z, z_uncond])).chunk(2)
            eps_c, eps_u = out_c[:, :channels], out_u[:, :channels]
            target = torch.cat([eps_c + (w[:, None] - 1) * (eps_c - eps_u), out_c[:, channels:]], dim=-1)
        error = ((self.net(x_t, t, torch.cat([z, z_uncond], dim=-1), w) - target) ** 2).mean(dim=-1)  # (n,)
        return (error / (1 + (w - 1) ** 2)).mean()

    @torch.no_grad()
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
        """z and z_uncond (n, d) -> tokens (n, c) guided at scale ``cfg`` with one evaluation per step; DiffLoss.sample's
        arguments. Without ``z_uncond`` (no guidance) the class's z stands in for it."""
        guidance = torch.tensor(float(cfg), device=z.device)
        both = torch.cat([z, z if z_uncond is None else z_uncond], dim=-1)  # (n, 2d)
        return self.diffusion.sample(
            self.net.from_embedded,
            self.net.embed(both, guidance),  # once per draw, not once per denoising step
            self.config.token_channels,
            num_steps=self.config.num_sampling_steps if num_steps is None else num_steps,
            temperature=temperature,
            generator=generator,
            sampler=sampler,
            spacing=spacing,
        )
