"""Draw N class-balanced samples of a checkpoint to a folder of PNGs (and ADM's .npz) for FID / IS evaluation.

Image i has class i // (N / classes), as in the official evaluation (N must be a multiple of the class count).
Images are drawn in chunks of --chunk-size consecutive indices, each seeded by (--seed, chunk index), so the set is
identical for any number of processes at the same chunk size. Under torchrun each process draws every w-th chunk.
A re-run with the same settings skips the images already written (an interrupted run continues); a folder holding
another set is refused. --npz also writes <out>/samples.npz (arr_0, uint8, N x H x W x 3), streamed from the PNGs.

Examples:
    mar sample-at-scale --checkpoint runs/default --num-images 1000 --out runs/default/fid-1k --npz
    torchrun --nproc_per_node=8 -m mar sample-at-scale --checkpoint runs/mar-base --num-images 50000 --out samples/mar-b \\
        --num-iter 256 --diffusion-steps 100 --cfg 2.9 --cfg-schedule linear --temperature 1.0 --npz --amp bf16
"""

import time
from dataclasses import asdict
from pathlib import Path

import torch

from mar import distributed
from mar.cli.common import add_checkpoint_argument, add_sampling_arguments, checkpoint_sampling, pick_device
from mar.cli.options import POSITIVE, SEED, Parser, check_sampling, check_writable_folder, fail, text
from mar.eval.sample_set import (
    SamplePlan,
    check_manifest,
    draw_sample_set,
    sample_set_record,
    write_manifest,
    write_sample_npz,
)
from mar.interop.hub import open_checkpoint
from mar.precision import resolve_precision


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_checkpoint_argument(parser)
    parser.add_argument(
        "--out", type=text, required=True, help="folder of the PNGs (000000.png ...) and sample_set.json"
    )
    parser.add_argument("--num-images", type=POSITIVE, default=50_000, help="N, a multiple of the class count")
    parser.add_argument("--chunk-size", type=POSITIVE, default=64, help="images per seeded chunk (one batch each)")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the whole set")
    parser.add_argument("--npz", action="store_true", help="also write <out>/samples.npz in ADM's evaluator format")
    parser.add_argument("--no-ema", action="store_true", help="sample with the trained weights instead of their EMA")
    parser.add_argument(
        "--device", type=text, default="auto", help="auto, cpu, cuda or mps (torchrun: one GPU per process)"
    )
    parser.add_argument(
        "--amp", default="none", choices=["auto", "bf16", "fp16", "none"], help="autocast precision of sampling"
    )
    parser.add_argument("--compile", action="store_true", help="torch.compile the transformer and head blocks")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    add_sampling_arguments(parser)
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    out = check_writable_folder(args.out, "--out")
    device = distributed.init_from_environment(pick_device(args.device))
    rank, world = distributed.rank(), distributed.world_size()
    try:
        ckpt = open_checkpoint(args.checkpoint, device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    config = ckpt.model.config
    if args.num_images % config.num_classes:
        lower = args.num_images - args.num_images % config.num_classes
        fail(
            f"--num-images {args.num_images} is not a multiple of the checkpoint's {config.num_classes} classes; "
            f"use {lower or config.num_classes} or {lower + config.num_classes}"
        )
    check_sampling(
        args,
        config.seq_len,
        config.head_kind,
        ckpt.model.head.config.num_train_timesteps if config.head_kind == "diffusion" else 0,
    )
    plan = SamplePlan(args.num_images, config.num_classes, args.chunk_size, args.seed)
    sampling, guided_head = checkpoint_sampling(args, ckpt, use_ema=not args.no_ema)
    record = sample_set_record(plan, args.checkpoint, asdict(sampling), ema=not args.no_ema)
    try:
        continuing = check_manifest(out, record)
    except ValueError as error:
        fail(str(error))
    precision = resolve_precision(args.amp, device)

    # Every check passed; from here on the run writes.
    if rank == 0 and not continuing:
        write_manifest(out, record)
    distributed.barrier()
    model = ckpt.model if args.no_ema else ckpt.sampling_model
    if args.compile:
        model.compile_blocks()
    started = time.time()
    drawn = draw_sample_set(
        model,
        ckpt.tokenizer,
        plan,
        out,
        rank,
        world,
        precision,
        progress=not args.no_progress,
        sampling=sampling,
        guided_head=guided_head,
    )
    seconds = time.time() - started
    counts = distributed.all_reduce_sum(torch.tensor([float(drawn)], device=device)).item()
    distributed.barrier()
    if rank == 0:
        rate = f", {counts / seconds:.2f} images/s" if drawn else ""
        print(
            f"{out}: {plan.num_images} images ({int(counts)} drawn now, {plan.num_images - int(counts)} already there) "
            f"in {seconds:.1f} s on {world} process(es){rate}"
        )
        if args.npz:
            print(f"wrote {write_sample_npz(Path(out), plan, Path(out) / 'samples.npz')}")
    distributed.shutdown()
