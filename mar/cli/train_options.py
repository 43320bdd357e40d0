"""train.py's command line: its options, a new tokenizer's defaults, and the rules between options that are checked
before anything is loaded, trained or written."""

import argparse

from mar.cli.common import add_data_arguments, add_sampling_arguments
from mar.cli.options import (
    NON_NEGATIVE,
    NON_NEGATIVE_NUMBER,
    POSITIVE,
    POSITIVE_NUMBER,
    SEED,
    Parser,
    check_writable_folder,
    fail,
    integer,
    number,
    text,
)
from mar.eval.reference_data import CLASSIFIER_STEPS
from mar.model.config import ATTENTIONS, HEADS, NAMED_SIZES, ORDERS
from vae import PIXEL_LOSSES
from vae.embedded import GENERAL_SHAPE, GLYPH_TOKENIZER, GLYPH_TOKENIZER_IMAGE_SIZE

CPU_TIME_BUDGET = 15  # minutes: the default run's budget on a 2-core CPU

NEW_TOKENIZER = {
    "tokenizer_init": None,  # general where the shape is the shipped general tokenizer's, else scratch
    "tokenizer_steps": None,  # 300 fine-tuning the general tokenizer, 800 from scratch
    "tokenizer_batch_size": 32,
    "tokenizer_channels": 1,
    "tokenizer_stride": 2,
    "tokenizer_width": 32,
    "tokenizer_kl_weight": 1e-4,
    "tokenizer_images": 10_000,
    "tokenizer_pixel_loss": "mse",
    "tokenizer_initial_logvar": -8.0,
}  # a new tokenizer's defaults: MSE from a narrow posterior leaves the colour plateau that L1 sits on
# (docs/data-and-tokenizers.md)


def resolve_tokenizer_options(args) -> argparse.Namespace:
    """``--tokenizer auto`` becomes a shipped tokenizer when the head is a diffusion head and no ``--tokenizer-*``
    option asks for a new one: the glyph tokenizer for the embedded glyphs at its image size, the general one for
    anything else; otherwise ``new``. Then the new one's defaults are filled in."""
    args.tokenizer_named = args.tokenizer not in ("auto", "new")  # a resumed run is checked against a named one only
    if args.tokenizer == "auto":
        asks_for_new = any(getattr(args, name) is not None for name in NEW_TOKENIZER)
        glyphs = args.data_path is None and args.image_size == GLYPH_TOKENIZER_IMAGE_SIZE
        args.tokenizer = str(GLYPH_TOKENIZER) if glyphs and args.head == "diffusion" and not asks_for_new else "new"
    for name, default in NEW_TOKENIZER.items():
        if getattr(args, name) is None:
            setattr(args, name, default)
    if args.tokenizer_init is None:
        general_shape = (args.tokenizer_stride, args.tokenizer_channels, args.tokenizer_width) == GENERAL_SHAPE
        args.tokenizer_init = "general" if general_shape else "scratch"
    if args.tokenizer_steps is None:
        args.tokenizer_steps = 300 if args.tokenizer_init == "general" else 800
    return args


def build_parser(description: str | None = None) -> Parser:
    parser = Parser(description=description)
    add = parser.add_argument_group
    add_data_arguments(parser)
    cache = add("latent cache")
    cache.add_argument(
        "--latent-cache",
        type=text,
        default=None,
        help="folder of encoded latents: reused when it matches the tokenizer and data, written when empty; "
        "default: <output>/latents, written afresh",
    )
    cache.add_argument(
        "--flip",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="add mirrored views of the images (--flip) or not (--no-flip); default: decided from the data, on where "
        "the held-out classifier still knows the class of mirrored images, off for the embedded glyphs",
    )
    tok = add("tokenizer")
    tok.add_argument(
        "--tokenizer",
        type=text,
        default="auto",
        help="a tokenizer: folder (mar train-tokenizer, a diffusers AutoencoderKL), hub id (org/name[/subfolder], "
        "from the local cache), or LDM checkpoint (kl16.ckpt); new: train a KL one in the run (by default the "
        "general tokenizer shipped in vae/weights, fine-tuned on the data); auto: the glyph tokenizer shipped in "
        "vae/weights for the embedded glyphs at 32x32 and a diffusion head, unless a --tokenizer-* option below is "
        "given, else new",
    )
    tok.add_argument(
        "--tokenizer-init",
        default=None,
        choices=["general", "scratch"],
        help="a new tokenizer starts from the general tokenizer shipped in vae/weights (fine-tuned on this data) or "
        "from random weights (default: general when stride, channels and width are its 2, 1 and 32)",
    )
    tok.add_argument(
        "--tokenizer-steps",
        type=POSITIVE,
        default=None,
        help="training steps of a new tokenizer (300 fine-tuning the general one, 800 from scratch)",
    )
    tok.add_argument(
        "--tokenizer-batch-size",
        type=POSITIVE,
        default=None,
        help=f"images per tokenizer step ({NEW_TOKENIZER['tokenizer_batch_size']})",
    )
    tok.add_argument(
        "--tokenizer-channels",
        type=POSITIVE,
        default=None,
        help=f"latent channels of a new tokenizer ({NEW_TOKENIZER['tokenizer_channels']})",
    )
    tok.add_argument(
        "--tokenizer-stride",
        type=POSITIVE,
        default=None,
        help=f"downsampling factor of a new tokenizer, a power of two ({NEW_TOKENIZER['tokenizer_stride']})",
    )
    tok.add_argument(
        "--tokenizer-width",
        type=integer(8),
        default=None,
        help=f"largest channel count of a new tokenizer's encoder and decoder, a multiple of 8 ({NEW_TOKENIZER['tokenizer_width']})",
    )
    tok.add_argument(
        "--tokenizer-kl-weight",
        type=NON_NEGATIVE_NUMBER,
        default=None,
        help=f"weight of a new tokenizer's KL term per latent value ({NEW_TOKENIZER['tokenizer_kl_weight']:g})",
    )
    tok.add_argument(
        "--tokenizer-images",
        type=integer(2),
        default=None,
        help=f"images a new tokenizer trains on ({NEW_TOKENIZER['tokenizer_images']})",
    )
    tok.add_argument(
        "--tokenizer-pixel-loss",
        default=None,
        choices=PIXEL_LOSSES,
        help=f"reconstruction term of a new tokenizer ({NEW_TOKENIZER['tokenizer_pixel_loss']}; mse on the textures, docs/data-and-tokenizers.md)",
    )
    tok.add_argument(
        "--tokenizer-initial-logvar",
        type=number(-20, 5),
        default=None,
        help=f"a new tokenizer's posterior log-variance at the start ({NEW_TOKENIZER['tokenizer_initial_logvar']:g})",
    )
    model = add("model")
    model.add_argument(
        "--model",
        default="auto",
        choices=["auto", *NAMED_SIZES],
        help="named size (and its training recipe); auto: mar-micro on a CPU, mar-tiny elsewhere",
    )
    model.add_argument(
        "--head",
        default="diffusion",
        choices=list(HEADS),
        help="token head: diffusion loss, or cross-entropy over the codes of a VQ / FSQ --tokenizer",
    )
    model.add_argument(
        "--attention",
        default="bidirectional",
        choices=list(ATTENTIONS),
        help="bidirectional: MAR's backbone, sets of tokens per step; causal: a decoder-only transformer, one token "
        "per step (the paper's Table 1 AR rows)",
    )
    model.add_argument(
        "--order",
        default="random",
        choices=list(ORDERS),
        help="generation order: random per image, or raster (row-major; causal attention only)",
    )
    model.add_argument("--patch-size", type=POSITIVE, default=4, help="latent patch per token (p x p)")
    model.add_argument("--diffusion-batch-mul", type=POSITIVE, default=4, help="timesteps drawn per z")
    model.add_argument(
        "--head-width",
        type=POSITIVE,
        default=None,
        help="width of the token head (None: the --model config's; mar-micro 128)",
    )
    model.add_argument(
        "--head-depth",
        type=POSITIVE,
        default=None,
        help="residual blocks of the diffusion head (None: the --model config's; mar-micro 3)",
    )
    model.add_argument(
        "--mask-ratio-min",
        type=number(0.0, 1.0, high_open=True),
        default=None,
        help="lowest training mask ratio (None: the --model config's; mar-micro 0, the other sizes 0.7)",
    )
    model.add_argument(
        "--mask-ratio-std",
        type=POSITIVE_NUMBER,
        default=None,
        help="std of the mask-ratio law, a normal of mean 1 truncated to [--mask-ratio-min, 1] "
        "(None: the config's; mar-micro 0.5, the other sizes 0.25; 1000 is uniform)",
    )
    model.add_argument(
        "--init-from", type=text, default=None, help="checkpoint whose weights start training (its config must match)"
    )
    model.add_argument(
        "--grad-checkpointing", action="store_true", help="recompute block activations in the backward pass"
    )
    opt = add("optimisation (None: from the recipe of --model, see mar/train/recipes.py)")
    opt.add_argument(
        "--steps",
        type=POSITIVE,
        default=None,
        help="optimizer steps of the run, whatever the dataset's size (recipe: mar-micro 6240 of 64 with bf16, "
        "7488 of 32 in fp32; the paper's sizes count epochs)",
    )
    opt.add_argument("--epochs", type=POSITIVE, default=None, help="passes over the dataset, instead of --steps")
    opt.add_argument(
        "--time-budget",
        type=NON_NEGATIVE_NUMBER,
        default=None,
        help="minutes the whole command may take: from step 300 on, the pace so far and the measured time of the "
        "samples and scores still to come set how many steps fit (never more than --steps or the recipe's), the "
        "learning rate decaying over that length; 0: no limit "
        f"(default: {CPU_TIME_BUDGET:g} for the CPU sizes on a CPU, none otherwise)",
    )
    opt.add_argument(
        "--batch-size",
        type=POSITIVE,
        default=None,
        help="global images per step (recipe: per-process batch x processes)",
    )
    opt.add_argument(
        "--blr", type=POSITIVE_NUMBER, default=None, help="base learning rate: lr = blr x global batch / 256"
    )
    opt.add_argument("--lr", type=POSITIVE_NUMBER, default=None, help="absolute learning rate, overriding --blr")
    opt.add_argument(
        "--warmup-epochs",
        type=NON_NEGATIVE_NUMBER,
        default=None,
        help="linear warmup, in epochs (recipe: the same share of the run as the recipe's, 5%% for mar-micro)",
    )
    opt.add_argument(
        "--lr-schedule",
        default=None,
        choices=["cosine", "constant"],
        help="after warmup: cosine decay to 0 or constant",
    )
    opt.add_argument(
        "--weight-decay", type=NON_NEGATIVE_NUMBER, default=None, help="AdamW weight decay on matrices and embeddings"
    )
    opt.add_argument("--grad-clip", type=POSITIVE_NUMBER, default=None, help="gradient norm clip")
    opt.add_argument(
        "--ema-decay", type=number(0.0, 1.0, high_open=True), default=None, help="EMA of the weights, used for sampling"
    )
    opt.add_argument("--grad-accum", type=POSITIVE, default=1, help="micro-batches accumulated per step (per process)")
    sample = add("samples written after training")
    add_sampling_arguments(sample)
    sample.add_argument("--samples-per-class", type=POSITIVE, default=10, help="grid columns")
    sample.add_argument(
        "--quality",
        default="on",
        choices=["on", "off"],
        help="score the run with the data's held-out classifier (trained once, kept in --cache-dir): the tokenizer's "
        "reconstructions, samples at a quarter, half and three quarters of the run, the grid and samples at its end",
    )
    sample.add_argument(
        "--quality-samples",
        type=POSITIVE,
        default=300,
        help="samples scored at each point (rounded down to whole classes)",
    )
    sample.add_argument(
        "--classifier-steps",
        type=POSITIVE,
        default=CLASSIFIER_STEPS,
        help="training steps of that classifier, when it is not kept yet",
    )
    run = add("run")
    run.add_argument(
        "--output",
        type=text,
        default="runs/default",
        help="run folder: checkpoints, log.csv, loss.png, tokenizer, samples",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue from the latest checkpoint in --output (fresh start if none)"
    )
    run.add_argument(
        "--overwrite",
        action="store_true",
        help="start afresh in an --output that holds a run, deleting its checkpoints, log and samples",
    )
    run.add_argument("--seed", type=SEED, default=0, help="seed of every draw in training and sampling")
    run.add_argument(
        "--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps (under torchrun: cuda:LOCAL_RANK)"
    )
    run.add_argument(
        "--amp",
        default="auto",
        choices=["auto", "bf16", "fp16", "none"],
        help="mixed precision: auto = bf16 where the device runs it natively; fp16 adds a gradient scaler",
    )
    run.add_argument("--save-every", type=POSITIVE, default=1000, help="steps between checkpoints")
    run.add_argument(
        "--keep-checkpoints", type=POSITIVE, default=2, help="newest checkpoints kept (the one just written always)"
    )
    run.add_argument(
        "--max-bad-steps", type=POSITIVE, default=5, help="non-finite losses in a row before training stops"
    )
    run.add_argument(
        "--stop-after-steps", type=POSITIVE, default=None, help="stop with a checkpoint after this many steps in all"
    )
    run.add_argument(
        "--sample-every", type=NON_NEGATIVE, default=0, help="steps between sample grids (EMA) during training; 0: none"
    )
    run.add_argument("--log-every", type=POSITIVE, default=20, help="steps between rows of log.csv")
    run.add_argument("--num-workers", type=NON_NEGATIVE, default=0, help="data loader workers (ImageFolder)")
    run.add_argument("--no-progress", action="store_true", help="hide progress bars")
    return parser


def check_run_options(args, world: int) -> None:
    """Rules between options that need no file read: checked before anything is loaded, trained or written."""
    if args.latent_cache is not None:
        check_writable_folder(args.latent_cache, "--latent-cache", parent_must_exist=True)
    if args.tokenizer == "new" and args.tokenizer_stride & (args.tokenizer_stride - 1):
        fail(f"--tokenizer-stride {args.tokenizer_stride} is not a power of two; use 2, 4, 8 or 16")
    if args.tokenizer == "new" and args.tokenizer_width % 8:
        fail(
            f"--tokenizer-width {args.tokenizer_width} is not a multiple of 8 (the tokenizer's norm groups); "
            f"use e.g. {max(8, args.tokenizer_width // 8 * 8)}"
        )
    if args.batch_size % (world * args.grad_accum):
        fail(
            f"--batch-size {args.batch_size} is not divisible by processes x --grad-accum = {world * args.grad_accum}; "
            f"use a multiple of {world * args.grad_accum}"
        )
    if args.steps is not None and args.epochs is not None:
        fail(f"--steps {args.steps} and --epochs {args.epochs} both set the run's length; pass one of them")
    if args.resume and args.init_from is not None:
        fail("--init-from starts a new run from other weights, --resume continues this one; pass only one of them")
    if args.order == "raster" and args.attention == "bidirectional":
        fail("--order raster is for --attention causal; the bidirectional model draws in a random order")
