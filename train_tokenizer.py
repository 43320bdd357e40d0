"""Train a tokenizer (KL, VQ or FSQ) on the embedded glyph set or an ImageFolder, and measure it.

Writes the tokenizer folder (``--tokenizer`` of train.py and cache_latents.py takes it) and ``metrics.json`` with
PSNR on held-out images and, for VQ and FSQ, codebook usage and perplexity over them.

Examples:
    python train_tokenizer.py --kind kl
    python train_tokenizer.py --kind vq --codebook-size 512 --code-dim 8 --vq-update ema
    python train_tokenizer.py --kind fsq --levels 8 5 5 5
    python train_tokenizer.py --kind vq --data-path /data/flowers/train --image-size 64 --device cuda
"""
import argparse
import json
import time
from pathlib import Path

import torch

from mar.cli import HelpFormatter, add_data_arguments, fail, image_sample, open_dataset, pick_device
from mar.training import resolve_precision
from vae import DiscreteConfig, DiscreteTokenizer, FSQConfig, KLTokenizer, VQConfig, small_autoencoder, train_and_measure


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_data_arguments(parser)
    tok = parser.add_argument_group("tokenizer")
    tok.add_argument("--kind", default="kl", choices=["kl", "vq", "fsq"], help="continuous KL, or discrete VQ / FSQ")
    tok.add_argument("--stride", type=int, default=4, help="downsampling factor (a power of two)")
    tok.add_argument("--width", type=int, default=64, help="largest channel count of the encoder and decoder")
    tok.add_argument("--channels", type=int, default=4, help="KL: latent channels")
    tok.add_argument("--kl-weight", type=float, default=1e-4, help="KL: weight of the KL term per latent value")
    tok.add_argument("--codebook-size", type=int, default=512, help="VQ: number of codes")
    tok.add_argument("--code-dim", type=int, default=8, help="VQ: dimension of a code")
    tok.add_argument("--vq-update", default="loss", choices=["loss", "ema"], help="VQ: codebook loss or EMA updates")
    tok.add_argument("--beta", type=float, default=0.25, help="VQ: commitment loss weight")
    tok.add_argument("--levels", type=int, nargs="+", default=[8, 5, 5, 5], help="FSQ: levels per channel (8 5 5 5 = 1000 codes)")
    opt = parser.add_argument_group("training")
    opt.add_argument("--steps", type=int, default=800, help="training steps")
    opt.add_argument("--batch-size", type=int, default=32, help="images per step")
    opt.add_argument("--lr", type=float, default=1e-3, help="peak learning rate (cosine decay to 0)")
    opt.add_argument("--warmup-steps", type=int, default=0, help="linear warmup steps")
    opt.add_argument("--images", type=int, default=10_000, help="images drawn from the dataset for training and measuring")
    opt.add_argument("--held-out", type=int, default=512, help="of those, images kept out of training to measure on")
    run = parser.add_argument_group("run")
    run.add_argument("--output", default=None, help="tokenizer folder; default runs/tokenizers/<kind>")
    run.add_argument("--seed", type=int, default=0, help="seed of every draw")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"], help="mixed precision of the forward pass")
    run.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser.parse_args(argv)


def build(args: argparse.Namespace):
    try:
        if args.kind == "kl":
            return KLTokenizer(small_autoencoder(args.channels, args.stride, args.width), kl_weight=args.kl_weight)
        return DiscreteTokenizer(DiscreteConfig(
            kind=args.kind, stride=args.stride, width=args.width,
            vq=VQConfig(codebook_size=args.codebook_size, dim=args.code_dim, beta=args.beta, update=args.vq_update),
            fsq=FSQConfig(levels=tuple(args.levels)),
        ))
    except ValueError as error:
        fail(str(error))


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.time()
    device = pick_device(args.device)
    output = Path(args.output or f"runs/tokenizers/{args.kind}")
    if args.image_size % args.stride:
        fail(f"image size {args.image_size} is not divisible by --stride {args.stride}; use a multiple of {args.stride}")
    torch.manual_seed(args.seed)  # the initial weights
    tokenizer = build(args)
    dataset, _ = open_dataset(args)
    images = image_sample(dataset, args.images, args.seed).to(device)
    if not 0 < args.held_out < len(images):
        fail(f"--held-out {args.held_out} must lie in [1, {len(images) - 1}] for {len(images)} images")
    metrics = train_and_measure(
        tokenizer, images, args.held_out, steps=args.steps, batch_size=args.batch_size, lr=args.lr,
        warmup_steps=args.warmup_steps, precision=resolve_precision(args.amp, device),
        generator=torch.Generator(device).manual_seed(args.seed), progress=not args.no_progress,
    )
    metrics |= {"kind": args.kind, "steps": args.steps, "held_out": args.held_out, "seconds": round(time.time() - started, 1)}
    tokenizer.save(output)
    (output / "metrics.json").write_text(json.dumps(metrics, indent=2))
    codes = f", codebook usage {metrics['usage']:.1%}, perplexity {metrics['perplexity']:.1f} of {tokenizer.codebook_size}" if tokenizer.discrete else ""
    print(f"{args.kind} tokenizer: PSNR {metrics['psnr']:.2f} dB on {args.held_out} held-out images{codes}; "
          f"saved to {output} in {metrics['seconds']:.0f} s")
    return metrics


if __name__ == "__main__":
    main()
