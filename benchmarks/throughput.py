"""Training and sampling throughput of a named MAR size, and the share of time in the backbone vs the head.

Examples:
    python benchmarks/throughput.py                                   # mar-tiny, embedded-default geometry, CPU
    python benchmarks/throughput.py --model mar-base --data imagenet256 --device cuda --batch-size 64 --amp bf16
"""
import argparse
import contextlib
import time
from dataclasses import dataclass

import torch

from mar import NAMED_SIZES, MARGenerator, named_config, sample_latents
from mar.cli import pick_device
from mar.options import HelpFormatter
from mar.tokens import patchify
from mar.training import autocast, resolve_precision

# Data geometry: classes, latent channels, latent side, patch size.
GEOMETRIES = {"glyphs32": (10, 4, 8, 2), "glyphs64": (10, 4, 16, 2), "imagenet256": (1000, 16, 16, 1)}


@dataclass
class Timer:
    """Accumulates wall time of the wrapped calls, synchronising the device so GPU time is counted."""

    device: torch.device
    seconds: float = 0.0

    def sync(self) -> None:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)

    @contextlib.contextmanager
    def __call__(self):
        self.sync()
        start = time.perf_counter()
        yield
        self.sync()
        self.seconds += time.perf_counter() - start


def bench_training(model, args, device) -> dict:
    config = model.config
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    latents = torch.randn(args.batch_size, config.latent_channels, config.latent_size, config.latent_size, device=device)
    labels = torch.randint(0, config.num_classes, (args.batch_size,), device=device)
    generator = torch.Generator(device).manual_seed(0)
    full, backbone, head = Timer(device), Timer(device), Timer(device)
    for step in range(args.warmup + args.steps):
        timed = step >= args.warmup
        with full() if timed else contextlib.nullcontext():
            with autocast(device, args.precision):
                loss = model.loss(latents, labels, generator)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
        if not timed:
            continue
        # The two parts alone, forward and backward, on the same masked batch.
        tokens = patchify(latents, config.patch_size)
        mask = model.training_mask(args.batch_size, device, generator).bool()
        with backbone(), autocast(device, args.precision):
            z = model.backbone(tokens, labels, mask)
            z[mask].float().square().mean().backward()
        z_masked = z[mask].detach().requires_grad_()
        with head(), autocast(device, args.precision):
            model.head.loss(z_masked, tokens[mask], generator=generator).backward()
        model.zero_grad(set_to_none=True)
    parts = backbone.seconds + head.seconds
    return {
        "train images/s": args.batch_size * args.steps / full.seconds,
        "train backbone share": backbone.seconds / parts,
        "train head share": head.seconds / parts,
    }


@torch.no_grad()
def bench_sampling(model, args, device) -> dict:
    model.eval()
    backbone, head = Timer(device), Timer(device)
    forward, sample = model.backbone.forward, model.head.sample

    def timed(timer, fn):
        def wrapper(*a, **k):
            with timer():
                return fn(*a, **k)
        return wrapper

    labels = torch.randint(0, model.config.num_classes, (args.sample_batch_size,), device=device)
    kwargs = dict(num_iter=args.num_iter, diffusion_steps=args.diffusion_steps, cfg=args.cfg, generator=torch.Generator(device).manual_seed(0))
    with autocast(device, args.precision):
        sample_latents(model, labels, **kwargs)  # warm-up
        model.backbone.forward, model.head.sample = timed(backbone, forward), timed(head, sample)
        total = Timer(device)
        with total():
            sample_latents(model, labels, **kwargs)
    del model.backbone.forward, model.head.sample
    return {
        "sample images/s": args.sample_batch_size / total.seconds,
        "sample backbone share": backbone.seconds / total.seconds,
        "sample head share": head.seconds / total.seconds,
    }


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=HelpFormatter)
    parser.add_argument("--model", default="mar-tiny", choices=list(NAMED_SIZES))
    parser.add_argument("--data", default="glyphs32", choices=list(GEOMETRIES), help="latent geometry and classes")
    parser.add_argument("--patch-size", type=int, default=None, help="latent patch per token (default: the geometry's)")
    parser.add_argument("--head-depth", type=int, default=None, help="diffusion head blocks (default: the model's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--batch-size", type=int, default=64, help="training images per step")
    parser.add_argument("--steps", type=int, default=10, help="timed training steps")
    parser.add_argument("--warmup", type=int, default=3, help="untimed training steps first")
    parser.add_argument("--sample-batch-size", type=int, default=64, help="images sampled at once")
    parser.add_argument("--num-iter", type=int, default=16, help="autoregressive steps K")
    parser.add_argument("--diffusion-steps", type=int, default=100, help="DDPM steps per token")
    parser.add_argument("--cfg", type=float, default=3.0, help="guidance scale (1 = none, half the backbone work)")
    parser.add_argument("--amp", default="none", choices=["auto", "none", "bf16"], help="autocast dtype")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    args.precision = resolve_precision(args.amp, device)
    classes, channels, side, patch = GEOMETRIES[args.data]
    patch = args.patch_size or patch
    if patch < 1 or side % patch:
        parser.error(f"--patch-size {patch} does not divide the latent side {side}; use one of "
                     f"{[p for p in range(1, side + 1) if side % p == 0]}")
    if not 1 <= args.num_iter <= (side // patch) ** 2:
        parser.error(f"--num-iter {args.num_iter} must lie in [1, {(side // patch) ** 2}], the tokens per image at patch {patch}")
    if args.head_depth is not None and args.head_depth < 1:
        parser.error(f"--head-depth {args.head_depth} must be at least 1")
    depth = {} if args.head_depth is None else {"head_depth": args.head_depth}
    config = named_config(args.model, num_classes=classes, latent_channels=channels, latent_size=side, patch_size=patch, **depth)
    torch.manual_seed(0)
    model = MARGenerator(config).to(device)
    params = sum(p.numel() for p in model.parameters()) / 1e6
    print(f"{args.model} ({params:.1f}M parameters), {args.data}: {config.seq_len} tokens x {config.token_dim} channels, "
          f"device {device}, amp {args.amp}, {torch.get_num_threads()} CPU threads")
    print(f"training: batch {args.batch_size}, {args.steps} timed steps")
    for name, value in bench_training(model, args, device).items():
        print(f"  {name:24s} {value:10.2f}")
    print(f"sampling: batch {args.sample_batch_size}, K={args.num_iter}, {args.diffusion_steps} diffusion steps, cfg={args.cfg}")
    for name, value in bench_sampling(model, args, device).items():
        print(f"  {name:24s} {value:10.2f}")


if __name__ == "__main__":
    main()
