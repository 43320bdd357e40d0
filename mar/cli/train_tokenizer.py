"""Train a tokenizer (KL, VQ or FSQ) on the embedded glyph set or an ImageFolder, and measure it.

Writes the tokenizer folder (``--tokenizer`` of train.py and mar cache-latents takes it) and ``metrics.json`` with
PSNR on held-out images and, for VQ and FSQ, codebook usage and perplexity over them.

Examples:
    mar train-tokenizer --kind kl
    mar train-tokenizer --kind vq --codebook-size 512 --code-dim 8 --vq-update ema
    mar train-tokenizer --kind fsq --levels 8 5 5 5
    mar train-tokenizer --kind vq --data-path /data/flowers/train --image-size 64 --device cuda
    mar train-tokenizer --data-path data/textures --pixel-loss mse --initial-logvar -8 --steps 1600
"""

import argparse
import json
import time
from pathlib import Path

import torch

from mar.cli.common import add_data_arguments, image_sample, open_dataset, open_image_folder, pick_device
from mar.cli.options import (
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    POSITIVE_NUMBER,
    SEED,
    Parser,
    check_writable_folder,
    fail,
    integer,
    number,
    text,
)
from mar.data.image_folder import BadImage
from mar.precision import resolve_precision
from vae import (
    PIXEL_LOSSES,
    DiscreteConfig,
    DiscreteTokenizer,
    FSQConfig,
    KLTokenizer,
    VQConfig,
    small_autoencoder,
    train_and_measure,
)

INTERRUPTED = "interrupted; no tokenizer was written"  # printed by the mar command on Ctrl-C


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_data_arguments(parser)
    tok = parser.add_argument_group("tokenizer")
    tok.add_argument("--kind", default="kl", choices=["kl", "vq", "fsq"], help="continuous KL, or discrete VQ / FSQ")
    tok.add_argument("--stride", type=POSITIVE, default=4, help="downsampling factor (a power of two)")
    tok.add_argument(
        "--width",
        type=integer(8),
        default=64,
        help="largest channel count of the encoder and decoder (a multiple of 8)",
    )
    tok.add_argument("--channels", type=POSITIVE, default=4, help="KL: latent channels")
    tok.add_argument(
        "--kl-weight", type=NON_NEGATIVE_NUMBER, default=1e-4, help="KL: weight of the KL term per latent value"
    )
    tok.add_argument(
        "--initial-logvar",
        type=number(-20, 5),
        default=0.0,
        help="KL: the posterior's log-variance at the start (-8 helped on the textures, docs/data-and-tokenizers.md)",
    )
    tok.add_argument("--codebook-size", type=integer(2), default=512, help="VQ: number of codes")
    tok.add_argument("--code-dim", type=POSITIVE, default=8, help="VQ: dimension of a code")
    tok.add_argument("--vq-update", default="loss", choices=["loss", "ema"], help="VQ: codebook loss or EMA updates")
    tok.add_argument("--beta", type=NON_NEGATIVE_NUMBER, default=0.25, help="VQ: commitment loss weight")
    tok.add_argument(
        "--levels",
        type=integer(2),
        nargs="+",
        default=[8, 5, 5, 5],
        help="FSQ: levels per channel (8 5 5 5 = 1000 codes)",
    )
    opt = parser.add_argument_group("training")
    opt.add_argument("--steps", type=POSITIVE, default=800, help="training steps")
    opt.add_argument("--batch-size", type=POSITIVE, default=32, help="images per step")
    opt.add_argument("--lr", type=POSITIVE_NUMBER, default=1e-3, help="peak learning rate (cosine decay to 0)")
    opt.add_argument("--warmup-steps", type=NON_NEGATIVE, default=0, help="linear warmup steps")
    opt.add_argument(
        "--pixel-loss",
        default="l1",
        choices=PIXEL_LOSSES,
        help="reconstruction term: l1, or mse (off the textures' colour plateau, docs/data-and-tokenizers.md)",
    )
    opt.add_argument(
        "--images", type=integer(2), default=10_000, help="images drawn from the dataset for training and measuring"
    )
    opt.add_argument(
        "--held-out", type=POSITIVE, default=512, help="of those, images kept out of training to measure on"
    )
    run = parser.add_argument_group("run")
    run.add_argument("--output", type=text, default=None, help="tokenizer folder; default runs/tokenizers/<kind>")
    run.add_argument("--overwrite", action="store_true", help="replace a tokenizer already in --output")
    run.add_argument("--seed", type=SEED, default=0, help="seed of every draw")
    run.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "bf16", "fp16", "none"],
        help="mixed precision of the forward pass; fp16 adds a gradient scaler",
    )
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def check_options(args: argparse.Namespace) -> Path:
    """Every rule between options, and the output folder, before anything is built or trained; the output folder."""
    if args.stride & (args.stride - 1):
        fail(f"--stride {args.stride} is not a power of two; use 2, 4, 8 or 16")
    if args.width % 8:
        fail(
            f"--width {args.width} is not a multiple of 8 (the tokenizer's norm groups); use e.g. {max(8, args.width // 8 * 8)}"
        )
    if args.image_size % args.stride:
        fail(
            f"image size {args.image_size} is not divisible by --stride {args.stride}; use a multiple of {args.stride}"
        )
    if args.held_out >= args.images:
        fail(f"--held-out {args.held_out} must be below --images {args.images}, leaving images to train on")
    output = check_writable_folder(args.output or f"runs/tokenizers/{args.kind}", "--output")
    if output.is_dir() and any(output.iterdir()) and not args.overwrite:
        fail(
            f"--output {output} already holds files (a tokenizer?); pass --overwrite to replace it, or another --output"
        )
    return output


def build(args: argparse.Namespace):
    try:
        if args.kind == "kl":
            return KLTokenizer(
                small_autoencoder(args.channels, args.stride, args.width, args.initial_logvar),
                kl_weight=args.kl_weight,
                pixel_loss=args.pixel_loss,
            )
        return DiscreteTokenizer(
            DiscreteConfig(
                kind=args.kind,
                stride=args.stride,
                width=args.width,
                vq=VQConfig(codebook_size=args.codebook_size, dim=args.code_dim, beta=args.beta, update=args.vq_update),
                fsq=FSQConfig(levels=tuple(args.levels)),
            ),
            pixel_loss=args.pixel_loss,
        )
    except ValueError as error:
        fail(str(error))


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.time()
    output = check_options(args)
    device = pick_device(args.device)
    torch.manual_seed(args.seed)  # the initial weights
    tokenizer = build(args)
    folder = open_image_folder(args)
    available = args.num_images if folder is None else len(folder)
    if args.held_out >= min(args.images, available):
        fail(f"--held-out {args.held_out} must lie below the {min(args.images, available)} images available")
    dataset, _ = open_dataset(args, folder)
    try:
        images = image_sample(dataset, args.images, args.seed).to(device)
    except BadImage as error:
        fail(str(error))
    metrics = train_and_measure(
        tokenizer,
        images,
        args.held_out,
        steps=args.steps,
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=args.warmup_steps,
        precision=resolve_precision(args.amp, device),
        generator=torch.Generator(device).manual_seed(args.seed),
        progress=not args.no_progress,
    )
    metrics |= {
        "kind": args.kind,
        "steps": args.steps,
        "pixel_loss": args.pixel_loss,
        "held_out": args.held_out,
        "seconds": round(time.time() - started, 1),
    }
    if args.kind == "kl":
        metrics["initial_logvar"] = args.initial_logvar
    tokenizer.save(output)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    codes = (
        f", codebook usage {metrics['usage']:.1%}, perplexity {metrics['perplexity']:.1f} of {tokenizer.codebook_size}"
        if tokenizer.discrete
        else ""
    )
    print(
        f"{args.kind} tokenizer: PSNR {metrics['psnr']:.2f} dB on {args.held_out} held-out images{codes}; "
        f"saved to {output} in {metrics['seconds']:.0f} s"
    )
    return metrics
