"""Train a MAR generator with a diffusion loss, tokenizer included.

With no arguments: renders the embedded glyph set (10 classes, 32x32), trains a small KL tokenizer on it, trains
mar-tiny on its latents, then writes a checkpoint and a sample grid under runs/default (about 14 minutes on
two CPU cores).

Examples:
    python train.py
    python train.py --image-size 64 --epochs 20 --output runs/glyphs64
    python train.py --tokenizer runs/default/tokenizer --latent-cache runs/default/latents --epochs 30 --output runs/longer
    python train.py --tokenizer kl16.ckpt --data-path /data/imagenet/train --image-size 256 --patch-size 1 --device cuda
    python train.py --data-path /data/flowers/train --image-size 64 --model mar-base --device cuda
"""
import argparse
import sys
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mar import NAMED_SIZES, MARGenerator, named_config
from mar.checkpoint import load_checkpoint, save_checkpoint
from mar.cli import HelpFormatter, add_data_arguments, dataset_name, fail, image_sample, open_dataset, pick_device, render_samples
from mar.latents import MANIFEST, LatentSet, check_latent_cache, latent_set, read_latent_cache, write_latent_cache
from mar.training import autocast, lr_factor, make_optimizer, resolve_precision
from vae import KLTokenizer, load_tokenizer, small_autoencoder, train_and_measure


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add = parser.add_argument_group
    add_data_arguments(parser)
    cache = add("latent cache")
    cache.add_argument("--latent-cache", default=None,
                       help="folder of encoded latents: reused when it matches the tokenizer and data, written when empty; "
                            "default: <output>/latents, written afresh")
    cache.add_argument("--no-flip", action="store_true", help="ImageFolder data: do not add mirrored views")
    tok = add("tokenizer")
    tok.add_argument("--tokenizer", default=None,
                     help="a KL tokenizer: folder (train_tokenizer.py, a diffusers AutoencoderKL), hub id (org/name[/subfolder], "
                          "from the local cache), or LDM checkpoint (kl16.ckpt); default: train one here")
    tok.add_argument("--tokenizer-steps", type=int, default=800, help="training steps of a new tokenizer")
    tok.add_argument("--tokenizer-batch-size", type=int, default=32, help="images per tokenizer step")
    tok.add_argument("--tokenizer-channels", type=int, default=4, help="latent channels of a new tokenizer")
    tok.add_argument("--tokenizer-stride", type=int, default=4, help="downsampling factor of a new tokenizer")
    tok.add_argument("--tokenizer-images", type=int, default=10_000, help="images a new tokenizer trains on")
    model = add("model")
    model.add_argument("--model", default="mar-tiny", choices=list(NAMED_SIZES), help="named size")
    model.add_argument("--patch-size", type=int, default=2, help="latent patch per token (p x p)")
    model.add_argument("--diffusion-batch-mul", type=int, default=4, help="timesteps drawn per z")
    model.add_argument("--init-from", default=None, help="checkpoint whose weights start training (its config must match)")
    opt = add("optimisation")
    opt.add_argument("--epochs", type=int, default=13, help="passes over the dataset")
    opt.add_argument("--batch-size", type=int, default=64, help="images per step")
    opt.add_argument("--lr", type=float, default=1e-3, help="learning rate after warmup")
    opt.add_argument("--warmup-steps", type=int, default=300, help="linear warmup steps")
    opt.add_argument("--lr-schedule", default="cosine", choices=["cosine", "constant"],
                     help="after warmup: cosine decay to 0 (short runs) or constant (the paper's long runs)")
    opt.add_argument("--weight-decay", type=float, default=0.02, help="AdamW weight decay on matrices")
    opt.add_argument("--grad-clip", type=float, default=3.0, help="gradient norm clip")
    opt.add_argument("--save-every", type=int, default=1000, help="steps between checkpoints")
    sample = add("samples written after training")
    sample.add_argument("--num-iter", type=int, default=16, help="autoregressive steps K")
    sample.add_argument("--diffusion-steps", type=int, default=100, help="DDPM steps per token")
    sample.add_argument("--temperature", type=float, default=1.0, help="noise temperature")
    sample.add_argument("--cfg", type=float, default=4.0, help="classifier-free guidance scale")
    sample.add_argument("--cfg-schedule", default="constant", choices=["linear", "constant"], help="guidance schedule")
    sample.add_argument("--samples-per-class", type=int, default=10, help="grid columns")
    run = add("run")
    run.add_argument("--output", default="runs/default", help="folder for the checkpoint, tokenizer and samples")
    run.add_argument("--seed", type=int, default=0, help="seed of every draw in training and sampling")
    run.add_argument("--device", default="auto", help="auto, cpu, cuda, cuda:N or mps")
    run.add_argument("--amp", default="auto", choices=["auto", "bf16", "none"],
                     help="mixed precision for training: auto = bf16 where the device runs it natively")
    run.add_argument("--num-workers", type=int, default=0, help="data loader workers (ImageFolder)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser.parse_args(argv)


def train_new_tokenizer(args, dataset, device, output: Path) -> KLTokenizer:
    images = image_sample(dataset, args.tokenizer_images, args.seed)
    held_out = max(1, min(512, len(images) // 10))  # images kept out of tokenizer training to measure it
    tokenizer = KLTokenizer(small_autoencoder(args.tokenizer_channels, args.tokenizer_stride))
    metrics = train_and_measure(
        tokenizer, images.to(device), held_out, steps=args.tokenizer_steps, batch_size=args.tokenizer_batch_size,
        precision=resolve_precision(args.amp, device), generator=torch.Generator(device).manual_seed(args.seed),
        progress=not args.no_progress,
    )
    tokenizer.save(output / "tokenizer")
    print(f"tokenizer: PSNR {metrics['psnr']:.2f} dB on {held_out} held-out images, "
          f"latent shift {tokenizer.shift:.4f} scale {tokenizer.scale:.4f}, saved to {output / 'tokenizer'}")
    return tokenizer


def open_tokenizer(source: str, device) -> KLTokenizer:
    try:
        tokenizer = load_tokenizer(source)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    if tokenizer.discrete:
        fail(f"tokenizer {source} is a discrete {tokenizer.kind} tokenizer; the diffusion-loss generator needs a "
             "continuous KL tokenizer (train one with `python train_tokenizer.py --kind kl`)")
    return tokenizer.to(device)


def cached_latents(args, tokenizer, dataset, output: Path) -> LatentSet:
    """Latents from ``--latent-cache`` when it matches this run, else encoded now into it (or <output>/latents)."""
    directory = Path(args.latent_cache or output / "latents")
    name = dataset_name(args)
    flips = args.data_path is not None and not args.no_flip
    try:
        if args.latent_cache is None or not (directory / MANIFEST).exists():
            write_latent_cache(tokenizer, dataset, directory, args.image_size, name, flips,
                               num_workers=args.num_workers, progress=not args.no_progress)
        manifest = check_latent_cache(directory, tokenizer, args.image_size, name, flips)
        latents = latent_set(read_latent_cache(directory, manifest))
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    print(f"latents: {len(latents)} images x {manifest['views']} views from {directory}")
    return latents


def check_sizes(image_size: int, stride: int, patch_size: int) -> None:
    multiple = stride * patch_size
    if image_size % multiple:
        fail(
            f"image size {image_size} is not divisible by the tokenizer stride {stride} x patch size {patch_size} "
            f"= {multiple}; use a multiple of {multiple} such as {max(multiple, image_size // multiple * multiple)}"
        )


def fit(model, latents, tokenizer, classes, args, device, precision, checkpoint: Path) -> tuple[int, float]:
    """The training loop; saves every ``--save-every`` steps and at the end. Returns (steps, last loss)."""
    steps_per_epoch = len(latents) // args.batch_size
    if steps_per_epoch == 0:
        fail(f"--batch-size {args.batch_size} is larger than the dataset ({len(latents)} images); lower it")
    optimizer = make_optimizer(model, args.lr, args.weight_decay)
    generator = torch.Generator(device).manual_seed(args.seed)
    total = steps_per_epoch * args.epochs
    bar = tqdm(total=total, desc="training", disable=args.no_progress)
    step, tick = 0, time.time()
    model.train()
    for epoch in range(args.epochs):
        order = torch.randperm(len(latents), generator=generator, device=device)
        for batch in order[: steps_per_epoch * args.batch_size].view(steps_per_epoch, args.batch_size):
            x, labels = latents.draw(tokenizer, batch, generator)
            for group in optimizer.param_groups:
                group["lr"] = args.lr * lr_factor(step, args.warmup_steps, total, args.lr_schedule)
            with autocast(device, precision):
                loss = model.loss(x, labels, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), args.grad_clip)
            optimizer.step()
            step += 1
            bar.update()
            if step % 20 == 0:
                rate = 20 * args.batch_size / (time.time() - tick)
                bar.set_postfix(epoch=epoch, loss=f"{loss.item():.4f}", grad=f"{grad_norm.item():.2f}", img_s=f"{rate:.0f}")
                tick = time.time()
            if step % args.save_every == 0:
                save_checkpoint(checkpoint, model, tokenizer, classes, args.image_size, step)
    bar.close()
    save_checkpoint(checkpoint, model, tokenizer, classes, args.image_size, step)
    return step, loss.item()


def main(argv=None) -> None:
    args = parse_args(argv)
    started = time.time()
    device = pick_device(args.device)
    output = Path(args.output)
    torch.manual_seed(args.seed)  # dropout inside timm blocks draws from the global generator

    tokenizer = None if args.tokenizer is None else open_tokenizer(args.tokenizer, device)
    check_sizes(args.image_size, tokenizer.stride if tokenizer else args.tokenizer_stride, args.patch_size)
    dataset, classes = open_dataset(args)
    print(f"data: {len(dataset)} images of {len(classes)} classes at {args.image_size}x{args.image_size}")
    output.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = train_new_tokenizer(args, dataset, device, output)
    latents = cached_latents(args, tokenizer, dataset, output).to(device)

    config = named_config(
        args.model, num_classes=len(classes), latent_channels=tokenizer.channels,
        latent_size=args.image_size // tokenizer.stride, patch_size=args.patch_size,
        diffusion_batch_mul=args.diffusion_batch_mul, num_sampling_steps=args.diffusion_steps,
    )
    if not 1 <= args.num_iter <= config.seq_len:
        fail(f"--num-iter {args.num_iter} must lie in [1, {config.seq_len}], the number of tokens per image")
    if not 1 <= args.diffusion_steps < config.head_config().num_train_timesteps:
        fail(f"--diffusion-steps {args.diffusion_steps} must lie in [1, {config.head_config().num_train_timesteps - 1}]")
    model = MARGenerator(config).to(device)
    if args.init_from is not None:
        try:
            model.load_state_dict(load_checkpoint(args.init_from, device, expect=config).model.state_dict())
        except (FileNotFoundError, ValueError) as error:
            fail(str(error))
    precision = resolve_precision(args.amp, device)
    print(f"model: {args.model}, {sum(p.numel() for p in model.parameters()) / 1e6:.2f}M parameters, "
          f"{config.seq_len} tokens of {config.token_dim} channels, training in "
          f"{'fp32' if precision is None else str(precision).removeprefix('torch.')}")
    checkpoint = output / "checkpoint.safetensors"
    step, loss = fit(model, latents, tokenizer, classes, args, device, precision, checkpoint)
    train_time = time.time() - started
    print(f"checkpoint: {checkpoint} (step {step}, last loss {loss:.4f})")

    model.eval()
    grid = render_samples(
        model, tokenizer, classes, args.samples_per_class, output / "samples.png", num_iter=args.num_iter,
        temperature=args.temperature, cfg=args.cfg, cfg_schedule=args.cfg_schedule,
        diffusion_steps=args.diffusion_steps, generator=torch.Generator(device).manual_seed(args.seed),
    )
    print(f"samples: {grid} (K={args.num_iter}, cfg={args.cfg}, temperature={args.temperature})")
    print(f"wall time: {time.time() - started:.0f} s ({train_time:.0f} s to the checkpoint)")


if __name__ == "__main__":
    sys.exit(main())
