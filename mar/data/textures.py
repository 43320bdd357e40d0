"""A second offline dataset, unlike the glyphs: ten classes of procedural textures, written as an ImageFolder.

Glyphs are one shape on a flat background; here every pixel carries the class, through orientation, frequency
and structure: stripes at three angles, checks, dots, rings, rays, waves, a smooth gradient and smooth noise.
Each image draws its own two colours, scale, phase and a small rotation, plus a little pixel noise, from a seeded
generator, so the set is the same for the same seed. It exists to show the tools on data that is not the glyphs
(``mar compare --data-path``), from files, as a user's data would come.
"""

from pathlib import Path

import numpy as np
from PIL import Image

TEXTURE_CLASSES = (
    "horizontal",
    "vertical",
    "diagonal",
    "checks",
    "dots",
    "rings",
    "rays",
    "waves",
    "gradient",
    "noise",
)


def _pattern(name: str, x: np.ndarray, y: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Values in [0, 1] on the grid (x, y) in [-1, 1]^2, already rotated, for the class ``name``."""
    frequency = rng.uniform(2.5, 5.0)
    phase = rng.uniform(0, 2 * np.pi)

    def wave(u: np.ndarray) -> np.ndarray:
        return 0.5 + 0.5 * np.sin(np.pi * frequency * u + phase)

    if name == "horizontal":
        return wave(y)
    if name == "vertical":
        return wave(x)
    if name == "diagonal":
        return wave((x + y) / np.sqrt(2))
    if name == "checks":
        return ((np.sin(np.pi * frequency * x + phase) * np.sin(np.pi * frequency * y + phase)) > 0).astype(float)
    if name == "dots":
        cell = 2 / frequency
        dx, dy = (x + phase) % cell - cell / 2, (y + phase) % cell - cell / 2
        return (np.hypot(dx, dy) < cell * rng.uniform(0.2, 0.35)).astype(float)
    if name == "rings":
        cx, cy = rng.uniform(-0.4, 0.4, 2)
        return wave(np.hypot(x - cx, y - cy) * 1.5)
    if name == "rays":
        cx, cy = rng.uniform(-0.3, 0.3, 2)
        return 0.5 + 0.5 * np.sin(rng.integers(4, 9) * np.arctan2(y - cy, x - cx) + phase)
    if name == "waves":
        return wave(y + 0.25 * np.sin(np.pi * rng.uniform(1.5, 3.0) * x + phase))
    if name == "gradient":
        return np.clip((x * np.cos(phase) + y * np.sin(phase)) / 2.8 + 0.5, 0, 1)
    if name == "noise":
        coarse = rng.uniform(0, 1, (5, 5))
        picture = Image.fromarray((coarse * 255).astype(np.uint8)).resize(x.shape[::-1], Image.BICUBIC)
        return np.asarray(picture, dtype=float) / 255
    raise ValueError(f"unknown texture class {name!r}")


def render_texture(name: str, image_size: int, rng: np.random.Generator) -> Image.Image:
    """One texture of class ``name``: two random colours blended by the pattern, then pixel noise; an RGB image."""
    size = 2 * image_size  # drawn at twice the size, then downsampled, so thin stripes are antialiased
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    angle = np.deg2rad(rng.uniform(-12, 12))
    x, y = x * np.cos(angle) - y * np.sin(angle), x * np.sin(angle) + y * np.cos(angle)
    values = _pattern(name, x, y, rng)[..., None]  # (size, size, 1)
    first, second = rng.uniform(0, 1, (2, 3))
    second = np.where(np.abs(second - first).sum() < 0.6, 1 - first, second)  # keep the two colours apart
    pixels = first * (1 - values) + second * values + rng.normal(0, 0.03, (size, size, 3))
    picture = Image.fromarray((np.clip(pixels, 0, 1) * 255).round().astype(np.uint8))
    return picture.resize((image_size, image_size), Image.LANCZOS)


def write_texture_folder(root: str | Path, per_class: int, image_size: int = 32, seed: int = 0) -> Path:
    """``root/<class>/<index>.png`` for every texture class; image i of a class is the same for the same seed."""
    root = Path(root)
    for k, name in enumerate(TEXTURE_CLASSES):
        folder = root / f"{k}-{name}"
        folder.mkdir(parents=True, exist_ok=True)
        rng = np.random.default_rng([seed, k])
        for i in range(per_class):
            render_texture(name, image_size, rng).save(folder / f"{i:05d}.png")
    return root
