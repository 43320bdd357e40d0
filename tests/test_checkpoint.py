"""Checkpoints: a round trip reproduces the samples; bad files and other configs are refused clearly."""

from dataclasses import replace

import pytest
import torch

import mar.train.checkpoint as checkpoint_module
from mar import sample_latents
from mar.train.checkpoint import load_checkpoint, save_weights
from vae import KLTokenizer, small_autoencoder

from .tiny import TINY, untrained_but_responsive


@pytest.fixture
def saved(tmp_path):
    model = untrained_but_responsive(seed=3)
    torch.manual_seed(0)
    tokenizer = KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32), scale=0.7, shift=0.1).eval()
    path = save_weights(tmp_path / "ckpt.safetensors", model, tokenizer, list("abcde"), 32, step=12)
    return path, model, tokenizer


def images(model, tokenizer):
    with torch.no_grad():
        latents = sample_latents(
            model,
            torch.tensor([0, 3, 4]),
            num_iter=3,
            cfg=2.0,
            diffusion_steps=4,
            generator=torch.Generator().manual_seed(11),
        )
        return tokenizer.decode(latents)


def test_round_trip_reproduces_the_same_images(saved):
    path, model, tokenizer = saved
    loaded = load_checkpoint(path)
    assert loaded.model.config == model.config and loaded.classes == list("abcde")
    assert (loaded.image_size, loaded.step) == (32, 12)
    assert (loaded.tokenizer.scale, loaded.tokenizer.shift) == (0.7, 0.1)
    assert loaded.ema is None and loaded.sampling_model is loaded.model
    assert torch.equal(images(model, tokenizer), images(loaded.model, loaded.tokenizer))


def test_other_config_is_refused_naming_the_fields(saved):
    path, *_ = saved
    with pytest.raises(ValueError, match=r"width: 96 != 64.*head.depth: 3 != 2"):
        load_checkpoint(path, expect=replace(TINY, width=96).with_head(depth=3))


def test_missing_and_foreign_files_get_clear_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.safetensors does not exist"):
        load_checkpoint(tmp_path / "nope.safetensors")
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"not a checkpoint at all")
    with pytest.raises(ValueError, match="not a safetensors checkpoint"):
        load_checkpoint(junk)
    with pytest.raises(FileNotFoundError, match="pass a run folder"):
        load_checkpoint(tmp_path)  # a folder with no checkpoints


def test_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch):
    path, model, tokenizer = saved
    before = path.read_bytes()

    def crash(tensors, filename, metadata):
        with open(filename, "wb") as half_written:
            half_written.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint_module, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, model, tokenizer, list("abcde"), 32, step=13)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert load_checkpoint(path).step == 12
