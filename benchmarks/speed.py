"""Speed against quality of the sampler settings, and training speed, each measured side by side in one run.

1. Quality: a checkpoint (default: runs/default, as `python train.py` writes it; --data-path for a run on an image
   folder) draws --samples images (balanced over classes) with every sampler setting and --seeds seeds, at each
   --guidance setting: "cli" (cfg 2 constant, temperature 0.3: the command line's defaults) and "linear" (cfg 3
   linear, temperature 1). Each draw is scored by the data's held-out feature classifier (FID against held-out
   images, class accuracy; kept in --cache-dir) and timed (images/s of sample_latents, tokenizer decoding
   excluded). The table gives the mean and spread over seeds and each setting's images/s as a ratio to the first
   setting (DDPM-100 with exact guidance and no savings), measured in the same run; speed-vs-fid-*.png plot it.
2. Exact savings: DDPM-100's images/s with each saving of SamplingConfig.reuse alone, all and none, in alternating
   rounds (their samples equal the plain computation's: tests/test_fast_sampling.py).
3. Speed on the official-code config (width 256, 4 + 4 blocks of 4 heads, buffer 64, dropout 0.1, 10 classes,
   64 tokens of 16 channels, head 3 x 256, 4 timesteps per z; untrained): sampling images/s per setting at batch 16,
   K=16, cfg 3 linear, temperature 1; training images/s at batch 32 (AdamW 0.9/0.95, weight decay 0.02) through the
   training loop, optimised path and unoptimised one alternated in rounds, as a ratio. This part runs in fp32, as
   the official code was timed; --amp applies to the rest.

A setting is SAMPLER:STEPS, or SAMPLER:FIRST-LAST for head steps annealed over the K autoregressive steps; a suffix @N
(dpm++:10@2) runs guidance's unconditional half of the backbone every N autoregressive steps only (cfg_refresh);
",cache=R" turns on the token cache refreshed every R steps (",growth=G" also at each step that sees G times the
visible tokens of its last refresh; ",buffer=kept" keeps its buffer rows too), ",reuse=none" turns off the exact
savings, ",k=K" sets the autoregressive steps of that setting alone (default --num-iter), and
",head=guided" draws with the checkpoint's guided head (`mar distill-head`; on the official config, an undistilled copy
of its head, for speed only).

Examples:
    python benchmarks/speed.py --checkpoint runs/default
    python benchmarks/speed.py --checkpoint runs/textures --data-path data/textures --parts quality exact
    python benchmarks/speed.py --settings ddpm:100,reuse=none dpm++:5@16,cache=4 --samples 200 --seeds 1
    python benchmarks/speed.py --parts official training --device cuda
"""

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import replace
from pathlib import Path

import torch
from shared import OFFICIAL_MIRROR

from diffloss.guided_head import GuidedHead
from mar import MARGenerator, sample_latents
from mar.cli.common import dataset_name, pick_device
from mar.cli.options import POSITIVE, SEED, Parser, fail, text
from mar.data.glyphs import glyph_dataset
from mar.data.image_folder import ImageFolderDataset
from mar.data.latents import LatentSet
from mar.eval.quality import reference_set, sample_metrics
from mar.eval.reference_data import dataset_classifier
from mar.precision import resolve_precision
from mar.sampling.config import REUSE, SamplingConfig
from mar.train.checkpoint import load_checkpoint
from mar.train.ema import EMA
from mar.train.loop import TrainSettings, fit
from mar.train.run_log import draw_curve
from vae import KLTokenizer, small_autoencoder

DEFAULT_SETTINGS = [
    "ddpm:100,reuse=none",  # the paper's sampler with exact guidance, as before the exact savings: the reference
    "ddpm:100",  # every exact saving
    "ddpm:100,cache=16",  # the token cache alone
    "ddpm:10",  # few head steps alone
    "dpm++:5@16",  # the earlier fastest setting
    "ddpm:10@16",
    "ddpm:10@16,cache=4",
    "ddpm:10@16,cache=16",  # the earlier --fast preset
    "ddpm:10@16,cache=16,buffer=kept",
    "ddpm:10@16,cache=4,buffer=kept",  # the earlier --fast preset (without its former extra pass at step 2)
    "ddpm:10@16,cache=16,growth=2,buffer=kept",  # the cache refreshed by growth
    "ddpm:10@4,cache=16,growth=2,buffer=kept,k=8",  # the --fast preset
    "ddpm:10,head=guided",  # the guided head alone
    "ddpm:10@4,cache=16,growth=2,buffer=kept,k=8,head=guided",  # the --fast preset with it
]


OPTIONS = {  # ",key=value" after a setting
    "cache": ("token_cache", int),
    "buffer": ("cache_buffer", lambda value: {"kept": True, "fresh": False}[value]),
    "growth": ("cache_growth", float),
    "reuse": ("reuse", str),
    "k": ("num_iter", int),
    "head": ("guided_head", lambda value: {"guided": True, "teacher": False}[value]),
}
# The approximate options of MAR's backbone; the exact savings (reuse) change nothing a causal model draws.
BACKBONE_OPTIONS = ("cfg_refresh", "token_cache", "cache_buffer", "cache_growth")


def setting(value: str) -> dict:
    """'dpm++:10' -> {head_sampler: dpm++, diffusion_steps: 10}; 'ddpm:100-10' anneals from 100 to 10; a suffix '@N'
    runs guidance's unconditional half every N autoregressive steps only (cfg_refresh, approximate); then
    ',cache=R' turns the token cache on with refresh R, ',growth=G' refreshes it by growth G too, ',buffer=kept' keeps
    its buffer rows, ',reuse=NAMES' picks the exact savings (default all), ',k=K' the autoregressive steps and
    ',head=guided' the checkpoint's guided head."""
    head, *extras = value.split(",")
    try:
        sampler, steps = head.split(":")
        steps, _, refresh = steps.partition("@")
        first, _, last = steps.partition("-")
        parsed = {
            "head_sampler": sampler,
            "diffusion_steps": int(first),
            "diffusion_steps_last": int(last) if last else None,
            "cfg_refresh": int(refresh) if refresh else 1,
        }
        for extra in extras:
            key, _, option = extra.partition("=")
            field, kind = OPTIONS[key]
            parsed[field] = kind(option)
        SamplingConfig(**parsed)
    except (ValueError, KeyError) as error:
        raise argparse.ArgumentTypeError(
            f"{value!r} is not SAMPLER:STEPS[-LAST][@N][,cache=R][,growth=G][,buffer=kept][,reuse=NAMES][,k=K][,head=guided] (e.g. dpm++:10@2,cache=4): {error}"
        ) from None
    if min(parsed["diffusion_steps"], parsed["diffusion_steps_last"] or 1) < 1:
        raise argparse.ArgumentTypeError(f"{value!r}: the head steps must be positive")
    return parsed | {"name": value}


setting.validates = True


def sampling_fields(chosen: dict) -> dict:
    """A parsed setting's SamplingConfig fields (all but its name)."""
    return {key: value for key, value in chosen.items() if key != "name"}


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument("--checkpoint", type=text, default="runs/default", help="a run folder or checkpoint")
    parser.add_argument(
        "--data-path", type=text, default=None, help="the image folder the checkpoint was trained on (default: glyphs)"
    )
    parser.add_argument("--cache-dir", type=text, default="data_cache", help="where the held-out classifier is kept")
    parser.add_argument(
        "--guidance",
        nargs="+",
        choices=list(GUIDANCE),
        default=list(GUIDANCE),
        help="cli: cfg 2 constant, temperature 0.3 (the command line's defaults); linear: cfg 3 linear, temperature 1",
    )
    parser.add_argument(
        "--settings",
        type=setting,
        nargs="+",
        default=[setting(s) for s in DEFAULT_SETTINGS],
        help="head sampler settings; the first is the reference the ratios divide by",
    )
    parser.add_argument("--samples", type=POSITIVE, default=1000, help="images per setting and seed (quality part)")
    parser.add_argument("--seeds", type=POSITIVE, default=3, help="seeds per setting (quality part)")
    parser.add_argument("--num-iter", type=POSITIVE, default=16, help="autoregressive steps K")
    parser.add_argument(
        "--speed-samples", type=POSITIVE, default=500, help="images per round and saving (exact savings part)"
    )
    parser.add_argument("--batch-size", type=POSITIVE, default=250, help="images sampled at once (quality part)")
    parser.add_argument(
        "--train-steps", type=POSITIVE, default=30, help="training steps per round and path (speed part)"
    )
    parser.add_argument(
        "--rounds", type=POSITIVE, default=3, help="alternating rounds (exact savings; the two training paths)"
    )
    parser.add_argument(
        "--parts",
        nargs="+",
        choices=PARTS,
        default=list(PARTS),
        help="quality and exact need --checkpoint; official (sampling) and training run on untrained weights",
    )
    parser.add_argument(
        "--output", type=text, default="runs/speed", help="folder for results.json, the plot and the classifier"
    )
    parser.add_argument("--seed", type=SEED, default=0, help="first seed")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--amp", default="none", choices=["auto", "bf16", "none"], help="autocast of the quality part's sampling"
    )
    return parser


def timed_draw(
    model, labels, seed: int, batch_size: int, precision, head=None, **sampling
) -> tuple[torch.Tensor, float]:
    """Latents for ``labels`` and the images/s of drawing them (device synchronised); ``head``: a GuidedHead for the
    settings that draw with one."""
    device = labels.device
    generator = torch.Generator(device).manual_seed(seed)
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    started = time.perf_counter()
    with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
        latents = torch.cat(
            [
                sample_latents(model, chunk, generator=generator, head=head, **sampling)
                for chunk in labels.split(batch_size)
            ]
        )
    if device.type == "cuda":
        torch.cuda.synchronize(device)
    return latents.float(), len(labels) / (time.perf_counter() - started)


PARTS = ("quality", "exact", "official", "training")
GUIDANCE = {  # the two guidance settings every table is measured at
    "cli": {"cfg": 2.0, "cfg_schedule": "constant", "temperature": 0.3},  # the command line's defaults
    "linear": {"cfg": 3.0, "cfg_schedule": "linear", "temperature": 1.0},  # the paper's kind of schedule
}


def judge_for(args, checkpoint, device):
    """The data's held-out classifier (kept in --cache-dir) and its real-image reference statistics."""
    size, classes = checkpoint.image_size, len(checkpoint.classes)
    data = argparse.Namespace(
        data_path=args.data_path, image_size=size, data_seed=0, num_images=10_000, cache_dir=args.cache_dir
    )
    if args.data_path is None:
        dataset = glyph_dataset(10_000, size, 0, cache_dir=args.cache_dir)
    else:
        dataset = ImageFolderDataset(args.data_path, size, flip=False)
    classifier, info, _, held_out = dataset_classifier(
        data, dataset, dataset_name(data), classes, device, progress=False
    )
    print(f"feature classifier: held-out accuracy {info['test_accuracy']:.3f} ({info['folder']})")
    return classifier, reference_set(classifier, held_out[0])


def quality(args, device, precision) -> dict[str, list[dict]]:
    """Per guidance setting: every sampler setting's FID, class accuracy and images/s over seeds."""
    try:
        checkpoint = load_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(f"{error}; train one with `python train.py`, or pass --parts official training")
    model, tokenizer = checkpoint.sampling_model, checkpoint.tokenizer
    refuse_backbone_options(model.config, args.settings)
    if checkpoint.guided_head is None and any(chosen.get("guided_head") for chosen in args.settings):
        fail(
            f"a setting draws with head=guided, and {args.checkpoint} has no guided head; write one with "
            f"`mar distill-head --checkpoint {args.checkpoint}`, or leave those settings out"
        )
    classifier, reference = judge_for(args, checkpoint, device)
    labels = torch.arange(args.samples, device=device) % len(checkpoint.classes)
    tables = {}
    for guidance in args.guidance:
        print(f"{guidance}: {GUIDANCE[guidance]}, K={args.num_iter}, {args.samples} samples x {args.seeds} seeds")
        rows = []
        for chosen in args.settings:
            sampling = {"num_iter": args.num_iter} | sampling_fields(chosen) | GUIDANCE[guidance]
            runs = []
            for seed in range(args.seed, args.seed + args.seeds):
                latents, rate = timed_draw(
                    model, labels, seed, args.batch_size, precision, checkpoint.guided_head, **sampling
                )
                images = torch.cat([tokenizer.decode_latents(chunk) for chunk in latents.split(args.batch_size)])
                runs.append(sample_metrics(classifier, reference, images, labels) | {"images_per_s": rate})
            row = {
                "setting": chosen["name"],
                **{
                    f"{key}_{stat}": fn([r[key] for r in runs])
                    for key in ("fid", "accuracy", "images_per_s")
                    for stat, fn in (("mean", statistics.mean), ("std", spread))
                },
            }
            row["ratio"] = row["images_per_s_mean"] / (rows[0] if rows else row)["images_per_s_mean"]
            rows.append(row)
            print(
                f"  {row['setting']:24s} {row['images_per_s_mean']:8.1f} images/s {row['ratio']:6.2f}x   "
                f"FID {row['fid_mean']:.3f} ± {row['fid_std']:.3f}   "
                f"accuracy {row['accuracy_mean']:.3f} ± {row['accuracy_std']:.3f}"
            )
        tables[guidance] = rows
    return tables


def refuse_backbone_options(config, settings: list[dict]) -> None:
    """A causal model's backbone already keeps its keys and values; the MAR backbone's options do not apply to it."""
    if config.attention != "causal":
        return
    exact = SamplingConfig()
    for chosen in settings:
        if any(chosen.get(key, getattr(exact, key)) != getattr(exact, key) for key in BACKBONE_OPTIONS):
            fail(
                f"setting {chosen['name']} sets MAR's backbone options ({', '.join(BACKBONE_OPTIONS)}), which do not "
                "apply to this causal checkpoint; give head settings only (SAMPLER:STEPS), or time its cache with "
                "benchmarks/causal_cache.py"
            )


def exact_savings(args, device, precision) -> dict[str, list[dict]]:
    """images/s of DDPM-100 with each exact saving alone, all of them and none, in alternating rounds (their samples
    are the plain computation's up to rounding: tests/test_fast_sampling.py)."""
    model = load_checkpoint(args.checkpoint, device).sampling_model
    if model.config.attention == "causal":
        fail(
            "the exact savings are MAR's (bidirectional) sampler's; this checkpoint is causal: leave out --parts exact"
        )
    labels = torch.arange(args.speed_samples, device=device) % model.config.num_classes
    names = ["none", *REUSE, "all"]
    tables = {}
    for guidance in args.guidance:
        seconds = {name: 0.0 for name in names}
        for round_ in range(args.rounds + 1):  # round 0 warms up
            for name in names:
                sampling = GUIDANCE[guidance] | {"reuse": name, "num_iter": args.num_iter}
                _, rate = timed_draw(model, labels, round_, args.batch_size, precision, **sampling)
                seconds[name] += (len(labels) / rate) if round_ else 0.0
        rates = {name: len(labels) * args.rounds / seconds[name] for name in names}
        tables[guidance] = [
            {"reuse": name, "images_per_s": rates[name], "ratio": rates[name] / rates["none"]} for name in names
        ]
        print(f"exact savings, DDPM-100, {guidance}: " + ", ".join(f"{n} {rates[n]:.1f}/s" for n in names))
    return tables


def spread(values: list[float]) -> float:
    return statistics.stdev(values) if len(values) > 1 else 0.0


def official_sampling(args, device, precision) -> list[dict]:
    """images/s per setting on the official-code config (untrained weights: speed only), batch 16, K=16, cfg 3 linear."""
    torch.manual_seed(0)
    model = MARGenerator(OFFICIAL_MIRROR).to(device).eval()
    guided_head = GuidedHead.from_teacher(model.head).eval()  # undistilled: its speed is a distilled one's
    labels = torch.arange(16, device=device) % OFFICIAL_MIRROR.num_classes
    rows = []
    for chosen in args.settings:
        sampling = {"num_iter": 16} | sampling_fields(chosen) | {"cfg": 3.0, "cfg_schedule": "linear"}
        timed_draw(model, labels, 0, 16, precision, guided_head, **sampling)  # warm-up
        rates = [timed_draw(model, labels, seed, 16, precision, guided_head, **sampling)[1] for seed in range(2)]
        rows.append({"setting": chosen["name"], "images_per_s": statistics.mean(rates)})
    for row in rows:
        row["ratio"] = row["images_per_s"] / rows[0]["images_per_s"]
        print(f"  {row['setting']:12s} {row['images_per_s']:8.1f} images/s   {row['ratio']:5.2f}x")
    return rows


def official_training(args, device, precision) -> dict:
    """Training images/s through fit() on the official-code config, the optimised and unoptimised paths alternated."""
    g = torch.Generator().manual_seed(0)
    count = 32 * args.train_steps
    latents = LatentSet(
        torch.randn(count, 1, 16, 8, 8, generator=g),
        0.05 * torch.ones(count, 1, 16, 8, 8),
        torch.randint(0, 10, (count,), generator=g),
    ).to(device)
    torch.manual_seed(0)
    tokenizer = KLTokenizer(small_autoencoder(16, 4, 32)).to(device)  # only its latent scale is used by the draws
    base = TrainSettings(
        steps=args.train_steps,
        batch_size=32,
        lr=1e-4,
        warmup_steps=0,
        weight_decay=0.02,
        ema_decay=0.999,
        precision=precision,
        save_every=10**9,
        log_every=10**9,
        progress=False,
    )
    paths = {"unoptimised": replace(base, optimised=False), "optimised": base}
    seconds = {name: 0.0 for name in paths}
    with tempfile.TemporaryDirectory() as folder:
        for round_ in range(args.rounds + 1):  # round 0 warms up (allocator, first-call costs) and is not counted
            for name, settings in paths.items():
                torch.manual_seed(0)
                model = MARGenerator(OFFICIAL_MIRROR).to(device)
                started = time.perf_counter()
                fit(
                    model,
                    EMA(model, 0.999),
                    latents,
                    tokenizer,
                    settings,
                    device,
                    Path(folder) / name,
                    {"classes": list("0123456789"), "image_size": 32},
                )
                if round_:
                    seconds[name] += time.perf_counter() - started
    rates = {name: 32 * args.train_steps * args.rounds / s for name, s in seconds.items()}
    print(
        f"  unoptimised {rates['unoptimised']:8.1f} images/s   optimised {rates['optimised']:8.1f} images/s   "
        f"{rates['optimised'] / rates['unoptimised']:.2f}x"
    )
    return rates | {"ratio": rates["optimised"] / rates["unoptimised"]}


def plot(tables: dict[str, list[dict]], path: Path) -> None:
    """One curve per guidance setting: FID against images/s, a labelled point per sampler setting."""
    for guidance, rows in tables.items():
        rows = sorted(rows, key=lambda r: r["images_per_s_mean"])
        draw_curve(
            [(row["images_per_s_mean"], row["fid_mean"]) for row in rows],
            path.with_name(f"{path.stem}-{guidance}{path.suffix}"),
            (720, 420),
            f"FID (y) against sampling images/s (x), one point per setting; guidance {guidance}",
            x_label="images/s",
            markers=True,
            labels=[row["setting"] for row in rows],
        )


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    device = pick_device(args.device)
    precision = resolve_precision(args.amp, device)
    output = Path(args.output)
    output.mkdir(parents=True, exist_ok=True)
    cpu = f", {torch.get_num_threads()} threads" if device.type == "cpu" else ""
    print(f"device {device}{cpu}, quality part in {'fp32' if precision is None else precision}")
    results = {"device": str(device), "threads": torch.get_num_threads(), "quality_precision": str(precision or "fp32")}
    if "quality" in args.parts:
        print(f"quality: {args.checkpoint} on {args.data_path or 'the glyphs'}")
        results["quality"] = quality(args, device, precision)
        plot(results["quality"], output / "speed-vs-fid.png")
        print(f"plots: {output}/speed-vs-fid-*.png")
    if "exact" in args.parts:
        results["exact_savings"] = exact_savings(args, device, precision)
    if "official" in args.parts:
        print("official-code config, fp32, sampling (batch 16, K=16, cfg 3 linear):")
        results["official_sampling"] = official_sampling(args, device, None)
    if "training" in args.parts:
        print(f"official-code config, fp32, training (batch 32, {args.train_steps} steps x {args.rounds} rounds):")
        results["official_training"] = official_training(args, device, None)
    (output / "results.json").write_text(json.dumps(results, indent=2))
    print(f"results: {output / 'results.json'}")


if __name__ == "__main__":
    main()
