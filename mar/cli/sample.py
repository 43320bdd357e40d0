"""Sample a grid of images from a MAR checkpoint: one row per class.

The checkpoint carries the model and tokenizer configs, so no model flags are needed.

Examples:
    python sample.py --checkpoint runs/default
    python sample.py --checkpoint runs/default --num-iter 8 --temperature 0.9 --cfg 4
    python sample.py --checkpoint runs/default --head-sampler dpm++ --diffusion-steps 10
    python sample.py --checkpoint runs/default --diffusion-steps 100 --diffusion-steps-last 10
    python sample.py --checkpoint runs/default --guided-head    (once `mar distill-head` wrote its guided head)
    python sample.py --checkpoint runs/default/checkpoints/step-00002028 --classes 3 7 --per-class 16 --out sevens.png
"""

import argparse
import time
from pathlib import Path

import torch

from mar.cli.common import add_checkpoint_argument, add_sampling_arguments, checkpoint_sampling, pick_device
from mar.cli.options import (
    NON_NEGATIVE,
    POSITIVE,
    SEED,
    Parser,
    check_sampling,
    check_writable_file,
    fail,
    image_file,
    text,
)
from mar.interop.hub import open_checkpoint
from mar.sampling.grids import render_samples


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_checkpoint_argument(parser)
    parser.add_argument("--no-ema", action="store_true", help="sample with the trained weights instead of their EMA")
    add_sampling_arguments(parser)
    parser.add_argument("--classes", type=NON_NEGATIVE, nargs="*", default=None, help="class ids, one row each")
    parser.add_argument("--per-class", type=POSITIVE, default=10, help="images per class")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of every draw")
    parser.add_argument("--batch-size", type=POSITIVE, default=256, help="images sampled at once")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--compile",
        action="store_true",
        help="torch.compile the transformer and head blocks (pays off for many images; compiling takes tens of seconds)",
    )
    parser.add_argument(
        "--out",
        type=image_file,
        default=None,
        help="PNG path; None writes samples-step<N>-K<K>-<sampler><steps>-cfg<S>-t<T>.png in the checkpoint's folder",
    )
    return parser


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.out is not None:
        check_writable_file(args.out, "--out")
    device = pick_device(args.device)
    try:
        ckpt = open_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    config = ckpt.model.config
    bad = [k for k in args.classes or [] if not 0 <= k < config.num_classes]
    if bad:
        fail(
            f"class id {bad[0]} is out of range: this checkpoint has {config.num_classes} classes (0-{config.num_classes - 1})"
        )
    train_timesteps = ckpt.model.head.config.num_train_timesteps if config.head_kind == "diffusion" else 0
    check_sampling(args, config.seq_len, config.head_kind, train_timesteps)
    given = Path(args.checkpoint)
    folder = given if given.is_dir() else given.parent if given.exists() else Path("runs") / "hub" / args.checkpoint
    sampling, guided_head = checkpoint_sampling(args, ckpt, use_ema=not args.no_ema)
    name = f"samples-step{ckpt.step}-K{args.num_iter}-{args.head_sampler}{args.diffusion_steps}-cfg{sampling.cfg:g}-t{sampling.temperature:g}{'-guided' if guided_head else ''}.png"
    out = args.out or check_writable_file(folder / name, "--out")  # a given --out was checked first
    model = ckpt.model if args.no_ema else ckpt.sampling_model
    if args.compile:
        model.compile_blocks()
    started = time.time()
    path = render_samples(
        model,
        ckpt.tokenizer,
        ckpt.classes,
        args.per_class,
        out,
        sampling,
        class_ids=args.classes,
        batch_size=args.batch_size,
        generator=torch.Generator(device).manual_seed(args.seed),
        guided_head=guided_head,
    )
    count = len(args.classes or ckpt.classes) * args.per_class
    unset = args.cfg is None or args.temperature is None
    chosen = " (as its run chose from its data; --cfg and --temperature override)" if unset and ckpt.sampling else ""
    print(
        f"wrote {path}: {count} images at cfg {sampling.cfg:g}, temperature {sampling.temperature:g}{chosen} "
        f"in {time.time() - started:.1f} s"
    )
