"""Where a training step's time goes on the official-code config: forward, backward, clip + AdamW (plain and fused,
alternated in one run), EMA, then torch.profiler's top operators over a few steps; last, whole steps with z computed
at every position and then indexed (the loss before the decoder's last block ran on the masked rows alone) against
today's loss, alternated in rounds, as a ratio.

Examples:
    python benchmarks/train_step.py
    python benchmarks/train_step.py --steps 10 --device cuda
"""

import time

import torch
from shared import OFFICIAL_MIRROR

from mar import MARGenerator
from mar.cli.common import pick_device
from mar.cli.options import POSITIVE, Parser, text
from mar.model.tokens import patchify
from mar.train.ema import EMA
from mar.train.optim import make_optimizer


def timed_step(model, optimizer, ema, x, y, generator, step: int) -> torch.Tensor:
    """(forward, backward, clip + optimizer, EMA) seconds of one step."""
    marks = [time.perf_counter()]
    loss = model(x, y, generator)
    marks.append(time.perf_counter())
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    marks.append(time.perf_counter())
    torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
    optimizer.step()
    marks.append(time.perf_counter())
    ema.update(model, step)
    marks.append(time.perf_counter())
    return torch.tensor(marks).diff()


def main(argv=None) -> None:
    parser = Parser(description=__doc__)
    parser.add_argument("--steps", type=POSITIVE, default=6, help="timed steps per optimizer and round")
    parser.add_argument("--rounds", type=POSITIVE, default=3, help="alternating rounds of plain and fused AdamW")
    parser.add_argument("--device", type=text, default="cpu", help="cpu, cuda, cuda:N or mps")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    torch.manual_seed(0)
    model = MARGenerator(OFFICIAL_MIRROR).to(device)
    optimizers = {"plain AdamW": make_optimizer(model, 1e-4, fused=False), "fused AdamW": make_optimizer(model, 1e-4)}
    ema, generator = EMA(model, 0.999), torch.Generator(device).manual_seed(0)
    x, y = torch.randn(32, 16, 8, 8, device=device), torch.randint(0, 10, (32,), device=device)
    totals = {name: torch.zeros(4) for name in optimizers}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, optimizer in optimizers.items():
            for step in range(args.steps):
                seconds = timed_step(model, optimizer, ema, x, y, generator, step)
                totals[name] += seconds if round_ else 0
    print(f"official-code config, batch 32, fp32, {torch.get_num_threads()} threads, device {device}; ms per step:")
    for name, total in totals.items():
        forward, backward, update, average = (total / (args.steps * args.rounds) * 1000).tolist()
        print(
            f"  {name:12s} forward {forward:7.1f}  backward {backward:7.1f}  clip + AdamW {update:6.1f}  EMA {average:5.1f}  "
            f"-> {32000 / (forward + backward + update + average):.1f} images/s"
        )
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU]) as profile:
        for step in range(3):
            timed_step(model, optimizers["fused AdamW"], ema, x, y, generator, step)
    print(profile.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    seconds = {"z everywhere": 0.0, "z at masked rows": 0.0}
    losses = {"z everywhere": loss_with_full_z, "z at masked rows": MARGenerator.loss}
    for round_ in range(args.rounds + 1):  # round 0 warms up
        for name, loss_fn in losses.items():
            started = time.perf_counter()
            for _ in range(args.steps):
                loss = loss_fn(model, x, y, generator)
                optimizers["fused AdamW"].zero_grad(set_to_none=True)
                loss.backward()
                optimizers["fused AdamW"].step()
            seconds[name] += (time.perf_counter() - started) if round_ else 0
    rates = {name: 32 * args.steps * args.rounds / s for name, s in seconds.items()}
    print(
        "whole steps (forward, backward, fused AdamW): "
        + ", ".join(f"{n} {r:.1f} images/s" for n, r in rates.items())
        + f"; {rates['z at masked rows'] / rates['z everywhere']:.2f}x"
    )


def loss_with_full_z(model, latents, labels, generator):
    """MARGenerator.loss as it was: the backbone's z at every position, then the masked rows picked out."""
    tokens = patchify(latents, model.config.patch_size)  # (b, l, c)
    mask = model.training_mask(tokens.shape[0], tokens.device, generator).bool()  # (b, l)
    z = model.backbone(tokens, model.backbone.drop_labels(labels, generator), mask)  # (b, l, d)
    return model.head.loss(z[mask], tokens[mask], generator=generator)


if __name__ == "__main__":
    main()
