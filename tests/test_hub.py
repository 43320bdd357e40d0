"""Hub folders and hub ids, offline: save / load round trips, the model card, a local cache layout, and the errors."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from mar.cli import export_hub, sample
from mar.interop.hub import PretrainedMAR, open_checkpoint, run_record
from mar.train.checkpoint import load_checkpoint

REPO = "test-org/mar-toy"
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def hub_folder(trained_run, tmp_path_factory):
    out = tmp_path_factory.mktemp("hub") / "mar-toy"
    export_hub.main(["--checkpoint", str(trained_run), "--out", str(out)])
    return out


@pytest.fixture
def local_cache(hub_folder, tmp_path, monkeypatch):
    """The Hugging Face cache layout of REPO at COMMIT, made here, as the default cache."""
    import huggingface_hub.constants

    repo = tmp_path / "hub-cache" / f"models--{REPO.replace('/', '--')}"
    shutil.copytree(hub_folder, repo / "snapshots" / COMMIT)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(COMMIT)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    return repo


def state(module: torch.nn.Module) -> dict:
    return {name: t.clone() for name, t in module.state_dict().items()}


def assert_same_weights(a, b):
    for left, right in ((a.model, b.model), (a.ema, b.ema), (a.tokenizer, b.tokenizer)):
        one, two = state(left), state(right)
        assert one.keys() == two.keys() and all(torch.equal(one[k], two[k]) for k in one)


def test_folder_round_trip_keeps_every_tensor_and_samples_the_same(trained_run, hub_folder):
    assert sorted(p.name for p in hub_folder.iterdir()) == [
        "README.md",
        "config.json",
        "model.safetensors",
        "samples.png",
    ]
    original = load_checkpoint(trained_run)
    loaded = PretrainedMAR.from_pretrained(hub_folder)
    assert_same_weights(original, loaded.checkpoint)
    assert (loaded.checkpoint.classes, loaded.checkpoint.image_size, loaded.checkpoint.step) == (
        original.classes,
        original.image_size,
        original.step,
    )
    assert loaded.checkpoint.sampling == original.sampling != {}  # the guidance scale the run chose
    options = {"num_iter": 2, "diffusion_steps": 3, "cfg": 2.0}
    again = PretrainedMAR(original).generate([0, 3], generator=torch.Generator().manual_seed(7), **options)
    drawn = loaded.generate([0, 3], generator=torch.Generator().manual_seed(7), **options)
    assert drawn.shape == (2, 3, original.image_size, original.image_size) and torch.equal(drawn, again)
    # saving what was loaded writes the same weights and the same facts
    loaded.save_pretrained(hub_folder.parent / "again")
    assert_same_weights(loaded.checkpoint, load_checkpoint(hub_folder.parent / "again"))
    assert json.loads((hub_folder.parent / "again" / "config.json").read_text()) == json.loads(
        (hub_folder / "config.json").read_text()
    )


def test_config_and_model_card_hold_what_the_run_recorded(trained_run, hub_folder):
    config = json.loads((hub_folder / "config.json").read_text())
    training, metrics, grid = run_record(trained_run)
    run_metrics = json.loads((trained_run / "metrics.json").read_text())
    assert (
        training["dataset"] == "glyphs(n=120, seed=0)"
        and training["batch_size"] == 24
        and training["num_images"] == 120
    )
    assert metrics["final_loss"] == run_metrics["final_loss"] and metrics["steps"] == 5 and "tokenizer_psnr" in metrics
    assert config["training"] == training and config["metrics"] == metrics and config["step"] == 5
    assert (
        config["classes"] == load_checkpoint(trained_run).classes
        and config["mar_config"]["head"]["kind"] == "diffusion"
    )
    assert (hub_folder / "samples.png").read_bytes() == grid.read_bytes()

    card = (hub_folder / "README.md").read_text()
    header = card.split("---")[1]
    assert "library_name: mar" in header and "- masked-autoregressive" in header
    for fact in (
        "glyphs(n=120, seed=0)",
        f"final_loss: {metrics['final_loss']:.4g}",
        "tokenizer_psnr",
        f"{len(config['classes'])}: 0, 1, 2",
        "![samples](samples.png)",
        "training step | 5",
        "python sample.py --checkpoint ORG/NAME",
    ):
        assert fact in card, fact


def test_a_hub_id_in_the_local_cache_opens_like_a_folder(hub_folder, local_cache):
    assert_same_weights(open_checkpoint(REPO), load_checkpoint(hub_folder))
    assert_same_weights(PretrainedMAR.from_pretrained(REPO).checkpoint, load_checkpoint(hub_folder))


def test_sample_py_takes_a_hub_id_from_the_cache(local_cache, tmp_path):
    out = tmp_path / "grid.png"
    sample.main(
        ["--checkpoint", REPO, "--out", str(out), "--per-class", "1", "--num-iter", "2", "--diffusion-steps", "2"]
    )
    assert out.is_file()


@pytest.mark.slow
def test_a_missing_hub_id_is_one_line_naming_the_download(local_cache, tmp_path):
    """A real process (HF_HUB_OFFLINE=1): exit 2, one line, no traceback, and the command that fetches it."""
    run = subprocess.run(
        [sys.executable, "sample.py", "--checkpoint", "test-org/not-there", "--out", str(tmp_path / "x.png")],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parent.parent,
        env={**os.environ, "HF_HUB_OFFLINE": "1", "HF_HUB_CACHE": str(local_cache.parent)},
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == 2 and len(lines) == 1 and "Traceback" not in run.stderr, run.stderr
    assert "test-org/not-there" in lines[0] and "hf download test-org/not-there" in lines[0]
    assert not (tmp_path / "x.png").exists()


def test_export_refuses_a_non_empty_out_and_keeps_it(trained_run, hub_folder, capsys):
    before = {p.name: p.read_bytes() for p in hub_folder.iterdir()}
    with pytest.raises(SystemExit) as stop:
        export_hub.main(["--checkpoint", str(trained_run), "--out", str(hub_folder)])
    assert stop.value.code == 2 and "--overwrite" in capsys.readouterr().err
    assert {p.name: p.read_bytes() for p in hub_folder.iterdir()} == before


def test_a_push_that_cannot_reach_the_hub_is_one_line_and_keeps_the_folder(trained_run, tmp_path, capsys):
    out = tmp_path / "pushed"
    with pytest.raises(SystemExit) as stop:
        export_hub.main(["--checkpoint", str(trained_run), "--out", str(out), "--push", "test-org/mar-toy"])
    error = capsys.readouterr().err.strip().splitlines()
    assert stop.value.code == 2 and len(error) == 1 and "hf upload test-org/mar-toy" in error[0]
    assert load_checkpoint(out).step == 5  # the folder was written before the push was tried
