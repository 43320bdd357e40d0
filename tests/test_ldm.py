"""The LDM / MAR kl16 checkpoint layout, written here by the LDM naming rules, converted into diffusers' AutoencoderKL."""

import pytest
import torch
import torch.nn.functional as F

from vae import load_tokenizer
from vae.ldm import KL16, KNOWN_SCALES, infer_layout, load_ldm_autoencoder


def ldm_shapes(ch=32, ch_mult=(1, 1, 2, 2, 4), blocks=2, z=16, encoder_attn=(4,), decoder_attn=()) -> dict:
    """Names and shapes of an LDM autoencoder's tensors, listed from the LDM Encoder/Decoder construction rules."""
    shapes = {}

    def conv(name, cout, cin, k=3):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (cout, cin, k, k), (cout,)

    def norm(name, c):
        shapes[f"{name}.weight"], shapes[f"{name}.bias"] = (c,), (c,)

    def resnet(name, cin, cout):
        (
            norm(f"{name}.norm1", cin),
            conv(f"{name}.conv1", cout, cin),
            norm(f"{name}.norm2", cout),
            conv(f"{name}.conv2", cout, cout),
        )
        if cin != cout:
            conv(f"{name}.nin_shortcut", cout, cin, 1)

    def attention(name, c):
        norm(f"{name}.norm", c)
        for part in ("q", "k", "v", "proj_out"):
            conv(f"{name}.{part}", c, c, 1)

    widths = [ch * m for m in ch_mult]
    conv("encoder.conv_in", ch, 3)
    cin = ch
    for level, width in enumerate(widths):
        for b in range(blocks):
            resnet(f"encoder.down.{level}.block.{b}", cin, width)
            cin = width
            if level in encoder_attn:
                attention(f"encoder.down.{level}.attn.{b}", width)
        if level != len(widths) - 1:
            conv(f"encoder.down.{level}.downsample.conv", width, width)
    for side in ("encoder", "decoder"):
        resnet(f"{side}.mid.block_1", widths[-1], widths[-1]), attention(f"{side}.mid.attn_1", widths[-1])
        resnet(f"{side}.mid.block_2", widths[-1], widths[-1])
    norm("encoder.norm_out", widths[-1]), conv("encoder.conv_out", 2 * z, widths[-1])
    conv("quant_conv", 2 * z, 2 * z, 1), conv("post_quant_conv", z, z, 1)
    conv("decoder.conv_in", widths[-1], z)
    cin = widths[-1]
    for level in reversed(range(len(widths))):
        for b in range(blocks + 1):
            resnet(f"decoder.up.{level}.block.{b}", cin, widths[level])
            cin = widths[level]
            if level in decoder_attn:
                attention(f"decoder.up.{level}.attn.{b}", widths[level])
        if level != 0:
            conv(f"decoder.up.{level}.upsample.conv", widths[level], widths[level])
    norm("decoder.norm_out", ch), conv("decoder.conv_out", 3, ch)
    return shapes


def random_checkpoint(shapes: dict) -> dict:
    g = torch.Generator().manual_seed(0)
    return {name: 0.02 * torch.randn(shape, generator=g) for name, shape in shapes.items()}


def test_kl16_layout_is_recognised_with_its_latent_scale():
    tensors = {name: torch.empty(shape, device="meta") for name, shape in ldm_shapes(ch=128).items()}
    assert infer_layout(tensors) == KL16 and KNOWN_SCALES[KL16] == 0.2325


@pytest.mark.parametrize("decoder_attn", [(), (0, 2)])
def test_every_tensor_lands_and_none_is_left_over(tmp_path, decoder_attn):
    tensors = random_checkpoint(ldm_shapes(decoder_attn=decoder_attn))
    loss_tensors = {"loss.discriminator.main.0.weight": torch.ones(3), "loss.logvar": torch.zeros(())}
    torch.save({"model": tensors | loss_tensors}, tmp_path / "kl.ckpt")  # MAR's kl16.ckpt wraps its tensors in "model"
    autoencoder, scale = load_ldm_autoencoder(tmp_path / "kl.ckpt")
    assert scale is None  # a width-32 model is not kl16, so no known scale
    converted = autoencoder.state_dict()
    assert len(converted) == len(tensors)
    originals = {tuple(t.flatten()[:8].tolist()): t for t in tensors.values()}  # random values identify each tensor
    for name, tensor in converted.items():
        source = originals[tuple(tensor.flatten()[:8].tolist())]
        assert torch.equal(tensor.flatten(), source.flatten()), name
    tokenizer = load_tokenizer(tmp_path / "kl.ckpt")
    images = torch.rand(2, 3, 64, 64) * 2 - 1
    latents = tokenizer.encode(images)
    assert tokenizer.stride == 16 and tokenizer.channels == 16 and latents.shape == (2, 16, 4, 4)
    assert tokenizer.decode(latents).shape == images.shape


def test_attention_projections_compute_what_the_ldm_block_computes(tmp_path):
    tensors = random_checkpoint(ldm_shapes(ch=32, ch_mult=(1, 2), blocks=1, z=4, encoder_attn=()))
    torch.save(tensors, tmp_path / "small.pt")
    autoencoder, _ = load_ldm_autoencoder(tmp_path / "small.pt")
    x = torch.randn(2, 64, 5, 5, generator=torch.Generator().manual_seed(1))
    p = {k.removeprefix("encoder.mid.attn_1."): v for k, v in tensors.items() if k.startswith("encoder.mid.attn_1.")}
    h = F.group_norm(x, 32, p["norm.weight"], p["norm.bias"], eps=1e-6)
    q, k, v = (F.conv2d(h, p[f"{n}.weight"], p[f"{n}.bias"]).flatten(2) for n in "qkv")  # (b, c, hw)
    weights = torch.softmax(q.transpose(1, 2) @ k / 64**0.5, dim=-1)  # (b, hw_q, hw_k)
    attended = (v @ weights.transpose(1, 2)).view_as(x)
    expected = x + F.conv2d(attended, p["proj_out.weight"], p["proj_out.bias"])
    assert torch.allclose(autoencoder.encoder.mid_block.attentions[0](x), expected, atol=1e-5)


def test_a_file_of_another_layout_is_refused(tmp_path):
    torch.save({"model": {"something.weight": torch.ones(2)}}, tmp_path / "other.ckpt")
    with pytest.raises(ValueError, match="not an LDM autoencoder layout"):
        load_tokenizer(tmp_path / "other.ckpt")
