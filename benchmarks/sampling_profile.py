"""Where a draw's time goes: the backbone (every call that computes z) against the head (every token draw), per
sampler setting, one untimed warm-up draw then one timed draw each, at the command line's guidance defaults.

Examples:
    python benchmarks/sampling_profile.py --checkpoint runs/default
    python benchmarks/sampling_profile.py --checkpoint runs/default --settings ddpm:100,reuse=none ddpm:10@16,cache=16
"""

import time

import torch
from speed import GUIDANCE, sampling_fields, setting

from mar import sample_latents
from mar.cli.options import POSITIVE, Parser, fail, text
from mar.sampling import guidance
from mar.train.checkpoint import load_checkpoint


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument("--checkpoint", type=text, default="runs/default", help="a run folder or checkpoint")
    parser.add_argument(
        "--settings",
        type=setting,
        nargs="+",
        default=[
            setting(s)
            for s in (
                "ddpm:100,reuse=none",
                "ddpm:10@16",
                "ddpm:10@4,cache=16,growth=2,buffer=kept,k=8",  # --fast
                "ddpm:10@4,cache=16,growth=2,buffer=kept,k=8,head=guided",
            )
        ],
        help="sampler settings as benchmarks/speed.py writes them",
    )
    parser.add_argument("--samples", type=POSITIVE, default=250, help="images per draw (one batch)")
    return parser


class Stopwatch:
    """Seconds spent in the wrapped calls, by name."""

    def __init__(self):
        self.seconds = {"backbone": 0.0, "head": 0.0}

    def wrap(self, name: str, call):
        def timed(*args, **kwargs):
            started = time.perf_counter()
            try:
                return call(*args, **kwargs)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    checkpoint = load_checkpoint(args.checkpoint, "cpu")
    model, guided_head = checkpoint.sampling_model, checkpoint.guided_head
    if guided_head is None and any(chosen.get("guided_head") for chosen in args.settings):
        fail(f"a setting draws with head=guided, and {args.checkpoint} has none; write one with `mar distill-head`")
    if model.config.attention == "causal":
        fail(
            "this profile splits MAR's (bidirectional) sampler; for a causal checkpoint use benchmarks/throughput.py "
            "--attention causal or benchmarks/causal_cache.py"
        )
    labels = torch.arange(args.samples) % model.config.num_classes
    print(f"{args.checkpoint}, {args.samples} images, {torch.get_num_threads()} threads, fp32, {GUIDANCE['cli']}")
    real = guidance.Conditions.run, guidance.Conditions.class_only
    for chosen in args.settings:
        sampling = sampling_fields(chosen) | GUIDANCE["cli"]
        head = guided_head if sampling.get("guided_head") else model.head
        sample_latents(model, labels, generator=torch.Generator().manual_seed(0), head=guided_head, **sampling)
        watch = Stopwatch()  # the draw above warmed up
        guidance.Conditions.run = watch.wrap("backbone", real[0])
        guidance.Conditions.class_only = watch.wrap("backbone", real[1])
        head.sample = watch.wrap("head", type(head).sample.__get__(head))
        try:
            started = time.perf_counter()
            sample_latents(model, labels, generator=torch.Generator().manual_seed(0), head=guided_head, **sampling)
            total = time.perf_counter() - started
        finally:
            guidance.Conditions.run, guidance.Conditions.class_only = real
            del head.sample
        backbone, head = watch.seconds["backbone"], watch.seconds["head"]
        print(
            f"  {chosen['name']:24s} {total:6.2f} s: backbone {backbone:5.2f} s ({backbone / total:4.0%}), "
            f"head {head:5.2f} s ({head / total:4.0%}), rest {total - backbone - head:5.2f} s"
        )


if __name__ == "__main__":
    main()
