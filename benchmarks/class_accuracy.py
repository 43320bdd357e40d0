"""What limits class accuracy on the glyphs or a folder: tokenizer reconstructions, and a generator's samples over
settings.

Both are scored by the data's feature classifier (the one train.py's quality report and mar compare keep in
--cache-dir, trained once; the glyphs', or with --data-path the folder's): tokenizers by the share of the held-out
images (for the glyphs, 1000 of render seed 1) whose reconstruction is still classified right, the ceiling any
generator on that tokenizer can reach; a checkpoint by the class accuracy of its samples for every temperature x
cfg x K given, averaged over --seeds.

Two diagnostics of a checkpoint tell the judge's verdicts from the generator's faults:
- ``--contexts k ...``: held-out glyphs completed by the generator from k of their own tokens (the rest drawn with
  the first temperature and cfg): if the completions are still misclassified when most tokens are real, the head's
  draws, not the first steps' lack of context, are what fails;
- ``--agreement N``: N more classifiers of the same recipe with other seeds (each scored on the held-out glyphs) judge
  the same samples; on images of the data's kind they agree, so a low agreement on samples says the samples lie off
  the data, where any classifier's verdict is arbitrary.

Examples:
    python benchmarks/class_accuracy.py --tokenizers runs/default/tokenizer runs/tokenizers/kl
    python benchmarks/class_accuracy.py --checkpoint runs/default --temperatures 1.0 0.7 --cfgs 4 8 --num-iters 8 16
    python benchmarks/class_accuracy.py --checkpoint runs/default --contexts 0 4 8 12 --agreement 2
    python benchmarks/class_accuracy.py --data-path data/shapes --checkpoint runs/shapes --temperatures 0.3 1.0 --cfgs 2
"""

import argparse
import itertools
import statistics
import time

import torch

from mar.cli.common import dataset_name, open_dataset, pick_device
from mar.cli.options import (
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    POSITIVE_NUMBER,
    SEED,
    Parser,
    check_sampling,
    fail,
    text,
)
from mar.cli.train_options import build_parser as train_parser
from mar.eval.classifier import classifier_for, predict
from mar.eval.reference_data import CLASSIFIER_STEPS, classifier_folder, dataset_classifier
from mar.eval.run_quality import QualityJudge
from mar.model.masking import mask_from_orders, random_orders
from mar.model.tokens import patchify
from mar.precision import autocast, resolve_precision
from mar.sampling.config import HEAD_SAMPLERS, SamplingConfig
from mar.sampling.grids import class_samples
from mar.sampling.loop import sample_latents
from mar.train.checkpoint import load_checkpoint
from vae import load_tokenizer, psnr
from vae.train import reconstruct


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument(
        "--tokenizers", type=text, nargs="*", default=[], help="tokenizer folders to score by reconstruction"
    )
    parser.add_argument(
        "--checkpoint", type=text, default=None, help="run folder or checkpoint to score by its samples"
    )
    parser.add_argument(
        "--temperatures", type=NON_NEGATIVE_NUMBER, nargs="+", default=[1.0], help="sampling temperatures"
    )
    parser.add_argument("--cfgs", type=POSITIVE_NUMBER, nargs="+", default=[4.0], help="guidance scales")
    parser.add_argument(
        "--cfg-schedule",
        default="constant",
        choices=["constant", "linear"],
        help="guidance over the K steps: constant, or rising linearly from 1 (the paper's)",
    )
    parser.add_argument("--num-iters", type=POSITIVE, nargs="+", default=[16], help="autoregressive steps K")
    parser.add_argument("--head-sampler", default="ddpm", choices=HEAD_SAMPLERS, help="diffusion head's sampler")
    parser.add_argument("--diffusion-steps", type=POSITIVE, default=100, help="head steps")
    parser.add_argument(
        "--cfg-refresh",
        type=POSITIVE,
        default=1,
        help="guidance's unconditional half every N autoregressive steps (sample.py's option; 1 = exact)",
    )
    parser.add_argument("--samples-per-class", type=POSITIVE, default=30, help="samples per class, setting and seed")
    parser.add_argument("--seeds", type=POSITIVE, default=2, help="sampling seeds per setting")
    parser.add_argument("--seed", type=SEED, default=0, help="first sampling seed")
    parser.add_argument(
        "--contexts",
        type=NON_NEGATIVE,
        nargs="*",
        default=[],
        help="complete held-out glyphs from this many of their own tokens (per class: --samples-per-class)",
    )
    parser.add_argument(
        "--agreement",
        type=NON_NEGATIVE,
        default=0,
        help="classifiers of other seeds that also judge the first setting's samples, and their agreement",
    )
    parser.add_argument(
        "--data-path",
        type=text,
        default=None,
        help="an image folder (root/<class>/*.png) judged by its own held-out classifier instead of the glyphs",
    )
    parser.add_argument(
        "--cache-dir", type=text, default="data_cache", help="where the glyphs and the classifiers are kept"
    )
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument(
        "--amp", default="auto", choices=["auto", "bf16", "fp16", "none"], help="autocast while sampling"
    )
    parser.add_argument("--no-ema", action="store_true", help="score the trained weights instead of their EMA")
    return parser


def scored_data(args) -> argparse.Namespace:
    """The data whose classifier judges, with train.py's defaults: the glyph set, or the folder of --data-path."""
    folder = [] if args.data_path is None else ["--data-path", args.data_path]
    return train_parser().parse_args([*folder, "--cache-dir", args.cache_dir])


def kept_classifier(data: argparse.Namespace, device):
    """The kept classifier of the data (the one train.py's quality report and mar compare use), its record, its
    training images, its held-out images (images, labels) and the number of classes."""
    dataset, classes = open_dataset(data)
    classifier, info, train_set, held_out = dataset_classifier(data, dataset, dataset_name(data), len(classes), device)
    print(
        f"feature classifier {info['folder']}: test accuracy {info['test_accuracy']:.3f} on {len(held_out[1])} held-out images"
    )
    return classifier, info, train_set, held_out, len(classes)


def other_classifiers(data: argparse.Namespace, train_set, held_out, num_classes: int, count: int, device) -> list:
    """``count`` classifiers of the kept one's recipe with seeds 1 ... count, each kept in its own folder."""
    name = dataset_name(data)
    kept = classifier_folder(data.cache_dir, name, data.image_size, CLASSIFIER_STEPS)
    found = []
    for seed in range(1, count + 1):
        folder = kept.with_name(f"{kept.name}-seed-{seed}")
        classifier, info = classifier_for(
            folder, train_set, held_out, name, num_classes, CLASSIFIER_STEPS, device, seed=seed, progress=False
        )
        print(f"classifier of seed {seed}: test accuracy {info['test_accuracy']:.3f}")
        found.append(classifier)
    return found


def score_tokenizers(args, classifier, held_out, device) -> None:
    images, labels = held_out
    print(
        "\n| tokenizer | stride | channels | PSNR (dB) | class acc. of reconstructions | worst classes |\n|---|---|---|---|---|---|"
    )
    for folder in args.tokenizers:
        try:
            tokenizer = load_tokenizer(folder).to(device).eval()
        except (FileNotFoundError, ValueError) as error:
            fail(str(error))
        reconstructions = reconstruct(tokenizer, images.to(device))
        predicted = predict(classifier, reconstructions)[1]
        per_class = [(predicted[labels == k] == k).float().mean().item() for k in range(int(labels.max()) + 1)]
        worst = ", ".join(f"{k}: {a:.2f}" for k, a in sorted(enumerate(per_class), key=lambda p: p[1])[:3])
        print(
            f"| {folder} | {tokenizer.stride} | {tokenizer.channels} | {psnr(reconstructions, images.to(device)):.2f} | "
            f"{(predicted == labels).float().mean().item():.3f} | {worst} |"
        )


def score_agreement(judges: list, images: torch.Tensor, labels: torch.Tensor) -> None:
    """Each classifier's accuracy on the samples, and the share of samples on which every pair agrees."""
    verdicts = [predict(judge, images)[1] for judge in judges]
    accuracies = ", ".join(f"{(v == labels).float().mean().item():.3f}" for v in verdicts)
    agree = (
        torch.stack([a == b for i, a in enumerate(verdicts) for b in verdicts[i + 1 :]])
        .all(dim=0)
        .float()
        .mean()
        .item()
    )
    print(
        f"\n{len(judges)} classifiers (seed 0 = the kept one, then seeds 1 ...) on the first setting's {len(labels)} "
        f"samples: class accuracy {accuracies}; all agree on {agree:.3f} of them"
    )


@torch.no_grad()
def score_contexts(args, model, tokenizer, classifier, held_out, precision, device) -> None:
    """Class accuracy of held-out glyphs completed from k of their own tokens, for each k of --contexts."""
    images, labels = held_out
    picks = torch.cat(
        [torch.nonzero(labels == k)[: args.samples_per_class, 0] for k in range(model.config.num_classes)]
    )
    images, labels = images[picks].to(device), labels[picks].to(device)
    real = patchify(tokenizer.encode(images), model.config.patch_size)  # (b, l, c)
    seq_len = real.shape[1]
    print(
        f"\n{len(labels)} held-out glyphs completed (temperature {args.temperatures[0]:g}, cfg {args.cfgs[0]:g} {args.cfg_schedule}, "
        f"K = min(--num-iters[0], tokens to draw))\n\n| real tokens given | of | class acc. of completions |\n|---|---|---|"
    )
    for context in args.contexts:
        generator = torch.Generator(device).manual_seed(args.seed)
        known = ~mask_from_orders(
            random_orders(len(labels), seq_len, generator=generator, device=device), seq_len - context
        ).bool()
        with autocast(device, precision):
            latents = sample_latents(
                model,
                labels,
                num_iter=min(args.num_iters[0], seq_len - context),
                diffusion_steps=args.diffusion_steps,
                cfg=args.cfgs[0],
                cfg_schedule=args.cfg_schedule,
                head_sampler=args.head_sampler,
                cfg_refresh=args.cfg_refresh,
                temperature=args.temperatures[0],
                generator=generator,
                known_tokens=real,
                known=known,
            )
        completed = tokenizer.decode_latents(latents).float()
        print(
            f"| {context} | {seq_len} | {(predict(classifier, completed)[1] == labels.cpu()).float().mean().item():.3f} |"
        )


def score_checkpoint(args, judge: QualityJudge, device, judges: list) -> tuple:
    try:
        checkpoint = load_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    model, tokenizer = checkpoint.model if args.no_ema else checkpoint.sampling_model, checkpoint.tokenizer
    if args.contexts and model.config.attention == "causal":
        fail("--contexts completes images around known tokens, which needs a bidirectional model; this one is causal")
    if args.contexts and tokenizer.discrete:
        fail("--contexts completes continuous tokens; this checkpoint's tokenizer is discrete")
    if args.contexts and max(args.contexts) >= model.config.seq_len:
        fail(
            f"--contexts {max(args.contexts)} leaves no token to draw: the model has {model.config.seq_len} tokens; give fewer"
        )
    train_timesteps = model.head.config.num_train_timesteps if model.config.head_kind == "diffusion" else 0
    for num_iter in args.num_iters:  # K and the head's steps, as sample.py checks them
        check_sampling(
            argparse.Namespace(
                num_iter=num_iter,
                head_sampler=args.head_sampler,
                diffusion_steps=args.diffusion_steps,
                diffusion_steps_last=None,
            ),
            model.config.seq_len,
            model.config.head_kind,
            train_timesteps,
        )
    precision = resolve_precision(args.amp, device)
    classes = list(range(model.config.num_classes))
    weights = "trained weights" if model is checkpoint.model else "EMA weights"
    print(
        f"\n{args.checkpoint} (step {checkpoint.step}, {weights}), {args.head_sampler} {args.diffusion_steps} steps, cfg {args.cfg_schedule}, "
        f"cfg refresh {args.cfg_refresh}, "
        f"{args.samples_per_class * len(classes)} samples x {args.seeds} seeds per setting, "
        f"{'fp32' if precision is None else str(precision).removeprefix('torch.')}; FID in the classifier's features "
        f"against the held-out images (real training images: {judge.fid_floor:.2f})\n"
    )
    print(
        "| temperature | cfg | K | class acc. (mean over seeds) | per seed | FID (mean over seeds) | seconds |\n"
        "|---|---|---|---|---|---|---|"
    )
    first = None
    for temperature, cfg, num_iter in itertools.product(args.temperatures, args.cfgs, args.num_iters):
        started, scores = time.perf_counter(), []
        for seed in range(args.seed, args.seed + args.seeds):
            with autocast(device, precision):
                images, labels = class_samples(
                    model,
                    tokenizer,
                    classes,
                    args.samples_per_class,
                    SamplingConfig(
                        num_iter=num_iter,
                        diffusion_steps=args.diffusion_steps,
                        cfg=cfg,
                        cfg_schedule=args.cfg_schedule,
                        temperature=temperature,
                        head_sampler=args.head_sampler,
                        cfg_refresh=args.cfg_refresh,
                    ),
                    generator=torch.Generator(device).manual_seed(seed),
                )
            scores.append(judge.score(images.float(), labels.cpu()))
            first = first or (images.float(), labels.cpu())
        accuracies = [s["accuracy"] for s in scores]
        print(
            f"| {temperature:g} | {cfg:g} | {num_iter} | {statistics.mean(accuracies):.3f} | "
            f"{', '.join(f'{a:.3f}' for a in accuracies)} | {statistics.mean(s['fid'] for s in scores):.2f} | "
            f"{time.perf_counter() - started:.0f} |"
        )
    if judges:
        score_agreement([judge.classifier, *judges], *first)
    return model, tokenizer, precision


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if not args.tokenizers and args.checkpoint is None:
        fail("nothing to score; pass --tokenizers DIR ... and/or --checkpoint RUN")
    device = pick_device(args.device)
    if (args.contexts or args.agreement) and args.checkpoint is None:
        fail("--contexts and --agreement score a generator; pass --checkpoint RUN too")
    data = scored_data(args)
    classifier, info, train_set, held_out, num_classes = kept_classifier(data, device)
    if args.tokenizers:
        score_tokenizers(args, classifier, held_out, device)
    if args.checkpoint is not None:
        judges = other_classifiers(data, train_set, held_out, num_classes, args.agreement, device)
        judge = QualityJudge.of(classifier, info, train_set, held_out, args.samples_per_class * num_classes)
        model, tokenizer, precision = score_checkpoint(args, judge, device, judges)
        if args.contexts:
            score_contexts(args, model, tokenizer, classifier, held_out, precision, device)


if __name__ == "__main__":
    main()
