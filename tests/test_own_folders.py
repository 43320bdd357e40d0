"""A user's own folder: mirrored views decided from the data, a run as long whatever the folder's size, and a
quality report that is the held-out classifier's own scoring of the samples it saved."""

import json
import re

import numpy as np
import pytest
import torch
from PIL import Image, ImageDraw

from mar.cli import sample, train
from mar.eval.classifier import ClassifierConfig, FeatureClassifier, predict, train_classifier
from mar.eval.guidance_choice import CANDIDATES, OTHER_TEMPERATURE
from mar.eval.mirroring import decide_mirroring
from mar.eval.reference_data import dataset_classifier
from mar.sampling.config import SamplingConfig
from mar.train.checkpoint import latest_checkpoint, load_checkpoint

from .toy import TOY

SIZE = 16


def arrow(rng: np.random.Generator, right: bool) -> Image.Image:
    """A coloured arrow pointing right or left (mirror images of each other), at a random height, on a dark ground."""
    picture = Image.new("RGB", (SIZE, SIZE), tuple(int(c) for c in rng.integers(0, 60, 3)))
    draw, colour, y = ImageDraw.Draw(picture), tuple(int(c) for c in rng.integers(150, 256, 3)), rng.integers(5, 11)
    draw.rectangle([2, y - 1, 10, y + 1], fill=colour)  # the shaft, then the head at its right end
    draw.polygon([(10, y - 4), (14, y), (10, y + 4)], fill=colour)
    return picture if right else picture.transpose(Image.FLIP_LEFT_RIGHT)


def disc_or_square(rng: np.random.Generator, disc: bool) -> Image.Image:
    """A coloured disc or square (each its own mirror image) of random size and place on a dark ground."""
    picture = Image.new("RGB", (SIZE, SIZE), tuple(int(c) for c in rng.integers(0, 60, 3)))
    r, (x, y) = rng.integers(3, 6), rng.integers(6, 10, 2)
    shape = ImageDraw.Draw(picture).ellipse if disc else ImageDraw.Draw(picture).rectangle
    shape([x - r, y - r, x + r, y + r], fill=tuple(int(c) for c in rng.integers(150, 256, 3)))
    return picture


KINDS = {
    "mirror-pairs": {"left": lambda rng: arrow(rng, False), "right": lambda rng: arrow(rng, True)},
    "symmetric": {"disc": lambda rng: disc_or_square(rng, True), "square": lambda rng: disc_or_square(rng, False)},
}


def write_folder(root, kind: str, per_class: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    for name, draw in KINDS[kind].items():
        (root / name).mkdir(parents=True)
        for i in range(per_class):
            draw(rng).save(root / name / f"{i}.png")
    return root


def tensors(kind: str, per_class: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    rng = np.random.default_rng(seed)
    images, labels = [], []
    for label, draw in enumerate(KINDS[kind].values()):
        for _ in range(per_class):
            images.append(torch.from_numpy(np.asarray(draw(rng)).copy()).permute(2, 0, 1).float() / 127.5 - 1)
            labels.append(label)
    return torch.stack(images), torch.tensor(labels)


@pytest.mark.parametrize("kind, flip", [("mirror-pairs", False), ("symmetric", True)])
def test_mirrored_views_stay_only_where_mirroring_keeps_the_class(kind, flip):
    torch.manual_seed(0)
    classifier = FeatureClassifier(ClassifierConfig(num_classes=2, image_size=SIZE))
    train_classifier(classifier, *tensors(kind, 100, seed=0), steps=150, progress=False)
    decision = decide_mirroring(classifier, *tensors(kind, 100, seed=1), num_classes=2)
    assert decision.accuracy > 0.9 and decision.flip is flip, decision
    if not flip:
        assert decision.mirrored_accuracy < 0.1  # a mirrored left arrow is a right arrow


def test_a_classifier_near_chance_leaves_mirrored_views_off():
    classifier = FeatureClassifier(ClassifierConfig(num_classes=2, image_size=SIZE))  # untrained
    decision = decide_mirroring(classifier, *tensors("symmetric", 50, seed=1), num_classes=2)
    assert not decision.flip and "chance" in decision.reason


FOLDER_RUN = TOY + ["--image-size", str(SIZE), "--classifier-steps", "150", "--batch-size", "8"]


@pytest.mark.slow
@pytest.mark.parametrize("kind, flip", [("mirror-pairs", False), ("symmetric", True)])
def test_train_decides_mirrored_views_from_the_folder_and_flags_force_them(kind, flip, tmp_path, capsys):
    data = write_folder(tmp_path / "data", kind, per_class=60)
    run = FOLDER_RUN + ["--data-path", str(data), "--cache-dir", str(tmp_path / "cache"), "--quality", "off"]
    train.main(run + ["--output", str(tmp_path / "auto")])
    assert f"mirrored views: {'on' if flip else 'off'}, decided from the data" in capsys.readouterr().out
    manifest = json.loads((tmp_path / "auto" / "latents" / "cache.json").read_text())
    assert manifest["views"] == (2 if flip else 1)
    assert json.loads((tmp_path / "auto" / "metrics.json").read_text())["mirrored_views"] is flip
    forced = "--no-flip" if flip else "--flip"
    train.main(run + ["--output", str(tmp_path / "forced"), forced])
    assert f"mirrored views: {'off' if flip else 'on'} ({forced})" in capsys.readouterr().out


@pytest.mark.slow
def test_cache_latents_decides_mirrored_views_as_train_does(tmp_path, capsys):
    kind, flip = "mirror-pairs", False  # the decision itself is tested both ways above
    from mar.cli import cache_latents
    from vae import KLTokenizer, small_autoencoder

    data = write_folder(tmp_path / "data", kind, per_class=60)
    torch.manual_seed(0)
    KLTokenizer(small_autoencoder(4, 4, 32)).save(tmp_path / "tokenizer")
    given = ["--tokenizer", str(tmp_path / "tokenizer"), "--data-path", str(data), "--image-size", str(SIZE)]
    given += ["--cache-dir", str(tmp_path / "cache"), "--classifier-steps", "150", "--no-progress"]
    cache_latents.main(given + ["--out", str(tmp_path / "auto")])
    assert f"mirrored views: {'on' if flip else 'off'}, decided from the data" in capsys.readouterr().out
    assert json.loads((tmp_path / "auto" / "cache.json").read_text())["views"] == (2 if flip else 1)
    cache_latents.main(given + ["--out", str(tmp_path / "auto")])  # either decision's cache is this data's cache
    assert "already holds this cache" in capsys.readouterr().out
    forced = "--no-flip" if flip else "--flip"
    cache_latents.main(given + ["--out", str(tmp_path / "forced"), forced])
    assert json.loads((tmp_path / "forced" / "cache.json").read_text())["views"] == (1 if flip else 2)


def without(argv: list[str], *options: str) -> list[str]:
    """``argv`` less each of ``options`` and its value."""
    kept = list(argv)
    for option in options:
        at = kept.index(option)
        del kept[at : at + 2]
    return kept


@pytest.mark.slow
def test_two_folders_of_different_sizes_train_for_the_same_steps_by_default(tmp_path, capsys):
    """No --epochs: the recipe's steps, whatever the folder's size (the run is cut short by --stop-after-steps)."""
    lengths = []
    for per_class in (20, 80):
        data = write_folder(tmp_path / f"data-{per_class}", "symmetric", per_class)
        train.main(
            without(FOLDER_RUN, "--epochs", "--warmup-epochs")
            + ["--data-path", str(data), "--output", str(tmp_path / f"run-{per_class}"), "--stop-after-steps", "2"]
            + ["--cache-dir", str(tmp_path / "cache"), "--quality", "off", "--no-flip", "--amp", "bf16"]
        )
        out = capsys.readouterr().out
        lengths.append(re.search(r"(\d+) steps \((\S+) epochs\), lr \S+, cosine after (\d+) warmup", out).groups())
    assert lengths[0][0] == lengths[1][0] == "6240" and lengths[0][2] == lengths[1][2] == "312"
    assert float(lengths[0][1]) == pytest.approx(4 * float(lengths[1][1]), rel=0.05)  # a quarter of the images


@pytest.mark.slow
def test_the_quality_report_is_the_classifiers_scoring_of_the_saved_samples(tmp_path, capsys):
    data = write_folder(tmp_path / "data", "symmetric", per_class=40)
    out = tmp_path / "run"
    args = FOLDER_RUN + ["--data-path", str(data), "--cache-dir", str(tmp_path / "cache")]
    train.main(args + ["--output", str(out)])
    printed = capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    saved = np.load(out / "quality" / f"samples-step-{metrics['steps']:08d}.npz")
    images = torch.from_numpy(saved["images"]).permute(0, 3, 1, 2).float() / 127.5 - 1
    parsed = train.parse_args(args)
    dataset, classes = train.open_dataset(parsed)
    classifier, info, _, _ = dataset_classifier(
        parsed, dataset, train.dataset_name(parsed), len(classes), "cpu", steps=parsed.classifier_steps
    )
    hits = (predict(classifier, images)[1] == torch.from_numpy(saved["labels"])).sum().item()
    assert len(images) == metrics["samples_scored"] == 20
    assert metrics["sample_accuracy"] == hits / len(images)
    assert f"20 samples: class accuracy {hits / len(images):.3f}" in printed
    assert metrics["classifier_accuracy"] == info["test_accuracy"]
    rows = metrics["during_training"]
    assert [r["step"] for r in rows][-1] == metrics["steps"] and len(rows) >= 2
    assert (out / "quality.png").is_file() and (out / "quality.csv").is_file()
    assert set(metrics["tokenizer"]) >= {"psnr", "accuracy_reconstructed", "accuracy_real", "limit"}
    # without --cfg the run chose a scale and a temperature: the final samples and the grid used them, the
    # checkpoint keeps them
    chosen, temperature = metrics["cfg"], metrics["temperature"]
    assert chosen in CANDIDATES and temperature in (SamplingConfig().temperature, OTHER_TEMPERATURE)
    assert f"guidance: cfg {chosen:g}, temperature {temperature:g}, chosen from the data" in printed
    assert set(metrics["guidance_choice"]) == {f"{cfg:g}" for cfg in CANDIDATES}
    assert set(metrics["temperature_choice"]) == {f"{OTHER_TEMPERATURE:g}"}
    scored = [*metrics["guidance_choice"].values(), *metrics["temperature_choice"].values()]
    assert all(scores["count"] == 20 for scores in scored)
    assert f"cfg={chosen:g}, temperature={temperature:g})" in printed
    assert rows[-1]["cfg"] == chosen and all(row["cfg"] == SamplingConfig().cfg for row in rows[:-1])
    assert load_checkpoint(latest_checkpoint(out)).sampling == {"cfg": chosen, "temperature": temperature}
    sample.main(["--checkpoint", str(out), "--per-class", "1", "--num-iter", "2", "--diffusion-steps", "2"])
    assert f"at cfg {chosen:g}, temperature {temperature:g} (as its run chose" in capsys.readouterr().out
