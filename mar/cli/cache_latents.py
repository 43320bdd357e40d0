"""Encode a dataset once with a tokenizer into a latent cache that train.py reads with --latent-cache.

Each image of a folder is stored with its horizontal flip, as the MAR recipe caches them, where mirroring keeps the
class: decided from the data as train.py decides it (the held-out classifier, kept in --cache-dir or trained now,
still knows the class of mirrored images), or forced with --flip / --no-flip; the embedded glyphs are never
mirrored (a mirrored digit is another shape). Runs on one process, or on many under torchrun, where each rank encodes every world_size-th
shard (the output folder must be on storage every rank sees).

Examples:
    mar cache-latents --tokenizer runs/default/tokenizer --out runs/default/latents
    mar cache-latents --tokenizer kl16.ckpt --data-path /data/imagenet/train --image-size 256 --out /data/latents/in256
    torchrun --nproc_per_node=8 -m mar cache-latents --tokenizer kl16.ckpt --data-path /data/imagenet/train \\
        --image-size 256 --out /data/latents/in256 --num-workers 8
"""

import argparse
import time
from pathlib import Path

from mar import distributed
from mar.cli.common import add_data_arguments, dataset_name, open_dataset, open_image_folder, pick_device
from mar.cli.options import NON_NEGATIVE, POSITIVE, Parser, check_writable_folder, fail, text
from mar.cli.train_report import mirrored_views
from mar.data.image_folder import BadImage
from mar.data.latents import LatentCacheMismatch, check_latent_cache, write_latent_cache
from mar.eval.reference_data import CLASSIFIER_STEPS, dataset_classifier
from vae import load_tokenizer

INTERRUPTED = "interrupted; the cache in --out is unfinished (no cache.json) and will be written again"  # printed by the mar command on Ctrl-C


def parse_args(argv=None) -> argparse.Namespace:
    return build_parser().parse_args(argv)


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_data_arguments(parser)
    parser.add_argument(
        "--tokenizer", type=text, required=True, help="tokenizer folder, hub id or LDM checkpoint (see train.py --help)"
    )
    parser.add_argument("--out", type=text, required=True, help="cache folder to write")
    parser.add_argument(
        "--overwrite", action="store_true", help="replace a cache of other data or another tokenizer in --out"
    )
    parser.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add mirrored views of a folder's images (--flip) or not (--no-flip); default: decided from the data",
    )
    parser.add_argument(
        "--classifier-steps",
        type=POSITIVE,
        default=CLASSIFIER_STEPS,
        help="training steps of the held-out classifier that decides mirroring, when it is not kept in --cache-dir",
    )
    parser.add_argument("--batch-size", type=POSITIVE, default=256, help="images per encoder pass")
    parser.add_argument("--shard-size", type=POSITIVE, default=8192, help="images per shard file")
    parser.add_argument("--num-workers", type=NON_NEGATIVE, default=0, help="data loader workers per process")
    parser.add_argument(
        "--device", type=text, default="auto", help="auto, cpu, cuda or mps (under torchrun: cuda:LOCAL_RANK)"
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def existing_cache_is_current(args, tokenizer, out: Path) -> bool:
    """True when --out already holds this cache; a folder holding anything else is refused unless --overwrite."""
    if not out.is_dir() or not any(out.iterdir()):
        return False
    flips = args.flip if args.flip is not None else (None if args.data_path is not None else False)  # None: either
    try:
        check_latent_cache(out, tokenizer, args.image_size, dataset_name(args), flips)
        return True
    except (FileNotFoundError, LatentCacheMismatch) as error:
        if not args.overwrite:
            fail(
                f"--out {out} already holds files that are not this cache ({error}); pass --overwrite to replace them, "
                "or another --out"
            )
        return False


def decide_flips(args, dataset, classes: list[str], device) -> bool:
    """--flip / --no-flip, or for a folder the held-out classifier's decision (rank 0 trains it; the others read it
    from --cache-dir)."""
    classifier, held_out = None, None
    if args.flip is None and args.data_path is not None:
        first = distributed.rank() == 0

        def judge(progress: bool) -> tuple:
            classifier, _, _, held_out = dataset_classifier(
                args, dataset, dataset_name(args), len(classes), device, steps=args.classifier_steps, progress=progress
            )
            return classifier, held_out

        if first:
            classifier, held_out = judge(not args.no_progress)
        distributed.barrier()
        if not first:
            classifier, held_out = judge(False)
    return mirrored_views(args, classifier, held_out, len(classes), verbose=distributed.rank() == 0)


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.time()
    out = check_writable_folder(args.out, "--out")
    device = distributed.init_from_environment(pick_device(args.device))
    try:
        tokenizer = load_tokenizer(args.tokenizer).to(device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if args.image_size % tokenizer.stride:
        fail(
            f"image size {args.image_size} is not divisible by the tokenizer stride {tokenizer.stride}; "
            f"use a multiple of {tokenizer.stride}"
        )
    folder = open_image_folder(args)
    if existing_cache_is_current(args, tokenizer, out):
        print(f"{out} already holds this cache (same tokenizer, data and image size); nothing to do")
        return
    dataset, classes = open_dataset(args, folder)
    try:  # an unreadable image may first turn up in the classifier's share of the data
        flips = decide_flips(args, dataset, classes, device)
        write_latent_cache(
            tokenizer,
            dataset,
            out,
            args.image_size,
            dataset_name(args),
            flips=flips,
            batch_size=args.batch_size,
            shard_size=args.shard_size,
            num_workers=args.num_workers,
            progress=not args.no_progress,
        )
    except (BadImage, ValueError) as error:
        fail(error.one_line() if isinstance(error, BadImage) else str(error))
    if distributed.rank() == 0:
        print(
            f"cached {len(dataset)} images with the {tokenizer.kind} tokenizer into {out} "
            f"on {distributed.world_size()} process(es) in {time.time() - started:.1f} s"
        )
    distributed.shutdown()
