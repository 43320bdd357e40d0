"""Encode a dataset once with a tokenizer into a latent cache that train.py reads with --latent-cache.

Each image is stored with its horizontal flip (ImageFolder data; mirrored glyphs would not be digits), as the MAR
recipe caches them. Runs on one process, or on many under torchrun, where each rank encodes every world_size-th
shard (the output folder must be on storage every rank sees).

Examples:
    python cache_latents.py --tokenizer runs/default/tokenizer --out runs/default/latents
    python cache_latents.py --tokenizer kl16.ckpt --data-path /data/imagenet/train --image-size 256 --out /data/latents/in256
    torchrun --nproc_per_node=8 cache_latents.py --tokenizer kl16.ckpt --data-path /data/imagenet/train \\
        --image-size 256 --out /data/latents/in256 --num-workers 8
"""
import argparse
import time

from mar import distributed
from mar.cli import HelpFormatter, add_data_arguments, dataset_name, fail, open_dataset, pick_device
from mar.latents import write_latent_cache
from vae import load_tokenizer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add_data_arguments(parser)
    parser.add_argument("--tokenizer", required=True, help="tokenizer folder, hub id or LDM checkpoint (see train.py --help)")
    parser.add_argument("--out", required=True, help="cache folder to write")
    parser.add_argument("--no-flip", action="store_true", help="ImageFolder data: do not add mirrored views")
    parser.add_argument("--batch-size", type=int, default=256, help="images per encoder pass")
    parser.add_argument("--shard-size", type=int, default=8192, help="images per shard file")
    parser.add_argument("--num-workers", type=int, default=0, help="data loader workers per process")
    parser.add_argument("--device", default="auto", help="auto, cpu, cuda or mps (under torchrun: cuda:LOCAL_RANK)")
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.time()
    device = distributed.init_from_environment(pick_device(args.device))
    try:
        tokenizer = load_tokenizer(args.tokenizer).to(device)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if args.image_size % tokenizer.stride:
        fail(f"image size {args.image_size} is not divisible by the tokenizer stride {tokenizer.stride}; "
             f"use a multiple of {tokenizer.stride}")
    dataset, _ = open_dataset(args)
    write_latent_cache(
        tokenizer, dataset, args.out, args.image_size, dataset_name(args), flips=args.data_path is not None and not args.no_flip,
        batch_size=args.batch_size, shard_size=args.shard_size, num_workers=args.num_workers, progress=not args.no_progress,
    )
    if distributed.rank() == 0:
        print(f"cached {len(dataset)} images with the {tokenizer.kind} tokenizer into {args.out} "
              f"on {distributed.world_size()} process(es) in {time.time() - started:.1f} s")
    distributed.shutdown()


if __name__ == "__main__":
    main()
