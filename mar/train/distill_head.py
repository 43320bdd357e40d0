"""Distilling a checkpoint's head into a GuidedHead (diffloss/guided_head.py): its data and its loop.

The data are the teacher's own: its sampling loop, with exact guidance, records the conditional and unconditional z
it gives its head at every step and the tokens the head draws. So the guided head learns on the contexts sampling
shows it (every mask count of the K-step schedule, drawn tokens as context), and distilling needs no image data.
Each training step noises a batch of the recorded tokens at random timesteps and guidance scales and fits the
teacher's guided output (``GuidedHead.distillation_loss``). docs/sampling.md#the-guided-head.
Axis letters: n = tokens, c = token channels, d = condition width.
"""

import time
from dataclasses import dataclass, replace

import torch

from diffloss.guided_head import GuidedHead
from mar.model.generator import MARGenerator
from mar.sampling.causal import sample_causal
from mar.sampling.config import SamplingConfig
from mar.sampling.loop import sample_masked


@dataclass
class TeacherDraws:
    z: torch.Tensor  # (n, d): the class's condition
    z_uncond: torch.Tensor  # (n, d): the null class's
    tokens: torch.Tensor  # (n, c): what the teacher drew from them

    def __len__(self) -> int:
        return len(self.tokens)

    def split(self, held_out: int) -> tuple["TeacherDraws", "TeacherDraws"]:
        """(the first len - held_out rows, the last held_out rows)."""
        cut = len(self) - held_out
        return (
            TeacherDraws(self.z[:cut], self.z_uncond[:cut], self.tokens[:cut]),
            TeacherDraws(self.z[cut:], self.z_uncond[cut:], self.tokens[cut:]),
        )


class RecordingHead:
    """The teacher's head, keeping each call's z, unconditional z and drawn tokens."""

    def __init__(self, head):
        self.head, self.calls = head, []

    def sample(self, z, **options):
        tokens = self.head.sample(z, **options)
        self.calls.append((z, options["z_uncond"], tokens.float()))
        return tokens


@torch.no_grad()
def teacher_draws(
    model: MARGenerator, num_images: int, sampling: SamplingConfig, batch_size: int, generator: torch.Generator
) -> TeacherDraws:
    """The conditions the teacher's sampling loop gives its head for ``num_images`` images (classes in turn), under
    ``sampling`` with exact guidance (cfg above 1, no refresh, no cache), shuffled."""
    sampling = replace(sampling, cfg_refresh=1, token_cache=0, cache_buffer=False, guided_head=False)
    device = next(model.parameters()).device
    recorder = RecordingHead(model.head)
    for first in range(0, num_images, batch_size):
        labels = torch.arange(first, min(num_images, first + batch_size), device=device) % model.config.num_classes
        if model.config.attention == "causal":
            sample_causal(model, labels, sampling, generator, head=recorder)
        else:
            sample_masked(model, labels, sampling, generator, None, None, None, recorder)
    z, z_uncond, tokens = (torch.cat(parts).float() for parts in zip(*recorder.calls))
    order = torch.randperm(len(tokens), generator=generator, device=generator.device).to(device)
    return TeacherDraws(z[order], z_uncond[order], tokens[order])


@dataclass
class DistillSettings:
    steps: int = 3000
    batch_size: int = 1024  # token rows per step
    lr: float = 3e-4
    max_cfg: float = 10.0  # guidance scales trained: uniform in [1, max_cfg]
    seconds: float | None = None  # stop at this wall time even if steps remain


def distill(
    teacher: MARGenerator,
    train: TeacherDraws,
    settings: DistillSettings,
    generator: torch.Generator,
    report=None,
) -> tuple[GuidedHead, int]:
    """A GuidedHead fitted to ``teacher``'s head on ``train``; (the head, the steps taken). ``report(step, loss)``
    is called every 100 steps and at the end."""
    student = GuidedHead.from_teacher(teacher.head).train()
    optimizer = torch.optim.AdamW(student.parameters(), lr=settings.lr, weight_decay=0.0)
    start, step = time.monotonic(), 0
    while step < settings.steps and (settings.seconds is None or time.monotonic() - start < settings.seconds):
        rows = torch.randint(0, len(train), (settings.batch_size,), generator=generator, device=generator.device)
        rows = rows.to(train.tokens.device)
        loss = student.distillation_loss(
            teacher.head, train.z[rows], train.z_uncond[rows], train.tokens[rows], settings.max_cfg, generator
        )
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        step += 1
        if report is not None and (step % 100 == 0 or step == settings.steps):
            report(step, loss.item())
    return student.eval().requires_grad_(False), step


@torch.no_grad()
def guided_error(
    head, teacher: MARGenerator, draws: TeacherDraws, cfg: float, generator: torch.Generator
) -> tuple[float, float]:
    """(mean squared error of ``head``'s guided noise against the teacher's at scale ``cfg``, the same for the
    teacher's unguided noise: what guidance adds), at one random timestep per row of ``draws``.

    ``head`` is a GuidedHead; its error below the second figure says how much of guidance it learned."""
    n, channels = draws.tokens.shape
    t = torch.randint(0, head.diffusion.num_train_timesteps, (n,), generator=generator, device=generator.device)
    t = t.to(draws.tokens.device)
    noise = torch.randn(draws.tokens.shape, generator=generator, device=generator.device).to(draws.tokens.device)
    x_t = head.diffusion.scheduler.add_noise(draws.tokens, noise, t)
    net = teacher.head.net
    eps_c, eps_u = net(torch.cat([x_t, x_t]), torch.cat([t, t]), torch.cat([draws.z, draws.z_uncond]))[
        :, :channels
    ].chunk(2)
    guided = eps_c + (cfg - 1) * (eps_c - eps_u)
    both = torch.cat([draws.z, draws.z_uncond], dim=-1)
    student = head.net(x_t, t, both, torch.full((n,), float(cfg), device=x_t.device))[:, :channels]
    return ((student - guided) ** 2).mean().item(), ((eps_c - guided) ** 2).mean().item()
