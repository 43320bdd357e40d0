"""Training and sampling throughput of a named MAR size, and the share of time in the backbone vs the head.

Several --patch-size, --head-depth, --attention or --order values build one model each; their training steps and
sampling draws are timed in alternating rounds in one run, and each rate is printed with its ratio to the first
variant's. A causal model trains teacher-forced on every token and samples one token per step with its key/value
cache (K does not apply to it); its backbone share counts the cache's start and steps.

Examples:
    python benchmarks/throughput.py                                   # mar-tiny, embedded-default geometry, CPU
    python benchmarks/throughput.py --model mar-micro --batch-size 32 --head-depth 3 2 --rounds 4
    python benchmarks/throughput.py --model mar-base --data imagenet256 --device cuda --batch-size 64 --amp bf16
    python benchmarks/throughput.py --model mar-micro --attention bidirectional causal --order random raster
"""

import contextlib
import itertools

import torch
from shared import GEOMETRIES, Timer

from mar import NAMED_SIZES, MARGenerator, named_config, sample_latents
from mar.cli.common import pick_device
from mar.cli.options import NON_NEGATIVE, POSITIVE, POSITIVE_NUMBER, Parser, number, text
from mar.model.config import ATTENTIONS, ORDERS
from mar.model.masking import orders_for
from mar.model.tokens import patchify
from mar.precision import autocast, resolve_precision


class TrainingBench:
    """Times training steps of one model: whole steps, and the backbone and head alone on the same masked batch."""

    def __init__(self, model, batch_size: int, precision, device):
        config = model.config
        self.model, self.batch_size, self.precision, self.device = model, batch_size, precision, device
        self.optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        self.latents = torch.randn(
            batch_size, config.latent_channels, config.latent_size, config.latent_size, device=device
        )
        self.labels = torch.randint(0, config.num_classes, (batch_size,), device=device)
        self.generator = torch.Generator(device).manual_seed(0)
        self.full, self.backbone, self.head = Timer(device), Timer(device), Timer(device)
        self.timed_steps = 0

    def run(self, steps: int, timed: bool = True) -> None:
        model, device, precision = self.model, self.device, self.precision
        for _ in range(steps):
            with self.full() if timed else contextlib.nullcontext():
                with autocast(device, precision):
                    loss = model.loss(self.latents, self.labels, self.generator)
                self.optimizer.zero_grad(set_to_none=True)
                loss.backward()
                self.optimizer.step()
            if not timed:
                continue
            self.timed_steps += 1
            # The two parts alone, forward and backward, on the same batch: the masked tokens, or every token of a
            # causal model.
            tokens = patchify(self.latents, model.config.patch_size)
            with self.backbone(), autocast(device, precision):
                z, trained = self.backbone_z(tokens)
                z[trained].float().square().mean().backward()
            z_trained = z[trained].detach().requires_grad_()
            with self.head(), autocast(device, precision):
                model.head.loss(z_trained, tokens[trained], generator=self.generator).backward()
            model.zero_grad(set_to_none=True)

    def backbone_z(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """z (b, l, d) at every position and the positions the loss covers (b, l) bool, as the model's loss takes them."""
        model, b = self.model, tokens.shape[0]
        config = model.config
        if config.attention == "causal":
            orders = orders_for(config.order, b, config.seq_len, self.generator, tokens.device)
            z = model.backbone(tokens, self.labels, orders)
            return z, torch.ones(z.shape[:2], dtype=torch.bool, device=z.device)
        mask = model.training_mask(b, tokens.device, self.generator).bool()
        return model.backbone(tokens, self.labels, mask), mask

    def results(self) -> dict:
        parts = self.backbone.seconds + self.head.seconds
        return {
            "train images/s": self.batch_size * self.timed_steps / self.full.seconds,
            "train backbone share": self.backbone.seconds / parts,
            "train head share": self.head.seconds / parts,
        }


def timed_call(timer: Timer, fn):
    """fn, with each call's time added to timer."""

    def wrapper(*a, **k):
        with timer():
            return fn(*a, **k)

    return wrapper


class SamplingBench:
    """Times whole sampling draws of one model, and the share of them spent in the backbone and in the head."""

    def __init__(self, model, args, device):
        self.model, self.args, self.device = model, args, device
        self.labels = torch.randint(0, model.config.num_classes, (args.sample_batch_size,), device=device)
        self.generator = torch.Generator(device).manual_seed(0)
        self.total, self.backbone, self.head = Timer(device), Timer(device), Timer(device)
        self.draws = 0

    @torch.no_grad()
    def run(self, timed: bool = True) -> None:
        model, args = self.model.eval(), self.args
        kwargs = dict(
            num_iter=args.num_iter, diffusion_steps=args.diffusion_steps, cfg=args.cfg, generator=self.generator
        )
        # The backbone's sampling entry points: the cache's start and steps for a causal model.
        entries = ["start", "step"] if model.config.attention == "causal" else ["at_positions"]
        if timed:
            for name in entries:
                setattr(model.backbone, name, timed_call(self.backbone, getattr(model.backbone, name)))
            model.head.sample = timed_call(self.head, model.head.sample)
        try:
            with self.total() if timed else contextlib.nullcontext(), autocast(self.device, args.precision):
                sample_latents(model, self.labels, **kwargs)
        finally:
            if timed:
                for name in entries:
                    delattr(model.backbone, name)
                del model.head.sample
        self.draws += timed

    def results(self) -> dict:
        return {
            "sample images/s": self.args.sample_batch_size * self.draws / self.total.seconds,
            "sample backbone share": self.backbone.seconds / self.total.seconds,
            "sample head share": self.head.seconds / self.total.seconds,
        }


def variant_name(patch: int, depth: int | None, attention: str, order: str) -> str:
    name = f"patch {patch}" + ("" if depth is None else f", head depth {depth}")
    return name + ("" if attention == "bidirectional" else f", causal, {order} order")


def print_results(results: dict[str, dict], rate: str) -> None:
    """One block per variant; with several, each one's rate as a ratio of the first's."""
    first = next(iter(results.values()))[rate]
    for name, values in results.items():
        if len(results) > 1:
            print(f"  {name}")
        for key, value in values.items():
            print(f"  {key:24s} {value:10.2f}")
        if len(results) > 1:
            print(f"  {'vs the first':24s} {values[rate] / first:9.2f}x")


def main(argv=None) -> None:
    parser = Parser(description=__doc__)
    parser.add_argument("--model", default="mar-tiny", choices=list(NAMED_SIZES))
    parser.add_argument("--data", default="glyphs32", choices=list(GEOMETRIES), help="latent geometry and classes")
    parser.add_argument(
        "--patch-size",
        type=POSITIVE,
        nargs="+",
        default=None,
        help="latent patch per token; several are timed in alternation (default: the geometry's)",
    )
    parser.add_argument(
        "--head-depth",
        type=POSITIVE,
        nargs="+",
        default=None,
        help="diffusion head blocks; several are timed in alternation (default: the model's)",
    )
    parser.add_argument(
        "--attention",
        nargs="+",
        default=["bidirectional"],
        choices=ATTENTIONS,
        help="bidirectional (MAR) or causal (the paper's Table 1 AR rows); several are timed in alternation",
    )
    parser.add_argument(
        "--order",
        nargs="+",
        default=["random"],
        choices=ORDERS,
        help="a causal model's generation order; raster applies to causal models only",
    )
    parser.add_argument(
        "--mask-ratio-min",
        type=number(0.0, 1.0, high_open=True),
        default=None,
        help="lowest training mask ratio (default: the model's)",
    )
    parser.add_argument(
        "--mask-ratio-std",
        type=POSITIVE_NUMBER,
        default=None,
        help="std of the training mask-ratio law, a normal of mean 1 truncated to [--mask-ratio-min, 1] (default: the model's)",
    )
    parser.add_argument("--device", type=text, default="auto")
    parser.add_argument("--batch-size", type=POSITIVE, default=64, help="training images per step")
    parser.add_argument("--steps", type=POSITIVE, default=10, help="timed training steps per variant and round")
    parser.add_argument("--warmup", type=NON_NEGATIVE, default=3, help="untimed training steps first")
    parser.add_argument(
        "--rounds",
        type=POSITIVE,
        default=2,
        help="rounds over the variants, each timing --steps training steps and one sampling draw of every variant",
    )
    parser.add_argument("--sample-batch-size", type=POSITIVE, default=64, help="images sampled at once")
    parser.add_argument("--num-iter", type=POSITIVE, default=16, help="autoregressive steps K")
    parser.add_argument("--diffusion-steps", type=POSITIVE, default=100, help="DDPM steps per token")
    parser.add_argument(
        "--cfg", type=number(1.0), default=3.0, help="guidance scale (1 = none, half the backbone work)"
    )
    parser.add_argument("--amp", default="none", choices=["auto", "none", "bf16"], help="autocast dtype")
    args = parser.parse_args(argv)
    device = pick_device(args.device)
    args.precision = resolve_precision(args.amp, device)
    classes, channels, side, default_patch = GEOMETRIES[args.data]
    patches = args.patch_size or [default_patch]
    for patch in patches:
        if side % patch:
            parser.error(
                f"--patch-size {patch} does not divide the latent side {side}; use one of "
                f"{[p for p in range(1, side + 1) if side % p == 0]}"
            )
        if args.num_iter > (side // patch) ** 2:
            parser.error(
                f"--num-iter {args.num_iter} must lie in [1, {(side // patch) ** 2}], the tokens per image at patch {patch}"
            )
    depths = args.head_depth or [None]
    # The bidirectional model draws in a random order only, so raster pairs with causal attention alone.
    kinds = [(a, o) for a in args.attention for o in args.order if a == "causal" or o == "random"]
    if not kinds:
        parser.error("--order raster applies to causal models only; add --attention causal or --order random")
    models = {}
    for patch, depth, (attention, order) in itertools.product(patches, depths, kinds):
        given = {"mask_ratio_min": args.mask_ratio_min, "mask_ratio_std": args.mask_ratio_std}
        config = named_config(
            args.model,
            num_classes=classes,
            latent_channels=channels,
            latent_size=side,
            patch_size=patch,
            attention=attention,
            order=order,
            **{name: value for name, value in given.items() if value is not None},
        ).with_head(**({} if depth is None else {"depth": depth}))
        torch.manual_seed(0)
        models[variant_name(patch, depth, attention, order)] = MARGenerator(config).to(device)
    for name, model in models.items():
        params = sum(p.numel() for p in model.parameters()) / 1e6
        print(
            f"{args.model}, {name} ({params:.1f}M parameters), {args.data}: {model.config.seq_len} tokens x "
            f"{model.config.token_dim} channels, device {device}, amp {args.amp}, {torch.get_num_threads()} CPU threads"
        )

    training = {name: TrainingBench(model, args.batch_size, args.precision, device) for name, model in models.items()}
    for bench in training.values():
        bench.run(args.warmup, timed=False)
    for _ in range(args.rounds):
        for bench in training.values():
            bench.run(args.steps)
    print(f"training: batch {args.batch_size}, {args.steps} timed steps x {args.rounds} rounds per variant, alternated")
    print_results({name: bench.results() for name, bench in training.items()}, "train images/s")

    sampling = {name: SamplingBench(model, args, device) for name, model in models.items()}
    for bench in sampling.values():
        bench.run(timed=False)  # warm-up
    for _ in range(args.rounds):
        for bench in sampling.values():
            bench.run()
    print(
        f"sampling: batch {args.sample_batch_size}, K={args.num_iter}, {args.diffusion_steps} diffusion steps, "
        f"cfg={args.cfg}, {args.rounds} draws per variant, alternated"
    )
    print_results({name: bench.results() for name, bench in sampling.items()}, "sample images/s")


if __name__ == "__main__":
    main()
