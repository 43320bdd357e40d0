"""Checkpoints of the official MAR code (github.com/LTH14/mar) as this project's generator.

An official ``checkpoint-last.pth`` is a pickled dict: ``model`` and ``model_ema`` (full state dicts under the same
names), often ``optimizer``, ``epoch`` and ``scaler``, and ``args``, the training script's ``argparse.Namespace``.
``read_official`` unpickles it with ``torch.load(weights_only=True)`` and ``argparse.Namespace`` as the one class
allowed beyond tensors and plain values: a file that names any other class or function is refused before anything in
it is built or run.

The config (``official_config``) comes from ``args`` where it speaks (the size ``args.model`` names gives widths,
depths and heads), from the caller's ``num_heads`` where it does not, and from the tensors' shapes and the tokenizer
for the rest; every value the tensors determine is checked against them. Names map one to one (``our_name``), except
that the official class table and its ``fake_latent`` (the class of unconditional generation) become one table whose
last row is our null class. A converted model carries ``compat="official"``: it samples and trains with the official
code's conventions unless told otherwise (mar/configs.py).
"""

import argparse
import math
import pickle
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from diffloss import DiffLossConfig
from mar.model.config import MARConfig
from mar.model.generator import MARGenerator

# The official sizes by name: (width, encoder and decoder depth, attention heads), as models/mar.py builds them.
OFFICIAL_SIZES = {"mar_base": (768, 12, 12), "mar_large": (1024, 16, 16), "mar_huge": (1280, 20, 16)}
# Training settings a checkpoint without args cannot tell: those of every training command in the official README.
TRAINING_DEFAULTS = {
    "mask_ratio_min": 0.7,
    "label_drop_prob": 0.1,
    "attn_dropout": 0.1,
    "proj_dropout": 0.1,
    "diffusion_batch_mul": 4,
    "num_sampling_steps": "100",
}
ARCHITECTURE = (
    "encoder_embed_dim",
    "decoder_embed_dim",
    "encoder_depth",
    "decoder_depth",
    "encoder_num_heads",
    "decoder_num_heads",
    "buffer_size",
    "class_num",
    "img_size",
    "vae_stride",
    "patch_size",
    "vae_embed_dim",
    "diffloss_d",
    "diffloss_w",
)

NULL_CLASS = "fake_latent"
CLASS_TABLE = "class_emb.weight"
RULES = (  # official name (full match) -> ours
    (r"z_proj\.(weight|bias)", r"backbone.token_proj.\1"),
    (r"z_proj_ln\.(weight|bias)", r"backbone.token_proj_norm.\1"),
    (r"encoder_pos_embed_learned", "backbone.encoder_pos"),
    (r"decoder_pos_embed_learned", "backbone.decoder_pos"),
    (r"diffusion_pos_embed_learned", "backbone.head_pos"),
    (
        r"((?:encoder|decoder)_blocks\.\d+\..+|(?:encoder_norm|decoder_norm|decoder_embed)\.(?:weight|bias)|mask_token)",
        r"backbone.\1",
    ),
    (r"diffloss\.net\.res_blocks\.(\d+)\.in_ln\.(weight|bias)", r"head.net.blocks.\1.norm.\2"),
    (r"diffloss\.net\.res_blocks\.(\d+)\.adaLN_modulation\.1\.(weight|bias)", r"head.net.blocks.\1.modulation.1.\2"),
    (r"diffloss\.net\.res_blocks\.(\d+)\.mlp\.([02]\.(?:weight|bias))", r"head.net.blocks.\1.mlp.\2"),
    (r"diffloss\.net\.final_layer\.linear\.(weight|bias)", r"head.net.final.linear.\1"),
    (r"diffloss\.net\.final_layer\.adaLN_modulation\.1\.(weight|bias)", r"head.net.final.modulation.1.\1"),
    (r"diffloss\.net\.((?:time_embed\.mlp\.[02]|cond_embed|input_proj)\.(?:weight|bias))", r"head.net.\1"),
)


class OfficialCheckpointError(ValueError):
    """An official checkpoint that cannot be read or converted; the message is one line naming the fix."""


@dataclass
class Converted:
    model: MARGenerator
    image_size: int
    epoch: int | None


def read_official(path: str | Path) -> dict:
    """The checkpoint's dict; only tensors, plain values and argparse.Namespace are unpickled."""
    path = Path(path)
    if not path.is_file():
        raise OfficialCheckpointError(
            f"official checkpoint {path} does not exist; pass the checkpoint-last.pth of an official MAR run or release"
        )
    try:
        with torch.serialization.safe_globals([argparse.Namespace]):
            saved = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        found = re.search(r"GLOBAL ([\w.]+)", str(error))
        raise OfficialCheckpointError(
            f"official checkpoint {path} was refused unread: it pickles {found[1] if found else 'an object'}, and only "
            "tensors, plain values and argparse.Namespace are loaded from such files; re-save its model and model_ema "
            "state dicts alone with torch.save on a machine that trusts it"
        ) from None
    except Exception as error:  # truncated zip (RuntimeError), not a pickle at all (EOFError ...)
        raise OfficialCheckpointError(
            f"official checkpoint {path} could not be read ({type(error).__name__}); it may "
            "be truncated: download it again"
        ) from None
    if not isinstance(saved, dict) or not isinstance(saved.get("model"), dict):
        raise OfficialCheckpointError(
            f"{path} is not an official MAR checkpoint: it holds no 'model' state dict; "
            "pass a checkpoint-last.pth written by the official main_mar.py"
        )
    return saved


def our_name(name: str) -> str:
    """This project's name of an official tensor (the class table and fake_latent are merged by convert_state_dict)."""
    for pattern, replacement in RULES:
        if re.fullmatch(pattern, name):
            return re.sub(pattern, replacement, name)
    raise OfficialCheckpointError(
        f"official tensor {name!r} has no counterpart here; the checkpoint is not from "
        "the official MAR code, or from a modified version of it"
    )


def convert_state_dict(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Official names -> ours; the null class (``fake_latent``, (1, d)) becomes the class table's last row."""
    if CLASS_TABLE not in tensors or NULL_CLASS not in tensors:
        raise OfficialCheckpointError(
            f"the state dict has no {CLASS_TABLE} or {NULL_CLASS}; it is not an official MAR model"
        )
    converted = {"backbone.class_embed.weight": torch.cat([tensors[CLASS_TABLE], tensors[NULL_CLASS].reshape(1, -1)])}
    for name, tensor in tensors.items():
        if name in (CLASS_TABLE, NULL_CLASS):
            continue
        target = our_name(name)
        if target in converted:
            raise OfficialCheckpointError(f"official tensors map twice onto {target}; the state dict is malformed")
        converted[target] = tensor
    return converted


def _count(tensors: dict, prefix: str) -> int:
    return len({m[1] for name in tensors if (m := re.match(re.escape(prefix) + r"\.(\d+)\.", name))})


def shape_settings(tensors: dict[str, torch.Tensor]) -> dict:
    """The architecture values the tensors determine, under the official argument names."""
    try:
        seq_len = tensors["diffusion_pos_embed_learned"].shape[1]
        return {
            "encoder_embed_dim": tensors["encoder_pos_embed_learned"].shape[-1],
            "decoder_embed_dim": tensors["decoder_pos_embed_learned"].shape[-1],
            "encoder_depth": _count(tensors, "encoder_blocks"),
            "decoder_depth": _count(tensors, "decoder_blocks"),
            "class_num": tensors[CLASS_TABLE].shape[0],
            "buffer_size": tensors["encoder_pos_embed_learned"].shape[1] - seq_len,
            "diffloss_w": tensors["diffloss.net.input_proj.weight"].shape[0],
            "diffloss_d": _count(tensors, "diffloss.net.res_blocks"),
            "seq_len": seq_len,
            "token_dim": tensors["z_proj.weight"].shape[1],
        }
    except (KeyError, IndexError) as error:
        raise OfficialCheckpointError(
            f"the state dict lacks or misshapes {error}; it is not an official MAR model"
        ) from None


def official_config(
    args: dict | None,
    tensors: dict[str, torch.Tensor],
    tokenizer_channels: int,
    tokenizer_stride: int,
    num_heads: int | None = None,
) -> MARConfig:
    """Our config of an official model: ``args`` (the checkpoint's Namespace as a dict, or None) first, then
    ``num_heads``, then what the tensors' shapes and the tokenizer (channels, stride) determine."""
    args = dict(args or {})
    for key in ARCHITECTURE:
        if key in args and (not isinstance(args[key], int) or args[key] < 1):
            raise OfficialCheckpointError(
                f"the checkpoint's args give {key}={args[key]!r}, not a positive integer; "
                "convert a checkpoint of the official code"
            )
    shapes = shape_settings(tensors)
    width, depths = shapes["encoder_embed_dim"], (shapes["encoder_depth"], shapes["decoder_depth"])
    named = OFFICIAL_SIZES.get(str(args.get("model"))) or next(
        (size for size in OFFICIAL_SIZES.values() if (size[0], size[1], size[1]) == (width, *depths)), None
    )
    settings = TRAINING_DEFAULTS | {k: v for k, v in shapes.items() if k in ARCHITECTURE}
    settings |= {"vae_embed_dim": tokenizer_channels, "vae_stride": tokenizer_stride}
    if named is not None:
        settings |= {
            "encoder_embed_dim": named[0],
            "decoder_embed_dim": named[0],
            "encoder_depth": named[1],
            "decoder_depth": named[1],
            "encoder_num_heads": named[2],
            "decoder_num_heads": named[2],
        }
    settings |= {k: v for k, v in args.items() if k in ARCHITECTURE or k in TRAINING_DEFAULTS}
    if num_heads is not None:
        for key in ("encoder_num_heads", "decoder_num_heads"):
            if key in settings and settings[key] != num_heads and (key in args or "model" in args):
                raise OfficialCheckpointError(
                    f"--num-heads {num_heads} contradicts the checkpoint's args "
                    f"({key}={settings[key]}); drop --num-heads"
                )
            settings[key] = num_heads
    if "encoder_num_heads" not in settings:
        raise OfficialCheckpointError(
            f"the attention head count of this {width}-wide model is unknown (no args, and no official size is "
            f"{width} wide with depths {depths[0]}/{depths[1]}); pass --num-heads"
        )
    for what in ("embed_dim", "num_heads"):
        encoder, decoder = settings[f"encoder_{what}"], settings[f"decoder_{what}"]
        if encoder != decoder:
            raise OfficialCheckpointError(
                f"the encoder's {what} ({encoder}) differs from the decoder's ({decoder}); this backbone has one width "
                "and one head count for both, so the checkpoint cannot be converted"
            )
    for key in shapes.keys() & ARCHITECTURE:
        if settings[key] != shapes[key]:
            raise OfficialCheckpointError(
                f"the checkpoint's args give {key}={settings[key]} but its tensors have {shapes[key]}; the args do not "
                "describe these weights: re-save the model and model_ema without args and convert with --num-heads"
            )
    if (settings["vae_embed_dim"], settings["vae_stride"]) != (tokenizer_channels, tokenizer_stride):
        raise OfficialCheckpointError(
            f"the model was trained on latents of {settings['vae_embed_dim']} channels at stride {settings['vae_stride']}, "
            f"the tokenizer gives {tokenizer_channels} at stride {tokenizer_stride}; pass the tokenizer it was trained "
            "with (kl16.ckpt for the released models)"
        )
    patch = settings.get("patch_size") or max(1, math.isqrt(shapes["token_dim"] // tokenizer_channels))
    grid = (
        settings["img_size"] // tokenizer_stride // patch if "img_size" in settings else math.isqrt(shapes["seq_len"])
    )
    if tokenizer_channels * patch**2 != shapes["token_dim"] or grid**2 != shapes["seq_len"]:
        raise OfficialCheckpointError(
            f"the tensors hold {shapes['seq_len']} tokens of {shapes['token_dim']} values, which no patch size and image "
            f"size give from {tokenizer_channels} latent channels at stride {tokenizer_stride}; check the tokenizer and args"
        )
    steps = str(settings["num_sampling_steps"])
    if not steps.isdigit():
        raise OfficialCheckpointError(
            f"num_sampling_steps {steps!r} in the args is not a step count; only evenly "
            "respaced chains (e.g. '100') are supported"
        )
    try:
        return MARConfig(
            width=settings["encoder_embed_dim"],
            encoder_depth=settings["encoder_depth"],
            decoder_depth=settings["decoder_depth"],
            num_heads=settings["encoder_num_heads"],
            attn_dropout=settings["attn_dropout"],
            proj_dropout=settings["proj_dropout"],
            buffer_size=settings["buffer_size"],
            label_drop_prob=settings["label_drop_prob"],
            mask_ratio_min=settings["mask_ratio_min"],
            num_classes=settings["class_num"],
            latent_channels=tokenizer_channels,
            latent_size=grid * patch,
            patch_size=patch,
            head=DiffLossConfig(
                width=settings["diffloss_w"],
                depth=settings["diffloss_d"],
                diffusion_batch_mul=settings["diffusion_batch_mul"],
                num_sampling_steps=int(steps),
            ),
            compat="official",
        )
    except (TypeError, ValueError) as error:
        raise OfficialCheckpointError(f"the checkpoint's settings make no valid model: {error}") from None


def load_official(
    path: str | Path, tokenizer_channels: int, tokenizer_stride: int, use_ema: bool = True, num_heads: int | None = None
) -> Converted:
    """The generator of an official checkpoint, its EMA weights by default; every tensor lands, none is left over."""
    saved = read_official(path)
    key = "model_ema" if use_ema else "model"
    tensors = saved.get(key)
    if not isinstance(tensors, dict):
        raise OfficialCheckpointError(
            f"official checkpoint {path} has no {key} state dict; "
            + ("pass --no-ema to convert the trained weights" if use_ema else "it is damaged")
        )
    args = saved.get("args")
    config = official_config(
        vars(args) if isinstance(args, argparse.Namespace) else None,
        tensors,
        tokenizer_channels,
        tokenizer_stride,
        num_heads,
    )
    model = MARGenerator(config)
    converted, expected = convert_state_dict(tensors), model.state_dict()
    missing, extra = sorted(expected.keys() - converted.keys()), sorted(converted.keys() - expected.keys())
    if missing or extra:
        raise OfficialCheckpointError(
            f"official checkpoint {path} does not fill the model: missing {missing[:4]}, "
            f"left over {extra[:4]}; it is not from the official MAR code"
        )
    for name, tensor in converted.items():
        if tensor.shape != expected[name].shape:
            raise OfficialCheckpointError(
                f"official tensor for {name} has shape {tuple(tensor.shape)}, the model "
                f"needs {tuple(expected[name].shape)}; check the args or --num-heads"
            )
    model.load_state_dict(converted)
    epoch = saved.get("epoch")
    return Converted(model.eval(), config.latent_size * tokenizer_stride, epoch if isinstance(epoch, int) else None)


def read_class_names(path: str | Path | None, count: int) -> list[str]:
    """One name per line (``count`` of them), or the class ids as text when there is no file."""
    if path is None:
        return [str(k) for k in range(count)]
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines()]
    except (OSError, UnicodeDecodeError) as error:
        raise OfficialCheckpointError(
            f"class names file {path} cannot be read ({type(error).__name__}); pass a UTF-8 "
            "text file with one name per line"
        ) from None
    while names and not names[-1]:
        names.pop()
    if len(names) != count or not all(names):
        raise OfficialCheckpointError(
            f"class names file {path} has {len(names)} lines{' with blanks' if not all(names) else ''}; "
            f"the model has {count} classes: give one non-empty name per line, in class-id order"
        )
    return names
