"""The glyph tokenizer shipped in vae/weights: it loads, reconstructs glyphs it never saw as well as its
metrics.json says, and train.py takes it exactly where it fits."""

import json

import pytest

from mar.cli import train
from mar.cli.train_options import NEW_TOKENIZER
from mar.data.glyphs import glyph_dataset
from mar.train.checkpoint import latest_checkpoint, load_checkpoint
from vae import fingerprint, load_tokenizer, reconstruction_psnr
from vae.embedded import GLYPH_TOKENIZER, GLYPH_TOKENIZER_IMAGE_SIZE

from .toy import TOY, TOY_GENERATOR


@pytest.mark.slow
def test_shipped_tokenizer_reconstructs_unseen_glyphs_as_recorded(tmp_path):
    tokenizer = load_tokenizer(str(GLYPH_TOKENIZER))
    assert (tokenizer.kind, tokenizer.stride, tokenizer.channels) == ("kl", 2, 1)
    recorded = json.loads((GLYPH_TOKENIZER / "metrics.json").read_text())["psnr"]
    unseen = glyph_dataset(500, GLYPH_TOKENIZER_IMAGE_SIZE, seed=1, cache_dir=tmp_path).tensors[
        0
    ]  # another render seed
    assert reconstruction_psnr(tokenizer, unseen) > recorded - 1.0 > 20.0


@pytest.mark.parametrize(
    "options, shipped",
    [
        ([], GLYPH_TOKENIZER),
        (["--tokenizer-steps", "5"], None),  # any new-tokenizer option asks for a new one
        (["--tokenizer-width", "16"], None),
        (["--tokenizer-pixel-loss", "mse"], None),
        (["--image-size", "64"], None),
        (["--data-path", "somewhere"], None),
        (["--head", "categorical"], None),
        (["--tokenizer", "new"], None),
    ],
)
def test_tokenizer_auto_takes_the_shipped_one_only_where_it_fits(options, shipped):
    args = train.parse_args(options)
    assert args.tokenizer == (str(shipped) if shipped else "new")


@pytest.mark.parametrize(
    "options, init, steps",
    [
        ([], "general", 300),
        (["--tokenizer-steps", "50"], "general", 50),
        (["--tokenizer-width", "48"], "scratch", 800),
        (["--tokenizer-channels", "2"], "scratch", 800),
        (["--tokenizer-init", "scratch"], "scratch", 800),
    ],
)
def test_a_new_tokenizer_of_the_general_shape_starts_from_the_general_one(options, init, steps):
    args = train.parse_args(["--data-path", "somewhere"] + options)
    assert (args.tokenizer_init, args.tokenizer_steps) == (init, steps)


@pytest.mark.slow
def test_a_run_without_tokenizer_options_trains_on_the_shipped_tokenizer(tmp_path, capsys):
    train.main(TOY_GENERATOR + ["--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache")])
    assert "the glyph tokenizer shipped in" in capsys.readouterr().out
    checkpoint = load_checkpoint(latest_checkpoint(tmp_path / "run"), "cpu")
    assert fingerprint(checkpoint.tokenizer) == fingerprint(load_tokenizer(str(GLYPH_TOKENIZER)))


@pytest.mark.slow
def test_a_run_on_a_new_tokenizer_resumes_without_tokenizer_options(tmp_path, capsys):
    run = ["--output", str(tmp_path / "run"), "--cache-dir", str(tmp_path / "cache"), "--quality", "off"]
    train.main(TOY + run + ["--stop-after-steps", "2"])
    own = fingerprint(load_tokenizer(str(tmp_path / "run" / "tokenizer")))
    train.main(TOY_GENERATOR + run + ["--resume"])  # --tokenizer auto keeps a resumed run's own tokenizer
    assert "resuming at step 2" in capsys.readouterr().out
    assert fingerprint(load_checkpoint(latest_checkpoint(tmp_path / "run"), "cpu").tokenizer) == own


def test_a_new_tokenizer_trains_with_the_pixel_loss_and_initial_logvar_given(tmp_path):
    assert (NEW_TOKENIZER["tokenizer_pixel_loss"], NEW_TOKENIZER["tokenizer_initial_logvar"]) == ("mse", -8)
    args = train.parse_args(
        [
            "--tokenizer-init",
            "scratch",
            "--tokenizer-pixel-loss",
            "l1",
            "--tokenizer-initial-logvar=0",
            "--tokenizer-steps",
            "2",
            "--tokenizer-images",
            "40",
            "--amp",
            "none",
            "--no-progress",
        ]
    )
    dataset = glyph_dataset(40, 32, seed=0, cache_dir=tmp_path)
    tokenizer = train.train_new_tokenizer(args, dataset, "cpu", tmp_path)
    assert tokenizer.pixel_loss == "l1"
    recorded = json.loads((tmp_path / "tokenizer" / "metrics.json").read_text())
    assert (recorded["pixel_loss"], recorded["initial_logvar"]) == ("l1", 0.0)
    # two steps leave the log-variance near its start: posterior std about exp(0 / 2) = 1, not the default's exp(-4)
    _, std = tokenizer.moments(dataset.tensors[0][:4])
    assert std.mean().item() > 0.5
