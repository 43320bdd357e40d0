"""Inception FID, IS and precision / recall of a sample set (a folder of images or an .npz) against a reference .npz.

Works with the released torch-fidelity and a local copy of its Inception weights (nothing is downloaded):
weights-inception-2015-12-05-6726825d.pth. The reference is ADM's format (e.g. VIRTUAL_imagenet256_labeled.npz:
mu, sigma and its images arr_0, which precision / recall need), or one written here with --write-reference.
Images are streamed in batches.

Examples:
    mar score --samples samples/mar-b/samples.npz --reference VIRTUAL_imagenet256_labeled.npz \\
        --inception-weights weights-inception-2015-12-05-6726825d.pth --device cuda
    mar score --samples data/flowers-val --write-reference flowers-val-ref.npz --inception-weights W.pth
"""

import json
import time
from pathlib import Path

from mar.cli.common import pick_device
from mar.cli.options import POSITIVE, Parser, check_writable_file, fail, text
from mar.eval.inception import InceptionUnavailable
from mar.eval.scoring import count_images, score, write_reference


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument(
        "--samples", type=text, required=True, help="a folder of images or an .npz with arr_0 (uint8, N x H x W x 3)"
    )
    parser.add_argument(
        "--reference",
        type=text,
        default=None,
        help="reference .npz (mu, sigma; arr_0 or activations for precision / recall)",
    )
    parser.add_argument(
        "--inception-weights",
        type=text,
        default=None,
        help="torch-fidelity's Inception weights file, downloaded beforehand",
    )
    parser.add_argument(
        "--write-reference",
        type=text,
        default=None,
        help="instead of scoring, write the statistics and activations of --samples to this .npz",
    )
    parser.add_argument(
        "--no-precision-recall", action="store_true", help="skip precision / recall (they hold N x 2048 features)"
    )
    parser.add_argument("--batch-size", type=POSITIVE, default=100, help="images per Inception batch")
    parser.add_argument("--json", type=text, default=None, help="also write the scores to this JSON file")
    parser.add_argument("--device", type=text, default="auto", help="auto, cpu, cuda, cuda:N or mps")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    samples = Path(args.samples)
    if not samples.is_dir() and not (samples.is_file() and samples.suffix == ".npz"):
        fail(
            f"--samples {samples} is neither a folder of images nor an .npz file; pass one (mar sample-at-scale writes both)"
        )
    for path, what in ((args.write_reference, "--write-reference"), (args.json, "--json")):
        if path is not None and Path(path).exists():
            fail(f"{what} {path} exists; pass another file name (nothing is overwritten)")
        if path is not None:
            check_writable_file(path, what)
    if args.write_reference is None and args.reference is None:
        fail("--reference is missing: pass a reference .npz (ADM's, or one made with --write-reference)")
    device = pick_device(args.device)
    started = time.time()
    try:
        count = count_images(samples)
        if count < 2:
            fail(f"--samples {samples} holds {count} image(s); FID needs at least 2")
        if args.write_reference is not None:
            path = write_reference(samples, args.write_reference, args.inception_weights, device, args.batch_size)
            print(f"wrote {path}: statistics and activations of {count} images in {time.time() - started:.1f} s")
            return
        scores = score(
            samples,
            args.reference,
            args.inception_weights,
            device,
            args.batch_size,
            with_precision_recall=not args.no_precision_recall,
        )
    except (InceptionUnavailable, ValueError, OSError) as error:
        fail(str(error))
    seconds = time.time() - started
    print(f"{samples}: {count} images scored in {seconds:.1f} s ({count / seconds:.1f} images/s)")
    print("  " + "   ".join(f"{name} {value:.4f}" for name, value in scores.items() if name != "images"))
    if args.json is not None:
        Path(args.json).write_text(
            json.dumps(scores | {"samples": str(samples), "reference": args.reference}, indent=2) + "\n"
        )
