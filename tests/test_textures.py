"""The procedural texture set: seeded, balanced, readable as an ImageFolder, and usable by compare.py --data-path."""

import hashlib
import json

import numpy as np
import pytest

from mar.cli import compare
from mar.data.image_folder import ImageFolderDataset
from mar.data.textures import TEXTURE_CLASSES, render_texture, write_texture_folder


def digests(root):
    return {
        path.relative_to(root): hashlib.sha256(path.read_bytes()).hexdigest() for path in sorted(root.rglob("*.png"))
    }


def test_the_same_seed_writes_the_same_files_and_another_seed_others(tmp_path):
    first, again, other = (
        write_texture_folder(tmp_path / name, 2, 16, seed) for name, seed in (("a", 0), ("b", 0), ("c", 1))
    )
    assert digests(first) == digests(again) and len(digests(first)) == 2 * len(TEXTURE_CLASSES)
    assert digests(first) != digests(other)


def test_folder_reads_as_ten_balanced_classes(tmp_path):
    dataset = ImageFolderDataset(write_texture_folder(tmp_path, 3, 16), 16, flip=False)
    assert dataset.classes == [f"{k}-{name}" for k, name in enumerate(TEXTURE_CLASSES)]
    labels = [dataset[i][1] for i in range(len(dataset))]
    assert np.bincount(labels).tolist() == [3] * len(TEXTURE_CLASSES)


def test_classes_differ_in_structure_not_only_colour():
    """Grey-level horizontal and vertical stripes: variance along rows against columns tells them apart."""
    rng = np.random.default_rng(0)
    for _ in range(5):
        horizontal = np.asarray(render_texture("horizontal", 32, rng), dtype=float).mean(-1)
        vertical = np.asarray(render_texture("vertical", 32, rng), dtype=float).mean(-1)
        assert horizontal.std(axis=1).mean() < horizontal.std(axis=0).mean()
        assert vertical.std(axis=0).mean() < vertical.std(axis=1).mean()


def test_unknown_class_is_refused():
    with pytest.raises(ValueError, match="unknown texture class 'plaid'"):
        render_texture("plaid", 16, np.random.default_rng(0))


@pytest.mark.slow
def test_compare_runs_on_a_texture_folder(tmp_path):
    root = write_texture_folder(tmp_path / "textures", 12, 32)
    results = compare.main(
        [
            "--budget",
            "tiny",
            "--data-path",
            str(root),
            "--variants",
            "kl-diffusion",
            "--seeds",
            "1",
            "--output",
            str(tmp_path / "out"),
            "--cache-dir",
            str(tmp_path / "cache"),
            "--no-progress",
        ]
    )
    assert results["classifier"]["dataset"].startswith("folder(") and results["classifier"]["test_images"] == 24
    assert [row["variant"] for row in results["rows"]] == ["real images (training set)", "kl-diffusion", "kl-diffusion"]
    assert (tmp_path / "out" / "table.md").is_file()
    # one mirroring decision, by the comparison's classifier, given to every run (a 20-step one is near chance: off)
    assert results["mirrored_views"] is False
    runs = [
        tmp_path / "out" / "runs" / "kl-diffusion" / "seed-0",
        *(tmp_path / "out" / "sweep" / "kl-diffusion").iterdir(),
    ]
    assert all(json.loads((run / "metrics.json").read_text())["mirrored_views"] is False for run in runs)
