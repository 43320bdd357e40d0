"""Causal sampling with the key/value cache against recomputing the whole prefix at every step, in one run.

Both draw the same images (tests/test_causal.py checks it); the rounds alternate the two so that machine drift
hits both. Untrained weights: the work per step does not depend on them.

Examples:
    python benchmarks/causal_cache.py
    python benchmarks/causal_cache.py --model mar-tiny --tokens 256 --head-sampler dpm++ --diffusion-steps 5
"""

import statistics
import time
from dataclasses import replace

import torch

from mar import NAMED_SIZES, MARGenerator, SamplingConfig, named_config
from mar.cli.common import pick_device
from mar.cli.options import NON_NEGATIVE_NUMBER, POSITIVE, Parser, text
from mar.precision import autocast, resolve_precision
from mar.sampling.causal import sample_causal
from mar.sampling.config import HEAD_SAMPLERS


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument("--model", default="mar-micro", choices=list(NAMED_SIZES), help="named size")
    parser.add_argument("--tokens", type=POSITIVE, default=64, help="tokens per image (a square number)")
    parser.add_argument("--batch-size", type=POSITIVE, default=16, help="images per draw")
    parser.add_argument("--head-sampler", default="ddpm", choices=HEAD_SAMPLERS, help="diffusion head's sampler")
    parser.add_argument("--diffusion-steps", type=POSITIVE, default=100, help="head steps per token")
    parser.add_argument("--cfg", type=NON_NEGATIVE_NUMBER, default=2.0, help="guidance scale (1: unguided)")
    parser.add_argument("--rounds", type=POSITIVE, default=3, help="alternating rounds of the two ways")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda or mps")
    parser.add_argument("--amp", default="auto", choices=["auto", "bf16", "fp16", "none"], help="autocast precision")
    return parser


def main(argv=None) -> None:
    parser = build_parser()
    args = parser.parse_args(argv)
    side = round(args.tokens**0.5)
    if side * side != args.tokens:
        parser.error(f"--tokens {args.tokens} is not a square number; use e.g. {side * side} or {(side + 1) ** 2}")
    device = pick_device(args.device)
    precision = resolve_precision(args.amp, device)
    config = named_config(args.model, num_classes=10, latent_channels=16, latent_size=side, patch_size=1)
    torch.manual_seed(0)
    model = MARGenerator(replace(config, attention="causal")).to(device).eval()
    labels = torch.arange(args.batch_size, device=device) % config.num_classes
    sampling = SamplingConfig(cfg=args.cfg, head_sampler=args.head_sampler, diffusion_steps=args.diffusion_steps)

    def timed(recompute: bool) -> float:
        started = time.perf_counter()
        with autocast(device, precision):
            sample_causal(model, labels, sampling, torch.Generator(device).manual_seed(0), recompute=recompute)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter() - started

    timed(False)  # warm-up
    seconds = {"cache": [], "recompute": []}
    for _ in range(args.rounds):
        seconds["cache"].append(timed(False))
        seconds["recompute"].append(timed(True))
    name = "fp32" if precision is None else str(precision).removeprefix("torch.")
    print(
        f"{args.model} causal, {args.tokens} tokens, batch {args.batch_size}, {args.head_sampler} {args.diffusion_steps} "
        f"head steps, cfg {args.cfg:g}, {name} on {device}, {torch.get_num_threads()} threads, median of {args.rounds}"
    )
    cache, recompute = statistics.median(seconds["cache"]), statistics.median(seconds["recompute"])
    for way, value in (("cache", cache), ("recompute", recompute)):
        print(f"  {way:<10} {args.batch_size / value:8.1f} images/s  ({value:.2f} s per draw)")
    print(f"  cache / recompute: {recompute / cache:.2f}x")


if __name__ == "__main__":
    main()
