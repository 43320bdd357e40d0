"""torch.compile against eager, in one run: sampling and training on the official-code config, rounds alternated.

The compiled copy is ``MARGenerator.compile_blocks()`` of the same weights. Its compilation (the first calls) is
timed separately and not counted in the rates. Sampling: batch 16, K=16, cfg 3 linear, the given head setting.
Training: batch 32, forward + backward + fused AdamW, dropout on.

Examples:
    python benchmarks/compile.py
    python benchmarks/compile.py --device cuda --amp bf16 --head-steps 100
"""

import copy
import time

import torch
from shared import OFFICIAL_MIRROR

from mar import MARGenerator, sample_latents
from mar.cli.common import pick_device
from mar.cli.options import POSITIVE, Parser, text
from mar.precision import resolve_precision
from mar.train.optim import make_optimizer


def synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def sampling_rate(model, labels, precision, seed: int, **sampling) -> float:
    device = labels.device
    synchronize(device)
    started = time.perf_counter()
    with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
        sample_latents(model, labels, generator=torch.Generator(device).manual_seed(seed), **sampling)
    synchronize(device)
    return len(labels) / (time.perf_counter() - started)


def training_rate(model, optimizer, x, y, precision, seed: int, steps: int) -> float:
    device = x.device
    synchronize(device)
    started = time.perf_counter()
    for step in range(steps):
        torch.manual_seed(seed + step)  # dropout
        with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
            loss = model(x, y, torch.Generator(device).manual_seed(seed + step))
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    synchronize(device)
    return len(x) * steps / (time.perf_counter() - started)


def main(argv=None) -> None:
    parser = Parser(description=__doc__)
    parser.add_argument("--head-sampler", default="ddpm", choices=["ddpm", "ddim", "dpm++"], help="the head's sampler")
    parser.add_argument("--head-steps", type=POSITIVE, default=25, help="the head's steps per token")
    parser.add_argument("--rounds", type=POSITIVE, default=3, help="alternating rounds of eager and compiled")
    parser.add_argument("--train-steps", type=POSITIVE, default=4, help="training steps per round and path")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--amp", default="none", choices=["auto", "bf16", "none"], help="autocast precision")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    precision = resolve_precision(args.amp, device)
    torch.manual_seed(0)
    eager = MARGenerator(OFFICIAL_MIRROR).to(device)
    compiled = copy.deepcopy(eager).compile_blocks()
    threads = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"official-code config on {device}{threads}, {'fp32' if precision is None else precision}")

    labels = torch.arange(16, device=device) % OFFICIAL_MIRROR.num_classes
    sampling = {
        "num_iter": 16,
        "cfg": 3.0,
        "cfg_schedule": "linear",
        "head_sampler": args.head_sampler,
        "diffusion_steps": args.head_steps,
    }
    x = torch.randn(32, 16, 8, 8, device=device)
    y = torch.randint(0, 10, (32,), device=device)
    optimizers = {id(model): make_optimizer(model, 1e-4) for model in (eager, compiled)}

    started = time.perf_counter()
    sampling_rate(compiled.eval(), labels, precision, 0, **sampling)
    training_rate(compiled.train(), optimizers[id(compiled)], x, y, precision, 0, 2)
    print(f"compilation (first sampling and training calls): {time.perf_counter() - started:.1f} s")
    sampling_rate(eager.eval(), labels, precision, 0, **sampling)  # the eager path's first-call costs, not counted
    training_rate(eager.train(), optimizers[id(eager)], x, y, precision, 0, 1)

    rates = {(path, part): [] for path in ("eager", "compiled") for part in ("sampling", "training")}
    for round_ in range(args.rounds):
        for path, model in (("eager", eager), ("compiled", compiled)):
            rates[path, "sampling"].append(sampling_rate(model.eval(), labels, precision, round_, **sampling))
            rates[path, "training"].append(
                training_rate(model.train(), optimizers[id(model)], x, y, precision, 100 * round_, args.train_steps)
            )
    for part in ("sampling", "training"):
        eager_rate, compiled_rate = (sum(rates[path, part]) / args.rounds for path in ("eager", "compiled"))
        what = (
            f"{args.head_sampler}:{args.head_steps}, batch 16, K=16, cfg 3 linear"
            if part == "sampling"
            else "batch 32, AdamW"
        )
        print(
            f"  {part:8s} ({what}): eager {eager_rate:7.1f} images/s   compiled {compiled_rate:7.1f} images/s   "
            f"{compiled_rate / eager_rate:.2f}x"
        )


if __name__ == "__main__":
    main()
