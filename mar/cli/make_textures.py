"""Write the procedural texture set (mar/data/textures.py) as an ImageFolder: the offline second dataset
(docs/data-and-tokenizers.md).

Ten classes (stripes at three angles, checks, dots, rings, rays, waves, gradient, smooth noise), each image with
its own colours, scale, phase and rotation, the same for the same --seed.

Examples:
    mar make-textures --output data/textures --per-class 1100
    mar compare --data-path data/textures --num-images 10000 --output runs/compare-textures
"""

import time

from mar.cli.options import POSITIVE, SEED, Parser, check_writable_folder, fail, integer, text
from mar.data.textures import TEXTURE_CLASSES, write_texture_folder


def build_parser() -> Parser:
    parser = Parser(description=__doc__)
    parser.add_argument(
        "--output", type=text, required=True, help="folder to write <class>/<index>.png into (new or empty)"
    )
    parser.add_argument("--per-class", type=POSITIVE, default=1100, help="images per class")
    parser.add_argument("--image-size", type=integer(8, 1024), default=32, help="image side in pixels")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the set")
    return parser


def main(argv=None) -> None:
    args = build_parser().parse_args(argv)
    output = check_writable_folder(args.output, "--output")
    if output.exists() and any(output.iterdir()):
        fail(f"--output {output} is not empty; name a new folder (the set is the same for the same --seed)")
    started = time.time()
    write_texture_folder(output, args.per_class, args.image_size, args.seed)
    print(
        f"wrote {args.per_class * len(TEXTURE_CLASSES)} textures of {len(TEXTURE_CLASSES)} classes to {output} "
        f"in {time.time() - started:.0f} s"
    )
