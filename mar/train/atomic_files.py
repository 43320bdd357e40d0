"""Writing a weights file so that a failure at any moment leaves the earlier file whole."""

import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save_file


class CheckpointWriteError(RuntimeError):
    """A checkpoint could not be written (a read-only folder, a full disk); the previous one is intact."""


WRITE_ERRORS = (OSError, RuntimeError, SafetensorError)  # torch.save reports a failed write as a RuntimeError


def write_atomically(path: Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str]) -> Path:
    """``tensors`` and ``metadata`` as one safetensors file, written to a temporary name and renamed over ``path``."""
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        save_file(tensors, tmp, metadata=metadata)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    return path
