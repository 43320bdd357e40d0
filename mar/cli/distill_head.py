"""Distil a checkpoint's diffusion head into a guided head: one head evaluation per denoising step under guidance.

The guided head learns the teacher head's guided output eps_c + (w - 1)(eps_c - eps_u) from the class's z and the
scale w alone, on the conditions the checkpoint's own sampling loop gives its head (nothing else is read: no image
data). It is written beside the checkpoint's weights (guided-head.safetensors) and used by sampling with
``--guided-head``; docs/sampling.md#the-guided-head.

Examples:
    mar distill-head --checkpoint runs/default
    mar distill-head --checkpoint runs/default --steps 6000 --max-cfg 6 --overwrite
"""

import time

import torch

from mar.cli.common import add_checkpoint_argument, pick_device
from mar.cli.options import POSITIVE, SEED, Parser, check_writable_file, fail, number, text
from mar.sampling.config import SamplingConfig
from mar.train.atomic_files import CheckpointWriteError
from mar.train.checkpoint import load_checkpoint, resolve_weights
from mar.train.distill_head import DistillSettings, distill, guided_error, teacher_draws
from mar.train.guided_head_file import guided_head_path, save_guided_head

HELD_OUT = 0.1  # the share of the recorded rows kept aside to measure the guided head's error


def build_parser() -> Parser:
    default = DistillSettings()
    parser = Parser(description=__doc__)
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--images", type=POSITIVE, default=2048, help="images the teacher draws to record its head's conditions"
    )
    parser.add_argument(
        "--cfg",
        type=number(1, low_open=True),
        default=None,
        help="guidance scale of the teacher's draws: the guided head fits the contexts drawn at it best, so give the "
        "scale you will sample with (default: the one the checkpoint's run chose, else 2)",
    )
    parser.add_argument(
        "--temperature",
        type=number(0, low_open=True),
        default=None,
        help="temperature of the teacher's draws (default: the one the checkpoint's run chose, else 0.3)",
    )
    parser.add_argument("--steps", type=POSITIVE, default=default.steps, help="training steps of the guided head")
    parser.add_argument("--batch-size", type=POSITIVE, default=default.batch_size, help="token rows per training step")
    parser.add_argument("--lr", type=number(0, low_open=True), default=default.lr, help="AdamW learning rate")
    parser.add_argument(
        "--max-cfg",
        type=number(1, low_open=True),
        default=default.max_cfg,
        help="guidance scales trained: uniform in [1, this]; a larger --cfg when sampling is outside what it learned",
    )
    parser.add_argument(
        "--time-budget",
        type=number(0, low_open=True),
        default=None,
        help="minutes of training at most (the steps stop early when it runs out)",
    )
    parser.add_argument("--overwrite", action="store_true", help="replace the checkpoint's existing guided head")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the teacher's draws and of training")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser


def print_loss(step: int, loss: float) -> None:
    if step % 500 == 0:
        print(f"step {step}: loss {loss:.5f}")


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    device = pick_device(args.device)
    try:
        weights = resolve_weights(args.checkpoint)
        ckpt = load_checkpoint(weights, device, guided_head=False)  # an earlier guided head is neither read nor kept
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if ckpt.model.config.head_kind != "diffusion":
        fail(f"checkpoint {weights} has a {ckpt.model.config.head_kind} head; only a diffusion head is distilled")
    target = guided_head_path(weights)
    if target.exists() and not args.overwrite:
        fail(f"{target} exists; pass --overwrite to replace it (the checkpoint itself is never changed)")
    check_writable_file(target, "the guided head")
    teacher = ckpt.sampling_model
    chosen = {k: float(v) for k, v in ckpt.sampling.items() if k != "cfg" or float(v) != 1.0}  # cfg 1: no z_uncond
    given = {k: getattr(args, k) for k in ("cfg", "temperature") if getattr(args, k) is not None}
    sampling = SamplingConfig(diffusion_steps=10, **(chosen | given))
    generator = torch.Generator(device).manual_seed(args.seed)
    started = time.time()
    draws = teacher_draws(teacher, args.images, sampling, 256, generator)
    train, held_out = draws.split(max(1, int(len(draws) * HELD_OUT)))
    print(
        f"recorded {len(draws)} token conditions from {args.images} images of the teacher (cfg {sampling.cfg:g}, "
        f"temperature {sampling.temperature:g}, K {sampling.num_iter}) in {time.time() - started:.1f} s"
    )
    settings = DistillSettings(
        args.steps, args.batch_size, args.lr, args.max_cfg, None if args.time_budget is None else 60 * args.time_budget
    )
    started = time.time()
    student, steps = distill(teacher, train, settings, generator, print_loss)
    seconds = time.time() - started
    errors = {}
    for cfg in sorted({2.0, sampling.cfg, args.max_cfg}):
        error, unguided = guided_error(student, teacher, held_out, cfg, torch.Generator(device).manual_seed(1))
        errors[f"{cfg:g}"] = {"guided_head": error, "unguided": unguided}
        print(
            f"held-out error of the guided noise at cfg {cfg:g}: {error:.5f}, against {unguided:.5f} for no guidance "
            f"({len(held_out)} rows)"
        )
    details = {"steps": steps, "seconds": round(seconds, 1), "images": args.images, "max_cfg": args.max_cfg}
    try:
        path = save_guided_head(weights, student, teacher.head, details | {"held_out_error": errors})
    except CheckpointWriteError as error:
        fail(str(error))
    print(
        f"wrote {path}: {steps} steps in {seconds:.1f} s; sample with it: "
        f"python sample.py --checkpoint {args.checkpoint} --guided-head"
    )
