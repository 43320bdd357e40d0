"""One entry point for every tokenizer source, and the identity that ties latents to the tokenizer that made them.

``load_tokenizer`` accepts
- a folder written here (``tokenizer.json`` names the kind: kl, vq or fsq),
- any diffusers AutoencoderKL folder (scale and shift from its ``scaling_factor`` and ``shift_factor``),
- a Hugging Face hub id, ``org/name`` or ``org/name/subfolder`` (from the local cache when offline),
- an LDM / MAR checkpoint file (``kl16.ckpt``, ``.ckpt``, ``.pt``, ``.pth``, ``.safetensors``).
"""

import hashlib
import json
import re
from pathlib import Path

import torch

from .discrete import DiscreteTokenizer
from .kl import TOKENIZER_FILE, KLTokenizer
from .ldm import load_ldm_autoencoder

Tokenizer = KLTokenizer | DiscreteTokenizer
CHECKPOINT_SUFFIXES = {".ckpt", ".pt", ".pth", ".safetensors"}
HUB_ID = re.compile(r"[\w.-]+/[\w.-]+(/[\w.-]+)?")


class TokenizerNotFound(FileNotFoundError):
    pass


def tokenizer_from_identity(identity: dict) -> Tokenizer:
    """An untrained tokenizer of the architecture ``identity`` describes (weights are loaded separately)."""
    if identity["kind"] == "kl":
        return KLTokenizer.from_identity(identity)
    return DiscreteTokenizer.from_identity(identity)


def fingerprint(tokenizer: Tokenizer) -> str:
    """SHA-256 of the identity and every weight and buffer: equal exactly when the latents would be."""
    digest = hashlib.sha256(json.dumps(tokenizer.identity(), sort_keys=True).encode())
    for name, tensor in sorted(tokenizer.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().cpu().contiguous().view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def _from_folder(directory: Path) -> Tokenizer:
    try:
        return _read_folder(directory)
    except TokenizerNotFound:
        raise
    except Exception as error:  # a damaged or edited file: JSON, config, weights (diffusers and torch raise many types)
        raise TokenizerNotFound(
            f"tokenizer folder {directory} is damaged or was edited ({type(error).__name__}: "
            f"{' '.join(str(error).split())[:200]}); train it again (mar train-tokenizer) or pass another --tokenizer"
        ) from None


def _read_folder(directory: Path) -> Tokenizer:
    marker = (
        json.loads((directory / TOKENIZER_FILE).read_text())
        if (directory / TOKENIZER_FILE).exists()
        else {"kind": "kl"}
    )
    if marker["kind"] in ("vq", "fsq"):
        return DiscreteTokenizer.load(directory, marker)
    if not (directory / "config.json").exists():
        raise TokenizerNotFound(
            f"tokenizer folder {directory} has no config.json; pass a folder written by train.py or "
            "mar train-tokenizer, or a diffusers AutoencoderKL folder"
        )
    from diffusers import AutoencoderKL  # imported here: see docs/architecture.md#imports

    tokenizer = KLTokenizer.from_autoencoder(AutoencoderKL.from_pretrained(directory, low_cpu_mem_usage=False))
    if "scale" in marker:
        tokenizer.scale, tokenizer.shift = marker["scale"], marker["shift"]
    return tokenizer


def _from_hub(hub_id: str) -> KLTokenizer:
    parts = hub_id.split("/")
    repo, subfolder = "/".join(parts[:2]), (parts[2] if len(parts) == 3 else None)
    from diffusers import AutoencoderKL  # imported here: see docs/architecture.md#imports

    try:
        autoencoder = AutoencoderKL.from_pretrained(repo, subfolder=subfolder, low_cpu_mem_usage=False)
    except (OSError, ValueError) as error:
        raise TokenizerNotFound(
            f"tokenizer {hub_id} is neither a local folder nor a hub id in the local Hugging Face cache, and it cannot be "
            f"downloaded here ({type(error).__name__}); "
            f"on a machine with network run `huggingface-cli download {repo} --local-dir DIR` and pass the folder "
            f"(DIR{'/' + subfolder if subfolder else ''}) instead"
        ) from error
    return KLTokenizer.from_autoencoder(autoencoder)


def load_tokenizer(source: str | Path) -> Tokenizer:
    """The tokenizer at ``source`` in eval mode with gradients off; ``TokenizerNotFound`` names what was wrong."""
    path = Path(source)
    if path.is_dir():
        tokenizer = _from_folder(path)
    elif path.is_file() and path.suffix in CHECKPOINT_SUFFIXES:
        try:
            autoencoder, known_scale = load_ldm_autoencoder(path)
        except ValueError:
            raise
        except Exception as error:  # safetensors and torch raise their own types for truncated files
            raise ValueError(
                f"{path} could not be read as a tokenizer checkpoint ({type(error).__name__}); it may be "
                "truncated: download it again, or pass MAR's kl16.ckpt or an LDM autoencoder file"
            ) from None
        tokenizer = KLTokenizer(autoencoder, scale=known_scale or 1.0)
    elif path.exists():
        raise TokenizerNotFound(
            f"tokenizer {path} is a file of an unknown kind; pass a folder, a hub id, or an LDM "
            f"checkpoint ending in {', '.join(sorted(CHECKPOINT_SUFFIXES))}"
        )
    elif HUB_ID.fullmatch(str(source)) and not str(source).startswith("."):
        tokenizer = _from_hub(str(source))
    else:
        raise TokenizerNotFound(
            f"tokenizer {source} does not exist; pass a tokenizer folder (e.g. runs/default/tokenizer), "
            "a hub id such as stabilityai/sd-vae-ft-ema, or an LDM checkpoint such as kl16.ckpt"
        )
    return tokenizer.eval().requires_grad_(False)
