"""No run loses data: one process per run folder, no fresh run over an old one, retention never deletes the newest
checkpoint, Ctrl-C saves like SIGTERM, and --overwrite / --amp fp16 work end to end."""

import os
import signal
import socket
import subprocess
import sys

import pytest
import torch

from mar.cli import train
from mar.precision import resolve_precision
from mar.train.checkpoint import (
    TrainingState,
    latest_checkpoint,
    load_checkpoint,
    load_training_state,
    save_training_checkpoint,
)
from mar.train.ema import EMA
from mar.train.loop import StopSignals
from mar.train.run_folder import LOCK, RunFolderError, RunLock, check_fresh_start
from vae import KLTokenizer, small_autoencoder

from .tiny import tiny_model
from .toy import TOY


def test_a_second_holder_is_refused_and_the_lock_is_released(tmp_path):
    with RunLock(tmp_path / "run"):
        assert (tmp_path / "run" / LOCK).read_text().split()[0] == str(os.getpid())
        with pytest.raises(RunFolderError, match="in use by process"):
            with RunLock(tmp_path / "run"):
                pass
    assert not (tmp_path / "run" / LOCK).exists()
    assert not (tmp_path / "run").exists()  # made for the lock alone and left empty: removed again


def test_a_lock_whose_process_is_gone_is_taken_over(tmp_path):
    finished = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / LOCK).write_text(f"{finished.stdout.strip()} {socket.gethostname()}\n")
    with RunLock(tmp_path):
        assert (tmp_path / LOCK).read_text().split()[0] == str(os.getpid())
    assert not (tmp_path / LOCK).exists()


def test_a_live_process_on_the_same_host_keeps_its_lock(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        (tmp_path / LOCK).write_text(f"{sleeper.pid} {socket.gethostname()}\n")
        with pytest.raises(RunFolderError, match=f"process {sleeper.pid}"):
            with RunLock(tmp_path):
                pass
        assert (tmp_path / LOCK).read_text().startswith(str(sleeper.pid))
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_fresh_start_over_checkpoints_needs_resume_or_overwrite(tmp_path):
    check_fresh_start(tmp_path, resume=False, overwrite=False)  # empty: fine
    (tmp_path / "checkpoints" / "step-00000010").mkdir(parents=True)
    with pytest.raises(RunFolderError, match="already holds a training run"):
        check_fresh_start(tmp_path, resume=False, overwrite=False)
    check_fresh_start(tmp_path, resume=True, overwrite=False)
    check_fresh_start(tmp_path, resume=False, overwrite=True)
    with pytest.raises(RunFolderError, match="contradict"):
        check_fresh_start(tmp_path, resume=True, overwrite=True)


@pytest.mark.parametrize("keep", [1, 2])
def test_retention_never_deletes_the_checkpoint_just_written(tmp_path, keep):
    torch.manual_seed(0)
    model, tokenizer = tiny_model(seed=1), KLTokenizer(small_autoencoder(4, 4, 32), scale=0.5)
    for stale in ("step-00000050", "step-00000090"):  # newer-named folders left by some other run
        (tmp_path / "checkpoints" / stale).mkdir(parents=True)
    saved = []
    for step in (10, 20, 30):
        state = TrainingState(step=step, epoch=0, position=step, optimizer={}, scaler={}, data={})
        saved.append(
            save_training_checkpoint(tmp_path, model, EMA(model, 0.9), tokenizer, state, list("abcde"), 32, keep=keep)
        )
        assert saved[-1].is_dir() and latest_checkpoint(tmp_path) == saved[-1]
    left = sorted(p.name for p in (tmp_path / "checkpoints").glob("step-*"))
    assert left == sorted([p.name for p in saved[-keep:]] + ["step-00000050", "step-00000090"])


def test_ctrl_c_is_noted_once_and_a_second_one_interrupts():
    before = signal.getsignal(signal.SIGINT)  # Python's default handler, or SIG_IGN in a shell's background job
    signal.signal(signal.SIGINT, signal.default_int_handler)
    with StopSignals() as signals:
        os.kill(os.getpid(), signal.SIGINT)
        assert signals.name == "SIGINT"
        with pytest.raises(KeyboardInterrupt):
            os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler
    signal.signal(signal.SIGINT, before)


def test_fp16_is_a_precision_of_its_own():
    assert resolve_precision("fp16", torch.device("cpu")) == torch.float16


def test_overwrite_replaces_a_run_and_fp16_trains_end_to_end(trained_run, tmp_path, capsys):
    import shutil

    run = tmp_path / "run"
    shutil.copytree(trained_run, run, ignore=shutil.ignore_patterns("cache"))
    old = sorted(p.name for p in (run / "checkpoints").glob("step-*"))
    (run / "checkpoints" / "step-99999999").mkdir()  # a later-numbered folder of the old run goes too
    train.main(
        TOY
        + [
            "--tokenizer",
            str(trained_run / "tokenizer"),
            "--cache-dir",
            str(trained_run / "cache"),
            "--output",
            str(run),
            "--overwrite",
            "--quality",
            "off",  # about the folder and fp16, not the scores
            "--amp",
            "fp16",
            "--stop-after-steps",
            "2",
        ]
    )
    assert "float16" in capsys.readouterr().out
    assert sorted(p.name for p in (run / "checkpoints").glob("step-*")) == ["step-00000002"] != old
    assert load_checkpoint(run).step == 2 and load_training_state(latest_checkpoint(run)).scaler["scale"] > 0
    assert not (run / LOCK).exists()
