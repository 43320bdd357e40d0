"""What EMA updates and checkpoints cost per training step, against the step itself.

Times a training step (forward, backward, clip, AdamW), one EMA update, and one checkpoint write (weights with
EMA and tokenizer, plus resume state), then prints each as milliseconds and as a share of the step; a checkpoint
every --save-every steps costs its time divided by that per step.

Examples:
    python benchmarks/step_overhead.py
    python benchmarks/step_overhead.py --model mar-base --data imagenet256 --device cuda --amp bf16
"""

import argparse
import tempfile

import torch
from shared import GEOMETRIES, Timer

from mar import NAMED_SIZES, MARGenerator, named_config
from mar.cli.common import pick_device
from mar.cli.options import HelpFormatter
from mar.precision import autocast, resolve_precision
from mar.train.checkpoint import TrainingState, save_training_checkpoint
from mar.train.ema import EMA
from mar.train.optim import make_optimizer
from vae import KLTokenizer, small_autoencoder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", default="mar-tiny", choices=list(NAMED_SIZES))
    parser.add_argument("--data", default="glyphs32", choices=list(GEOMETRIES), help="data geometry")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=30, help="timed training steps (after 3 warm-up steps)")
    parser.add_argument("--saves", type=int, default=5, help="timed checkpoint writes")
    parser.add_argument(
        "--save-every", type=int, default=1000, help="steps between checkpoints, for the amortised cost"
    )
    parser.add_argument("--device", default="auto")
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"])
    args = parser.parse_args()
    device = pick_device(args.device)
    classes, channels, side, patch = GEOMETRIES[args.data]
    config = named_config(args.model, num_classes=classes, latent_channels=channels, latent_size=side, patch_size=patch)
    torch.manual_seed(0)
    model = MARGenerator(config).to(device).train()
    ema = EMA(model, 0.9999)
    optimizer = make_optimizer(model, 1e-4)
    precision = resolve_precision(args.amp, device)
    generator = torch.Generator(device).manual_seed(0)
    latents = torch.randn(args.batch_size, channels, side, side, device=device)
    labels = torch.randint(0, classes, (args.batch_size,), device=device)
    step_timer, ema_timer, save_timer = Timer(device), Timer(device), Timer(device)

    def train_step() -> None:
        with autocast(device, precision):
            loss = model(latents, labels, generator)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 3.0)
        optimizer.step()

    for _ in range(3):
        train_step()
    for _ in range(args.steps):
        with step_timer():
            train_step()
        with ema_timer():
            ema.update(model, 10_000)
    tokenizer = KLTokenizer(small_autoencoder(channels, 4)).to(device)
    with tempfile.TemporaryDirectory() as run_dir:
        for i in range(args.saves):
            state = TrainingState(
                step=i + 1, epoch=0, position=i + 1, optimizer=optimizer.state_dict(), scaler={}, data={}
            )
            with save_timer():
                save_training_checkpoint(
                    run_dir, model, ema, tokenizer, state, classes=[str(k) for k in range(classes)], image_size=side * 4
                )
    step = step_timer.seconds / args.steps
    ema_cost, save_cost = ema_timer.seconds / args.steps, save_timer.seconds / args.saves
    print(
        f"{args.model}, {args.data}, batch {args.batch_size}, {device}, "
        f"{'fp32' if precision is None else str(precision).removeprefix('torch.')}, "
        f"{sum(p.numel() for p in model.parameters()) / 1e6:.1f}M parameters"
    )
    print(f"training step:        {1000 * step:8.1f} ms")
    print(f"EMA update:           {1000 * ema_cost:8.2f} ms  ({ema_cost / step:.2%} of a step)")
    print(
        f"checkpoint write:     {1000 * save_cost:8.1f} ms  ({save_cost / step:.2f} steps; "
        f"{save_cost / args.save_every / step:.3%} per step at one every {args.save_every} steps)"
    )


if __name__ == "__main__":
    main()
