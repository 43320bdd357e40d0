"""The embedded glyph set: the digits 0-9 rendered offline from a seed, as (image (3, s, s) in [-1, 1], label)."""

import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import TensorDataset

GLYPH_CLASSES = tuple("0123456789")
RENDER_SCALE = 4  # glyphs are drawn at 4x and downsampled, which anti-aliases the edges
GLYPH_VERSION = 2  # bump when the rendering or GlyphStyle changes, so cached sets are rebuilt


@dataclass(frozen=True)
class GlyphStyle:
    """Ranges of the random pose and colours, as fractions of the image side where they are lengths."""

    size: tuple[float, float] = (0.65, 0.85)
    rotation_degrees: float = 12.0
    shift: float = 0.06
    stroke: tuple[float, float] = (0.0, 0.04)
    min_contrast: float = 0.45


def _luminance(rgb: np.ndarray) -> float:
    return float(rgb @ np.array([0.299, 0.587, 0.114]) / 255.0)


def _colours(rng: np.random.Generator, min_contrast: float) -> tuple[tuple[int, ...], tuple[int, ...]]:
    while True:
        background, foreground = rng.integers(0, 256, size=(2, 3))
        if abs(_luminance(background) - _luminance(foreground)) >= min_contrast:
            return tuple(int(v) for v in background), tuple(int(v) for v in foreground)


def render_glyph(text: str, image_size: int, rng: np.random.Generator, style: GlyphStyle = GlyphStyle()) -> Image.Image:
    """One glyph under a random size, rotation, shift, stroke and pair of colours."""
    canvas = image_size * RENDER_SCALE
    background, foreground = _colours(rng, style.min_contrast)
    font = ImageFont.load_default(size=max(4, int(canvas * rng.uniform(*style.size))))
    stroke = int(canvas * rng.uniform(*style.stroke))
    layer = Image.new("L", (canvas, canvas), 0)
    ImageDraw.Draw(layer).text(
        (canvas / 2, canvas / 2), text, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255
    )
    dx, dy = (rng.uniform(-style.shift, style.shift, size=2) * canvas).round().astype(int)
    layer = layer.rotate(
        rng.uniform(-style.rotation_degrees, style.rotation_degrees), Image.BICUBIC, translate=(int(dx), int(dy))
    )
    image = Image.composite(Image.new("RGB", layer.size, foreground), Image.new("RGB", layer.size, background), layer)
    return image.resize((image_size, image_size), Image.LANCZOS)


def glyph_dataset(
    num_images: int = 10_000, image_size: int = 32, seed: int = 0, cache_dir: str | Path | None = None
) -> TensorDataset:
    """Balanced class-conditional glyph images, the same for the same (num_images, image_size, seed).

    With ``cache_dir`` the rendered set is kept as a .npz and reloaded on the next call.
    """
    cache = (
        Path(cache_dir) / f"glyphs-v{GLYPH_VERSION}-n{num_images}-s{image_size}-seed{seed}.npz" if cache_dir else None
    )
    stored = _read_glyph_cache(cache) if cache is not None and cache.exists() else None
    if stored is not None:
        images, labels = stored
    else:
        rng = np.random.default_rng(seed)
        labels = np.arange(num_images) % len(GLYPH_CLASSES)
        images = np.stack([np.asarray(render_glyph(GLYPH_CLASSES[k], image_size, rng)) for k in labels])  # (N, s, s, 3)
        if cache is not None:
            cache.parent.mkdir(parents=True, exist_ok=True)
            tmp = cache.with_suffix(".tmp.npz")
            np.savez(tmp, images=images, labels=labels)
            tmp.replace(cache)
    pixels = torch.from_numpy(images).permute(0, 3, 1, 2).float().contiguous() / 127.5 - 1  # (N, 3, s, s) in [-1, 1]
    return TensorDataset(pixels, torch.from_numpy(labels).long())


def _read_glyph_cache(path: Path) -> tuple[np.ndarray, np.ndarray] | None:
    """The cached (images, labels), or None (with a warning) when the file is damaged: the set is then rendered again."""
    try:
        with np.load(path) as stored:
            return stored["images"], stored["labels"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile) as error:
        print(
            f"warning: glyph cache {path} is damaged ({type(error).__name__}); rendering the set again", file=sys.stderr
        )
        return None
