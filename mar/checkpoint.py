"""Checkpoints: one safetensors file holding the generator, its tokenizer and, as JSON metadata, their configs.

A checkpoint rebuilds everything ``sample.py`` needs with no flags. It is written to a temporary name in the
same folder and renamed over the target, so a crash mid-write leaves the previous checkpoint whole.
"""
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from vae import Tokenizer, tokenizer_from_identity

from .configs import MARConfig
from .generator import MARGenerator

FORMAT = "mar-checkpoint/2"


@dataclass
class Checkpoint:
    model: MARGenerator
    tokenizer: Tokenizer
    classes: list[str]
    image_size: int
    step: int


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": t.detach().contiguous().cpu() for name, t in module.state_dict().items()}


def save_checkpoint(path: str | Path, model: MARGenerator, tokenizer: Tokenizer, classes, image_size: int, step: int) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = {
        "format": FORMAT,
        "mar_config": json.dumps(model.config.to_dict()),
        "tokenizer": json.dumps(tokenizer.identity()),
        "classes": json.dumps(list(classes)),
        "image_size": str(image_size),
        "step": str(step),
    }
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file({**_prefixed("model", model), **_prefixed("tokenizer", tokenizer)}, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix) + 1 :]: t for name, t in tensors.items() if name.startswith(prefix + ".")}


def read_metadata(path: str | Path) -> dict:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; train one with `python train.py` (it prints the path it writes)"
        )
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for files of other formats
        raise ValueError(f"{path} is not a safetensors checkpoint ({error}); pass a file written by train.py") from error
    if metadata.get("format") != FORMAT:
        raise ValueError(f"{path} is not a MAR checkpoint (format {metadata.get('format')!r}); pass a file written by train.py")
    return metadata


def load_checkpoint(path: str | Path, device: str | torch.device = "cpu", expect: MARConfig | None = None) -> Checkpoint:
    """Rebuilds the generator and tokenizer from the file alone.

    With ``expect``, a checkpoint whose config differs is refused with the differing fields named.
    """
    metadata = read_metadata(path)
    config = MARConfig.from_dict(json.loads(metadata["mar_config"]))
    if expect is not None and (differences := expect.differences(config)):
        raise ValueError(
            f"checkpoint {path} was trained with another config (requested != saved): {'; '.join(differences)}; "
            "match these options or start from scratch"
        )
    tensors: dict[str, torch.Tensor] = {}
    with safe_open(str(path), framework="pt", device=str(device)) as f:
        for name in f.keys():
            tensors[name] = f.get_tensor(name)
    model = MARGenerator(config).to(device)
    model.load_state_dict(_split(tensors, "model"))
    tokenizer = tokenizer_from_identity(json.loads(metadata["tokenizer"])).to(device)
    tokenizer.load_state_dict(_split(tensors, "tokenizer"))
    return Checkpoint(
        model=model.eval(),
        tokenizer=tokenizer.eval().requires_grad_(False),
        classes=json.loads(metadata["classes"]),
        image_size=int(metadata["image_size"]),
        step=int(metadata["step"]),
    )
