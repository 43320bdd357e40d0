"""Latent caches: a dataset encoded once into safetensors shards, tied to the tokenizer and image size that made it.

A cache folder holds ``shard-00000.safetensors``, ... and ``cache.json``. Each shard stores, per image and view
(the image, and its mirror image with flips), what the tokenizer's kind needs to draw training inputs:
KL: the posterior ``mean`` and ``std`` (n, V, c, h, w); VQ / FSQ: code ``indices`` (n, V, h, w); plus ``labels`` (n,).
``cache.json`` is written last, after every shard, so a folder without it is an unfinished cache. Under torchrun
each rank encodes every world_size-th shard.
"""

import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader, Dataset, Subset
from tqdm import tqdm

from mar import distributed
from mar.data.image_folder import collate_readable
from vae import DiscreteTokenizer, KLTokenizer, Tokenizer, fingerprint

FORMAT = "mar-latents/1"
MANIFEST = "cache.json"


class LatentCacheMismatch(ValueError):
    pass


@dataclass
class LatentSet:
    """Posterior moments per image and view, with labels, for drawing KL training latents."""

    mean: torch.Tensor  # (N, V, c, h, w), unscaled
    std: torch.Tensor  # (N, V, c, h, w)
    labels: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "LatentSet":
        return LatentSet(self.mean.to(device), self.std.to(device), self.labels.to(device))

    def draw(self, tokenizer: KLTokenizer, index: torch.Tensor, generator=None) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled posterior draws for images ``index`` (b,), each from a random view: ((b, c, h, w), (b,))."""
        view = torch.randint(0, self.mean.shape[1], index.shape, generator=generator, device=index.device)
        mean, std = self.mean[index, view], self.std[index, view]
        return tokenizer.scale_latents(mean, std, generator), self.labels[index]


@dataclass
class CodeSet:
    """Code indices per image and view, with labels, for drawing the scaled code vectors of a discrete tokenizer."""

    indices: torch.Tensor  # (N, V, h, w)
    labels: torch.Tensor  # (N,)

    def __len__(self) -> int:
        return len(self.labels)

    def to(self, device) -> "CodeSet":
        return CodeSet(self.indices.to(device), self.labels.to(device))

    def draw(
        self, tokenizer: DiscreteTokenizer, index: torch.Tensor, generator=None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Scaled code vectors for images ``index`` (b,), each from a random view: ((b, d, h, w), (b,))."""
        view = torch.randint(0, self.indices.shape[1], index.shape, generator=generator, device=index.device)
        return tokenizer.latents(self.indices[index, view]), self.labels[index]


@torch.no_grad()
def encode_views(tokenizer: Tokenizer, images: torch.Tensor, flips: bool) -> dict[str, torch.Tensor]:
    """What the cache stores for ``images`` (b, 3, s, s): see the module docstring."""
    views = torch.stack([images, images.flip(-1)], dim=1) if flips else images[:, None]  # (b, V, 3, s, s)
    flat = views.flatten(0, 1)
    if tokenizer.discrete:
        return {"indices": tokenizer.encode(flat).unflatten(0, views.shape[:2])}
    mean, std = tokenizer.moments(flat)
    return {"mean": mean.unflatten(0, views.shape[:2]), "std": std.unflatten(0, views.shape[:2])}


def _atomic_save(tensors: dict[str, torch.Tensor], path: Path) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    save_file({k: v.contiguous().cpu() for k, v in tensors.items()}, tmp)
    os.replace(tmp, path)


def expected_manifest(tokenizer: Tokenizer, image_size: int, dataset_name: str, flips: bool) -> dict:
    return {
        "tokenizer_fingerprint": fingerprint(tokenizer),
        "image_size": image_size,
        "dataset": dataset_name,
        "views": 2 if flips else 1,
    }


def write_latent_cache(
    tokenizer: Tokenizer,
    dataset: Dataset,
    directory: str | Path,
    image_size: int,
    dataset_name: str,
    flips: bool,
    batch_size: int = 256,
    shard_size: int = 8192,
    num_workers: int = 0,
    progress: bool = True,
) -> dict:
    """Encodes ``dataset`` into shards (this rank's share under torchrun), writes the manifest on rank 0, returns it."""
    directory = Path(directory)
    rank, world = distributed.rank(), distributed.world_size()
    if rank == 0:
        directory.mkdir(parents=True, exist_ok=True)
        (directory / MANIFEST).unlink(missing_ok=True)  # the old cache stops being valid before any shard changes
    distributed.barrier()
    device = next(tokenizer.parameters()).device
    num_shards = math.ceil(len(dataset) / shard_size)
    mine = range(rank, num_shards, world)
    bar = tqdm(
        total=sum(min(shard_size, len(dataset) - k * shard_size) for k in mine),
        desc=f"caching (rank {rank})",
        disable=not progress,
    )
    for k in mine:
        part = Subset(dataset, range(k * shard_size, min(len(dataset), (k + 1) * shard_size)))
        stored: dict[str, list[torch.Tensor]] = {}
        loader = DataLoader(part, batch_size=batch_size, num_workers=num_workers, collate_fn=collate_readable)
        for first, batch in zip(range(0, len(part), batch_size), loader):
            if batch is not None:  # None: every image of the batch was unreadable and skipped
                images, labels = batch
                for name, tensor in (encode_views(tokenizer, images.to(device), flips) | {"labels": labels}).items():
                    stored.setdefault(name, []).append(tensor.cpu())
            bar.update(min(batch_size, len(part) - first))
        if not stored:
            raise ValueError(
                f"every image of shard {k} ({len(part)} images) was unreadable and skipped; check the data"
            )
        _atomic_save(
            {name: torch.cat(parts) for name, parts in stored.items()}, directory / f"shard-{k:05d}.safetensors"
        )
    bar.close()
    distributed.barrier()
    manifest = {
        "format": FORMAT,
        **expected_manifest(tokenizer, image_size, dataset_name, flips),
        "tokenizer": tokenizer.identity(),
        "num_images": len(dataset),
        "shards": [f"shard-{k:05d}.safetensors" for k in range(num_shards)],
    }  # num_images counts the dataset's files; images skipped as unreadable are absent from the shards
    if rank == 0:
        tmp = directory / f".{MANIFEST}.tmp"
        tmp.write_text(json.dumps(manifest, indent=2))
        os.replace(tmp, directory / MANIFEST)
    distributed.barrier()
    return manifest


def check_latent_cache(
    directory: str | Path, tokenizer: Tokenizer, image_size: int, dataset_name: str, flips: bool | None
) -> dict:
    """The manifest of a finished cache made by this tokenizer at this image size from this data, else a clear error."""
    directory = Path(directory)
    if not (directory / MANIFEST).is_file():
        raise FileNotFoundError(
            f"latent cache {directory} has no {MANIFEST} (missing or unfinished); "
            "delete the folder and let train.py or mar cache-latents write it again"
        )
    manifest = read_manifest(directory)
    expected = expected_manifest(tokenizer, image_size, dataset_name, flips)
    if flips is None:  # not decided yet: either setting is accepted here, and checked once it is
        expected["views"] = manifest["views"]
    differences = [
        f"{key}: cache {manifest[key]!r} != this run {expected[key]!r}"
        for key in expected
        if manifest[key] != expected[key]
    ]
    if differences:
        raise LatentCacheMismatch(
            f"latent cache {directory} was made with another tokenizer, image size, dataset or flip setting ({'; '.join(differences)}); "
            "pass the tokenizer and data it was made with, or a new --latent-cache folder to encode afresh"
        )
    return manifest


REQUIRED = ("format", "tokenizer_fingerprint", "image_size", "dataset", "views", "num_images", "shards")


def read_manifest(directory: Path) -> dict:
    """``cache.json`` of a cache folder, refused with the fix when it is damaged, edited or of another format."""
    path = directory / MANIFEST
    fix = "delete the folder (or pass a new --latent-cache) and encode the data again"
    try:
        manifest = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise LatentCacheMismatch(
            f"latent cache manifest {path} is unreadable ({type(error).__name__}); {fix}"
        ) from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        found = manifest.get("format") if isinstance(manifest, dict) else type(manifest).__name__
        raise LatentCacheMismatch(f"{path} is not a latent cache manifest of format {FORMAT} (found {found!r}); {fix}")
    missing = [key for key in REQUIRED if key not in manifest]
    if missing or not isinstance(manifest["shards"], list) or not all(isinstance(s, str) for s in manifest["shards"]):
        raise LatentCacheMismatch(
            f"latent cache manifest {path} is damaged (missing or malformed: {', '.join(missing) or 'shards'}); {fix}"
        )
    return manifest


def read_latent_cache(directory: str | Path, manifest: dict) -> dict[str, torch.Tensor]:
    """Every shard of a checked cache, concatenated in dataset order (CPU tensors); damaged shards are named."""
    directory = Path(directory)
    fix = "delete the folder (or pass a new --latent-cache) and encode the data again"
    shards = []
    for name in manifest["shards"]:
        path = directory / name
        if not path.is_file():
            raise FileNotFoundError(f"latent cache {directory} lacks {name}; {fix}")
        try:
            shards.append(load_file(path))
        except Exception as error:  # safetensors raises its own error types for truncated or foreign files
            raise LatentCacheMismatch(f"latent cache shard {path} is damaged ({type(error).__name__}); {fix}") from None
    names = sorted(shards[0]) if shards else []
    if not names or any(sorted(shard) != names for shard in shards):
        raise LatentCacheMismatch(f"latent cache {directory} has shards holding different tensors; {fix}")
    try:
        tensors = {name: torch.cat([shard[name] for shard in shards]) for name in names}
    except RuntimeError:
        raise LatentCacheMismatch(f"latent cache {directory} has shards of mismatched shapes; {fix}") from None
    if {"labels"} | ({"indices"} if "indices" in tensors else {"mean", "std"}) != set(names) or any(
        len(t) != len(tensors["labels"]) for t in tensors.values()
    ):
        raise LatentCacheMismatch(
            f"latent cache {directory} holds tensors {names} of unequal lengths or unknown kinds; {fix}"
        )
    return tensors


def latent_set(tensors: dict[str, torch.Tensor]) -> LatentSet | CodeSet:
    """The training set a cache holds: posterior moments (KL) or code indices (VQ, FSQ)."""
    if "indices" in tensors:
        return CodeSet(tensors["indices"], tensors["labels"])
    return LatentSet(tensors["mean"], tensors["std"], tensors["labels"])
