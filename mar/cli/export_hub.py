"""Write a checkpoint as a Hugging Face Hub folder (weights, config.json, model card, sample grid), and push it.

The card records what the run recorded: its data (from the resume state), its measured metrics (``metrics.json``
of the run and of its tokenizer) and its final sample grid (``samples.png``). ``sample.py --checkpoint`` opens the
folder, and the repo id once it is in the local Hugging Face cache.

Examples:
    mar export-hub --checkpoint runs/default --out hub/mar-glyphs
    mar export-hub --checkpoint runs/default --out hub/mar-glyphs --push my-org/mar-glyphs   # needs `hf auth login`
"""

from pathlib import Path

from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled

from mar.cli.options import Parser, check_writable_folder, fail, text
from mar.interop.hub import PretrainedMAR, run_record
from mar.train.checkpoint import load_checkpoint
from mar.train.guided_head_file import GUIDED_HEAD
from vae.loading import HUB_ID


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument(
        "--checkpoint",
        type=text,
        required=True,
        help="a run folder of train.py (its latest checkpoint), a checkpoints/step-N folder, or its weights.safetensors",
    )
    parser.add_argument("--out", type=text, required=True, help="the hub folder to write (must be empty or new)")
    parser.add_argument("--overwrite", action="store_true", help="replace the files of a non-empty --out")
    parser.add_argument("--push", type=text, default=None, help="also upload the folder to this Hub repo (org/name)")
    parser.add_argument("--private", action="store_true", help="create the pushed repo as private")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    if args.push is not None and not HUB_ID.fullmatch(args.push):
        fail(f"--push {args.push} is not a Hub repo id; use org/name")
    out = check_writable_folder(args.out, "--out")
    if out.is_dir() and any(out.iterdir()) and not args.overwrite:
        fail(f"--out {out} already holds files; pass --overwrite to replace them, or another --out")
    try:
        checkpoint = load_checkpoint(args.checkpoint)
        training, metrics, grid = run_record(args.checkpoint)
    except (FileNotFoundError, ValueError) as error:
        fail(str(error))
    pretrained = PretrainedMAR(checkpoint, training=training, metrics=metrics, grid=grid)
    for stale in ("README.md", "config.json", GUIDED_HEAD):  # the mixin would keep old ones; --overwrite: new ones
        (Path(out) / stale).unlink(missing_ok=True)
    pretrained.save_pretrained(out)
    extras = (", samples.png" if grid else "") + (f", {GUIDED_HEAD}" if checkpoint.guided_head is not None else "")
    print(f"wrote {out}: model.safetensors, config.json, README.md{extras}")
    if args.push is not None:
        try:
            url = pretrained.push_to_hub(args.push, private=args.private or None)
        except (HfHubHTTPError, OfflineModeIsEnabled, OSError) as error:  # no network, no login, no rights
            fail(
                f"pushing to {args.push} failed ({type(error).__name__}: {str(error).splitlines()[0]}); the folder {out} "
                f"is written: log in with `hf auth login` and upload it with `hf upload {args.push} {out}`"
            )
        print(f"pushed to {url}")
