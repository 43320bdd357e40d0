"""The training loop: exact resume, non-finite losses, SIGKILL while writing, SIGTERM / SIGINT, and two processes = one."""

import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import mar.train.loop as loop
from mar.cli import train
from mar.data.latents import LatentSet
from mar.train.budget import TimeBudget, steps_that_fit
from mar.train.checkpoint import latest_checkpoint, load_checkpoint, load_training_state
from mar.train.ema import EMA
from mar.train.loop import TrainingStopped, TrainSettings, fit
from mar.train.run_log import read_rows
from vae import KLTokenizer, small_autoencoder

from .tiny import tiny_model
from .two_processes import torchrun

ROOT = Path(__file__).resolve().parent.parent
SETTINGS = TrainSettings(
    steps=12,  # two passes over the 48 latents
    batch_size=8,
    lr=1e-3,
    warmup_steps=2,
    lr_schedule="cosine",
    ema_decay=0.9,
    save_every=100,
    log_every=1,
    progress=False,
)
INFO = {"classes": list("abcde"), "image_size": 32}


@pytest.fixture(scope="module")
def data():
    g = torch.Generator().manual_seed(0)
    latents = LatentSet(
        torch.randn(48, 2, 4, 8, 8, generator=g),
        0.1 * torch.rand(48, 2, 4, 8, 8, generator=g),
        torch.randint(0, 5, (48,), generator=g),
    )
    torch.manual_seed(0)
    return latents, KLTokenizer(small_autoencoder(4, 4, 32), scale=0.5).eval()


def run(tmp_path, data, settings=SETTINGS, resume_from=None, model=None, **kwargs):
    latents, tokenizer = data
    model = model or tiny_model(seed=1)
    ema = EMA(model, settings.ema_decay)
    state = None
    if resume_from is not None:
        saved = load_checkpoint(resume_from)
        model.load_state_dict(saved.model.state_dict())
        ema.module.load_state_dict(saved.ema.state_dict())
        state = load_training_state(resume_from)
    result = fit(model, ema, latents, tokenizer, settings, torch.device("cpu"), tmp_path, INFO, resume=state, **kwargs)
    return model, ema, result


def losses(run_dir: Path) -> list[str]:
    return [row["loss"] for row in read_rows(run_dir / "log.csv")]


def test_resume_repeats_the_uninterrupted_run_bit_for_bit(tmp_path, data):
    straight, straight_ema, result = run(tmp_path / "straight", data)
    assert result["step"] == 12
    run(tmp_path / "split", data, settings=replace(SETTINGS, stop_after=5))
    checkpoint = latest_checkpoint(tmp_path / "split")
    assert checkpoint.name == "step-00000005" and load_training_state(checkpoint).position == 5
    resumed, resumed_ema, _ = run(tmp_path / "split", data, resume_from=checkpoint, model=tiny_model(seed=99))
    for a, b in zip(straight.state_dict().values(), resumed.state_dict().values()):
        assert torch.equal(a, b)
    for a, b in zip(straight_ema.state_dict().values(), resumed_ema.state_dict().values()):
        assert torch.equal(a, b)
    assert losses(tmp_path / "straight") == losses(tmp_path / "split") and len(losses(tmp_path / "split")) == 12


def inject_nan(model, at_calls):
    calls = {"n": 0}
    loss = model.loss

    def forward(*args, **kwargs):
        calls["n"] += 1
        value = loss(*args, **kwargs)
        return value * float("nan") if calls["n"] in at_calls else value

    model.forward = forward


def test_a_non_finite_loss_skips_the_step_and_leaves_the_weights(tmp_path, data):
    model = tiny_model(seed=1)
    inject_nan(model, at_calls={3})
    snapshots = {}
    model, _, result = run(
        tmp_path,
        data,
        model=model,
        on_step=lambda step, total: snapshots.__setitem__(step, [t.clone() for t in model.parameters()]),
    )
    assert all(torch.equal(a, b) for a, b in zip(snapshots[2], snapshots[3]))  # step 3 changed nothing
    assert not all(torch.equal(a, b) for a, b in zip(snapshots[3], snapshots[4]))  # step 4 trained again
    assert result["step"] == 12 and all(torch.isfinite(p).all() for p in model.parameters())


def test_repeated_non_finite_losses_stop_training_with_the_last_checkpoint_intact(tmp_path, data):
    model = tiny_model(seed=1)
    inject_nan(model, at_calls=set(range(5, 100)))
    saved = {}

    def remember(step, total):
        if step == 5:  # after the first non-finite step; the checkpoint of step 4 exists
            saved["bytes"] = (latest_checkpoint(tmp_path) / "weights.safetensors").read_bytes()

    with pytest.raises(TrainingStopped, match=r"stopped at step 7 after 3 non-finite losses in a row.*is intact"):
        run(tmp_path, data, settings=replace(SETTINGS, save_every=4, max_bad_steps=3), model=model, on_step=remember)
    last = latest_checkpoint(tmp_path)
    assert last.name == "step-00000004" and (last / "weights.safetensors").read_bytes() == saved["bytes"]
    assert all(torch.isfinite(t).all() for t in load_file(last / "weights.safetensors").values())


KILL_DURING_WRITE = """
import os, signal, sys, torch
sys.path.insert(0, {root!r})
import mar.train.atomic_files as atomic_files
import mar.train.checkpoint as ckpt
from mar.train.ema import EMA
from tests.tiny import tiny_model
from vae import KLTokenizer, small_autoencoder
model = tiny_model(seed=1)
tokenizer = KLTokenizer(small_autoencoder(4, 4, 32))
def state(step):
    return ckpt.TrainingState(step=step, epoch=0, position=step, optimizer={{}}, scaler={{}}, data={{}})
ckpt.save_training_checkpoint({run!r}, model, EMA(model, 0.9), tokenizer, state(1), classes=list("abcde"), image_size=32)
def killed(write):
    def half_then_kill(obj, path, *args, **kwargs):
        with open(path, "wb") as f:
            f.write(b"partial")
        os.kill(os.getpid(), signal.SIGKILL)
    return half_then_kill
if {target!r} == "weights":
    atomic_files.save_file = killed(atomic_files.save_file)
else:
    ckpt.torch.save = killed(torch.save)
with torch.no_grad():
    next(model.parameters()).add_(1.0)
ckpt.save_training_checkpoint({run!r}, model, EMA(model, 0.9), tokenizer, state(2), classes=list("abcde"), image_size=32)
"""


@pytest.mark.slow
@pytest.mark.parametrize("target", ["weights", "resume"])
def test_sigkill_while_writing_leaves_the_previous_checkpoint_loadable(tmp_path, target):
    script = KILL_DURING_WRITE.format(root=str(ROOT), run=str(tmp_path), target=target)
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    latest = latest_checkpoint(tmp_path)
    assert latest.name == "step-00000001"
    assert load_checkpoint(tmp_path).step == 1 and load_training_state(latest).step == 1


TOY = [
    "--num-images",
    "120",
    "--tokenizer-steps",
    "3",
    "--tokenizer-images",
    "120",
    "--batch-size",
    "24",
    "--warmup-epochs",
    "0.5",
    "--samples-per-class",
    "1",
    "--num-iter",
    "2",
    "--diffusion-steps",
    "2",
    "--no-progress",
    "--log-every",
    "1",
    "--device",
    "cpu",
    "--amp",
    "none",
    "--quality",
    "off",
]  # these tests are about training; scoring the grid would train a classifier per test


def train_process(args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.Popen(
        [sys.executable, str(ROOT / "train.py"), *TOY, *args],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        **kwargs,
    )


@pytest.mark.slow
def test_a_stop_signal_saves_a_checkpoint_that_resumes(tmp_path, capsys):
    stop = signal.SIGTERM  # SIGINT takes the same path once the handler notes it (test_run_folder.py)
    out = tmp_path / "run"
    process = train_process(["--epochs", "500", "--output", str(out), "--cache-dir", str(tmp_path / "cache")])
    deadline = time.time() + 240
    while time.time() < deadline and len(read_rows(out / "log.csv")) < 3:
        time.sleep(0.2)
    process.send_signal(stop)
    stdout, stderr = process.communicate(timeout=120)
    assert process.returncode == 0, stderr[-2000:]
    assert f"stopped by {stop.name} at step" in stdout
    stopped_at = int(stdout.split(f"stopped by {stop.name} at step ")[1].split(";")[0])
    assert load_training_state(latest_checkpoint(out)).step == stopped_at >= 3
    resume = ["--epochs", "500", "--output", str(out), "--cache-dir", str(tmp_path / "cache"), "--resume"]
    train.main([*TOY, *resume, "--stop-after-steps", str(stopped_at + 2)])  # in this process
    assert f"resuming at step {stopped_at}" in capsys.readouterr().out
    assert [int(r["step"]) for r in read_rows(out / "log.csv")] == list(range(1, stopped_at + 3))


@pytest.mark.slow
@pytest.mark.parametrize("attention", ["bidirectional", "causal"])
def test_two_processes_match_one_process_at_the_same_global_batch(tmp_path, attention):
    common = ["--epochs", "1", "--stop-after-steps", "3", "--cache-dir", str(tmp_path / "cache")]
    common += ["--attention", attention]
    train.main([*TOY, *common, "--output", str(tmp_path / "one"), "--grad-accum", "2"])  # in this process
    shared = ["--tokenizer", str(tmp_path / "one" / "tokenizer"), "--latent-cache", str(tmp_path / "one" / "latents")]
    two = torchrun(str(ROOT / "train.py"), *TOY, *common, *shared, "--output", str(tmp_path / "two"))
    assert two.returncode == 0, two.stderr[-3000:]
    assert "2 process(es), global batch 24" in two.stdout
    one_weights = load_file(latest_checkpoint(tmp_path / "one") / "weights.safetensors")
    two_weights = load_file(latest_checkpoint(tmp_path / "two") / "weights.safetensors")
    for name, tensor in one_weights.items():
        if name.startswith("model."):
            assert torch.allclose(tensor, two_weights[name], rtol=1e-4, atol=1e-5), name


def test_fp16_trains_with_a_gradient_scaler_whose_state_is_saved(tmp_path, data):
    model, _, result = run(tmp_path, data, settings=replace(SETTINGS, precision=torch.float16))
    assert result["step"] == 12 and all(torch.isfinite(p).all() for p in model.parameters())
    assert load_training_state(latest_checkpoint(tmp_path)).scaler["scale"] > 0


def test_the_schedule_fits_the_time_left_in_rounded_steps_and_never_ends_in_the_warmup():
    assert steps_that_fit(100, 6240, 0.1, 700.0, warmup_steps=312) == 6240  # 614 s needed: it fits
    assert steps_that_fit(100, 6240, 0.1, 500.0, warmup_steps=312) == 5100  # 5100 steps end in time
    assert steps_that_fit(100, 6240, 0.1, 10.0, warmup_steps=312) == 412  # the warmup and 100 steps more
    assert steps_that_fit(100, 300, 1.0, -5.0, warmup_steps=0) == 100  # past the deadline: stop now


@pytest.mark.slow
def test_a_deadline_shortens_the_schedule_to_the_run_that_length_would_have_been(tmp_path, data, monkeypatch):
    """The pace is judged inside the warmup (here over steps 5 to 20), so the shortened run is exactly the run of
    that length; its length is saved, so a resume neither trains on nor shortens again."""
    monkeypatch.setattr(loop, "TIMED_FROM", 5)
    monkeypatch.setattr(loop, "TIMED_TO", 20)
    long = replace(SETTINGS, steps=300, warmup_steps=30, save_every=1000)
    past = TimeBudget(ends_at=0.0, reserve_s=0.0)
    cut, cut_ema, result = run(tmp_path / "cut", data, settings=replace(long, budget=past))
    assert result["step"] == 130 and load_training_state(latest_checkpoint(tmp_path / "cut")).schedule_steps == 130
    same, same_ema, _ = run(tmp_path / "same", data, settings=replace(long, steps=130))
    for a, b in zip(
        [*cut.state_dict().values(), *cut_ema.state_dict().values()],
        [*same.state_dict().values(), *same_ema.state_dict().values()],
    ):
        assert torch.equal(a, b)
    _, _, again = run(tmp_path / "cut", data, settings=long, resume_from=latest_checkpoint(tmp_path / "cut"))
    assert again["step"] == 130 and again["loss"] is None  # finished: nothing more to train
    assert load_training_state(latest_checkpoint(tmp_path / "same")).schedule_steps is None


@pytest.mark.slow
@pytest.mark.parametrize(
    "reserve_s, revised_s, ends_at_step, refit_every, refit_every_s",
    [(1e6, 0.0, 150, 40, 1e9), (0.0, 1e6, 110, 40, 1e9), (0.0, 1e6, 110, 1000, 0.0)],
)
def test_a_revised_reserve_refits_the_schedule_longer_or_shorter(
    tmp_path, data, monkeypatch, capsys, reserve_s, revised_s, ends_at_step, refit_every, refit_every_s
):
    """The first fit (step 20) keeps a reserve of ``reserve_s``; the run revises it at step 40 (as train.py does
    once it has timed its sampling) and the refit there trains to ``ends_at_step``: back to all 150 steps, or down
    to the warmup and 100 more. The refit at step 40 is due by its step count (every 40), or by the clock (every
    0 seconds) where the step count would wait past the end."""
    monkeypatch.setattr(loop, "TIMED_FROM", 5)
    monkeypatch.setattr(loop, "TIMED_TO", 20)
    monkeypatch.setattr(loop, "REFIT_EVERY", refit_every)
    monkeypatch.setattr(loop, "REFIT_EVERY_S", refit_every_s)
    budget = TimeBudget(ends_at=time.time() + 3600, reserve_s=reserve_s)
    lengths = []

    def revise(step: int, total: int) -> None:
        lengths.append(total)
        if step == 40:
            budget.reserve_s = revised_s

    settings = replace(SETTINGS, steps=150, warmup_steps=10, save_every=1000, budget=budget)
    _, _, result = run(tmp_path, data, settings=settings, on_step=revise)
    first = 110 if reserve_s else 150
    assert lengths[19] == 150 and lengths[20] == lengths[39] == first and lengths[40] == ends_at_step
    assert result["step"] == ends_at_step == len(lengths)
    saved = load_training_state(latest_checkpoint(tmp_path)).schedule_steps
    assert saved == (None if ends_at_step == 150 else ends_at_step)
    assert ("time budget at step 40" in capsys.readouterr().out) == (first != ends_at_step)
