"""Image datasets: the embedded glyph set made offline from a seed, and any ImageFolder-style directory.

Both yield (image, label) with images as float tensors (3, s, s) in [-1, 1].
"""
import sys
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont
from torch.utils.data import Dataset, TensorDataset, default_collate

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
    ImageDraw.Draw(layer).text((canvas / 2, canvas / 2), text, fill=255, font=font, anchor="mm", stroke_width=stroke, stroke_fill=255)
    dx, dy = (rng.uniform(-style.shift, style.shift, size=2) * canvas).round().astype(int)
    layer = layer.rotate(rng.uniform(-style.rotation_degrees, style.rotation_degrees), Image.BICUBIC, translate=(int(dx), int(dy)))
    image = Image.composite(Image.new("RGB", layer.size, foreground), Image.new("RGB", layer.size, background), layer)
    return image.resize((image_size, image_size), Image.LANCZOS)


def glyph_dataset(num_images: int = 10_000, image_size: int = 32, seed: int = 0, cache_dir: str | Path | None = None) -> TensorDataset:
    """Balanced class-conditional glyph images, the same for the same (num_images, image_size, seed).

    With ``cache_dir`` the rendered set is kept as a .npz and reloaded on the next call.
    """
    cache = Path(cache_dir) / f"glyphs-v{GLYPH_VERSION}-n{num_images}-s{image_size}-seed{seed}.npz" if cache_dir else None
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
        print(f"warning: glyph cache {path} is damaged ({type(error).__name__}); rendering the set again", file=sys.stderr)
        return None


def center_crop(image: Image.Image, size: int) -> Image.Image:
    """Resize the short side to ``size`` (box-halving first for large images, then bicubic) and crop the centre."""
    while min(image.size) >= 2 * size:
        image = image.resize(tuple(x // 2 for x in image.size), Image.BOX)
    scale = size / min(image.size)
    image = image.resize(tuple(round(x * scale) for x in image.size), Image.BICUBIC)
    left, top = (image.width - size) // 2, (image.height - size) // 2
    return image.crop((left, top, left + size, top + size))


IMAGE_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff"}


class BadImage(ValueError):
    """An image file that cannot be read; the message names it."""

    def one_line(self) -> str:
        """The message alone, also when a DataLoader worker re-raised it with the worker's traceback prepended."""
        return str(self).strip().splitlines()[-1].removeprefix(f"{__name__}.{BadImage.__name__}: ")


class ImageFolderDataset(Dataset):
    """root/<class name>/<image>: classes sorted by name; centre-cropped to ``image_size``; optional random flips.

    ``bad_images``: an unreadable file raises BadImage naming it ("fail"), or is skipped with a warning naming it
    ("skip"), when the item is None; ``collate_readable`` drops those from a DataLoader's batch.
    """

    def __init__(self, root: str | Path, image_size: int, flip: bool = True, bad_images: str = "fail"):
        root = Path(root)
        if root.is_file():
            raise FileNotFoundError(f"image folder {root} is a file; pass a directory with one sub-folder per class")
        if not root.is_dir():
            raise FileNotFoundError(f"image folder {root} does not exist; pass a directory with one sub-folder per class")
        if bad_images not in ("fail", "skip"):
            raise ValueError(f"bad_images {bad_images!r} must be 'fail' or 'skip'")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = {name: sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES) for name in self.classes}
        if not self.classes or not any(files.values()):
            raise ValueError(f"image folder {root} holds no images in class sub-folders (expected {root}/<class>/<image>.png)")
        empty = [name for name in self.classes if not files[name]]
        if empty:
            raise ValueError(f"class folder {root / empty[0]} holds no images ({len(empty)} such folder(s)); add images "
                             f"(suffixes {', '.join(sorted(IMAGE_SUFFIXES))}) or remove the folder")
        self.samples = [(path, label) for label, name in enumerate(self.classes) for path in files[name]]
        self.image_size, self.flip, self.bad_images = image_size, flip, bad_images

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int] | None:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                image = center_crop(image.convert("RGB"), self.image_size)
        except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as error:
            message = f"image {path} cannot be read ({type(error).__name__}: {' '.join(str(error).split())})"
            if self.bad_images == "fail":
                raise BadImage(f"{message}; replace or remove the file, or pass --bad-images skip") from None
            print(f"warning: {message}; skipped (--bad-images skip)", file=sys.stderr)
            return None
        pixels = torch.from_numpy(np.asarray(image).copy()).permute(2, 0, 1).float() / 127.5 - 1  # (3, s, s)
        if self.flip and torch.rand(()) < 0.5:
            pixels = pixels.flip(-1)
        return pixels, label


def collate_readable(batch: list) -> tuple[torch.Tensor, torch.Tensor] | None:
    """A DataLoader batch without the items an ImageFolder skipped; None when none is left."""
    batch = [item for item in batch if item is not None]
    return default_collate(batch) if batch else None
