"""Hugging Face Hub save / load of a trained MAR: weights (and EMA), tokenizer and class names in one folder.

A hub folder holds
- ``model.safetensors``: this project's checkpoint format (mar/checkpoint.py), so ``sample.py`` opens it as is;
- ``config.json``: model config, tokenizer identity, class names, image size, step, training data and measured
  metrics, readable without torch;
- ``README.md``: the model card generated from the same facts, showing ``samples.png`` when a grid was given.

``PretrainedMAR`` follows ``huggingface_hub.ModelHubMixin``: ``save_pretrained`` / ``from_pretrained`` /
``push_to_hub``. ``open_checkpoint`` is what the scripts call: a local path as before, or a hub id read from the
local Hugging Face cache, with a one-line error naming the download command when it is not there.
"""

import json
import shutil
from pathlib import Path

import torch
from huggingface_hub import ModelCard, ModelCardData, ModelHubMixin, snapshot_download
from huggingface_hub.errors import HfHubHTTPError, HFValidationError, LocalEntryNotFoundError, OfflineModeIsEnabled

from mar.sampling.config import SamplingConfig
from mar.sampling.loop import sample_latents
from mar.train.checkpoint import (
    HUB_WEIGHTS,
    RESUME,
    Checkpoint,
    load_checkpoint,
    load_training_state,
    resolve_weights,
    save_weights,
)
from mar.train.guided_head_file import save_guided_head
from vae.loading import HUB_ID

PAPER = "https://arxiv.org/abs/2406.11838"
GRID = "samples.png"
TAGS = ["mar", "masked-autoregressive", "diffusion-loss", "class-conditional", "image-generation"]


class HubCheckpointNotFound(FileNotFoundError):
    """A hub id that is neither a local path nor in the local Hugging Face cache (and cannot be fetched)."""


class PretrainedMAR(ModelHubMixin, library_name="mar", tags=TAGS, paper_url=PAPER):
    """A trained generator with everything sampling needs, as one Hub repo.

    ``training`` describes the data and budget (dataset, images, steps ...), ``metrics`` holds measured figures
    (name -> number); both go into config.json and the model card. ``grid`` is a sample-grid PNG shown in the card.
    """

    def __init__(
        self,
        checkpoint: Checkpoint,
        training: dict | None = None,
        metrics: dict | None = None,
        grid: str | Path | None = None,
    ):
        self.checkpoint = checkpoint
        self.training = dict(training or {})
        self.metrics = dict(metrics or {})
        self.grid = Path(grid) if grid is not None else None

    @torch.no_grad()
    def generate(
        self,
        class_ids: list[int],
        generator: torch.Generator | None = None,
        sampling: SamplingConfig | None = None,
        **overrides,
    ) -> torch.Tensor:
        """Images (n, 3, s, s) in [-1, 1] for ``class_ids``, drawn with the EMA weights as ``sampling`` (when None,
        SamplingConfig's defaults with the guidance scale the run chose, if it chose one) with keyword ``overrides``
        of its fields says."""
        model = self.checkpoint.sampling_model
        labels = torch.tensor(class_ids, device=next(model.parameters()).device)
        sampling = sampling or SamplingConfig(**self.checkpoint.sampling)
        return self.checkpoint.tokenizer.decode_latents(
            sample_latents(model, labels, sampling, generator=generator, head=self.checkpoint.guided_head, **overrides)
        )

    def hub_config(self) -> dict:
        ckpt = self.checkpoint
        return {
            "library": "mar",
            "mar_config": ckpt.model.config.to_dict(),
            "tokenizer": ckpt.tokenizer.identity(),
            "classes": ckpt.classes,
            "image_size": ckpt.image_size,
            "step": ckpt.step,
            "training": self.training,
            "metrics": self.metrics,
        }

    def _save_pretrained(self, save_directory: Path) -> None:
        ckpt = self.checkpoint
        save_weights(
            save_directory / HUB_WEIGHTS,
            ckpt.model,
            ckpt.tokenizer,
            ckpt.classes,
            ckpt.image_size,
            ckpt.step,
            ema=ckpt.ema,
            sampling=ckpt.sampling,
        )
        if ckpt.guided_head is not None:  # beside the weights, as in a checkpoint folder
            save_guided_head(save_directory / HUB_WEIGHTS, ckpt.guided_head, ckpt.sampling_model.head, {})
        (save_directory / "config.json").write_text(json.dumps(self.hub_config(), indent=2) + "\n")
        if self.grid is not None:
            shutil.copyfile(self.grid, save_directory / GRID)

    @classmethod
    def _from_pretrained(
        cls,
        *,
        model_id: str,
        revision,
        cache_dir,
        force_download,
        local_files_only,
        token,
        training: dict | None = None,
        metrics: dict | None = None,
    ) -> "PretrainedMAR":
        folder = Path(model_id)
        if not folder.is_dir():
            folder = Path(
                snapshot_download(
                    model_id,
                    revision=revision,
                    cache_dir=cache_dir,
                    force_download=force_download,
                    local_files_only=local_files_only,
                    token=token,
                )
            )
        grid = folder / GRID
        return cls(
            load_checkpoint(folder / HUB_WEIGHTS),
            training=training,
            metrics=metrics,
            grid=grid if grid.is_file() else None,
        )

    def generate_model_card(self, *args, **kwargs) -> ModelCard:
        data = ModelCardData(library_name="mar", tags=TAGS, pipeline_tag="unconditional-image-generation")
        return ModelCard(f"---\n{data.to_yaml()}\n---\n{model_card_body(self)}")


def model_card_body(pretrained: PretrainedMAR) -> str:
    """The card's Markdown: what the model is, how to sample it, its config, training data, metrics and samples."""
    ckpt = pretrained.checkpoint
    config, tokenizer = ckpt.model.config, ckpt.tokenizer
    parameters = sum(p.numel() for p in ckpt.model.parameters())
    head = (
        "a diffusion head (DDPM loss, MLP denoiser)"
        if config.head_kind == "diffusion"
        else "a categorical head (cross-entropy over codes)"
    )
    rows = [
        ("parameters", f"{parameters / 1e6:.2f}M"),
        (
            "backbone",
            f"width {config.width}, {config.encoder_depth} encoder + {config.decoder_depth} decoder blocks, "
            f"{config.num_heads} heads, buffer {config.buffer_size}",
        ),
        (
            "tokens",
            f"{config.seq_len} tokens of {config.token_dim} channels (latent {config.latent_size}x{config.latent_size}, "
            f"patch {config.patch_size})",
        ),
        ("head", head),
        ("tokenizer", f"{tokenizer.kind}, stride {tokenizer.stride}, {tokenizer.channels} channels"),
        ("image size", f"{ckpt.image_size}x{ckpt.image_size}"),
        (
            "classes",
            f"{len(ckpt.classes)}: " + ", ".join(ckpt.classes[:20]) + (" ..." if len(ckpt.classes) > 20 else ""),
        ),
        ("training step", str(ckpt.step)),
        ("EMA weights", "yes (used for sampling)" if ckpt.ema is not None else "no"),
    ]
    lines = [
        "# MAR: masked autoregressive image generation",
        "",
        f"A class-conditional generator in the style of MAR ([Li et al., 2024]({PAPER})): a bidirectional transformer "
        f"predicts a condition for each masked token and {head} draws the token; tokens are unmasked in a random order "
        "over K steps. Trained with the `mar` library.",
        "",
        "## Use",
        "",
        "```bash",
        "python sample.py --checkpoint ORG/NAME   # from the local Hugging Face cache, or a downloaded folder",
        "```",
        "",
        "```python",
        "from mar.interop.hub import PretrainedMAR",
        'pretrained = PretrainedMAR.from_pretrained("ORG/NAME")',
        'images = pretrained.generate([0, 1, 2], num_iter=16, cfg=3.0, cfg_schedule="linear")  # (3, 3, s, s) in [-1, 1]',
        "```",
        "",
        "## Model",
        "",
        "| | |",
        "|---|---|",
        *[f"| {name} | {value} |" for name, value in rows],
        "",
        "## Training data",
        "",
        *([f"- {name}: {value}" for name, value in pretrained.training.items()] or ["- not recorded"]),
        "",
        "## Measured metrics",
        "",
        *(
            [
                f"- {name}: {value:.4g}" if isinstance(value, float) else f"- {name}: {value}"
                for name, value in pretrained.metrics.items()
            ]
            or ["- none recorded"]
        ),
    ]
    if pretrained.grid is not None:
        lines += ["", "## Samples", "", "One row per class, drawn with the EMA weights:", "", f"![samples]({GRID})"]
    return "\n".join(lines) + "\n"


def run_record(checkpoint_path: str | Path) -> tuple[dict, dict, Path | None]:
    """What the run a checkpoint belongs to recorded: training facts, measured metrics, and its final sample grid.

    Training facts come from the resume state beside the weights (dataset, images, batch, seed); metrics from the run's
    ``metrics.json`` (train.py) and its tokenizer's (PSNR); the grid is the run's ``samples.png``. Missing parts are
    left out.
    """
    weights = resolve_weights(checkpoint_path)
    training, metrics = {}, {}
    if (weights.parent / RESUME).is_file():
        data = load_training_state(weights.parent).data
        training = {name: data[name] for name in ("dataset", "num_images", "batch_size", "seed") if name in data}
    run = weights.parent.parent.parent if weights.parent.parent.name == "checkpoints" else None
    if run is None:
        return training, metrics, None
    for source, prefix in ((run / "tokenizer" / "metrics.json", "tokenizer_"), (run / "metrics.json", "")):
        if source.is_file():
            metrics |= {prefix + name: value for name, value in json.loads(source.read_text()).items()}
    grid = run / GRID
    return training, metrics, grid if grid.is_file() else None


def open_checkpoint(name: str, device: str | torch.device = "cpu") -> Checkpoint:
    """A checkpoint from a local path (run folder, checkpoint folder, weights file, hub folder) or a hub id.

    A hub id is downloaded, or only read from the local Hugging Face cache when offline (HF_HUB_OFFLINE=1);
    raises ``HubCheckpointNotFound`` naming the download command when it cannot be had.
    """
    if Path(name).exists() or not HUB_ID.fullmatch(name) or name.startswith("."):
        return load_checkpoint(name, device)
    try:
        folder = Path(snapshot_download(name))
    except (LocalEntryNotFoundError, OfflineModeIsEnabled, HfHubHTTPError, HFValidationError, OSError) as error:
        raise HubCheckpointNotFound(
            f"checkpoint {name} is neither a local path nor a hub repo in the local Hugging Face cache "
            f"({type(error).__name__}); on a machine with network run `hf download {name}` "
            f"(`huggingface-cli download {name}` before huggingface_hub 1.0), or pass a local folder"
        ) from None
    return load_checkpoint(folder / HUB_WEIGHTS, device)
