"""One request of the demo: a grid of samples, pictures of the unmasking after each step, and the time taken."""

import argparse
import time
from dataclasses import dataclass

import torch
from PIL import Image

from mar.cli.common import sampling_options
from mar.data.images import grid_image
from mar.demo.frames import partial_images
from mar.model.generator import MARGenerator
from mar.sampling.loop import sample_latents, sampling_steps
from vae import Tokenizer

MAX_FRAMES = 32  # pictures of the unmasking per request; with more steps, evenly spaced ones (the last always)


@dataclass
class Generation:
    grid: Image.Image  # one row per class
    frames: list[tuple[Image.Image, str]]  # (the grid after step k, its caption), in step order
    seconds: float  # sampling and decoding; drawing the frames is not counted
    count: int  # images

    @property
    def images_per_second(self) -> float:
        return self.count / self.seconds


def shown_steps(num_iter: int, most: int = MAX_FRAMES) -> list[int]:
    """The steps (1 ... K) pictured: every one up to ``most`` steps, else ``most`` evenly spaced, ending at K."""
    if num_iter <= most:
        return list(range(1, num_iter + 1))
    return [round(num_iter * (i + 1) / most) for i in range(most)]


def _finish(device: torch.device) -> None:
    """Waits for the device's queued work, so the clock measures it."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)


@torch.no_grad()
def generate(
    model: MARGenerator,
    tokenizer: Tokenizer,
    class_ids: list[int],
    row_names: list[str],
    per_class: int,
    sampling: argparse.Namespace,
    seed: int,
    zoom: int = 2,
) -> Generation:
    """``per_class`` samples of each class with the command line's ``sampling`` arguments, seeded like sample.py."""
    device = next(model.parameters()).device
    config, steps = model.config, sampling_steps(model.config, sampling.num_iter)
    shown = set(shown_steps(steps))
    labels = torch.tensor(class_ids, device=device).repeat_interleave(per_class)  # (n,)
    frames, frame_seconds = [], 0.0

    def picture(step: int, tokens: torch.Tensor, mask: torch.Tensor) -> None:
        nonlocal frame_seconds
        if step in shown:
            started = time.perf_counter()
            drawn = config.seq_len - int(mask[0].sum())  # every image has drawn the same count
            caption = f"step {step}/{steps}: {drawn}/{config.seq_len} drawn"
            frames.append((grid_image(partial_images(tokens, mask, config, tokenizer), row_names, zoom), caption))
            frame_seconds += time.perf_counter() - started

    _finish(device)
    started = time.perf_counter()
    latents = sample_latents(
        model, labels, sampling_options(sampling), generator=torch.Generator(device).manual_seed(seed), on_step=picture
    )  # (n, c, h, w)
    images = tokenizer.decode_latents(latents)  # (n, 3, s, s)
    _finish(device)
    seconds = time.perf_counter() - started - frame_seconds
    return Generation(grid_image(images, row_names, zoom), frames, seconds, len(labels))
