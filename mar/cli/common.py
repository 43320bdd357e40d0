"""Shared pieces of the command line: device choice, the checkpoint, sampling and data options (option types: options.py)."""

import argparse
from dataclasses import replace
from pathlib import Path

import torch

from mar.cli.options import (
    GROWTH_FACTOR,
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    SEED,
    check_writable_folder,
    fail,
    integer,
    named_type,
    text,
)
from mar.data.glyphs import GLYPH_CLASSES, glyph_dataset
from mar.data.image_folder import ImageFolderDataset
from mar.model.config import COMPAT
from mar.sampling.config import CFG_SCHEDULES, HEAD_SAMPLERS, PRESETS, REUSE, SamplingConfig


def pick_device(name: str) -> torch.device:
    if name == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        return torch.device("mps" if torch.backends.mps.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError:
        fail(f"unknown device {name!r}; use auto, cpu, cuda, cuda:N or mps")
    if device.type == "cuda" and not torch.cuda.is_available():
        fail(f"device {name} was asked for but CUDA is not available here; use --device cpu")
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        fail(
            f"device {name} does not exist: this machine has {torch.cuda.device_count()} CUDA device(s); use cuda:0 ... "
        )
    if device.type == "mps" and not torch.backends.mps.is_available():
        fail(f"device {name} was asked for but MPS is not available here; use --device cpu")
    if device.type not in ("cpu", "cuda", "mps"):
        fail(f"device {name} is not supported here; use auto, cpu, cuda, cuda:N or mps")
    return device


def add_checkpoint_argument(parser, required: bool = True) -> None:
    """--checkpoint as the sampling scripts and the demo take it (mar.interop.hub.open_checkpoint opens it)."""
    parser.add_argument(
        "--checkpoint",
        type=text,
        required=required,
        default=None,
        help="a run folder of train.py (its latest checkpoint), a checkpoints/step-N folder, its weights.safetensors, "
        "a hub folder (mar export-hub) or a hub id org/name in the local Hugging Face cache",
    )


CHOSEN = ("cfg", "temperature")  # the sampling options a run chooses from its data and records in its checkpoint


def add_sampling_arguments(group) -> None:
    """The sampling knobs train.py (for its grids), sample.py and the demo share; defaults from SamplingConfig."""
    default = SamplingConfig()
    group.add_argument("--num-iter", type=POSITIVE, default=default.num_iter, help="autoregressive steps K")
    group.add_argument(
        "--head-sampler",
        default=default.head_sampler,
        choices=HEAD_SAMPLERS,
        help="diffusion head's sampler: ddpm (the paper's, stochastic), ddim or dpm++ (deterministic, few steps)",
    )
    group.add_argument(
        "--diffusion-steps",
        type=POSITIVE,
        default=default.diffusion_steps,
        help="head steps per token (at the first step when annealed)",
    )
    group.add_argument(
        "--diffusion-steps-last",
        type=POSITIVE,
        default=default.diffusion_steps_last,
        help="anneal the head's steps linearly from --diffusion-steps at the first autoregressive step to this at the last",
    )
    group.add_argument(
        "--temperature",
        type=NON_NEGATIVE_NUMBER,
        default=None,
        help="ddpm: scale of the noise added at each step; ddim / dpm++: scale of the starting noise; "
        "categorical head: softmax temperature (default: the one the checkpoint's run chose from its data, else "
        f"{default.temperature:g}; train.py chooses between {default.temperature:g} and 1 after training unless "
        "this or --cfg is given)",
    )
    group.add_argument(
        "--cfg",
        type=NON_NEGATIVE_NUMBER,
        default=None,
        help="classifier-free guidance scale; 1 = none (default: the scale the checkpoint's run chose from its data, "
        f"else {default.cfg:g}; train.py chooses one after training unless this is given, docs/sampling.md)",
    )
    group.add_argument(
        "--cfg-schedule", default=default.cfg_schedule, choices=list(CFG_SCHEDULES), help="guidance schedule"
    )
    group.add_argument(
        "--cfg-refresh",
        type=POSITIVE,
        default=default.cfg_refresh,
        help="run guidance's unconditional half every N autoregressive steps only, reusing its difference "
        "to the conditional z between (approximate, faster; 1 = exact, every step)",
    )
    group.add_argument(
        "--token-cache",
        type=NON_NEGATIVE,
        default=default.token_cache,
        help="keep the backbone's keys and values between steps, running only the new rows, and refresh them every "
        "N steps (approximate, faster; 0 = off)",
    )
    group.add_argument(
        "--cache-growth",
        type=GROWTH_FACTOR,
        default=default.cache_growth,
        help="with --token-cache, refresh also at each step that sees this many times the tokens visible at the last "
        "refresh (2: after 1, 2, 4, 8, ... tokens), where the kept rows are stalest (approximate; 0 = off)",
    )
    group.add_argument(
        "--cache-buffer",
        action=argparse.BooleanOptionalAction,
        default=default.cache_buffer,
        help="with --token-cache, keep the buffer's (class) rows between refreshes too, so a step runs only the new "
        "tokens and the positions it draws (approximate, faster)",
    )
    group.add_argument(
        "--guided-head",
        action=argparse.BooleanOptionalAction,
        default=default.guided_head,
        help="draw with the checkpoint's guided head (`mar distill-head` writes it): one head evaluation per step "
        "under guidance instead of two (approximate; faster for large batches)",
    )
    group.add_argument(
        "--reuse",
        type=REUSE_NAMES,
        default=default.reuse,
        help=f"exact savings: all, none, or some of {','.join(REUSE)} (the samples are the same either way)",
    )
    group.add_argument(
        "--fast",
        action=PresetAction,
        preset="fast",
        help=f"the fast preset: {preset_text('fast')} (options given after it, or set away from their defaults "
        "before it, win)",
    )
    group.add_argument(
        "--compat",
        default=default.compat,
        choices=list(COMPAT),
        help="official: as the official MAR code, the ddpm head chain respaced 0 ... 999 (improved DDPM's), "
        "the last step's linear guidance scale 1 + (cfg - 1)(L - 1) / L, and (train.py) the discretised "
        "head loss at t = 0; None: the checkpoint's own (train.py: default)",
    )


def _reuse_names(text: str) -> str:
    try:
        SamplingConfig(reuse=text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    return text


REUSE_NAMES = named_type("exact savings", _reuse_names)


class PresetAction(argparse.Action):
    """Sets a preset's fields (``PRESETS``) that are still at their defaults when the option is read."""

    def __init__(self, option_strings, dest, preset: str, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=None, **kwargs)
        self.preset = preset

    def __call__(self, parser, namespace, values, option_string=None):
        chosen = SamplingConfig.from_namespace(namespace).with_preset(self.preset)
        for field in PRESETS[self.preset]:
            setattr(namespace, field, getattr(chosen, field))
        setattr(namespace, self.dest, self.preset)


def preset_text(name: str) -> str:
    return ", ".join(f"{field} {value}" for field, value in PRESETS[name].items())


def sampling_options(args: argparse.Namespace, chosen: dict | None = None) -> SamplingConfig:
    """The SamplingConfig that add_sampling_arguments parsed; without --cfg or --temperature, the value ``chosen``
    holds (a checkpoint's ``sampling``: what its run chose from its data) or SamplingConfig's."""
    sampling, default = SamplingConfig.from_namespace(args), SamplingConfig()
    unset = {
        name: float((chosen or {}).get(name, getattr(default, name))) for name in CHOSEN if getattr(args, name) is None
    }
    return replace(sampling, **unset)


def checkpoint_sampling(args: argparse.Namespace, checkpoint, use_ema: bool = True) -> tuple[SamplingConfig, object]:
    """(``sampling_options`` with the checkpoint's chosen defaults, the guided head to draw with or None);
    ``--guided-head`` for a checkpoint without one is a one-line error. The guided head goes with the EMA weights it
    was distilled from."""
    guided_head = checkpoint.guided_head if use_ema else None
    sampling = sampling_options(args, checkpoint.sampling)
    if sampling.guided_head and not use_ema:
        fail("--guided-head goes with the EMA weights it was distilled from; drop --no-ema or --guided-head")
    if sampling.guided_head and guided_head is None:
        fail(
            f"--guided-head: the checkpoint has none; write one with `mar distill-head --checkpoint "
            f"{args.checkpoint}`, or sample without --guided-head"
        )
    return sampling, guided_head if sampling.guided_head else None


def add_data_arguments(parser: argparse.ArgumentParser) -> None:
    data = parser.add_argument_group("data")
    data.add_argument(
        "--data-path",
        type=text,
        default=None,
        help="ImageFolder root (one sub-folder per class); default: the embedded glyph set",
    )
    data.add_argument("--image-size", type=integer(1, 4096), default=32, help="image side in pixels")
    data.add_argument(
        "--num-images",
        type=integer(len(GLYPH_CLASSES)),
        default=10_000,
        help="size of the embedded glyph set (at least one image per class)",
    )
    data.add_argument("--data-seed", type=SEED, default=0, help="seed of the embedded glyph set")
    data.add_argument("--cache-dir", type=text, default="data_cache", help="where the rendered glyph set is kept")
    data.add_argument(
        "--bad-images",
        default="fail",
        choices=["fail", "skip"],
        help="ImageFolder: an unreadable image file stops the run, or is skipped with a warning (named either way)",
    )


def open_image_folder(args: argparse.Namespace) -> ImageFolderDataset | None:
    """The ImageFolder of ``--data-path`` (files listed, none read), or None for the glyph set; one-line errors."""
    if args.data_path is None:
        return None
    try:
        return ImageFolderDataset(args.data_path, args.image_size, flip=False, bad_images=args.bad_images)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))


def class_names(args: argparse.Namespace, folder: ImageFolderDataset | None) -> list[str]:
    return list(GLYPH_CLASSES) if folder is None else folder.classes


def open_dataset(args: argparse.Namespace, folder: ImageFolderDataset | None = None):
    """(dataset of (image (3, s, s) in [-1, 1], label), class names) from the data arguments; one-line errors.

    The glyph set is rendered here (or read from ``--cache-dir``); ``folder`` reuses an ImageFolder already listed.
    """
    if args.data_path is not None:
        folder = folder or open_image_folder(args)
        return folder, folder.classes
    check_writable_folder(args.cache_dir, "--cache-dir")
    return glyph_dataset(args.num_images, args.image_size, args.data_seed, cache_dir=args.cache_dir), list(
        GLYPH_CLASSES
    )


def dataset_name(args: argparse.Namespace) -> str:
    """Names the data a latent cache was made from, so a cache of other data is refused."""
    if args.data_path is None:
        return f"glyphs(n={args.num_images}, seed={args.data_seed})"
    return f"folder({Path(args.data_path).resolve()})"


def image_sample(dataset, count: int, seed: int) -> torch.Tensor:
    """Up to ``count`` images of ``dataset`` (the first ones of the glyph set, a seeded draw otherwise): (n, 3, s, s).

    Images an ImageFolder skips (``--bad-images skip``) are left out.
    """
    if hasattr(dataset, "tensors"):
        return dataset.tensors[0][:count]
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(seed))[:count]
    return torch.stack([item[0] for item in (dataset[i] for i in picks.tolist()) if item is not None])
