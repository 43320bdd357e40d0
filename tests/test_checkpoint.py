"""Checkpoints: a round trip reproduces the samples; bad files and other configs are refused clearly."""

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest
import torch

import mar.train.atomic_files as atomic_files
from mar import sample_latents
from mar.train.checkpoint import (
    CheckpointWriteError,
    TrainingState,
    latest_checkpoint,
    load_checkpoint,
    record_sampling,
    save_training_checkpoint,
    save_weights,
)
from mar.train.ema import EMA
from vae import KLTokenizer, small_autoencoder

from .tiny import TINY, tiny_model, untrained_but_responsive


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

    monkeypatch.setattr(atomic_files, "save_file", crash)
    with pytest.raises(OSError, match="disk full"):
        save_weights(path, model, tokenizer, list("abcde"), 32, step=13)
    assert path.read_bytes() == before
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no temporary file left behind
    assert load_checkpoint(path).step == 12


def test_a_recorded_guidance_scale_loads_with_the_same_weights_and_a_failed_record_keeps_the_file(saved, monkeypatch):
    path, model, _ = saved
    assert load_checkpoint(path).sampling == {}
    record_sampling(path, {"cfg": 6.0, "temperature": 1.0})
    loaded = load_checkpoint(path)
    assert loaded.sampling == {"cfg": 6.0, "temperature": 1.0} and loaded.step == 12
    for name, tensor in model.state_dict().items():
        assert torch.equal(loaded.model.state_dict()[name], tensor), name
    before = path.read_bytes()

    def read_only(tensors, filename, metadata):
        raise PermissionError(13, "Permission denied", str(filename))

    monkeypatch.setattr(atomic_files, "save_file", read_only)
    with pytest.raises(CheckpointWriteError, match=r"checkpoint is unchanged: pass --cfg 4 when sampling"):
        record_sampling(path, {"cfg": 4.0})
    assert path.read_bytes() == before and [p.name for p in path.parent.iterdir()] == [path.name]


def test_non_finite_weights_are_refused_naming_the_file(saved, tmp_path):
    path, model, tokenizer = saved
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(float("nan"))
    broken = save_weights(tmp_path / "nan.safetensors", model, tokenizer, list("abcde"), 32, step=13)
    with pytest.raises(ValueError, match=r"nan.safetensors holds non-finite weights .*use an earlier checkpoint"):
        load_checkpoint(broken)


def training_state(step: int) -> TrainingState:
    return TrainingState(step=step, epoch=0, position=step, optimizer={}, scaler={}, data={})


def test_a_checkpoint_that_cannot_be_written_keeps_the_previous_one(tmp_path, monkeypatch):
    model = tiny_model()
    tokenizer = KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32))
    first = save_training_checkpoint(tmp_path, model, EMA(model, 0.9), tokenizer, training_state(1), "abcde", 32)

    def read_only(tensors, filename, metadata):
        raise PermissionError(13, "Permission denied", str(filename))

    monkeypatch.setattr(atomic_files, "save_file", read_only)
    with pytest.raises(CheckpointWriteError) as error:
        save_training_checkpoint(tmp_path, model, EMA(model, 0.9), tokenizer, training_state(2), "abcde", 32)
    message = str(error.value)
    assert "\n" not in message and f"in {tmp_path / 'checkpoints'} (PermissionError" in message
    assert f"the previous checkpoint {first} is intact" in message and "--resume" in message
    assert latest_checkpoint(tmp_path) == first and load_checkpoint(first).step == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", first.name]


FILE_SIZE_LIMIT = """
import resource, sys
import torch
from mar.train.checkpoint import CheckpointWriteError, save_training_checkpoint
from mar.train.ema import EMA
from tests.test_checkpoint import training_state
from tests.tiny import tiny_model
from vae import KLTokenizer, small_autoencoder

model = tiny_model()
tokenizer = KLTokenizer(small_autoencoder(latent_channels=4, stride=4, width=32))
save_training_checkpoint(sys.argv[1], model, EMA(model, 0.9), tokenizer, training_state(1), "abcde", 32)
resource.setrlimit(resource.RLIMIT_FSIZE, (100_000, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))
try:
    save_training_checkpoint(sys.argv[1], model, EMA(model, 0.9), tokenizer, training_state(2), "abcde", 32)
except CheckpointWriteError as error:
    print(error)
"""


@pytest.mark.slow
def test_a_full_disk_keeps_the_previous_checkpoint(tmp_path):
    """A real write past the file-size limit (as on a full disk), in a child process that sets the limit."""
    root = Path(__file__).resolve().parent.parent
    result = subprocess.run(
        [sys.executable, "-c", FILE_SIZE_LIMIT, str(tmp_path)], capture_output=True, text=True, cwd=root, timeout=120
    )
    assert result.returncode == 0, result.stderr[-2000:]
    first = tmp_path / "checkpoints" / "step-00000001"
    assert f"the checkpoint of step 2 could not be written in {tmp_path / 'checkpoints'}" in result.stdout
    assert f"the previous checkpoint {first} is intact" in result.stdout
    assert latest_checkpoint(tmp_path) == first and load_checkpoint(first).step == 1
    assert sorted(p.name for p in (tmp_path / "checkpoints").iterdir()) == ["latest", first.name]
