"""The tokenizer interface across kinds: saving and loading, hub ids offline, and training that lowers the error."""

import pytest
import torch

from mar.data.glyphs import glyph_dataset
from vae import (
    DiscreteConfig,
    DiscreteTokenizer,
    KLTokenizer,
    TokenizerNotFound,
    VQConfig,
    evaluate_tokenizer,
    fingerprint,
    load_tokenizer,
    pixel_loss,
    small_autoencoder,
    train_tokenizer,
)


def make(kind: str, width: int = 32):
    if kind == "kl":
        return KLTokenizer(small_autoencoder(4, 4, width), scale=0.8, shift=0.05)
    return DiscreteTokenizer(DiscreteConfig(kind=kind, stride=4, width=width, vq=VQConfig(codebook_size=64, dim=4)))


@pytest.mark.parametrize("kind", ["kl", "vq", "fsq"])
def test_saved_tokenizers_load_back_exactly(tmp_path, kind):
    tokenizer = make(kind).eval()
    tokenizer.save(tmp_path / kind)
    loaded = load_tokenizer(tmp_path / kind)
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(0)) * 2 - 1
    with torch.no_grad():
        encoded = tokenizer.encode(images)
        assert torch.equal(loaded.encode(images), encoded)
        assert torch.equal(loaded.decode(encoded), tokenizer.decode(encoded))
    assert loaded.kind == kind and loaded.stride == 4 and loaded.discrete == (kind != "kl")
    assert loaded.codebook_size == {"kl": None, "vq": 64, "fsq": 1000}[kind]
    assert fingerprint(loaded) == fingerprint(tokenizer)


def test_a_diffusers_folder_brings_its_own_scale_and_shift(tmp_path):
    autoencoder = small_autoencoder(4, 4, 32)
    autoencoder.register_to_config(scaling_factor=0.3611, shift_factor=0.1159)  # as in SD3-style VAE configs
    autoencoder.save_pretrained(tmp_path / "vae")
    tokenizer = load_tokenizer(tmp_path / "vae")
    assert (tokenizer.scale, tokenizer.shift) == (0.3611, 0.1159)


def test_a_hub_id_loads_from_the_local_cache(tmp_path, monkeypatch):
    import huggingface_hub.constants

    snapshot = tmp_path / "models--someone--tiny-vae" / "snapshots" / ("0" * 40)
    small_autoencoder(4, 4, 32).save_pretrained(snapshot / "vae")
    (tmp_path / "models--someone--tiny-vae" / "refs").mkdir()
    (tmp_path / "models--someone--tiny-vae" / "refs" / "main").write_text("0" * 40)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    tokenizer = load_tokenizer("someone/tiny-vae/vae")
    assert tokenizer.kind == "kl" and tokenizer.channels == 4


def test_a_hub_id_missing_offline_says_how_to_point_at_a_local_copy():
    with pytest.raises(TokenizerNotFound) as error:
        load_tokenizer("stabilityai/sd-vae-ft-ema")
    message = str(error.value)
    assert "\n" not in message and "huggingface-cli download stabilityai/sd-vae-ft-ema --local-dir DIR" in message
    with pytest.raises(TokenizerNotFound, match="does not exist"):
        load_tokenizer("./no/such/folder")


TRAIN_STEPS = 200
# The squared error at least halves; measured gains at 200 steps of 16 px glyphs: 4.7 (kl), 7.8 (vq), 6.0 (fsq) dB.
MIN_GAIN_DB = 3.0


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["kl", "vq", "fsq"])
def test_training_on_the_default_data_cuts_the_reconstruction_error(kind):
    images = glyph_dataset(400, 16, seed=0).tensors[0]  # 16 px: the same gains as 32 px in a third of the time
    train, held_out = images[:-64], images[-64:]
    tokenizer = make(kind)
    before = evaluate_tokenizer(tokenizer.eval(), held_out)["psnr"]
    train_tokenizer(
        tokenizer, train, steps=TRAIN_STEPS, batch_size=16, generator=torch.Generator().manual_seed(0), progress=False
    )
    after = evaluate_tokenizer(tokenizer, held_out)
    assert after["psnr"] - before > MIN_GAIN_DB  # 10 log10 of the factor by which the squared error falls
    if kind != "kl":
        assert after["usage"] > 0.2 and after["perplexity"] > 5


@pytest.mark.parametrize("kind", ["vq", "fsq"])
def test_discrete_latents_are_unit_spread_code_vectors_that_decode_as_indices_do(kind):
    tokenizer = make(kind).eval()
    indices = torch.randint(0, tokenizer.codebook_size, (2, 4, 4), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        latents = tokenizer.latents(indices)  # (b, d, h, w)
        assert latents.shape == (2, tokenizer.channels, 4, 4)
        assert tokenizer.latent_codebook().std().item() == pytest.approx(1.0, rel=1e-5)
        assert torch.allclose(tokenizer.decode_latents(latents), tokenizer.decode(indices), atol=1e-5)
        codebook = tokenizer.latent_codebook()  # (k, d): entry k is the latent of index k
        assert torch.allclose(codebook[indices].permute(0, 3, 1, 2), latents)


def test_pixel_losses_are_the_mean_absolute_and_squared_errors():
    images, reconstructions = torch.zeros(2, 3, 4, 4), torch.zeros(2, 3, 4, 4)
    reconstructions[0] = 0.5  # half the values off by 0.5
    assert pixel_loss(reconstructions, images, "l1").item() == pytest.approx(0.25)
    assert pixel_loss(reconstructions, images, "mse").item() == pytest.approx(0.125)
    with pytest.raises(ValueError, match="huber"):
        pixel_loss(reconstructions, images, "huber")


@pytest.mark.parametrize("kind", ["kl", "fsq"])
def test_the_pixel_loss_setting_is_the_term_training_minimises(kind):
    images = glyph_dataset(8, 32, seed=0).tensors[0]
    tokenizer = make(kind)
    l1, logs = tokenizer.training_loss(images, torch.Generator().manual_seed(0))
    tokenizer.pixel_loss = "mse"
    mse, mse_logs = tokenizer.training_loss(images, torch.Generator().manual_seed(0))
    assert set(logs) - set(mse_logs) == {"l1"} and set(mse_logs) - set(logs) == {"mse"}
    assert mse.item() - mse_logs["mse"] == pytest.approx(l1.item() - logs["l1"], abs=1e-6)  # the other terms stay


def test_the_initial_logvar_shifts_only_the_posterior_log_variance_at_the_start():
    images = glyph_dataset(4, 32, seed=0).tensors[0]
    torch.manual_seed(0)
    plain = KLTokenizer(small_autoencoder(4, 4, 32)).eval()
    torch.manual_seed(0)
    narrow = KLTokenizer(small_autoencoder(4, 4, 32, initial_logvar=-8.0)).eval()
    with torch.no_grad():
        (mean, std), (narrow_mean, narrow_std) = plain.moments(images), narrow.moments(images)
    assert torch.equal(mean, narrow_mean)
    torch.testing.assert_close(
        narrow_std, std * torch.exp(torch.tensor(-4.0)), rtol=1e-4, atol=0
    )  # std = exp(logvar / 2)
