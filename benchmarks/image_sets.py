"""Image sets of kinds the project's defaults were not tuned on, written as ImageFolders (root/<class>/<index>.png).

The one-command path (``train.py`` with no flags, ``mar compare``) was tuned on the glyphs and textures; these sets
check that its defaults hold elsewhere. Each kind asks something different of them:
- ``digits``: real handwriting, not drawn by the project: scikit-learn's 1,797 scanned 8x8 digits (16 grey levels)
  upscaled bicubically, grey on black; all of them are written, so --per-class and --seed do not apply;
- ``shapes``: ten solid shapes in random saturated colours on dark or light backgrounds, of random size, position
  and rotation; every class is its own mirror image up to a rotation, so flips and turns never change the class;
- ``centred``: the same shapes, each 75% of the side across and in the middle, so that only the outline tells the
  class (docs/experiments/2026-12-07-shapes-generator.md: position and size are what hide the class);
- ``photos``: real photographs, not drawn by the project: random square crops (25-60% of the short side) of ten
  sample images that ship inside the scikit-image wheel; the class is the photograph;
- ``leaves``: a dead-leaves model, a classic stand-in for natural image statistics: overlapping discs, boxes and
  triangles of random colours whose sizes follow a power law, some shaded, over a random background; one class;
- ``broad``: the tokenizer-training mix: leaves, shapes and the procedural textures (mar/data/textures.py), each
  in class folders of its own; the general tokenizer shipped in vae/weights was trained on it;
- ``mirrored``: five pairs of shapes whose two classes differ only by a left-right mirror (arrows, L/J, S/Z,
  slashes, spirals), turned at most 10 degrees; a model or augmentation that flips images cannot tell them apart.
Image i of a class is the same for the same --seed, whatever --per-class. scikit-learn and scikit-image are needed
only by their kinds (``pip install scikit-learn scikit-image``).

Examples:
    python benchmarks/image_sets.py --kind shapes --output data/shapes
    python benchmarks/image_sets.py --kind photos --output data/photos --per-class 1000 --seed 1
    mar compare --data-path data/shapes --output runs/compare-shapes
"""

import colorsys
import math
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from mar.cli.options import POSITIVE, SEED, Parser, check_writable_folder, fail, integer, text

SUPERSAMPLE = 4  # shapes are drawn at 4x the side and box-filtered down, which antialiases their edges
# Sample images inside the scikit-image wheel that load offline (others need a download): 7 colour, 3 grey.
PHOTOS = ("astronaut", "chelsea", "coffee", "rocket", "immunohistochemistry", "hubble_deep_field", "retina")
PHOTOS += ("camera", "coins", "moon")


def _rotated(points: list, degrees: float) -> list:
    angle = math.radians(degrees)
    return [(x * math.cos(angle) - y * math.sin(angle), x * math.sin(angle) + y * math.cos(angle)) for x, y in points]


def _regular(corners: int, radii=(1.0,), turn: float = 0.0) -> list:
    """A regular polygon (one radius) or star (two alternating radii) in the unit circle, turned by ``turn``."""
    count = corners * len(radii)
    return [_rotated([(radii[i % len(radii)], 0.0)], turn + 360 * i / count)[0] for i in range(count)]


def _heart() -> list:
    """The classic parametric heart, centred and scaled into the unit circle."""
    t = np.linspace(0, 2 * np.pi, 120, endpoint=False)
    x, y = 16 * np.sin(t) ** 3, -(13 * np.cos(t) - 5 * np.cos(2 * t) - 2 * np.cos(3 * t) - np.cos(4 * t))
    y = y - (y.max() + y.min()) / 2
    scale = np.hypot(x, y).max()
    return list(zip(x / scale, y / scale))


def _spiral(turns: float = 1.5) -> list:
    """A spiral from the centre outwards, turning clockwise on screen (y points down)."""
    t = np.linspace(0, 1, 100)
    radius, angle = 0.15 + 0.75 * t, 2 * np.pi * turns * t
    return list(zip(radius * np.cos(angle), radius * np.sin(angle)))


# A shape is a list of parts in the unit circle (x right, y down): ("polygon", points), ("disc", (x, y, r)),
# ("hole", (x, y, r)) cut out of what came before, or ("line", points, width).
SHAPES = {
    "circle": [("disc", (0, 0, 1))],
    "square": [("polygon", _regular(4, turn=45))],
    "rectangle": [("polygon", [(-0.89, -0.45), (0.89, -0.45), (0.89, 0.45), (-0.89, 0.45)])],
    "triangle": [("polygon", _regular(3, turn=-90))],
    "hexagon": [("polygon", _regular(6))],
    "star": [("polygon", _regular(5, radii=(1.0, 0.42), turn=-90))],
    "cross": [("polygon", [p for k in range(4) for p in _rotated([(0.3, -0.3), (0.95, -0.3), (0.95, 0.3)], 90 * k)])],
    "ring": [("disc", (0, 0, 1)), ("hole", (0, 0, 0.55))],
    "crescent": [("disc", (0, 0, 1)), ("hole", (0.4, 0, 0.85))],
    "heart": [("polygon", _heart())],
}
ARROW = [("polygon", [(-0.9, -0.18), (0.2, -0.18), (0.2, -0.55), (0.9, 0), (0.2, 0.55), (0.2, 0.18), (-0.9, 0.18)])]
ELL = [("polygon", [(-0.45, -0.8), (-0.1, -0.8), (-0.1, 0.35), (0.5, 0.35), (0.5, 0.7), (-0.45, 0.7)])]
ESS = [
    ("polygon", [(-0.25, -0.5), (0.75, -0.5), (0.75, 0), (0.25, 0), (0.25, 0.5), (-0.75, 0.5), (-0.75, 0), (-0.25, 0)])
]
SLASH = [("line", [(-0.55, 0.7), (0.55, -0.7)], 0.35)]
SPIRAL = [("line", _spiral(), 0.22)]
# Each class of the mirrored set: (shape, whether it is drawn mirrored left to right).
MIRROR_PAIRS = {
    "arrow-right": (ARROW, False),
    "arrow-left": (ARROW, True),
    "L": (ELL, False),
    "J": (ELL, True),
    "S": (ESS, False),
    "Z": (ESS, True),
    "slash": (SLASH, False),
    "backslash": (SLASH, True),
    "spiral-cw": (SPIRAL, False),
    "spiral-ccw": (SPIRAL, True),
}


def _mask(parts: list, side: int, centre: np.ndarray, radius: float, mirror: bool) -> Image.Image:
    """The shape as a white-on-black mask of side ``side``, its unit circle mapped to (centre, radius)."""
    mask = Image.new("L", (side, side), 0)
    draw = ImageDraw.Draw(mask)
    sign = -1 if mirror else 1

    def pixels(points):
        return [(centre[0] + sign * radius * x, centre[1] + radius * y) for x, y in points]

    for kind, geometry, *width in parts:
        if kind == "polygon":
            draw.polygon(pixels(geometry), fill=255)
        elif kind == "line":
            draw.line(pixels(geometry), fill=255, width=round(width[0] * radius), joint="curve")
        else:
            (x, y), r = pixels([geometry[:2]])[0], geometry[2] * radius
            draw.ellipse((x - r, y - r, x + r, y + r), fill=255 if kind == "disc" else 0)
    return mask


def _colours(rng: np.random.Generator) -> tuple:
    """A saturated fill of random hue and a dark or light background at least 0.5 away from it in RGB."""
    fill = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0.6, 1), rng.uniform(0.6, 1))
    background = fill
    while math.dist(fill, background) < 0.5:
        value = rng.uniform(0.05, 0.3) if rng.uniform() < 0.5 else rng.uniform(0.8, 1)
        background = colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(0, 0.5), value)
    return tuple(tuple(round(255 * c) for c in colour) for colour in (fill, background))


def render_shape(
    parts: list, image_size: int, rng: np.random.Generator, turn: float, mirror: bool, centred: bool = False
) -> Image.Image:
    """One shape: 40-90% of the side across, anywhere it fits (``centred``: 75% across, in the middle), turned up to
    ``turn`` degrees either way; RGB."""
    side = SUPERSAMPLE * image_size
    if centred:
        radius, centre = 0.75 * side / 2, np.full(2, side / 2)
    else:
        radius = rng.uniform(0.4, 0.9) * side / 2
        centre = side / 2 + rng.uniform(-1, 1, 2) * (side / 2 - radius)
    mask = _mask(parts, side, centre, radius, mirror)
    mask = mask.rotate(rng.uniform(-turn, turn), resample=Image.BICUBIC, center=tuple(centre))
    fill, background = _colours(rng)
    picture = Image.composite(Image.new("RGB", mask.size, fill), Image.new("RGB", mask.size, background), mask)
    return picture.resize((image_size, image_size), Image.BOX)


def _save(picture: Image.Image, root: Path, name: str, index: int) -> None:
    folder = root / name
    folder.mkdir(parents=True, exist_ok=True)
    picture.save(folder / f"{index:05d}.png")


def _write_drawn(
    root: Path, classes: dict, per_class: int, image_size: int, seed: int, turn: float, centred: bool = False
) -> int:
    """Renders ``classes`` (name -> (parts, mirror)), each from its own generator seeded by (seed, class index)."""
    for k, (name, (parts, mirror)) in enumerate(classes.items()):
        rng = np.random.default_rng([seed, k])
        for i in range(per_class):
            _save(render_shape(parts, image_size, rng, turn, mirror, centred), root, name, i)
    return per_class * len(classes)


def write_digits(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """All 1,797 of scikit-learn's digits, classes '0'..'9' (about 180 each); ``per_class`` and ``seed`` unused."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    written = [0] * 10
    for pixels, label in zip(digits.images, digits.target):
        grey = Image.fromarray((pixels * 255 / 16).round().astype(np.uint8))
        _save(grey.resize((image_size, image_size), Image.BICUBIC).convert("RGB"), root, str(label), written[label])
        written[label] += 1
    return sum(written)


def write_shapes(root: Path, per_class: int, image_size: int, seed: int, centred: bool = False) -> int:
    """``per_class`` of each shape, turned anywhere in a full circle (``centred``: see ``render_shape``)."""
    unmirrored = {name: (parts, False) for name, parts in SHAPES.items()}
    return _write_drawn(root, unmirrored, per_class, image_size, seed, turn=180, centred=centred)


def write_centred(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """The shapes without their position and size: each 75% of the side across, in the middle; turns and colours
    random as in ``shapes``."""
    return write_shapes(root, per_class, image_size, seed, centred=True)


def write_photos(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """``per_class`` random square crops of each photograph in PHOTOS, resized with Lanczos."""
    from skimage import data

    for k, name in enumerate(PHOTOS):
        photo = Image.fromarray(getattr(data, name)()).convert("RGB")
        rng = np.random.default_rng([seed, k])
        for i in range(per_class):
            crop = round(rng.uniform(0.25, 0.6) * min(photo.size))
            left, top = rng.integers(0, photo.width - crop + 1), rng.integers(0, photo.height - crop + 1)
            square = photo.crop((left, top, left + crop, top + crop))
            _save(square.resize((image_size, image_size), Image.LANCZOS), root, name, i)
    return per_class * len(PHOTOS)


def write_mirrored(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """``per_class`` of each mirror pair's two classes, turned at most 10 degrees either way."""
    return _write_drawn(root, MIRROR_PAIRS, per_class, image_size, seed, turn=10)


def render_leaves(image_size: int, rng: np.random.Generator) -> Image.Image:
    """Up to 60 shapes, radii drawn from a density ~ r^-3 between 1 pixel and half the side, painted back to front."""
    side = SUPERSAMPLE * image_size
    picture = Image.new("RGB", (side, side), _random_colour(rng))
    draw = ImageDraw.Draw(picture)
    low, high = SUPERSAMPLE, side / 2
    for _ in range(rng.integers(10, 60)):
        radius = 1 / math.sqrt(rng.uniform(1 / high**2, 1 / low**2))  # inverse CDF of the r^-3 law on [low, high]
        x, y = rng.uniform(-radius, side + radius, 2)
        box = (x - radius, y - radius, x + radius, y + radius)
        kind, colour = rng.integers(3), _random_colour(rng)
        if kind == 0:
            draw.ellipse(box, fill=colour)
        elif kind == 1:
            draw.rectangle(box, fill=colour)
        else:
            draw.polygon(
                [(x + radius * cx, y + radius * cy) for cx, cy in _regular(3, turn=rng.uniform(0, 360))], fill=colour
            )
    picture = picture.resize((image_size, image_size), Image.BOX)
    if rng.uniform() < 0.5:  # a shading gradient over half of the images
        ramp = np.linspace(rng.uniform(0.5, 1), rng.uniform(0.5, 1), image_size)[:, None, None]
        ramp = ramp if rng.uniform() < 0.5 else ramp.transpose(1, 0, 2)
        picture = Image.fromarray((np.asarray(picture) * ramp).round().astype(np.uint8))
    return picture


def _random_colour(rng: np.random.Generator) -> tuple:
    """Any hue, saturation and brightness."""
    return tuple(round(255 * c) for c in colorsys.hsv_to_rgb(rng.uniform(), rng.uniform(), rng.uniform()))


def write_leaves(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """``per_class`` dead-leaves images in one class folder, ``leaves``."""
    rng = np.random.default_rng([seed, 0])
    for i in range(per_class):
        _save(render_leaves(image_size, rng), root, "leaves", i)
    return per_class


def write_broad(root: Path, per_class: int, image_size: int, seed: int) -> int:
    """Leaves (ten classes' worth), shapes and textures, ``per_class`` per class; 30 class folders in all."""
    from mar.data.textures import write_texture_folder

    written = write_leaves(root, 10 * per_class, image_size, seed)
    written += write_shapes(root / "shapes", per_class, image_size, seed)
    write_texture_folder(root / "textures", per_class, image_size, seed)
    return written + 10 * per_class


KINDS = {
    "digits": write_digits,
    "shapes": write_shapes,
    "centred": write_centred,
    "photos": write_photos,
    "mirrored": write_mirrored,
    "leaves": write_leaves,
    "broad": write_broad,
}


def main(argv=None) -> None:
    parser = Parser(description=__doc__)
    parser.add_argument("--kind", choices=list(KINDS), required=True, help="which set to write")
    parser.add_argument(
        "--output", type=text, required=True, help="folder to write <class>/<index>.png into (new or empty)"
    )
    parser.add_argument("--per-class", type=POSITIVE, default=600, help="images per class (digits: all are written)")
    parser.add_argument("--image-size", type=integer(8, 1024), default=32, help="image side in pixels")
    parser.add_argument("--seed", type=SEED, default=0, help="seed of the set")
    args = parser.parse_args(argv)
    output = check_writable_folder(args.output, "--output")
    if output.exists() and any(output.iterdir()):
        fail(f"--output {output} is not empty; name a new folder (the set is the same for the same --seed)")
    started = time.time()
    count = KINDS[args.kind](output, args.per_class, args.image_size, args.seed)
    print(f"wrote {count} {args.kind} images to {output} in {time.time() - started:.0f} s")


if __name__ == "__main__":
    main()
