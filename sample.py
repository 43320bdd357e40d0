"""Sample a grid of images from a MAR checkpoint: one row per class.

The checkpoint carries the model and tokenizer configs, so no model flags are needed.

Examples:
    python sample.py --checkpoint runs/default
    python sample.py --checkpoint runs/default --num-iter 8 --temperature 0.9 --cfg 4
    python sample.py --checkpoint runs/default/checkpoints/step-00002028 --classes 3 7 --per-class 16 --out sevens.png
"""
import argparse
import sys
import time
from pathlib import Path

import torch

from mar.checkpoint import load_checkpoint
from mar.cli import HelpFormatter, fail, pick_device, render_samples


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--checkpoint", required=True,
                        help="a run folder of train.py (its latest checkpoint), a checkpoints/step-N folder, or its weights.safetensors")
    parser.add_argument("--no-ema", action="store_true", help="sample with the trained weights instead of their EMA")
    parser.add_argument("--num-iter", type=int, default=16, help="autoregressive steps K")
    parser.add_argument("--diffusion-steps", type=int, default=100, help="DDPM steps per token (diffusion head)")
    parser.add_argument("--temperature", type=float, default=1.0, help="noise temperature (diffusion head) or softmax temperature (categorical head)")
    parser.add_argument("--cfg", type=float, default=4.0, help="classifier-free guidance scale; 1 = none")
    parser.add_argument("--cfg-schedule", default="constant", choices=["linear", "constant"], help="guidance schedule")
    parser.add_argument("--classes", type=int, nargs="*", default=None, help="class ids, one row each")
    parser.add_argument("--per-class", type=int, default=10, help="images per class")
    parser.add_argument("--seed", type=int, default=0, help="seed of every draw")
    parser.add_argument("--batch-size", type=int, default=256, help="images sampled at once")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument("--out", default=None, help="PNG path; None writes samples-step<N>-K<K>-cfg<S>-t<T>.png in the checkpoint's folder")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    device = pick_device(args.device)
    try:
        ckpt = load_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    config = ckpt.model.config
    bad = [k for k in args.classes or [] if not 0 <= k < config.num_classes]
    if bad:
        fail(f"class id {bad[0]} is out of range: this checkpoint has {config.num_classes} classes (0-{config.num_classes - 1})")
    if not 1 <= args.num_iter <= config.seq_len:
        fail(f"--num-iter {args.num_iter} must lie in [1, {config.seq_len}], the number of tokens per image")
    max_steps = ckpt.model.head.config.num_train_timesteps - 1 if config.head == "diffusion" else args.diffusion_steps
    if not 1 <= args.diffusion_steps <= max_steps:
        fail(f"--diffusion-steps {args.diffusion_steps} must lie in [1, {max_steps}]")
    if args.temperature < 0 or args.per_class < 1:
        fail(f"--temperature must be at least 0 and --per-class at least 1 (got {args.temperature}, {args.per_class})")
    folder = Path(args.checkpoint) if Path(args.checkpoint).is_dir() else Path(args.checkpoint).parent
    out = args.out or folder / f"samples-step{ckpt.step}-K{args.num_iter}-cfg{args.cfg:g}-t{args.temperature:g}.png"
    started = time.time()
    path = render_samples(
        ckpt.model if args.no_ema else ckpt.sampling_model, ckpt.tokenizer, ckpt.classes, args.per_class, out, class_ids=args.classes,
        batch_size=args.batch_size, num_iter=args.num_iter, temperature=args.temperature, cfg=args.cfg,
        cfg_schedule=args.cfg_schedule, diffusion_steps=args.diffusion_steps,
        generator=torch.Generator(device).manual_seed(args.seed),
    )
    count = len(args.classes or ckpt.classes) * args.per_class
    print(f"wrote {path}: {count} images in {time.time() - started:.1f} s")


if __name__ == "__main__":
    sys.exit(main())
