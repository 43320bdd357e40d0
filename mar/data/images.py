"""Writing samples as PNG grids (one row per class, its name in a left margin), alone or as titled panels."""

from pathlib import Path

import numpy as np
import torch
from einops import rearrange
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(n, 3, s, s) in [-1, 1] -> (n, s, s, 3) uint8."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu()


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(n, s, s, 3) uint8 -> (n, 3, s, s) float in [-1, 1]; the inverse of ``to_uint8`` on its outputs."""
    return pixels.permute(0, 3, 1, 2).float() / 127.5 - 1


def grid_image(images: torch.Tensor, row_names: list[str], zoom: int = 2) -> Image.Image:
    """Images (rows * cols, 3, s, s), row-major, into one picture with ``row_names`` on the left."""
    rows = len(row_names)
    grid = rearrange(to_uint8(images), "(r c) h w ch -> (r h) (c w) ch", r=rows).numpy()
    picture = Image.fromarray(grid)
    picture = picture.resize((picture.width * zoom, picture.height * zoom), Image.NEAREST)
    row_height = picture.height // rows
    margin = _margin(row_height)
    font = ImageFont.load_default(size=max(10, row_height // 2))
    canvas = Image.new("RGB", (picture.width + margin, picture.height), "white")
    canvas.paste(picture, (margin, 0))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(row_names):
        draw.text((margin // 2, r * row_height + row_height // 2), str(name)[:4], fill="black", font=font, anchor="mm")
    return canvas


def grid_cells(picture: Image.Image, rows: int, image_size: int, zoom: int = 2) -> torch.Tensor:
    """The images of a ``grid_image`` picture, row-major: (rows * cols, 3, s, s) in [-1, 1], as its pixels hold them."""
    pixels = torch.from_numpy(np.array(picture.convert("RGB")))  # (rows * s * zoom, margin + cols * s * zoom, 3)
    cells = pixels[::zoom, _margin(picture.height // rows) :: zoom]  # (rows * s, cols * s, 3)
    return from_uint8(rearrange(cells, "(r h) (c w) ch -> (r c) h w ch", h=image_size, w=image_size))


def _margin(row_height: int) -> int:
    """Width of the left margin that holds the row names."""
    return max(24, row_height)


def save_grid(images: torch.Tensor, row_names: list[str], path: str | Path, zoom: int = 2) -> Path:
    """``grid_image`` written as a PNG."""
    return _save(grid_image(images, row_names, zoom), path)


def save_panels(panels: dict[str, Image.Image], path: str | Path, gap: int = 16) -> Path:
    """Pictures side by side, each under its title, as one PNG."""
    title_height = 28
    font = ImageFont.load_default(size=16)
    width = sum(p.width for p in panels.values()) + gap * (len(panels) - 1)
    canvas = Image.new("RGB", (width, title_height + max(p.height for p in panels.values())), "white")
    draw, x = ImageDraw.Draw(canvas), 0
    for title, picture in panels.items():
        canvas.paste(picture, (x, title_height))
        draw.text((x + picture.width // 2, title_height // 2), title, fill="black", font=font, anchor="mm")
        x += picture.width + gap
    return _save(canvas, path)


def _save(picture: Image.Image, path: str | Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    picture.save(path)
    return path
