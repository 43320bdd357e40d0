"""Behaviour pinned across refactors: a fixed checkpoint and seed draw the same PNG, a seeded toy run ends in the same
weights, as the code that recorded ``tests/golden/`` did.

On a machine like the recording one (same torch version and CPU capability, in ``golden/record.json``) the PNGs and
the weights must match byte for byte; elsewhere float rounding differs, so pixels may move by one or two levels and
weight norms by a relative 1e-3. Re-record (only when behaviour is meant to change) with
``python -m tests.test_pinned_behaviour``.
"""

import hashlib
import json
import platform
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors import safe_open

from .toy import TOY

GOLDEN = Path(__file__).resolve().parent / "golden"
CHECKPOINT = GOLDEN / "checkpoint" / "weights.safetensors"
# Two sampling settings: the command line's defaults, and the approximate guidance refresh with a few-step solver.
DRAWS = {
    "default.png": ["--per-class", "2", "--num-iter", "4", "--diffusion-steps", "5", "--seed", "3"],
    "refresh-dpm.png": [
        "--per-class",
        "2",
        "--num-iter",
        "4",
        "--head-sampler",
        "dpm++",
        "--diffusion-steps",
        "4",
        "--cfg",
        "3",
        "--cfg-schedule",
        "linear",
        "--cfg-refresh",
        "2",
        "--temperature",
        "0.8",
    ],
}
# fp32 on every machine (--amp auto picks bf16 on some)
TOY_RUN = TOY + ["--quality", "off", "--amp", "none", "--seed", "5"]
TOY_RUN += [
    "--tokenizer-init",
    "scratch",
    "--tokenizer-pixel-loss",
    "l1",
    "--tokenizer-initial-logvar=0",
]  # when pinned


def environment() -> dict:
    """What the bytes depend on: torch, the CPU's vector capability and its model with family and model numbers (an
    AMX Xeon and an AVX-512 EPYC share the capability but not the rounding, and so do two EPYC generations that a
    virtual machine names "AMD EPYC" alike)."""
    return {"torch": torch.__version__, "cpu": torch.backends.cpu.get_cpu_capability(), "model": cpu_model()}


def cpu_model() -> str:
    """'AMD EPYC (family 25, model 17)' from /proc/cpuinfo, or the platform's processor name without it."""
    cpuinfo = Path("/proc/cpuinfo")
    lines = cpuinfo.read_text().splitlines() if cpuinfo.is_file() else []
    fields = {}
    for line in lines:
        key, _, value = line.partition(":")
        fields.setdefault(key.strip(), value.strip())
    if "model name" not in fields:
        return platform.processor()
    return f"{fields['model name']} (family {fields.get('cpu family', '?')}, model {fields.get('model', '?')})"


def recorded() -> dict:
    return json.loads((GOLDEN / "record.json").read_text())


def same_machine_kind() -> bool:
    return recorded()["environment"] == environment()


def draw(name: str, out: Path) -> Path:
    from mar.cli.sample import main as sample_main

    sample_main(["--checkpoint", str(CHECKPOINT), "--device", "cpu", "--out", str(out), *DRAWS[name]])
    return out


def weight_summary(path: Path) -> dict:
    """Per tensor: sha256 of its bytes and its float64 L2 norm (the config metadata is left out: its layout may move)."""
    summary = {}
    with safe_open(str(path), "pt") as f:
        for key in sorted(f.keys()):
            tensor = f.get_tensor(key)
            summary[key] = {
                "sha256": hashlib.sha256(tensor.numpy().tobytes()).hexdigest(),
                "norm": tensor.double().norm().item(),
            }
    return summary


def toy_run_weights(out: Path) -> Path:
    from mar.cli.train import main as train_main

    train_main(TOY_RUN + ["--output", str(out / "run"), "--cache-dir", str(out / "cache")])
    latest = (out / "run" / "checkpoints" / "latest").read_text().strip()
    return out / "run" / "checkpoints" / latest / "weights.safetensors"


@pytest.mark.parametrize("name", sorted(DRAWS))
def test_fixed_checkpoint_and_seed_draw_the_recorded_png(tmp_path, name):
    png = draw(name, tmp_path / name)
    if same_machine_kind():
        assert png.read_bytes() == (GOLDEN / name).read_bytes()
    else:
        got = np.asarray(Image.open(png), dtype=np.int16)
        want = np.asarray(Image.open(GOLDEN / name), dtype=np.int16)
        assert got.shape == want.shape and np.abs(got - want).max() <= 2


@pytest.mark.slow
def test_seeded_toy_run_ends_in_the_recorded_weights(tmp_path):
    got, want = weight_summary(toy_run_weights(tmp_path)), recorded()["toy_run"]
    assert sorted(got) == sorted(want)
    for key in want:
        if same_machine_kind():
            assert got[key]["sha256"] == want[key]["sha256"], key
        else:
            assert got[key]["norm"] == pytest.approx(want[key]["norm"], rel=1e-3, abs=1e-6), key


def record() -> None:
    """Writes the fixed checkpoint (once: it is never rewritten), the PNGs it draws and the toy run's weights."""
    import tempfile

    if not CHECKPOINT.exists():
        from diffloss import DiffLossConfig
        from mar import MARGenerator, named_config
        from mar.train.checkpoint import save_weights
        from vae import KLTokenizer, small_autoencoder

        torch.manual_seed(0)
        tokenizer = KLTokenizer(small_autoencoder(4, 4, 16), scale=0.7, shift=0.1).eval()
        config = named_config(
            "mar-micro",
            num_classes=5,
            latent_channels=4,
            latent_size=8,
            patch_size=2,
            width=32,
            num_heads=2,
            encoder_depth=1,
            decoder_depth=1,
            head=DiffLossConfig(width=32, depth=1),
        )
        model = MARGenerator(config).eval()
        with torch.no_grad():  # zero-initialised layers perturbed, so that samples depend on z and the class
            for p in model.parameters():
                if not torch.any(p != 0):
                    p.normal_(std=0.05)
        save_weights(CHECKPOINT, model, tokenizer, ["ring", "bar", "dot", "cross", "wave"], 32, step=7)
    for name in DRAWS:
        draw(name, GOLDEN / name)
    with tempfile.TemporaryDirectory() as folder:
        toy_run = weight_summary(toy_run_weights(Path(folder)))
    (GOLDEN / "record.json").write_text(json.dumps({"environment": environment(), "toy_run": toy_run}, indent=1) + "\n")


if __name__ == "__main__":
    sys.exit(record())
