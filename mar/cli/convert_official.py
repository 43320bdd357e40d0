"""Convert a checkpoint of the official MAR code (checkpoint-last.pth) and its tokenizer into this project's format.

The result, <out>/weights.safetensors, holds the model (its EMA weights unless --no-ema), the tokenizer, the class
names and the config, so `python sample.py --checkpoint <out>` needs no model flags. The converted config carries
compat "official": sample.py samples as the official code did (head chain respaced 0 ... 999, last-step guidance
scale) unless given --compat default. The checkpoint is read with torch.load(weights_only=True), allowing
argparse.Namespace (its pickled args) and nothing else.

Examples:
    mar convert-official --checkpoint pretrained_models/mar/mar_base/checkpoint-last.pth --tokenizer kl16.ckpt --out runs/mar-base
    mar convert-official --checkpoint checkpoint-last.pth --tokenizer kl16.ckpt --out runs/mar-large --class-names imagenet_classes.txt
    python sample.py --checkpoint runs/mar-base --num-iter 256 --cfg 2.9 --cfg-schedule linear --classes 207 360 --per-class 4
"""

import argparse
from pathlib import Path

from mar.cli.options import POSITIVE, Parser, check_writable_folder, fail, text
from mar.interop.official import OfficialCheckpointError, load_official, read_class_names
from mar.train.checkpoint import WEIGHTS, save_weights
from vae import load_tokenizer


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument("--checkpoint", type=text, required=True, help="the official checkpoint-last.pth")
    parser.add_argument(
        "--tokenizer",
        type=text,
        required=True,
        help="the tokenizer the model was trained on: kl16.ckpt for the released models (any source "
        "train.py's --tokenizer takes)",
    )
    parser.add_argument("--out", type=text, required=True, help="folder that receives weights.safetensors")
    parser.add_argument("--no-ema", action="store_true", help="convert the trained weights instead of their EMA")
    parser.add_argument(
        "--class-names",
        type=text,
        default=None,
        help="text file with one class name per line, in class-id order; default: the ids",
    )
    parser.add_argument(
        "--num-heads",
        type=POSITIVE,
        default=None,
        help="attention heads, for a checkpoint whose args do not tell them and whose size is not an official one",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace an existing <out>/weights.safetensors")
    return parser


def main(argv=None) -> None:
    args = parse_args(argv)
    out = check_writable_folder(args.out, "--out") / WEIGHTS
    if out.exists() and not args.overwrite:
        fail(f"{out} exists; pass --overwrite to replace it, or another --out")
    if not Path(args.checkpoint).is_file():
        fail(f"--checkpoint {args.checkpoint} does not exist; pass the checkpoint-last.pth of an official MAR run")
    if args.class_names is not None and not Path(args.class_names).is_file():
        fail(f"--class-names {args.class_names} is not a file; pass a text file with one class name per line")
    try:
        tokenizer = load_tokenizer(args.tokenizer)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if tokenizer.discrete:
        fail(
            f"--tokenizer {args.tokenizer} is a discrete {tokenizer.kind} tokenizer; official MAR models are trained "
            "on a KL tokenizer (kl16.ckpt)"
        )
    try:
        converted = load_official(
            args.checkpoint, tokenizer.channels, tokenizer.stride, not args.no_ema, args.num_heads
        )
        classes = read_class_names(args.class_names, converted.model.config.num_classes)
    except OfficialCheckpointError as error:
        fail(str(error))
    save_weights(out, converted.model, tokenizer, classes, converted.image_size, step=0)
    config = converted.model.config
    print(
        f"wrote {out}: {'trained' if args.no_ema else 'EMA'} weights of a {config.width}-wide "
        f"{config.encoder_depth}+{config.decoder_depth}-block model ({sum(p.numel() for p in converted.model.parameters()) / 1e6:.1f}M "
        f"parameters), {config.num_classes} classes at {converted.image_size}x{converted.image_size}, "
        f"epoch {converted.epoch if converted.epoch is not None else 'unknown'}; compat official"
    )
