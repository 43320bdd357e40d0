"""Checkpoints: weights in one safetensors file with the configs as JSON metadata, resume state in another file.

A training run keeps ``<run>/checkpoints/step-NNNNNNNN/`` folders holding
- ``weights.safetensors``: the model, its EMA and the tokenizer, with the model config, the tokenizer identity, the
  class names, image size and step as JSON metadata: everything ``sample.py`` needs, with no flags (and, once a
  run has chosen it from its data, the guidance scale it samples with: ``record_sampling``);
- ``resume.pt``: optimizer and gradient-scaler state, step, epoch, position in the epoch and the data settings,
  plain tensors and numbers that load with ``torch.load(weights_only=True)``;
- ``guided-head.safetensors``, once ``mar distill-head`` wrote it: the guided head (``guided_head_file.py``).
A folder is written under a temporary name and renamed, then ``checkpoints/latest`` (a one-line text file) is
replaced to name it, and only then are all but the newest ``keep`` folders removed. A crash at any moment leaves
``latest`` naming a complete checkpoint.
"""

import json
import os
import shutil
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from safetensors import safe_open

from diffloss.guided_head import GuidedHead
from mar.model.config import MARConfig
from mar.model.generator import MARGenerator
from mar.train.atomic_files import WRITE_ERRORS, CheckpointWriteError, write_atomically
from mar.train.guided_head_file import load_guided_head
from vae import Tokenizer, tokenizer_from_identity

FORMAT = "mar-checkpoint/3"
WEIGHTS, RESUME, LATEST = "weights.safetensors", "resume.pt", "latest"
HUB_WEIGHTS = "model.safetensors"  # the same file in a Hugging Face Hub folder (mar/interop/hub.py)


@dataclass
class Checkpoint:
    model: MARGenerator
    ema: MARGenerator | None
    tokenizer: Tokenizer
    classes: list[str]
    image_size: int
    step: int
    sampling: dict = field(default_factory=dict)  # sampling defaults the run chose from its data: {"cfg": scale}
    guided_head: GuidedHead | None = None  # distilled from the sampling model's head (mar/train/guided_head_file.py)

    @property
    def sampling_model(self) -> MARGenerator:
        """The EMA weights when the checkpoint has them (they sample better), else the trained weights."""
        return self.ema if self.ema is not None else self.model


@dataclass
class TrainingState:
    step: int
    epoch: int
    position: int  # optimizer steps done within the epoch
    optimizer: dict
    scaler: dict
    data: dict  # number of images, global batch size and seed: resuming with others would not be exact
    bad_steps_in_row: int = 0
    schedule_steps: int | None = None  # the schedule's length, when a deadline shortened it (None: older checkpoints)


def _prefixed(prefix: str, module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {f"{prefix}.{name}": t.detach().contiguous().cpu() for name, t in module.state_dict().items()}


def save_weights(
    path: str | Path,
    model: MARGenerator,
    tokenizer: Tokenizer,
    classes,
    image_size: int,
    step: int,
    ema: MARGenerator | None = None,
    sampling: dict | None = None,
) -> Path:
    """One safetensors file, written to a temporary name in the same folder and renamed over ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    metadata = ({"sampling": json.dumps(sampling)} if sampling else {}) | {
        "format": FORMAT,
        "mar_config": json.dumps(model.config.to_dict()),
        "tokenizer": json.dumps(tokenizer.identity()),
        "classes": json.dumps(list(classes)),
        "image_size": str(image_size),
        "step": str(step),
    }
    tensors = (
        _prefixed("model", model)
        | _prefixed("tokenizer", tokenizer)
        | (_prefixed("ema", ema) if ema is not None else {})
    )
    return write_atomically(path, tensors, metadata)


def record_sampling(path: str | Path, sampling: dict) -> Path:
    """Adds the sampling defaults a run chose after training (``{"cfg": scale, "temperature": t}``) to the metadata
    of the checkpoint at ``path``, rewriting its weights file atomically; raises ``CheckpointWriteError`` (the file
    intact) when the write fails."""
    path = resolve_weights(path)
    metadata = read_metadata(path)
    with safe_open(str(path), framework="pt", device="cpu") as f:
        tensors = {name: f.get_tensor(name) for name in f.keys()}
    try:
        return write_atomically(
            path, tensors, {"sampling": json.dumps(sampling)} | {k: v for k, v in metadata.items() if k != "sampling"}
        )
    except WRITE_ERRORS as error:
        raise CheckpointWriteError(
            f"could not record the chosen sampling defaults in {path} ({type(error).__name__}: {error}); the "
            f"checkpoint is unchanged: pass {' '.join(f'--{k} {v:g}' for k, v in sampling.items())} when sampling"
        ) from None


def save_training_checkpoint(
    run_dir: str | Path,
    model: MARGenerator,
    ema,
    tokenizer: Tokenizer,
    state: TrainingState,
    classes,
    image_size: int,
    keep: int = 2,
) -> Path:
    """Writes ``checkpoints/step-N/`` (weights and resume state), points ``latest`` at it, keeps the newest ``keep``.

    Raises ``CheckpointWriteError`` naming the folder and the fix when a write fails; what was half written is removed
    and ``latest`` still names the previous checkpoint.
    """
    root = Path(run_dir) / "checkpoints"
    final = root / f"step-{state.step:08d}"
    tmp = root / f".tmp-{final.name}-{os.getpid()}"
    pointer = root / f".{LATEST}.tmp-{os.getpid()}"
    try:
        root.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(tmp, ignore_errors=True)
        tmp.mkdir()
        save_weights(tmp / WEIGHTS, model, tokenizer, classes, image_size, state.step, ema=ema.module)
        torch.save(asdict(state), tmp / RESUME)
        if final.exists():  # the same step saved again (e.g. a SIGTERM right after a periodic save): keep the first
            shutil.rmtree(tmp)
        else:
            os.replace(tmp, final)
        pointer.write_text(final.name + "\n")
        os.replace(pointer, root / LATEST)
    except WRITE_ERRORS as error:
        shutil.rmtree(tmp, ignore_errors=True)
        pointer.unlink(missing_ok=True)
        raise CheckpointWriteError(write_failure(root, state.step, error)) from None
    older = sorted(p for p in root.glob("step-*") if p.name < final.name)  # zero-padded: name order is step order
    for old in older[: max(0, len(older) - (max(1, keep) - 1))]:  # the one just written always stays
        shutil.rmtree(old, ignore_errors=True)  # a folder that cannot be removed is kept, not an error
    return final


def write_failure(root: Path, step: int, error: Exception) -> str:
    """One line: which checkpoint could not be written where, why, what is kept, and the fix."""
    try:
        previous = latest_checkpoint(root.parent)
    except FileNotFoundError:
        previous = None
    kept = f"the previous checkpoint {previous} is intact" if previous else "no earlier checkpoint exists"
    reason = " ".join(f"{type(error).__name__}: {error}".split())
    return (
        f"the checkpoint of step {step} could not be written in {root} ({reason}); {kept}; make the folder writable "
        f"and free disk space, then continue with --output {root.parent} --resume"
    )


def latest_checkpoint(run_dir: str | Path) -> Path | None:
    """The folder ``checkpoints/latest`` names in ``run_dir``, or None when the run has none yet.

    Raises FileNotFoundError, naming ``latest`` and the fix, when it names a folder that is not there.
    """
    root = Path(run_dir) / "checkpoints"
    pointer = root / LATEST
    if not pointer.is_file():
        return None
    try:
        name = pointer.read_text().strip()
    except (OSError, UnicodeDecodeError) as error:
        raise FileNotFoundError(
            f"{pointer} is unreadable ({type(error).__name__}); write the name of a checkpoint "
            f"folder into it (e.g. `echo step-N > {pointer}`)"
        ) from None
    if not name or "/" in name or not (root / name).is_dir():
        existing = sorted(p.name for p in root.glob("step-*"))
        raise FileNotFoundError(
            f"{pointer} names {name!r}, which is not a folder in {root}; point it at one that exists "
            f"(`echo {existing[-1] if existing else 'step-N'} > {pointer}`)"
        )
    return root / name


def resolve_weights(path: str | Path) -> Path:
    """The weights file of a run folder (its latest checkpoint), a checkpoint folder, a hub folder, or the file itself."""
    path = Path(path)
    if path.is_dir() and (path / HUB_WEIGHTS).is_file():
        path = path / HUB_WEIGHTS
    elif path.is_dir():
        latest = latest_checkpoint(path)
        path = (latest if latest is not None else path) / WEIGHTS
    if not path.is_file():
        raise FileNotFoundError(
            f"checkpoint {path} does not exist; pass a run folder (e.g. runs/default), one of its "
            "checkpoints/step-N folders, a weights.safetensors file written by `python train.py`, or a hub folder or id"
        )
    return path


def read_metadata(path: Path) -> dict:
    try:
        with safe_open(str(path), framework="pt") as f:
            metadata = f.metadata() or {}
    except Exception as error:  # safetensors raises its own error types for files of other formats
        raise ValueError(
            f"{path} is not a safetensors checkpoint or is truncated ({type(error).__name__}); "
            "pass a file written by train.py"
        ) from None
    if metadata.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a MAR checkpoint of format {FORMAT} (found {metadata.get('format')!r}); "
            "pass a checkpoint written by this version of train.py"
        )
    return metadata


def non_finite(tensors: dict[str, torch.Tensor]) -> list[str]:
    """Names of the floating-point tensors holding a NaN or an infinity."""
    return [name for name, t in tensors.items() if t.is_floating_point() and not torch.isfinite(t).all()]


def _split(tensors: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {name[len(prefix) + 1 :]: t for name, t in tensors.items() if name.startswith(prefix + ".")}


def parse_sampling(metadata: dict) -> dict:
    """The sampling defaults a checkpoint's metadata records (``record_sampling``): {}, {"cfg": scale} (runs before
    the temperature was chosen) or {"cfg": scale, "temperature": t}; a ValueError for anything else."""
    sampling = json.loads(metadata.get("sampling", "{}"))
    if sampling != {} and not (
        isinstance(sampling, dict)
        and set(sampling) in ({"cfg"}, {"cfg", "temperature"})
        and all(float(value) >= 0 for value in sampling.values())
    ):
        raise ValueError(f"the sampling entry {sampling} is not a guidance scale and temperature")
    return sampling


def recorded_sampling(path: str | Path) -> dict:
    """What ``record_sampling`` recorded in the checkpoint at ``path``, read from its metadata alone."""
    path = resolve_weights(path)
    try:
        return parse_sampling(read_metadata(path))
    except (TypeError, ValueError) as error:
        raise ValueError(f"checkpoint {path} has damaged or edited metadata ({error}); train again") from None


def load_checkpoint(
    path: str | Path, device: str | torch.device = "cpu", expect: MARConfig | None = None, guided_head: bool = True
) -> Checkpoint:
    """Rebuilds the generator, its EMA and the tokenizer from the weights file alone, and the guided head beside it
    when there is one (unless ``guided_head`` is False).

    With ``expect``, a checkpoint whose config differs is refused with the differing fields named.
    """
    path = resolve_weights(path)
    metadata = read_metadata(path)
    try:
        config = MARConfig.from_dict(json.loads(metadata["mar_config"]))
        classes, image_size, step = json.loads(metadata["classes"]), int(metadata["image_size"]), int(metadata["step"])
        identity = json.loads(metadata["tokenizer"])
        sampling = parse_sampling(metadata)
        if not isinstance(classes, list) or len(classes) != config.num_classes or not isinstance(identity, dict):
            raise ValueError(
                "the class names do not match the config's class count, or the tokenizer entry is malformed"
            )
    except (KeyError, TypeError, ValueError) as error:  # json's decode error is a ValueError
        raise ValueError(
            f"checkpoint {path} has damaged or edited metadata ({type(error).__name__}: {error}); "
            "use an earlier checkpoint of the run, or train again"
        ) from None
    if expect is not None and (differences := expect.differences(config)):
        raise ValueError(
            f"checkpoint {path} was trained with another config (requested != saved): {'; '.join(differences)}; "
            "match these options or start from scratch"
        )
    try:
        with safe_open(str(path), framework="pt", device=str(device)) as f:
            tensors = {name: f.get_tensor(name) for name in f.keys()}
        model = MARGenerator(config).to(device)
        model.load_state_dict(_split(tensors, "model"))
        ema = None
        if any(name.startswith("ema.") for name in tensors):
            ema = MARGenerator(config).to(device)
            ema.load_state_dict(_split(tensors, "ema"))
            ema.eval().requires_grad_(False)
        tokenizer = tokenizer_from_identity(identity).to(device)
        tokenizer.load_state_dict(_split(tensors, "tokenizer"))
    except Exception as error:  # shape or key mismatches (RuntimeError), identity fields (KeyError), safetensors errors
        raise ValueError(
            f"checkpoint {path} does not hold the weights its metadata describes "
            f"({type(error).__name__}); use an earlier checkpoint of the run, or train again"
        ) from None
    if broken := non_finite(tensors):
        raise ValueError(
            f"checkpoint {path} holds non-finite weights ({len(broken)} of {len(tensors)} tensors, e.g. {broken[0]}): "
            "it would sample noise; use an earlier checkpoint of the run (checkpoints/step-N), or train again"
        )
    sampling_model = ema if ema is not None else model
    distilled = None
    if guided_head and config.head_kind == "diffusion":
        distilled = load_guided_head(path, sampling_model.head, device)
    return Checkpoint(
        model=model.eval(),
        ema=ema,
        tokenizer=tokenizer.eval().requires_grad_(False),
        classes=classes,
        image_size=image_size,
        step=step,
        sampling=sampling,
        guided_head=distilled,
    )


def load_training_state(checkpoint_dir: str | Path) -> TrainingState:
    """The resume state beside a checkpoint's weights; only tensors and plain values are unpickled."""
    path = Path(checkpoint_dir) / RESUME
    if not path.is_file():
        raise FileNotFoundError(f"{path} does not exist; --resume needs a checkpoint folder written by train.py")
    fix = (
        f"point {Path(checkpoint_dir).parent / LATEST} at an earlier step-N folder of the run, or start a new --output"
    )
    try:
        # Only tensors and plain values unpickle; anything else (a foreign or malicious pickle) is refused here.
        saved = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # truncated zip (RuntimeError), refused pickle (UnpicklingError), garbage (EOFError ...)
        # torch's own message would suggest weights_only=False, which must never be followed for a file like this
        raise ValueError(
            f"resume state {path} is damaged or was not written by train.py ({type(error).__name__}); {fix}"
        ) from None
    try:
        return TrainingState(**saved)
    except TypeError:
        raise ValueError(f"resume state {path} does not hold train.py's fields; {fix}") from None
