"""Official MAR checkpoints convert exactly, foreign pickles are refused unrun, and --compat official samples and
trains with the official code's three conventions (respacing, last-step guidance, discretised loss at t = 0).

The official layout is written here from the official naming rules, not from the converter's table.
"""

import argparse
import math
from functools import partial

import pytest
import torch
from timm.models.vision_transformer import Block
from torch import nn
from torch.nn import functional as F

from diffloss import DiffLoss, DiffLossConfig
from diffloss.diffusion import GaussianDiffusion, discretized_gaussian_nll
from mar import MARConfig, MARGenerator, named_config, sample_latents
from mar.cli import convert_official, sample, train
from mar.cli.options import untyped_options
from mar.interop.official import (
    OfficialCheckpointError,
    convert_state_dict,
    load_official,
    official_config,
    read_official,
)
from mar.model.masking import cfg_at, unmasked_fraction, unmasking_schedule
from mar.train.checkpoint import load_checkpoint
from vae import KLTokenizer, small_autoencoder

from .toy import TOY

# A small official-layout model: 32 wide, 4 heads, 2 encoder and 1 decoder blocks, 4 buffer tokens, 3 classes; a
# tokenizer of 4 channels at stride 4 on 16-pixel images gives a 4x4 latent, patches of 2 give 4 tokens of 16 values.
SIZES = dict(
    width=32,
    heads=4,
    encoder_depth=2,
    decoder_depth=1,
    buffer=4,
    classes=3,
    tokens=4,
    token_dim=16,
    head_width=24,
    head_depth=2,
)
ARGS = dict(
    model="mar_small",
    img_size=16,
    vae_stride=4,
    patch_size=2,
    vae_embed_dim=4,
    encoder_embed_dim=32,
    decoder_embed_dim=32,
    encoder_depth=2,
    decoder_depth=1,
    encoder_num_heads=4,
    decoder_num_heads=4,
    buffer_size=4,
    class_num=3,
    diffloss_d=2,
    diffloss_w=24,
    mask_ratio_min=0.7,
    label_drop_prob=0.1,
    attn_dropout=0.1,
    proj_dropout=0.1,
    diffusion_batch_mul=4,
    num_sampling_steps="100",
    lr=1e-4,
    seed=1,
)


def official_shapes(
    width, heads, encoder_depth, decoder_depth, buffer, classes, tokens, token_dim, head_width, head_depth
) -> dict[str, tuple]:
    """Names and shapes of models/mar.py and models/diffloss.py (timm's Block inside the transformer stacks)."""
    d, w, positions = width, head_width, buffer + tokens
    shapes = {
        "class_emb.weight": (classes, d),
        "fake_latent": (1, d),
        "z_proj.weight": (d, token_dim),
        "z_proj.bias": (d,),
        "z_proj_ln.weight": (d,),
        "z_proj_ln.bias": (d,),
        "encoder_pos_embed_learned": (1, positions, d),
        "encoder_norm.weight": (d,),
        "encoder_norm.bias": (d,),
        "decoder_embed.weight": (d, d),
        "decoder_embed.bias": (d,),
        "mask_token": (1, 1, d),
        "decoder_pos_embed_learned": (1, positions, d),
        "decoder_norm.weight": (d,),
        "decoder_norm.bias": (d,),
        "diffusion_pos_embed_learned": (1, tokens, d),
    }
    block = {
        "norm1.weight": (d,),
        "norm1.bias": (d,),
        "attn.qkv.weight": (3 * d, d),
        "attn.qkv.bias": (3 * d,),
        "attn.proj.weight": (d, d),
        "attn.proj.bias": (d,),
        "norm2.weight": (d,),
        "norm2.bias": (d,),
        "mlp.fc1.weight": (4 * d, d),
        "mlp.fc1.bias": (4 * d,),
        "mlp.fc2.weight": (d, 4 * d),
        "mlp.fc2.bias": (d,),
    }
    for stack, depth in (("encoder_blocks", encoder_depth), ("decoder_blocks", decoder_depth)):
        shapes |= {f"{stack}.{i}.{name}": shape for i in range(depth) for name, shape in block.items()}
    net = "diffloss.net"
    shapes |= {
        f"{net}.time_embed.mlp.0.weight": (w, 256),
        f"{net}.time_embed.mlp.0.bias": (w,),
        f"{net}.time_embed.mlp.2.weight": (w, w),
        f"{net}.time_embed.mlp.2.bias": (w,),
        f"{net}.cond_embed.weight": (w, d),
        f"{net}.cond_embed.bias": (w,),
        f"{net}.input_proj.weight": (w, token_dim),
        f"{net}.input_proj.bias": (w,),
        f"{net}.final_layer.linear.weight": (2 * token_dim, w),
        f"{net}.final_layer.linear.bias": (2 * token_dim,),
        f"{net}.final_layer.adaLN_modulation.1.weight": (2 * w, w),
        f"{net}.final_layer.adaLN_modulation.1.bias": (2 * w,),
    }
    res_block = {
        "in_ln.weight": (w,),
        "in_ln.bias": (w,),
        "mlp.0.weight": (w, w),
        "mlp.0.bias": (w,),
        "mlp.2.weight": (w, w),
        "mlp.2.bias": (w,),
        "adaLN_modulation.1.weight": (3 * w, w),
        "adaLN_modulation.1.bias": (3 * w,),
    }
    return shapes | {
        f"{net}.res_blocks.{i}.{name}": shape for i in range(head_depth) for name, shape in res_block.items()
    }


def official_state_dict(seed: int, device="cpu", **sizes) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    shapes = official_shapes(**(SIZES | sizes))
    if device == "meta":
        return {name: torch.empty(shape, device="meta") for name, shape in shapes.items()}
    return {name: 0.2 * torch.randn(shape, generator=generator) for name, shape in shapes.items()}


# The renaming, applied as plain string replacements (independent of the converter's regular expressions).
PREFIXES = [
    ("z_proj_ln.", "backbone.token_proj_norm."),
    ("z_proj.", "backbone.token_proj."),
    ("encoder_pos_embed_learned", "backbone.encoder_pos"),
    ("decoder_pos_embed_learned", "backbone.decoder_pos"),
    ("diffusion_pos_embed_learned", "backbone.head_pos"),
    ("diffloss.net.", "head.net."),
]
INNER = [
    (".res_blocks.", ".blocks."),
    (".in_ln.", ".norm."),
    (".adaLN_modulation.", ".modulation."),
    (".final_layer.", ".final."),
]


def expected_name(name: str) -> str:
    for old, new in PREFIXES:
        if name.startswith(old):
            name = new + name[len(old) :]
            break
    else:
        name = "backbone." + name
    for old, new in INNER:
        name = name.replace(old, new)
    return name


def write_official(path, args: dict | None = ARGS, seed: int = 0) -> tuple[dict, dict]:
    model = official_state_dict(seed)
    ema = {
        name: t + 0.01 * torch.randn(t.shape, generator=torch.Generator().manual_seed(seed + 1))
        for name, t in model.items()
    }
    saved = {
        "model": model,
        "model_ema": ema,
        "optimizer": {"state": {}, "param_groups": [{"lr": 1e-4, "params": [0, 1]}]},
        "epoch": 399,
        "scaler": {"scale": 65536.0, "growth_factor": 2.0},
    }
    if args is not None:
        saved["args"] = argparse.Namespace(**args)
    torch.save(saved, path)
    return model, ema


@pytest.fixture(scope="module")
def tokenizer_folder(tmp_path_factory):
    torch.manual_seed(0)
    folder = tmp_path_factory.mktemp("tokenizer")
    KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32), scale=0.5).save(folder)
    return folder


class Marker:
    """A pickle that would create a file when unpickled by a loader that runs what it is told."""

    def __init__(self, path):
        self.path = str(path)

    def __reduce__(self):
        return open, (self.path, "w")


# ---- conversion -----------------------------------------------------------------------------------------------------


def test_every_official_tensor_lands_once_and_the_ema_is_the_default(tmp_path):
    model_sd, ema_sd = write_official(tmp_path / "checkpoint-last.pth")
    converted = load_official(tmp_path / "checkpoint-last.pth", 4, 4)
    ours = converted.model.state_dict()
    assert len(ours) == len(ema_sd) - 1  # the class table and fake_latent become one table; nothing else is merged
    targets = {expected_name(name) for name in ema_sd if name not in ("class_emb.weight", "fake_latent")}
    assert targets | {"backbone.class_embed.weight"} == set(ours)
    for name, tensor in ema_sd.items():
        if name not in ("class_emb.weight", "fake_latent"):
            assert torch.equal(ours[expected_name(name)], tensor), name
    table = ours["backbone.class_embed.weight"]
    assert torch.equal(table[:3], ema_sd["class_emb.weight"]) and torch.equal(table[3], ema_sd["fake_latent"][0])
    assert converted.model.backbone.null_class == 3 and (converted.epoch, converted.image_size) == (399, 16)

    trained = load_official(tmp_path / "checkpoint-last.pth", 4, 4, use_ema=False).model.state_dict()
    assert torch.equal(trained["backbone.class_embed.weight"][3], model_sd["fake_latent"][0])
    assert all(
        torch.equal(trained[expected_name(n)], t)
        for n, t in model_sd.items()
        if n not in ("class_emb.weight", "fake_latent")
    )
    assert not torch.equal(trained["head.net.final.linear.weight"], ours["head.net.final.linear.weight"])


def test_a_tensor_with_no_counterpart_or_a_missing_one_is_refused():
    tensors = official_state_dict(0)
    with pytest.raises(OfficialCheckpointError, match="'diffloss.net.extra.weight' has no counterpart"):
        convert_state_dict(tensors | {"diffloss.net.extra.weight": torch.zeros(1)})
    del tensors["fake_latent"]
    with pytest.raises(OfficialCheckpointError, match="no class_emb.weight or fake_latent"):
        convert_state_dict(tensors)


def test_the_config_comes_from_args_or_from_the_shapes_and_num_heads(tmp_path):
    tensors = official_state_dict(0)
    config = official_config(ARGS, tensors, 4, 4)
    assert (config.width, config.encoder_depth, config.decoder_depth, config.num_heads) == (32, 2, 1, 4)
    assert (config.buffer_size, config.num_classes, config.latent_size, config.patch_size, config.latent_channels) == (
        4,
        3,
        4,
        2,
        4,
    )
    assert (config.head.width, config.head.depth, config.head.num_sampling_steps, config.compat) == (
        24,
        2,
        100,
        "official",
    )
    with pytest.raises(OfficialCheckpointError, match="head count of this 32-wide model is unknown.*pass --num-heads"):
        official_config(None, tensors, 4, 4)
    assert official_config(None, tensors, 4, 4, num_heads=4) == config  # the same model from flags and shapes
    with pytest.raises(OfficialCheckpointError, match="--num-heads 8 contradicts"):
        official_config(ARGS, tensors, 4, 4, num_heads=8)

    large = official_state_dict(
        0,
        "meta",
        width=1024,
        encoder_depth=16,
        decoder_depth=16,
        buffer=64,
        classes=1000,
        tokens=256,
        head_width=1280,
        head_depth=8,
    )
    released = {
        "model": "mar_large",
        "img_size": 256,
        "vae_stride": 16,
        "patch_size": 1,
        "vae_embed_dim": 16,
        "buffer_size": 64,
        "class_num": 1000,
        "diffloss_d": 8,
        "diffloss_w": 1280,
        "num_sampling_steps": "100",
    }
    large_config = official_config(released, large, 16, 16)
    assert large_config == named_config("mar-large", compat="official")  # the released mar_large is our mar-large
    assert official_config(None, large, 16, 16) == large_config  # an official size is recognised by its shapes


def test_encoder_and_decoder_of_different_widths_or_heads_are_refused():
    tensors = official_state_dict(0)
    for field, value in (("decoder_embed_dim", 48), ("decoder_num_heads", 8)):
        with pytest.raises(OfficialCheckpointError, match="differs from the decoder's.*one width and one head count"):
            official_config(ARGS | {field: value}, tensors, 4, 4)
    wider_decoder = tensors | {"decoder_pos_embed_learned": torch.zeros(1, 8, 48)}
    with pytest.raises(OfficialCheckpointError, match=r"embed_dim \(32\) differs from the decoder's \(48\)"):
        official_config(None, wider_decoder, 4, 4, num_heads=4)


def test_args_that_contradict_the_tensors_or_the_tokenizer_are_refused():
    tensors = official_state_dict(0)
    with pytest.raises(OfficialCheckpointError, match="args give buffer_size=8 but its tensors have 4"):
        official_config(ARGS | {"buffer_size": 8}, tensors, 4, 4)
    with pytest.raises(
        OfficialCheckpointError, match="latents of 4 channels at stride 4, the tokenizer gives 16 at stride 16"
    ):
        official_config(ARGS, tensors, 16, 16)
    with pytest.raises(OfficialCheckpointError, match="not a step count"):
        official_config(ARGS | {"num_sampling_steps": "ddim25"}, tensors, 4, 4)


def test_a_pickle_of_anything_else_is_refused_without_running_it(tmp_path, tokenizer_folder, capsys):
    marker = tmp_path / "ran"
    evil = tmp_path / "checkpoint-last.pth"
    torch.save({"model": official_state_dict(0), "args": argparse.Namespace(**ARGS), "extra": Marker(marker)}, evil)
    with pytest.raises(OfficialCheckpointError) as refused:
        read_official(evil)
    message = str(refused.value)
    assert (
        "refused unread" in message
        and "io.open" in message
        and "\n" not in message
        and "weights_only=False" not in message
    )
    assert not marker.exists()

    with pytest.raises(SystemExit) as exit_info:
        convert_official.main(
            ["--checkpoint", str(evil), "--tokenizer", str(tokenizer_folder), "--out", str(tmp_path / "out")]
        )
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and error.count("\n") == 0 and "refused unread" in error
    assert not marker.exists() and not (tmp_path / "out" / "weights.safetensors").exists()


def test_the_script_refuses_bad_input_in_one_line_before_writing(tmp_path, tokenizer_folder, capsys):
    write_official(tmp_path / "checkpoint-last.pth", args=None)
    evil = tmp_path / "evil.pth"
    torch.save({"model": {}, "extra": Marker(tmp_path / "ran")}, evil)
    names = tmp_path / "names.txt"
    names.write_text("cat\ndog\n")
    base = ["--tokenizer", str(tokenizer_folder), "--out", str(tmp_path / "out")]
    cases = [
        (["--checkpoint", str(tmp_path / "missing.pth")], "missing.pth does not exist"),
        (["--checkpoint", str(evil)], "refused unread: it pickles io.open"),
        (["--checkpoint", str(tmp_path / "checkpoint-last.pth")], "pass --num-heads"),
        (
            ["--checkpoint", str(tmp_path / "checkpoint-last.pth"), "--num-heads", "4", "--class-names", str(names)],
            "has 2 lines; the model has 3 classes",
        ),
        (["--checkpoint", str(tmp_path / "checkpoint-last.pth"), "--num-heads", "0"], "give an integer >= 1"),
    ]
    for argv, expected in cases:
        with pytest.raises(SystemExit) as exit_info:
            convert_official.main(argv + base)
        error = capsys.readouterr().err.strip()
        assert exit_info.value.code == 2 and error.startswith("error: ") and "\n" not in error and expected in error, (
            error
        )
    assert not (tmp_path / "out").exists() and not (tmp_path / "ran").exists()
    assert untyped_options(convert_official.build_parser()) == []


def test_the_converted_checkpoint_samples_through_sample_py_with_no_model_flags(tmp_path, tokenizer_folder, capsys):
    write_official(tmp_path / "checkpoint-last.pth")
    names = tmp_path / "names.txt"
    names.write_text("tench\ngoldfish\ngreat white shark\n")
    out = tmp_path / "mar-small"
    convert = [
        "--checkpoint",
        str(tmp_path / "checkpoint-last.pth"),
        "--tokenizer",
        str(tokenizer_folder),
        "--out",
        str(out),
    ]
    convert_official.main(convert + ["--class-names", str(names)])
    assert "EMA weights" in capsys.readouterr().out
    ckpt = load_checkpoint(out)
    assert ckpt.classes == ["tench", "goldfish", "great white shark"] and ckpt.model.config.compat == "official"
    assert ckpt.image_size == 16 and ckpt.ema is None and ckpt.tokenizer.scale == 0.5
    converted = load_official(tmp_path / "checkpoint-last.pth", 4, 4).model.state_dict()
    assert all(torch.equal(tensor, converted[name]) for name, tensor in ckpt.model.state_dict().items())

    sample.main(
        [
            "--checkpoint",
            str(out),
            "--per-class",
            "2",
            "--num-iter",
            "2",
            "--diffusion-steps",
            "3",
            "--cfg",
            "2",
            "--device",
            "cpu",
            "--out",
            str(tmp_path / "grid.png"),
        ]
    )
    assert (tmp_path / "grid.png").stat().st_size > 0

    before = (out / "weights.safetensors").read_bytes()
    with pytest.raises(SystemExit):
        convert_official.main(convert)
    assert (
        "exists; pass --overwrite" in capsys.readouterr().err and (out / "weights.safetensors").read_bytes() == before
    )
    convert_official.main(convert + ["--overwrite", "--no-ema"])
    assert load_checkpoint(out).classes == ["0", "1", "2"]  # ids when no names file is given


# ---- the converted model computes the official function -------------------------------------------------------------


def official_blocks(tensors, stack: str, depth: int) -> nn.Sequential:
    blocks = nn.Sequential(
        *(Block(32, 4, 4.0, qkv_bias=True, norm_layer=partial(nn.LayerNorm, eps=1e-6)) for _ in range(depth))
    )
    blocks.load_state_dict({name[len(stack) + 1 :]: t for name, t in tensors.items() if name.startswith(stack + ".")})
    return blocks.eval()


def official_z(tensors, tokens, class_embedding, mask) -> torch.Tensor:
    """models/mar.py's forward_mae_encoder and forward_mae_decoder, in eval mode, on the official tensors."""
    b, n, d = tokens.shape[0], 4, 32
    x = F.linear(tokens, tensors["z_proj.weight"], tensors["z_proj.bias"])
    x = torch.cat([torch.zeros(b, n, d), x], dim=1)
    x[:, :n] = class_embedding[:, None]
    x = F.layer_norm(
        x + tensors["encoder_pos_embed_learned"], (d,), tensors["z_proj_ln.weight"], tensors["z_proj_ln.bias"], 1e-6
    )
    visible = torch.cat([torch.ones(b, n, dtype=torch.bool), ~mask], dim=1)
    x = official_blocks(tensors, "encoder_blocks", 2)(x[visible].reshape(b, -1, d))
    x = F.layer_norm(x, (d,), tensors["encoder_norm.weight"], tensors["encoder_norm.bias"], 1e-6)
    x = F.linear(x, tensors["decoder_embed.weight"], tensors["decoder_embed.bias"])
    padded = tensors["mask_token"].repeat(b, visible.shape[1], 1)
    padded[visible] = x.reshape(-1, d)
    x = official_blocks(tensors, "decoder_blocks", 1)(padded + tensors["decoder_pos_embed_learned"])
    x = F.layer_norm(x, (d,), tensors["decoder_norm.weight"], tensors["decoder_norm.bias"], 1e-6)
    return x[:, n:] + tensors["diffusion_pos_embed_learned"]


def official_net(tensors, x, t, c) -> torch.Tensor:
    """models/diffloss.py's SimpleMLPAdaLN on the official tensors."""

    def linear(name, value):
        return F.linear(value, tensors[f"diffloss.net.{name}.weight"], tensors[f"diffloss.net.{name}.bias"])

    half = 128
    angles = t[:, None].float() * torch.exp(-math.log(10000) * torch.arange(half, dtype=torch.float32) / half)[None]
    y = linear(
        "time_embed.mlp.2", F.silu(linear("time_embed.mlp.0", torch.cat([torch.cos(angles), torch.sin(angles)], -1)))
    )
    y = y + linear("cond_embed", c)
    h = linear("input_proj", x)
    for i in range(2):
        shift, scale, gate = linear(f"res_blocks.{i}.adaLN_modulation.1", F.silu(y)).chunk(3, dim=-1)
        normed = F.layer_norm(
            h,
            (24,),
            tensors[f"diffloss.net.res_blocks.{i}.in_ln.weight"],
            tensors[f"diffloss.net.res_blocks.{i}.in_ln.bias"],
            1e-6,
        )
        h = h + gate * linear(
            f"res_blocks.{i}.mlp.2", F.silu(linear(f"res_blocks.{i}.mlp.0", normed * (1 + scale) + shift))
        )
    shift, scale = linear("final_layer.adaLN_modulation.1", F.silu(y)).chunk(2, dim=-1)
    return linear("final_layer.linear", F.layer_norm(h, (24,), eps=1e-6) * (1 + scale) + shift)


@torch.no_grad()
def test_the_converted_model_computes_what_the_official_weights_compute(tmp_path):
    _, ema = write_official(tmp_path / "checkpoint-last.pth")
    model = load_official(tmp_path / "checkpoint-last.pth", 4, 4).model
    generator = torch.Generator().manual_seed(0)
    tokens = torch.randn(3, 4, 16, generator=generator)
    mask = torch.tensor([[True, False, True, False], [False, False, True, True], [True, True, False, False]])
    labels = torch.tensor([2, 0, 3])  # 3 is the null class: the official fake_latent
    class_embedding = torch.cat([ema["class_emb.weight"][[2, 0]], ema["fake_latent"]])
    z = model.backbone(tokens, labels, mask)
    reference = official_z(ema, tokens, class_embedding, mask)
    assert torch.allclose(z, reference, atol=1e-5), (z - reference).abs().max()

    x, t = torch.randn(6, 16, generator=generator), torch.tensor([0, 999, 10, 10, 500, 3])
    output = model.head.net(x, t, z[:2].reshape(-1, 32)[:6])
    assert torch.allclose(output, official_net(ema, x, t, z[:2].reshape(-1, 32)[:6]), atol=1e-5)


# ---- --compat official: the three conventions ----------------------------------------------------------------------


def space_timesteps(num_timesteps: int, section_counts: list[int]) -> set[int]:
    """improved-diffusion's respacing rule, re-derived: each of the equal sections (the first ones one step longer
    when the division leaves a remainder) is strided from its start to its end by a fractional stride, rounded."""
    size, extra = divmod(num_timesteps, len(section_counts))
    start, steps = 0, set()
    for i, count in enumerate(section_counts):
        length = size + (1 if i < extra else 0)
        stride = (length - 1) / (count - 1) if count > 1 else 1
        position = 0.0
        for _ in range(count):
            steps.add(start + round(position))
            position += stride
        start += length
    return steps


def test_the_official_respacing_is_space_timesteps():
    diffusion = GaussianDiffusion()
    official = diffusion.sampling_chain(100, spacing="iddpm").timesteps.tolist()
    assert official == sorted(space_timesteps(1000, [100]))
    assert official[:8] == [0, 10, 20, 30, 40, 50, 61, 71] and official[-2:] == [989, 999]
    for count in (
        1,
        2,
        3,
        7,
        21,
        25,
        31,
        50,
        64,
        250,
        999,
        1000,
    ):  # 21 and 31: where np.linspace(0, 999, n).round() differs
        assert diffusion.sampling_chain(count, spacing="iddpm").timesteps.tolist() == sorted(
            space_timesteps(1000, [count])
        ), count
    chain = diffusion.sampling_chain(100, spacing="iddpm")
    assert torch.equal(chain.alphas_cumprod, diffusion.scheduler.alphas_cumprod[chain.timesteps])
    assert diffusion.sampling_chain(100).timesteps.tolist() == list(range(0, 1000, 10))  # ours is unchanged


def tiny_official_model(compat: str):
    config = MARConfig(
        width=32,
        encoder_depth=1,
        decoder_depth=1,
        num_heads=4,
        attn_dropout=0.0,
        proj_dropout=0.0,
        buffer_size=2,
        num_classes=3,
        latent_channels=4,
        latent_size=4,
        patch_size=1,
        head=DiffLossConfig(width=16, depth=1),
        compat=compat,
    )
    torch.manual_seed(0)
    return MARGenerator(config).eval()


def test_compat_official_walks_the_official_chain_and_guides_the_last_step_as_the_official_code(monkeypatch):
    """The timesteps the head's denoiser sees and the guidance scale of each step, recorded in sample_latents."""
    cfg, seq_len, steps = 3.0, 16, 4
    seen = {}
    for compat in ("default", "official"):
        model = tiny_official_model(compat)
        net_calls, scales = [], []
        denoise = model.head.net.from_embedded
        monkeypatch.setattr(
            model.head.net, "from_embedded", lambda x, t, z: net_calls.append(int(t.reshape(-1)[0])) or denoise(x, t, z)
        )
        sample_head = model.head.sample
        monkeypatch.setattr(
            model.head, "sample", lambda z, cfg, **kw: scales.append(cfg) or sample_head(z, cfg=cfg, **kw)
        )
        sample_latents(
            model,
            torch.tensor([0, 2]),
            num_iter=steps,
            cfg=cfg,
            cfg_schedule="linear",
            diffusion_steps=5,
            generator=torch.Generator().manual_seed(1),
        )
        seen[compat] = net_calls[:5], scales
    assert seen["official"][0] == sorted(space_timesteps(1000, [5]), reverse=True) == [999, 749, 500, 250, 0]
    assert seen["default"][0] == [800, 600, 400, 200, 0]
    official, default = seen["official"][1], seen["default"][1]
    assert official[:-1] == default[:-1]  # earlier steps are guided alike
    assert default[-1] == cfg and official[-1] == pytest.approx(1 + (cfg - 1) * (seq_len - 1) / seq_len)
    assert cfg_at(cfg, "linear", unmasked_fraction(0, 256, official=True)) == pytest.approx(1 + 2 * 255 / 256)


@pytest.mark.parametrize("seq_len,num_iter", [(16, 4), (16, 16), (64, 7), (256, 64), (256, 256), (100, 99)])
def test_the_official_schedule_is_ours_so_only_the_last_scale_differs(seq_len, num_iter):
    """models/mar.py's masked counts, re-derived: floor(L cos(pi/2 (k + 1) / K)) clamped to [1, masked - 1], all
    drawn at the last step. Ours equals it at every step but the last, where ours is 0 and the official clamp 1."""
    masked, official = seq_len, []
    for step in range(num_iter):
        count = max(1, min(masked - 1, math.floor(seq_len * math.cos(math.pi / 2 * (step + 1) / num_iter))))
        official.append(count)
        masked = count if step < num_iter - 1 else 0
    ours = unmasking_schedule(seq_len, num_iter)
    assert ours[:-1] == official[:-1] and ours[-1] == 0 and official[-1] == 1


def approx_cdf(u: float) -> float:
    return 0.5 * (1 + math.tanh(math.sqrt(2 / math.pi) * (u + 0.044715 * u**3)))


def test_the_discretised_likelihood_matches_its_closed_form():
    sigma = 0.01
    u = 1 / (255 * sigma)  # half a bin in standard deviations
    log_var = torch.full((3,), 2 * math.log(sigma))
    x, mean = torch.tensor([0.0, 1.0, -1.0]), torch.tensor([0.0, 1.0, -1.0])
    nll = discretized_gaussian_nll(x, mean, log_var)
    expected = [-math.log(approx_cdf(u) - approx_cdf(-u)), -math.log(1 - approx_cdf(-u)), -math.log(approx_cdf(u))]
    assert torch.allclose(nll, torch.tensor(expected), rtol=1e-5), (nll, expected)
    exact = -math.log(math.erf(u / math.sqrt(2)))  # the bin's mass under the exact normal CDF
    assert abs(nll[0].item() - exact) < 1e-3

    head = DiffLoss(DiffLossConfig(token_channels=2, cond_channels=3, width=16, depth=1, discretized_decoder=True))
    x0, output = torch.tensor([[0.3, -0.5], [0.3, -0.5]]), torch.randn(2, 4, generator=torch.Generator().manual_seed(0))
    x_t, t = torch.randn(2, 2, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 5])
    bound = head.diffusion.variational_bound(output, x0, x_t, t)
    continuous = GaussianDiffusion().variational_bound(output, x0, x_t, t)
    chain = head.diffusion.train_chain("cpu")
    eps, log_var = head.diffusion.split_output(output, x_t, t, chain)
    mean = head.diffusion.posterior_mean(x_t, eps, t, chain)
    assert torch.allclose(bound[0], discretized_gaussian_nll(x0, mean, log_var)[0].mean() / math.log(2))
    assert bound[1] == continuous[1] and bound[0] != continuous[0]  # only t = 0 changes


def test_compat_lives_in_the_config_so_a_resume_with_another_is_refused():
    official, default = named_config("mar-tiny", compat="official"), named_config("mar-tiny")
    assert "compat: 'official' != 'default'" in official.differences(default)
    assert (
        MARConfig.from_dict({k: v for k, v in default.to_dict().items() if k != "compat"}) == default
    )  # older checkpoints
    assert official.head.discretized_decoder and not default.head.discretized_decoder
    with pytest.raises(ValueError, match="unknown compat 'iddpm'"):
        MARConfig(compat="iddpm")


@pytest.mark.slow
def test_train_records_compat_official_and_refuses_to_resume_with_another(tmp_path, capsys):
    run = ["--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--quality", "off"]
    train.main(TOY + run + ["--compat", "official"])
    trained = load_checkpoint(tmp_path / "run").model
    assert trained.config.compat == "official" and trained.head.diffusion.discretized_decoder
    with pytest.raises(SystemExit) as exit_info:
        train.main(TOY + run + ["--resume", "--epochs", "2"])
    error = capsys.readouterr().err.strip()
    assert exit_info.value.code == 2 and "\n" not in error and "compat: 'default' != 'official'" in error
