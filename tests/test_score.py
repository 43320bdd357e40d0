"""Scoring image sets on disk: a folder against its own reference has FID 0, ADM-style references, one-line errors."""

import json

import numpy as np
import pytest
import torch
from PIL import Image

pytest.importorskip("torch_fidelity")
from torch_fidelity.metric_isc import isc_features_to_metric  # noqa: E402

from mar.cli import score  # noqa: E402
from mar.eval.inception import WEIGHTS_NAME  # noqa: E402
from mar.eval.metrics import feature_statistics  # noqa: E402
from mar.eval.npz import read_npz_rows, write_npz_rows  # noqa: E402
from mar.eval.scoring import image_blocks  # noqa: E402
from mar.eval.scoring import score as score_images
from tests.random_inception import random_inception  # noqa: E402

COUNT = 8


def pictures(seed: int) -> np.ndarray:
    """COUNT smooth random pictures, uint8 (n, 32, 32, 3): 4 x 4 colour grids upsampled."""
    coarse = np.random.default_rng(seed).integers(0, 256, (COUNT, 4, 4, 3), dtype=np.uint8)
    return coarse.repeat(8, axis=1).repeat(8, axis=2)


def write_folder(folder, images: np.ndarray):
    folder.mkdir()
    for index, pixels in enumerate(images):
        Image.fromarray(pixels).save(folder / f"{index:06d}.png")
    return folder


@pytest.fixture(scope="module")
def inception(tmp_path_factory):
    """(extractor, its weights file): a seeded random Inception the scorer loads from disk."""
    path = tmp_path_factory.mktemp("inception") / "random-inception.pth"
    return random_inception(path), path


@pytest.fixture(scope="module")
def images():
    return pictures(seed=0)


@pytest.fixture(scope="module")
def folder(images, tmp_path_factory):
    return write_folder(tmp_path_factory.mktemp("set") / "images", images)


@pytest.fixture(scope="module")
def features(inception, images):
    """Pool features (n, 2048) and unbiased logits (n, 1008) of ``images`` in one in-memory batch."""
    with torch.no_grad():
        return inception[0](torch.from_numpy(images).permute(0, 3, 1, 2))


@pytest.mark.slow
def test_a_folder_against_its_own_reference_scores_fid_zero_and_full_precision_recall(
    inception, folder, features, tmp_path, capsys
):
    _, weights = inception
    reference = tmp_path / "reference.npz"
    score.main(
        [
            "--samples",
            str(folder),
            "--write-reference",
            str(reference),
            "--inception-weights",
            str(weights),
            "--batch-size",
            "5",
            "--device",
            "cpu",
        ]
    )
    pool, logits = features
    with np.load(reference) as saved:  # streamed in batches of 5 and 3: the statistics of all features at once
        assert sorted(saved.files) == ["activations", "mu", "sigma"]
        mu, sigma = feature_statistics(pool.numpy())
        np.testing.assert_allclose(saved["mu"], mu, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(saved["sigma"], sigma, rtol=1e-4, atol=1e-7 * np.abs(sigma).max())
        np.testing.assert_allclose(saved["activations"], pool.numpy(), rtol=1e-4, atol=1e-6)

    same, other = tmp_path / "same.json", tmp_path / "other.json"
    score.main(
        [
            "--samples",
            str(folder),
            "--reference",
            str(reference),
            "--inception-weights",
            str(weights),
            "--batch-size",
            "5",
            "--device",
            "cpu",
            "--json",
            str(same),
        ]
    )
    assert "8 images scored" in capsys.readouterr().out
    score.main(
        [
            "--samples",
            str(write_folder(tmp_path / "other", pictures(seed=1))),
            "--reference",
            str(reference),
            "--inception-weights",
            str(weights),
            "--device",
            "cpu",
            "--json",
            str(other),
            "--no-precision-recall",
        ]
    )
    same, other = json.loads(same.read_text()), json.loads(other.read_text())
    assert other["inception_fid"] > 1.0
    assert abs(same["inception_fid"]) < 1e-3 * other["inception_fid"]
    assert same["precision"] == same["recall"] == 1.0  # each set lies inside its own k-NN manifold
    assert same["images"] == other["images"] == COUNT
    assert "precision" not in other and "recall" not in other
    expected = isc_features_to_metric(logits, splits=COUNT // 2)
    assert same["inception_score"] == pytest.approx(expected["inception_score_mean"], rel=1e-5)
    assert same["inception_score_std"] == pytest.approx(expected["inception_score_std"], rel=1e-3, abs=1e-6)


@pytest.mark.slow
def test_an_npz_against_an_adm_reference_gets_precision_recall_from_its_images(
    inception, images, folder, features, tmp_path
):
    _, weights = inception
    samples = write_npz_rows(
        tmp_path / "samples.npz", (images[i : i + 5] for i in range(0, COUNT, 5)), COUNT, (32, 32, 3)
    )
    with np.load(samples) as npz:  # ADM's evaluator layout, and the same images as the folder in the same order
        assert npz.files == ["arr_0"] and npz["arr_0"].dtype == np.uint8 and np.array_equal(npz["arr_0"], images)
    assert np.array_equal(np.concatenate(list(read_npz_rows(samples, 5))), images)
    assert np.array_equal(np.concatenate(list(image_blocks(folder, 5))), images)

    reference = tmp_path / "VIRTUAL_like.npz"  # ADM's keys: statistics and the reference images, no activations
    np.savez(reference, mu=np.zeros(2048), sigma=np.eye(2048), arr_0=images)
    scores = score_images(samples, reference, weights, torch.device("cpu"), batch=5)
    assert scores["precision"] == scores["recall"] == 1.0
    mu, sigma = feature_statistics(features[0].numpy())
    root_trace = np.sqrt(np.clip(np.linalg.eigvalsh(sigma), 0, None)).sum()  # tr sigma^(1/2)
    expected = (mu**2).sum() + np.trace(sigma) + 2048 - 2 * root_trace  # against N(0, I): the file's
    assert scores["inception_fid"] == pytest.approx(expected, rel=1e-4)  # statistics, not those of its arr_0


def error_of(argv, capsys) -> str:
    with pytest.raises(SystemExit) as stop:
        score.main(argv)
    lines = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(lines) == 1 and lines[0].startswith("error: ")
    return lines[0]


def test_missing_or_wrong_files_give_one_line_errors_and_nothing_is_overwritten(inception, folder, tmp_path, capsys):
    _, weights = inception
    reference = tmp_path / "reference.npz"
    np.savez(reference, mu=np.zeros(2048), sigma=np.eye(2048))
    base = ["--samples", str(folder), "--reference", str(reference), "--inception-weights", str(weights)]

    for absent in ([], ["--inception-weights", str(tmp_path / "absent.pth")]):
        message = error_of(base[:4] + absent, capsys)
        assert WEIGHTS_NAME in message and "nothing is fetched" in message
    assert "reference statistics" in error_of(
        [*base[:2], "--reference", str(tmp_path / "absent.npz"), *base[4:]], capsys
    )
    images_only = tmp_path / "images_only.npz"
    np.savez(images_only, arr_0=np.zeros((2, 4, 4, 3), np.uint8))
    assert "not 'mu' and 'sigma'" in error_of([*base[:2], "--reference", str(images_only), *base[4:]], capsys)
    assert "neither a folder of images nor an .npz" in error_of(
        ["--samples", str(tmp_path / "absent"), *base[2:]], capsys
    )
    assert "no 'arr_0'" in error_of(["--samples", str(reference), *base[2:]], capsys)
    floats = tmp_path / "floats.npz"
    np.savez(floats, arr_0=np.zeros((2, 4, 4, 3), np.float32))
    assert "not uint8 RGB images" in error_of(["--samples", str(floats), *base[2:]], capsys)
    assert "--reference is missing" in error_of([*base[:2], *base[4:]], capsys)

    before = reference.read_bytes()
    assert "exists" in error_of([*base[:2], "--write-reference", str(reference), *base[4:]], capsys)
    assert reference.read_bytes() == before
