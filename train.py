"""Train a MAR generator with a diffusion loss, tokenizer included.

With no arguments: renders the embedded glyph set (10 classes, 32x32), trains a small KL tokenizer on it, trains
mar-tiny on its latents, then writes a checkpoint and a sample grid under runs/default (about 14 minutes on
two CPU cores).

Examples:
    python train.py
    python train.py --image-size 64 --epochs 20 --output runs/glyphs64
    python train.py --tokenizer runs/default/tokenizer --epochs 30 --output runs/longer
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
from mar.cli import HelpFormatter, fail, pick_device, render_samples
from mar.data import GLYPH_CLASSES, ImageFolderDataset, glyph_dataset
from mar.latents import encode_dataset
from mar.training import autocast, lr_factor, make_optimizer, resolve_precision
from vae import KLTokenizer, reconstruction_psnr, train_kl_tokenizer


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    add = parser.add_argument_group
    data = add("data")
    data.add_argument("--data-path", default=None, help="ImageFolder root (one sub-folder per class); default: the embedded glyph set")
    data.add_argument("--image-size", type=int, default=32, help="image side in pixels")
    data.add_argument("--num-images", type=int, default=10_000, help="size of the embedded glyph set")
    data.add_argument("--data-seed", type=int, default=0, help="seed of the embedded glyph set")
    data.add_argument("--no-flip", action="store_true", help="ImageFolder data: do not add mirrored views")
    data.add_argument("--cache-dir", default="data_cache", help="where the rendered glyph set is kept")
    tok = add("tokenizer")
    tok.add_argument("--tokenizer", default=None, help="folder of a trained tokenizer (diffusers AutoencoderKL); default: train one")
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


def load_images(args):
    """(dataset, class names, images for tokenizer training (n, 3, s, s))."""
    if args.data_path is None:
        dataset = glyph_dataset(args.num_images, args.image_size, args.data_seed, cache_dir=args.cache_dir)
        return dataset, list(GLYPH_CLASSES), dataset.tensors[0][: args.tokenizer_images]
    dataset = ImageFolderDataset(args.data_path, args.image_size, flip=False)
    picks = torch.randperm(len(dataset), generator=torch.Generator().manual_seed(args.seed))[: args.tokenizer_images]
    images = torch.stack([dataset[i][0] for i in picks.tolist()]) if args.tokenizer is None else None
    return dataset, dataset.classes, images


def train_tokenizer(args, images, device, output: Path) -> KLTokenizer:
    generator = torch.Generator(device).manual_seed(args.seed)
    held_out = max(1, min(512, len(images) // 10))  # images kept out of tokenizer training to measure it
    tokenizer = train_kl_tokenizer(
        images[:-held_out].to(device), args.tokenizer_steps, args.tokenizer_channels, args.tokenizer_stride,
        batch_size=args.tokenizer_batch_size, precision=resolve_precision(args.amp, device), generator=generator,
        progress=not args.no_progress,
    )
    tokenizer.save(output / "tokenizer")
    psnr = reconstruction_psnr(tokenizer, images[-held_out:].to(device))
    print(f"tokenizer: PSNR {psnr:.2f} dB on {held_out} held-out images, "
          f"latent shift {tokenizer.shift:.4f} scale {tokenizer.scale:.4f}, saved to {output / 'tokenizer'}")
    return tokenizer


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

    tokenizer = None
    if args.tokenizer is not None:
        if not Path(args.tokenizer).is_dir():
            fail(f"tokenizer folder {args.tokenizer} does not exist; omit --tokenizer to train one, or pass runs/<name>/tokenizer")
        try:
            tokenizer = KLTokenizer.load(args.tokenizer).to(device).eval().requires_grad_(False)
        except FileNotFoundError as error:
            fail(str(error))
    check_sizes(args.image_size, tokenizer.stride if tokenizer else args.tokenizer_stride, args.patch_size)
    try:
        dataset, classes, images = load_images(args)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    print(f"data: {len(dataset)} images of {len(classes)} classes at {args.image_size}x{args.image_size}")
    output.mkdir(parents=True, exist_ok=True)
    if tokenizer is None:
        tokenizer = train_tokenizer(args, images, device, output)
    latents = encode_dataset(tokenizer, dataset, flips=args.data_path is not None and not args.no_flip,
                             num_workers=args.num_workers, progress=not args.no_progress)

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
