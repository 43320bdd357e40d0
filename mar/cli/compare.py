"""Compare MAR's diffusion head on KL latents with the discrete baselines: one backbone, one budget, seeds, intervals.

Variants, each trained by train.py with the same backbone, steps, batch and sampling budget:
    kl-diffusion   diffusion head on KL latents (MAR)
    vq-ce          categorical head, cross-entropy on VQ indices
    fsq-ce         categorical head, cross-entropy on FSQ indices
    vq-diffusion   diffusion head on VQ code vectors (the paper's third variant; not run unless named)
Each variant first gets its own learning rate and warmup: the same small grid of short runs for every variant,
ranked by the variant's own loss on held-out images. Then every seed trains its own tokenizer (the table1 budget:
one per kind, shared by every seed) and generator and draws the same number of images per class, unguided and
guided. --variants table1 runs the paper's Table 1 rows instead (causal and raster autoregression beside MAR). Samples are scored in the feature space of a
small classifier trained once per dataset (FID, class accuracy, k-NN precision / recall; it also decides once, for
every variant, whether a folder's images get mirrored views, as train.py decides it), tokenizers by PSNR,
rFID and codebook usage; the table gives means with 95% intervals over the seeds, and one line per claim says
whether the diffusion head on KL is ahead by more than the intervals. The diffusion head on KL (first seed) is
also swept over temperature and K.
Outputs in --output: table.md, results.json, samples.png (a grid per variant, first seed), sweep-temperature.png,
sweep-num-iter.png; tokenizers, latent caches, sweep runs and runs are kept there (the classifier in --cache-dir),
so a re-run only scores.

Examples:
    mar compare                       # the default budget on the embedded glyph set, 3 seeds
    mar compare --budget tiny         # a smoke run of a few minutes, 2 seeds
    mar compare --variants table1 --budget table1 --tokenizer-pixel-loss mse --kl-initial-logvar -8
    mar compare --budget gpu --device cuda --output runs/compare-gpu
    mar compare --data-path /data/flowers/train --image-size 64 --budget gpu --device cuda
    mar compare --inception-weights weights-inception-2015-12-05-6726825d.pth --inception-reference ref.npz
"""

import argparse
import json
import platform
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

from mar.cli import train, train_tokenizer
from mar.cli.common import add_data_arguments, dataset_name, open_dataset, pick_device
from mar.cli.options import POSITIVE, SEED, Parser, check_writable_folder, fail, number, text
from mar.cli.train_report import mirrored_views
from mar.data.glyphs import glyph_dataset
from mar.data.images import grid_image, save_panels
from mar.eval.comparison import REFERENCE_VARIANT, claims, gather, markdown, to_json
from mar.eval.held_out_loss import held_out_latents, held_out_loss
from mar.eval.inception import InceptionUnavailable, check_inception, inception_metrics, reference_statistics
from mar.eval.quality import reference_set, sample_metrics, tokenizer_metrics
from mar.eval.reference_data import dataset_classifier
from mar.sampling.loop import sample_latents
from mar.train.checkpoint import load_checkpoint
from mar.train.recipes import RECIPES
from mar.train.run_log import draw_curve
from vae import PIXEL_LOSSES, load_tokenizer


@dataclass(frozen=True)
class Budget:
    num_images: int  # training images (glyph set size)
    reference_images: int  # held-out real images: the classifier's test set and the metrics' reference
    classifier_steps: int
    tokenizer_steps: int
    epochs: int
    batch_size: int
    per_class: int  # samples per class, setting and seed
    num_iter: int  # K
    diffusion_steps: int
    temperatures: tuple[float, ...]  # sweep of the diffusion head on KL, at K = num_iter
    num_iters: tuple[int, ...]  # sweep of K, at temperature 1
    sweep_per_class: int  # samples per class and sweep point
    seeds: int  # each seed trains its own tokenizers and generators
    lr_factors: tuple[float, ...]  # recipe sweep: multiples of the model's recipe learning rate ...
    warmup_fractions: tuple[float, ...]  # ... crossed with warmups, as fractions of the run
    sweep_epochs: int  # length of each recipe-sweep run
    model: str = "mar-tiny"
    cfg: float = (
        4.0  # the guided setting (constant schedule, as train.py and sample.py sample; their default scale is 2)
    )
    tokenizer_per_seed: bool = True  # each seed trains its own tokenizers, or every seed uses the first seed's


BUDGETS = {
    # A smoke run of every stage; mar-micro keeps the test suite's three compare runs about 45 s shorter than mar-tiny.
    "tiny": Budget(
        num_images=200,
        reference_images=100,
        classifier_steps=20,
        tokenizer_steps=4,
        epochs=1,
        batch_size=40,
        per_class=3,
        num_iter=4,
        diffusion_steps=5,
        temperatures=(0.8, 1.0),
        num_iters=(2, 4),
        sweep_per_class=2,
        seeds=2,
        lr_factors=(1.0, 2.0),
        warmup_fractions=(0.0,),
        sweep_epochs=1,
        model="mar-micro",
    ),
    "small": Budget(
        num_images=3000,
        reference_images=500,
        classifier_steps=300,
        tokenizer_steps=400,
        epochs=4,
        batch_size=64,
        per_class=50,
        num_iter=8,
        diffusion_steps=50,
        temperatures=(0.7, 1.0, 1.3),
        num_iters=(2, 4, 8),
        sweep_per_class=20,
        seeds=3,
        lr_factors=(0.5, 1.0, 2.0),
        warmup_fractions=(0.15,),
        sweep_epochs=2,
    ),
    # mar-micro (the CPU default's model, about 3x mar-tiny's images/s) so that 3 seeds fit 75 minutes on 2 cores
    # (4490 s on the AMX Xeon). 1600 tokenizer steps: at 800 the KL tokenizer of seed 2 stayed on the colour
    # plateau (14.86 dB; 23.02 at 1600). The rate grid stops at the recipe's: the 2-epoch sweep ranked 2x first for
    # every head, and all 9 generators trained at 2x ignored the class (docs/experiments/2026-12-02-compare-learning-rates.md).
    "default": Budget(
        num_images=10_000,
        reference_images=1000,
        classifier_steps=600,
        tokenizer_steps=1600,
        epochs=12,
        batch_size=64,
        per_class=100,
        num_iter=16,
        diffusion_steps=100,
        temperatures=(0.6, 0.8, 1.0, 1.2),
        num_iters=(1, 2, 4, 8, 16),
        sweep_per_class=40,
        seeds=3,
        lr_factors=(0.5, 1.0),
        warmup_fractions=(0.0, 0.15),
        sweep_epochs=2,
        model="mar-micro",
    ),
    "gpu": Budget(
        num_images=50_000,
        reference_images=5000,
        classifier_steps=3000,
        tokenizer_steps=5000,
        epochs=100,
        batch_size=256,
        per_class=500,
        num_iter=16,
        diffusion_steps=100,
        temperatures=(0.6, 0.8, 0.9, 1.0, 1.1, 1.2, 1.4),
        num_iters=(1, 2, 4, 8, 16, 32),
        sweep_per_class=200,
        seeds=3,
        lr_factors=(0.5, 1.0, 2.0),
        warmup_fractions=(0.0, 0.15),
        sweep_epochs=20,
        model="mar-base",
    ),
    # The paper's Table 1 in about 90 minutes on 2 cores (AVX2, fp32): six trained variants x 3 seeds. One tokenizer
    # per kind serves every seed (the rows differ in the generator only), 5 epochs per run (780 steps), a two-point
    # rate sweep, and K = 4 for MAR's default row (4 tokens per step of 16, the paper's 256 / 64).
    "table1": Budget(
        num_images=10_000,
        reference_images=1000,
        classifier_steps=600,
        tokenizer_steps=1000,
        epochs=5,
        batch_size=64,
        per_class=100,
        num_iter=4,
        diffusion_steps=50,
        temperatures=(0.6, 0.8, 1.0, 1.2),
        num_iters=(1, 2, 4, 8, 16),
        sweep_per_class=40,
        seeds=3,
        lr_factors=(0.5, 1.0),
        warmup_fractions=(0.15,),
        sweep_epochs=2,
        model="mar-micro",
        tokenizer_per_seed=False,
    ),
}
# mar train-tokenizer's own defaults, and so the recipe of tokenizers recorded before these options existed
DEFAULT_TOKENIZER_RECIPE = {
    key: train_tokenizer.build_parser().get_default(key) for key in ("pixel_loss", "initial_logvar")
}


@dataclass(frozen=True)
class Variant:
    name: str
    kind: str  # tokenizer: kl, vq or fsq
    head: str  # diffusion or categorical
    attention: str = "bidirectional"
    order: str = "random"
    one_per_step: bool = False  # sample with K = the token count (a causal model always draws one per step)
    trains_as: str | None = None  # the variant whose runs it samples (it trains nothing of its own)
    paper: tuple[float, float] | None = None  # the paper's FID without / with guidance (Table 1, MAR-L)

    @property
    def run_name(self) -> str:
        return self.trains_as or self.name


VARIANTS = [
    Variant("kl-diffusion", "kl", "diffusion", paper=(3.50, 1.98)),
    Variant("vq-ce", "vq", "categorical", paper=(8.79, 3.69)),
    Variant("fsq-ce", "fsq", "categorical"),
    Variant("vq-diffusion", "vq", "diffusion"),
    # The paper's Table 1 (Li et al. 2024): AR and MAR over continuous (diffusion) or VQ (cross-entropy) tokens.
    Variant("ar-raster-kl-diffusion", "kl", "diffusion", "causal", "raster", paper=(19.23, 4.69)),
    Variant("ar-raster-vq-ce", "vq", "categorical", "causal", "raster", paper=(19.58, 4.92)),
    Variant("causal-random-kl-diffusion", "kl", "diffusion", "causal", paper=(13.07, 4.07)),
    Variant("causal-random-vq-ce", "vq", "categorical", "causal", paper=(16.22, 4.36)),
    Variant(
        "one-per-step-kl-diffusion", "kl", "diffusion", one_per_step=True, trains_as="kl-diffusion", paper=(3.43, 1.84)
    ),
    Variant("one-per-step-vq-ce", "vq", "categorical", one_per_step=True, trains_as="vq-ce", paper=(8.75, 3.50)),
]
BY_NAME = {v.name: v for v in VARIANTS}
DEFAULT_VARIANTS = ["kl-diffusion", "vq-ce", "fsq-ce"]
# Named sets for --variants; table1 in the paper's row order, each row with both heads.
VARIANT_SETS = {
    "table1": [
        "ar-raster-vq-ce",
        "ar-raster-kl-diffusion",
        "causal-random-vq-ce",
        "causal-random-kl-diffusion",
        "one-per-step-vq-ce",
        "one-per-step-kl-diffusion",
        "vq-ce",
        "kl-diffusion",
    ],
}


def parse_args(argv=None) -> argparse.Namespace:
    args = build_parser().parse_args(argv)
    budget = BUDGETS[args.budget]
    if args.num_images is None:  # training images (the glyph set's size) follow the budget unless given
        args.num_images = budget.num_images
    args.seeds = list(range(args.seed, args.seed + (args.num_seeds or budget.seeds)))
    args.variants = list(dict.fromkeys(n for given in args.variants for n in VARIANT_SETS.get(given, [given])))
    return args


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    add_data_arguments(parser)
    parser.add_argument("--budget", default="default", choices=list(BUDGETS), help="scale of every stage (see BUDGETS)")
    parser.add_argument(
        "--variants",
        nargs="+",
        default=DEFAULT_VARIANTS,
        choices=[*BY_NAME, *VARIANT_SETS],
        help="variants to train and score; table1: the paper's Table 1 rows, each with both heads",
    )
    parser.add_argument(
        "--patch-size", type=POSITIVE, default=2, help="latent patch per token, the same for every variant"
    )
    parser.add_argument(
        "--tokenizer-pixel-loss",
        default=DEFAULT_TOKENIZER_RECIPE["pixel_loss"],
        choices=PIXEL_LOSSES,
        help="reconstruction term of every tokenizer: l1, or mse (the textures' choice, docs/data-and-tokenizers.md)",
    )
    parser.add_argument(
        "--kl-initial-logvar",
        type=number(-20, 5),
        default=DEFAULT_TOKENIZER_RECIPE["initial_logvar"],
        help="the KL tokenizer's posterior log-variance at the start (-8 on the textures, docs/data-and-tokenizers.md)",
    )
    parser.add_argument("--output", type=text, default=None, help="folder of everything; default runs/compare-<budget>")
    parser.add_argument("--seed", type=SEED, default=0, help="first seed; the others follow it")
    parser.add_argument(
        "--seeds",
        dest="num_seeds",
        type=POSITIVE,
        default=None,
        help="seeds per variant (default: the budget's, 3 except tiny); the intervals need at least 2",
    )
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    parser.add_argument(
        "--inception-weights",
        type=text,
        default=None,
        help="torch-fidelity's Inception weights file (.pth), for Inception FID/IS",
    )
    parser.add_argument(
        "--inception-reference",
        type=text,
        default=None,
        help="reference statistics .npz with mu and sigma (e.g. ADM's)",
    )
    parser.add_argument("--no-progress", action="store_true", help="hide progress bars")
    parser.set_defaults(num_images=None, flip=None)  # mirrored views: decided from the data by the classifier
    return parser


def data_arguments(args) -> list[str]:
    given = [
        "--image-size",
        str(args.image_size),
        "--cache-dir",
        args.cache_dir,
        "--num-images",
        str(args.num_images),
        "--data-seed",
        str(args.data_seed),
    ]
    return given + (["--data-path", args.data_path] if args.data_path else [])


def validation_set(args, budget: Budget, reference: tuple) -> tuple:
    """Images the recipe sweep scores: glyphs of seed --data-seed + 2 (neither trained on nor the FID reference), or
    an ImageFolder's held-out images (the generators train on the whole folder, as train.py does)."""
    if args.data_path is None:
        return glyph_dataset(
            budget.reference_images, args.image_size, args.data_seed + 2, cache_dir=args.cache_dir
        ).tensors
    return reference


def tokenizer_recipe(args, kind: str) -> dict:
    """The tokenizer settings given to mar train-tokenizer beyond the budget, as its metrics.json records them."""
    return {"pixel_loss": args.tokenizer_pixel_loss} | (
        {"initial_logvar": args.kl_initial_logvar} if kind == "kl" else {}
    )


def tokenizer_seed(args, budget: Budget, seed: int) -> int:
    """The seed whose tokenizers a run of ``seed`` uses: its own, or the first seed's where the budget shares them."""
    return seed if budget.tokenizer_per_seed else args.seeds[0]


def tokenizer_folder(args, budget: Budget, kind: str, seed: int, output: Path) -> Path:
    """``output/tokenizers/<kind>/seed-<s>`` (s: ``tokenizer_seed``), trained by mar train-tokenizer unless it holds
    one of this budget and tokenizer recipe already (one recorded before the recipe options existed is of the
    defaults: l1, logvar 0)."""
    seed = tokenizer_seed(args, budget, seed)
    folder = output / "tokenizers" / kind / f"seed-{seed}"
    metrics = folder / "metrics.json"
    recipe = tokenizer_recipe(args, kind)
    kept = json.loads(metrics.read_text()) if metrics.is_file() else {}
    if kept.get("steps") != budget.tokenizer_steps or any(
        kept.get(k, DEFAULT_TOKENIZER_RECIPE[k]) != v for k, v in recipe.items()
    ):
        images = args.num_images
        extra = (
            ["--vq-update", "ema"] if kind == "vq" else []
        )  # EMA codebooks reconstruct better here (docs/results.md)
        extra += [item for key, value in recipe.items() for item in (f"--{key.replace('_', '-')}", str(value))]
        train_tokenizer.main(
            data_arguments(args)
            + extra
            + [
                "--kind",
                kind,
                "--steps",
                str(budget.tokenizer_steps),
                "--images",
                str(images),
                "--held-out",
                str(max(1, min(512, images // 10))),
                "--output",
                str(folder),
                "--seed",
                str(seed),
                "--device",
                args.device,
                "--overwrite",
            ]
            + (["--no-progress"] if args.no_progress else [])
        )
    return folder


def run_settings(args, budget: Budget, variant: Variant, seed: int, recipe: dict, epochs: int) -> dict:
    """What a run folder's compare.json records of its training, as JSON reads it back (tuples as lists)."""
    kind = variant.kind
    budget_record = asdict(budget)
    if budget.tokenizer_per_seed:  # the default, left out so that run folders of earlier versions stay valid
        del budget_record["tokenizer_per_seed"]
    settings = {
        "budget": budget_record,
        "kind": kind,
        "head": variant.head,
        "patch_size": args.patch_size,
        "seed": seed,
        "epochs": epochs,
    } | recipe
    # attention and order where they are not MAR's, so that run folders of earlier versions stay valid
    settings |= {"attention": variant.attention, "order": variant.order} if variant.attention != "bidirectional" else {}
    # the tokenizer's recipe where it is not the default, so that run folders of earlier versions stay valid
    settings |= {
        f"tokenizer_{k}": v for k, v in tokenizer_recipe(args, kind).items() if v != DEFAULT_TOKENIZER_RECIPE[k]
    }
    return json.loads(json.dumps(settings))


def refuse_other_settings(run: Path) -> None:
    # train.py --resume would take the finished run of the old settings as done, and the marker would relabel it
    fail(
        f"{run} holds a run of other settings than this budget and recipe ({run / 'compare.json'} differs); "
        "delete that folder or give another --output"
    )


def sweep_recipes(budget: Budget) -> list[tuple[str, dict]]:
    """(run folder name, recipe) for every (learning rate, warmup) of the budget's sweep grid."""
    base_lr = RECIPES[budget.model].blr * budget.batch_size / 256
    return [
        (f"lr{factor:g}x-warmup{fraction:g}", {"lr": base_lr * factor, "warmup_epochs": fraction * budget.sweep_epochs})
        for factor in budget.lr_factors
        for fraction in budget.warmup_fractions
    ]


def check_kept_runs(args, budget: Budget, output: Path) -> None:
    """Stops before any work at a kept run folder of other settings (another budget, seed or patch size in a reused
    --output). A seed's run is checked but for its recipe, which its sweep chooses later (train_variant checks it)."""
    for variant in training_variants(args.variants):
        name = variant.name
        runs = [
            (output / "sweep" / name / folder, args.seeds[0], recipe, budget.sweep_epochs)
            for folder, recipe in sweep_recipes(budget)
        ]
        runs += [(output / "runs" / name / f"seed-{seed}", seed, None, budget.epochs) for seed in args.seeds]
        for run, seed, recipe, epochs in runs:
            marker = run / "compare.json"
            if not marker.is_file():
                continue
            kept = json.loads(marker.read_text())
            if recipe is None:  # a seed's run, whose recipe is not known yet
                kept = {key: value for key, value in kept.items() if key not in ("lr", "warmup_epochs")}
            if kept != run_settings(args, budget, variant, seed, recipe or {}, epochs):
                refuse_other_settings(run)


def training_variants(names: list[str]) -> list[Variant]:
    """The variants whose runs ``names`` need, each once: a variant that samples another's runs needs that one."""
    return [BY_NAME[n] for n in dict.fromkeys(BY_NAME[name].run_name for name in names)]


def train_variant(
    args, budget: Budget, variant: Variant, seed: int, recipe: dict, output: Path, run: Path, epochs: int
) -> Path:
    """Trains one generator through train.py, unless ``run`` records a finished run of these settings; ``run``.

    A run of these settings that a stop signal ended early (train.py saves and returns; only a run that reaches its
    last step writes metrics.json) is continued with --resume, never sampled as it is."""
    kind, head = variant.kind, variant.head
    marker, settings = run / "compare.json", run_settings(args, budget, variant, seed, recipe, epochs)
    if marker.is_file():
        if json.loads(marker.read_text()) != settings:
            refuse_other_settings(run)
        if run_finished(run):
            return run
    (output / "latents").mkdir(parents=True, exist_ok=True)  # train.py creates a --latent-cache folder, not its parent
    train.main(
        data_arguments(args)
        + [
            "--tokenizer",
            str(output / "tokenizers" / kind / f"seed-{tokenizer_seed(args, budget, seed)}"),
            "--latent-cache",
            str(output / "latents" / f"{kind}-seed-{tokenizer_seed(args, budget, seed)}"),
            "--head",
            head,
            "--attention",
            variant.attention,
            "--order",
            variant.order,
            "--model",
            budget.model,
            "--patch-size",
            str(args.patch_size),
            "--epochs",
            str(epochs),
            "--batch-size",
            str(budget.batch_size),
            "--lr",
            str(recipe["lr"]),
            "--warmup-epochs",
            str(recipe["warmup_epochs"]),
            "--num-iter",
            str(budget.num_iter),
            "--diffusion-steps",
            str(budget.diffusion_steps),
            "--quality",
            "off",
            "--flip" if args.flip else "--no-flip",
            "--time-budget",
            "0",  # every variant trains its whole schedule, however slow the machine
            "--samples-per-class",
            "4",
            "--seed",
            str(seed),
            "--device",
            args.device,
            "--output",
            str(run),
            "--resume",
            "--save-every",
            "100000",
        ]
        + (["--no-progress"] if args.no_progress else [])
    )
    if not run_finished(run):
        fail(f"training in {run} stopped before its last step; run the same command again to continue it")
    marker.write_text(json.dumps(settings))
    return run


def run_finished(run: Path) -> bool:
    """Whether train.py took ``run`` to its last step: it writes metrics.json only then."""
    return (run / "metrics.json").is_file()


def recipe_sweep(args, budget: Budget, variant: Variant, validation: tuple, output: Path) -> list[dict]:
    """Every (learning rate, warmup) of the budget's grid, trained briefly at the first seed and scored by held-out loss.

    Every variant gets the same grid and run length; each keeps the recipe of its own lowest loss (marked "chosen").
    """
    name = variant.name
    tokenizer = load_tokenizer(str(tokenizer_folder(args, budget, variant.kind, args.seeds[0], output)))
    tokenizer = tokenizer.to(args.device).eval()
    latents = held_out_latents(tokenizer, *validation)
    points = []
    for folder, recipe in sweep_recipes(budget):
        run = train_variant(
            args,
            budget,
            variant,
            args.seeds[0],
            recipe,
            output,
            output / "sweep" / name / folder,
            budget.sweep_epochs,
        )
        checkpoint = load_checkpoint(run, args.device)
        loss = held_out_loss(checkpoint.sampling_model, checkpoint.tokenizer, latents, seed=args.seeds[0])
        points.append(recipe | {"held_out_loss": loss})
        print(
            f"recipe sweep {name}: lr {recipe['lr']:.3g}, warmup {recipe['warmup_epochs']:g} epochs: held-out loss {loss:.4f}"
        )
    min(points, key=lambda p: p["held_out_loss"])["chosen"] = True
    return points


@torch.no_grad()
def draw(
    model, tokenizer, labels: torch.Tensor, seed: int, batch_size: int = 500, **sampling
) -> tuple[torch.Tensor, float]:
    """Images (n, 3, s, s) for class ids ``labels`` (n,), and images per second, decoding included."""
    generator = torch.Generator(labels.device).manual_seed(seed)
    started = time.perf_counter()
    images = torch.cat(
        [
            tokenizer.decode_latents(sample_latents(model, chunk, generator=generator, **sampling))
            for chunk in labels.split(batch_size)
        ]
    )
    return images, len(labels) / (time.perf_counter() - started)


def machine(device: torch.device) -> str:
    if device.type == "cuda":
        return f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    cpu = (
        next(
            (
                line.split(":", 1)[1].strip()
                for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")
            ),
            platform.processor(),
        )
        if Path("/proc/cpuinfo").exists()
        else platform.processor()
    )
    return f"{cpu}, {torch.get_num_threads()} threads, torch {torch.__version__}"


def inception_scorer(args):
    """A function images -> Inception metrics when both files are given, else None (with the reason printed)."""
    if args.inception_weights is None and args.inception_reference is None:
        print("Inception FID/IS: skipped (give --inception-weights and --inception-reference to add them)")
        return None

    try:  # before any training, so that a wrong path costs nothing
        check_inception(args.inception_weights)
        reference_statistics(args.inception_reference)
    except InceptionUnavailable as error:
        fail(str(error))
    return lambda images: inception_metrics(images, args.inception_weights, args.inception_reference)


def main(argv=None) -> dict:
    args = parse_args(argv)
    started = time.time()
    budget = BUDGETS[args.budget]
    output = check_writable_folder(args.output or f"runs/compare-{args.budget}", "--output")
    check_kept_runs(args, budget, output)
    device = pick_device(args.device)
    args.device = str(device)
    score_inception = inception_scorer(args)
    dataset, classes = open_dataset(args)
    classifier, classifier_info, train_set, reference_data = dataset_classifier(
        args,
        dataset,
        dataset_name(args),
        len(classes),
        device,
        steps=budget.classifier_steps,
        reference_images=budget.reference_images,
        train_images=budget.num_images,
        progress=not args.no_progress,
    )
    print(
        f"feature classifier: test accuracy {classifier_info['test_accuracy']:.3f} on {len(reference_data[1])} held-out images"
    )
    args.flip = mirrored_views(args, classifier, reference_data, len(classes))  # one decision for every variant
    reference = reference_set(classifier, reference_data[0])
    validation = validation_set(args, budget, reference_data)
    count = len(reference_data[1])  # as many training images as reference ones: the floor FID can reach here
    seed_rows = [
        {
            "variant": "real images (training set)",
            "cfg": None,
            "seed": None,
            **sample_metrics(classifier, reference, train_set[0][:count], train_set[1][:count]),
        }
    ]
    labels = torch.arange(len(classes), device=device).repeat_interleave(budget.per_class)
    sampling = dict(num_iter=budget.num_iter, diffusion_steps=budget.diffusion_steps, cfg_schedule="constant")
    panels, sweeps, recipe_sweeps = {}, {}, {}
    tokenizer_scores = {}  # (kind, tokenizer seed) -> metrics: Table 1's rows share each seed's tokenizers
    for variant in [BY_NAME[name] for name in args.variants]:
        name, kind, head, trained = variant.name, variant.kind, variant.head, BY_NAME[variant.run_name]
        if trained.name not in recipe_sweeps:
            recipe_sweeps[trained.name] = recipe_sweep(args, budget, trained, validation, output)
        recipe = next(
            {"lr": p["lr"], "warmup_epochs": p["warmup_epochs"]} for p in recipe_sweeps[trained.name] if p.get("chosen")
        )
        for seed in args.seeds:
            scored = kind, tokenizer_seed(args, budget, seed)
            if scored not in tokenizer_scores:
                tokenizer = load_tokenizer(str(tokenizer_folder(args, budget, kind, seed, output))).to(device).eval()
                tokenizer_scores[scored] = tokenizer_metrics(tokenizer, classifier, reference)
            about = {"variant": name, "tokenizer": kind, "head": head, "seed": seed} | recipe
            about |= tokenizer_scores[scored]
            run = output / "runs" / trained.name / f"seed-{seed}"
            train_variant(args, budget, trained, seed, recipe, output, run, budget.epochs)
            checkpoint = load_checkpoint(run, device)
            num_iter = checkpoint.model.config.seq_len if variant.one_per_step else budget.num_iter
            for cfg in (1.0, budget.cfg):
                images, rate = draw(
                    checkpoint.sampling_model,
                    checkpoint.tokenizer,
                    labels,
                    seed,
                    temperature=1.0,
                    cfg=cfg,
                    **(sampling | {"num_iter": num_iter}),
                )
                paper = {"paper_fid": variant.paper[0 if cfg == 1.0 else 1]} if variant.paper else {}
                row = (
                    about
                    | paper
                    | {
                        "cfg": cfg,
                        "steps": checkpoint.step,
                        "images_per_s": rate,
                        **sample_metrics(classifier, reference, images, labels),
                    }
                )
                seed_rows.append(row | (score_inception(images) if score_inception is not None else {}))
                print(
                    f"{name} seed {seed} cfg {cfg:g}: FID {row['fid']:.3f}, accuracy {row['accuracy']:.3f}, "
                    f"precision {row['precision']:.3f}, recall {row['recall']:.3f}, {rate:.1f} images/s"
                )
            if seed == args.seeds[0]:
                columns = min(budget.per_class, 8)
                panels[name] = grid_image(
                    images.view(len(classes), budget.per_class, *images.shape[1:])[:, :columns].flatten(0, 1), classes
                )
                if name == REFERENCE_VARIANT:
                    sweeps = sweep(
                        checkpoint.sampling_model, checkpoint.tokenizer, classifier, reference, budget, seed, sampling
                    )
    rows = gather(seed_rows)
    results = {
        "command": " ".join(["mar compare", *(argv if argv is not None else sys.argv[1:])]),
        "machine": machine(device),
        "budget_name": args.budget,
        "budget": asdict(budget),
        "seeds": args.seeds,
        "samples_per_setting": len(labels),
        "mirrored_views": args.flip,
        "classifier": classifier_info,
        "rows": rows,
        "claims": claims(rows, table1_pairs(args.variants)),
        "seed_rows": seed_rows,
        "recipe_sweeps": recipe_sweeps,
        "sweeps": sweeps,
        "seconds": time.time() - started,
    }
    write_outputs(results, panels, output)
    return results


def table1_pairs(names: list[str]) -> list[tuple[str, str]]:
    """The paper's Table 1 claims among the variants asked for, as (expected better, expected worse): within each row
    the diffusion head over cross-entropy, and within each head each row over the one above it."""
    rows = ["ar-raster-", "causal-random-", "one-per-step-", ""]
    pairs = [(row + "kl-diffusion", row + "vq-ce") for row in rows]
    pairs += [
        (lower + head, upper + head) for head in ("kl-diffusion", "vq-ce") for upper, lower in zip(rows, rows[1:])
    ]
    return [(a, b) for a, b in pairs if a in names and b in names]


def sweep(model, tokenizer, classifier, reference, budget: Budget, seed: int, sampling: dict) -> dict:
    """FID and class accuracy of the guided diffusion head over temperature (at K) and over K (at temperature 1).

    Each point draws ``sweep_per_class`` images per class: fewer than the table's rows, so FIDs compare within a sweep.
    """
    num_classes = model.config.num_classes
    labels = torch.arange(num_classes, device=next(model.parameters()).device).repeat_interleave(budget.sweep_per_class)
    points = {"temperature": [], "num_iter": []}
    for axis, values in (("temperature", budget.temperatures), ("num_iter", budget.num_iters)):
        for value in values:
            setting = sampling | {"temperature": 1.0, "cfg": budget.cfg} | {axis: value}
            images, _ = draw(model, tokenizer, labels, seed, **setting)
            points[axis].append({axis: value, **sample_metrics(classifier, reference, images, labels)})
            print(f"sweep {axis} {value:g}: FID {points[axis][-1]['fid']:.3f}")
    return points


def write_outputs(results: dict, panels: dict, output: Path) -> None:
    output.mkdir(parents=True, exist_ok=True)
    (output / "results.json").write_text(json.dumps(to_json(results), indent=2))
    (output / "table.md").write_text(markdown(results))
    if panels:
        save_panels(panels, output / "samples.png")
    for axis, points in results["sweeps"].items():
        draw_curve(
            [(p[axis], p["fid"]) for p in points],
            output / f"sweep-{axis.replace('_', '-')}.png",
            (640, 360),
            title=f"FID against {axis} (kl-diffusion)",
            x_label=axis,
            markers=True,
        )
    print(f"wrote {output / 'table.md'}, results.json, samples.png and the sweep plots\n\n{markdown(results)}")
