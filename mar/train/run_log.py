"""Training metrics to a CSV file, to TensorBoard when it is installed, and as a PNG loss curve drawn with Pillow."""

import csv
import math
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

COLUMNS = ("step", "epoch", "loss", "lr", "grad_norm", "images_per_s", "memory_mb")


class RunLog:
    """Appends one row per logged step to ``<folder>/log.csv``; rows past ``resume_step`` from an earlier run are dropped."""

    def __init__(self, folder: str | Path, resume_step: int = 0, tensorboard: bool = True):
        self.path = Path(folder) / "log.csv"
        self.path.parent.mkdir(parents=True, exist_ok=True)
        rows = [row for row in self.rows() if int(row["step"]) <= resume_step] if resume_step else []
        with open(self.path, "w", newline="") as f:  # rewritten so a resumed run does not log its steps twice
            writer = csv.DictWriter(f, COLUMNS)
            writer.writeheader()
            writer.writerows(rows)
        self.tensorboard = tensorboard_writer(self.path.parent) if tensorboard else None

    def rows(self) -> list[dict]:
        return read_rows(self.path)

    def write(self, **values) -> None:
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, COLUMNS).writerow({k: values.get(k, "") for k in COLUMNS})
        if self.tensorboard is not None:
            for name, value in values.items():
                if name != "step":
                    self.tensorboard.add_scalar(f"train/{name}", value, values["step"])

    def plot_loss(self, path: str | Path, size: tuple[int, int] = (640, 360)) -> Path:
        """The loss against the step, on linear axes with the range printed at the corners."""
        points = [
            (int(r["step"]), float(r["loss"])) for r in self.rows() if r["loss"] and math.isfinite(float(r["loss"]))
        ]
        return draw_curve(points, path, size, title="training loss")

    def close(self) -> None:
        if self.tensorboard is not None:
            self.tensorboard.close()


def tensorboard_writer(folder: str | Path):
    """A SummaryWriter into ``<folder>/tensorboard``, or None when TensorBoard is not installed (it is optional)."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(Path(folder) / "tensorboard"))


def log_image(folder: str | Path, tag: str, path: str | Path, step: int) -> None:
    """Adds the PNG at ``path`` (a sample grid) to the run's TensorBoard events at ``step``, when TensorBoard is installed."""
    writer = tensorboard_writer(folder)
    if writer is not None:
        with writer:
            writer.add_image(tag, np.asarray(Image.open(path).convert("RGB")), step, dataformats="HWC")


def read_rows(path: str | Path) -> list[dict]:
    """The rows of a log.csv as dicts of strings (none when the file does not exist yet)."""
    if not Path(path).exists():
        return []
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def draw_curve(
    points: list[tuple[float, float]],
    path: str | Path,
    size: tuple[int, int],
    title: str,
    x_label: str = "step",
    markers: bool = False,
    labels: list[str] | None = None,
) -> Path:
    """A line through ``points`` (x, y) on linear axes, the ranges printed at the corners; dots at the points with
    ``markers``, and ``labels`` written beside them."""
    width, height = size
    margin = 40
    image = Image.new("RGB", size, "white")
    draw = ImageDraw.Draw(image)
    draw.rectangle([margin, margin, width - margin, height - margin], outline="black")
    draw.text((margin, 10), title, fill="black")
    if len(points) >= 2:
        xs, ys = [p[0] for p in points], [p[1] for p in points]
        x0, x1, y0, y1 = min(xs), max(xs), min(ys), max(ys)
        span_x, span_y = (x1 - x0) or 1, (y1 - y0) or 1
        line = [
            (
                margin + (x - x0) / span_x * (width - 2 * margin),
                height - margin - (y - y0) / span_y * (height - 2 * margin),
            )
            for x, y in points
        ]
        draw.line(line, fill=(31, 119, 180), width=2)
        for x, y in line if markers else []:
            draw.ellipse([x - 3, y - 3, x + 3, y + 3], fill=(31, 119, 180))
        for (x, y), label in zip(line, labels or []):
            right = x + 5 + draw.textlength(label) > width  # a label that would run off the image ends at its point
            draw.text((x - 5 - draw.textlength(label) if right else x + 5, y - 12), label, fill="black")
        draw.text((margin + 4, margin + 4), f"{y1:.4g}", fill="black")
        draw.text((margin + 4, height - margin - 14), f"{y0:.4g}", fill="black")
        draw.text((margin, height - margin + 6), f"{x_label} {x0:g}", fill="black")
        draw.text((width - margin - 100, height - margin + 6), f"{x_label} {x1:g}", fill="black")
    path = Path(path)
    image.save(path)
    return path
