"""Latent caches: exact round trips, refusal of caches made otherwise, and the same shards under torchrun."""

import pytest
import torch
from safetensors.torch import load_file

from mar.cli import cache_latents
from mar.data.glyphs import glyph_dataset
from mar.data.latents import (
    LatentCacheMismatch,
    check_latent_cache,
    encode_views,
    read_latent_cache,
    write_latent_cache,
)
from vae import DiscreteConfig, DiscreteTokenizer, KLTokenizer, small_autoencoder

from .two_processes import one_thread, torchrun


@pytest.fixture(scope="module")
def tokenizer():
    torch.manual_seed(0)
    return KLTokenizer(small_autoencoder(4, 4, 32), scale=0.9, shift=0.1).eval()


@pytest.fixture(scope="module")
def dataset():
    return glyph_dataset(50, 16, seed=1)


@pytest.mark.parametrize("flips", [False, True])
def test_cache_round_trip_returns_exactly_the_stored_latents(tmp_path, tokenizer, dataset, flips):
    write_latent_cache(tokenizer, dataset, tmp_path, 16, "glyphs", flips, batch_size=8, shard_size=16, progress=False)
    assert len(list(tmp_path.glob("shard-*.safetensors"))) == 4
    manifest = check_latent_cache(tmp_path, tokenizer, 16, "glyphs", flips)
    stored = read_latent_cache(tmp_path, manifest)
    chunks = [encode_views(tokenizer, chunk, flips) for chunk in dataset.tensors[0].split(8)]  # the cache's batches
    direct = {name: torch.cat([chunk[name] for chunk in chunks]) for name in ("mean", "std")}
    assert stored["mean"].shape == (50, 2 if flips else 1, 4, 4, 4)
    assert torch.equal(stored["mean"], direct["mean"]) and torch.equal(stored["std"], direct["std"])
    assert torch.equal(stored["labels"], dataset.tensors[1])
    if flips:  # the second view is the mirror image's encoding
        mirrored = encode_views(tokenizer, dataset.tensors[0].flip(-1), False)["mean"][:, 0]
        assert torch.allclose(stored["mean"][:, 1], mirrored, atol=1e-5)


def test_discrete_tokenizers_cache_code_indices(tmp_path, dataset):
    tokenizer = DiscreteTokenizer(DiscreteConfig(kind="fsq", stride=4, width=32)).eval()
    write_latent_cache(tokenizer, dataset, tmp_path, 16, "glyphs", False, batch_size=64, progress=False)
    stored = read_latent_cache(tmp_path, check_latent_cache(tmp_path, tokenizer, 16, "glyphs", False))
    assert stored["indices"].shape == (50, 1, 4, 4) and torch.equal(
        stored["indices"][:, 0], tokenizer.encode(dataset.tensors[0])
    )


def test_a_cache_made_otherwise_is_refused_with_the_differences_named(tmp_path, tokenizer, dataset):
    write_latent_cache(tokenizer, dataset, tmp_path, 16, "glyphs", False, progress=False)
    with pytest.raises(LatentCacheMismatch, match=r"image_size: cache 16 != this run 32"):
        check_latent_cache(tmp_path, tokenizer, 32, "glyphs", False)
    with pytest.raises(LatentCacheMismatch, match=r"views: cache 1 != this run 2"):
        check_latent_cache(tmp_path, tokenizer, 16, "glyphs", True)
    other = KLTokenizer(small_autoencoder(4, 4, 32), scale=0.9, shift=0.1)
    with pytest.raises(LatentCacheMismatch, match="tokenizer_fingerprint"):
        check_latent_cache(tmp_path, other, 16, "glyphs", False)
    (tmp_path / "cache.json").unlink()  # as after an interrupted write
    with pytest.raises(FileNotFoundError, match="missing or unfinished"):
        check_latent_cache(tmp_path, tokenizer, 16, "glyphs", False)


@pytest.mark.slow
def test_torchrun_with_two_processes_writes_the_same_cache(tmp_path, tokenizer):
    tokenizer.save(tmp_path / "tokenizer")
    common = [
        "--tokenizer",
        str(tmp_path / "tokenizer"),
        "--num-images",
        "40",
        "--image-size",
        "16",
        "--shard-size",
        "8",
        "--cache-dir",
        str(tmp_path / "data"),
        "--device",
        "cpu",
        "--no-progress",
    ]
    with one_thread():
        cache_latents.main([*common, "--out", str(tmp_path / "one")])  # in this process
    result = torchrun("-m", "mar", "cache-latents", *common, "--out", str(tmp_path / "two"))
    assert result.returncode == 0, result.stderr[-2000:]
    assert "on 2 process(es)" in result.stdout
    for shard in sorted((tmp_path / "one").glob("shard-*.safetensors")):
        one, two = load_file(shard), load_file(tmp_path / "two" / shard.name)
        assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)
    assert (tmp_path / "one" / "cache.json").read_text() == (tmp_path / "two" / "cache.json").read_text()
