"""Any ImageFolder-style directory (root/<class>/<image>) as (image (3, s, s) in [-1, 1], label)."""

import sys
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset, default_collate


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
            raise FileNotFoundError(
                f"image folder {root} does not exist; pass a directory with one sub-folder per class"
            )
        if bad_images not in ("fail", "skip"):
            raise ValueError(f"bad_images {bad_images!r} must be 'fail' or 'skip'")
        self.classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
        files = {
            name: sorted(p for p in (root / name).rglob("*") if p.suffix.lower() in IMAGE_SUFFIXES)
            for name in self.classes
        }
        if not self.classes or not any(files.values()):
            raise ValueError(
                f"image folder {root} holds no images in class sub-folders (expected {root}/<class>/<image>.png)"
            )
        empty = [name for name in self.classes if not files[name]]
        if empty:
            raise ValueError(
                f"class folder {root / empty[0]} holds no images ({len(empty)} such folder(s)); add images "
                f"(suffixes {', '.join(sorted(IMAGE_SUFFIXES))}) or remove the folder"
            )
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
