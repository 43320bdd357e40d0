"""Reverse-time solvers for the diffusion head: they turn the denoiser into a sampler of tokens given z.

Each takes the diffusion (its schedule and posterior algebra), the denoiser and the conditions z (n, d), and returns
tokens (n, c). Axis letters: n = tokens, c = token channels, d = condition width.
"""
import torch


def ddpm(diffusion, denoiser, z, channels, num_steps, temperature, cfg, z_uncond, generator) -> torch.Tensor:
    """Ancestral sampling down the respaced chain, with the learned variance; ``temperature`` scales each added noise."""
    chain = diffusion.sampling_chain(num_steps, z.device)
    n = z.shape[0]
    cond = z if z_uncond is None else torch.cat([z, z_uncond])  # (n or 2n, d)
    x = torch.randn(n, channels, device=z.device, dtype=z.dtype, generator=generator)
    for i in reversed(range(num_steps)):
        step = torch.full((n,), i, device=z.device, dtype=torch.long)
        t = chain.timesteps[i].expand(cond.shape[0])
        output = denoiser(x if z_uncond is None else torch.cat([x, x]), t, cond)
        if z_uncond is not None:
            out_c, out_u = output.chunk(2)
            eps_c, eps_u = out_c[:, :channels], out_u[:, :channels]
            output = torch.cat([eps_c + (cfg - 1) * (eps_c - eps_u), out_c[:, channels:]], dim=-1)
        eps, log_var = diffusion.split_output(output, x, step, chain)
        x = diffusion.posterior_mean(x, eps, step, chain)
        if i > 0:
            noise = torch.randn(x.shape, device=x.device, dtype=x.dtype, generator=generator)
            x = x + torch.exp(0.5 * log_var) * noise * temperature
    return x
