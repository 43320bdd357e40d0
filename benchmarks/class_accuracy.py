"""What limits class accuracy on the glyphs: tokenizer reconstructions, and a generator's samples over settings.

Both are scored by the glyph set's feature classifier (the one train.py and compare.py keep in --cache-dir,
trained once): tokenizers by the share of the 1000 held-out glyphs (render seed 1) whose reconstruction is still
classified right, the ceiling any generator on that tokenizer can reach; a checkpoint by the class accuracy of
its samples for every temperature x cfg x K given, averaged over --seeds.

Examples:
    python benchmarks/class_accuracy.py --tokenizers runs/default/tokenizer runs/tokenizers/kl
    python benchmarks/class_accuracy.py --checkpoint runs/default --temperatures 1.0 0.7 --cfgs 4 8 --num-iters 8 16
"""
import argparse
import itertools
import statistics
import time

import torch

from mar.checkpoint import load_checkpoint
from mar.classifier import predict
from mar.cli import class_samples, dataset_name, open_dataset, pick_device
from mar.eval.reference_data import dataset_classifier
from mar.options import NON_NEGATIVE_NUMBER, POSITIVE, POSITIVE_NUMBER, SEED, Parser, fail, text
from mar.training import autocast, resolve_precision
from vae import load_tokenizer, psnr
from vae.train import reconstruct


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument("--tokenizers", type=text, nargs="*", default=[], help="tokenizer folders to score by reconstruction")
    parser.add_argument("--checkpoint", type=text, default=None, help="run folder or checkpoint to score by its samples")
    parser.add_argument("--temperatures", type=NON_NEGATIVE_NUMBER, nargs="+", default=[1.0], help="sampling temperatures")
    parser.add_argument("--cfgs", type=POSITIVE_NUMBER, nargs="+", default=[4.0], help="guidance scales (constant schedule)")
    parser.add_argument("--num-iters", type=POSITIVE, nargs="+", default=[16], help="autoregressive steps K")
    parser.add_argument("--diffusion-steps", type=POSITIVE, default=100, help="head steps (DDPM)")
    parser.add_argument("--samples-per-class", type=POSITIVE, default=30, help="samples per class, setting and seed")
    parser.add_argument("--seeds", type=POSITIVE, default=2, help="sampling seeds per setting")
    parser.add_argument("--seed", type=SEED, default=0, help="first sampling seed")
    parser.add_argument("--cache-dir", type=text, default="data_cache", help="where the glyphs and their classifier are kept")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "none"], help="autocast while sampling")
    return parser


def glyph_classifier(args, device):
    """The kept classifier of the default glyph set and its held-out glyphs (images, labels)."""
    data = argparse.Namespace(data_path=None, image_size=32, num_images=10_000, data_seed=0, cache_dir=args.cache_dir)
    dataset, classes = open_dataset(data)
    classifier, info, _, held_out = dataset_classifier(data, dataset, dataset_name(data), len(classes), device)
    print(f"feature classifier {info['folder']}: test accuracy {info['test_accuracy']:.3f} on {len(held_out[1])} held-out glyphs")
    return classifier, held_out


def score_tokenizers(args, classifier, held_out, device) -> None:
    images, labels = held_out
    print("\n| tokenizer | stride | channels | PSNR (dB) | class acc. of reconstructions | worst classes |\n|---|---|---|---|---|---|")
    for folder in args.tokenizers:
        try:
            tokenizer = load_tokenizer(folder).to(device).eval()
        except (FileNotFoundError, ValueError) as error:
            fail(str(error))
        reconstructions = reconstruct(tokenizer, images.to(device))
        predicted = predict(classifier, reconstructions)[1]
        per_class = [(predicted[labels == k] == k).float().mean().item() for k in range(int(labels.max()) + 1)]
        worst = ", ".join(f"{k}: {a:.2f}" for k, a in sorted(enumerate(per_class), key=lambda p: p[1])[:3])
        print(f"| {folder} | {tokenizer.stride} | {tokenizer.channels} | {psnr(reconstructions, images.to(device)):.2f} | "
              f"{(predicted == labels).float().mean().item():.3f} | {worst} |")


def score_checkpoint(args, classifier, device) -> None:
    try:
        checkpoint = load_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    model, tokenizer = checkpoint.sampling_model, checkpoint.tokenizer
    precision = resolve_precision(args.amp, device)
    classes = list(range(model.config.num_classes))
    print(f"\n{args.checkpoint} (step {checkpoint.step}), DDPM {args.diffusion_steps} steps, cfg constant, "
          f"{args.samples_per_class * len(classes)} samples x {args.seeds} seeds per setting, "
          f"{'fp32' if precision is None else str(precision).removeprefix('torch.')}\n")
    print("| temperature | cfg | K | class acc. (mean over seeds) | per seed | seconds |\n|---|---|---|---|---|---|")
    for temperature, cfg, num_iter in itertools.product(args.temperatures, args.cfgs, args.num_iters):
        started, scores = time.perf_counter(), []
        for seed in range(args.seed, args.seed + args.seeds):
            with autocast(device, precision):
                images, labels = class_samples(
                    model, tokenizer, classes, args.samples_per_class, generator=torch.Generator(device).manual_seed(seed),
                    num_iter=num_iter, diffusion_steps=args.diffusion_steps, cfg=cfg, cfg_schedule="constant",
                    temperature=temperature)
            scores.append((predict(classifier, images.float())[1] == labels.cpu()).float().mean().item())
        print(f"| {temperature:g} | {cfg:g} | {num_iter} | {statistics.mean(scores):.3f} | "
              f"{', '.join(f'{s:.3f}' for s in scores)} | {time.perf_counter() - started:.0f} |")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if not args.tokenizers and args.checkpoint is None:
        fail("nothing to score; pass --tokenizers DIR ... and/or --checkpoint RUN")
    device = pick_device(args.device)
    classifier, held_out = glyph_classifier(args, device)
    if args.tokenizers:
        score_tokenizers(args, classifier, held_out, device)
    if args.checkpoint is not None:
        score_checkpoint(args, classifier, device)


if __name__ == "__main__":
    main()
