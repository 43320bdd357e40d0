"""Writing samples as PNG grids (one row per class, its name in a left margin), alone or as titled panels."""

from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw, ImageFont


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """(n, 3, s, s) in [-1, 1] -> (n, s, s, 3) uint8."""
    return ((images.float().clamp(-1, 1) + 1) * 127.5).round().byte().permute(0, 2, 3, 1).cpu()


def from_uint8(pixels: torch.Tensor) -> torch.Tensor:
    """(n, s, s, 3) uint8 -> (n, 3, s, s) float in [-1, 1]; the inverse of ``to_uint8`` on its outputs."""
    return pixels.permute(0, 3, 1, 2).float() / 127.5 - 1


GAP = 2  # white pixels between grid cells
NAME_PADDING = 6  # pixels either side of the row names


def grid_image(images: torch.Tensor, row_names: list[str], zoom: int = 2) -> Image.Image:
    """Images (rows * cols, 3, s, s), row-major, into one picture: cells ``GAP`` pixels apart, each row's whole name
    in a left margin as wide as the longest name, in letters a little shorter than a row (at most 14 pixels)."""
    rows = len(row_names)
    cells = to_uint8(images).numpy()  # (rows * cols, s, s, 3)
    cols, side = len(cells) // rows, cells.shape[1] * zoom
    font = _font(side)
    margin = _margin(row_names, font)
    canvas = Image.new("RGB", (margin + cols * (side + GAP) - GAP, rows * (side + GAP) - GAP), "white")
    for index, cell in enumerate(cells):
        r, c = divmod(index, cols)
        picture = Image.fromarray(cell).resize((side, side), Image.NEAREST)
        canvas.paste(picture, (margin + c * (side + GAP), r * (side + GAP)))
    draw = ImageDraw.Draw(canvas)
    for r, name in enumerate(row_names):
        draw.text((NAME_PADDING, r * (side + GAP) + side // 2), str(name), fill="black", font=font, anchor="lm")
    return canvas


def grid_cells(picture: Image.Image, row_names: list[str], image_size: int, zoom: int = 2) -> torch.Tensor:
    """The images of a ``grid_image`` picture, row-major: (rows * cols, 3, s, s) in [-1, 1], as its pixels hold them."""
    side = image_size * zoom
    margin = _margin(row_names, _font(side))
    pixels = torch.from_numpy(np.array(picture.convert("RGB")))  # (rows * (side + GAP) - GAP, margin + ..., 3)
    rows, cols = len(row_names), (picture.width - margin + GAP) // (side + GAP)
    cells = [
        pixels[r * (side + GAP) :][:side:zoom, margin + c * (side + GAP) :][:, :side:zoom]  # (s, s, 3)
        for r in range(rows)
        for c in range(cols)
    ]
    return from_uint8(torch.stack(cells))


def _font(row_height: int) -> ImageFont.FreeTypeFont:
    """Pillow's scalable font, at most 14 pixels and never taller than a row."""
    return ImageFont.load_default(size=max(6, min(14, row_height - 2)))


def _margin(row_names: list[str], font: ImageFont.FreeTypeFont) -> int:
    """Width of the left margin: the longest row name and its padding."""
    return max(int(font.getlength(str(name))) for name in row_names) + 2 * NAME_PADDING


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
