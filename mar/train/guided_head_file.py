"""The guided head's file: ``guided-head.safetensors`` beside the checkpoint's weights it was distilled from.

It holds the guided head's weights and, as metadata, a digest of the teacher head's weights: a checkpoint whose head
changed (a later step written into the same folder, edited weights) refuses the old file by name instead of sampling
with a head fitted to other weights. Written atomically, so an interrupted write leaves any earlier file whole.
"""

import hashlib
import json
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open

from diffloss import DiffLoss
from diffloss.guided_head import GuidedHead
from mar.train.atomic_files import WRITE_ERRORS, CheckpointWriteError, write_atomically

GUIDED_HEAD = "guided-head.safetensors"
FORMAT = "mar-guided-head/1"


def guided_head_path(weights: Path) -> Path:
    return Path(weights).with_name(GUIDED_HEAD)


def weights_digest(module: torch.nn.Module) -> str:
    """SHA-256 of every weight's name and bytes: equal exactly when the weights are."""
    digest = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def save_guided_head(weights: Path, head: GuidedHead, teacher: DiffLoss, details: dict) -> Path:
    """Writes the guided head beside ``weights``; ``details`` (steps, errors) go into its metadata."""
    path = guided_head_path(weights)
    metadata = {"format": FORMAT, "teacher": weights_digest(teacher), "details": json.dumps(details)}
    tensors = {name: t.detach().contiguous().cpu() for name, t in head.state_dict().items()}
    try:
        return write_atomically(path, tensors, metadata)
    except WRITE_ERRORS as error:
        raise CheckpointWriteError(
            f"could not write the guided head {path} ({type(error).__name__}: {error}); any earlier one is unchanged: "
            "free space or make the folder writable, then run mar distill-head again"
        ) from None


def load_guided_head(weights: Path, teacher: DiffLoss, device) -> GuidedHead | None:
    """The guided head beside ``weights``, None when there is none; a file distilled from another head, or damaged,
    is refused with its name and the fix."""
    path = guided_head_path(weights)
    if not path.is_file():
        return None
    fix = f"delete it, or write it again with `mar distill-head --checkpoint {Path(weights).parent} --overwrite`"
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            metadata = f.metadata() or {}
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        if metadata.get("format") != FORMAT:
            raise ValueError(f"format {metadata.get('format')!r}")
        head = GuidedHead(teacher.config).to(device)
        head.load_state_dict(tensors)
    except (OSError, SafetensorError, RuntimeError, ValueError) as error:
        raise ValueError(f"guided head {path} is damaged or not one ({type(error).__name__}); {fix}") from None
    if metadata.get("teacher") != weights_digest(teacher):
        raise ValueError(f"guided head {path} was distilled from other head weights than this checkpoint's; {fix}")
    if not all(torch.isfinite(t).all() for t in tensors.values()):
        raise ValueError(f"guided head {path} holds non-finite weights; {fix}")
    return head.eval().requires_grad_(False)
