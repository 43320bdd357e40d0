"""The original LDM / MAR autoencoder checkpoint layout (e.g. MAR's ``kl16.ckpt``), converted into diffusers' AutoencoderKL.

The architecture is read from the tensors themselves (base width, levels, blocks per level, which levels attend,
latent channels), then every LDM key is renamed to its diffusers twin. Attention projections, 1x1 convolutions in
LDM, become linear layers.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import torch
from safetensors.torch import load_file

if TYPE_CHECKING:
    from diffusers import AutoencoderKL


@dataclass(frozen=True)
class LDMLayout:
    block_out_channels: tuple[int, ...]
    layers_per_block: int
    latent_channels: int
    encoder_attention: tuple[bool, ...]  # per level, attention after each resnet block
    decoder_attention: tuple[bool, ...]  # per level, counted from the finest resolution like the encoder's
    mid_attention: bool

    def autoencoder_config(self) -> dict:
        return dict(
            down_block_types=tuple(
                "AttnDownEncoderBlock2D" if a else "DownEncoderBlock2D" for a in self.encoder_attention
            ),
            up_block_types=tuple(
                "AttnUpDecoderBlock2D" if a else "UpDecoderBlock2D" for a in reversed(self.decoder_attention)
            ),
            block_out_channels=self.block_out_channels,
            layers_per_block=self.layers_per_block,
            latent_channels=self.latent_channels,
            norm_num_groups=32,
            mid_block_add_attention=self.mid_attention,
        )


# MAR's KL-16 tokenizer: 16 channels at stride 16, attention in the encoder's coarsest level, none in the decoder's
# levels. The latent scale is the one MAR trains with (the std of its ImageNet latents is about 1 / 0.2325).
KL16 = LDMLayout((128, 128, 256, 256, 512), 2, 16, (False,) * 4 + (True,), (False,) * 5, True)
KNOWN_SCALES = {KL16: 0.2325}

ATTENTION_NAMES = {"norm": "group_norm", "q": "to_q", "k": "to_k", "v": "to_v", "proj_out": "to_out.0"}
IGNORED_PREFIXES = ("loss.",)  # the LPIPS and discriminator of the training loss, not part of the autoencoder
WRAPPER_PREFIXES = ("first_stage_model.", "vae.")


def read_state_dict(path: str | Path) -> dict[str, torch.Tensor]:
    """Tensors of an LDM-layout checkpoint, unwrapped from {"model": ...} / {"state_dict": ...} and prefixes."""
    path = Path(path)
    if path.suffix == ".safetensors":
        tensors = load_file(path)
    else:
        try:
            tensors = torch.load(path, map_location="cpu", weights_only=True)
        except Exception as error:  # pickles with arbitrary objects, truncated files
            raise ValueError(
                f"{path} could not be read as a tensor checkpoint ({type(error).__name__}); "
                "pass MAR's kl16.ckpt or an LDM autoencoder .ckpt/.safetensors"
            ) from error
    for wrapper in ("model", "state_dict"):
        if isinstance(tensors, dict) and isinstance(tensors.get(wrapper), dict):
            tensors = tensors[wrapper]
    if not isinstance(tensors, dict) or not any(isinstance(t, torch.Tensor) for t in tensors.values()):
        raise ValueError(
            f"tokenizer {path} holds no dictionary of tensors (found {type(tensors).__name__}); "
            "pass MAR's kl16.ckpt or an LDM autoencoder .ckpt/.safetensors"
        )
    tensors = {k: v for k, v in tensors.items() if isinstance(v, torch.Tensor)}
    for prefix in WRAPPER_PREFIXES:
        if any(k.startswith(prefix) for k in tensors):
            tensors = {k[len(prefix) :]: v for k, v in tensors.items() if k.startswith(prefix)}
    return {k: v for k, v in tensors.items() if not k.startswith(IGNORED_PREFIXES)}


def infer_layout(tensors: dict[str, torch.Tensor]) -> LDMLayout:
    def count(pattern: str) -> int:
        return len({m.group(1) for k in tensors if (m := re.match(pattern, k))})

    levels = count(r"encoder\.down\.(\d+)\.")
    if levels == 0 or "post_quant_conv.weight" not in tensors:
        raise ValueError("not an LDM autoencoder layout (no encoder.down.* or post_quant_conv tensors)")
    return LDMLayout(
        block_out_channels=tuple(tensors[f"encoder.down.{i}.block.0.conv2.weight"].shape[0] for i in range(levels)),
        layers_per_block=count(r"encoder\.down\.0\.block\.(\d+)\."),
        latent_channels=tensors["post_quant_conv.weight"].shape[0],
        encoder_attention=tuple(f"encoder.down.{i}.attn.0.q.weight" in tensors for i in range(levels)),
        decoder_attention=tuple(f"decoder.up.{i}.attn.0.q.weight" in tensors for i in range(levels)),
        mid_attention="encoder.mid.attn_1.q.weight" in tensors,
    )


def _resnet(name: str) -> str:
    return name.replace("nin_shortcut", "conv_shortcut")


def diffusers_name(name: str, levels: int) -> str:
    """The diffusers AutoencoderKL key of an LDM key (``levels`` = number of resolution levels)."""
    rules = [
        (r"(encoder|decoder)\.norm_out\.(.*)", lambda m: f"{m[1]}.conv_norm_out.{m[2]}"),
        (
            r"(encoder|decoder)\.mid\.block_(\d)\.(.*)",
            lambda m: f"{m[1]}.mid_block.resnets.{int(m[2]) - 1}.{_resnet(m[3])}",
        ),
        (
            r"(encoder|decoder)\.mid\.attn_1\.(\w+)\.(.*)",
            lambda m: f"{m[1]}.mid_block.attentions.0.{ATTENTION_NAMES[m[2]]}.{m[3]}",
        ),
        (
            r"encoder\.down\.(\d+)\.block\.(\d+)\.(.*)",
            lambda m: f"encoder.down_blocks.{m[1]}.resnets.{m[2]}.{_resnet(m[3])}",
        ),
        (
            r"encoder\.down\.(\d+)\.attn\.(\d+)\.(\w+)\.(.*)",
            lambda m: f"encoder.down_blocks.{m[1]}.attentions.{m[2]}.{ATTENTION_NAMES[m[3]]}.{m[4]}",
        ),
        (
            r"encoder\.down\.(\d+)\.downsample\.conv\.(.*)",
            lambda m: f"encoder.down_blocks.{m[1]}.downsamplers.0.conv.{m[2]}",
        ),
        (
            r"decoder\.up\.(\d+)\.block\.(\d+)\.(.*)",
            lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.resnets.{m[2]}.{_resnet(m[3])}",
        ),
        (
            r"decoder\.up\.(\d+)\.attn\.(\d+)\.(\w+)\.(.*)",
            lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.attentions.{m[2]}.{ATTENTION_NAMES[m[3]]}.{m[4]}",
        ),
        (
            r"decoder\.up\.(\d+)\.upsample\.conv\.(.*)",
            lambda m: f"decoder.up_blocks.{levels - 1 - int(m[1])}.upsamplers.0.conv.{m[2]}",
        ),
        (r"((?:encoder|decoder)\.conv_(?:in|out)|quant_conv|post_quant_conv)\.(.*)", lambda m: f"{m[1]}.{m[2]}"),
    ]
    for pattern, rename in rules:
        if match := re.fullmatch(pattern, name):
            return rename(match)
    raise KeyError(f"LDM key {name!r} has no diffusers counterpart")


def convert_state_dict(tensors: dict[str, torch.Tensor], levels: int) -> dict[str, torch.Tensor]:
    converted = {}
    for name, tensor in tensors.items():
        target = diffusers_name(name, levels)
        if ".attentions." in target and tensor.ndim == 4:  # 1x1 convolution -> linear
            tensor = tensor[:, :, 0, 0]
        converted[target] = tensor
    return converted


def load_ldm_autoencoder(path: str | Path) -> tuple[AutoencoderKL, float | None]:
    """(AutoencoderKL with every tensor of the checkpoint, the known latent scale of its layout or None)."""
    tensors = read_state_dict(path)
    try:
        layout = infer_layout(tensors)
    except ValueError as error:
        raise ValueError(
            f"tokenizer {path} is {error}; pass MAR's kl16.ckpt, an LDM autoencoder checkpoint, or a tokenizer folder"
        ) from None
    from diffusers import AutoencoderKL  # imported here: see docs/architecture.md#imports

    autoencoder = AutoencoderKL(**layout.autoencoder_config())
    converted = convert_state_dict(tensors, len(layout.block_out_channels))
    result = autoencoder.load_state_dict(converted, strict=False)
    if result.missing_keys or result.unexpected_keys:
        raise ValueError(
            f"{path}: conversion left tensors unmatched (missing {result.missing_keys[:5]}, "
            f"unexpected {result.unexpected_keys[:5]}); the checkpoint is not a complete LDM autoencoder"
        )
    return autoencoder.eval(), KNOWN_SCALES.get(layout)
