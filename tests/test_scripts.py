"""train.py and sample.py end to end at toy budgets, and their one-line errors."""

import json
import shutil

import pytest
import torch
from PIL import Image

from mar.cli import cache_latents, sample, train, train_tokenizer
from mar.cli.common import open_dataset
from mar.data.images import GAP
from mar.eval.classifier import predict

from .toy import TOY


@pytest.fixture
def trained(trained_run):
    return trained_run


def test_train_writes_checkpoint_tokenizer_and_grid(trained):
    latest = (trained / "checkpoints" / "latest").read_text().strip()
    assert (trained / "checkpoints" / latest / "weights.safetensors").is_file() and (trained / "log.csv").is_file()
    assert (trained / "loss.png").is_file() and (trained / "samples" / "step-00000005.png").is_file()
    assert (trained / "tokenizer" / "config.json").is_file() and (trained / "tokenizer" / "tokenizer.json").is_file()
    grid = Image.open(trained / "samples.png")
    assert grid.height == 10 * 32 * 2 + 9 * GAP  # ten classes, one row each, zoomed twice, a gap apart


def test_sample_rebuilds_from_the_checkpoint_alone_and_repeats(trained):
    args = [
        "--checkpoint",
        str(trained),
        "--num-iter",
        "3",
        "--diffusion-steps",
        "3",
        "--per-class",
        "2",
        "--classes",
        "1",
        "7",
    ]
    sample.main(args + ["--out", str(trained / "a.png")])
    sample.main(args + ["--out", str(trained / "b.png")])
    a, b = Image.open(trained / "a.png"), Image.open(trained / "b.png")
    assert a.size == b.size and a.tobytes() == b.tobytes()
    sample.main(args + ["--seed", "1", "--out", str(trained / "c.png")])
    assert Image.open(trained / "c.png").tobytes() != a.tobytes()


@pytest.mark.parametrize(
    "head",
    [
        ["--head-sampler", "ddim", "--diffusion-steps", "4"],
        ["--head-sampler", "dpm++", "--diffusion-steps", "6", "--diffusion-steps-last", "2"],
    ],
)
def test_sample_takes_the_fast_head_samplers_and_annealing(trained, tmp_path, head):
    args = ["--checkpoint", str(trained), "--num-iter", "3", "--per-class", "1", "--classes", "2", *head]
    sample.main(args + ["--out", str(tmp_path / "a.png")])
    sample.main(args + ["--out", str(tmp_path / "b.png")])
    assert Image.open(tmp_path / "a.png").tobytes() == Image.open(tmp_path / "b.png").tobytes()


def one_line_error(capsys, main, argv) -> str:
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    message = capsys.readouterr().err.strip()
    assert message.startswith("error: ") and "\n" not in message
    return message


def test_sample_errors_name_the_value_and_the_fix(trained, capsys, tmp_path):
    ckpt = str(trained)
    message = one_line_error(capsys, sample.main, ["--checkpoint", str(tmp_path / "missing.safetensors")])
    assert "missing.safetensors does not exist" in message and "python train.py" in message
    message = one_line_error(capsys, sample.main, ["--checkpoint", ckpt, "--classes", "3", "10"])
    assert "class id 10 is out of range" in message and "10 classes (0-9)" in message
    message = one_line_error(capsys, sample.main, ["--checkpoint", ckpt, "--num-iter", "17"])
    assert "--num-iter 17" in message and "[1, 16]" in message
    message = one_line_error(capsys, sample.main, ["--checkpoint", ckpt, "--diffusion-steps", "1000"])
    assert "--diffusion-steps 1000" in message and "[1, 999]" in message


def test_train_errors_name_the_value_and_the_fix(trained, capsys, tmp_path):
    tokenizer = str(trained / "tokenizer")
    message = one_line_error(
        capsys, train.main, TOY + ["--tokenizer", tokenizer, "--image-size", "36", "--output", str(tmp_path)]
    )
    assert "image size 36 is not divisible by the tokenizer stride 2 x patch size 4 = 8" in message
    message = one_line_error(
        capsys, train.main, TOY + ["--tokenizer", str(tmp_path / "nowhere"), "--output", str(tmp_path)]
    )
    assert "nowhere does not exist" in message
    message = one_line_error(
        capsys, train.main, TOY + ["--data-path", str(tmp_path / "nodata"), "--output", str(tmp_path)]
    )
    assert "nodata does not exist" in message
    message = one_line_error(
        capsys, train.main, TOY + ["--tokenizer", tokenizer, "--batch-size", "500", "--output", str(tmp_path)]
    )
    assert "--batch-size 500 is larger than the dataset (120 images)" in message
    message = one_line_error(
        capsys,
        train.main,
        TOY
        + [
            "--tokenizer",
            tokenizer,
            "--init-from",
            str(trained),
            "--patch-size",
            "1",
            "--output",
            str(tmp_path),
        ],
    )
    assert "patch_size: 1 != 4" in message


def test_train_on_an_image_folder(tmp_path, capsys):
    for colour in ["red", "blue"]:
        (tmp_path / "data" / colour).mkdir(parents=True)
        for i in range(6):
            Image.new("RGB", (40 + 5 * i, 48), colour).save(tmp_path / "data" / colour / f"{i}.png")
    train.main(TOY + ["--data-path", str(tmp_path / "data"), "--output", str(tmp_path / "run"), "--batch-size", "4"])
    assert "12 images of 2 classes" in capsys.readouterr().out
    assert Image.open(tmp_path / "run" / "samples.png").height == 2 * 32 * 2 + GAP  # two rows of cells, a gap apart


@pytest.mark.parametrize("script", [train, sample, train_tokenizer, cache_latents], ids=lambda m: m.__name__)
def test_help_lists_options_with_defaults(script):
    """The entry points themselves are started in tests/test_cli_errors.py; their help is their parser's."""
    text = script.build_parser().format_help()
    assert "Examples:" in text and "default" in text
    if script in (train, sample):
        assert "--num-iter" in text and "--temperature" in text and "--cfg" in text


def test_train_reuses_a_matching_latent_cache_and_refuses_another(trained, capsys, tmp_path):
    tokenizer, cache = str(trained / "tokenizer"), str(trained / "latents")
    train.main(
        TOY
        + [
            "--tokenizer",
            tokenizer,
            "--latent-cache",
            cache,
            "--output",
            str(tmp_path / "again"),
            "--cache-dir",
            str(trained / "cache"),
            "--quality",
            "off",  # about the cache, not the scores
        ]
    )
    assert f"from {cache}" in capsys.readouterr().out
    assert not (tmp_path / "again" / "latents").exists()  # read from the given cache, not encoded again
    message = one_line_error(
        capsys,
        train.main,
        TOY
        + [
            "--tokenizer",
            tokenizer,
            "--latent-cache",
            cache,
            "--num-images",
            "100",
            "--output",
            str(tmp_path / "other"),
            "--cache-dir",
            str(trained / "cache"),
        ],
    )
    assert "was made with another tokenizer, image size, dataset or flip setting" in message and "n=100" in message


def test_train_tokenizer_script_writes_a_loadable_tokenizer_and_metrics(trained, tmp_path, capsys):
    import json

    from mar.cli import train_tokenizer
    from vae import load_tokenizer

    toy = [
        "--num-images",
        "60",
        "--images",
        "60",
        "--held-out",
        "10",
        "--steps",
        "2",
        "--batch-size",
        "8",
        "--no-progress",
        "--cache-dir",
        str(tmp_path / "cache"),
    ]
    train_tokenizer.main(toy + ["--kind", "fsq", "--levels", "5", "3", "--output", str(tmp_path / "fsq")])
    metrics = json.loads((tmp_path / "fsq" / "metrics.json").read_text())
    assert {"psnr", "usage", "perplexity"} <= metrics.keys() and load_tokenizer(tmp_path / "fsq").codebook_size == 15
    assert "codebook usage" in capsys.readouterr().out
    message = one_line_error(capsys, train.main, TOY + ["--head", "categorical", "--output", str(tmp_path / "run")])
    assert "needs a discrete --tokenizer" in message and "--kind vq" in message
    message = one_line_error(
        capsys,
        train.main,
        TOY + ["--head", "categorical", "--tokenizer", str(trained / "tokenizer"), "--output", str(tmp_path / "run")],
    )
    assert "continuous kl tokenizer" in message and "--head diffusion" in message
    message = one_line_error(capsys, train_tokenizer.main, toy + ["--kind", "vq", "--stride", "3"])
    assert "--stride 3" in message or "stride 3" in message


def test_resume_refuses_another_config_naming_the_fields(trained, capsys):
    message = one_line_error(
        capsys,
        train.main,
        TOY + ["--output", str(trained), "--resume", "--patch-size", "1", "--cache-dir", str(trained / "cache")],
    )
    assert "patch_size: 1 != 4" in message and "start a new --output" in message


def test_head_and_mask_law_options_reach_the_config(trained, capsys):
    """--head-width / --head-depth and --mask-ratio-min / --mask-ratio-std replace mar-micro's (128 x 3; 0, 0.5) in the
    config, as a resume's refusal shows."""
    message = one_line_error(
        capsys,
        train.main,
        TOY
        + [
            "--output",
            str(trained),
            "--resume",
            "--head-width",
            "64",
            "--head-depth",
            "2",
            "--mask-ratio-min",
            "0.3",
            "--mask-ratio-std",
            "1000",
            "--cache-dir",
            str(trained / "cache"),
        ],
    )
    for difference in (
        "head.width: 64 != 128",
        "head.depth: 2 != 3",
        "mask_ratio_min: 0.3 != 0.0",
        "mask_ratio_std: 1000.0 != 0.5",
    ):
        assert difference in message


def test_reported_grid_accuracy_is_the_classifiers_on_the_saved_grid(trained_run, monkeypatch):
    import mar.eval.classifier
    from mar.cli.common import dataset_name
    from mar.data.images import grid_cells
    from mar.eval.reference_data import dataset_classifier

    metrics = json.loads((trained_run / "metrics.json").read_text())
    args = train.parse_args(TOY + ["--cache-dir", str(trained_run / "cache")])
    dataset, classes = open_dataset(args)
    monkeypatch.setattr(
        mar.eval.classifier, "train_classifier", lambda *a, **k: pytest.fail("the kept classifier was not reused")
    )
    classifier, info, _, _ = dataset_classifier(
        args, dataset, dataset_name(args), len(classes), "cpu", steps=args.classifier_steps
    )
    images = grid_cells(Image.open(trained_run / "samples.png"), classes, args.image_size)
    labels = torch.arange(len(classes)).repeat_interleave(args.samples_per_class)
    assert len(images) == len(labels)
    assert metrics["grid_accuracy"] == (predict(classifier, images)[1] == labels).sum().item() / len(labels)


def test_resuming_a_finished_run_trains_nothing_and_keeps_its_checkpoint(trained_run, tmp_path, capsys):
    run = shutil.copytree(trained_run, tmp_path / "run")
    checkpoints = {
        path.relative_to(run): path.read_bytes() for path in (run / "checkpoints").rglob("*") if path.is_file()
    }
    before = json.loads((run / "metrics.json").read_text())
    train.main(TOY + ["--output", str(run), "--resume", "--cache-dir", str(run / "cache")])
    assert "nothing to train" in capsys.readouterr().out
    after = {path.relative_to(run): path.read_bytes() for path in (run / "checkpoints").rglob("*") if path.is_file()}
    assert after == checkpoints
    metrics = json.loads((run / "metrics.json").read_text())
    assert metrics["final_loss"] == before["final_loss"] and metrics["steps"] == before["steps"]
    assert metrics["seconds_to_checkpoint"] == before["seconds_to_checkpoint"]
