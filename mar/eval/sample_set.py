"""N class-balanced samples drawn to a folder of PNGs in seeded chunks: the same files for any number of processes.

Image i has class i // (N / classes), as the official evaluation protocol orders them. Images are drawn in chunks
of ``chunk_size`` consecutive indices; chunk k is drawn as one batch with a generator seeded from (seed, k), so its
images do not depend on which process draws it or on how many processes there are (at the same chunk size). Process
r of w draws chunks r, r + w, ...; each image is written to a temporary name and renamed, so a chunk whose PNGs
all exist is finished and a re-run skips it. Nothing is held beyond one chunk.
"""

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from tqdm import tqdm

from mar.data.images import to_uint8
from mar.eval.npz import write_npz_rows
from mar.sampling.config import SamplingConfig
from mar.sampling.loop import sample_latents

MANIFEST = "sample_set.json"


@dataclass(frozen=True)
class SamplePlan:
    num_images: int
    num_classes: int
    chunk_size: int
    seed: int

    @property
    def per_class(self) -> int:
        return self.num_images // self.num_classes

    @property
    def num_chunks(self) -> int:
        return -(-self.num_images // self.chunk_size)

    def indices(self, chunk: int) -> range:
        return range(chunk * self.chunk_size, min(self.num_images, (chunk + 1) * self.chunk_size))

    def labels(self, chunk: int) -> torch.Tensor:
        """Class ids of the chunk's images, (n,): image i has class i // per_class."""
        return torch.tensor([i // self.per_class for i in self.indices(chunk)])

    def generator_seed(self, chunk: int) -> int:
        return int(np.random.SeedSequence([self.seed, chunk]).generate_state(1)[0])


def image_path(folder: Path, index: int) -> Path:
    return folder / f"{index:06d}.png"


def chunk_done(folder: Path, plan: SamplePlan, chunk: int) -> bool:
    return all(image_path(folder, i).is_file() for i in plan.indices(chunk))


def check_manifest(folder: Path, record: dict) -> bool:
    """True when ``folder`` holds (part of) this sample set; ValueError naming the differences when it holds another."""
    path = folder / MANIFEST
    if not path.is_file():
        if folder.is_dir() and any(folder.glob("*.png")):
            raise ValueError(
                f"{folder} holds PNGs but no {MANIFEST}: they are not a sample set of this script; pass another --out"
            )
        return False
    try:
        saved = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        raise ValueError(f"{path} is unreadable ({type(error).__name__}); pass another --out") from None
    differences = [
        f"{key}: {saved.get(key)!r} != {value!r}" for key, value in record.items() if saved.get(key) != value
    ]
    if differences:
        raise ValueError(
            f"{folder} holds another sample set (saved != requested: {'; '.join(differences)}); "
            "pass another --out, or the same settings to continue it"
        )
    return True


def write_manifest(folder: Path, record: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    tmp = folder / f".{MANIFEST}.tmp-{os.getpid()}"
    tmp.write_text(json.dumps(record, indent=2) + "\n")
    tmp.replace(folder / MANIFEST)


# Options added later, left out of a record at these values.
SETTLED_DEFAULTS = {
    "cfg_refresh": 1,
    "token_cache": 0,
    "cache_buffer": False,
    "cache_growth": 0.0,
    "guided_head": False,
}


def sample_set_record(plan: SamplePlan, checkpoint: str, sampling: dict, ema: bool) -> dict:
    """What makes a sample set: a folder holding one made otherwise is refused rather than mixed.

    Options added after sets were first drawn are left out at their exact defaults (``SETTLED_DEFAULTS``), and the
    exact savings (``reuse``) always, as they do not change the samples: sets drawn before those options existed
    still resume."""
    sampling = {
        key: value
        for key, value in sampling.items()
        if key != "reuse" and not (key in SETTLED_DEFAULTS and value == SETTLED_DEFAULTS[key])
    }
    return {**asdict(plan), "checkpoint": str(checkpoint), "ema": ema, **sampling}


@torch.no_grad()
def draw_chunk(
    model, tokenizer, plan: SamplePlan, chunk: int, precision, sampling: SamplingConfig | None = None, guided_head=None
) -> np.ndarray:
    """The chunk's images, uint8 (n, s, s, 3); ``guided_head`` as ``sample_latents`` takes it."""
    device = next(model.parameters()).device
    generator = torch.Generator(device).manual_seed(plan.generator_seed(chunk))
    with torch.autocast(device.type, dtype=precision or torch.float32, enabled=precision is not None):
        latents = sample_latents(model, plan.labels(chunk).to(device), sampling, generator=generator, head=guided_head)
        images = tokenizer.decode_latents(latents.float())
    return to_uint8(images).numpy()


def write_chunk(folder: Path, plan: SamplePlan, chunk: int, images: np.ndarray) -> None:
    for index, pixels in zip(plan.indices(chunk), images):
        final = image_path(folder, index)
        tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
        Image.fromarray(pixels).save(tmp, format="PNG")
        tmp.replace(final)


def draw_sample_set(
    model,
    tokenizer,
    plan: SamplePlan,
    folder: Path,
    rank: int = 0,
    world: int = 1,
    precision=None,
    progress: bool = True,
    sampling: SamplingConfig | None = None,
    guided_head=None,
) -> int:
    """Draws this process's unfinished chunks into ``folder``; returns how many images it drew."""
    mine = [k for k in range(rank, plan.num_chunks, world) if not chunk_done(folder, plan, k)]
    drawn = 0
    with tqdm(
        total=sum(len(plan.indices(k)) for k in mine) * world,
        desc="sampling",
        unit="img",
        disable=not progress or rank != 0,
        smoothing=0.1,
    ) as bar:  # rank 0 stands for all: its share times the process count
        for chunk in mine:
            images = draw_chunk(model, tokenizer, plan, chunk, precision, sampling, guided_head)
            write_chunk(folder, plan, chunk, images)
            drawn += len(images)
            bar.update(len(images) * world)
    return drawn


def write_sample_npz(folder: Path, plan: SamplePlan, path: Path) -> Path:
    """The folder's PNGs, in index order, as ADM's evaluator .npz (``arr_0`` uint8 (N, s, s, 3)), streamed."""
    first = np.asarray(Image.open(image_path(folder, 0)).convert("RGB"))

    def blocks():
        for chunk in range(plan.num_chunks):
            yield np.stack([np.asarray(Image.open(image_path(folder, i)).convert("RGB")) for i in plan.indices(chunk)])

    return write_npz_rows(path, blocks(), plan.num_images, first.shape)
