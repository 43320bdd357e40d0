"""Reverse-time solvers for the diffusion head: they turn the denoiser into a sampler of tokens given z.

- ``ddpm``: ancestral sampling down the respaced DDPM chain with the learned variance (MAR's sampler, the default).
- ``ddim``: the deterministic DDIM update (eta = 0).
- ``dpm++``: DPM-Solver++(2M), the second-order multistep solver in data prediction (Lu et al. 2022).

The two deterministic solvers are diffusers' ``DPMSolverMultistepScheduler`` at order 1 and 2 on the betas the head
was trained with; DPM-Solver++ at order 1 is DDIM exactly. They evaluate the denoiser at ``num_steps`` timesteps
evenly spaced from 990 down to 990 / num_steps and then step to clean data. They start at 990, not at 999: the cosine
schedule's capped last beta leaves alpha_bar(999) ~ 2e-9, where the x0 prediction multiplies the noise-prediction
error ~20000 times; at 990 (alpha_bar ~ 2e-4) the input is still pure noise. ``diffusers``' DDIMScheduler cannot
express these timesteps (its step assumes a uniform stride ending at 0), hence DDIM as the order-1 solver.

Step counts that recover a known 2-D mixture (tests/test_samplers.py): dpm++ 15 (10 when speed matters), ddim 50,
ddpm 50 to 100. The deterministic solvers need a well-trained noise predictor: they carry its error at high noise
(amplified ~70 times in the x0 prediction at 990) through to the end, where DDPM's added noise re-randomises it, so on a
briefly trained head their spread can be off where DDPM's is not.

Temperature: for ``ddpm`` it multiplies the noise added at every step (the start x_T ~ N(0, I) is unscaled, as in MAR);
for the deterministic solvers, which add no noise, it multiplies the start x_T, and through it the spread of the draws.
Guidance: eps = eps_c + (cfg - 1)(eps_c - eps_u), the conditional and unconditional halves evaluated on one trajectory
(one x_T, the same added noise); at cfg = 1, or without ``z_uncond``, the unconditional half is not evaluated at all,
so the draw equals the unguided one exactly.

Axis letters: n = tokens, c = token channels, d = condition width.
"""

from __future__ import annotations

import copy
from functools import partial
from typing import TYPE_CHECKING

import numpy as np
import torch

if TYPE_CHECKING:
    from diffusers import DPMSolverMultistepScheduler

FIRST_SOLVER_TIMESTEP = 990


def guided_output(denoiser, x, t, z, z_uncond, cfg, channels) -> torch.Tensor:
    """The denoiser's output (n, c) or (n, 2c) at x (n, c), t () shared by the rows, with its first c channels (the
    noise) guided."""
    if z_uncond is None or cfg == 1:
        return denoiser(x, t, z)
    out_c, out_u = denoiser(torch.cat([x, x]), t, torch.cat([z, z_uncond])).chunk(2)  # 2 x (n, ...)
    eps_c, eps_u = out_c[:, :channels], out_u[:, :channels]
    return torch.cat([eps_c + (cfg - 1) * (eps_c - eps_u), out_c[:, channels:]], dim=-1)


def ddpm(
    diffusion, denoiser, z, channels, num_steps, temperature, cfg, z_uncond, generator, spacing="leading"
) -> torch.Tensor:
    """Ancestral sampling down the chain respaced by ``spacing``, with the learned variance; ``temperature`` scales
    each added noise."""
    chain = diffusion.sampling_chain(num_steps, z.device, spacing)
    n = z.shape[0]
    x = torch.randn(n, channels, device=z.device, dtype=z.dtype, generator=generator)
    for i in reversed(range(num_steps)):
        step = torch.full((n,), i, device=z.device, dtype=torch.long)
        output = guided_output(denoiser, x, chain.timesteps[i], z, z_uncond, cfg, channels)  # (n, c or 2c)
        eps, log_var = diffusion.split_output(output, x, step, chain)
        x = diffusion.posterior_mean(x, eps, step, chain)
        if i > 0:
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            x = x + torch.exp(0.5 * log_var) * noise * temperature
    return x


def solver_timesteps(num_steps: int) -> list[int]:
    """The deterministic solvers' timesteps, descending: 990, 891, ..., 99 for 10 steps (then a step to clean data)."""
    if not 1 <= num_steps <= FIRST_SOLVER_TIMESTEP:
        raise ValueError(
            f"diffusion steps {num_steps} must lie in [1, {FIRST_SOLVER_TIMESTEP}] for the deterministic solvers: "
            f"they take distinct timesteps from {FIRST_SOLVER_TIMESTEP} down"
        )
    return np.linspace(0, FIRST_SOLVER_TIMESTEP, num_steps + 1).round()[:0:-1].astype(np.int64).tolist()


def solver_at(diffusion, num_steps: int, order: int, device) -> DPMSolverMultistepScheduler:
    """The solver set to its timesteps, built once per (steps, order, device) and kept on ``diffusion``: building
    one reads tensors on the host, which a draw should not wait for."""
    key = (num_steps, order, str(device))
    if key not in diffusion.solvers:
        from diffusers import DPMSolverMultistepScheduler  # imported here: see docs/architecture.md#imports

        scheduler = DPMSolverMultistepScheduler(
            num_train_timesteps=diffusion.num_train_timesteps,
            trained_betas=diffusion.scheduler.betas.numpy(),
            solver_order=order,
            prediction_type="epsilon",
            algorithm_type="dpmsolver++",
            final_sigmas_type="zero",  # the last step lands on clean data: the x0 prediction
        )
        scheduler.set_timesteps(timesteps=solver_timesteps(num_steps), device=device)
        scheduler.set_begin_index(0)  # else its first step finds its place by reading the timestep on the host
        diffusion.solvers[key] = scheduler
    return diffusion.solvers[key]


def dpm_solver(
    diffusion, denoiser, z, channels, num_steps, temperature, cfg, z_uncond, generator, order
) -> torch.Tensor:
    """DPM-Solver++ of the given order from x_T = temperature * N(0, I); no noise is added after the start."""
    scheduler = copy.deepcopy(solver_at(diffusion, num_steps, order, z.device))  # it keeps state between steps
    n = z.shape[0]
    # The trajectory stays in fp32 under autocast too: the scheduler's multistep update accumulates in x's dtype.
    x = temperature * torch.randn(n, channels, device=z.device, dtype=torch.float32, generator=generator)
    for t in scheduler.timesteps:
        eps = guided_output(denoiser, x, t, z, z_uncond, cfg, channels)[:, :channels]  # (n, c)
        x = scheduler.step(eps, t, x).prev_sample
    return x


SAMPLERS = {"ddpm": ddpm, "ddim": partial(dpm_solver, order=1), "dpm++": partial(dpm_solver, order=2)}
