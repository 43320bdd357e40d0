"""Train a MAR generator, tokenizer included; one process, or many under torchrun.

The token head is a diffusion loss (the paper's MAR) or, for the discrete baselines, a categorical head with
cross-entropy over the codes of a VQ or FSQ tokenizer made by mar train-tokenizer; a diffusion head on a discrete
tokenizer's code vectors is the paper's third variant.

With no arguments: renders the embedded glyph set (10 classes, 32x32), encodes it with the small KL tokenizer
shipped for it (vae/weights/glyphs-kl, trained by mar train-tokenizer; --tokenizer new trains one in the run), trains
mar-micro (mar-tiny on a GPU) on its latents, then writes checkpoints, a loss log and curve, and
a sample grid under runs/default, and prints the grid's class accuracy (within 15 minutes on two CPU cores, bf16 or
fp32). Optimisation options left out come from the recipe of --model (the paper's for mar-base/large/huge). A run
stopped by SIGTERM saves a checkpoint; --resume continues it exactly.

Examples:
    python train.py
    python train.py --image-size 64 --epochs 20 --output runs/glyphs64
    python train.py --tokenizer runs/default/tokenizer --latent-cache runs/default/latents --epochs 30 --output runs/longer
    python train.py --tokenizer kl16.ckpt --data-path /data/imagenet/train --image-size 256 --patch-size 1 --device cuda
    python train.py --data-path /data/flowers/train --image-size 64 --model mar-base --device cuda
    python train.py --output runs/default --resume
    python train.py --tokenizer runs/tokenizers/vq --head categorical --output runs/vq-ce
    torchrun --nproc_per_node=8 train.py --tokenizer kl16.ckpt --latent-cache /data/in256-kl16 --data-path /data/imagenet/train \
        --image-size 256 --patch-size 1 --model mar-large --amp bf16
"""

import argparse
import json
import sys
import time
from contextlib import nullcontext
from dataclasses import replace
from pathlib import Path

import torch
from safetensors import SafetensorError
from tqdm import tqdm

from mar import MARGenerator, distributed, named_config
from mar.cli.common import (
    class_names,
    dataset_name,
    image_sample,
    open_dataset,
    open_image_folder,
    pick_device,
    sampling_options,
)
from mar.cli.options import (
    Parser,
    check_image_geometry,
    check_sampling,
    check_writable_folder,
    fail,
)
from mar.cli.train_options import CPU_TIME_BUDGET, check_run_options, resolve_tokenizer_options
from mar.cli.train_options import build_parser as options_parser
from mar.cli.train_report import (
    chosen_guidance,
    final_quality,
    held_out_judge,
    mirrored_views,
    quality_count,
    report_tokenizer,
    samples_after_training,
)
from mar.data.image_folder import BadImage
from mar.data.images import from_uint8, save_grid, to_uint8
from mar.data.latents import (
    LatentCacheMismatch,
    LatentSet,
    check_latent_cache,
    latent_set,
    read_latent_cache,
    write_latent_cache,
)
from mar.eval.guidance_choice import OTHER_TEMPERATURE
from mar.precision import resolve_precision
from mar.sampling.config import SamplingConfig
from mar.sampling.grids import class_samples, render_samples
from mar.sampling.loop import sampling_steps
from mar.train.budget import TimeBudget
from mar.train.checkpoint import (
    CheckpointWriteError,
    latest_checkpoint,
    load_checkpoint,
    load_training_state,
)
from mar.train.ema import EMA
from mar.train.loop import TrainingStopped, TrainSettings, check_resume_data, fit, run_data
from mar.train.quality_log import QualityLog
from mar.train.recipes import default_model, recipe_for
from mar.train.run_folder import RunFolderError, RunLock, check_fresh_start, clear_run
from mar.train.run_log import log_image
from vae import KLTokenizer, Tokenizer, fingerprint, load_tokenizer, small_autoencoder, train_and_measure
from vae.embedded import GENERAL_TOKENIZER, GLYPH_TOKENIZER

CPU_SIZES = ("mar-micro", "mar-tiny")  # the named sizes whose recipes are made for it
END_RESERVE_S = 120  # seconds first kept for the quality scores during training, the final grid and its scores
CHOICE_RESERVE_S = 54  # and for choosing the guidance scale and temperature (train_report.CHOICE_SAMPLES x 6 sets)
RESERVE_MARGIN, END_WORK_S = 1.2, 15  # once sampling is timed: the end's samples at that pace x 1.2, and 15 s more


def build_parser() -> Parser:
    """train.py's options (mar/cli/train_options.py), with this module's docstring as the help's description."""
    return options_parser(__doc__)


def parse_args(argv=None) -> argparse.Namespace:
    return resolve_tokenizer_options(build_parser().parse_args(argv))


def train_new_tokenizer(args, dataset, device, output: Path) -> KLTokenizer:
    images = image_sample(dataset, args.tokenizer_images, args.seed)
    held_out = max(1, min(512, len(images) // 10))  # images kept out of tokenizer training to measure it
    torch.manual_seed(args.seed)  # the initial weights, as mar train-tokenizer --kind kl draws them
    if args.tokenizer_init == "general":
        autoencoder = load_tokenizer(GENERAL_TOKENIZER).autoencoder.requires_grad_(True)
        print(
            f"tokenizer: fine-tuning the general tokenizer shipped in {GENERAL_TOKENIZER} for {args.tokenizer_steps} steps"
        )
    else:
        autoencoder = small_autoencoder(
            args.tokenizer_channels, args.tokenizer_stride, args.tokenizer_width, args.tokenizer_initial_logvar
        )
    tokenizer = KLTokenizer(autoencoder, kl_weight=args.tokenizer_kl_weight, pixel_loss=args.tokenizer_pixel_loss)
    metrics = train_and_measure(
        tokenizer,
        images.to(device),
        held_out,
        steps=args.tokenizer_steps,
        batch_size=args.tokenizer_batch_size,
        precision=resolve_precision(args.amp, device),
        generator=torch.Generator(device).manual_seed(args.seed),
        progress=not args.no_progress,
    )
    tokenizer.save(output / "tokenizer")
    (output / "tokenizer" / "metrics.json").write_text(
        json.dumps(
            metrics
            | {
                "kind": "kl",
                "init": args.tokenizer_init,
                "held_out": held_out,
                "pixel_loss": args.tokenizer_pixel_loss,
                "initial_logvar": args.tokenizer_initial_logvar,
            },
            indent=2,
        )
    )
    print(
        f"tokenizer: PSNR {metrics['psnr']:.2f} dB on {held_out} held-out images, "
        f"latent shift {tokenizer.shift:.4f} scale {tokenizer.scale:.4f}, saved to {output / 'tokenizer'}"
    )
    return tokenizer


def open_tokenizer(source: str, head: str, device) -> Tokenizer:
    try:
        tokenizer = load_tokenizer(source)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if head == "categorical" and not tokenizer.discrete:
        fail(
            f"tokenizer {source} is a continuous {tokenizer.kind} tokenizer; --head categorical needs a VQ or FSQ "
            "tokenizer (train one with `mar train-tokenizer --kind vq`), or use --head diffusion"
        )
    return tokenizer.to(device)


def cached_latents(
    args, tokenizer, dataset, output: Path, flips: bool, resuming: bool, checked: dict | None = None
) -> LatentSet:
    """Latents from the cache folder when it matches this run, else encoded now into it.

    The folder is ``--latent-cache`` (a mismatch there is an error) or ``<output>/latents`` (rewritten on a mismatch,
    unless the run is resumed: its own cache then must match).
    """
    directory = Path(args.latent_cache or output / "latents")
    name = dataset_name(args)
    try:
        try:
            manifest = checked or check_latent_cache(directory, tokenizer, args.image_size, name, flips)
        except (FileNotFoundError, LatentCacheMismatch) as error:
            if isinstance(error, LatentCacheMismatch) and (args.latent_cache is not None or resuming):
                raise
            manifest = write_latent_cache(
                tokenizer,
                dataset,
                directory,
                args.image_size,
                name,
                flips,
                num_workers=args.num_workers,
                progress=not args.no_progress,
            )
        latents = latent_set(read_latent_cache(directory, manifest))
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    except (OSError, SafetensorError) as error:  # a full disk or a read-only folder while the cache is written
        fail(
            f"latent cache {directory} could not be written ({type(error).__name__}: {error}); free disk space or "
            "make the folder writable (or pass --latent-cache on another disk), then run the command again"
        )
    if distributed.rank() == 0:
        print(f"latents: {len(latents)} images x {manifest['views']} views from {directory}")
    return latents


def check_cache_before_rendering(args, tokenizer, output: Path) -> dict | None:
    """A cache that cached_latents would refuse is refused now, before the data is rendered or read; the manifest
    of one that matches (so cached_latents need not hash the tokenizer again), None when there is none yet."""
    directory = Path(args.latent_cache or output / "latents")
    flips = args.flip if args.flip is not None else (None if args.data_path is not None else False)
    try:
        return check_latent_cache(directory, tokenizer, args.image_size, dataset_name(args), flips)
    except FileNotFoundError:
        return None  # no cache yet: it is written
    except LatentCacheMismatch as error:
        fail(str(error))


def resolve_recipe(args, world: int, device) -> argparse.Namespace:
    """Resolves ``--model auto``, then fills every optimisation option left out from the recipe of ``--model`` (its
    CPU fp32 one on a CPU in fp32)."""
    precision = resolve_precision(args.amp, device)
    if args.model == "auto":
        args.model = default_model(device.type)
    args.recipe = recipe_for(args.model, device.type, precision)
    recipe = args.recipe
    for name in ("lr_schedule", "weight_decay", "grad_clip", "ema_decay"):
        if getattr(args, name) is None:
            setattr(args, name, getattr(recipe, name))
    if args.batch_size is None:
        args.batch_size = recipe.batch_per_process * world
    if args.lr is None:
        args.lr = (args.blr if args.blr is not None else recipe.blr) * args.batch_size / 256
    return args


def time_budget(args, device, started: float) -> TimeBudget | None:
    """When the command must end under --time-budget, keeping a first guess of the time the samples and scores during
    and after training take (revised once the run has timed its own sampling), or None without a budget."""
    budget = args.time_budget
    if budget is None:
        budget = CPU_TIME_BUDGET if device.type == "cpu" and args.model in CPU_SIZES else 0
    if not budget:
        return None
    if args.quality == "off":
        reserve = END_RESERVE_S / 2
    else:
        reserve = END_RESERVE_S + (CHOICE_RESERVE_S if args.cfg is None else 0)
    return TimeBudget(started + 60 * budget, reserve)


def revised_reserve(seconds_per_sample: float, samples: int) -> float:
    """Seconds to keep after training for ``samples`` samples and their scores at the measured pace, and the end's
    other work (the checkpoint's guidance record, plots, metrics)."""
    return RESERVE_MARGIN * seconds_per_sample * samples + END_WORK_S


def schedule_length(args, steps_per_epoch: int) -> tuple[int, int]:
    """(optimizer steps, warmup steps): --steps, else --epochs, else the recipe's length; --warmup-epochs, else the
    recipe's share of warmup over that length."""
    recipe_steps, recipe_warmup = args.recipe.schedule(steps_per_epoch)
    if args.steps is not None:
        steps = args.steps
    else:
        steps = args.epochs * steps_per_epoch if args.epochs is not None else recipe_steps
    if args.warmup_epochs is not None:
        return steps, round(args.warmup_epochs * steps_per_epoch)
    return steps, round(steps * recipe_warmup / recipe_steps)


def config_overrides(args) -> dict:
    """The attention, the order and the mask-ratio law that the command line sets; the others stay the named size's."""
    given = {
        "attention": args.attention,
        "order": args.order,
        "mask_ratio_min": args.mask_ratio_min,
        "mask_ratio_std": args.mask_ratio_std,
    }
    return {name: value for name, value in given.items() if value is not None}


def head_changes(args, tokenizer) -> dict:
    """The head config's fields that the command line sets; --head-width and --head-depth left out keep the named
    size's, and a categorical head takes the tokenizer's codebook (it has no depth, steps or timesteps per z)."""
    if args.head == "categorical":
        given = {"width": args.head_width, "codebook_size": tokenizer.codebook_size}
    else:
        given = {
            "width": args.head_width,
            "depth": args.head_depth,
            "diffusion_batch_mul": args.diffusion_batch_mul,
            "num_sampling_steps": args.diffusion_steps,
        }
    return {name: value for name, value in given.items() if value is not None}


def resume_point(args, output: Path):
    """(checkpoint, training state) of the latest checkpoint when --resume finds one, else (None, None)."""
    try:
        latest = latest_checkpoint(output) if args.resume else None
        if latest is None:
            if args.resume:
                print(f"resume: no checkpoint in {output / 'checkpoints'} yet; starting from step 0")
            return None, None
        return load_checkpoint(latest, "cpu"), load_training_state(latest)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))


def run_tokenizer(args, resumed, device) -> Tokenizer | None:
    """The resumed run's tokenizer, or the one --tokenizer names; None when a new one is to be trained here."""
    if resumed is not None:
        if args.tokenizer_named and fingerprint(open_tokenizer(args.tokenizer, args.head, "cpu")) != fingerprint(
            resumed.tokenizer
        ):
            fail(
                f"--tokenizer {args.tokenizer} is not the tokenizer of the run being resumed in {args.output}; "
                "drop --tokenizer (a resumed run keeps its own) or start a new --output"
            )
        return resumed.tokenizer.to(device)
    if args.tokenizer != "new":
        return open_tokenizer(args.tokenizer, args.head, device)
    if args.head == "categorical":
        fail(
            "--head categorical needs a discrete --tokenizer (train one with `mar train-tokenizer --kind vq` or "
            "`--kind fsq`); only a KL tokenizer is trained here by default"
        )
    return None


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.time()
    device = distributed.init_from_environment(pick_device(args.device))
    rank, world = distributed.rank(), distributed.world_size()
    args = resolve_recipe(args, world, device)
    check_run_options(args, world)
    output = check_writable_folder(args.output, "--output")
    try:
        with RunLock(output) if rank == 0 else nullcontext():
            check_fresh_start(output, args.resume, args.overwrite)
            train_run(args, device, output, started)
    except RunFolderError as error:
        fail(str(error))
    except BadImage as error:
        fail(error.one_line() if isinstance(error, BadImage) else str(error))
    except KeyboardInterrupt:
        print(
            f"error: interrupted; the checkpoints in {output / 'checkpoints'} are intact (a stopped run continues with "
            f"--output {output} --resume)",
            file=sys.stderr,
        )
        raise SystemExit(130) from None
    finally:
        distributed.shutdown()


def train_run(args, device, output: Path, started: float) -> None:
    """Every check first (configs, checkpoints, data settings), then data, tokenizer, latents, training and samples."""
    rank, world = distributed.rank(), distributed.world_size()
    resumed, state = resume_point(args, output)
    tokenizer = run_tokenizer(args, resumed, device)
    if resumed is None and args.tokenizer == str(GLYPH_TOKENIZER) and rank == 0:
        print(f"tokenizer: the glyph tokenizer shipped in {GLYPH_TOKENIZER} (--tokenizer new trains one in the run)")
    stride, channels = (
        (tokenizer.stride, tokenizer.channels) if tokenizer else (args.tokenizer_stride, args.tokenizer_channels)
    )
    check_image_geometry(args.image_size, stride, args.patch_size)
    folder = open_image_folder(args)
    classes = class_names(args, folder)
    config = named_config(
        args.model,
        num_classes=len(classes),
        latent_channels=channels,
        latent_size=args.image_size // stride,
        patch_size=args.patch_size,
        **config_overrides(args),
        compat=args.compat or "default",  # recorded in the config: a resume with another one is refused
    ).with_head(args.head, **head_changes(args, tokenizer))
    train_timesteps = config.head.num_train_timesteps if args.head == "diffusion" else 0
    check_sampling(args, config.seq_len, args.head, train_timesteps)
    source_path = latest_checkpoint(output) if resumed is not None else args.init_from
    source = resumed or (args.init_from and load_or_fail(args.init_from))
    if source is not None and (differences := config.differences(source.model.config)):
        fail(
            f"checkpoint {source_path} was trained with another config (requested != saved): {'; '.join(differences)}; "
            "match these options or start a new --output"
        )
    precision = resolve_precision(args.amp, device)
    num_images = args.num_images if folder is None else len(folder)
    if args.batch_size > num_images:
        if folder is not None:  # a small folder: an unreadable image is named first (BadImage), not the batch
            num_images = sum(folder[i] is not None for i in range(len(folder)))
        fail(f"--batch-size {args.batch_size} is larger than the dataset ({num_images} images); lower it")
    settings = TrainSettings(
        steps=0,  # set with the warmup once the latents are counted (unreadable images may be skipped)
        batch_size=args.batch_size,
        lr=args.lr,
        warmup_steps=0,
        lr_schedule=args.lr_schedule,
        weight_decay=args.weight_decay,
        grad_clip=args.grad_clip,
        grad_accum=args.grad_accum,
        ema_decay=args.ema_decay,
        precision=precision,
        seed=args.seed,
        save_every=args.save_every,
        keep_checkpoints=args.keep_checkpoints,
        max_bad_steps=args.max_bad_steps,
        stop_after=args.stop_after_steps,
        budget=time_budget(args, device, started),
        log_every=args.log_every,
        progress=not args.no_progress,
        dataset=dataset_name(args),
    )
    if state is not None:  # the image count is compared once the latents are read (unreadable images may be skipped)
        try:
            check_resume_data(
                state.data, {k: v for k, v in run_data(num_images, settings).items() if k != "num_images"}
            )
        except ValueError as error:
            fail(str(error))

    known_tokenizer_cache = tokenizer is not None and (args.latent_cache is not None or state is not None)
    checked = check_cache_before_rendering(args, tokenizer, output) if known_tokenizer_cache else None

    # Everything above only read files; from here on the run writes.
    if args.overwrite and rank == 0:
        clear_run(output)
    dataset, classes = open_dataset(args, folder)
    if rank == 0:
        print(f"data: {len(dataset)} images of {len(classes)} classes at {args.image_size}x{args.image_size}")
    judge, held_out = None, None
    if args.quality == "on" or (args.flip is None and args.data_path is not None):  # rank 0 trains the classifier
        if rank == 0:
            judge, held_out = held_out_judge(args, dataset, classes, device)
        distributed.barrier()
        if rank != 0:  # the others find it in --cache-dir
            judge, held_out = held_out_judge(args, dataset, classes, device, verbose=False)
    flips = mirrored_views(args, judge and judge.classifier, held_out, len(classes), verbose=rank == 0)
    if tokenizer is None:  # rank 0 trains it; the others read what it saved
        if rank == 0:
            train_new_tokenizer(args, dataset, device, output)
        distributed.barrier()
        tokenizer = open_tokenizer(str(output / "tokenizer"), args.head, device)
    tokenizer_record = report_tokenizer(tokenizer, judge, held_out) if args.quality == "on" and rank == 0 else None
    latents = cached_latents(args, tokenizer, dataset, output, flips, resuming=state is not None, checked=checked)
    latents = latents.to(device)

    torch.manual_seed(args.seed)  # the initial weights depend on the seed only, whatever ran before
    model = MARGenerator(config, tokenizer.latent_codebook() if args.head == "categorical" else None).to(device)
    if source is not None:
        model.load_state_dict(source.model.state_dict())
    model.backbone.grad_checkpointing = args.grad_checkpointing
    ema = EMA(model, args.ema_decay)
    if resumed is not None and resumed.ema is not None:
        ema.module.load_state_dict(resumed.ema.state_dict())
    steps_per_epoch = max(1, len(latents) // args.batch_size)
    steps, warmup_steps = schedule_length(args, steps_per_epoch)
    settings = replace(settings, steps=steps, warmup_steps=warmup_steps)
    if rank == 0:
        print(
            f"model: {args.model}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
            f"{config.attention} attention in {config.order} order, {args.head} head on a {tokenizer.kind} tokenizer, {config.seq_len} tokens of {config.token_dim} channels; "
            f"{world} process(es), global batch {args.batch_size} "
            f"(x{args.grad_accum} accumulation), {steps} steps ({steps / steps_per_epoch:.3g} epochs), lr {args.lr:.3g}, "
            f"{args.lr_schedule} after "
            f"{settings.warmup_steps} warmup steps, "
            f"EMA {args.ema_decay}, {'fp32' if precision is None else str(precision).removeprefix('torch.')}"
            + (f"; resuming at step {state.step}" if state is not None else "")
        )

    quality = (
        QualityLog(
            judge,
            output,
            len(classes),
            sampling_options(args),
            quality_count(args, len(classes)),
            args.seed,
            resume_step=state.step if state is not None else 0,
        )
        if args.quality == "on" and rank == 0
        else None
    )

    def during_training(step: int, total: int) -> None:
        point = quality.point_due(step, total) if quality is not None else None
        if point is not None:
            began = time.time()
            scores = quality.score(step, ema.module, tokenizer, point=point)
            if settings.budget is not None:
                per_sample = (time.time() - began) / scores["count"]
                settings.budget.reserve_s = revised_reserve(per_sample, samples_after_training(args, quality))
            tqdm.write(
                f"step {step}: {scores['count']} samples, class accuracy {scores['accuracy']:.3f}, FID {scores['fid']:.2f}"
            )
        if args.sample_every and step % args.sample_every == 0:
            path = draw_samples(
                ema.module, tokenizer, classes, args, device, output / "samples" / f"step-{step:08d}.png", per_class=4
            )
            log_image(output, "samples/during training", path, step)

    try:
        result = fit(
            model,
            ema,
            latents,
            tokenizer,
            settings,
            device,
            output,
            {"classes": classes, "image_size": args.image_size},
            resume=state,
            on_step=during_training if rank == 0 else None,
        )
    except (ValueError, TrainingStopped, CheckpointWriteError) as error:
        fail(str(error))
    if rank == 0:
        trained = result["loss"] is not None
        outcome = f"last loss {result['loss']:.4f}" if trained else "already trained to its last step; nothing to train"
        print(
            f"checkpoint: {latest_checkpoint(output)} (step {result['step']}, {outcome}); "
            f"log: {output / 'log.csv'}, {output / 'loss.png'}"
        )
        if result["stopped_by"] != "end":
            print(
                f"stopped by {result['stopped_by']} at step {result['step']}; continue with --output {output} --resume"
            )
        else:
            train_time = time.time() - started
            guidance = chosen_guidance(args, quality, ema.module, tokenizer, output)
            sampling = sampling_options(args, guidance and guidance.sampling())
            grid = final_grid(ema.module, tokenizer, classes, args, device, output / "samples.png", sampling)
            log_image(output, "samples/final", output / "samples.png", result["step"])
            print(
                f"samples: {output / 'samples.png'} (EMA weights, {sampling_steps(config, args.num_iter)} steps, "
                f"{args.head_sampler} head with "
                f"{args.diffusion_steps} steps, cfg={sampling.cfg:g}, temperature={sampling.temperature:g})"
            )
            record = {
                "steps": result["step"],
                "final_loss": result["loss"],
                "seconds_to_checkpoint": round(train_time, 1),
                "precision": "fp32" if precision is None else str(precision).removeprefix("torch."),
            }
            if not trained:  # the training figures stay those of the run that trained it
                record.update(previous_training_record(output))
            record["mirrored_views"] = flips
            record["cfg"], record["temperature"] = sampling.cfg, sampling.temperature
            if guidance is not None and guidance.scores:
                record["guidance_choice"] = {f"{cfg:g}": scores for cfg, scores in guidance.scores.items()}
                if guidance.at_other_temperature is not None:
                    record["temperature_choice"] = {f"{OTHER_TEMPERATURE:g}": guidance.at_other_temperature}
            if quality is not None:
                record |= {"tokenizer": tokenizer_record} | final_quality(
                    quality, grid, ema.module, tokenizer, result["step"], sampling
                )
            print(f"wall time: {time.time() - started:.0f} s ({train_time:.0f} s to the checkpoint)")
            (output / "metrics.json").write_text(json.dumps(record, indent=2) + "\n")


def previous_training_record(output: Path) -> dict:
    """steps, final loss, time and precision from the metrics.json the training run wrote, if it is there."""
    path = output / "metrics.json"
    if not path.is_file():
        return {}
    kept = ("steps", "final_loss", "seconds_to_checkpoint", "precision", "guidance_choice", "temperature_choice")
    return {key: value for key, value in json.loads(path.read_text()).items() if key in kept}


def load_or_fail(path: str):
    try:
        return load_checkpoint(path, "cpu")
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))


def final_grid(
    model, tokenizer, classes, args, device, path: Path, sampling: SamplingConfig
) -> tuple[torch.Tensor, torch.Tensor]:
    """The grid of --samples-per-class images per class, saved to ``path``; its images as the PNG holds them, and labels."""
    model.eval()
    images, labels = class_samples(
        model,
        tokenizer,
        list(range(len(classes))),
        args.samples_per_class,
        sampling,
        generator=torch.Generator(device).manual_seed(args.seed),
    )
    save_grid(images, classes, path)
    return from_uint8(to_uint8(images)), labels.cpu()


def draw_samples(model, tokenizer, classes, args, device, path: Path, per_class: int) -> Path:
    model.eval()
    return render_samples(
        model,
        tokenizer,
        classes,
        per_class,
        path,
        sampling_options(args),
        generator=torch.Generator(device).manual_seed(args.seed),
    )
