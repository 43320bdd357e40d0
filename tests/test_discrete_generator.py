"""The generator with a categorical head: it samples codebook entries only, guidance at scale 1 changes nothing,
greedy sampling repeats, and a checkpoint carries the codebook."""

import pytest
import torch

from mar import MARGenerator, sample_latents
from mar.train.checkpoint import load_checkpoint, save_weights

LABELS = torch.tensor([0, 1, 2, 1])


@pytest.fixture(scope="module")
def setup(categorical_generator):
    return categorical_generator


def sample(model, seed=0, **kw):
    return sample_latents(model, LABELS, num_iter=2, generator=torch.Generator().manual_seed(seed), **kw)


def test_samples_are_codebook_entries(setup):
    tokenizer, model = setup
    latents = sample(model)  # (b, c, h, w)
    vectors = latents.permute(0, 2, 3, 1).reshape(-1, 3)
    distance = (vectors[:, None] - tokenizer.latent_codebook()[None]).abs().amax(-1).min(1).values  # (n,)
    assert latents.shape == (4, 3, 4, 4) and distance.max().item() < 1e-6


def test_guidance_one_equals_unguided_and_greedy_repeats(setup):
    _, model = setup
    unguided = sample(model, cfg=1.0)  # without guidance, its schedule and refresh change nothing
    assert torch.equal(unguided, sample(model, cfg=1.0, cfg_schedule="linear", cfg_refresh=3))
    assert not torch.equal(sample(model, cfg=3.0), unguided)
    assert torch.equal(sample(model, seed=1, temperature=0), sample(model, seed=1, temperature=0))


def test_a_checkpoint_carries_the_codebook_and_samples_the_same(setup, tmp_path):
    tokenizer, model = setup
    path = save_weights(tmp_path / "weights.safetensors", model, tokenizer, ["a", "b", "c"], 16, step=3)
    loaded = load_checkpoint(path)
    assert torch.equal(loaded.model.head.codebook, model.head.codebook)
    assert torch.equal(sample(loaded.model), sample(model))


def test_a_codebook_of_the_wrong_shape_is_refused(setup):
    _, model = setup
    with pytest.raises(ValueError, match="does not fit"):
        MARGenerator(model.config, torch.zeros(5, 3))
