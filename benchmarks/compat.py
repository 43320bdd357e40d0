"""Sample quality under --compat default and --compat official on one checkpoint: the official code's head respacing
(0 ... 999) and last-step guidance scale against ours, all else equal (ddpm head, temperature 1, linear guidance).

A checkpoint trained on the embedded glyphs (default: runs/default, as `python train.py` writes it) draws --samples
images per seed with each compat; each set is scored by FID against held-out glyphs and class accuracy in the project's
feature classifier (the one benchmarks/speed.py trains and keeps in <output>/classifier). Seeds are paired: seed s
draws the same orders and starting noise under both conventions.

Examples:
    python benchmarks/compat.py
    python benchmarks/compat.py --samples 2000 --seeds 5 --num-iter 8 --cfg 3
"""

import statistics
from pathlib import Path

import torch

from mar import sample_latents
from mar.cli.common import pick_device
from mar.cli.options import NON_NEGATIVE_NUMBER, POSITIVE, SEED, Parser, fail, text
from mar.data.glyphs import glyph_dataset
from mar.eval.classifier import classifier_for
from mar.eval.quality import reference_set, sample_metrics
from mar.model.config import COMPAT
from mar.train.checkpoint import load_checkpoint


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument(
        "--checkpoint", type=text, default="runs/default", help="a run folder or checkpoint trained on the glyphs"
    )
    parser.add_argument("--samples", type=POSITIVE, default=1000, help="images per compat and seed")
    parser.add_argument("--seeds", type=POSITIVE, default=3, help="seeds per compat")
    parser.add_argument("--num-iter", type=POSITIVE, default=16, help="autoregressive steps K")
    parser.add_argument("--diffusion-steps", type=POSITIVE, default=100, help="ddpm head steps")
    parser.add_argument("--cfg", type=NON_NEGATIVE_NUMBER, default=3.0, help="guidance scale (linear schedule)")
    parser.add_argument("--batch-size", type=POSITIVE, default=250, help="images sampled at once")
    parser.add_argument(
        "--output", type=text, default="runs/speed", help="folder holding (or receiving) the classifier"
    )
    parser.add_argument("--seed", type=SEED, default=0, help="first seed")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser


@torch.no_grad()
def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    device = pick_device(args.device)
    try:
        checkpoint = load_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(f"{error}; train one with `python train.py`")
    model, tokenizer, size = checkpoint.sampling_model, checkpoint.tokenizer, checkpoint.image_size
    classes = len(checkpoint.classes)
    train_set = glyph_dataset(10_000, size, 0, cache_dir="data_cache").tensors
    held_out = glyph_dataset(1000, size, 1, cache_dir="data_cache").tensors
    classifier, _ = classifier_for(
        Path(args.output) / "classifier",
        train_set,
        held_out,
        f"glyphs(n=10000, seed=0, size={size})",
        classes,
        600,
        device,
    )
    reference = reference_set(classifier, held_out[0])
    labels = torch.arange(args.samples, device=device) % classes
    sampling = {
        "num_iter": args.num_iter,
        "diffusion_steps": args.diffusion_steps,
        "cfg": args.cfg,
        "cfg_schedule": "linear",
    }
    print(
        f"{checkpoint.step} steps, K={args.num_iter}, ddpm {args.diffusion_steps}, cfg {args.cfg} linear; "
        f"{args.samples} images x {args.seeds} seeds per compat"
    )
    for compat in COMPAT:
        runs = []
        for seed in range(args.seed, args.seed + args.seeds):
            generator = torch.Generator(device).manual_seed(seed)
            images = torch.cat(
                [
                    tokenizer.decode_latents(
                        sample_latents(model, chunk, compat=compat, generator=generator, **sampling)
                    )
                    for chunk in labels.split(args.batch_size)
                ]
            )  # (samples, 3, s, s)
            runs.append(sample_metrics(classifier, reference, images, labels))
        fid, accuracy = ([run[key] for run in runs] for key in ("fid", "accuracy"))
        spread = statistics.stdev if len(runs) > 1 else (lambda values: 0.0)
        print(
            f"  {compat:9s} FID {statistics.mean(fid):.3f} ± {spread(fid):.3f}   accuracy {statistics.mean(accuracy):.3f} "
            f"± {spread(accuracy):.3f}   per seed: {', '.join(f'{v:.3f}' for v in fid)}"
        )


if __name__ == "__main__":
    main()
